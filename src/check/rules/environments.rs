//! E0404 environment shape drift: every environment has the same free attribute keys, so a
//! promote that reads `env.replicas` in staging also finds it in production.

use super::index::Index;
use crate::check::program::Environment;
use crate::diagnostics::Diagnostic;

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    let environments = &index.program.environments;
    for (position, environment) in environments.iter().enumerate() {
        for (key, _) in &environment.attrs {
            let defined_before = environments[..position]
                .iter()
                .any(|e| has_key(e, &key.name));
            if defined_before {
                continue;
            }
            for missing in environments.iter().filter(|e| !has_key(e, &key.name)) {
                out.push(drift(environment, key, missing));
            }
        }
    }
}

fn has_key(environment: &Environment, key: &str) -> bool {
    environment.attrs.iter().any(|(name, _)| name.name == key)
}

fn drift(
    environment: &Environment,
    key: &crate::syntax::ast::Ident,
    missing: &Environment,
) -> Diagnostic {
    let (with, without) = (&environment.name.name, &missing.name.name);
    let key_name = &key.name;
    Diagnostic::error(
        "E0404",
        format!("environment `{without}` has no `{key_name}`, but `{with}` has"),
    )
    .primary(key.span, format!("`{key_name}` is set for `{with}`"))
    .secondary(
        missing.name.span,
        format!("`{without}` has no `{key_name}`"),
    )
    .help(format!(
        "give every environment the same keys: add `{key_name} = …` to `{without}` (or move the \
         shared value into an environment both `extends`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::check::program::Value;

    #[test]
    fn same_keys_no_drift() {
        assert!(with_code(&clean_program(), "E0404").is_empty());
    }

    #[test]
    fn a_key_missing_in_one_environment_is_drift() {
        let mut program = clean_program();
        program.environments[1]
            .attrs
            .push((ident("replicas"), spanned(Value::Number(3.0))));
        let found = with_code(&program, "E0404");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "environment `staging` has no `replicas`, but `production` has"
        );
        assert_eq!(codes(&program), vec!["E0404"]);
    }
}
