//! `pipe gc`: which runs and artifacts may go. A run goes only when it is finished and holds
//! no lock; an artifact only when no ledger and no kept run references it.

use crate::run::state::{RunState, RunStatus, list_runs};
use crate::store::{LockRequest, Store, StoreError};
use std::collections::BTreeSet;
use std::time::Duration;

/// Which runs to keep besides the ones still in progress.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// The newest N runs.
    Newest(usize),
    /// Runs started less than this long ago.
    Younger(Duration),
}

/// What a collection removes (or would, in a dry run), and what it kept because it is in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    pub runs: Vec<String>,
    pub artifacts: Vec<String>,
    /// Runs past the limit that stay: `(run, why)`.
    pub in_use: Vec<(String, String)>,
}

/// Decides what to remove; removes nothing.
pub fn plan(store: &Store, keep: Keep) -> Result<Collection, StoreError> {
    let mut collection = Collection::default();
    let mut kept_digests = BTreeSet::new();
    let now = chrono::Utc::now();
    for (index, run) in list_runs(store).into_iter().enumerate() {
        let state = run.load_state().ok().flatten();
        let past_limit = match keep {
            Keep::Newest(count) => index >= count,
            Keep::Younger(age) => state.as_ref().is_some_and(|s| older_than(s, now, age)),
        };
        let busy = past_limit
            .then(|| in_progress(store, run.id(), state.as_ref()))
            .flatten();
        match (past_limit, busy) {
            (true, None) => collection.runs.push(run.id().to_string()),
            (true, Some(why)) => {
                collection.in_use.push((run.id().to_string(), why));
                kept_digests.extend(digests_of(state.as_ref()));
            }
            (false, _) => kept_digests.extend(digests_of(state.as_ref())),
        }
    }
    let referenced = store.state().referenced_digests()?;
    let stored = store
        .artifacts()
        .list()
        .map_err(|e| StoreError::io("list", "the artifact store", e))?;
    collection.artifacts = stored
        .into_iter()
        .filter(|digest| !referenced.contains(digest) && !kept_digests.contains(digest))
        .collect();
    Ok(collection)
}

/// Removes what `plan` chose.
pub fn remove(store: &Store, collection: &Collection) -> Result<(), StoreError> {
    for run in &collection.runs {
        store.state().remove_run(run)?;
        let local = store.local_run_dir(run);
        if local.exists() {
            std::fs::remove_dir_all(&local)
                .map_err(|e| StoreError::io("remove", local.display(), e))?;
        }
    }
    for digest in &collection.artifacts {
        store
            .artifacts()
            .remove(digest)
            .map_err(|e| StoreError::io("remove artifact", digest, e))?;
    }
    Ok(())
}

fn older_than(state: &RunState, now: chrono::DateTime<chrono::Utc>, age: Duration) -> bool {
    let Ok(started) = chrono::DateTime::parse_from_rfc3339(&state.started_at) else {
        return false;
    };
    let elapsed = now
        .signed_duration_since(started)
        .to_std()
        .unwrap_or_default();
    elapsed >= age
}

/// Why a run must stay, if it must: no readable state, still running, or an environment's lock
/// names it.
fn in_progress(store: &Store, run: &str, state: Option<&RunState>) -> Option<String> {
    let Some(state) = state else {
        return Some("no readable state (maybe still starting)".to_string());
    };
    if state.status == RunStatus::Running {
        return Some("still running".to_string());
    }
    let environments = state.delivery.keys().cloned().chain(
        state
            .nodes
            .keys()
            .filter_map(|id| id.split_once('.').map(|(env, _)| env.to_string())),
    );
    for environment in environments.collect::<BTreeSet<_>>() {
        let holder = store.state().lock_holder(&state.pipeline, &environment);
        // The holder record may outlive the lock: only a lock we cannot take is held.
        let request = LockRequest::new(&state.pipeline, &environment, "gc", Duration::ZERO);
        if holder.is_some_and(|h| h.run == run) && store.lock(&request).is_err() {
            return Some(format!("holds the lock of {environment}"));
        }
    }
    None
}

fn digests_of(state: Option<&RunState>) -> Vec<String> {
    state
        .map(|s| {
            s.nodes
                .values()
                .flat_map(|r| r.artifacts.values().cloned())
                .collect()
        })
        .unwrap_or_default()
}
