//! Store: the one seam through which `run`, `deliver` and `audit` reach shared state — runs,
//! approvals and delivery records, the ledger, locks, the audit chain — and the artifact store.
//!
//! A [`Store`] is built once at the command-line edge ([`Location`]) and passed down; phases
//! never see a path or a query. Backends: [`fs`] (the `.pipe/` directory), [`pg`] (PostgreSQL,
//! shared by many agents) and [`mem`] (tests).
//! Writers of the ledger hold the environment's lock: [`StateStore::write_ledger`] takes the
//! [`Lease`] that [`Store::lock`] returned, so the compiler enforces it.

#[cfg(test)]
pub(crate) mod conformance;
pub mod fs;
mod fs_lock;
pub mod ledger;
mod location;
pub mod lock;
pub mod mem;
pub mod pg;
pub mod s3;
mod shared_run;

pub use ledger::{LedgerDoc, Release, ReleaseStatus, RollbackTarget};
pub use location::{ArtifactLocation, Location};
pub use lock::{Lease, LeaseLost, LockError, LockHolder, LockRequest};
pub use shared_run::{ApprovalRecord, RunCreated, RunHeader};

use crate::audit::{AuditLog, AuditRecord, AuditSink, VerifyError, VerifySummary};
use crate::run::artifact::{
    ArtifactRecord, ArtifactStore, Provenance, Stored, VerifyError as ArtifactVerifyError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A document kept per run. The bytes are the JSON the runner and the delivery engine write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunDoc {
    /// The plan the run executes (`pipe.plan/v1`).
    Plan,
    /// Every node's status, result and message.
    State,
    /// One promote's delivery record: approvals granted, rollback target, samples, decisions.
    Delivery(String),
}

impl fmt::Display for RunDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunDoc::Plan => f.write_str("plan"),
            RunDoc::State => f.write_str("state"),
            RunDoc::Delivery(environment) => write!(f, "delivery record of {environment}"),
        }
    }
}

/// Why a state operation failed. Every variant names the operation and what it touched.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {what}: {source}")]
    Io {
        action: &'static str,
        what: String,
        source: std::io::Error,
    },
    #[error("{what} is not valid JSON: {reason}")]
    Corrupt { what: String, reason: String },
    /// A stored document that parses but cannot be used (`what` names where it is).
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error(
        "refusing to write the ledger of {environment}: the lock lease (token {token}) is not \
         the current holder's"
    )]
    StaleLease { environment: String, token: u64 },
    #[error("{0}")]
    Refused(String),
    /// The database refused or failed an operation (`what` names it and the server, never a
    /// password).
    #[error("cannot {action} {what}: {reason}")]
    Database {
        action: &'static str,
        what: String,
        reason: String,
    },
    /// The audit chain cannot be opened or appended to (the message names the log).
    #[error("{0}")]
    Audit(std::io::Error),
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        what: impl fmt::Display,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            action,
            what: what.to_string(),
            source,
        }
    }
}

/// Shared state of one project, whatever holds it. `Send + Sync`: a backend that talks to a
/// server keeps its connection behind these calls; each call is one transaction.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Where the state lives, for messages (`the state directory /x/.pipe`).
    fn describe(&self) -> String;
    /// `None` when the run has no such document.
    fn read_run_doc(&self, run: &str, doc: &RunDoc) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the document whole (a crash leaves the old or the new one).
    fn write_run_doc(&self, run: &str, doc: &RunDoc, bytes: &[u8]) -> Result<(), StoreError>;
    /// Where a run's document lives, for messages.
    fn describe_run_doc(&self, run: &str, doc: &RunDoc) -> String;
    /// Every run id, in any order.
    fn run_ids(&self) -> Result<Vec<String>, StoreError>;
    /// `None` when the environment has never had a release.
    fn read_ledger(
        &self,
        pipeline: &str,
        environment: &str,
    ) -> Result<Option<LedgerDoc>, StoreError>;
    /// Replaces the ledger of `doc`'s environment, refused unless `lease` holds its lock.
    fn write_ledger(&self, lease: &Lease, doc: &LedgerDoc) -> Result<(), StoreError>;
    /// The environments with a ledger for `pipeline`, sorted.
    fn ledger_environments(&self, pipeline: &str) -> Result<Vec<String>, StoreError>;
    /// Every digest any ledger references, whatever its status.
    fn referenced_digests(&self) -> Result<BTreeSet<String>, StoreError>;
    /// Takes an environment's lock, waiting up to the request's timeout.
    fn lock(
        &self,
        request: &LockRequest,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Lease, LockError>;
    /// Who holds (or last held) the lock, if anyone said so.
    fn lock_holder(&self, pipeline: &str, environment: &str) -> Option<LockHolder>;
    /// The audit chain, opened for appending (verified once here).
    fn open_audit(&self) -> Result<Arc<dyn AuditSink>, StoreError>;
    /// The whole audit chain, `None` when none was ever written.
    fn read_audit(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Where the audit chain lives, for messages.
    fn describe_audit(&self) -> String;
    /// Keeps an evidence document (`kind`: `drills`) under `name`; returns where it went.
    fn write_evidence(&self, kind: &str, name: &str, bytes: &[u8]) -> Result<String, StoreError>;

    /// Creates the run with `header` unless it exists (one atomic create-if-absent); an
    /// existing run's header is returned untouched, so two agents starting one run id agree.
    fn create_run(&self, run: &str, header: &RunHeader) -> Result<RunCreated, StoreError>;
    /// The run's header; `None` for a run created before headers existed, or no such run.
    fn read_run_header(&self, run: &str) -> Result<Option<RunHeader>, StoreError>;
    /// Replaces one node's record (its JSON) in the run, touching no other node: agents running
    /// different nodes of one run never lose each other's updates.
    fn write_node(&self, run: &str, node: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Every node record written with [`StateStore::write_node`], by node id.
    fn read_nodes(&self, run: &str) -> Result<BTreeMap<String, Vec<u8>>, StoreError>;
    /// Records one approval of the promote of `environment` in `run`. Refused
    /// ([`StoreError::Refused`]) when that approver already has an approval there: quorum counts
    /// distinct people. The caller checks the policy first.
    fn record_approval(
        &self,
        run: &str,
        environment: &str,
        approval: &ApprovalRecord,
    ) -> Result<(), StoreError>;
    /// Every approval recorded for (run, environment), consumed or not, in recording order.
    fn approvals(&self, run: &str, environment: &str) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Marks every unconsumed approval of (run, environment) consumed by `by` in one step and
    /// returns them (marked): two promotes racing for the same approvals never both count one.
    fn consume_approvals(
        &self,
        run: &str,
        environment: &str,
        by: &str,
    ) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Removes everything stored for the run: header, documents, nodes, approvals (`pipe gc`;
    /// the caller has checked the run is finished and holds no lock). Absent: no error.
    fn remove_run(&self, run: &str) -> Result<(), StoreError>;
}

/// Content-addressed storage of built artifacts: objects are written by digest, never
/// overwritten, and re-hashed before every use. A remote store materialises an object into a
/// local read-only copy first; the directory store's objects already are local.
pub trait Artifacts: Send + Sync + fmt::Debug {
    /// Copies `source` in (hashed in the same read), files it read-only under its digest with
    /// its metadata. With a `workspace`, every path must resolve inside it.
    fn put(
        &self,
        name: &str,
        source: &Path,
        provenance: &Provenance,
        workspace: Option<&Path>,
    ) -> std::io::Result<Stored>;
    /// The metadata of a stored artifact, if present.
    fn lookup(&self, digest: &str) -> Option<ArtifactRecord>;
    /// Where the local read-only copy of `digest` is (or would be): what steps are given.
    fn local_path(&self, digest: &str) -> PathBuf;
    /// The local copy of `digest`, re-hashed now: `Ok` only when it holds those bytes.
    fn materialise(&self, digest: &str) -> Result<PathBuf, ArtifactVerifyError>;
    /// Every stored digest (`sha256:HEX`), sorted; quarantined and half-written objects are not
    /// listed.
    fn list(&self) -> std::io::Result<Vec<String>>;
    /// Removes the object of `digest` and its metadata (`pipe gc`: the caller has checked no
    /// ledger references it). Absent: no error. A local copy materialised elsewhere stays.
    fn remove(&self, digest: &str) -> std::io::Result<()>;
}

/// The handle every phase receives: shared state, the artifact store, and the agent's own
/// local files (job logs, `PIPE_TMP`), which are never shared. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    state: Arc<dyn StateStore>,
    artifacts: Arc<dyn Artifacts>,
    local: PathBuf,
}

impl Store {
    /// The `.pipe/`-style directory backend: state, artifacts and local files under `dir`.
    pub fn directory(dir: &Path) -> Store {
        Store {
            state: Arc::new(fs::FsStore::new(dir)),
            artifacts: Arc::new(ArtifactStore::new(&dir.join("artifacts").join("sha256"))),
            local: dir.to_path_buf(),
        }
    }

    /// The in-memory backend; artifacts and local files go under `scratch`.
    pub fn memory(scratch: &Path) -> Store {
        Store::with_state(Arc::new(mem::MemStore::default()), scratch)
    }

    /// Shared state kept by `state`; artifacts and local files under `local`.
    pub fn with_state(state: Arc<dyn StateStore>, local: &Path) -> Store {
        Store {
            state,
            artifacts: Arc::new(ArtifactStore::new(&local.join("artifacts").join("sha256"))),
            local: local.to_path_buf(),
        }
    }

    /// The same state with another artifact store (`--artifacts`): a directory elsewhere, or
    /// a remote store whose local copies go under [`Store::local_dir`].
    pub fn with_artifacts(mut self, artifacts: Arc<dyn Artifacts>) -> Store {
        self.artifacts = artifacts;
        self
    }

    /// The agent's own directory: job logs and the cache of a remote artifact store.
    pub fn local_dir(&self) -> &Path {
        &self.local
    }

    pub fn state(&self) -> &dyn StateStore {
        self.state.as_ref()
    }

    pub fn describe(&self) -> String {
        self.state.describe()
    }

    /// The content-addressed artifact store.
    pub fn artifacts(&self) -> &Arc<dyn Artifacts> {
        &self.artifacts
    }

    /// The agent-local directory of one run: job logs live in `logs/` below it. Local files are
    /// evidence for the agent that ran the job, not shared state.
    pub fn local_run_dir(&self, run: &str) -> PathBuf {
        self.local.join("runs").join(run)
    }

    /// The agent-local directory of one run's job logs.
    pub fn logs_dir(&self, run: &str) -> PathBuf {
        self.local_run_dir(run).join("logs")
    }

    /// Opens the audit chain for appending.
    pub fn audit(&self) -> Result<AuditLog, StoreError> {
        Ok(AuditLog::new(self.state.open_audit()?))
    }

    /// Takes an environment's lock (zero timeout: try once).
    pub fn lock(&self, request: &LockRequest) -> Result<Lease, LockError> {
        self.state.lock(request, &|| false)
    }

    /// [`Store::lock`], giving up as soon as `interrupted` says so (Ctrl-C while waiting).
    pub fn lock_unless(
        &self,
        request: &LockRequest,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Lease, LockError> {
        self.state.lock(request, interrupted)
    }

    /// Checks the whole audit chain; a chain never written is [`VerifyError::Missing`].
    pub fn verify_audit(&self) -> Result<VerifySummary, VerifyError> {
        match self.state.read_audit() {
            Ok(Some(bytes)) => crate::audit::verify_bytes(&bytes),
            Ok(None) => Err(VerifyError::Missing(self.state.describe_audit())),
            Err(error) => Err(VerifyError::Io(std::io::Error::other(error.to_string()))),
        }
    }

    /// The readable records of the audit chain (none when it was never written).
    pub fn audit_records(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let bytes = self.state.read_audit()?.unwrap_or_default();
        Ok(crate::audit::records_of(&bytes))
    }
}
