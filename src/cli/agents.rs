//! `pipe approve` (an approval recorded for a stopped run's promote, consumed by a later
//! resume) and `pipe gc` (old runs and unreferenced artifacts removed): shared-state chores.

use super::exit;
use super::report::{self, CliError};
use super::state::{StateArgs, pipeline_file};
use crate::audit::AuditEvent;
use crate::deliver::approve_later::{self, ApproveRequest};
use crate::run::gc::{self, Keep};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct ApproveArgs {
    /// The run whose promote is approved (as `pipe run` or `pipe runs` printed it)
    pub run: String,
    /// The environment of the promote
    pub environment: String,
    /// Who approves [default: $PIPE_APPROVER, then $USER]
    #[arg(long, env = "PIPE_APPROVER", value_name = "NAME")]
    pub approver: Option<String>,
    /// Where the approval comes from, for the audit log (a ticket, a chat link, …)
    #[arg(long, value_name = "S", default_value = "cli")]
    pub source: String,
    /// A file kept as evidence: its SHA-256 is recorded with the approval and audited
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct GcArgs {
    /// List what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the newest N runs [default: 20]
    #[arg(long, value_name = "N", conflicts_with = "older_than")]
    pub keep_runs: Option<usize>,
    /// Remove runs started longer ago than DURATION (e.g. 7d, 12h)
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: Option<Duration>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `pipe approve`: exit 0 when recorded, 2 when refused or impossible.
pub fn approve(args: &ApproveArgs) -> i32 {
    let (store, _) = match args.state.open(&pipeline_file(None)) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let user = std::env::var("USER").ok();
    let Some(approver) =
        crate::deliver::approval::resolve_approver(args.approver.as_deref(), None, user.as_deref())
    else {
        return report::error(CliError::NoApprover);
    };
    let request = ApproveRequest {
        run: args.run.clone(),
        environment: args.environment.clone(),
        approver: approver.clone(),
        source: args.source.clone(),
        evidence: args.evidence.clone(),
    };
    match approve_later::record(&store, &request) {
        Ok(recorded) => {
            println!(
                "approval by {approver} recorded for {} in run {} ({}/{}); `pipe resume {}` \
                 continues the promote",
                args.environment, args.run, recorded.count, recorded.quorum, args.run
            );
            exit::SUCCESS
        }
        Err(error) => report::error(error),
    }
}

/// `pipe gc`: exit 0 when done (or listed), 1 when a removal failed.
pub fn collect(args: &GcArgs) -> i32 {
    let (store, _) = match args.state.open(&pipeline_file(None)) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let keep = match (args.older_than, args.keep_runs) {
        (Some(age), _) => Keep::Younger(age),
        (None, count) => Keep::Newest(count.unwrap_or(20)),
    };
    let collection = match gc::plan(&store, keep) {
        Ok(collection) => collection,
        Err(error) => return report::error(CliError::Gc(error)),
    };
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removing"
    };
    for run in &collection.runs {
        println!("{verb} run {run}");
    }
    for digest in &collection.artifacts {
        println!("{verb} artifact {digest}");
    }
    for (run, why) in &collection.in_use {
        println!("keeping run {run}: {why}");
    }
    if args.dry_run {
        return exit::SUCCESS;
    }
    if let Err(error) = audit_collection(&store, &collection)
        .and_then(|()| gc::remove(&store, &collection).map_err(CliError::Gc))
    {
        return report::error(error);
    }
    println!(
        "removed {} runs and {} artifacts",
        collection.runs.len(),
        collection.artifacts.len()
    );
    exit::SUCCESS
}

/// Audited before anything is removed: the chain names what went.
fn audit_collection(
    store: &crate::store::Store,
    collection: &gc::Collection,
) -> Result<(), CliError> {
    let audit = store.audit().map_err(CliError::AuditUnopenable)?;
    let actor = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    let fields = json!({"runs": collection.runs, "artifacts": collection.artifacts});
    audit
        .append("gc", AuditEvent::GcFinished, &actor, fields)
        .map_err(|source| CliError::Output {
            what: "audit log",
            source,
        })
}

/// `7d`, `12h`, `30m`, `45s`.
fn parse_age(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not an age (e.g. 7d, 12h, 30m)");
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}
