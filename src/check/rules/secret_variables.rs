//! W0102: a command reads `$FROM`, the host variable a secret is read from (`env("FROM")`),
//! though jobs receive the secret only as its exported name (`api_key` → `$API_KEY`).

use super::commands::each_command;
use crate::check::program::{Program, SecretSource};
use crate::diagnostics::Diagnostic;
use crate::syntax::ast::{Segment, StrLit};

pub(super) fn check(program: &Program, out: &mut Vec<Diagnostic>) {
    let sources: Vec<(&str, &str, String)> = program
        .secrets
        .iter()
        .filter_map(|secret| match &secret.source.value {
            SecretSource::Env(from) => Some((secret.name.name.as_str(), from.as_str())),
            SecretSource::File(_) => None,
        })
        .map(|(name, from)| (name, from, exported_variable(name)))
        .filter(|(_, from, exported)| from != exported)
        .collect();
    if sources.is_empty() {
        return;
    }
    each_command(program, |command, _| {
        for (name, from, exported) in &sources {
            if reads_variable(command, from) {
                out.push(source_variable_read(command, name, from, exported));
            }
        }
    });
}

/// The variable a secret is exported to the processes that list it as: its name upper-cased.
fn exported_variable(secret: &str) -> String {
    secret.to_uppercase()
}

/// `$NAME` or `${NAME…}` in the command's own text (not a `${{ }}` hole), as a whole name.
fn reads_variable(command: &StrLit, name: &str) -> bool {
    command.segments.iter().any(|segment| match segment {
        Segment::Text(text) => text_reads(text, name),
        Segment::Interp(_) => false,
    })
}

fn text_reads(text: &str, name: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices('$').any(|(at, _)| {
        let rest = &text[at + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        rest.strip_prefix(name)
            .is_some_and(|after| !after.starts_with(is_name_char))
    })
}

fn source_variable_read(command: &StrLit, name: &str, from: &str, exported: &str) -> Diagnostic {
    Diagnostic::warning(
        "W0102",
        format!("this command reads `${from}`, which jobs never receive"),
    )
    .primary(
        command.span,
        format!("`${from}` is where secret `{name}` is read from, not what it is exported as"),
    )
    .help(format!(
        "secret `{name}` is exported as `${exported}` to the items that list it in `secrets`: \
         read `${exported}` instead"
    ))
}

#[cfg(test)]
mod tests {
    use super::text_reads;

    #[test]
    fn a_variable_is_read_only_as_a_whole_name() {
        assert!(text_reads("curl -H \"$DEMO_KEY\"", "DEMO_KEY"));
        assert!(text_reads("echo ${DEMO_KEY}", "DEMO_KEY"));
        assert!(text_reads("echo ${DEMO_KEY:-none}", "DEMO_KEY"));
        assert!(!text_reads("echo $DEMO_KEYS", "DEMO_KEY"));
        assert!(!text_reads("echo DEMO_KEY", "DEMO_KEY"));
    }
}
