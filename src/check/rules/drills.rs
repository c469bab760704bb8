//! W0105: a pipeline with a protected environment and no restore drill at all — its data's
//! recoverability is assumed, never measured. Reported only for a program without errors, where
//! it is the next thing worth fixing rather than noise beside them.

use super::index::Index;
use crate::diagnostics::Diagnostic;

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    let program = index.program;
    // Any drill clears it: a team may well prove production's nightly backup by restoring it
    // in a drill of staging.
    if !program.drills.is_empty() {
        return;
    }
    for environment in program.environments.iter().filter(|e| e.protected.value) {
        let name = &environment.name.name;
        out.push(
            Diagnostic::warning(
                "W0105",
                format!("protected environment `{name}` has no restore drill: the pipeline has none"),
            )
            .primary(
                environment.name.span,
                "protected, and no drill of this pipeline proves its data can be restored",
            )
            .help(format!(
                "add `drill restore_{name} {{ environment = {name}  rto = …  rpo = …  every = 30d  backup {{ … }}  restore {{ … }}  verify {{ … }} }}` and run it with `pipe drill --due`"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn a_protected_environment_without_a_drill_is_w0102_and_a_drill_clears_it() {
        let mut program = clean_program();
        assert!(with_code(&program, "W0105").is_empty());
        program.drills.clear();
        let warned = with_code(&program, "W0105");
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].message.contains("`production`"));
        program.drills.push(drill("restore_staging", "staging"));
        assert!(
            with_code(&program, "W0105").is_empty(),
            "a drill of staging may restore production's backups"
        );
    }

    #[test]
    fn beside_an_error_the_missing_drill_is_not_reported() {
        let mut program = clean_program();
        program.drills.clear();
        program.promotes[1].rollback = None;
        let found = codes(&program);
        assert!(found.contains(&"E0401"), "{found:?}");
        assert!(!found.contains(&"W0105"), "{found:?}");
    }
}
