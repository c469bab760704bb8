//! Check: resolves imports and templates, interprets the generic blocks of the AST into the
//! typed [`program::Program`], and runs every static check of SPEC §8, collecting all problems.

pub mod program;
mod rules;

use crate::diagnostics::{Diagnostic, FileId, SourceMap};
use program::Program;

/// Reads imported files. The core does no IO itself; the CLI passes a file-system loader and
/// tests pass in-memory ones. `std/…` imports never reach the loader (they are bundled).
pub trait Loader {
    /// Resolves `path` (as written in the import) relative to the importing file `from`
    /// (its name in the source map) and returns the resolved name and the text.
    fn load(&self, from: &str, path: &str) -> Result<(String, String), String>;
}

/// The outcome of checking: the program when there were no errors, and every diagnostic.
#[derive(Debug, Default)]
pub struct Checked {
    pub program: Option<Program>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks the file `entry` (already in `sources`); imported files are added to `sources`.
pub fn check(_sources: &mut SourceMap, _entry: FileId, _loader: &dyn Loader) -> Checked {
    Checked::default()
}
