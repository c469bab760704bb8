//! `pipe audit verify|show|export` and `pipe evidence`: check the audit log's hash chain, print
//! it as a timeline, export it as JSON lines, or gather it into an auditor's report. Exit codes:
//! 0 intact (or shown), 1 the chain is broken or there is no log, 2 usage.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use super::exit;
use super::report::{self, CliError};
use super::state::{PipelineFileArg, StateArgs};
use crate::audit::{self, AuditRecord, VerifyError};
use crate::store::{Location, Store};

/// Which state a reading command looks at: the pipeline file's, by the common rule.
#[derive(clap::Args, Debug, Clone)]
pub struct StateSource {
    #[command(flatten)]
    pub file: PipelineFileArg,
    #[command(flatten)]
    pub state: StateArgs,
}

impl StateSource {
    fn open(&self) -> Result<(Store, Location), i32> {
        self.state.open(&self.file.path())
    }
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log and name the first bad line (exit 1 if broken)
    Verify {
        #[command(flatten)]
        source: StateSource,
    },
    /// Print the audit log as a readable timeline, one event per line
    Show {
        /// Only events of this run
        #[arg(long)]
        run: Option<String>,
        /// Only events about this environment (their `environment` field)
        #[arg(long)]
        env: Option<String>,
        #[command(flatten)]
        source: StateSource,
        /// text: one line per event; json: an array of the stored records
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Write the whole chain as JSON lines, byte for byte what `audit.jsonl` holds, whatever
    /// backend keeps it (exit 1, after writing, if it does not verify)
    Export {
        /// The file to write [default: stdout]
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
        #[command(flatten)]
        source: StateSource,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowFormat {
    Text,
    Json,
}

/// Runs one `pipe audit` command and returns its exit code.
pub fn audit(command: AuditCommand) -> i32 {
    let (AuditCommand::Verify { source }
    | AuditCommand::Show { source, .. }
    | AuditCommand::Export { source, .. }) = &command;
    let store = match source.open() {
        Ok((store, _)) => store,
        Err(code) => return code,
    };
    match command {
        AuditCommand::Verify { .. } => verify(&store),
        AuditCommand::Show {
            run, env, format, ..
        } => show(&store, run.as_deref(), env.as_deref(), format),
        AuditCommand::Export { output, .. } => export(&store, output.as_deref()),
    }
}

/// Writes the stored lines unchanged (an exported chain verifies with the same hashes), then
/// says whether they verify.
fn export(store: &Store, output: Option<&Path>) -> i32 {
    let bytes = match store.state().read_audit() {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return report::error(CliError::NoAuditLog(store.state().describe_audit())),
        Err(error) => return report::error(CliError::AuditUnreadable(error)),
    };
    let written = match output {
        Some(path) => {
            crate::fsutil::write_atomic(path, &bytes).map_err(|source| CliError::Unwritable {
                file: path.to_path_buf(),
                source,
            })
        }
        None => match std::io::stdout().lock().write_all(&bytes) {
            Err(source) if source.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(CliError::Output {
                    what: "audit log",
                    source,
                })
            }
            _ => Ok(()),
        },
    };
    if let Err(error) = written {
        return report::error(error);
    }
    match audit::verify_bytes(&bytes) {
        Ok(_) => exit::SUCCESS,
        Err(source) => report::error(CliError::ExportedBroken {
            log: store.state().describe_audit(),
            source,
        }),
    }
}

fn verify(store: &Store) -> i32 {
    match store.verify_audit() {
        Ok(summary) => {
            for warning in &summary.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "audit log OK: {} events, chain intact (last hash {})",
                summary.events, summary.last_hash
            );
            exit::SUCCESS
        }
        Err(source @ VerifyError::BadLine { .. }) => report::error(CliError::AuditBroken {
            log: store.state().describe_audit(),
            source,
        }),
        Err(error) => report::error(CliError::AuditVerify(error)),
    }
}

fn show(store: &Store, run: Option<&str>, env: Option<&str>, format: ShowFormat) -> i32 {
    let bytes = match store.state().read_audit() {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return report::error(CliError::NoAuditLog(store.state().describe_audit()));
        }
        Err(error) => return report::error(CliError::AuditUnreadable(error)),
    };
    let records = audit::records_of(&bytes);
    let selected: Vec<&AuditRecord> = records
        .iter()
        .filter(|record| matches(record, run, env))
        .collect();
    let text = match format {
        ShowFormat::Text => selected
            .iter()
            .map(|record| audit::timeline_line(record) + "\n")
            .collect(),
        ShowFormat::Json => {
            let array = Value::Array(selected.iter().map(|record| record.to_json()).collect());
            format!("{array:#}\n")
        }
    };
    // A closed pipe (`pipe audit show | head`) is the reader's choice, not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(source) => {
            return report::error(CliError::Output {
                what: "timeline",
                source,
            });
        }
    }
    exit::SUCCESS
}

/// Whether a record passes the `--run` and `--env` filters.
fn matches(record: &AuditRecord, run: Option<&str>, env: Option<&str>) -> bool {
    run.is_none_or(|run| record.run == run)
        && env.is_none_or(|env| record.environment() == Some(env))
}

#[derive(clap::Args, Debug)]
pub struct EvidenceArgs {
    /// Only events from this day or time on (`2026-11-01` or RFC 3339)
    #[arg(long, value_parser = parse_since)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    #[command(flatten)]
    source: StateSource,
    /// md: a report for a person; json: the records by section
    #[arg(long, value_enum, default_value_t = EvidenceFormat::Md)]
    format: EvidenceFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceFormat {
    Md,
    Json,
}

/// `2026-11-01` (midnight UTC) or a full RFC 3339 time.
/// A `--since` value that is neither form.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a date (2026-11-01) or an RFC 3339 time")]
struct NotADate(String);

fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, NotADate> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| NotADate(text.to_string()))
}

/// `pipe evidence`: refuses a log whose chain does not verify (the report would vouch for
/// records that may have been edited), then prints the report.
pub fn evidence(args: &EvidenceArgs) -> i32 {
    let (store, location) = match args.source.open() {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let summary = match store.verify_audit() {
        Ok(summary) => summary,
        Err(error) => return report::error(CliError::EvidenceUnverified(error)),
    };
    let records = match store.audit_records() {
        Ok(records) => records,
        Err(error) => return report::error(CliError::AuditUnreadable(error)),
    };
    let chain = audit::evidence::Chain {
        events: summary.events,
        last_hash: summary.last_hash,
    };
    let now = match super::drill_schedule::clock_from_env() {
        Ok(clock) => clock.now(),
        Err(error) => return report::error(error),
    };
    let plan = declared_plan(&args.source.file.path());
    let declared = plan.as_ref().map(|plan| audit::drills::DeclaredDrills {
        pipeline: &plan.pipeline,
        drills: plan
            .drills
            .iter()
            .map(|(name, drill)| audit::drills::Declared {
                name,
                environment: &drill.environment,
                every_ms: drill.every_ms,
            })
            .collect(),
    });
    let report =
        audit::evidence::gather_at(&records, args.since.as_ref(), chain, now, declared.as_ref());
    let text = match args.format {
        EvidenceFormat::Json => format!("{:#}\n", report.to_json()),
        EvidenceFormat::Md => report.to_markdown(&project_name(&location)),
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => exit::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => exit::SUCCESS,
        Err(source) => report::error(CliError::Output {
            what: "report",
            source,
        }),
    }
}

/// The pipeline's plan, so drills that never ran are listed too; without a pipeline file that
/// compiles, the report lists the drills the log knows (and says why on stderr).
fn declared_plan(file: &Path) -> Option<crate::compile::plan::Plan> {
    if !file.exists() {
        return None;
    }
    let compilation = crate::compilation::compile_file(file);
    match compilation.plan {
        Some(plan) if !compilation.has_errors() => Some(plan),
        _ => {
            eprintln!(
                "warning: {} does not compile: drills that never ran are not listed",
                file.display()
            );
            None
        }
    }
}

/// The directory the state directory sits in, for the report's title.
fn project_name(location: &Location) -> String {
    let Some(state_dir) = location.directory() else {
        return "pipe".to_string();
    };
    let absolute = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    absolute.parent().and_then(Path::file_name).map_or_else(
        || absolute.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
