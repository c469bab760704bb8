//! E0501 secret scope: a secret with a `scope` reaches only promotes and drills whose environment
//! is in that scope; jobs run outside any promote and never receive it.

use super::index::Index;
use crate::check::program::Secret;
use crate::diagnostics::{Diagnostic, Span};
use crate::syntax::ast::Ident;

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    let program = index.program;
    for job in &program.jobs {
        for used in &job.secrets {
            let user = format!("job `{}`, outside any promote", job.name.name);
            check_use(index, used, None, &user, out);
        }
    }
    for promote in &program.promotes {
        for used in &promote.secrets {
            let user = format!("promote `{}`", promote.environment.name);
            check_use(index, used, Some(&promote.environment), &user, out);
        }
    }
    for drill in &program.drills {
        let Some(environment) = &drill.environment else {
            continue;
        };
        for used in &drill.secrets {
            let user = format!(
                "drill `{}` (environment `{}`)",
                drill.name.name, environment.name
            );
            check_use(index, used, Some(environment), &user, out);
        }
    }
}

fn check_use(
    index: &Index,
    used: &Ident,
    environment: Option<&Ident>,
    user: &str,
    out: &mut Vec<Diagnostic>,
) {
    let Some(secret) = index.secrets.get(used.name.as_str()) else {
        return;
    };
    let Some(scope) = &secret.scope else {
        return;
    };
    if environment.is_some_and(|env| scope.iter().any(|s| s.name == env.name)) {
        return;
    }
    let name = &used.name;
    let scope_names: Vec<&str> = scope.iter().map(|s| s.name.as_str()).collect();
    let help = match environment {
        None => format!(
            "a scoped secret reaches only promotes and drills of {}: use it there, or remove \
             `scope` from secret `{name}` to let jobs read it",
            scope_names.join(", ")
        ),
        Some(env) => format!(
            "add `{}` to the scope of secret `{name}` if it may be used there",
            env.name
        ),
    };
    out.push(
        Diagnostic::error(
            "E0501",
            format!("secret `{name}` is used outside its scope"),
        )
        .primary(used.span, format!("used by {user}"))
        .secondary(
            scope_span(secret),
            format!("`{name}` is scoped to [{}]", scope_names.join(", ")),
        )
        .help(help),
    );
}

fn scope_span(secret: &Secret) -> Span {
    let scope = secret.scope.as_deref().unwrap_or_default();
    match (scope.first(), scope.last()) {
        (Some(first), Some(last)) => first.span.to(last.span),
        _ => secret.name.span,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn scoped_secrets_in_their_promotes_are_fine() {
        assert!(with_code(&clean_program(), "E0501").is_empty());
    }

    #[test]
    fn a_scoped_secret_in_a_job_is_e0501() {
        let mut program = clean_program();
        program.jobs[1].secrets = idents(&["deploy_token"]);
        let found = with_code(&program, "E0501");
        assert_eq!(found.len(), 1);
        assert_eq!(
            label_texts(&found[0]),
            vec![
                "used by job `package`, outside any promote",
                "`deploy_token` is scoped to [staging, production]"
            ]
        );
    }

    #[test]
    fn a_promote_or_drill_outside_the_scope_is_e0501() {
        let mut program = clean_program();
        program.secrets[0].scope = Some(idents(&["production"]));
        let mut restore = drill("restore", "staging");
        restore.secrets = idents(&["deploy_token"]);
        program.drills.push(restore);
        let found = with_code(&program, "E0501");
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(codes(&program), vec!["E0501", "E0501"]);
    }

    #[test]
    fn an_unscoped_secret_may_be_used_by_jobs() {
        let mut program = clean_program();
        program.secrets[0].scope = None;
        program.jobs[1].secrets = idents(&["deploy_token"]);
        assert!(codes(&program).is_empty());
    }
}
