//! The release plan `pipe plan` prints: for each promote, what the next run would deploy, the
//! rollback target the engine would record, the migration, rollout, watch triggers, rollback
//! action and approvers — and, when the last release rolled back, the evidence why.

use crate::compile::plan::{Plan, PromotePlan, StepBlockPlan};
use crate::deliver::ledger::{Ledger, ReleaseStatus};
use crate::deliver::preview::preview_promote;
use crate::deliver::probe_value::format_duration;
use crate::deliver::record::DeliveryRecord;
use crate::run::delivery::{PreviewRequest, ReleaseSummary};
use crate::run::eval::{self, Bindings};
use crate::run::shell_quote;
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct ReleasePlan {
    pub pipeline: String,
    pub version: String,
    pub promotes: Vec<PromoteSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromoteSummary {
    pub environment: String,
    pub protected: bool,
    pub artifact: String,
    pub artifact_path: String,
    /// The rollback target if the next release fails, decided as the engine decides it: the
    /// newest stable release whose digest differs from the build's (for an artifact not built
    /// yet, from a changed build's).
    pub previous_stable: Option<ReleaseSummary>,
    /// The target in words: what it was decided for, and the unchanged-build alternative.
    pub rollback_target: String,
    pub migration: Option<String>,
    pub rollout_steps: Vec<f64>,
    pub rollout_pause: String,
    pub smoke: Vec<String>,
    pub watch: Option<String>,
    pub rollback_triggers: Vec<String>,
    pub warnings: Vec<String>,
    pub rollback_action: Vec<String>,
    pub approvers: Option<String>,
    /// Why the newest release here rolled back, when it did.
    pub last_rollback: Option<String>,
    /// Why the ledger cannot say what the environment serves (a deploy or rollback that never
    /// finished, or a failure not rolled back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_unknown: Option<String>,
}

/// Where `pipe plan` reads: the ledgers and the artifacts as the last build left them.
pub struct Places<'a> {
    pub store: &'a Store,
    pub pipeline_dir: &'a Path,
}

/// Builds the release plan from the compiled plan, the ledgers and the artifacts on disk.
pub fn release_plan(
    plan: &Plan,
    places: &Places<'_>,
    bindings: &Bindings,
) -> Result<ReleasePlan, StoreError> {
    let version = bindings
        .get("pipeline.version")
        .map(eval::display)
        .unwrap_or_default();
    let mut promotes = Vec::new();
    for promote in promotes_in_order(plan) {
        promotes.push(summarise(plan, promote, places, bindings)?);
    }
    Ok(ReleasePlan {
        pipeline: plan.pipeline.clone(),
        version,
        promotes,
    })
}

/// Promotes in the plan's topological order (by their first node).
fn promotes_in_order(plan: &Plan) -> Vec<&PromotePlan> {
    let position = |promote: &PromotePlan| {
        promote
            .nodes
            .first()
            .and_then(|first| plan.nodes.iter().position(|n| &n.id == first))
            .unwrap_or(usize::MAX)
    };
    let mut promotes: Vec<&PromotePlan> = plan.promotes.values().collect();
    promotes.sort_by_key(|p| position(p));
    promotes
}

fn summarise(
    plan: &Plan,
    promote: &PromotePlan,
    places: &Places<'_>,
    bindings: &Bindings,
) -> Result<PromoteSummary, StoreError> {
    let store = places.store;
    let ledger = Ledger::load(store, &plan.pipeline, &promote.environment)?;
    let preview = preview_promote(&PreviewRequest {
        plan,
        environment: &promote.environment,
        store,
        pipeline_dir: places.pipeline_dir,
        bindings,
    });
    let bindings = preview.bindings;
    let watch = promote.watch.as_ref();
    Ok(PromoteSummary {
        environment: promote.environment.clone(),
        protected: promote.protected,
        artifact: promote.artifact.clone(),
        artifact_path: plan
            .artifacts
            .get(&promote.artifact)
            .map(|a| a.path.clone())
            .unwrap_or_default(),
        previous_stable: preview.rollback_target.expected().cloned(),
        rollback_target: preview.rollback_target.describe(),
        migration: promote
            .migrate
            .as_ref()
            .map(|m| format!("{:?}", m.kind).to_lowercase()),
        rollout_steps: promote.rollout.steps.clone(),
        rollout_pause: match promote.rollout.pause_ms {
            0 => "none".to_string(),
            ms => format_duration(ms),
        },
        smoke: promote
            .smoke
            .as_ref()
            .map(|b| commands(b, &bindings))
            .unwrap_or_default(),
        watch: watch.map(|w| describe_watch(w.duration_ms, &w.probes)),
        rollback_triggers: watch
            .map(|w| w.rollback_when.iter().map(describe_condition).collect())
            .unwrap_or_default(),
        warnings: watch
            .map(|w| w.warn_when.iter().map(describe_condition).collect())
            .unwrap_or_default(),
        rollback_action: commands(&promote.rollback, &bindings),
        approvers: promote.approval.as_ref().map(|a| {
            let who = a
                .approvers
                .as_ref()
                .map_or("anyone but the initiator".to_string(), |l| l.join(", "));
            let self_note = if a.allow_self {
                ", self-approval allowed"
            } else {
                ""
            };
            format!("{who} (quorum {}{self_note})", a.quorum.max(1))
        }),
        last_rollback: last_rollback(&ledger, store),
        state_unknown: ledger.unknown_state().map(|why| why.to_string()),
    })
}

fn commands(block: &StepBlockPlan, bindings: &Bindings) -> Vec<String> {
    block
        .steps
        .iter()
        .map(|step| shell_quote::render_command_lenient(&step.run, bindings, None))
        .collect()
}

fn describe_watch(duration_ms: u64, probes: &[crate::compile::plan::ProbePlan]) -> String {
    let names: Vec<String> = probes
        .iter()
        .map(|p| format!("{}: {} every {}", p.name, p.ty, format_duration(p.every_ms)))
        .collect();
    format!("{} — {}", format_duration(duration_ms), names.join(", "))
}

fn describe_condition(condition: &crate::compile::plan::ConditionPlan) -> String {
    match condition.for_ms {
        Some(window) => format!(
            "{} for {}",
            condition.condition.source,
            format_duration(window)
        ),
        None => condition.condition.source.clone(),
    }
}

/// The evidence of the newest release's rollback, from its run's delivery record.
fn last_rollback(ledger: &Ledger, store: &Store) -> Option<String> {
    let latest = ledger.latest()?;
    if latest.status != ReleaseStatus::RolledBack {
        return None;
    }
    let record = DeliveryRecord::load_or_new(store, &latest.run, ledger.environment());
    let why = record
        .decisions
        .iter()
        .rev()
        .find(|d| d.kind == crate::deliver::watch::RuleKind::Rollback)
        .map(|d| format!("rollback when {}: {}", d.condition, d.evidence))
        .unwrap_or_else(|| "deploy or smoke failed (see `pipe audit show`)".to_string());
    Some(format!(
        "{} (run {}) rolled back: {why}",
        latest.version, latest.run
    ))
}

/// The human form of the release plan.
pub fn render_text(plan: &ReleasePlan) -> String {
    let mut out = String::new();
    let version = if plan.version.is_empty() {
        "(no version)"
    } else {
        &plan.version
    };
    let _ = writeln!(
        out,
        "release plan for pipeline {} — version {version}",
        plan.pipeline
    );
    if plan.promotes.is_empty() {
        let _ = writeln!(out, "\n(no promote stages)");
    }
    for promote in &plan.promotes {
        render_promote(&mut out, promote);
    }
    out
}

fn render_promote(out: &mut String, p: &PromoteSummary) {
    let protected = if p.protected { " (protected)" } else { "" };
    let _ = writeln!(out, "\npromote {}{protected}", p.environment);
    let line = |out: &mut String, key: &str, value: &str| {
        let _ = writeln!(out, "  {key:<17} {value}");
    };
    line(
        out,
        "artifact",
        &format!("{} ({})", p.artifact, p.artifact_path),
    );
    if let Some(why) = &p.state_unknown {
        line(out, "STATE UNKNOWN", why);
    }
    line(out, "rollback target", &p.rollback_target);
    line(out, "approval", p.approvers.as_deref().unwrap_or("none"));
    line(out, "migration", p.migration.as_deref().unwrap_or("none"));
    let steps: Vec<String> = p.rollout_steps.iter().map(|s| format!("{s}%")).collect();
    line(
        out,
        "rollout",
        &format!("{} (pause {})", steps.join(" → "), p.rollout_pause),
    );
    for command in &p.smoke {
        line(out, "smoke", command);
    }
    line(out, "watch", p.watch.as_deref().unwrap_or("none"));
    for trigger in &p.rollback_triggers {
        line(out, "rollback when", trigger);
    }
    for warning in &p.warnings {
        line(out, "warn when", warning);
    }
    for command in &p.rollback_action {
        line(out, "rollback action", command);
    }
    if let Some(last) = &p.last_rollback {
        line(out, "last rollback", last);
    }
}
