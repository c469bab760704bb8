//! Rules over the elaborated program: name resolution, expression typing and scopes, and the
//! delivery-safety checks (E0101 references, E0201/E0203, E0302, E04xx, E05xx, E0107/W0104 paths outside the workspace, W0101, W0102 a command reading a secret's source variable, W0105 a protected environment without a drill).

mod artifacts;
mod commands;
mod credentials;
mod delivery;
mod drills;
mod environments;
mod index;
mod name_table;
mod names;
mod secret_variables;
mod secrets;
mod staging_first;
#[cfg(test)]
mod test_support;
mod typing;
mod unused;
mod walk;
mod workspace;

use super::program::Program;
use crate::diagnostics::{Diagnostic, SourceMap};
use index::Index;

/// Runs every rule over `program`, pushing all problems found. `sources` is read only to label
/// the exact characters of a credential inside a string literal.
pub(crate) fn check_program(
    program: &Program,
    sources: &SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let index = Index::new(program);
    let mut found = Vec::new();
    names::check(&index, &mut found);
    typing::check(&index, &mut found);
    artifacts::check(&index, &mut found);
    workspace::check(&index, &mut found);
    delivery::check(&index, &mut found);
    staging_first::check(&index, &mut found);
    environments::check(&index, &mut found);
    secrets::check(&index, &mut found);
    credentials::check(program, sources, &mut found);
    commands::check(program, &mut found);
    secret_variables::check(program, &mut found);
    unused::check(&index, &mut found);
    if !found.iter().any(Diagnostic::is_error) && !diagnostics.iter().any(Diagnostic::is_error) {
        drills::check(&index, &mut found);
    }
    // A stage's `after` is copied into each of its jobs: report each reference once. A set, not
    // a scan of the list per diagnostic: a line of 100,000 bad holes gives 100,000 of them.
    let mut reported: std::collections::HashSet<Diagnostic> = diagnostics.iter().cloned().collect();
    for diagnostic in found {
        if reported.insert(diagnostic.clone()) {
            diagnostics.push(diagnostic);
        }
    }
}
