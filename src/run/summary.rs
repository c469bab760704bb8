//! The end-of-run summary: each node's status and duration, the critical path (the chain of
//! dependencies that took longest), and what the exit code means.

use crate::compile::plan::Plan;
use crate::run::eval::format_duration_ms;
use crate::run::state::{NodeStatus, RunState, RunStatus};
use std::collections::HashMap;

/// What each exit code means, for the last line of a run.
pub fn exit_meaning(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Succeeded => "success",
        RunStatus::Failed | RunStatus::Running => "pipeline failed",
        RunStatus::AwaitingApproval => "awaiting approval (resumable)",
        RunStatus::RollbackFailed => "rollback failed or recovery unverified",
        RunStatus::Interrupted => "interrupted (resumable)",
    }
}

/// The longest chain by duration through nodes that ran, and its total.
pub fn critical_path(plan: &Plan, state: &RunState) -> (Vec<String>, u64) {
    let mut best: HashMap<&str, (u64, Option<&str>)> = HashMap::new();
    for node in &plan.nodes {
        let own = state
            .nodes
            .get(&node.id)
            .and_then(|r| r.duration_ms)
            .unwrap_or(0);
        let before = node
            .needs
            .iter()
            .filter_map(|need| {
                best.get(need.as_str())
                    .map(|(total, _)| (*total, need.as_str()))
            })
            .max_by_key(|(total, _)| *total);
        let (prior, via) = before.map_or((0, None), |(total, id)| (total, Some(id)));
        best.insert(node.id.as_str(), (prior + own, via));
    }
    let Some((&end, &(total, _))) = best
        .iter()
        .max_by_key(|(id, (total, _))| (*total, std::cmp::Reverse(**id)))
    else {
        return (Vec::new(), 0);
    };
    let mut path = vec![end.to_string()];
    let mut cursor = best.get(end).and_then(|(_, via)| *via);
    while let Some(id) = cursor {
        path.push(id.to_string());
        cursor = best.get(id).and_then(|(_, via)| *via);
    }
    path.reverse();
    (path, total)
}

/// The summary table printed when a run ends.
pub fn render(plan: &Plan, state: &RunState, run_dir: &str) -> String {
    let width = plan
        .nodes
        .iter()
        .map(|n| n.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("\nrun {} of pipeline `{}`\n", state.run_id, state.pipeline);
    out.push_str(&format!(
        "  {:<width$}  {:<17}  {:>8}  note\n",
        "node", "status", "time"
    ));
    for node in &plan.nodes {
        let Some(record) = state.nodes.get(&node.id) else {
            continue;
        };
        if record.status == NodeStatus::Excluded {
            continue;
        }
        let time = record
            .duration_ms
            .map(format_duration_ms)
            .unwrap_or_else(|| "-".into());
        let mut note = record.message.clone().unwrap_or_default();
        if let Some(run) = &record.reused_from {
            note = format!("result of run {run}");
        }
        let status = record.status.word();
        out.push_str(&format!(
            "  {:<width$}  {status:<17}  {time:>8}  {note}\n",
            node.id
        ));
    }
    let (path, total) = critical_path(plan, state);
    if !path.is_empty() {
        out.push_str(&format!(
            "critical path: {} ({})\n",
            path.join(" → "),
            format_duration_ms(total)
        ));
    }
    let status = state.status;
    out.push_str(&format!("state and logs: {run_dir}\n"));
    let refused = refused_on_resume(state);
    let meaning = match (status, refused.is_empty()) {
        (RunStatus::Interrupted, false) => "interrupted",
        _ => exit_meaning(status),
    };
    out.push_str(&format!("exit {}: {meaning}\n", status.exit_code()));
    let resumable = matches!(
        status,
        RunStatus::Interrupted | RunStatus::AwaitingApproval | RunStatus::Failed
    );
    if resumable && !refused.is_empty() {
        for why in &refused {
            out.push_str(&format!("not resumable: {why}\n"));
        }
    } else if resumable {
        let approvals: String = awaiting_environments(plan, state)
            .iter()
            .map(|env| format!(" --approve {env}"))
            .collect();
        out.push_str(&format!(
            "resume with: pipe resume {}{approvals}\n",
            state.run_id
        ));
    }
    out
}

/// Why a resume of this run would be refused: a promote rolled its release back because it
/// failed, and a resume never deploys that release again.
fn refused_on_resume(state: &RunState) -> Vec<String> {
    state
        .delivery
        .iter()
        .filter(|(_, record)| record["outcome"] == "rolled_back")
        .map(|(environment, record)| {
            let version = record["version"].as_str().unwrap_or("the release");
            format!(
                "{version} failed in {environment} and was rolled back; a resume would not deploy it again (start a new run with a fixed release)"
            )
        })
        .collect()
}

/// Environments whose promote stopped for an approval.
fn awaiting_environments(plan: &Plan, state: &RunState) -> Vec<String> {
    let mut environments: Vec<String> = plan
        .nodes
        .iter()
        .filter(|n| state.status_of(&n.id) == NodeStatus::AwaitingApproval)
        .filter_map(|n| n.environment.clone())
        .collect();
    environments.dedup();
    environments
}
