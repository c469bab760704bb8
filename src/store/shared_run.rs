//! The records agents share about one run besides its documents: the header every agent of a
//! run must agree on (created once), and the approvals recorded for it by `pipe approve`.

use serde::{Deserialize, Serialize};

/// What a run is, fixed when it is first created: an agent joining the run (`--run-id`) must
/// bring the same plan (by digest). Written create-if-absent, never replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHeader {
    /// `sha256:HEX` of the plan's JSON.
    pub plan_digest: String,
    pub pipeline: String,
    /// Who started the run (the self-approval rule is checked against this name).
    pub initiator: String,
    /// RFC 3339.
    pub started_at: String,
}

/// The answer of [`super::StateStore::create_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCreated {
    /// This call created the run with the given header.
    Created,
    /// The run already existed: its header as first written (the caller compares digests).
    Exists(RunHeader),
}

/// One approval of one promote (run, environment), recorded before or during the promote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub approver: String,
    /// Where the approval came from (`cli`, `terminal`, a ticket URL, …).
    pub source: String,
    /// `sha256:HEX` of the evidence file given with the approval, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_digest: Option<String>,
    /// RFC 3339.
    pub at: String,
    /// The promote attempt that counted this approval; `None` while unconsumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_by: Option<String>,
}
