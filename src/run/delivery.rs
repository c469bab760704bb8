//! The seam between the scheduler and delivery: a promote group (`ENV.approval` … `ENV.watch`)
//! is handed whole to a [`DeliveryExecutor`] when its first node becomes ready.
//!
//! The scheduler never runs promote nodes as jobs. It evaluates the promote's `when` first
//! (skipping the group when false), then calls [`DeliveryExecutor::run_promote`] with a
//! [`PromoteRequest`] holding everything delivery needs, and maps the [`PromoteOutcome`] to node
//! states and the run status (the worst wins, see `RunStatus`). Nodes the executor did not report as
//! finished get a state from the outcome. Without an executor the group fails with a clear
//! "no delivery executor" message.

use crate::compile::plan::Plan;
use crate::run::eval::Bindings;
use crate::run::interrupt::Interrupt;
use crate::run::process::StepRunner;
use crate::run::state::{NodeStatus, RunStatus};
use crate::store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How a whole promote ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoteOutcome {
    Succeeded,
    /// Deploy, smoke or watch failed; `rolled_back` when the rollback ran and was verified.
    Failed {
        rolled_back: bool,
    },
    /// The rollback or its verification failed: environment state unknown (exit 4).
    RollbackFailed,
    /// Stopped for an approval; `pipe resume RUN --approve ENV` continues (exit 3).
    AwaitingApproval,
    Interrupted,
}

/// Everything one promote needs. Owned, so the executor's future can live in its own task.
pub struct PromoteRequest {
    pub plan: Arc<Plan>,
    pub environment: String,
    pub run_id: String,
    /// Shared state and the artifact store.
    pub store: Store,
    pub pipeline_dir: PathBuf,
    /// Runs deploy/smoke/rollback/migrate blocks and probes with the run's clean environment,
    /// redaction, log files, timeouts, retries and interrupts.
    pub steps: Arc<StepRunner>,
    /// Values of the secrets the promote declares (name → value).
    pub secrets: BTreeMap<String, String>,
    /// Pipeline-level `env`, already evaluated.
    pub pipeline_env: BTreeMap<String, String>,
    /// Artifact name → `sha256:HEX` as produced in this run (or reused by `--only`).
    pub artifact_digests: BTreeMap<String, String>,
    /// `git.*`, `date`, `run.id`, `pipeline.*` and every finished job's results. Delivery adds
    /// `env.*`, `artifact.*`, `previous.*`, `rollout.*` with [`Bindings::set`].
    pub bindings: Bindings,
    /// `--approve ENV` values.
    pub approvals: Vec<String>,
    /// `--approver` / `$PIPE_APPROVER`.
    pub approver: Option<String>,
    /// Who started the run (kept across resumes).
    pub initiator: String,
    pub lock_timeout: Duration,
    pub interrupt: Interrupt,
    pub reporter: PromoteReporter,
    /// What this executor recorded for the environment earlier in the run (before a resume).
    pub stored: Option<serde_json::Value>,
}

/// Delivery's engine. Implementations are shared across the run (`Arc<dyn DeliveryExecutor>`).
pub trait DeliveryExecutor: Send + Sync {
    fn run_promote(
        &self,
        request: PromoteRequest,
    ) -> Pin<Box<dyn Future<Output = PromoteOutcome> + Send + '_>>;

    /// What [`DeliveryExecutor::run_promote`] would bind and which rollback target it would
    /// record, without acting: the dry run prints it. An executor that cannot tell says so.
    fn preview(&self, request: &PreviewRequest<'_>) -> PromotePreview {
        PromotePreview {
            bindings: request.bindings.clone(),
            rollback_target: TargetPreview::Unreadable(
                "this delivery executor does not preview".to_string(),
            ),
        }
    }
}

/// What a preview of one promote reads: nothing is written or created.
pub struct PreviewRequest<'a> {
    pub plan: &'a Plan,
    pub environment: &'a str,
    pub store: &'a Store,
    /// Where the artifact's path is resolved, as the build job would write it.
    pub pipeline_dir: &'a Path,
    pub bindings: &'a Bindings,
}

/// A promote as the engine would start it.
#[derive(Debug, Clone)]
pub struct PromotePreview {
    /// The run's bindings plus what delivery adds before any step (`env.*`, and `previous.*`
    /// of the expected rollback target).
    pub bindings: Bindings,
    pub rollback_target: TargetPreview,
}

/// A release as a preview names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseSummary {
    pub version: String,
    pub digest: String,
    pub run: String,
}

/// The rollback target the engine would record: the newest stable release whose digest
/// differs from the one being deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPreview {
    /// Decided for the artifact as it is on disk now (`digest`); `None`: no such release.
    ForBuild {
        digest: String,
        target: Option<ReleaseSummary>,
    },
    /// The artifact is not built yet, so its digest is unknown: the target is `if_changed`,
    /// or `if_unchanged` when the build reproduces the current stable release's bytes.
    Unbuilt {
        if_changed: Option<ReleaseSummary>,
        if_unchanged: Option<ReleaseSummary>,
    },
    /// The ledger cannot be read (or the executor cannot tell).
    Unreadable(String),
}

impl TargetPreview {
    /// The target the preview expects: for the build on disk, else for a changed build.
    pub fn expected(&self) -> Option<&ReleaseSummary> {
        match self {
            TargetPreview::ForBuild { target, .. } => target.as_ref(),
            TargetPreview::Unbuilt { if_changed, .. } => if_changed.as_ref(),
            TargetPreview::Unreadable(_) => None,
        }
    }

    /// One line for people: the target, and what it was decided for.
    pub fn describe(&self) -> String {
        const RULE: &str = "the newest stable release whose digest differs from this build's";
        let name = |r: &ReleaseSummary| format!("{} ({}, run {})", r.version, r.digest, r.run);
        match self {
            TargetPreview::ForBuild {
                digest,
                target: Some(target),
            } => format!(
                "{}, {RULE} (the artifact as built now: {digest})",
                name(target)
            ),
            TargetPreview::ForBuild {
                digest,
                target: None,
            } => format!(
                "none: no stable release other than this build's ({digest}) in the ledger (a rollback would be skipped)"
            ),
            TargetPreview::Unbuilt {
                if_changed: None, ..
            } => "none: no stable release in the ledger yet (a rollback would be skipped)".into(),
            TargetPreview::Unbuilt {
                if_changed: Some(changed),
                if_unchanged,
            } => {
                let unchanged = if_unchanged
                    .as_ref()
                    .map_or("none (a rollback would be skipped)".to_string(), name);
                format!(
                    "{RULE} (not built yet): {}, or {unchanged} if the build is unchanged",
                    name(changed)
                )
            }
            TargetPreview::Unreadable(why) => format!("unknown: the ledger cannot be read ({why})"),
        }
    }
}

/// One report from delivery to the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryReport {
    /// A promote node changed state (`Running`, `Succeeded`, `Failed`, `Skipped`,
    /// `AwaitingApproval`); the message is redacted before it is shown or saved.
    Node {
        node: String,
        status: NodeStatus,
        message: Option<String>,
    },
    /// Replaces the environment's record in the run state (saved at once; given back as
    /// `PromoteRequest::stored` on resume).
    Record {
        environment: String,
        value: serde_json::Value,
    },
}

/// The channel through which delivery reports transitions; each is saved to the run state.
#[derive(Debug, Clone)]
pub struct PromoteReporter {
    environment: String,
    sender: mpsc::UnboundedSender<DeliveryReport>,
}

impl PromoteReporter {
    /// A reporter and the receiving end (the scheduler's; tests may hold their own).
    pub fn channel(
        environment: &str,
    ) -> (PromoteReporter, mpsc::UnboundedReceiver<DeliveryReport>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            PromoteReporter {
                environment: environment.to_string(),
                sender,
            },
            receiver,
        )
    }

    pub(crate) fn with_sender(
        environment: &str,
        sender: mpsc::UnboundedSender<DeliveryReport>,
    ) -> Self {
        PromoteReporter {
            environment: environment.to_string(),
            sender,
        }
    }

    pub fn node(&self, node: &str, status: NodeStatus, message: Option<String>) {
        let report = DeliveryReport::Node {
            node: node.to_string(),
            status,
            message,
        };
        // The receiver lives as long as the run; a send error means the run is over.
        let _ = self.sender.send(report);
    }

    pub fn record(&self, value: serde_json::Value) {
        let report = DeliveryReport::Record {
            environment: self.environment.clone(),
            value,
        };
        let _ = self.sender.send(report);
    }
}

impl PromoteOutcome {
    /// What this outcome makes of the run: the run ends with the worst of them.
    pub fn run_status(self) -> RunStatus {
        match self {
            PromoteOutcome::Succeeded => RunStatus::Succeeded,
            PromoteOutcome::Failed { .. } => RunStatus::Failed,
            PromoteOutcome::AwaitingApproval => RunStatus::AwaitingApproval,
            PromoteOutcome::RollbackFailed => RunStatus::RollbackFailed,
            PromoteOutcome::Interrupted => RunStatus::Interrupted,
        }
    }
}
