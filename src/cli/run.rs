//! `pipe run` and `pipe resume`: load or compile the plan, run it (or describe it with
//! `--dry-run`), print the summary and map the outcome to the exit codes of SPEC §13.

use super::OutputFormat;
use super::exit;
use super::report::{self, CliError};
use super::state::{PipelineFileArg, StateArgs, pipeline_file};
use crate::compilation::compile_file;
use crate::compile::plan::Plan;
use crate::run::console::{Console, LogFormat};
use crate::run::context::{GitInfo, base_bindings};
use crate::run::delivery::DeliveryExecutor;
use crate::run::dry_run::{self, DryRunInput};
use crate::run::eval::parse_duration_ms;
use crate::run::interrupt::{InterruptLevel, install_signal_handlers, interrupt_pair};
use crate::run::process::host_environment;
use crate::run::redact::Redactor;
use crate::run::secrets::SecretValues;
use crate::run::state::{RunState, list_runs};
use crate::run::{GateOverride, RunError, RunOptions, RunOutcome, selection, summary};
use crate::store::Store;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Flags shared by `run` and `resume`.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonRunFlags {
    /// Run at most N jobs at once [default: the number of CPUs]
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Console output: `text` (a live view on a terminal, `[node] line` otherwise) or `json`
    /// (one event per line)
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// Let a failed gate pass (repeatable); needs --reason, and --approver for a gate upstream
    /// of a protected environment. Always audited.
    #[arg(long = "override", value_name = "GATE", requires = "reason")]
    pub overrides: Vec<String>,
    /// Why the gates named by --override may pass
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Approve the promote to ENV (repeatable)
    #[arg(long, value_name = "ENV")]
    pub approve: Vec<String>,
    /// Who approves or overrides [default: $USER for approvals]
    #[arg(long, env = "PIPE_APPROVER", value_name = "NAME")]
    pub approver: Option<String>,
    /// How long a promote waits for another run's lock on its environment
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub file: PipelineFileArg,
    /// Run just these nodes; their predecessors must have succeeded in an earlier run
    #[arg(long, value_name = "NODE", num_args = 1.., conflicts_with = "until")]
    pub only: Vec<String>,
    /// Run NODE and what it needs, nothing after it
    #[arg(long, value_name = "NODE")]
    pub until: Option<String>,
    /// Print what would run, in order, and execute nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Start the run under ID, or join run ID when another agent started it with the same
    /// plan: with --only, predecessors' results (outputs, artifacts) come from that run
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub common: CommonRunFlags,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ResumeArgs {
    /// The run id (as `pipe run` or `pipe runs` printed it)
    #[arg(required_unless_present = "last")]
    pub run: Option<String>,
    /// Resume the newest recorded run (the first line of `pipe runs`)
    #[arg(long, conflicts_with = "run")]
    pub last: bool,
    #[command(flatten)]
    pub state: StateArgs,
    /// The pipeline file of this checkout [default: the run's pipeline file name in the
    /// current directory]; steps run in its directory, and the state is found beside it
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Resume even though the pipeline file no longer matches the stored plan (audited)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub common: CommonRunFlags,
}

/// `pipe runs`: the runs recorded in the state, newest first.
#[derive(clap::Args, Debug, Clone)]
pub struct RunsArgs {
    #[command(flatten)]
    pub file: PipelineFileArg,
    #[command(flatten)]
    pub state: StateArgs,
    /// `text`: one line per run; `json`: an array of {id, started, status, pipeline}
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// A flag's value that is not a duration (clap prints it with the flag's name).
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a duration (e.g. 30s, 10m, 1h)")]
pub(super) struct NotADuration(String);

pub(super) fn parse_duration(text: &str) -> Result<Duration, NotADuration> {
    parse_duration_ms(text)
        .map(Duration::from_millis)
        .ok_or_else(|| NotADuration(text.to_string()))
}

/// `pipe run`: returns the exit code.
pub fn run(args: RunArgs) -> i32 {
    run_with(args, Some(crate::deliver::executor::executor()))
}

/// `pipe run` with a delivery executor for promotes.
pub fn run_with(args: RunArgs, delivery: Option<Arc<dyn DeliveryExecutor>>) -> i32 {
    let (plan, source_path, pipeline_dir) = match load_plan(&args.file.path()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // A compiled plan's state is beside the pipeline file it was compiled from.
    let (store, _) = match args.state.open(&pipeline_dir.join("pipeline.pipe")) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    if let Some(warning) = GitInfo::read(&pipeline_dir).missing_warning(&plan, &pipeline_dir) {
        eprintln!("warning: {warning}");
    }
    if args.dry_run {
        return dry(&plan, &args, &pipeline_dir, &store, delivery.as_deref());
    }
    let mut options = options(&args.common, store, pipeline_dir);
    options.only = args.only.clone();
    options.until = args.until.clone();
    options.run_id = args.run_id.clone();
    options.source_path = source_path;
    execute(options, |options| {
        Box::pin(crate::run::run_plan(plan, options, delivery))
    })
}

/// `pipe resume`: returns the exit code.
pub fn resume(args: ResumeArgs) -> i32 {
    resume_with(args, Some(crate::deliver::executor::executor()))
}

pub fn resume_with(args: ResumeArgs, delivery: Option<Arc<dyn DeliveryExecutor>>) -> i32 {
    let (store, _) = match args.state.open(&pipeline_file(args.file.as_deref())) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let mut options = options(&args.common, store.clone(), absolute(Path::new(".")));
    options.source_path = args.file.as_deref().map(absolute);
    options.force = args.force;
    let Some(run_id) = args.run.clone().or_else(|| newest_run(&store)) else {
        return report::error(CliError::NoRunRecorded(store.describe()));
    };
    execute(options, move |options| {
        Box::pin(async move { crate::run::resume_run(&run_id, options, delivery).await })
    })
}

/// `pipe runs`: id, start time, status and pipeline of every stored run, newest first.
pub fn runs(args: &RunsArgs) -> i32 {
    let (store, _) = match args.state.open(&args.file.path()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let rows: Vec<RunState> = list_runs(&store)
        .iter()
        .filter_map(|run| run.load_state().ok().flatten())
        .collect();
    match args.format {
        OutputFormat::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|state| {
                    json!({
                        "id": state.run_id,
                        "started": state.started_at,
                        "status": state.status,
                        "pipeline": state.pipeline,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(rows));
        }
        OutputFormat::Text if rows.is_empty() => {
            println!("no runs recorded in {}", store.describe());
        }
        OutputFormat::Text => print!("{}", runs_table(&rows)),
    }
    exit::SUCCESS
}

/// The id of the newest run in the store (run ids sort by their start time).
fn newest_run(store: &Store) -> Option<String> {
    list_runs(store).first().map(|run| run.id().to_string())
}

fn runs_table(rows: &[RunState]) -> String {
    let id_width = rows
        .iter()
        .map(|r| r.run_id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    let mut out = format!(
        "{:<id_width$}  {:<25}  {:<17}  pipeline\n",
        "id", "started", "status"
    );
    for state in rows {
        let status = serde_json::to_value(state.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<id_width$}  {:<25}  {status:<17}  {}\n",
            state.run_id, state.started_at, state.pipeline
        ));
    }
    out
}

fn options(common: &CommonRunFlags, store: Store, pipeline_dir: PathBuf) -> RunOptions {
    let mut options = RunOptions::new(store, pipeline_dir);
    if let Some(jobs) = common.jobs {
        options.jobs = jobs.max(1);
    }
    let terminal = std::io::stdout().is_terminal();
    options.console = Arc::new(Console::new(common.log_format, terminal));
    let reason = common.reason.clone().unwrap_or_default();
    options.overrides = common
        .overrides
        .iter()
        .map(|gate| GateOverride {
            gate: gate.clone(),
            reason: reason.clone(),
        })
        .collect();
    options.approvals = common.approve.clone();
    options.approver = common.approver.clone();
    options.lock_timeout = common.lock_timeout;
    options
}

type RunFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunOutcome, RunError>>>>;

/// Runs on a tokio runtime with signal handlers; a second interrupt that does not end the run
/// within a few seconds ends the process. One scheduler thread is enough (the work is in the
/// child processes) and hands a finished job's slot to the next without a cross-thread wakeup;
/// blocking work (hashing artifacts, delivery's engine) runs on tokio's blocking pool.
fn execute(mut options: RunOptions, start: impl FnOnce(RunOptions) -> RunFuture) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report::error(CliError::Runtime(e)),
    };
    let console = Arc::clone(&options.console);
    let store = options.store.clone();
    runtime.block_on(async move {
        let (trigger, interrupt) = interrupt_pair();
        if let Err(e) = install_signal_handlers(trigger) {
            eprintln!("warning: cannot handle SIGINT/SIGTERM: {e}");
        }
        options.interrupt = interrupt.clone();
        let hard_stop = async {
            interrupt.reached(InterruptLevel::Immediate).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        };
        tokio::select! {
            outcome = start(options) => report(&console, &store, outcome),
            () = hard_stop => exit::INTERRUPTED,
        }
    })
}

fn report(console: &Console, store: &Store, outcome: Result<RunOutcome, RunError>) -> i32 {
    console.finish();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return report::error(error),
    };
    let run_dir = crate::run::job::display_path(&outcome.run_dir);
    let stored = crate::run::state::RunDir::new(store, &outcome.run_id);
    if let Ok(Some(plan)) = stored.load_plan() {
        let logs_dir = stored.logs_dir();
        let target = summary::SummaryTarget {
            run_dir: &run_dir,
            logs_dir: &logs_dir,
            colour: stdout_color(),
        };
        console.text(&summary::render(&plan, &outcome.state, &target));
    }
    let meaning = summary::exit_meaning(outcome.status);
    // The text summary already ends with the exit code's meaning; JSON gets an event.
    if console.is_json() {
        console.notice(
        "run_finished",
        None,
        &format!(
            "run {} finished: exit {} ({meaning})",
            outcome.run_id, outcome.exit_code
        ),
            json!({"run": outcome.run_id, "status": outcome.status, "exit_code": outcome.exit_code}),
        );
    }
    outcome.exit_code
}

/// Whether to colour the summary's statuses: only on a terminal, and never with `NO_COLOR`.
fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The plan, the source file (for `.pipe` input) and the pipeline directory.
fn load_plan(file: &Path) -> Result<(Plan, Option<PathBuf>, PathBuf), i32> {
    let is_json = file.extension().is_some_and(|ext| ext == "json");
    if is_json {
        let text = crate::compilation::read_entry(file)
            .map_err(|failure| report::error(CliError::Source(failure)))?;
        let plan = Plan::from_json(&text).map_err(|source| {
            report::error(CliError::InvalidPlanFile {
                file: file.to_path_buf(),
                source,
            })
        })?;
        let dir = plan_pipeline_dir(&plan, file);
        return Ok((plan, None, dir));
    }
    let compilation = compile_file(file);
    let rendered = (!compilation.diagnostics.is_empty() || compilation.failure.is_some())
        .then(|| compilation.render(super::stderr_color()));
    match compilation.plan {
        Some(plan) if !compilation.has_errors() => {
            if let Some(warnings) = rendered {
                eprint!("{warnings}");
            }
            let absolute = absolute(file);
            let dir = absolute
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            Ok((plan, Some(absolute), dir))
        }
        _ => Err(report::error(CliError::Diagnostics(
            rendered.unwrap_or_default(),
        ))),
    }
}

/// A plan's steps run where its source file was: `source_file` is as written when it was
/// compiled (relative to that directory); when it cannot be found, the plan file's directory.
fn plan_pipeline_dir(plan: &Plan, plan_file: &Path) -> PathBuf {
    let source = absolute(Path::new(&plan.source_file));
    match source.parent() {
        Some(dir) if !plan.source_file.is_empty() && dir.is_dir() => dir.to_path_buf(),
        _ => absolute(plan_file)
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn dry(
    plan: &Plan,
    args: &RunArgs,
    pipeline_dir: &Path,
    store: &Store,
    delivery: Option<&dyn DeliveryExecutor>,
) -> i32 {
    let selected = match (&args.until, args.only.is_empty()) {
        (Some(until), _) => match selection::until(plan, until) {
            Ok(selected) => Some(selected),
            Err(e) => return report::error(e),
        },
        (None, false) => {
            for name in &args.only {
                if let Err(e) = selection::known_node(plan, name, "--only") {
                    return report::error(e);
                }
            }
            Some(selection::with_whole_groups(
                plan,
                args.only.iter().cloned().collect(),
            ))
        }
        (None, true) => None,
    };
    let host_env = host_environment();
    let secrets = SecretValues::load(plan, pipeline_dir, &host_env);
    let redactor = Redactor::new(secrets.all_values());
    let (bindings, _) = base_bindings(plan, "dry-run", &GitInfo::read(pipeline_dir), None);
    let approver = args
        .common
        .approver
        .clone()
        .or_else(|| host_env.get("USER").cloned());
    let input = DryRunInput {
        plan,
        bindings: &bindings,
        redactor: &redactor,
        store,
        pipeline_dir,
        delivery,
        selected: selected.as_ref(),
        approvals: &args.common.approve,
        approver: approver.as_deref(),
    };
    print!("{}", dry_run::describe(&input));
    exit::SUCCESS
}
