//! The runner's [`DeliveryExecutor`]: turns the scheduler's promote request into the engine's,
//! runs the (blocking) engine on a blocking thread, and adapts the runner's step runner,
//! console, reporter and interrupts to [`PromoteHost`].

use crate::compile::plan::{ProbePlan, Step, StepBlockPlan, promote_node_id};
use crate::deliver::approval::resolve_approver;
use crate::deliver::drill::{DrillBlock, DrillHost};
use crate::deliver::drill_backup::BackupFacts;
use crate::deliver::engine::{self, DeliveryOutcome};
use crate::deliver::host::{ApprovalPrompt, BlockResult, PromoteHost, StepContext};
use crate::deliver::probe_value::ProbeRun;
use crate::deliver::record::DeliveryRecord;
use crate::deliver::request::{ApprovalInput, ArtifactRef, DeliveryError, DeliveryRequest};
use crate::run::delivery::{
    DeliveryExecutor, PreviewRequest, PromoteOutcome, PromotePreview, PromoteReporter,
    PromoteRequest,
};
use crate::run::error::EnvError;
use crate::run::eval;
use crate::run::interrupt::{Interrupt, InterruptLevel, interrupt_pair};
use crate::run::process::{BlockOutcome, BlockRequest, StepRunner};
use crate::run::state::NodeStatus;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The delivery engine, for `run::Runner`.
pub fn executor() -> Arc<dyn DeliveryExecutor> {
    Arc::new(Engine)
}

struct Engine;

impl DeliveryExecutor for Engine {
    fn run_promote(
        &self,
        request: PromoteRequest,
    ) -> Pin<Box<dyn Future<Output = PromoteOutcome> + Send + '_>> {
        Box::pin(run_promote(request))
    }

    fn preview(&self, request: &PreviewRequest<'_>) -> PromotePreview {
        crate::deliver::preview::preview_promote(request)
    }
}

async fn run_promote(request: PromoteRequest) -> PromoteOutcome {
    let reporter = request.reporter.clone();
    let Some(plan) = request.plan.promotes.get(&request.environment).cloned() else {
        let message = format!("the plan has no promote for {}", request.environment);
        reporter.node(
            &promote_node_id(&request.environment, "deploy"),
            NodeStatus::Failed,
            Some(message),
        );
        return PromoteOutcome::Failed { rolled_back: false };
    };
    let host = RunnerHost::new(&request, tokio::runtime::Handle::current());
    let engine_request = match engine_request(&request, plan) {
        Ok(engine_request) => engine_request,
        Err(error) => {
            let message = error.to_string();
            host.say(&format!("error: {message}"));
            let first = promote_node_id(&request.environment, "deploy");
            reporter.node(&first, NodeStatus::Failed, Some(message));
            return PromoteOutcome::Failed { rolled_back: false };
        }
    };
    let secrets: Vec<String> = request.secrets.values().cloned().collect();
    let store = request.store.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let audit = match store.audit() {
            Ok(audit) => audit,
            Err(error) => {
                host.say(&format!("error: cannot open the audit log: {error}"));
                return DeliveryOutcome::Failed {
                    rolled_back: false,
                    reason: error.to_string(),
                };
            }
        };
        audit.set_secrets(secrets);
        let outcome = engine::promote(&engine_request, &host, &audit);
        host.report_record(&engine_request);
        host.explain(&engine_request, &outcome);
        outcome
    })
    .await;
    match joined {
        Ok(outcome) => runner_outcome(&outcome),
        Err(_) => PromoteOutcome::RollbackFailed,
    }
}

fn runner_outcome(outcome: &DeliveryOutcome) -> PromoteOutcome {
    match outcome {
        DeliveryOutcome::Succeeded => PromoteOutcome::Succeeded,
        DeliveryOutcome::Failed { rolled_back, .. } => PromoteOutcome::Failed {
            rolled_back: *rolled_back,
        },
        DeliveryOutcome::RollbackFailed { .. } => PromoteOutcome::RollbackFailed,
        DeliveryOutcome::AwaitingApproval { .. } => PromoteOutcome::AwaitingApproval,
        DeliveryOutcome::Interrupted => PromoteOutcome::Interrupted,
    }
}

fn engine_request(
    request: &PromoteRequest,
    promote: crate::compile::plan::PromotePlan,
) -> Result<DeliveryRequest, DeliveryError> {
    let artifact = artifact_ref(request, &promote.artifact)?;
    let approver = resolve_approver(
        request.approver.as_deref(),
        None,
        request.steps.host_env.get("USER").map(String::as_str),
    );
    let approving_here = request.approvals.contains(&request.environment);
    let granted = request
        .stored
        .clone()
        .and_then(|value| serde_json::from_value::<DeliveryRecord>(value).ok())
        .map(|record| record.approvals)
        .unwrap_or_default();
    Ok(DeliveryRequest {
        pipeline: request.plan.pipeline.clone(),
        promote,
        environments: request.plan.environments.clone(),
        run_id: request.run_id.clone(),
        store: request.store.clone(),
        artifact,
        bindings: request.bindings.clone(),
        approval: ApprovalInput {
            approver: approver.clone().filter(|_| approving_here),
            default_approver: approver,
            granted,
            initiator: Some(request.initiator.clone()).filter(|name| !name.is_empty()),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        },
        lock_timeout: request.lock_timeout,
        actor: request.initiator.clone(),
    })
}

fn artifact_ref(request: &PromoteRequest, name: &str) -> Result<ArtifactRef, DeliveryError> {
    let digest = request.artifact_digests.get(name).cloned().ok_or_else(|| {
        DeliveryError::ArtifactNotProduced {
            artifact: name.to_string(),
            run: request.run_id.clone(),
            environment: request.environment.clone(),
        }
    })?;
    let artifacts = request.store.artifacts().as_ref();
    let path = artifacts.local_path(&digest);
    if !super::integrity::stored_copy_present(artifacts, &path.display().to_string(), &digest) {
        return Err(DeliveryError::StoredCopyMissing {
            artifact: name.to_string(),
            digest,
            path: path.display().to_string(),
        });
    }
    let recorded = request
        .store
        .artifacts()
        .lookup(&digest)
        .map(|record| record.version)
        .filter(|version| !version.is_empty());
    let version = recorded
        .or_else(|| match request.bindings.get("pipeline.version") {
            Some(literal) => Some(eval::display(literal)).filter(|v| !v.is_empty()),
            None => None,
        })
        .unwrap_or_else(|| digest.chars().take(19).collect());
    Ok(ArtifactRef {
        name: name.to_string(),
        path: path.display().to_string(),
        digest,
        version,
    })
}

/// The runner's services as the engine sees them.
pub(crate) struct RunnerHost {
    steps: Arc<StepRunner>,
    /// Runs rollback and verification: deaf to the first interrupt, stopped by the second.
    recovery_steps: Arc<StepRunner>,
    handle: tokio::runtime::Handle,
    interrupt: Interrupt,
    reporter: Option<PromoteReporter>,
    workdir: PathBuf,
    pipeline_env: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

impl RunnerHost {
    fn new(request: &PromoteRequest, handle: tokio::runtime::Handle) -> RunnerHost {
        RunnerHost {
            steps: request.steps.clone(),
            recovery_steps: Arc::new(recovery_runner(&request.steps, &handle)),
            handle,
            interrupt: request.interrupt.clone(),
            reporter: Some(request.reporter.clone()),
            workdir: request.pipeline_dir.clone(),
            pipeline_env: request.pipeline_env.clone(),
            secrets: request.secrets.clone(),
        }
    }

    /// For `pipe rollback`: no scheduler, no reporter.
    pub(crate) fn standalone(
        steps: Arc<StepRunner>,
        handle: tokio::runtime::Handle,
        workdir: PathBuf,
        pipeline_env: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
    ) -> RunnerHost {
        RunnerHost {
            recovery_steps: Arc::new(recovery_runner(&steps, &handle)),
            interrupt: steps.interrupt.clone(),
            steps,
            handle,
            reporter: None,
            workdir,
            pipeline_env,
            secrets,
        }
    }

    fn block_request(
        &self,
        node: &str,
        block: &StepBlockPlan,
        context: &StepContext,
    ) -> Result<BlockRequest, EnvError> {
        let mut env = self.pipeline_env.clone();
        for (key, template) in &block.env {
            let value = match eval::render(template, &context.bindings) {
                Ok(value) => value,
                // A redacted value is never handed on as its mask.
                Err(source @ eval::EvalError::Redacted(_)) => {
                    return Err(EnvError {
                        name: key.clone(),
                        source,
                    });
                }
                Err(_) => eval::render_lenient(template, &context.bindings),
            };
            env.insert(key.clone(), value);
        }
        Ok(BlockRequest {
            node: node.to_string(),
            steps: block.steps.clone(),
            timeout: block.timeout_s.map(Duration::from_secs),
            retries: block.retries,
            backoff: block.backoff_ms.map(Duration::from_millis),
            shell: None,
            workdir: self.workdir.clone(),
            env,
            pipe_env: context.variables.clone(),
            secrets: self.secrets.clone(),
            inherit_env: Vec::new(),
            bindings: context.bindings.clone(),
            capture_stdout: false,
        })
    }

    /// Runs `block` on `runner`: the forward runner stops at the first interrupt, the
    /// recovery runner only at the second.
    fn run_block_with(
        &self,
        runner: &StepRunner,
        node: &str,
        block: &StepBlockPlan,
        context: &StepContext,
    ) -> BlockResult {
        let request = match self.block_request(node, block, context) {
            Ok(request) => request,
            Err(why) => return BlockResult::Failed(why.to_string()),
        };
        match self.handle.block_on(runner.run_block(&request)).outcome {
            BlockOutcome::Succeeded => BlockResult::Succeeded,
            BlockOutcome::Failed(why) => BlockResult::Failed(why),
            BlockOutcome::Interrupted => BlockResult::Interrupted,
        }
    }

    fn report_record(&self, request: &DeliveryRequest) {
        let record = DeliveryRecord::load_or_new(
            &request.store,
            &request.run_id,
            &request.promote.environment,
        );
        if let (Some(reporter), Ok(value)) = (&self.reporter, serde_json::to_value(record)) {
            reporter.record(value);
        }
    }

    /// The lines a person needs after the promote: how to resume an approval.
    fn explain(&self, request: &DeliveryRequest, outcome: &DeliveryOutcome) {
        if let DeliveryOutcome::AwaitingApproval { approvals } = outcome {
            let environment = &request.promote.environment;
            let needed = request
                .promote
                .approval
                .as_ref()
                .map_or(1, crate::deliver::approval::quorum);
            self.say(&format!(
                "[{environment}.approval] waiting for approval ({} of {needed}). To approve, run:\n  pipe resume {} --approve {environment} --approver NAME",
                approvals.len(),
                request.run_id
            ));
        }
    }
}

/// A step runner for recovery: the first interrupt is what triggered the rollback, so only a
/// second (immediate) one stops it.
fn recovery_runner(steps: &StepRunner, handle: &tokio::runtime::Handle) -> StepRunner {
    let (trigger, deaf) = interrupt_pair();
    let original = steps.interrupt.clone();
    handle.spawn(async move {
        original.reached(InterruptLevel::Immediate).await;
        trigger.raise_to(InterruptLevel::Immediate);
    });
    StepRunner {
        run_id: steps.run_id.clone(),
        logs_dir: steps.logs_dir.clone(),
        redactor: steps.redactor.clone(),
        console: steps.console.clone(),
        interrupt: deaf,
        kill_grace: steps.kill_grace,
        host_env: steps.host_env.clone(),
    }
}

/// Runs a drill's blocks through a standalone [`RunnerHost`], with the drill's bindings and
/// `PIPE_*` variables.
pub(crate) struct DrillRunner {
    pub host: RunnerHost,
    pub context: StepContext,
}

impl DrillHost for DrillRunner {
    fn run_block(
        &self,
        node: &str,
        block: &StepBlockPlan,
        backup: Option<&BackupFacts>,
    ) -> DrillBlock {
        let mut context = self.context.clone();
        if let Some(backup) = backup {
            context.bindings.set_string("backup.path", &backup.path);
            context.bindings.set_string("backup.digest", &backup.digest);
        }
        let request = match self.host.block_request(node, block, &context) {
            Ok(request) => request,
            Err(why) => return DrillBlock::Failed(why.to_string()),
        };
        let result = self
            .host
            .handle
            .block_on(self.host.steps.run_block(&request));
        match result.outcome {
            BlockOutcome::Succeeded => DrillBlock::Succeeded {
                output: result.output_file,
            },
            BlockOutcome::Failed(why) => DrillBlock::Failed(why),
            BlockOutcome::Interrupted => DrillBlock::Interrupted,
        }
    }
}

impl PromoteHost for RunnerHost {
    fn run_block(&self, node: &str, block: &StepBlockPlan, context: &StepContext) -> BlockResult {
        self.run_block_with(&self.steps, node, block, context)
    }

    fn run_recovery_block(
        &self,
        node: &str,
        block: &StepBlockPlan,
        context: &StepContext,
    ) -> BlockResult {
        self.run_block_with(&self.recovery_steps, node, block, context)
    }

    fn run_probe(
        &self,
        node: &str,
        probe: &ProbePlan,
        context: &StepContext,
        timeout: Duration,
    ) -> ProbeRun {
        let block = StepBlockPlan {
            steps: vec![Step {
                run: probe.command.clone(),
                span: Default::default(),
            }],
            timeout_s: None,
            ..StepBlockPlan::default()
        };
        let mut request = match self.block_request(node, &block, context) {
            Ok(request) => request,
            Err(why) => {
                return ProbeRun {
                    succeeded: false,
                    status: why.to_string(),
                    stdout: String::new(),
                };
            }
        };
        request.timeout = Some(timeout);
        request.capture_stdout = true;
        let result = self.handle.block_on(self.steps.run_block(&request));
        let (succeeded, status) = match result.outcome {
            BlockOutcome::Succeeded => (true, "exit 0".to_string()),
            BlockOutcome::Failed(why) => (false, why),
            BlockOutcome::Interrupted => (false, "interrupted".to_string()),
        };
        ProbeRun {
            succeeded,
            status,
            stdout: result.stdout,
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }

    fn node_transition(&self, node: &str, status: NodeStatus, message: Option<&str>) {
        if let Some(reporter) = &self.reporter {
            reporter.node(node, status, message.map(|m| self.redact(m)));
        }
    }

    fn ask_approval(&self, prompt: &ApprovalPrompt) -> Option<bool> {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return None;
        }
        let interrupted = || self.interrupted();
        self.steps
            .console
            .suspend(|| ask_on_stderr(prompt, &interrupted))
    }

    fn redact(&self, text: &str) -> String {
        self.steps.redactor.text(text)
    }

    fn say(&self, line: &str) {
        let line = self.redact(line);
        self.steps
            .console
            .notice("delivery", None, &line, serde_json::json!({}));
    }
}

/// Shows what is being approved and reads a yes/no answer from the terminal. `None` when no
/// answer came: the terminal closed, or Ctrl-C interrupted the run while it waited.
fn ask_on_stderr(prompt: &ApprovalPrompt, interrupted: &dyn Fn() -> bool) -> Option<bool> {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "\nApprove {} for {}?\n  version   {}\n  digest    {}\n  previous  {}",
        prompt.version, prompt.environment, prompt.version, prompt.digest, prompt.previous
    );
    for change in &prompt.changes {
        let _ = writeln!(stderr, "  change    {change}");
    }
    let _ = write!(stderr, "Approve as {}? [y/N] ", prompt.approver);
    let _ = stderr.flush();
    let answer = read_answer(&mut std::io::stdin().lock(), interrupted);
    if answer.is_none() {
        let _ = writeln!(stderr);
    }
    Some(matches!(answer?.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Reads one line from `input`, checking `interrupted` while it waits: a blocking read would
/// hold Ctrl-C back until someone pressed Enter. `None` on an interrupt, or on end of input
/// before any text.
fn read_answer<R: Read + AsFd>(input: &mut R, interrupted: &dyn Fn() -> bool) -> Option<String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if interrupted() {
            return None;
        }
        let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return None,
        }
        let read = match input.read(&mut chunk) {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        line.extend_from_slice(chunk.get(..read).unwrap_or_default());
        if read == 0 || line.contains(&b'\n') {
            let text = String::from_utf8_lossy(&line).lines().next()?.to_string();
            return (read > 0 || !text.is_empty()).then_some(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_answer;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    #[test]
    fn an_answer_is_read_up_to_the_end_of_its_line() {
        let (mut reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"yes\nignored").unwrap();
        assert_eq!(read_answer(&mut reader, &|| false).as_deref(), Some("yes"));
    }

    #[test]
    fn end_of_input_without_an_answer_is_no_answer() {
        let (mut reader, writer) = std::io::pipe().unwrap();
        drop(writer);
        assert_eq!(read_answer(&mut reader, &|| false), None);
    }

    #[test]
    fn an_interrupt_ends_the_wait_without_any_input() {
        let (mut reader, _writer) = std::io::pipe().unwrap();
        let interrupted = Arc::new(AtomicBool::new(false));
        let (sender, answer) = mpsc::channel();
        let flag = Arc::clone(&interrupted);
        std::thread::spawn(move || {
            let _ = sender.send(read_answer(&mut reader, &|| flag.load(Ordering::SeqCst)));
        });
        std::thread::sleep(Duration::from_millis(150));
        interrupted.store(true, Ordering::SeqCst);
        // A read that blocks until input arrives never answers: the test fails, not hangs.
        assert_eq!(answer.recv_timeout(Duration::from_secs(10)), Ok(None));
    }
}
