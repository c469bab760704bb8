//! E0101 for references: `needs`/`after` (jobs, stages, gates, promotes), `produces`/`artifact`
//! (artifacts), `secrets` (secrets), `scope`, drill `environment` and `promote ENV` (environments).

use super::index::{Index, unknown_name_help};
use crate::diagnostics::Diagnostic;
use crate::syntax::ast::Ident;

/// The namespace a reference is resolved in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Namespace {
    /// Jobs, stages and gates (`needs`).
    Steps,
    /// Jobs, stages, gates and promotes (`after`).
    StepsAndPromotes,
    Artifacts,
    Secrets,
    Environments,
}

impl Namespace {
    fn describe(self) -> &'static str {
        match self {
            Namespace::Steps => "jobs, stages and gates",
            Namespace::StepsAndPromotes => "jobs, stages, gates and promotes",
            Namespace::Artifacts => "artifacts",
            Namespace::Secrets => "secrets",
            Namespace::Environments => "environments",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Namespace::Steps => "job, stage or gate",
            Namespace::StepsAndPromotes => "job, stage, gate or promote",
            Namespace::Artifacts => "artifact",
            Namespace::Secrets => "secret",
            Namespace::Environments => "environment",
        }
    }
}

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    let program = index.program;
    let mut check_all = |names: &[Ident], namespace| {
        for name in names {
            check_reference(index, name, namespace, out);
        }
    };
    for stage in &program.stages {
        check_all(&stage.after, Namespace::StepsAndPromotes);
    }
    for job in &program.jobs {
        check_all(&job.needs, Namespace::Steps);
        check_all(&job.after, Namespace::StepsAndPromotes);
        check_all(&job.produces, Namespace::Artifacts);
        check_all(&job.secrets, Namespace::Secrets);
    }
    for gate in &program.gates {
        check_all(&gate.after, Namespace::StepsAndPromotes);
    }
    for promote in &program.promotes {
        check_all(
            std::slice::from_ref(&promote.environment),
            Namespace::Environments,
        );
        check_all(&promote.after, Namespace::StepsAndPromotes);
        check_all(promote.artifact.as_slice(), Namespace::Artifacts);
        check_all(&promote.secrets, Namespace::Secrets);
    }
    for drill in &program.drills {
        check_all(drill.environment.as_slice(), Namespace::Environments);
        check_all(&drill.secrets, Namespace::Secrets);
    }
    for secret in &program.secrets {
        check_all(
            secret.scope.as_deref().unwrap_or_default(),
            Namespace::Environments,
        );
    }
}

fn resolves(index: &Index, name: &str, namespace: Namespace) -> bool {
    match namespace {
        Namespace::Steps => index.is_step(name),
        Namespace::StepsAndPromotes => index.is_step(name) || index.promotes.contains_key(name),
        Namespace::Artifacts => index.artifacts.contains_key(name),
        Namespace::Secrets => index.secrets.contains_key(name),
        Namespace::Environments => index.environments.contains_key(name),
    }
}

fn candidates<'p>(index: &Index<'p>, namespace: Namespace) -> Vec<&'p str> {
    let mut names = match namespace {
        Namespace::Steps => index.step_names(),
        Namespace::StepsAndPromotes => {
            let mut names = index.step_names();
            names.extend(index.promotes.keys().copied());
            names
        }
        Namespace::Artifacts => index.artifacts.keys().copied().collect(),
        Namespace::Secrets => index.secrets.keys().copied().collect(),
        Namespace::Environments => index.environments.keys().copied().collect(),
    };
    names.sort_unstable();
    names
}

fn check_reference(index: &Index, name: &Ident, namespace: Namespace, out: &mut Vec<Diagnostic>) {
    if resolves(index, &name.name, namespace) {
        return;
    }
    let help = if namespace == Namespace::Steps && index.promotes.contains_key(name.name.as_str()) {
        format!(
            "`{}` is a promote: `needs` names jobs, stages and gates; use `after = [{}]` to wait \
             for a promote",
            name.name, name.name
        )
    } else {
        unknown_name_help(
            &name.name,
            namespace.describe(),
            &candidates(index, namespace),
        )
    };
    out.push(
        Diagnostic::error(
            "E0101",
            format!("unknown {} `{}`", namespace.singular(), name.name),
        )
        .primary(
            name.span,
            format!("no {} is named `{}`", namespace.singular(), name.name),
        )
        .help(help),
    );
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn a_clean_program_has_no_unknown_references() {
        assert_eq!(codes(&clean_program()), Vec::<&str>::new());
    }

    #[test]
    fn a_misspelled_need_suggests_the_job() {
        let mut program = clean_program();
        program.jobs[1].needs = vec![ident("lnit")];
        let diagnostics = diagnostics_of(&program);
        assert_eq!(codes(&program), vec!["E0101"]);
        assert_eq!(diagnostics[0].help.as_deref(), Some("did you mean `lint`?"));
    }

    #[test]
    fn after_may_name_a_promote_but_needs_may_not() {
        let mut program = clean_program();
        program.jobs[0].after = vec![ident("staging")];
        assert_eq!(codes(&program), Vec::<&str>::new());
        program.jobs[0].needs = vec![ident("staging")];
        let diagnostics = diagnostics_of(&program);
        assert_eq!(codes(&program), vec!["E0101"]);
        assert!(
            diagnostics[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("after = [staging]")
        );
    }

    #[test]
    fn unknown_artifact_secret_and_environment_references() {
        let mut program = clean_program();
        program.jobs[1].produces = vec![ident("api_bni")];
        program.promotes[0].secrets = vec![ident("deploy_tokn")];
        program.secrets[0].scope = Some(vec![ident("staging"), ident("prodution")]);
        program.drills.push(drill("restore", "stagin"));
        let found = diagnostics_of(&program);
        let helps: Vec<_> = found.iter().filter_map(|d| d.help.clone()).collect();
        assert!(
            helps.contains(&"did you mean `api_bin`?".to_string()),
            "{helps:?}"
        );
        assert!(helps.contains(&"did you mean `deploy_token`?".to_string()));
        assert!(helps.contains(&"did you mean `production`?".to_string()));
        assert!(helps.contains(&"did you mean `staging`?".to_string()));
        assert!(
            found
                .iter()
                .all(|d| ["E0101", "E0302", "E0501"].contains(&d.code)),
            "{found:?}"
        );
    }

    #[test]
    fn a_promote_to_an_unknown_environment_is_reported() {
        let mut program = clean_program();
        program.promotes[0].environment = ident("stagign");
        let found = diagnostics_of(&program);
        assert!(
            found
                .iter()
                .any(|d| d.code == "E0101" && d.message == "unknown environment `stagign`"),
            "{found:?}"
        );
    }

    #[test]
    fn a_stage_after_copied_into_its_jobs_is_reported_once() {
        let mut program = clean_program();
        let stage_after = idents(&["qualty"]);
        program.stages.push(crate::check::program::Stage {
            name: ident("build"),
            after: stage_after.clone(),
            when: None,
            jobs: idents(&["lint", "package"]),
            span: span(10),
        });
        program.jobs[0].after = stage_after.clone();
        program.jobs[1].after = stage_after;
        let found = diagnostics_of(&program);
        assert_eq!(codes(&program), vec!["E0101"]);
        assert_eq!(found[0].help.as_deref(), Some("did you mean `quality`?"));
    }
}
