//! The one place an error becomes what the user reads and the process's exit code: command
//! modules hand every error here (`error`) instead of printing `error: …` themselves.

use crate::audit::VerifyError;
use crate::compile::plan::PlanError;
use crate::deliver::approve_later::ApproveError;
use crate::deliver::drill::DrillError;
use crate::deliver::manual::ManualError;
use crate::exit;
use crate::run::RunError;
use crate::run::secrets::SecretUnavailable;
use crate::store::StoreError;
use std::path::PathBuf;

/// Every error a command can stop on, with its wording and hint. A back-end error's message
/// already names its cause (the `LockError` shape: `cannot … : {source}`), so it is printed
/// once, not chained again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Rollback(#[from] ManualError),
    #[error(transparent)]
    Drill(#[from] DrillError),
    /// Compiler diagnostics, rendered whole (they carry their own `error[CODE]` headers).
    #[error("{0}")]
    Diagnostics(String),
    /// A pipeline or plan file that cannot be read (the message names the file).
    #[error("{0}")]
    Source(String),
    #[error("{file} is not a valid pipe.plan/v1 plan: {source}")]
    InvalidPlanFile { file: PathBuf, source: PlanError },
    #[error("the plan of run {run} is not valid: {source}")]
    InvalidStoredPlan { run: String, source: StoreError },
    #[error("{file} not found and no stored run plan in {state}")]
    NoPlan { file: PathBuf, state: String },
    #[error("the state directory {0} is not a directory; move the file away or pass --state-dir")]
    StateNotDirectory(PathBuf),
    #[error(transparent)]
    StateLocation(StoreError),
    #[error("--last: no run is recorded in {0}; start one with `pipe run`")]
    NoRunRecorded(String),
    #[error("pipeline {pipeline} has no promote {environment} (promotes: {known})")]
    UnknownPromote {
        pipeline: String,
        environment: String,
        known: String,
    },
    #[error("pipeline {pipeline} has no drill {name} (drills: {known})")]
    UnknownDrill {
        pipeline: String,
        name: String,
        known: String,
    },
    #[error("name a drill, or pass --due or --status")]
    NoDrillNamed,
    #[error(transparent)]
    Secret(#[from] SecretUnavailable),
    #[error("PIPE_NOW=`{0}` is not an RFC 3339 time")]
    BadClock(String),
    #[error("unknown code `{code}`{hint}; `pipe explain` lists them all")]
    UnknownCode { code: String, hint: String },
    #[error("{0} already exists; `pipe check {0}` checks it (--force replaces it)")]
    AlreadyExists(PathBuf),
    #[error("`{0}` is not a pipeline name: use letters, digits, `_` and `-`")]
    NotPipelineName(String),
    #[error("{dir}: {source}")]
    UnresolvableDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// `pipe compile`'s plan could not go where the user sent it.
    #[error("cannot write {target}: {source}")]
    WriteCompiled {
        target: String,
        source: std::io::Error,
    },
    /// `pipe fmt` cannot do its one job on a file the user named.
    #[error("cannot read {dir}: {source}")]
    FmtUnreadableDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {file}: {source}")]
    FmtUnwritable {
        file: String,
        source: std::io::Error,
    },
    #[error("{0}: formatting is not stable here (a bug in `pipe fmt`); the file is unchanged")]
    FmtUnstable(String),
    #[error("cannot write {file}: {source}")]
    Unwritable {
        file: PathBuf,
        source: std::io::Error,
    },
    /// `pipe init`'s own text does not parse or check: a bug, so it is never written.
    #[error("the generated pipeline does not parse (a bug in `pipe init`): {0}")]
    InitUnparsable(String),
    #[error("the generated pipeline does not check (a bug in `pipe init`):\n{0}")]
    InitUnchecked(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read the ledgers: {0}")]
    Ledgers(StoreError),
    #[error("cannot read the ledgers of {pipeline}: {source}")]
    LedgerList {
        pipeline: String,
        source: StoreError,
    },
    #[error("cannot read the ledger of {environment}: {source}")]
    Ledger {
        environment: String,
        source: StoreError,
    },
    #[error("cannot open the audit log: {0}")]
    AuditUnopenable(StoreError),
    #[error("cannot read the audit log: {0}")]
    AuditUnreadable(StoreError),
    #[error("no audit log at {0}")]
    NoAuditLog(String),
    #[error("audit log {log} is broken: {source}")]
    AuditBroken { log: String, source: VerifyError },
    #[error(transparent)]
    AuditVerify(VerifyError),
    #[error("the audit log does not verify: {0}")]
    AuditUnverified(VerifyError),
    #[error("no evidence report from an unverified audit log: {0}")]
    EvidenceUnverified(VerifyError),
    #[error("cannot write the {what}: {source}")]
    Output {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("the drill stopped unexpectedly")]
    DrillPanicked,
    #[error("exported, but audit log {log} is broken: {source}")]
    ExportedBroken { log: String, source: VerifyError },
    #[error("who approves? give --approver NAME (or set $PIPE_APPROVER)")]
    NoApprover,
    #[error(transparent)]
    Approve(#[from] ApproveError),
    #[error("pipe gc: {0}")]
    Gc(StoreError),
    #[error("language server: {0}")]
    Lsp(lsp_server::ProtocolError),
    #[error("language server I/O: {0}")]
    LspIo(std::io::Error),
}

impl CliError {
    /// Nothing ran (a command line, a file or a state the command cannot act on, or a run that
    /// could not start or resume): usage, exit 2. The command ran and could not finish: 1. A
    /// rollback by hand that ran and did not end verified leaves the environment's state unknown.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Rollback(error) if error.state_unknown() => exit::ROLLBACK_FAILED,
            CliError::Rollback(_) | CliError::Drill(_) => exit::FAILED,
            // The state's server could not be reached or read: not a usage error.
            CliError::StateLocation(StoreError::Database { .. } | StoreError::Io { .. }) => {
                exit::FAILED
            }
            CliError::Run(_)
            | CliError::Diagnostics(_)
            | CliError::Source(_)
            | CliError::InvalidPlanFile { .. }
            | CliError::InvalidStoredPlan { .. }
            | CliError::NoPlan { .. }
            | CliError::StateNotDirectory(_)
            | CliError::StateLocation(_)
            | CliError::NoRunRecorded(_)
            | CliError::UnknownPromote { .. }
            | CliError::UnknownDrill { .. }
            | CliError::NoDrillNamed
            | CliError::Secret(_)
            | CliError::BadClock(_)
            | CliError::UnknownCode { .. }
            | CliError::AlreadyExists(_)
            | CliError::NotPipelineName(_)
            | CliError::UnresolvableDir { .. }
            | CliError::WriteCompiled { .. }
            | CliError::FmtUnreadableDir { .. }
            | CliError::FmtUnwritable { .. }
            | CliError::FmtUnstable(_)
            | CliError::NoApprover
            | CliError::Approve(_) => exit::USAGE,
            CliError::Unwritable { .. }
            | CliError::InitUnparsable(_)
            | CliError::InitUnchecked(_)
            | CliError::Runtime(_)
            | CliError::Ledgers(_)
            | CliError::LedgerList { .. }
            | CliError::Ledger { .. }
            | CliError::AuditUnopenable(_)
            | CliError::AuditUnreadable(_)
            | CliError::NoAuditLog(_)
            | CliError::AuditBroken { .. }
            | CliError::AuditVerify(_)
            | CliError::AuditUnverified(_)
            | CliError::EvidenceUnverified(_)
            | CliError::Output { .. }
            | CliError::Json(_)
            | CliError::DrillPanicked
            | CliError::ExportedBroken { .. }
            | CliError::Gc(_)
            | CliError::Lsp(_)
            | CliError::LspIo(_) => exit::FAILED,
        }
    }

    /// What stderr shows: `error: MESSAGE`, except rendered diagnostics, which are whole.
    fn shown(&self) -> String {
        match self {
            CliError::Diagnostics(rendered) if rendered.ends_with('\n') => rendered.clone(),
            _ => format!("error: {self}\n"),
        }
    }
}

/// Prints the error on stderr and returns the exit code it means.
pub(crate) fn error(error: impl Into<CliError>) -> i32 {
    let error = error.into();
    eprint!("{}", error.shown());
    error.exit_code()
}

/// The names a lookup could have used, for "(promotes: a, b)" hints.
pub(crate) fn known_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&str> = names.map(String::as_str).collect();
    known.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_picks_its_exit_code_and_reads_as_its_message() {
        let refused = CliError::from(RunError::OnlyWithUntil);
        assert_eq!(refused.exit_code(), exit::USAGE);
        assert_eq!(refused.to_string(), "--only and --until cannot be combined");
        let unknown = CliError::from(ManualError::RollbackFailed("smoke failed".into()));
        assert_eq!(unknown.exit_code(), exit::ROLLBACK_FAILED);
        assert_eq!(unknown.to_string(), "smoke failed");
        assert_eq!(
            CliError::from(ManualError::NoTarget).exit_code(),
            exit::FAILED
        );
    }

    #[test]
    fn every_message_gets_the_error_prefix_but_rendered_diagnostics_print_whole() {
        assert_eq!(
            CliError::NoDrillNamed.shown(),
            "error: name a drill, or pass --due or --status\n"
        );
        let rendered = "error[E0101]: unknown name\n  --> p.pipe:1:1\n".to_string();
        assert_eq!(CliError::Diagnostics(rendered.clone()).shown(), rendered);
        assert_eq!(CliError::Diagnostics(rendered).exit_code(), exit::USAGE);
    }

    #[test]
    fn a_hint_is_part_of_the_message_it_belongs_to() {
        let exists = CliError::AlreadyExists(PathBuf::from("p/pipeline.pipe"));
        assert_eq!(
            exists.to_string(),
            "p/pipeline.pipe already exists; `pipe check p/pipeline.pipe` checks it (--force \
             replaces it)"
        );
        assert_eq!(exists.exit_code(), exit::USAGE);
        let no_log = CliError::NoAuditLog(".pipe/audit.jsonl".into());
        assert_eq!(no_log.exit_code(), exit::FAILED);
    }
}
