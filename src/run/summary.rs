//! The end-of-run summary: each node's status and duration, the tail of each failed job's log,
//! the critical path (the chain of dependencies that took longest), and what the exit code means.

use crate::compile::plan::Plan;
use crate::run::eval::format_duration_ms;
use crate::run::state::{NodeStatus, RunState, RunStatus, log_file_name};
use std::collections::HashMap;
use std::path::Path;

/// How many lines of a failed job's log the summary shows.
pub const LOG_TAIL_LINES: usize = 20;

/// Where the summary is written and how: the run's directory (for messages), its agent-local
/// log directory, and whether statuses are coloured (a terminal without `NO_COLOR`).
pub struct SummaryTarget<'a> {
    pub run_dir: &'a str,
    pub logs_dir: &'a Path,
    pub colour: bool,
}

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

/// A skip's reason in plain words: the scheduler records `skipped: `test` failed`, people read
/// `needs test, which failed`.
pub fn plain_skip_reason(message: &str) -> String {
    let reason = message.strip_prefix("skipped: ").unwrap_or(message);
    let need = reason
        .strip_prefix('`')
        .and_then(|rest| rest.split_once('`'))
        .filter(|(need, _)| !need.is_empty());
    match need {
        Some((need, " failed")) => format!("needs {need}, which failed"),
        Some((need, " was skipped")) => format!("needs {need}, which was skipped"),
        _ => reason.to_string(),
    }
}

/// A node's status word, coloured by how it ended when `colour` is set; padded to `width`
/// before colouring so the table stays aligned.
pub fn status_word(status: NodeStatus, width: usize, colour: bool) -> String {
    let word = format!("{:<width$}", status.word());
    if !colour {
        return word;
    }
    let code = match status {
        NodeStatus::Succeeded => "32",
        NodeStatus::Failed => "31",
        NodeStatus::AwaitingApproval | NodeStatus::Interrupted => "33",
        _ => "2",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

/// The summary table printed when a run ends.
pub fn render(plan: &Plan, state: &RunState, target: &SummaryTarget) -> String {
    let run_dir = target.run_dir;
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
        if record.status == NodeStatus::Skipped {
            note = plain_skip_reason(&note);
        }
        if let Some(run) = &record.reused_from {
            note = format!("result of run {run}");
        }
        let status = status_word(record.status, 17, target.colour);
        out.push_str(&format!(
            "  {:<width$}  {status}  {time:>8}  {note}\n",
            node.id
        ));
    }
    out.push_str(&failed_log_tails(plan, state, target.logs_dir));
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

/// The last lines of each failed job's log (the log file is already redacted).
fn failed_log_tails(plan: &Plan, state: &RunState, logs_dir: &Path) -> String {
    let mut out = String::new();
    for node in &plan.nodes {
        if state.status_of(&node.id) != NodeStatus::Failed {
            continue;
        }
        let path = logs_dir.join(log_file_name(&node.id));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        out.push_str(&format!(
            "\nlast {} lines of {} ({}):\n",
            tail.len(),
            node.id,
            crate::run::job::display_path(&path)
        ));
        for line in tail {
            out.push_str(&format!("  | {line}\n"));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_read_as_plain_words() {
        assert_eq!(
            plain_skip_reason("skipped: `test` failed"),
            "needs test, which failed"
        );
        assert_eq!(
            plain_skip_reason("skipped: `build` was skipped"),
            "needs build, which was skipped"
        );
        assert_eq!(
            plain_skip_reason("skipped: when `x` is false"),
            "when `x` is false"
        );
    }

    #[test]
    fn statuses_are_coloured_only_when_asked_and_stay_aligned() {
        assert_eq!(status_word(NodeStatus::Failed, 8, false), "failed  ");
        assert_eq!(
            status_word(NodeStatus::Failed, 8, true),
            "\x1b[31mfailed  \x1b[0m"
        );
        assert_eq!(
            status_word(NodeStatus::Succeeded, 9, true),
            "\x1b[32msucceeded\x1b[0m"
        );
    }
}
