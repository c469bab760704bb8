//! Rules over the elaborated program: name resolution, expression typing and scopes, and the
//! delivery-safety checks (E0101 references, E0201/E0203, E0302, E04xx, E05xx, W0101).

use super::program::Program;
use crate::diagnostics::{Diagnostic, SourceMap};

/// Runs every rule over `program`, pushing all problems found.
pub(crate) fn check_program(
    _program: &Program,
    _sources: &SourceMap,
    _diagnostics: &mut Vec<Diagnostic>,
) {
}
