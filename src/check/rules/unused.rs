//! W0101: declared and never used — a secret no item lists, an artifact nobody produces or
//! ships, an environment nothing targets or extends, a probe no watch condition reads.

use super::index::Index;
use super::walk::bare_names;
use crate::diagnostics::Diagnostic;
use crate::syntax::ast::Ident;

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    let program = index.program;
    let listed_secrets: Vec<&str> = program
        .jobs
        .iter()
        .flat_map(|j| &j.secrets)
        .chain(program.promotes.iter().flat_map(|p| &p.secrets))
        .chain(program.drills.iter().flat_map(|d| &d.secrets))
        .map(|i| i.name.as_str())
        .collect();
    for secret in &program.secrets {
        if !listed_secrets.contains(&secret.name.name.as_str()) {
            out.push(unused(&secret.name, "secret", "list it in `secrets = [...]` of the job, promote or drill that needs it, or remove it"));
        }
    }
    let artifacts_used: Vec<&str> = program
        .jobs
        .iter()
        .flat_map(|j| &j.produces)
        .chain(program.promotes.iter().filter_map(|p| p.artifact.as_ref()))
        .map(|i| i.name.as_str())
        .collect();
    for artifact in &program.artifacts {
        if !artifacts_used.contains(&artifact.name.name.as_str()) {
            out.push(unused(
                &artifact.name,
                "artifact",
                "add it to the `produces` of the job that builds it, or remove it",
            ));
        }
    }
    check_environments(index, out);
    check_probes(index, out);
}

fn check_environments(index: &Index, out: &mut Vec<Diagnostic>) {
    let program = index.program;
    let targeted: Vec<&str> = program
        .promotes
        .iter()
        .map(|p| &p.environment)
        .chain(program.drills.iter().filter_map(|d| d.environment.as_ref()))
        .chain(
            program
                .environments
                .iter()
                .filter_map(|e| e.extends.as_ref()),
        )
        .map(|i| i.name.as_str())
        .collect();
    for environment in &program.environments {
        let name = &environment.name.name;
        if !targeted.contains(&name.as_str()) {
            let help = format!(
                "add `promote {name} {{ … }}` (or a drill with `environment = {name}`), or remove it"
            );
            out.push(unused(&environment.name, "environment", &help));
        }
    }
}

fn check_probes(index: &Index, out: &mut Vec<Diagnostic>) {
    for watch in index
        .program
        .promotes
        .iter()
        .filter_map(|p| p.watch.as_ref())
    {
        let mut read = Vec::new();
        for condition in watch.rollback_when.iter().chain(&watch.warn_when) {
            bare_names(&condition.expr, &mut read);
        }
        for probe in &watch.probes {
            if !read.contains(&probe.name.name) {
                let help = format!(
                    "read it in `rollback when {} …` (or `warn when` to observe it first), or remove it",
                    probe.name.name
                );
                out.push(unused(&probe.name, "probe", &help));
            }
        }
    }
}

fn unused(name: &Ident, kind: &str, help: &str) -> Diagnostic {
    Diagnostic::warning(
        "W0101",
        format!("{kind} `{}` is declared but never used", name.name),
    )
    .primary(name.span, format!("this {kind} is never used"))
    .help(help)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::syntax::ast::{BinaryOp, Type};

    #[test]
    fn everything_in_the_clean_program_is_used() {
        assert!(with_code(&clean_program(), "W0101").is_empty());
    }

    #[test]
    fn unused_secret_artifact_environment_and_probe() {
        let mut program = clean_program();
        program.secrets.push(secret("slack_hook", None));
        program.artifacts.push(artifact("docs"));
        program.environments.push(environment(
            "qa",
            false,
            &[("url", crate::check::program::Value::String("x".into()))],
        ));
        let probes = vec![
            probe("error_rate", Type::Percent),
            probe("p95", Type::Duration),
        ];
        let breach = binary(path("error_rate"), BinaryOp::Gt, percent(1.0));
        program.promotes[1].watch = Some(watch(probes, vec![breach]));
        let messages: Vec<_> = with_code(&program, "W0101")
            .into_iter()
            .map(|d| d.message)
            .collect();
        assert_eq!(
            messages,
            vec![
                "secret `slack_hook` is declared but never used",
                "artifact `docs` is declared but never used",
                "environment `qa` is declared but never used",
                "probe `p95` is declared but never used",
            ]
        );
        assert!(diagnostics_of(&program).iter().all(|d| !d.is_error()));
    }

    #[test]
    fn an_environment_only_extended_is_used() {
        let mut program = clean_program();
        program.environments.push(environment(
            "base",
            false,
            &[("url", crate::check::program::Value::String("x".into()))],
        ));
        program.environments[1].extends = Some(ident("base"));
        assert!(with_code(&program, "W0101").is_empty());
    }
}
