//! Why a run could not start or resume ([`RunError`], each a usage problem (exit 2) that the
//! CLI prints once), and why a job failed around its steps ([`JobError`], a node's message).

use crate::run::eval::{EvalError, NotALiteral};
use crate::run::secrets::SecretUnavailable;
use crate::store::StoreError;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("--only and --until cannot be combined")]
    OnlyWithUntil,
    /// `hint` is a "; did you mean" suffix, or empty.
    #[error("{flag} `{name}`: no such node in pipeline `{pipeline}`{hint}")]
    UnknownNode {
        flag: &'static str,
        name: String,
        pipeline: String,
        hint: String,
    },
    #[error(
        "--only: `{need}` must already have succeeded in an earlier run in {state}, \
         and it has not; run it first or add it to --only"
    )]
    NeedNeverSucceeded { need: String, state: String },
    #[error(
        "--only: `{need}` has not succeeded in run {run}; run it in that run first (another \
         agent, or add it to --only)"
    )]
    NeedNotSucceededInRun { need: String, run: String },
    #[error(
        "--run-id `{run}`: a run id is letters, digits, `.`, `_` and `-` (at most 128, not \
         starting with `.`)"
    )]
    BadRunId { run: String },
    #[error(
        "refusing to join run {run}: it runs another plan ({stored}; this one is {this}); \
         pick another --run-id, or run the same pipeline file"
    )]
    RunPlanDiffers {
        run: String,
        stored: String,
        this: String,
    },
    #[error("cannot record run {run} in {state}: {source}")]
    RunUncreatable {
        run: String,
        state: String,
        #[source]
        source: StoreError,
    },
    #[error("--override `{gate}`: no such gate{hint}")]
    UnknownGate { gate: String, hint: String },
    #[error("--override `{gate}` needs --reason \"why\"")]
    OverrideWithoutReason { gate: String },
    #[error(
        "refusing to override gate `{gate}`: it is upstream of protected environment `{environment}`; \
         give --approver NAME (or $PIPE_APPROVER) to take responsibility"
    )]
    OverrideWithoutApprover { gate: String, environment: String },
    /// `hint` is a "; did you mean" or "the latest run" suffix, or empty.
    #[error("no run `{run}` to resume ({state} has no readable plan and state for it){hint}")]
    NoSuchRun {
        run: String,
        state: String,
        hint: String,
    },
    /// A stored document that parses but cannot be used, named with where it is.
    #[error("cannot resume from {0}")]
    StoredRunInvalid(#[source] StoreError),
    #[error("cannot resume: {0}")]
    StoredRunUnreadable(#[source] StoreError),
    #[error(
        "cannot read the pipeline file {file} of this checkout ({source}); resume from the checkout run {run} started from, or give --file"
    )]
    CheckoutUnreadable {
        file: String,
        run: String,
        source: io::Error,
    },
    #[error(
        "{file} does not match the plan of run {run}: the plan was compiled from sha256:{plan_sha256} and the file is sha256:{file_sha256}; \
         resume from the checkout the run started from, or pass --force to resume the stored plan anyway"
    )]
    CheckoutChanged {
        file: String,
        run: String,
        plan_sha256: String,
        file_sha256: String,
    },
    #[error("{0}")]
    StateUnwritable(#[from] StoreError),
    #[error("cannot open the audit log: {0}")]
    AuditUnopenable(#[source] StoreError),
    #[error("cannot open the audit log in {state}: {source}")]
    AuditUnopenableIn { state: String, source: StoreError },
    #[error("cannot write the audit log: {0}")]
    AuditUnwritable(#[source] io::Error),
    /// The pipeline's `env` did not evaluate; the text is already redacted, since it may
    /// quote a secret's value.
    #[error("{0}")]
    PipelineEnv(String),
}

/// An item's `env` value that did not evaluate.
#[derive(Debug, thiserror::Error)]
#[error("env `{name}`: {source}")]
pub struct EnvError {
    pub name: String,
    pub source: EvalError,
}

/// Why a job failed before its steps ran or after they succeeded; the runner redacts the
/// message before it is kept, since a value may quote a secret.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Secret(#[from] SecretUnavailable),
    #[error(
        "workdir `{workdir}` resolves to {resolved}, outside the workspace {workspace} (set `outside_workspace = true` on the job to allow it)"
    )]
    OutsideWorkspace {
        workdir: String,
        resolved: PathBuf,
        workspace: PathBuf,
    },
    #[error("declared output `{0}` was not written to $PIPE_OUTPUT")]
    MissingOutput(String),
    #[error("output `{key}`: {source}")]
    IllTypedOutput { key: String, source: NotALiteral },
    #[error("artifact `{0}` is not declared in the plan")]
    UndeclaredArtifact(String),
    #[error("artifact `{name}` could not be stored: {source}")]
    ArtifactTask {
        name: String,
        source: tokio::task::JoinError,
    },
    #[error("artifact `{name}` could not be stored from `{path}`: {source}")]
    ArtifactUnstored {
        name: String,
        path: String,
        source: io::Error,
    },
}

/// Why a promote group could not be handed to the delivery executor; its first node's message.
#[derive(Debug, thiserror::Error)]
pub enum PromoteSetupError {
    #[error("no promote `{0}`")]
    NoPromote(String),
    #[error(transparent)]
    Secret(#[from] SecretUnavailable),
}
