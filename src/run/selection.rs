//! Which nodes a run runs: `--until NODE` (it and what it needs) and `--only NODE…` (just
//! these, with their predecessors' results taken from earlier runs). Promote groups are
//! always selected whole.

use crate::compile::plan::Plan;
use crate::diagnostics::did_you_mean;
use crate::run::error::RunError;
use crate::run::state::{NodeRecord, NodeStatus, list_runs};
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};

/// Checks that `name` is a node id, with a "did you mean" otherwise.
pub fn known_node(plan: &Plan, name: &str, flag: &'static str) -> Result<(), RunError> {
    if plan.node(name).is_some() {
        return Ok(());
    }
    let ids = plan.nodes.iter().map(|n| n.id.as_str());
    let hint = did_you_mean(name, ids)
        .map(|help| format!("; {help}"))
        .unwrap_or_default();
    Err(RunError::UnknownNode {
        flag,
        name: name.to_string(),
        pipeline: plan.pipeline.clone(),
        hint,
    })
}

/// `node` and everything it needs, transitively.
pub fn ancestors_and_self(plan: &Plan, node: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![node.to_string()];
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(found) = plan.node(&id) {
            todo.extend(found.needs.iter().cloned());
        }
    }
    seen
}

/// Everything downstream of `node` (not including it).
pub fn descendants(plan: &Plan, node: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![node.to_string()];
    while let Some(id) = todo.pop() {
        for next in plan.nodes.iter().filter(|n| n.needs.contains(&id)) {
            if seen.insert(next.id.clone()) {
                todo.push(next.id.clone());
            }
        }
    }
    seen
}

/// Adds the other nodes of every promote group that has a selected node.
pub fn with_whole_groups(plan: &Plan, mut selected: BTreeSet<String>) -> BTreeSet<String> {
    for promote in plan.promotes.values() {
        if promote.nodes.iter().any(|n| selected.contains(n)) {
            selected.extend(promote.nodes.iter().cloned());
        }
    }
    selected
}

/// The selected set for `--until`.
pub fn until(plan: &Plan, node: &str) -> Result<BTreeSet<String>, RunError> {
    known_node(plan, node, "--until")?;
    let mut selected = ancestors_and_self(plan, node);
    // Whole groups can pull in more needs; close over them once more.
    selected = with_whole_groups(plan, selected);
    let extra: Vec<String> = selected.iter().cloned().collect();
    for id in extra {
        selected.extend(ancestors_and_self(plan, &id));
    }
    Ok(selected)
}

/// The selected set for `--only`.
pub fn only_selected(plan: &Plan, names: &[String]) -> Result<BTreeSet<String>, RunError> {
    for name in names {
        known_node(plan, name, "--only")?;
    }
    Ok(with_whole_groups(plan, names.iter().cloned().collect()))
}

/// The predecessors of `selected` that are not selected themselves.
pub fn outside_needs(plan: &Plan, selected: &BTreeSet<String>) -> BTreeSet<String> {
    selected
        .iter()
        .filter_map(|id| plan.node(id))
        .flat_map(|node| node.needs.iter())
        .filter(|need| !selected.contains(*need))
        .cloned()
        .collect()
}

/// `--only` in a shared run (`--run-id`): every outside predecessor must have succeeded in
/// that run (`stored`: its node records), not in whichever run last ran it.
pub fn only_in_run(
    plan: &Plan,
    run: &str,
    stored: &BTreeMap<String, NodeRecord>,
    names: &[String],
) -> Result<BTreeSet<String>, RunError> {
    let selected = only_selected(plan, names)?;
    for need in outside_needs(plan, &selected) {
        let succeeded = stored
            .get(&need)
            .is_some_and(|record| record.status == NodeStatus::Succeeded);
        if !succeeded {
            return Err(RunError::NeedNotSucceededInRun {
                need,
                run: run.to_string(),
            });
        }
    }
    Ok(selected)
}

/// The selected set for `--only`, and the records of their outside predecessors, each taken
/// from the newest earlier run of this pipeline where it succeeded.
pub fn only(
    plan: &Plan,
    store: &Store,
    names: &[String],
) -> Result<(BTreeSet<String>, BTreeMap<String, NodeRecord>), RunError> {
    let selected = only_selected(plan, names)?;
    let outside = outside_needs(plan, &selected);
    let mut reused = BTreeMap::new();
    let earlier: Vec<_> = list_runs(store)
        .into_iter()
        .filter_map(|run| run.load_state().ok().flatten())
        .filter(|state| state.pipeline == plan.pipeline)
        .collect();
    for need in outside {
        let found = earlier.iter().find_map(|state| {
            let record = state.nodes.get(&need)?;
            (record.status == NodeStatus::Succeeded).then(|| {
                let mut record = record.clone();
                record.reused_from =
                    Some(record.reused_from.unwrap_or_else(|| state.run_id.clone()));
                record
            })
        });
        match found {
            Some(record) => {
                reused.insert(need, record);
            }
            None => {
                return Err(RunError::NeedNeverSucceeded {
                    need,
                    state: store.describe(),
                });
            }
        }
    }
    Ok((selected, reused))
}
