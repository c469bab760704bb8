//! Syntax: the pest grammar (`grammar/pipe.pest`), its lowering into the spanned AST, and the
//! parse diagnostics (E0001 syntax, E0002 invalid literal), and the formatter. No pest type
//! leaves this module.

pub mod ast;
pub mod format;
mod parser;

pub use parser::parse;
