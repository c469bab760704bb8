//! Watch decisions: the series of probe samples and the `rollback when C [for D]` and
//! `warn when` rules over it, with sustained-window semantics and readable evidence. Pure: the
//! engine runs the probes and passes each sample in with its time since the watch began.
//!
//! A rule is evaluated at every sample of a probe it reads, on the latest value of each probe.
//! With `for D` it fires once C has held at every such sample over a span of at least D; a
//! sample where C is false restarts the window. Without `for` it fires at the first sample
//! where C holds. A failed or unreadable sample is a breach of every rule that reads its probe.

use crate::compile::plan::{ConditionPlan, ExprTree, WatchPlan};
use crate::deliver::probe_value::{ProbeError, ProbeValue, format_duration};
use crate::syntax::ast::BinaryOp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One probe reading, kept in the run's state as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub probe: String,
    /// Milliseconds since the watch began.
    pub at_ms: u64,
    /// The value as printed (`5%`), absent when the probe failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why the sample is a breach, when the probe failed or printed something unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Rollback,
    Warn,
}

/// A rule that fired, with everything an auditor needs to see why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub kind: RuleKind,
    /// The condition as written (`error_rate > 1%`).
    pub condition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// The latest value (or failure) of each probe the condition reads.
    pub observed: BTreeMap<String, String>,
    /// How long the condition had held when the rule fired.
    pub held_ms: u64,
    /// Samples of the rule's probes in that span.
    pub samples: u32,
    pub at_ms: u64,
    /// `error_rate 5% > 1% held 1.0s over 3 samples`
    pub evidence: String,
}

#[derive(Debug, Clone)]
struct Rule {
    kind: RuleKind,
    condition: ConditionPlan,
    reads: BTreeSet<String>,
    held_since_ms: Option<u64>,
    samples_held: u32,
    reported: bool,
}

/// The state of one watch: latest reading per probe, all samples, and each rule's window.
#[derive(Debug, Clone)]
pub struct Monitor {
    latest: BTreeMap<String, Result<ProbeValue, ProbeError>>,
    /// Values of names other than probes (`env.replicas`), joined with dots.
    context: BTreeMap<String, ProbeValue>,
    rules: Vec<Rule>,
    samples: Vec<Sample>,
}

impl Monitor {
    pub fn new(watch: &WatchPlan, context: BTreeMap<String, ProbeValue>) -> Monitor {
        let probe_names: BTreeSet<String> = watch.probes.iter().map(|p| p.name.clone()).collect();
        let rule = |kind: RuleKind, condition: &ConditionPlan| {
            let mut reads = BTreeSet::new();
            collect_probe_names(&condition.condition.tree, &probe_names, &mut reads);
            Rule {
                kind,
                condition: condition.clone(),
                reads,
                held_since_ms: None,
                samples_held: 0,
                reported: false,
            }
        };
        let rules = watch
            .rollback_when
            .iter()
            .map(|c| rule(RuleKind::Rollback, c))
            .chain(watch.warn_when.iter().map(|c| rule(RuleKind::Warn, c)))
            .collect();
        Monitor {
            latest: BTreeMap::new(),
            context,
            rules,
            samples: Vec::new(),
        }
    }

    /// Every sample so far, in the order recorded.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Records a sample and returns the rules it made fire: rollback rules first. A warn rule
    /// reports once per sustained episode.
    pub fn record(
        &mut self,
        probe: &str,
        at_ms: u64,
        reading: Result<ProbeValue, ProbeError>,
    ) -> Vec<Decision> {
        self.samples.push(Sample {
            probe: probe.to_string(),
            at_ms,
            value: reading.as_ref().ok().map(ToString::to_string),
            error: reading.as_ref().err().map(ToString::to_string),
        });
        self.latest.insert(probe.to_string(), reading);
        let mut fired = Vec::new();
        for index in 0..self.rules.len() {
            if let Some(decision) = self.advance_rule(index, probe, at_ms) {
                fired.push(decision);
            }
        }
        fired
    }

    fn advance_rule(&mut self, index: usize, probe: &str, at_ms: u64) -> Option<Decision> {
        let rule = &self.rules[index];
        let ready = rule.reads.iter().all(|name| self.latest.contains_key(name));
        if !rule.reads.contains(probe) || !ready {
            return None;
        }
        let holds = self.breached(&rule.condition.condition.tree);
        let rule = &mut self.rules[index];
        if !holds {
            rule.held_since_ms = None;
            rule.samples_held = 0;
            rule.reported = false;
            return None;
        }
        let since = *rule.held_since_ms.get_or_insert(at_ms);
        rule.samples_held += 1;
        let held_ms = at_ms - since;
        let window_met = rule.condition.for_ms.is_none_or(|window| held_ms >= window);
        if !window_met || rule.reported {
            return None;
        }
        rule.reported = true;
        let rule = self.rules[index].clone();
        Some(self.decision(&rule, held_ms, at_ms))
    }

    fn decision(&self, rule: &Rule, held_ms: u64, at_ms: u64) -> Decision {
        let observed = rule
            .reads
            .iter()
            .map(|name| (name.clone(), self.describe_probe(name)))
            .collect();
        let rendered = self.render(&rule.condition.condition.tree);
        let evidence = match rule.condition.for_ms {
            Some(_) => format!(
                "{rendered} held {:.1}s over {} samples",
                held_ms as f64 / 1000.0,
                rule.samples_held
            ),
            None => format!("{rendered} at {} into the watch", format_duration(at_ms)),
        };
        Decision {
            kind: rule.kind,
            condition: rule.condition.condition.source.clone(),
            for_ms: rule.condition.for_ms,
            observed,
            held_ms,
            samples: rule.samples_held,
            at_ms,
            evidence,
        }
    }

    fn describe_probe(&self, name: &str) -> String {
        match self.latest.get(name) {
            Some(Ok(value)) => value.to_string(),
            Some(Err(reason)) => reason.to_string(),
            None => "no sample".to_string(),
        }
    }

    /// True when the condition holds or cannot be evaluated (a failed probe, a type clash):
    /// when in doubt the watch treats the release as unhealthy.
    fn breached(&self, tree: &ExprTree) -> bool {
        !matches!(self.evaluate(tree), Ok(ProbeValue::Bool(false)))
    }

    fn evaluate(&self, tree: &ExprTree) -> Result<ProbeValue, Unevaluable> {
        match tree {
            ExprTree::Lit(literal) => Ok(ProbeValue::from(literal)),
            ExprTree::Name(path) => self.lookup(path),
            ExprTree::Not(inner) => match self.evaluate(inner)? {
                ProbeValue::Bool(b) => Ok(ProbeValue::Bool(!b)),
                other => Err(Unevaluable::NotNeedsBool(other.type_name())),
            },
            ExprTree::Binary { op, lhs, rhs } => {
                let (lhs, rhs) = (self.evaluate(lhs)?, self.evaluate(rhs)?);
                apply(*op, &lhs, &rhs).map(ProbeValue::Bool)
            }
        }
    }

    fn lookup(&self, path: &[String]) -> Result<ProbeValue, Unevaluable> {
        let name = path.join(".");
        match self.latest.get(&name) {
            Some(reading) => reading.clone().map_err(Unevaluable::Reading),
            None => self
                .context
                .get(&name)
                .cloned()
                .ok_or(Unevaluable::NoValue(name)),
        }
    }

    /// The condition with each probe's observed value after its name: `error_rate 5% > 1%`.
    fn render(&self, tree: &ExprTree) -> String {
        match tree {
            ExprTree::Lit(literal) => ProbeValue::from(literal).to_string(),
            ExprTree::Name(path) => {
                let name = path.join(".");
                match self.latest.get(&name) {
                    Some(Ok(value)) => format!("{name} {value}"),
                    Some(Err(reason)) => format!("{name} ({reason})"),
                    None => name,
                }
            }
            ExprTree::Not(inner) => format!("not {}", self.render(inner)),
            ExprTree::Binary { op, lhs, rhs } => {
                let text = format!("{} {} {}", self.render(lhs), op.symbol(), self.render(rhs));
                if op.is_comparison() {
                    text
                } else {
                    format!("({text})")
                }
            }
        }
    }
}

fn collect_probe_names(tree: &ExprTree, probes: &BTreeSet<String>, into: &mut BTreeSet<String>) {
    match tree {
        ExprTree::Lit(_) => {}
        ExprTree::Name(path) => {
            let name = path.join(".");
            if probes.contains(&name) {
                into.insert(name);
            }
        }
        ExprTree::Not(inner) => collect_probe_names(inner, probes, into),
        ExprTree::Binary { lhs, rhs, .. } => {
            collect_probe_names(lhs, probes, into);
            collect_probe_names(rhs, probes, into);
        }
    }
}

/// Why a condition has no value (so the watch counts it as a breach).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum Unevaluable {
    #[error(transparent)]
    Reading(ProbeError),
    #[error("no value for {0}")]
    NoValue(String),
    #[error("`not` needs a bool, got a {0}")]
    NotNeedsBool(&'static str),
    #[error("`{0}` needs bools")]
    NeedsBools(&'static str),
    #[error("`{op}` cannot compare {kind}")]
    CannotCompare {
        op: &'static str,
        kind: &'static str,
    },
    #[error("cannot compare a {lhs} with a {rhs}")]
    Mixed {
        lhs: &'static str,
        rhs: &'static str,
    },
}

fn apply(op: BinaryOp, lhs: &ProbeValue, rhs: &ProbeValue) -> Result<bool, Unevaluable> {
    use ProbeValue as V;
    let ordered = |a: f64, b: f64| match op {
        BinaryOp::Eq => Ok(a == b),
        BinaryOp::Ne => Ok(a != b),
        BinaryOp::Lt => Ok(a < b),
        BinaryOp::Le => Ok(a <= b),
        BinaryOp::Gt => Ok(a > b),
        BinaryOp::Ge => Ok(a >= b),
        BinaryOp::And | BinaryOp::Or => Err(Unevaluable::NeedsBools(op.symbol())),
    };
    match (lhs, rhs) {
        (V::Bool(a), V::Bool(b)) => match op {
            BinaryOp::And => Ok(*a && *b),
            BinaryOp::Or => Ok(*a || *b),
            BinaryOp::Eq => Ok(a == b),
            BinaryOp::Ne => Ok(a != b),
            _ => Err(Unevaluable::CannotCompare {
                op: op.symbol(),
                kind: "bools",
            }),
        },
        (V::Number(a), V::Number(b)) | (V::Percent(a), V::Percent(b)) => ordered(*a, *b),
        (V::Duration(a), V::Duration(b)) => ordered(*a as f64, *b as f64),
        (V::String(a), V::String(b)) => match op {
            BinaryOp::Eq => Ok(a == b),
            BinaryOp::Ne => Ok(a != b),
            _ => Err(Unevaluable::CannotCompare {
                op: op.symbol(),
                kind: "strings",
            }),
        },
        _ => Err(Unevaluable::Mixed {
            lhs: lhs.type_name(),
            rhs: rhs.type_name(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{Expression, Literal, ProbePlan, Template};
    use crate::syntax::ast::Type;

    fn name(n: &str) -> Box<ExprTree> {
        Box::new(ExprTree::Name(vec![n.to_string()]))
    }

    fn greater(probe: &str, literal: Literal, source: &str, for_ms: Option<u64>) -> ConditionPlan {
        ConditionPlan {
            condition: Expression {
                source: source.to_string(),
                tree: ExprTree::Binary {
                    op: BinaryOp::Gt,
                    lhs: name(probe),
                    rhs: Box::new(ExprTree::Lit(literal)),
                },
            },
            for_ms,
        }
    }

    fn probe(name: &str, ty: Type) -> ProbePlan {
        ProbePlan {
            name: name.to_string(),
            ty,
            command: Template::default(),
            every_ms: 500,
        }
    }

    fn error_rate_watch(for_ms: Option<u64>) -> WatchPlan {
        WatchPlan {
            duration_ms: 10_000,
            probes: vec![probe("error_rate", Type::Percent)],
            rollback_when: vec![greater(
                "error_rate",
                Literal::Percent(1.0),
                "error_rate > 1%",
                for_ms,
            )],
            warn_when: vec![],
        }
    }

    fn percent(p: f64) -> Result<ProbeValue, ProbeError> {
        Ok(ProbeValue::Percent(p))
    }

    #[test]
    fn fires_once_the_breach_has_held_for_the_window() {
        let mut monitor = Monitor::new(&error_rate_watch(Some(1000)), BTreeMap::new());
        assert!(monitor.record("error_rate", 0, percent(0.2)).is_empty());
        assert!(monitor.record("error_rate", 500, percent(5.0)).is_empty());
        assert!(monitor.record("error_rate", 1000, percent(5.0)).is_empty());
        let fired = monitor.record("error_rate", 1500, percent(5.0));
        assert_eq!(fired.len(), 1);
        let decision = &fired[0];
        assert_eq!(decision.kind, RuleKind::Rollback);
        assert_eq!(
            decision.evidence,
            "error_rate 5% > 1% held 1.0s over 3 samples"
        );
        assert_eq!(decision.observed["error_rate"], "5%");
        assert_eq!(monitor.samples().len(), 4);
    }

    #[test]
    fn a_breach_shorter_than_the_window_does_not_fire() {
        let mut monitor = Monitor::new(&error_rate_watch(Some(1000)), BTreeMap::new());
        for (at, value) in [(0, 5.0), (500, 5.0), (1000, 0.5), (1500, 5.0), (2000, 5.0)] {
            assert!(
                monitor.record("error_rate", at, percent(value)).is_empty(),
                "at {at}"
            );
        }
        assert_eq!(monitor.record("error_rate", 2500, percent(5.0)).len(), 1);
    }

    #[test]
    fn without_a_window_the_first_breaching_sample_fires() {
        let mut monitor = Monitor::new(&error_rate_watch(None), BTreeMap::new());
        assert!(monitor.record("error_rate", 0, percent(0.5)).is_empty());
        let fired = monitor.record("error_rate", 300, percent(2.0));
        assert_eq!(
            fired[0].evidence,
            "error_rate 2% > 1% at 300ms into the watch"
        );
    }

    #[test]
    fn an_unreadable_sample_is_a_breach() {
        let mut monitor = Monitor::new(&error_rate_watch(Some(400)), BTreeMap::new());
        let unreadable = Err(ProbeError::Unreadable {
            line: "oops".to_string(),
            ty: Type::Percent,
        });
        assert!(
            monitor
                .record("error_rate", 0, unreadable.clone())
                .is_empty()
        );
        let fired = monitor.record("error_rate", 400, unreadable);
        assert_eq!(
            fired[0].evidence,
            "error_rate (unreadable output \"oops\", expected a percent) > 1% held 0.4s over 2 samples"
        );
        assert_eq!(monitor.samples()[0].value, None);
    }

    #[test]
    fn warn_rules_report_once_per_episode_and_never_roll_back() {
        let mut watch = error_rate_watch(None);
        watch.rollback_when.clear();
        watch.warn_when = vec![greater(
            "error_rate",
            Literal::Percent(1.0),
            "error_rate > 1%",
            None,
        )];
        let mut monitor = Monitor::new(&watch, BTreeMap::new());
        assert_eq!(
            monitor.record("error_rate", 0, percent(3.0))[0].kind,
            RuleKind::Warn
        );
        assert!(monitor.record("error_rate", 100, percent(3.0)).is_empty());
        assert!(monitor.record("error_rate", 200, percent(0.0)).is_empty());
        assert_eq!(monitor.record("error_rate", 300, percent(3.0)).len(), 1);
    }

    #[test]
    fn rules_wait_for_every_probe_they_read_and_ignore_others() {
        let watch = WatchPlan {
            duration_ms: 10_000,
            probes: vec![probe("healthy", Type::Bool), probe("p95", Type::Duration)],
            rollback_when: vec![ConditionPlan {
                condition: Expression {
                    source: "not healthy".to_string(),
                    tree: ExprTree::Not(name("healthy")),
                },
                for_ms: None,
            }],
            warn_when: vec![],
        };
        let mut monitor = Monitor::new(&watch, BTreeMap::new());
        assert!(
            monitor
                .record(
                    "p95",
                    0,
                    Err(ProbeError::Failed("exit status 1".to_string()))
                )
                .is_empty()
        );
        assert!(
            monitor
                .record("healthy", 10, Ok(ProbeValue::Bool(true)))
                .is_empty()
        );
        let fired = monitor.record("healthy", 20, Ok(ProbeValue::Bool(false)));
        assert_eq!(
            fired[0].evidence,
            "not healthy false at 20ms into the watch"
        );
    }

    #[test]
    fn a_type_clash_counts_as_a_breach() {
        let mut monitor = Monitor::new(&error_rate_watch(None), BTreeMap::new());
        let fired = monitor.record("error_rate", 0, Ok(ProbeValue::Duration(5)));
        assert_eq!(fired.len(), 1);
    }
}
