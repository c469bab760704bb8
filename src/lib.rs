//! `pipe`: a typed pipeline-as-code language, its compiler and its runner.
//! Phases: syntax → check → compile → run → deliver → audit; `cli` drives them.

mod audit;
mod check;
mod cli;
mod compilation;
mod compile;
mod deliver;
mod diagnostics;
mod exit;
mod fsutil;
mod lsp;
mod run;
mod shell_syntax;
mod store;
mod syntax;

// The surface the binary and the integration tests use; everything else is internal.
pub use audit::{AUDIT_FILE, AuditEvent, AuditLog};
pub use check::{Loader, stdlib};
pub use cli::main;
pub use compilation::{Compilation, FileLoader, compile_file, compile_source};
pub use compile::plan::Plan;
pub use diagnostics::{all_codes, explanation};
pub use run::delivery::{DeliveryExecutor, PromoteOutcome, PromoteRequest};
pub use run::eval::display;
pub use run::graph::Graph;
pub use run::state::NodeStatus;
pub use run::supervisor;
pub use run::{RunOptions, RunOutcome, run_plan};
pub use store::pg::PgStore;
pub use store::{
    LedgerDoc, Location, LockError, LockRequest, RunDoc, StateStore, Store, StoreError,
};
pub use syntax::ast::Type;
pub use syntax::format::format;
pub use syntax::parse;
