//! Tool preflight: before anything starts, the first word of each command that is a plain
//! program name is looked up on the run's `PATH`, and a missing one is reported with its span.

use crate::compile::plan::{NodeKind, Plan};
use crate::run::eval::{self, Bindings};
use std::collections::BTreeMap;

/// Words the shell handles itself: never looked up.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "alias", "break", "case", "cd", "command", "continue", "eval", "exec", "exit",
    "export", "false", "for", "if", "printf", "echo", "read", "return", "set", "shift", "source",
    "test", "trap", "true", "type", "ulimit", "umask", "unset", "until", "wait", "while", "{", "(",
    "!", "local", "pwd", "kill", "getopts", "hash", "times",
];

/// One warning per missing program: "`cargo` is not on PATH (job `test`, step 1 at
/// release.pipe:12:7)".
pub fn missing_tools(
    plan: &Plan,
    selected: &[&str],
    bindings: &Bindings,
    host_env: &BTreeMap<String, String>,
) -> Vec<String> {
    let path = host_env.get("PATH").cloned().unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut warnings = Vec::new();
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for node in plan
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Job && selected.contains(&n.id.as_str()))
    {
        for (index, step) in node.steps.iter().enumerate() {
            let command = eval::render_lenient(&step.run, bindings);
            let Some(program) = program_name(&command) else {
                continue;
            };
            let on_path = *found
                .entry(program.to_string())
                .or_insert_with(|| which::which_in(program, Some(&path), &cwd).is_ok());
            if !on_path {
                let span = &step.span;
                warnings.push(format!(
                    "`{program}` is not on PATH (job `{}`, step {} at {}:{}:{})",
                    node.id,
                    index + 1,
                    span.file,
                    span.line,
                    span.column
                ));
            }
        }
    }
    warnings
}

/// The first word when it is a plain program name (no path, variable, quote or assignment).
pub fn program_name(command: &str) -> Option<&str> {
    let first = command.split_whitespace().next()?;
    let plain = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    (plain && !SHELL_WORDS.contains(&first)).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_program_names_are_checked() {
        assert_eq!(program_name("cargo test"), Some("cargo"));
        assert_eq!(program_name("./scripts/x.sh"), None);
        assert_eq!(program_name("FOO=1 make"), None);
        assert_eq!(program_name("echo hi"), None);
        assert_eq!(program_name("$TOOL run"), None);
    }
}
