//! Run: executes a compiled plan — scheduler, processes, outputs, artifacts, redaction, logs,
//! run state, resume and interrupts. It sees only the plan, never the source.
//!
//! Entry points: [`run_plan`] (a new run), [`resume_run`] (continue a stored one) and
//! [`dry_run::describe`] (what a run would do). Delivery plugs in through
//! [`delivery::DeliveryExecutor`]; it reuses [`process::StepRunner`], [`redact::Redactor`],
//! [`artifact::ArtifactStore`] and [`eval`].

pub mod artifact;
pub mod console;
pub mod context;
pub mod delivery;
pub mod direct_exec;
pub mod dry_run;
pub mod error;
pub mod eval;
pub mod gate;
pub mod gc;
pub mod graph;
pub mod interrupt;
pub mod job;
pub mod preflight;
pub mod process;
pub mod redact;
mod scheduler;
pub mod secrets;
pub mod selection;
pub mod shell_quote;
pub mod start;
pub mod state;
pub mod summary;
pub mod supervisor;

pub use error::RunError;
pub use start::{GateOverride, RunOptions, RunOutcome, resume_run, run_plan};
