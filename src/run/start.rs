//! Starting a run: a new run of a plan ([`run_plan`]) or the continuation of a stored one
//! ([`resume_run`]) — selection, overrides, secrets, bindings, the run directory — then the
//! scheduler.

use crate::audit::{AuditEvent, AuditLog};
use crate::compile::plan::Plan;
use crate::diagnostics::suggest;
use crate::run::console::Console;
use crate::run::context::{GitInfo, base_bindings};
use crate::run::delivery::DeliveryExecutor;
use crate::run::error::RunError;
use crate::run::eval::{Bindings, JobFacts};
use crate::run::interrupt::Interrupt;
use crate::run::job::evaluate_env;
use crate::run::process::{KILL_GRACE, StepRunner, host_environment};
use crate::run::redact::Redactor;
use crate::run::scheduler::{Scheduler, SchedulerSetup};
use crate::run::secrets::SecretValues;
use crate::run::state::{
    NodeRecord, NodeStatus, OverrideRecord, RunDir, RunState, RunStatus, list_runs, new_run_id,
};
use crate::run::{preflight, selection};
use crate::store::{RunCreated, RunHeader, Store, StoreError};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `--override GATE --reason TEXT`.
#[derive(Debug, Clone, PartialEq)]
pub struct GateOverride {
    pub gate: String,
    pub reason: String,
}

/// How to run. [`RunOptions::new`] gives the defaults of `pipe run`.
pub struct RunOptions {
    /// At most this many jobs at once.
    pub jobs: usize,
    pub only: Vec<String>,
    pub until: Option<String>,
    /// Shared state (runs, ledger, locks, audit) and artifacts, built once by the caller.
    pub store: Store,
    /// Where steps run: the pipeline file's directory.
    pub pipeline_dir: PathBuf,
    /// The `.pipe` file, when the run starts from one (for `resume`'s change warning).
    pub source_path: Option<PathBuf>,
    pub overrides: Vec<GateOverride>,
    pub approvals: Vec<String>,
    pub approver: Option<String>,
    pub lock_timeout: Duration,
    pub kill_grace: Duration,
    pub console: Arc<Console>,
    pub interrupt: Interrupt,
    /// The host environment (`PATH`, `HOME`, … and secrets' `env(...)` sources).
    pub host_env: BTreeMap<String, String>,
    /// `resume --force`: resume the stored plan although the checkout's pipeline file differs.
    pub force: bool,
    /// `--run-id`: start the run under this id, or join it when it exists with the same plan.
    pub run_id: Option<String>,
}

impl RunOptions {
    pub fn new(store: Store, pipeline_dir: PathBuf) -> RunOptions {
        RunOptions {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            only: Vec::new(),
            until: None,
            store,
            pipeline_dir,
            source_path: None,
            overrides: Vec::new(),
            approvals: Vec::new(),
            approver: None,
            lock_timeout: Duration::from_secs(600),
            kill_grace: KILL_GRACE,
            console: Arc::new(Console::plain()),
            interrupt: Interrupt::never(),
            host_env: host_environment(),
            force: false,
            run_id: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    pub exit_code: i32,
    /// The run's agent-local directory (its logs).
    pub run_dir: PathBuf,
    pub state: RunState,
}

/// Starts a new run of `plan`. `Err` is a usage problem (exit 2): an unknown node, a refused
/// override, an unwritable state directory.
pub async fn run_plan(
    plan: Plan,
    options: RunOptions,
    delivery: Option<Arc<dyn DeliveryExecutor>>,
) -> Result<RunOutcome, RunError> {
    let run_id = match &options.run_id {
        Some(id) => checked_run_id(id)?,
        None => new_run_id(),
    };
    let git = GitInfo::read(&options.pipeline_dir);
    let (mut bindings, version) = base_bindings(&plan, &run_id, &git, None);
    let version = version.unwrap_or_else(|why| {
        let human = format!("warning: {why}");
        options.console.notice("warning", None, &human, json!({}));
        String::new()
    });
    let initiator = options
        .host_env
        .get("USER")
        .cloned()
        .unwrap_or_else(|| "unknown".into());
    // Refusals come before anything is stored: a refused run leaves no trace.
    let overrides = validate_overrides(&plan, &options, &initiator)?;
    let joined = match options.run_id {
        Some(_) => claim_run(&plan, &options, &run_id, &initiator)?,
        None => None,
    };
    let initiator = joined
        .as_ref()
        .map_or(initiator, |j| j.header.initiator.clone());
    let mut state = RunState::new(&plan, &run_id, &initiator, &version);
    state.pipeline_dir = options.pipeline_dir.display().to_string();
    state.source_path = options
        .source_path
        .as_ref()
        .map(|p| p.display().to_string());
    state.shared = options.run_id.is_some();
    let run_dir = RunDir::new(&options.store, &run_id);
    let run_dir = match &joined {
        Some(joined) => {
            state.started_at = joined.header.started_at.clone();
            let foreign = join_selection(&plan, &options, &mut state, joined)?;
            run_dir.sharing(foreign)
        }
        None => {
            apply_selection(&plan, &options, &mut state)?;
            if state.shared {
                run_dir.sharing(BTreeSet::new())
            } else {
                run_dir
            }
        }
    };
    bind_finished_jobs(&mut bindings, &state);
    state.overrides = overrides;
    if options.run_id.is_none() {
        // A fresh id cannot exist yet: this only records the header.
        claim_run(&plan, &options, &run_id, &initiator)?;
    }
    // The state (with its `--until`/`--only` selection) is written before the plan: a run
    // killed in between is refused by `resume` (no plan), never resumed as the whole pipeline.
    run_dir.save_state(&state)?;
    run_dir.save_plan(&plan)?;
    let run = Launch {
        run_dir,
        bindings,
        resumed: false,
    };
    launch(plan, state, run, options, delivery).await
}

/// A run this agent joined (`--run-id` of an existing run with the same plan).
struct Joined {
    header: RunHeader,
    /// The node records the run's agents have stored so far.
    nodes: BTreeMap<String, NodeRecord>,
}

/// A `--run-id` is used as a name in the store: plain characters only.
fn checked_run_id(id: &str) -> Result<String, RunError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > 128 || id.starts_with('.') || !id.chars().all(plain) {
        return Err(RunError::BadRunId {
            run: id.to_string(),
        });
    }
    Ok(id.to_string())
}

/// `sha256:HEX` of the plan's JSON: two agents run the same plan when these agree.
pub fn plan_digest(plan: &Plan) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(plan.to_json().as_bytes()))
    )
}

/// Records the run's header, or joins the run another agent created under this id: `None`
/// for a new run, the stored header and nodes for a joined one; another plan is refused.
fn claim_run(
    plan: &Plan,
    options: &RunOptions,
    run_id: &str,
    initiator: &str,
) -> Result<Option<Joined>, RunError> {
    let header = RunHeader {
        plan_digest: plan_digest(plan),
        pipeline: plan.pipeline.clone(),
        initiator: initiator.to_string(),
        started_at: crate::run::state::now_rfc3339(),
    };
    let uncreatable = |source| RunError::RunUncreatable {
        run: run_id.to_string(),
        state: options.store.describe(),
        source,
    };
    let created = options
        .store
        .state()
        .create_run(run_id, &header)
        .map_err(uncreatable)?;
    let RunCreated::Exists(stored) = created else {
        return Ok(None);
    };
    if stored.plan_digest != header.plan_digest {
        return Err(RunError::RunPlanDiffers {
            run: run_id.to_string(),
            stored: stored.plan_digest,
            this: header.plan_digest,
        });
    }
    let nodes = RunDir::new(&options.store, run_id)
        .load_nodes()
        .map_err(unreadable)?;
    Ok(Some(Joined {
        header: stored,
        nodes,
    }))
}

/// The selection of an agent joining a shared run; returns the nodes it must not write.
/// With `--only`, the rest keep what the run's other agents stored (predecessors must have
/// succeeded there); without, the nodes that succeeded already are kept and the rest run.
fn join_selection(
    plan: &Plan,
    options: &RunOptions,
    state: &mut RunState,
    joined: &Joined,
) -> Result<BTreeSet<String>, RunError> {
    let selected: BTreeSet<String> = match (&options.until, options.only.is_empty()) {
        (Some(_), false) => return Err(RunError::OnlyWithUntil),
        (Some(until), true) => selection::until(plan, until)?,
        (None, false) => selection::only_in_run(plan, &state.run_id, &joined.nodes, &options.only)?,
        (None, true) => plan.nodes.iter().map(|n| n.id.clone()).collect(),
    };
    let mut foreign = BTreeSet::new();
    for (id, record) in state.nodes.iter_mut() {
        let stored = joined.nodes.get(id);
        let done = stored.is_some_and(|r| r.status == NodeStatus::Succeeded);
        if selected.contains(id) && !(done && options.only.is_empty()) {
            continue;
        }
        foreign.insert(id.clone());
        *record = match stored {
            Some(stored) => stored.clone(),
            None => NodeRecord {
                status: NodeStatus::Excluded,
                ..NodeRecord::pending()
            },
        };
    }
    if !options.only.is_empty() || options.until.is_some() {
        state.selection = Some(selected.into_iter().collect());
    }
    Ok(foreign)
}

/// Continues a stored run: nodes that did not succeed run again, from the stored plan.
pub async fn resume_run(
    run_id: &str,
    mut options: RunOptions,
    delivery: Option<Arc<dyn DeliveryExecutor>>,
) -> Result<RunOutcome, RunError> {
    let run_dir = RunDir::new(&options.store, run_id);
    let (plan, mut state) = match (run_dir.load_plan(), run_dir.load_state()) {
        (Ok(Some(plan)), Ok(Some(state))) => (plan, state),
        (Err(e), _) | (Ok(Some(_)), Err(e)) => return Err(unreadable(e)),
        // No state beside the plan (removed by hand, or left by an older pipe that wrote
        // the plan first): nothing is recorded as done, every node runs.
        (Ok(Some(plan)), Ok(None)) => {
            let initiator = options
                .host_env
                .get("USER")
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            let mut state = RunState::new(&plan, run_id, &initiator, "");
            state.pipeline_dir = options.pipeline_dir.display().to_string();
            (plan, state)
        }
        _ => return Err(no_such_run(&options, run_id)),
    };
    let run_dir = if state.shared {
        run_dir.sharing(BTreeSet::new())
    } else {
        run_dir
    };
    check_checkout(&plan, &mut state, &mut options)?;
    for record in state.nodes.values_mut() {
        if !matches!(record.status, NodeStatus::Succeeded | NodeStatus::Excluded) {
            *record = NodeRecord::pending();
        }
    }
    state.status = RunStatus::Running;
    state.finished_at = None;
    let new_overrides = validate_overrides(&plan, &options, &state.initiator)?;
    state
        .overrides
        .retain(|old| !new_overrides.iter().any(|new| new.gate == old.gate));
    state.overrides.extend(new_overrides);
    let git = GitInfo::read(&options.pipeline_dir);
    // A run killed before its first state write has no version yet: evaluate it now.
    let stored_version = (!state.version.is_empty()).then(|| state.version.clone());
    let (mut bindings, version) = base_bindings(&plan, run_id, &git, stored_version.as_deref());
    state.version = version.unwrap_or_default();
    bind_finished_jobs(&mut bindings, &state);
    let run = Launch {
        run_dir,
        bindings,
        resumed: true,
    };
    launch(plan, state, run, options, delivery).await
}

/// A stored document that exists but cannot be used: named with the parse error's line and
/// column, so a corrupt file is not mistaken for a missing run.
fn unreadable(error: StoreError) -> RunError {
    match error {
        StoreError::Invalid { .. } => RunError::StoredRunInvalid(error),
        _ => RunError::StoredRunUnreadable(error),
    }
}

fn no_such_run(options: &RunOptions, run_id: &str) -> RunError {
    let runs: Vec<String> = list_runs(&options.store)
        .iter()
        .map(|run| run.id().to_string())
        .collect();
    let hint = match suggest(run_id, runs.iter().map(String::as_str)) {
        Some(near) => format!("; did you mean `{near}`?"),
        None => match runs.first() {
            Some(latest) => format!("; the latest run is `{latest}`"),
            None => String::new(),
        },
    };
    RunError::NoSuchRun {
        run: run_id.to_string(),
        state: options.store.describe(),
        hint,
    }
}

/// A resume runs in the current checkout, never in the directory `state.json` names: the
/// pipeline file there (`--file`, else the stored source's file name in the current directory)
/// must be the one the stored plan was compiled from, unless `--force` (audited).
fn check_checkout(
    plan: &Plan,
    state: &mut RunState,
    options: &mut RunOptions,
) -> Result<(), RunError> {
    let file = checkout_file(plan, state, options);
    options.pipeline_dir = file
        .parent()
        .map_or_else(|| options.pipeline_dir.clone(), PathBuf::from);
    state.pipeline_dir = options.pipeline_dir.display().to_string();
    state.source_path = Some(file.display().to_string());
    let bytes = std::fs::read(&file).map_err(|source| RunError::CheckoutUnreadable {
        file: file.display().to_string(),
        run: state.run_id.clone(),
        source,
    })?;
    use sha2::Digest;
    let current = hex::encode(sha2::Sha256::digest(&bytes));
    if current == plan.source_sha256 {
        return Ok(());
    }
    let (shown, run) = (file.display(), &state.run_id);
    if !options.force {
        return Err(RunError::CheckoutChanged {
            file: shown.to_string(),
            run: run.clone(),
            plan_sha256: plan.source_sha256.clone(),
            file_sha256: current,
        });
    }
    let human = format!(
        "warning: {shown} changed since run {run} started; resuming the stored plan, not the new source (--force)"
    );
    options.console.notice(
        "warning",
        None,
        &human,
        json!({"source": shown.to_string()}),
    );
    let audit = options.store.audit().map_err(RunError::AuditUnopenable)?;
    let fields = json!({
        "source": shown.to_string(),
        "plan_sha256": plan.source_sha256,
        "file_sha256": current,
        "summary": format!("resume forced although {shown} no longer matches the stored plan"),
    });
    audit
        .append(run, AuditEvent::ResumeForced, &state.initiator, fields)
        .map_err(RunError::AuditUnwritable)
}

/// `--file` when given, else the stored source's file name in the current checkout.
fn checkout_file(plan: &Plan, state: &RunState, options: &RunOptions) -> PathBuf {
    if let Some(file) = &options.source_path {
        return file.clone();
    }
    let stored = state
        .source_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(&plan.source_file);
    let name = std::path::Path::new(stored)
        .file_name()
        .map_or_else(|| "pipeline.pipe".into(), |n| n.to_os_string());
    options.pipeline_dir.join(name)
}

/// Succeeded nodes' results, for gates and templates downstream.
fn bind_finished_jobs(bindings: &mut Bindings, state: &RunState) {
    for (id, record) in &state.nodes {
        if record.status == NodeStatus::Succeeded {
            let facts = JobFacts {
                succeeded: true,
                duration_ms: record.duration_ms.unwrap_or(0),
                exit_code: record.exit_code,
                outputs: record.outputs.clone(),
                redacted_outputs: record.redacted_outputs.clone(),
            };
            bindings.set_job_result(id, &facts);
        }
    }
}

fn apply_selection(
    plan: &Plan,
    options: &RunOptions,
    state: &mut RunState,
) -> Result<(), RunError> {
    let selected = match (&options.until, options.only.is_empty()) {
        (Some(_), false) => return Err(RunError::OnlyWithUntil),
        (None, true) => return Ok(()),
        (Some(until), true) => selection::until(plan, until)?,
        (None, false) => {
            let (selected, reused) = selection::only(plan, &options.store, &options.only)?;
            state.nodes.extend(reused);
            selected
        }
    };
    for (id, record) in state.nodes.iter_mut() {
        if !selected.contains(id) && record.reused_from.is_none() {
            record.status = NodeStatus::Excluded;
        }
    }
    state.selection = Some(selected.into_iter().collect());
    Ok(())
}

/// Checks each `--override`: the gate exists, and a gate upstream of a protected environment
/// needs `--approver`.
fn validate_overrides(
    plan: &Plan,
    options: &RunOptions,
    initiator: &str,
) -> Result<Vec<OverrideRecord>, RunError> {
    let mut records = Vec::new();
    for granted in &options.overrides {
        let is_gate = |id: &str| {
            plan.node(id)
                .is_some_and(|n| n.gate.is_some() || n.kind == crate::compile::plan::NodeKind::Gate)
        };
        if !is_gate(&granted.gate) {
            let gates = plan
                .nodes
                .iter()
                .filter(|n| is_gate(&n.id))
                .map(|n| n.id.as_str());
            let hint = suggest(&granted.gate, gates)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(RunError::UnknownGate {
                gate: granted.gate.clone(),
                hint,
            });
        }
        if granted.reason.trim().is_empty() {
            return Err(RunError::OverrideWithoutReason {
                gate: granted.gate.clone(),
            });
        }
        if let Some(env) = protected_downstream(plan, &granted.gate)
            && options.approver.is_none()
        {
            return Err(RunError::OverrideWithoutApprover {
                gate: granted.gate.clone(),
                environment: env,
            });
        }
        records.push(OverrideRecord {
            gate: granted.gate.clone(),
            reason: granted.reason.clone(),
            approver: options.approver.clone(),
            actor: initiator.to_string(),
            used: false,
        });
    }
    Ok(records)
}

fn protected_downstream(plan: &Plan, gate: &str) -> Option<String> {
    selection::descendants(plan, gate)
        .into_iter()
        .find_map(|id| {
            let env = plan.node(&id)?.environment.clone()?;
            let protected = plan.environments.get(&env).is_some_and(|e| e.protected)
                || plan.promotes.get(&env).is_some_and(|p| p.protected);
            protected.then_some(env)
        })
}

/// Where a run is recorded and what it starts from.
struct Launch {
    run_dir: RunDir,
    bindings: Bindings,
    resumed: bool,
}

async fn launch(
    plan: Plan,
    state: RunState,
    run: Launch,
    options: RunOptions,
    delivery: Option<Arc<dyn DeliveryExecutor>>,
) -> Result<RunOutcome, RunError> {
    let Launch {
        run_dir,
        bindings,
        resumed,
    } = run;
    let secrets = SecretValues::load(&plan, &options.pipeline_dir, &options.host_env);
    let redactor = Redactor::new(secrets.all_values());
    let pipeline_env = evaluate_env(&BTreeMap::new(), &plan.env, &bindings)
        .map_err(|e| RunError::PipelineEnv(redactor.text(&format!("pipeline {e}"))))?;
    let selected: Vec<&str> = state
        .nodes
        .iter()
        .filter(|(_, r)| r.status == NodeStatus::Pending)
        .map(|(id, _)| id.as_str())
        .collect();
    for warning in preflight::missing_tools(&plan, &selected, &bindings, &options.host_env) {
        let human = redactor.text(&format!("warning: {warning}"));
        options.console.notice("warning", None, &human, json!({}));
    }
    // A new run's state is stored already (saved with its plan); a resumed one changed.
    if resumed {
        run_dir.save_state(&state)?;
    }
    let audit = open_audit(&options, &secrets, &state)?;
    let runner = Arc::new(StepRunner {
        run_id: state.run_id.clone(),
        logs_dir: Some(run_dir.logs_dir()),
        redactor,
        console: Arc::clone(&options.console),
        interrupt: options.interrupt.clone(),
        kill_grace: options.kill_grace,
        host_env: options.host_env.clone(),
    });
    let run_id = state.run_id.clone();
    let path = run_dir.local_dir();
    let setup = SchedulerSetup {
        plan: Arc::new(plan),
        state,
        run_dir,
        runner,
        secrets: Arc::new(secrets),
        bindings,
        pipeline_env,
        store: options.store.clone(),
        pipeline_dir: options.pipeline_dir.clone(),
        jobs: options.jobs.max(1),
        approvals: options.approvals.clone(),
        approver: options.approver.clone(),
        lock_timeout: options.lock_timeout,
        console: Arc::clone(&options.console),
        interrupt: options.interrupt.clone(),
        delivery,
        audit,
    };
    let state = Scheduler::new(setup).run().await;
    Ok(RunOutcome {
        run_id,
        status: state.status,
        exit_code: state.status.exit_code(),
        run_dir: path,
        state,
    })
}

/// Opens the audit log and records `run_started` before anything runs.
fn open_audit(
    options: &RunOptions,
    secrets: &SecretValues,
    state: &RunState,
) -> Result<Option<Arc<AuditLog>>, RunError> {
    let audit = options
        .store
        .audit()
        .map_err(|source| RunError::AuditUnopenableIn {
            state: options.store.describe(),
            source,
        })?;
    audit.set_secrets(secrets.all_values());
    let pending = state
        .nodes
        .values()
        .filter(|r| r.status == NodeStatus::Pending)
        .count();
    let fields = json!({
        "pipeline": state.pipeline,
        "version": state.version,
        "nodes": pending,
        "overrides": state.overrides,
    });
    audit
        .append(
            &state.run_id,
            AuditEvent::RunStarted,
            &state.initiator,
            fields,
        )
        .map_err(RunError::AuditUnwritable)?;
    Ok(Some(Arc::new(audit)))
}
