//! `pipe`: a typed pipeline-as-code language, its compiler and its runner.
//! Phases: syntax → check → compile → run → deliver → audit; `cli` drives them.

pub mod audit;
pub mod check;
pub mod cli;
pub mod compilation;
pub mod compile;
pub mod deliver;
pub mod diagnostics;
pub mod fsutil;
pub mod run;
pub mod shell_syntax;
pub mod store;
pub mod syntax;
