//! Gate decisions: every `require` must hold, every `warn` is reported; messages quote the
//! condition and the values it read.

use crate::compile::plan::{Expression, GatePlan};
use crate::run::eval::{self, Bindings};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateVerdict {
    /// One line per failed `require`.
    pub failures: Vec<String>,
    /// One line per failed `warn`.
    pub warnings: Vec<String>,
}

impl GateVerdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

pub fn evaluate_gate(gate: &GatePlan, bindings: &Bindings) -> GateVerdict {
    let mut verdict = GateVerdict::default();
    for condition in &gate.require {
        if let Some(why) = check(condition, bindings) {
            verdict.failures.push(format!("require {why}"));
        }
    }
    for condition in &gate.warn {
        if let Some(why) = check(condition, bindings) {
            verdict.warnings.push(format!("warn {why}"));
        }
    }
    verdict
}

/// `None` when the condition holds; otherwise why not, with the values read.
fn check(condition: &Expression, bindings: &Bindings) -> Option<String> {
    match eval::eval_condition(condition, bindings) {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "`{}` is false{}",
            condition.source,
            values_read(condition, bindings)
        )),
        Err(e) => Some(format!(
            "`{}` could not be evaluated: {e}",
            condition.source
        )),
    }
}

/// ` (jobs.test.outputs.coverage = 75%)`
pub fn values_read(condition: &Expression, bindings: &Bindings) -> String {
    let mut names = Vec::new();
    eval::names_read(&condition.tree, &mut names);
    let shown: Vec<String> = names
        .iter()
        .filter_map(|name| {
            bindings
                .get(name)
                .map(|value| format!("{name} = {}", eval::display(value)))
        })
        .collect();
    if shown.is_empty() {
        String::new()
    } else {
        format!(" ({})", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{ExprTree, Literal};
    use crate::syntax::ast::BinaryOp;

    #[test]
    fn a_failed_require_blocks_and_a_failed_warn_only_reports() {
        let coverage = ExprTree::Name(vec![
            "jobs".into(),
            "t".into(),
            "outputs".into(),
            "c".into(),
        ]);
        let at_least = |p: f64| Expression {
            source: format!("jobs.t.outputs.c >= {p}%"),
            tree: ExprTree::Binary {
                op: BinaryOp::Ge,
                lhs: Box::new(coverage.clone()),
                rhs: Box::new(ExprTree::Lit(Literal::Percent(p))),
            },
        };
        let mut bindings = Bindings::new();
        bindings.set("jobs.t.outputs.c", Literal::Percent(75.0));
        let gate = GatePlan {
            require: vec![at_least(70.0)],
            warn: vec![at_least(90.0)],
        };
        let verdict = evaluate_gate(&gate, &bindings);
        assert!(verdict.passed());
        assert_eq!(
            verdict.warnings,
            vec!["warn `jobs.t.outputs.c >= 90%` is false (jobs.t.outputs.c = 75%)"]
        );
        let strict = GatePlan {
            require: vec![at_least(80.0)],
            warn: vec![],
        };
        assert!(!evaluate_gate(&strict, &bindings).passed());
    }
}
