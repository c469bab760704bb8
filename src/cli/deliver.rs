//! `pipe plan`, `pipe rollback`, `pipe drill` and `pipe releases`: the delivery commands that work from the
//! pipeline file (or the newest stored run plan) and the ledgers under the state directory.

use super::OutputFormat;
use super::exit;
use super::report::{self, CliError, known_names};
use super::run::parse_duration;
use super::state::{PipelineFileArg, StateArgs};
use crate::compilation::compile_file;
use crate::compile::plan::Plan;
use crate::deliver::approval::resolve_approver;
use crate::deliver::drill::{Clock, DrillOutcome, DrillReport, DrillRequest, run_drill};
use crate::deliver::executor::{DrillRunner, RunnerHost};
use crate::deliver::host::StepContext;
use crate::deliver::ledger::{Ledger, Release};
use crate::deliver::manual::{ManualError, rollback_by_hand};
use crate::deliver::probe_value::format_duration;
use crate::deliver::release_plan::{Places, release_plan, render_text};
use crate::deliver::request::{ApprovalInput, ArtifactRef, DeliveryRequest, bind_environment};
use crate::run::console::Console;
use crate::run::context::{GitInfo, base_bindings};
use crate::run::eval;
use crate::run::interrupt::{install_signal_handlers, interrupt_pair};
use crate::run::process::{KILL_GRACE, StepRunner, host_environment};
use crate::run::redact::Redactor;
use crate::run::secrets::{SecretUnavailable, SecretValues};
use crate::run::state::list_runs;
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    file: PipelineFileArg,
    #[command(flatten)]
    state: StateArgs,
    /// `text` for people, `json`: one document for machines
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// The environment to roll back
    environment: String,
    /// Roll back to this release instead of the newest other stable one
    #[arg(long = "to", value_name = "VERSION")]
    to_version: Option<String>,
    #[command(flatten)]
    file: PipelineFileArg,
    #[command(flatten)]
    state: StateArgs,
    /// How long to wait for a promote holding the environment's lock
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    lock_timeout: Duration,
    /// Who is rolling back, for the audit log (default: $PIPE_APPROVER, then $USER)
    #[arg(long)]
    approver: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ReleasesArgs {
    /// Only this environment
    environment: Option<String>,
    #[command(flatten)]
    file: PipelineFileArg,
    #[command(flatten)]
    state: StateArgs,
    /// `text` for people, `json`: one document for machines
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

fn pipeline_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The plan from the pipeline file, or (when the file is missing) the newest run's stored plan:
/// during an incident the checkout may not be at hand, the state directory is.
fn load_plan(file: &Path, store: &Store) -> Result<Plan, CliError> {
    if file.exists() {
        let compilation = compile_file(file);
        return match compilation.plan {
            Some(plan) if !compilation.has_errors() => Ok(plan),
            _ => Err(CliError::Diagnostics(
                compilation.render(super::stderr_color()),
            )),
        };
    }
    // Run ids sort by start time, so the first run with a plan is the newest.
    let mut newest_plan = list_runs(store)
        .into_iter()
        .map(|run| (run.load_plan(), run));
    match newest_plan.find(|(plan, _)| !matches!(plan, Ok(None))) {
        Some((Ok(Some(plan)), _)) => Ok(plan),
        Some((Err(source), run)) => Err(CliError::InvalidStoredPlan {
            run: run.id().to_string(),
            source,
        }),
        _ => Err(CliError::NoPlan {
            file: file.to_path_buf(),
            state: store.describe(),
        }),
    }
}

/// `pipe plan [FILE]`
pub fn plan(args: &PlanArgs) -> i32 {
    let (store, _) = match args.state.open(&args.file.path()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let plan = match load_plan(&args.file.path(), &store) {
        Ok(plan) => plan,
        Err(error) => return report::error(error),
    };
    let pipeline_dir = pipeline_dir(&args.file.path());
    let git = GitInfo::read(&pipeline_dir);
    if let Some(warning) = git.missing_warning(&plan, &pipeline_dir) {
        eprintln!("warning: {warning}");
    }
    let (bindings, _) = base_bindings(&plan, "<next run>", &git, None);
    let places = Places {
        store: &store,
        pipeline_dir: &pipeline_dir,
    };
    let release = match release_plan(&plan, &places, &bindings) {
        Ok(release) => release,
        Err(error) => return report::error(CliError::Ledgers(error)),
    };
    match args.format {
        OutputFormat::Text => print!("{}", render_text(&release)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&release).unwrap_or_default()
        ),
    }
    exit::SUCCESS
}

/// `pipe releases [ENV]`
pub fn releases(args: &ReleasesArgs) -> i32 {
    let (store, _) = match args.state.open(&args.file.path()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let pipeline = match load_plan(&args.file.path(), &store) {
        Ok(plan) => plan.pipeline,
        Err(error) => return report::error(error),
    };
    let environments = match &args.environment {
        Some(environment) => vec![environment.clone()],
        None => match store.state().ledger_environments(&pipeline) {
            Ok(environments) => environments,
            Err(source) => return report::error(CliError::LedgerList { pipeline, source }),
        },
    };
    let mut rows = Vec::new();
    let mut unknown = Vec::new();
    for environment in &environments {
        match Ledger::load(&store, &pipeline, environment) {
            Ok(ledger) => {
                if let Some(why) = ledger.unknown_state() {
                    unknown.push(format!("{environment}: state unknown: {why}"));
                }
                rows.extend(
                    ledger
                        .releases()
                        .iter()
                        .rev()
                        .map(|r| (environment.clone(), r.clone())),
                )
            }
            Err(source) => {
                let environment = environment.clone();
                return report::error(CliError::Ledger {
                    environment,
                    source,
                });
            }
        }
    }
    match args.format {
        OutputFormat::Json => {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|(environment, release)| {
                    let mut value = serde_json::to_value(release).unwrap_or_default();
                    if let Some(object) = value.as_object_mut() {
                        object.insert("environment".into(), environment.clone().into());
                    }
                    value
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        OutputFormat::Text => print!("{}", releases_table(&pipeline, &rows)),
    }
    // On stderr, so `--format json` stays a plain array of releases.
    for line in &unknown {
        eprintln!("warning: {line}");
    }
    exit::SUCCESS
}

fn releases_table(pipeline: &str, rows: &[(String, crate::deliver::ledger::Release)]) -> String {
    if rows.is_empty() {
        return format!("no releases of {pipeline} recorded yet\n");
    }
    let mut out = format!(
        "{:<12} {:<28} {:<19} {:<12} {:<20} {}\n",
        "ENVIRONMENT", "VERSION", "DIGEST", "STATUS", "WHEN", "RUN"
    );
    for (environment, release) in rows {
        let digest: String = release.digest.chars().take(19).collect();
        let when: String = release
            .started_at
            .replace('T', " ")
            .chars()
            .take(19)
            .collect();
        out.push_str(&format!(
            "{:<12} {:<28} {:<19} {:<12} {:<20} {}\n",
            environment,
            release.version,
            digest,
            release.status.to_string(),
            when,
            release.run
        ));
    }
    out
}

/// `pipe rollback ENV [--to VERSION]`
pub fn rollback(args: &RollbackArgs) -> i32 {
    let (store, _) = match args.state.open(&args.file.path()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let plan = match load_plan(&args.file.path(), &store) {
        Ok(plan) => plan,
        Err(error) => return report::error(error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return report::error(CliError::Runtime(error)),
    };
    let _entered = runtime.enter();
    let prepared = match prepare_rollback(args, &plan, store, runtime.handle()) {
        Ok(prepared) => prepared,
        Err(error) => return report::error(error),
    };
    // The host blocks on the runtime, so the rollback runs off the runtime's own thread.
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| prepared.run(args.to_version.as_deref()))
            .join()
    });
    match outcome {
        Ok(Ok(target)) => {
            println!(
                "{} rolled back to {} ({}) and verified",
                args.environment, target.version, target.digest
            );
            exit::SUCCESS
        }
        Ok(Err(error)) => report::error(error),
        Err(_) => exit::ROLLBACK_FAILED,
    }
}

/// A rollback by hand ready to run: the request, a host over a fresh step runner, and the
/// secret values the audit log must redact.
struct PreparedRollback {
    request: DeliveryRequest,
    host: RunnerHost,
    secret_values: Vec<String>,
}

impl PreparedRollback {
    fn run(&self, to_version: Option<&str>) -> Result<Release, ManualError> {
        let audit = self
            .request
            .store
            .audit()
            .map_err(ManualError::AuditUnopenable)?;
        audit.set_secrets(self.secret_values.clone());
        rollback_by_hand(&self.request, to_version, &self.host, &audit)
    }
}

fn prepare_rollback(
    args: &RollbackArgs,
    plan: &Plan,
    store: Store,
    handle: &tokio::runtime::Handle,
) -> Result<PreparedRollback, CliError> {
    let promote = plan
        .promotes
        .get(&args.environment)
        .cloned()
        .ok_or_else(|| CliError::UnknownPromote {
            pipeline: plan.pipeline.clone(),
            environment: args.environment.clone(),
            known: known_names(plan.promotes.keys()),
        })?;
    let run_id = standalone_run_id("rollback");
    let standalone = Standalone::new(plan, &args.file.path(), args.approver.as_deref(), &run_id);
    let host = standalone.host(&store, &promote.secrets, handle)?;
    let request = DeliveryRequest {
        pipeline: plan.pipeline.clone(),
        promote,
        environments: plan.environments.clone(),
        run_id,
        store,
        artifact: ArtifactRef {
            name: String::new(),
            digest: String::new(),
            path: String::new(),
            version: String::new(),
        },
        bindings: standalone.bindings,
        approval: ApprovalInput::default(),
        lock_timeout: args.lock_timeout,
        actor: standalone.actor,
    };
    Ok(PreparedRollback {
        request,
        host,
        secret_values: standalone.secrets.all_values(),
    })
}

#[derive(clap::Args, Debug)]
pub struct DrillArgs {
    /// The drill to run (`drill NAME { … }` in the pipeline)
    #[arg(required_unless_present_any = ["due", "status"], conflicts_with_all = ["due", "status"])]
    name: Option<String>,
    /// Restore this stored backup (`sha256:HEX`, as the drill's evidence names it) instead of
    /// taking a new one
    #[arg(long, value_name = "DIGEST", requires = "name")]
    from: Option<String>,
    /// Run every drill that is overdue or has never passed; exit 1 if any fails
    #[arg(long, conflicts_with = "status")]
    due: bool,
    /// List each drill's last pass, last failure, age and when it is due; exit 1 if any is due
    #[arg(long)]
    status: bool,
    #[command(flatten)]
    file: PipelineFileArg,
    #[command(flatten)]
    state: StateArgs,
    /// Who runs the drill, for the audit log (default: $PIPE_APPROVER, then $USER)
    #[arg(long)]
    actor: Option<String>,
    /// `text` for people, `json`: one document for machines
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

/// `pipe drill NAME`: backup → timed restore → verify, judged against the RTO and RPO;
/// `--due` runs the drills that are due, `--status` lists where each stands.
pub fn drill(args: &DrillArgs) -> i32 {
    let (store, _) = match args.state.open(&args.file.path()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let plan = match load_plan(&args.file.path(), &store) {
        Ok(plan) => plan,
        Err(error) => return report::error(error),
    };
    let clock = match super::drill_schedule::clock_from_env() {
        Ok(clock) => clock,
        Err(error) => return report::error(error),
    };
    if args.status {
        return super::drill_schedule::status(&plan, &store, clock, args.format);
    }
    if args.due {
        let due = match super::drill_schedule::due_drills(&plan, &store, clock) {
            Ok(due) => due,
            Err(error) => return report::error(error),
        };
        if due.is_empty() {
            println!("no drill is due");
        }
        let mut worst = exit::SUCCESS;
        for name in due {
            let code = run_one_drill(args, &plan, &store, &name, clock);
            worst = if code == exit::INTERRUPTED {
                return code;
            } else {
                worst.max(code)
            };
        }
        return worst;
    }
    let Some(name) = &args.name else {
        return report::error(CliError::NoDrillNamed);
    };
    run_one_drill(args, &plan, &store, name, clock)
}

fn run_one_drill(args: &DrillArgs, plan: &Plan, store: &Store, name: &str, clock: Clock) -> i32 {
    let Some(drill) = plan.drills.get(name) else {
        let known = known_names(plan.drills.keys());
        return report::error(CliError::UnknownDrill {
            pipeline: plan.pipeline.clone(),
            name: name.to_string(),
            known: if known.is_empty() {
                "none".to_string()
            } else {
                known
            },
        });
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return report::error(CliError::Runtime(error)),
    };
    let _entered = runtime.enter();
    let run_id = standalone_run_id("drill");
    let standalone = Standalone::new(plan, &args.file.path(), args.actor.as_deref(), &run_id);
    let host = match standalone.host(store, &drill.secrets, runtime.handle()) {
        Ok(host) => host,
        Err(error) => return report::error(error),
    };
    let audit = match store.audit() {
        Ok(audit) => audit,
        Err(error) => return report::error(CliError::AuditUnopenable(error)),
    };
    audit.set_secrets(standalone.secrets.all_values());
    let mut bindings = standalone.bindings.clone();
    bind_environment(&mut bindings, &plan.environments, &drill.environment);
    let variables = BTreeMap::from([
        ("PIPE_ENVIRONMENT".to_string(), drill.environment.clone()),
        ("PIPE_DRILL".to_string(), name.to_string()),
    ]);
    let runner = DrillRunner {
        host,
        context: StepContext {
            bindings,
            variables,
        },
    };
    let request = DrillRequest {
        name,
        drill,
        pipeline: &plan.pipeline,
        store,
        workdir: &standalone.workdir,
        run_id: &run_id,
        actor: &standalone.actor,
        from: args.from.as_deref(),
        clock,
    };
    // The host blocks on the runtime, so the drill runs off the runtime's own thread.
    let outcome =
        std::thread::scope(|scope| scope.spawn(|| run_drill(&request, &runner, &audit)).join());
    match outcome {
        Ok(Ok((report, path))) => report_drill(&report, &path, args.format),
        Ok(Err(error)) => report::error(error),
        Err(_) => report::error(CliError::DrillPanicked),
    }
}

fn report_drill(report: &DrillReport, path: &str, format: OutputFormat) -> i32 {
    match format {
        OutputFormat::Json => match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(error) => return report::error(error),
        },
        OutputFormat::Text => {
            let shown = |ms: Option<u64>| ms.map_or("-".to_string(), format_duration);
            println!("{}", report.summary());
            println!("  backup       {}", shown(report.backup_ms));
            println!(
                "  restore      {}  (RTO {})",
                shown(report.restore_ms),
                format_duration(report.rto_ms)
            );
            println!("  verify       {}", shown(report.verify_ms));
            println!(
                "  backup age   {}  (RPO {})",
                shown(report.backup_age_ms),
                format_duration(report.rpo_ms)
            );
            if let Some(backup) = &report.backup {
                println!(
                    "  backup       {} ({} bytes, taken {})",
                    backup.digest, backup.size, backup.created_at
                );
            }
            for failure in &report.failures {
                println!("  failed: {failure}");
            }
            println!("evidence: {path}");
        }
    }
    match report.outcome {
        DrillOutcome::Passed => exit::SUCCESS,
        DrillOutcome::Failed => exit::FAILED,
        DrillOutcome::Interrupted => exit::INTERRUPTED,
    }
}

/// A run id for work outside a `pipe run`: `20261124-101500-rollback-4242`.
fn standalone_run_id(what: &str) -> String {
    format!(
        "{}-{what}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        std::process::id()
    )
}

/// What `pipe rollback` and `pipe drill` share with `pipe run`: the actor, the bindings of
/// `${{ }}`, the pipeline's `env`, secret values and a step runner with Ctrl-C handling.
struct Standalone {
    run_id: String,
    actor: String,
    workdir: PathBuf,
    host_env: BTreeMap<String, String>,
    secrets: SecretValues,
    bindings: crate::run::eval::Bindings,
    pipeline_env: BTreeMap<String, String>,
}

impl Standalone {
    fn new(plan: &Plan, file: &Path, approver: Option<&str>, run_id: &str) -> Standalone {
        let host_env = host_environment();
        let actor = resolve_approver(
            approver,
            host_env.get("PIPE_APPROVER").map(String::as_str),
            host_env.get("USER").map(String::as_str),
        )
        .unwrap_or_else(|| "unknown".to_string());
        let workdir = pipeline_dir(file);
        let secrets = SecretValues::load(plan, &workdir, &host_env);
        let (bindings, _) = base_bindings(plan, run_id, &GitInfo::read(&workdir), None);
        let pipeline_env = plan
            .env
            .iter()
            .map(|(key, template)| (key.clone(), eval::render_lenient(template, &bindings)))
            .collect();
        Standalone {
            run_id: run_id.to_string(),
            actor,
            workdir,
            host_env,
            secrets,
            bindings,
            pipeline_env,
        }
    }

    /// A host whose processes receive the `wanted` secrets, logging under the run's directory.
    fn host(
        &self,
        store: &Store,
        wanted: &[String],
        handle: &tokio::runtime::Handle,
    ) -> Result<RunnerHost, SecretUnavailable> {
        let secrets = self.secrets.select(wanted)?;
        let (trigger, interrupt) = interrupt_pair();
        let _ = install_signal_handlers(trigger);
        let steps = Arc::new(StepRunner {
            run_id: self.run_id.clone(),
            logs_dir: Some(store.logs_dir(&self.run_id)),
            redactor: Redactor::new(self.secrets.all_values()),
            console: Arc::new(Console::plain()),
            interrupt,
            kill_grace: KILL_GRACE,
            host_env: self.host_env.clone(),
        });
        Ok(RunnerHost::standalone(
            steps,
            handle.clone(),
            self.workdir.clone(),
            self.pipeline_env.clone(),
            secrets,
        ))
    }
}
