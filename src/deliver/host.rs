//! The delivery engine's view of the outside world: running a step block or a probe as a
//! process, interrupts, node transitions and the terminal. The runner adapts its own step
//! runner to [`PromoteHost`]; tests use a fake, so the promote flow is tested without processes.

use crate::compile::plan::{ProbePlan, StepBlockPlan};
use crate::deliver::probe_value::ProbeRun;
use crate::run::eval::Bindings;
use crate::run::state::NodeStatus;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a block or probe sees besides the pipeline's own environment: the interpolation
/// bindings (`artifact.*`, `env.*`, `rollout.*`, `previous.*`) and the `PIPE_*` variables of a
/// promote step.
#[derive(Debug, Clone, Default)]
pub struct StepContext {
    pub bindings: Bindings,
    pub variables: BTreeMap<String, String>,
}

/// How a block of steps ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockResult {
    Succeeded,
    /// The first failing step, already redacted: "step 2 `./deploy.sh …` exited with status 3".
    Failed(String),
    Interrupted,
}

/// What the engine shows before asking a person to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPrompt {
    pub environment: String,
    pub version: String,
    pub digest: String,
    /// `api-1 (sha256:…)`, or "none (first release)".
    pub previous: String,
    /// What changed since the previous stable release.
    pub changes: Vec<String>,
    pub approver: String,
}

pub trait PromoteHost: Send + Sync {
    /// Runs a block of the forward path (migrate, deploy, smoke) in order as node `node` (logs
    /// under that node), with the pipeline's environment plus `context`. An interrupt stops it.
    fn run_block(&self, node: &str, block: &StepBlockPlan, context: &StepContext) -> BlockResult;

    /// Runs a rollback block or its verifying smoke like [`PromoteHost::run_block`], but even
    /// after an interrupt was requested: a rollback and its verification are never skipped.
    fn run_recovery_block(
        &self,
        node: &str,
        block: &StepBlockPlan,
        context: &StepContext,
    ) -> BlockResult;

    /// Runs a probe's command once, killing it after `timeout`. Its stdout and status text
    /// come back redacted.
    fn run_probe(
        &self,
        node: &str,
        probe: &ProbePlan,
        context: &StepContext,
        timeout: Duration,
    ) -> ProbeRun;

    /// Whether SIGINT/SIGTERM has asked the run to stop.
    fn interrupted(&self) -> bool;

    /// A promote node (`ENV.deploy`, …) changed state; `message` explains a failure.
    fn node_transition(&self, node: &str, status: NodeStatus, message: Option<&str>);

    /// Asks on the terminal; `None` when there is no terminal to ask on.
    fn ask_approval(&self, prompt: &ApprovalPrompt) -> Option<bool>;

    /// Replaces secret values by `***` in text the engine writes itself.
    fn redact(&self, text: &str) -> String;

    /// Prints a line for the person watching (stderr, or the runner's console).
    fn say(&self, line: &str);
}
