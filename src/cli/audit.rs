//! `pipe audit verify|show`: checks the audit log's hash chain and prints it as a timeline.
//! Exit codes: 0 intact (or shown), 1 the chain is broken or there is no log, 2 usage.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use super::exit;
use crate::audit::{self, AuditRecord, VerifyError};

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log and name the first bad line (exit 1 if broken)
    Verify {
        /// The state directory holding audit.jsonl
        #[arg(long, default_value = ".pipe")]
        state_dir: PathBuf,
    },
    /// Print the audit log as a readable timeline, one event per line
    Show {
        /// Only events of this run
        #[arg(long)]
        run: Option<String>,
        /// Only events about this environment (their `environment` field)
        #[arg(long)]
        env: Option<String>,
        /// The state directory holding audit.jsonl
        #[arg(long, default_value = ".pipe")]
        state_dir: PathBuf,
        /// text: one line per event; json: an array of the stored records
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowFormat {
    Text,
    Json,
}

/// Runs one `pipe audit` command and returns its exit code.
pub fn audit(command: AuditCommand) -> i32 {
    match command {
        AuditCommand::Verify { state_dir } => verify(&state_dir),
        AuditCommand::Show {
            run,
            env,
            state_dir,
            format,
        } => show(&state_dir, run.as_deref(), env.as_deref(), format),
    }
}

fn verify(state_dir: &Path) -> i32 {
    match audit::verify(state_dir) {
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
        Err(error) => {
            let path = state_dir.join(audit::AUDIT_FILE);
            match error {
                VerifyError::BadLine { .. } => {
                    eprintln!("error: audit log {} is broken: {error}", path.display())
                }
                VerifyError::Missing(_) | VerifyError::Io(_) => eprintln!("error: {error}"),
            }
            exit::FAILED
        }
    }
}

fn show(state_dir: &Path, run: Option<&str>, env: Option<&str>, format: ShowFormat) -> i32 {
    if !state_dir.join(audit::AUDIT_FILE).exists() {
        eprintln!(
            "error: no audit log at {}",
            state_dir.join(audit::AUDIT_FILE).display()
        );
        return exit::FAILED;
    }
    let records = match audit::read_events(state_dir) {
        Ok(records) => records,
        Err(error) => {
            eprintln!("error: cannot read the audit log: {error}");
            return exit::FAILED;
        }
    };
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
        Err(error) => {
            eprintln!("error: cannot write the timeline: {error}");
            return exit::FAILED;
        }
    }
    exit::SUCCESS
}

/// Whether a record passes the `--run` and `--env` filters.
fn matches(record: &AuditRecord, run: Option<&str>, env: Option<&str>) -> bool {
    run.is_none_or(|run| record.run == run)
        && env.is_none_or(|env| record.environment() == Some(env))
}
