//! Ledger records: what the store keeps per pipeline and environment — every release with its
//! status (`pipe.ledger/v1`). The decisions made from them live in `deliver::ledger`.
//!
//! A release names its artifact by digest only; the artifact store turns a digest into a
//! verified local copy. Ledgers written before that still carry a `path` per release: it is
//! ignored on load and dropped on the next write.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const LEDGER_SCHEMA: &str = "pipe.ledger/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Started and not finished: a crash here leaves the environment in an unknown state.
    Deploying,
    /// Passed deploy, smoke and watch: a valid rollback target.
    Stable,
    /// Failed and replaced by the previous stable release (or rolled away from by hand).
    RolledBack,
    /// Failed and not (verifiably) rolled back.
    Failed,
    /// Being rolled away from (to `rollback_to`): set before the rollback touches anything, so
    /// a crash mid-rollback leaves the environment visibly unknown and the target recorded.
    RollingBack,
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ReleaseStatus::Deploying => "deploying",
            ReleaseStatus::Stable => "stable",
            ReleaseStatus::RolledBack => "rolled_back",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::RollingBack => "rolling_back",
        };
        f.write_str(text)
    }
}

/// One deployment of one immutable artifact to the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub version: String,
    /// The artifact's name in the pipeline (`api_bin`).
    pub artifact: String,
    /// Content digest of the stored artifact (`sha256:HEX`): how the artifact store finds it.
    pub digest: String,
    pub run: String,
    /// RFC 3339.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub status: ReleaseStatus,
    /// Why this entry exists when it is not a plain promote, e.g. "redeployed by rollback".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// While `rolling_back`: the release the environment is being rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<RollbackTarget>,
}

/// The target of a rollback in progress, named by version and digest (the release itself is
/// the newest ledger entry with that digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackTarget {
    pub version: String,
    pub digest: String,
    /// The run (or `pipe rollback` invocation) that started the rollback.
    pub by_run: String,
    pub since: String,
}

/// The ledger of one environment of one pipeline, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerDoc {
    pub schema: String,
    pub pipeline: String,
    pub environment: String,
    pub releases: Vec<Release>,
}

impl LedgerDoc {
    /// The ledger of an environment that has never had a release.
    pub fn empty(pipeline: &str, environment: &str) -> LedgerDoc {
        LedgerDoc {
            schema: LEDGER_SCHEMA.to_string(),
            pipeline: pipeline.to_string(),
            environment: environment.to_string(),
            releases: Vec::new(),
        }
    }
}
