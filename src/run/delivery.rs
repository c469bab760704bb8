//! The seam between the scheduler and delivery: a promote group (`ENV.approval` … `ENV.watch`)
//! is handed whole to a [`DeliveryExecutor`] when its first node becomes ready.
//!
//! The scheduler never runs promote nodes as jobs. It evaluates the promote's `when` first
//! (skipping the group when false), then calls [`DeliveryExecutor::run_promote`] with a
//! [`PromoteRequest`] holding everything delivery needs, and maps the [`PromoteOutcome`] to node
//! states and the exit code (worst wins: 130 > 4 > 3 > 1). Nodes the executor did not report as
//! finished get a state from the outcome. Without an executor the group fails with a clear
//! "no delivery executor" message.

use crate::compile::plan::Plan;
use crate::run::artifact::ArtifactStore;
use crate::run::eval::Bindings;
use crate::run::interrupt::Interrupt;
use crate::run::process::StepRunner;
use crate::run::state::NodeStatus;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
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
    pub state_dir: PathBuf,
    pub pipeline_dir: PathBuf,
    /// Runs deploy/smoke/rollback/migrate blocks and probes with the run's clean environment,
    /// redaction, log files, timeouts, retries and interrupts.
    pub steps: Arc<StepRunner>,
    /// Values of the secrets the promote declares (name → value).
    pub secrets: BTreeMap<String, String>,
    /// Pipeline-level `env`, already evaluated.
    pub pipeline_env: BTreeMap<String, String>,
    pub artifacts: ArtifactStore,
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

/// Exit-code severity of an outcome: the run exits with the worst.
pub fn outcome_exit_code(outcome: PromoteOutcome) -> i32 {
    match outcome {
        PromoteOutcome::Succeeded => 0,
        PromoteOutcome::Failed { .. } => 1,
        PromoteOutcome::AwaitingApproval => 3,
        PromoteOutcome::RollbackFailed => 4,
        PromoteOutcome::Interrupted => 130,
    }
}
