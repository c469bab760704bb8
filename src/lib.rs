//! `pipe`: a typed pipeline-as-code language, its compiler and its runner.
//! Phases: syntax → check → compile → run → deliver → audit; `cli` drives them.

pub mod check;
pub mod compile;
pub mod diagnostics;
pub mod syntax;
pub mod audit;
pub mod cli;
pub mod deliver;
pub mod run;
pub mod fsutil;
pub mod compilation;
