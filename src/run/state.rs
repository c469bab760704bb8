//! Run state: each node's status, result and message, saved through the store after every
//! transition (run-level fields as one document, each changed node as its own record) so
//! `resume` can continue after a crash or `kill -9`, and agents sharing a run keep each other's.

use crate::compile::plan::{Literal, Plan};
use crate::exit;
use crate::store::{RunDoc, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub const STATE_SCHEMA: &str = "pipe.state/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// Not part of this run (`--only`, `--until`).
    Excluded,
    AwaitingApproval,
    Interrupted,
}

impl NodeStatus {
    pub fn word(self) -> &'static str {
        match self {
            NodeStatus::Pending => "pending",
            NodeStatus::Running => "running",
            NodeStatus::Succeeded => "succeeded",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Excluded => "excluded",
            NodeStatus::AwaitingApproval => "awaiting approval",
            NodeStatus::Interrupted => "interrupted",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, NodeStatus::Pending | NodeStatus::Running)
    }
}

/// How a run stands, ordered by severity: a run ends with the worst status any of its parts
/// reached (`max`). A rollback cut short leaves an environment unknown, which outranks an
/// interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    AwaitingApproval,
    Interrupted,
    RollbackFailed,
}

impl RunStatus {
    /// The process exit code: the one place a status becomes one.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Succeeded => exit::SUCCESS,
            RunStatus::Failed | RunStatus::Running => exit::FAILED,
            RunStatus::AwaitingApproval => exit::AWAITING_APPROVAL,
            RunStatus::RollbackFailed => exit::ROLLBACK_FAILED,
            RunStatus::Interrupted => exit::INTERRUPTED,
        }
    }
}

/// One node's record. Every string in it has been through the redactor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub status: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Literal>,
    /// Outputs that held a secret: stored as `***`, so no command may use them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub redacted_outputs: BTreeSet<String>,
    /// Artifact name → `sha256:HEX` of what this node produced.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
    /// Set when the result was taken from an earlier run (`--only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl NodeRecord {
    pub fn pending() -> NodeRecord {
        NodeRecord {
            status: NodeStatus::Pending,
            message: None,
            started_at: None,
            duration_ms: None,
            exit_code: None,
            attempts: 0,
            outputs: BTreeMap::new(),
            redacted_outputs: BTreeSet::new(),
            artifacts: BTreeMap::new(),
            reused_from: None,
        }
    }
}

/// A gate override granted on the command line, kept with the run for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideRecord {
    pub gate: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    pub actor: String,
    /// Whether the gate actually failed and the override was used.
    #[serde(default)]
    pub used: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub schema: String,
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub initiator: String,
    /// Where the steps run (the pipeline file's directory), absolute.
    #[serde(default)]
    pub pipeline_dir: String,
    /// The pipeline source, absolute, when the run started from a `.pipe` file (for the
    /// "source changed since" warning of `resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
    /// `pipeline.version`, evaluated once at run start so a resume keeps it.
    #[serde(default)]
    pub version: String,
    /// The nodes this run was asked to run (`--only`/`--until`); `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Vec<String>>,
    /// Also stored per node ([`StateStore::write_node`](crate::store::StateStore::write_node)),
    /// which a load lays over these: a state document from before per-node records still loads.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<OverrideRecord>,
    /// Started with `--run-id`: agents may share the run, so each node's record is also stored
    /// on its own (one write per changed node, which a run of one agent does without).
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared: bool,
    /// Delivery's own records, by environment (approvals so far, watch samples, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delivery: BTreeMap<String, serde_json::Value>,
}

impl RunState {
    pub fn new(plan: &Plan, run_id: &str, initiator: &str, version: &str) -> RunState {
        RunState {
            schema: STATE_SCHEMA.to_string(),
            run_id: run_id.to_string(),
            pipeline: plan.pipeline.clone(),
            status: RunStatus::Running,
            started_at: now_rfc3339(),
            finished_at: None,
            initiator: initiator.to_string(),
            pipeline_dir: String::new(),
            source_path: None,
            version: version.to_string(),
            selection: None,
            nodes: plan
                .nodes
                .iter()
                .map(|n| (n.id.clone(), NodeRecord::pending()))
                .collect(),
            overrides: Vec::new(),
            shared: false,
            delivery: BTreeMap::new(),
        }
    }

    pub fn status_of(&self, node: &str) -> NodeStatus {
        self.nodes
            .get(node)
            .map_or(NodeStatus::Pending, |r| r.status)
    }
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One run in the store: its plan and state (shared), and its job logs (agent-local files,
/// `logs/` under [`Store::local_run_dir`]).
#[derive(Debug, Clone)]
pub struct RunDir {
    store: Store,
    id: String,
    /// The bytes of each node record as last written or loaded: only changed nodes are written.
    written: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    /// Nodes this agent never writes: in a shared run (`--run-id`), the ones another agent owns.
    foreign: Arc<BTreeSet<String>>,
    /// Whether node records are stored one by one (a shared run) or only in the run's document.
    per_node: bool,
}

/// A run state serialised for the store: the run-level document and each node's record.
pub struct StateSnapshot {
    run: Vec<u8>,
    nodes: BTreeMap<String, Vec<u8>>,
}

impl RunDir {
    pub fn new(store: &Store, run_id: &str) -> RunDir {
        RunDir {
            store: store.clone(),
            id: run_id.to_string(),
            written: Arc::default(),
            foreign: Arc::default(),
            per_node: false,
        }
    }

    /// This run as one agent of several: node records are stored one by one, and the
    /// `foreign` nodes (run by other agents) are never written from here, so their records are
    /// never overwritten by this agent's view.
    pub fn sharing(self, foreign: BTreeSet<String>) -> RunDir {
        RunDir {
            foreign: Arc::new(foreign),
            per_node: true,
            ..self
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The agent-local directory of this run (its logs), for messages.
    pub fn local_dir(&self) -> PathBuf {
        self.store.local_run_dir(&self.id)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.store.logs_dir(&self.id)
    }

    pub fn save_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let state = self.store.state();
        state.write_run_doc(&self.id, &RunDoc::Plan, plan.to_json().as_bytes())
    }

    pub fn save_state(&self, state: &RunState) -> Result<(), StoreError> {
        let snapshot = self
            .state_json(state)
            .map_err(|e| StoreError::io("write", "the run state", e))?;
        self.save_state_json(&snapshot)
    }

    /// Stores state serialised by [`RunDir::state_json`]: each node whose record changed since
    /// this agent last wrote or loaded it, then the run-level document.
    pub fn save_state_json(&self, snapshot: &StateSnapshot) -> Result<(), StoreError> {
        let state = self.store.state();
        let per_node = if self.per_node {
            &snapshot.nodes
        } else {
            &BTreeMap::new()
        };
        for (node, bytes) in per_node {
            if self.foreign.contains(node) {
                continue;
            }
            let unchanged = lock_cache(&self.written).get(node) == Some(bytes);
            if !unchanged {
                state.write_node(&self.id, node, bytes)?;
                lock_cache(&self.written).insert(node.clone(), bytes.clone());
            }
        }
        state.write_run_doc(&self.id, &RunDoc::State, &snapshot.run)
    }

    /// The state serialised for the store (cheap enough to do under the scheduler's lock).
    /// The run-level document still holds every node as this agent sees it, for readers of
    /// `state.json`; in a shared run the per-node records are what a load trusts.
    pub fn state_json(&self, state: &RunState) -> io::Result<StateSnapshot> {
        let mut run = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        run.push(b'\n');
        let per_node = if self.per_node {
            &state.nodes
        } else {
            &BTreeMap::new()
        };
        // A node's pending/running steps are not stored on their own until it ends (or it has
        // a stored record to replace): a resume re-runs them either way, and it saves writes.
        let written = lock_cache(&self.written);
        let nodes = per_node
            .iter()
            .filter(|(id, record)| record.status.is_terminal() || written.contains_key(*id))
            .map(|(id, record)| serde_json::to_vec(record).map(|bytes| (id.clone(), bytes)))
            .collect::<Result<_, _>>()
            .map_err(io::Error::other)?;
        Ok(StateSnapshot { run, nodes })
    }

    /// The stored plan; `Ok(None)` when the run has none.
    pub fn load_plan(&self) -> Result<Option<Plan>, StoreError> {
        let Some(bytes) = self.store.state().read_run_doc(&self.id, &RunDoc::Plan)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        Plan::from_json(&text)
            .map(Some)
            .map_err(|reason| self.corrupt(&RunDoc::Plan, reason.to_string()))
    }

    /// The stored state: the run-level document with every node record written since laid
    /// over the nodes it holds itself (a state saved whole by an older `pipe`). `Ok(None)`
    /// when the run has no state document.
    pub fn load_state(&self) -> Result<Option<RunState>, StoreError> {
        let Some(bytes) = self.store.state().read_run_doc(&self.id, &RunDoc::State)? else {
            return Ok(None);
        };
        let mut state: RunState = serde_json::from_slice(&bytes)
            .map_err(|reason| self.corrupt(&RunDoc::State, reason.to_string()))?;
        state.nodes.extend(self.load_nodes()?);
        Ok(Some(state))
    }

    /// The node records stored one by one, remembered as this agent's last written bytes.
    pub fn load_nodes(&self) -> Result<BTreeMap<String, NodeRecord>, StoreError> {
        let stored = self.store.state().read_nodes(&self.id)?;
        let mut nodes = BTreeMap::new();
        for (node, bytes) in stored {
            let record = serde_json::from_slice(&bytes).map_err(|reason| StoreError::Invalid {
                what: format!(
                    "the record of node `{node}` in {}",
                    self.store
                        .state()
                        .describe_run_doc(&self.id, &RunDoc::State)
                ),
                reason: reason.to_string(),
            })?;
            lock_cache(&self.written).insert(node.clone(), bytes);
            nodes.insert(node, record);
        }
        Ok(nodes)
    }

    fn corrupt(&self, doc: &RunDoc, reason: String) -> StoreError {
        StoreError::Invalid {
            what: self.store.state().describe_run_doc(&self.id, doc),
            reason,
        }
    }
}

fn lock_cache(
    cache: &Mutex<BTreeMap<String, Vec<u8>>>,
) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
    match cache.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A node id as a file name: ids of plain name characters stay as they are (`test.log`);
/// others (`test[linux,stable]`) become their safe characters plus a short hash of the id, so
/// two ids never share a file: `test-linux-stable-1a2b3c4d.log`.
pub fn log_file_name(node: &str) -> String {
    let is_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if !node.is_empty() && node.chars().all(is_safe) && !node.starts_with('.') {
        return format!("{node}.log");
    }
    let mut readable = String::new();
    for c in node.chars() {
        if is_safe(c) {
            readable.push(c);
        } else if !readable.ends_with('-') {
            readable.push('-');
        }
    }
    let readable = readable.trim_matches(|c| c == '-' || c == '.');
    let hash = hex::encode(sha2::Sha256::digest(node.as_bytes()));
    format!("{readable}-{}.log", &hash[..8])
}

/// A run id: `YYYYMMDD-HHMMSS-mmm-XXXX` (UTC, milliseconds), sortable by start time; XXXX from
/// the pid and the clock so two runs started in the same millisecond still differ.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let nanos = now.timestamp_nanos_opt().unwrap_or_default();
    let seed = format!("{}-{nanos}", std::process::id());
    let suffix = hex::encode(sha2::Sha256::digest(seed.as_bytes()));
    format!("{}-{}", now.format("%Y%m%d-%H%M%S-%3f"), &suffix[..4])
}

/// Every run of the store, newest first (run ids sort by start time).
pub fn list_runs(store: &Store) -> Vec<RunDir> {
    let mut ids = store.state().run_ids().unwrap_or_default();
    ids.sort_by(|a, b| b.cmp(a));
    ids.iter().map(|id| RunDir::new(store, id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_decides_the_exit_code() {
        use RunStatus::*;
        let worst = |parts: &[RunStatus]| parts.iter().fold(Succeeded, |a, b| a.max(*b));
        assert_eq!(worst(&[]).exit_code(), 0);
        assert_eq!(worst(&[Failed, Succeeded]).exit_code(), 1);
        assert_eq!(worst(&[Failed, AwaitingApproval]).exit_code(), 3);
        assert_eq!(worst(&[AwaitingApproval, Interrupted]).exit_code(), 130);
        // A rollback cut short by the interrupt leaves the environment unknown.
        assert_eq!(worst(&[Interrupted, RollbackFailed]).exit_code(), 4);
        assert_eq!(Running.exit_code(), 1);
    }

    #[test]
    fn log_file_names_are_safe_and_distinct() {
        assert_eq!(log_file_name("test"), "test.log");
        let matrix = log_file_name("test[linux,stable]");
        assert!(matrix.starts_with("test-linux-stable-") && matrix.ends_with(".log"));
        assert_ne!(log_file_name("a[b,c]"), log_file_name("a[b.c]"));
        assert!(!log_file_name("../x").contains('/'));
        assert!(!log_file_name("..").starts_with('.'));
    }

    #[test]
    fn run_ids_sort_by_time_and_differ() {
        let first = new_run_id();
        let second = new_run_id();
        assert_eq!(first.len(), "20260101-000000-000-abcd".len());
        assert_ne!(first, second);
    }
}
