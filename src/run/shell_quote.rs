//! How a `${{ }}` value lands in a shell command: the author's text before each hole is scanned
//! for POSIX `sh` quoting state and the value is quoted for that state, so it is always data.

use crate::compile::plan::{Expression, Literal, Template, TemplatePart};
use crate::run::eval::{self, Bindings};
use crate::shell_syntax::{Placement, Scanner, quote, quotes_for};

/// A value as it reaches a command. Typed values (numbers, percents, durations, bools) print
/// as plain words (`25`, `0.8%`, `1m30s`), so they read the same as before quoting.
fn quote_literal(literal: &Literal, placement: Placement) -> Result<String, String> {
    quote(&eval::display(literal), placement)
}

/// Why a command could not be rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandError {
    /// A hole's value is unknown (or was redacted).
    Eval(eval::EvalError),
    /// A hole sits where no quoting is safe, or its value cannot be carried.
    Unsafe { hole: String, why: String },
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Eval(e) => e.fmt(f),
            CommandError::Unsafe { hole, why } => write!(f, "`${{{{ {hole} }}}}` {why}"),
        }
    }
}

/// Renders a shell command: each hole's value is quoted for where it sits. `shell` is the job's
/// `shell` attribute; a shell that does not quote like `sh` takes no holes at all.
pub fn render_command(
    template: &Template,
    bindings: &Bindings,
    shell: Option<&str>,
) -> Result<String, CommandError> {
    render_holes(template, shell, |expression, placement| {
        let unsafe_hole = |why: String| CommandError::Unsafe {
            hole: expression.source.clone(),
            why,
        };
        let placement = placement.map_err(unsafe_hole)?;
        let value = eval::eval(&expression.tree, bindings).map_err(CommandError::Eval)?;
        quote_literal(&value, placement).map_err(unsafe_hole)
    })
}

/// For dry runs and `pipe plan`: like [`render_command`], but a hole whose value is not known
/// yet, or that cannot be quoted, is shown as its `${{ source }}`.
pub fn render_command_lenient(
    template: &Template,
    bindings: &Bindings,
    shell: Option<&str>,
) -> String {
    let rendered = render_holes(template, shell, |expression, placement| {
        let quoted = placement.ok().and_then(|placement| {
            let value = eval::eval(&expression.tree, bindings).ok()?;
            quote_literal(&value, placement).ok()
        });
        Ok::<_, CommandError>(quoted.unwrap_or_else(|| format!("${{{{ {} }}}}", expression.source)))
    });
    rendered.unwrap_or_default()
}

/// Walks the template, handing each hole the placement the author's text gives it (or why it
/// has none that is safe) and appending what `hole` returns.
fn render_holes(
    template: &Template,
    shell: Option<&str>,
    mut hole: impl FnMut(&Expression, Result<Placement, String>) -> Result<String, CommandError>,
) -> Result<String, CommandError> {
    let mut out = String::new();
    let mut scanner = Scanner::default();
    for part in &template.parts {
        match part {
            TemplatePart::Text(text) => {
                scanner.feed(text);
                out.push_str(text);
            }
            TemplatePart::Expr(expression) => {
                let placement = placement_for(&scanner, shell);
                out.push_str(&hole(expression, placement)?);
                scanner.after_hole();
            }
        }
    }
    Ok(out)
}

/// Where the next hole sits, or why no quoting is safe there (a shell outside the sh family
/// takes none).
fn placement_for(scanner: &Scanner, shell: Option<&str>) -> Result<Placement, String> {
    if !quotes_for(shell) {
        return Err(format!(
            "cannot be quoted for shell `{}`; pass the value through `env {{ … }}` and read the variable instead",
            shell.unwrap_or_default()
        ));
    }
    scanner.placement().map_err(|why| {
        format!(
            "sits {why}, where no quoting keeps a value from becoming shell code; pass it through `env {{ … }}` and use the variable there instead"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::ExprTree;
    use proptest::prelude::*;

    /// A template from text with `@` marking one hole reading `x`.
    fn template(text: &str) -> Template {
        let mut parts = Vec::new();
        for (index, piece) in text.split('@').enumerate() {
            if index > 0 {
                parts.push(TemplatePart::Expr(Expression {
                    source: "x".into(),
                    tree: ExprTree::Name(vec!["x".into()]),
                }));
            }
            parts.push(TemplatePart::Text(piece.to_string()));
        }
        Template { parts }
    }

    fn bindings(value: &str) -> Bindings {
        let mut bindings = Bindings::new();
        bindings.set_string("x", value);
        bindings
    }

    /// What `sh -c` prints for the command; bash (the other common `shell`) must agree.
    fn sh(command: &str) -> Vec<u8> {
        let run = |shell: &str| {
            std::process::Command::new(shell)
                .arg("-c")
                .arg(command)
                .env_clear()
                .output()
        };
        let output = run("/bin/sh").unwrap();
        assert!(output.status.success(), "{command:?}: {output:?}");
        if let Ok(bash) = run("bash") {
            assert_eq!(bash.stdout, output.stdout, "bash differs on {command:?}");
        }
        output.stdout
    }

    #[test]
    fn a_hostile_value_stays_one_argument() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let hostile = format!(
            "x';touch {m};'$(touch {m})`touch {m}`\"; touch {m}",
            m = marker.display()
        );
        for text in [
            "printf %s @",
            "printf %s \"@\"",
            "printf %s '@'",
            "printf %s \"a$(printf %s @)\"",
            "true # @",
        ] {
            let command = render_command(&template(text), &bindings(&hostile), None).unwrap();
            let printed = sh(&command);
            if !text.starts_with("true") {
                let expected = if text.contains("a$(") {
                    format!("a{hostile}")
                } else {
                    hostile.clone()
                };
                assert_eq!(String::from_utf8_lossy(&printed), expected, "{command}");
            }
            assert!(!marker.exists(), "{command}");
        }
        let newline = render_command(
            &template("true # @\ntouch ok"),
            &bindings("\ntouch pwned #"),
            None,
        )
        .unwrap();
        assert_eq!(newline, "true #  touch pwned #\ntouch ok");
    }

    #[test]
    fn typed_values_are_plain_tokens_and_strings_are_quoted() {
        let mut bindings = Bindings::new();
        bindings.set("w", Literal::Number(25.0));
        bindings.set_string("v", "1.2.3");
        let t = Template {
            parts: vec![
                TemplatePart::Text("scale --weight=".into()),
                TemplatePart::Expr(Expression {
                    source: "w".into(),
                    tree: ExprTree::Name(vec!["w".into()]),
                }),
                TemplatePart::Text(" --version ".into()),
                TemplatePart::Expr(Expression {
                    source: "v".into(),
                    tree: ExprTree::Name(vec!["v".into()]),
                }),
            ],
        };
        assert_eq!(
            render_command(&t, &bindings, None).unwrap(),
            "scale --weight=25 --version 1.2.3"
        );
        assert_eq!(
            render_command(&template("a=@"), &crate::run::eval::Bindings::new(), None).unwrap_err(),
            CommandError::Eval(eval::EvalError::UnknownName("x".into()))
        );
    }

    #[test]
    fn unsafe_places_other_shells_and_nul_are_refused_with_the_reason() {
        let error =
            render_command(&template("cat <<EOF\n@\nEOF"), &bindings("v"), None).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`${{ x }}` sits inside a here-document body"),
            "{error}"
        );
        assert!(error.to_string().contains("env {"), "{error}");
        let error =
            render_command(&template("print(@)"), &bindings("v"), Some("python3 -c")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("cannot be quoted for shell `python3 -c`"),
            "{error}"
        );
        assert!(
            render_command(
                &template("echo @"),
                &bindings("v"),
                Some("/bin/bash -o pipefail -c")
            )
            .is_ok()
        );
        let error = render_command(&template("echo @"), &bindings("a\0b"), None).unwrap_err();
        assert!(error.to_string().contains("NUL"), "{error}");
        assert_eq!(
            render_command_lenient(&template("cat <<EOF\n@\nEOF"), &bindings("v"), None),
            "cat <<EOF\n${{ x }}\nEOF"
        );
        assert_eq!(
            render_command_lenient(&template("echo @"), &Bindings::new(), None),
            "echo ${{ x }}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn sh_reads_back_every_value_exactly(value in "(?s)[^\u{0}]{0,24}|[-'\"$`\\\\\n #(){};|&<>*?~! a]{0,24}") {
            for (text, prefix, suffix) in [
                ("printf '%s|' @", "", "|"),
                ("printf '%s|' \"@\"", "", "|"),
                ("printf '%s|' '@'", "", "|"),
                ("printf '%s|' \"$(printf 'a%s.' @)\"", "a", ".|"),
                ("printf '%s|' \"x\"${V:-@}", "x", "|"),
            ] {
                let command = render_command(&template(text), &bindings(&value), None).unwrap();
                let printed = sh(&command);
                prop_assert_eq!(String::from_utf8_lossy(&printed), format!("{prefix}{value}{suffix}"), "{}", command);
            }
        }
    }
}
