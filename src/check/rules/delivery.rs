//! The per-promote safety rules: a rollback path (E0401), no destructive migration that a
//! rollback would cross (E0403), sane rollout steps (E0405), approval for protected targets (E0406).

use super::index::{Index, promote_header};
use crate::check::program::{MigrationKind, Promote, Rollout};
use crate::diagnostics::Diagnostic;

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    for promote in &index.program.promotes {
        check_rollback(promote, out);
        check_migration(promote, out);
        if let Some(rollout) = &promote.rollout {
            check_rollout(rollout, out);
        }
        check_approval(index, promote, out);
    }
}

fn check_rollback(promote: &Promote, out: &mut Vec<Diagnostic>) {
    if promote.rollback.is_some() {
        return;
    }
    let environment = &promote.environment.name;
    out.push(
        Diagnostic::error(
            "E0401",
            format!("promote `{environment}` has no rollback block"),
        )
        .primary(promote_header(promote), "no way back if this deploy fails")
        .help(
            "add a rollback that redeploys the previous stable release: \
                 `rollback { run \"./deploy.sh ${{ previous.path }}\" }`",
        ),
    );
}

fn check_migration(promote: &Promote, out: &mut Vec<Diagnostic>) {
    let (Some(migrate), Some(rollback)) = (&promote.migrate, &promote.rollback) else {
        return;
    };
    if migrate.kind.value != MigrationKind::Contract {
        return;
    }
    out.push(
        Diagnostic::error(
            "E0403",
            format!(
                "a contract migration in promote `{}`, which can roll back",
                promote.environment.name
            ),
        )
        .primary(
            migrate.kind.span,
            "destructive: the previous release cannot run after it",
        )
        .secondary(
            rollback.span,
            "this rollback would redeploy the previous release",
        )
        .help(
            "ship `kind = expand` now and the `contract` migration in a later release, once no \
             rollback can cross it",
        ),
    );
}

fn check_rollout(rollout: &Rollout, out: &mut Vec<Diagnostic>) {
    for pair in rollout.steps.windows(2) {
        let [before, step] = pair else { continue };
        if step.value <= before.value {
            out.push(
                Diagnostic::error("E0405", "rollout steps must be strictly increasing")
                    .primary(step.span, format!("{}% does not exceed the step before", step.value))
                    .secondary(before.span, format!("{}%", before.value))
                    .help("list the traffic weights in increasing order, ending at 100%, e.g. `steps = [10%, 50%, 100%]`"),
            );
        }
    }
    let last = rollout.steps.last();
    if last.is_some_and(|step| step.value == 100.0) {
        return;
    }
    let (span, label) = match last {
        Some(step) => (step.span, format!("the rollout stops at {}%", step.value)),
        None => (rollout.span, "no steps".to_string()),
    };
    out.push(
        Diagnostic::error("E0405", "rollout steps must end at 100%")
            .primary(span, label)
            .help("end the steps with `100%` so the release reaches all traffic, e.g. `steps = [10%, 50%, 100%]`"),
    );
}

fn check_approval(index: &Index, promote: &Promote, out: &mut Vec<Diagnostic>) {
    let Some(environment) = index.environment_of(promote) else {
        return;
    };
    if !environment.protected.value || promote.approval.is_some() {
        return;
    }
    let name = &environment.name.name;
    out.push(
        Diagnostic::error(
            "E0406",
            format!("protected environment `{name}` is promoted without approval"),
        )
        .primary(promote_header(promote), "no `approval` block")
        .secondary(
            environment.protected.span,
            format!("`{name}` is protected here"),
        )
        .help("add an approval block, e.g. `approval { approvers = [\"alice\", \"bob\"] }`"),
    );
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::check::program::{Migrate, MigrationKind, Rollout};

    #[test]
    fn a_promote_without_rollback_is_e0401() {
        let mut program = clean_program();
        program.promotes[0].rollback = None;
        let found = diagnostics_of(&program);
        assert_eq!(codes(&program), vec!["E0401"]);
        assert!(
            found[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("${{ previous.path }}")
        );
    }

    fn migrate(kind: MigrationKind) -> Migrate {
        Migrate {
            kind: spanned(kind),
            block: block(&["./migrate.sh"]),
        }
    }

    #[test]
    fn a_contract_migration_with_a_rollback_is_e0403() {
        let mut program = clean_program();
        program.promotes[1].migrate = Some(migrate(MigrationKind::Expand));
        assert!(codes(&program).is_empty());
        program.promotes[1].migrate = Some(migrate(MigrationKind::Contract));
        assert_eq!(codes(&program), vec!["E0403"]);
    }

    fn rollout(steps: &[f64]) -> Rollout {
        Rollout {
            strategy: ident("canary"),
            steps: steps.iter().map(|s| spanned(*s)).collect(),
            pause: Some(spanned(30_000)),
            span: span(10),
        }
    }

    #[test]
    fn rollout_steps_increase_and_end_at_100() {
        let mut program = clean_program();
        program.promotes[1].rollout = Some(rollout(&[10.0, 50.0, 100.0]));
        assert!(codes(&program).is_empty());
        program.promotes[1].rollout = Some(rollout(&[10.0, 10.0, 100.0]));
        assert_eq!(codes(&program), vec!["E0405"]);
        program.promotes[1].rollout = Some(rollout(&[10.0, 50.0]));
        let found = with_code(&program, "E0405");
        assert_eq!(found[0].message, "rollout steps must end at 100%");
        program.promotes[1].rollout = Some(rollout(&[]));
        assert_eq!(codes(&program), vec!["E0405"]);
    }

    #[test]
    fn a_protected_environment_needs_approval() {
        let mut program = clean_program();
        program.promotes[1].approval = None;
        let found = diagnostics_of(&program);
        assert_eq!(codes(&program), vec!["E0406"]);
        assert_eq!(
            label_texts(&found[0]),
            vec!["no `approval` block", "`production` is protected here"]
        );
    }
}
