//! How a `${{ }}` value lands in a shell command: the author's text before each hole is scanned
//! for POSIX `sh` quoting state and the value is quoted for that state, so it is always data.

use crate::compile::plan::{Expression, Literal, Template, TemplatePart};
use crate::run::eval::{self, Bindings};

/// Where a hole sits in the command text, as the shell will read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Outside any quotes: the value is wrapped in `'…'` unless it is a plain word.
    Unquoted,
    /// Inside `"…"`: `$`, `` ` ``, `"` and `\` are backslash-escaped.
    DoubleQuoted,
    /// Inside `'…'`: each `'` is written `'\''`.
    SingleQuoted,
    /// Inside a `#` comment: never executed, but a newline would end it.
    Comment,
}

/// Shells whose quoting is the POSIX `sh` quoting this module writes.
const POSIX_SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"];

/// Whether `${{ }}` values can be quoted for the job's `shell` (`None`: `/bin/sh`).
pub fn quotes_for(shell: Option<&str>) -> bool {
    let Some(shell) = shell else { return true };
    let program = shell.split_whitespace().next().unwrap_or("/bin/sh");
    let name = program.rsplit('/').next().unwrap_or(program);
    POSIX_SHELLS.contains(&name)
}

/// `value` written so that the shell reads it back byte for byte in `placement`.
/// A NUL byte cannot be carried by any command line and is refused.
pub fn quote(value: &str, placement: Placement) -> Result<String, String> {
    if value.contains('\0') {
        return Err("the value contains a NUL byte, which no command line can carry".into());
    }
    Ok(match placement {
        Placement::Unquoted if is_plain_word(value) => value.to_string(),
        Placement::Unquoted => format!("'{}'", value.replace('\'', r"'\''")),
        Placement::SingleQuoted => value.replace('\'', r"'\''"),
        Placement::DoubleQuoted => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '$' | '`' | '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        // A comment runs to the end of its line; the value's own newlines must not end it.
        Placement::Comment => value.replace(['\n', '\r'], " "),
    })
}

/// Words the shell reads as syntax when they stand alone.
const RESERVED_WORDS: &[&str] = &[
    "case",
    "coproc",
    "do",
    "done",
    "elif",
    "else",
    "end",
    "esac",
    "fi",
    "for",
    "foreach",
    "function",
    "if",
    "in",
    "nocorrect",
    "noglob",
    "repeat",
    "select",
    "then",
    "time",
    "until",
    "while",
];

/// A non-empty value the shell reads as one literal word outside quotes: no character of it
/// expands, splits, globs, quotes or assigns (`=` is left out, so `NAME=…` cannot form), and it
/// is not a reserved word. It is inserted as is, so logs and dry runs stay readable.
fn is_plain_word(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+,-".contains(c))
        && !RESERVED_WORDS.contains(&value)
}

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
                let placement = if quotes_for(shell) {
                    scanner.placement().map_err(|why| format!(
                        "sits {why}, where no quoting keeps a value from becoming shell code; pass it through `env {{ … }}` and use the variable there instead"
                    ))
                } else {
                    Err(format!(
                        "cannot be quoted for shell `{}`; pass the value through `env {{ … }}` and read the variable instead",
                        shell.unwrap_or_default()
                    ))
                };
                out.push_str(&hole(expression, placement)?);
                scanner.after_hole();
            }
        }
    }
    Ok(out)
}

/// One level of shell syntax the scanner is inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Commands: the top level, or the inside of `$( … )` (`subst`) with its open `(` count.
    Code {
        subst: bool,
        parens: u32,
    },
    Double,
    Single,
    /// `${ … }`; `in_double` when the expansion itself sits inside `"…"`.
    Brace {
        in_double: bool,
    },
    /// `$(( … ))` with its open `(` count.
    Arith {
        parens: u32,
    },
    Comment,
}

/// Tracks the quoting state of POSIX `sh` text. Constructs it cannot classify for certain
/// (backticks, here-documents, `$'…'`, `case` inside `$( … )`) stop classification for the
/// rest of the command: every later hole is refused rather than guessed.
#[derive(Debug, Clone)]
struct Scanner {
    stack: Vec<Frame>,
    unknown: Option<&'static str>,
    escaped: bool,
    after_dollar: bool,
    word_start: bool,
    word: String,
    heredoc_pending: bool,
}

impl Default for Scanner {
    fn default() -> Scanner {
        Scanner {
            stack: vec![Frame::Code {
                subst: false,
                parens: 0,
            }],
            unknown: None,
            escaped: false,
            after_dollar: false,
            word_start: true,
            word: String::new(),
            heredoc_pending: false,
        }
    }
}

impl Scanner {
    fn top(&self) -> Frame {
        self.stack.last().copied().unwrap_or(Frame::Code {
            subst: false,
            parens: 0,
        })
    }

    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            *top = frame;
        }
    }

    fn give_up(&mut self, why: &'static str) {
        self.unknown.get_or_insert(why);
    }

    /// Where a hole at the current position sits, or why that cannot be said safely.
    fn placement(&self) -> Result<Placement, &'static str> {
        if let Some(why) = self.unknown {
            return Err(why);
        }
        let top = self.top();
        if self.escaped && top != Frame::Single && top != Frame::Comment {
            return Err("right after a backslash");
        }
        if self.after_dollar && top != Frame::Single && top != Frame::Comment {
            return Err("right after a `$`");
        }
        match top {
            Frame::Code { .. } | Frame::Brace { in_double: false } => Ok(Placement::Unquoted),
            Frame::Double => Ok(Placement::DoubleQuoted),
            Frame::Single => Ok(Placement::SingleQuoted),
            Frame::Comment => Ok(Placement::Comment),
            Frame::Brace { in_double: true } => {
                Err("inside a `${…}` expansion within double quotes")
            }
            Frame::Arith { .. } => Err("inside an arithmetic expansion `$(( … ))`"),
        }
    }

    /// An inserted value leaves the quoting state as it was, and is never a keyword.
    fn after_hole(&mut self) {
        self.escaped = false;
        self.after_dollar = false;
        self.word_start = false;
        self.word.clear();
    }

    fn feed(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() && self.unknown.is_none() {
            i += self.step(&chars[i..]);
        }
    }

    /// Consumes the start of `rest`; returns how many characters it used.
    fn step(&mut self, rest: &[char]) -> usize {
        let c = rest[0];
        self.after_dollar = false;
        if std::mem::take(&mut self.escaped) {
            self.word_start = false;
            return 1;
        }
        match self.top() {
            Frame::Single => {
                if c == '\'' {
                    self.stack.pop();
                }
                1
            }
            Frame::Comment => {
                if c == '\n' {
                    self.stack.pop();
                    self.end_line();
                }
                1
            }
            Frame::Arith { parens } => {
                match c {
                    // Quotes would hide parentheses from the count; bash's `$((` may even be
                    // a subshell in a command substitution.
                    '\'' | '"' | '`' | '\\' => self.give_up("after quotes inside `$(( … ))`"),
                    '(' => self.set_top(Frame::Arith { parens: parens + 1 }),
                    ')' if parens <= 1 => {
                        self.stack.pop();
                    }
                    ')' => self.set_top(Frame::Arith { parens: parens - 1 }),
                    _ => {}
                }
                1
            }
            Frame::Double => self.step_double(rest),
            Frame::Brace { in_double } => self.step_brace(rest, in_double),
            Frame::Code { subst, parens } => self.step_code(rest, subst, parens),
        }
    }

    /// `$(`, `$((`, `${`, `$'`, or a plain `$` (a hole right after it is refused).
    fn dollar(&mut self, rest: &[char], in_double: bool) -> usize {
        match (rest.get(1), rest.get(2)) {
            (Some('('), Some('(')) => {
                self.stack.push(Frame::Arith { parens: 2 });
                3
            }
            (Some('('), _) => {
                self.stack.push(Frame::Code {
                    subst: true,
                    parens: 0,
                });
                self.word_start = true;
                2
            }
            (Some('{'), _) => {
                self.stack.push(Frame::Brace { in_double });
                2
            }
            (Some('['), _) => {
                self.give_up("after a bash `$[ … ]` arithmetic expansion");
                1
            }
            (Some('\''), _) if !in_double => {
                self.give_up("after a `$'…'` string");
                1
            }
            _ => {
                self.after_dollar = true;
                1
            }
        }
    }

    fn step_double(&mut self, rest: &[char]) -> usize {
        match rest[0] {
            '"' => {
                self.stack.pop();
                1
            }
            '\\' => {
                self.escaped = true;
                1
            }
            '`' => {
                self.give_up("after a backtick command substitution");
                1
            }
            '$' => self.dollar(rest, true),
            _ => 1,
        }
    }

    fn step_brace(&mut self, rest: &[char], in_double: bool) -> usize {
        match rest[0] {
            '}' => {
                self.stack.pop();
                1
            }
            // Shells disagree on whether a nested `{` needs its own `}`.
            '{' => {
                self.give_up("after a `{` inside a `${…}` expansion");
                1
            }
            '\\' => {
                self.escaped = true;
                1
            }
            '`' => {
                self.give_up("after a backtick command substitution");
                1
            }
            // bash reads `'` literally inside a double-quoted `${…}`, other shells may not.
            '\'' if in_double => {
                self.give_up("after a `'` inside a double-quoted `${…}`");
                1
            }
            '\'' => {
                self.stack.push(Frame::Single);
                1
            }
            '"' => {
                self.stack.push(Frame::Double);
                1
            }
            '$' => self.dollar(rest, in_double),
            _ => 1,
        }
    }

    fn step_code(&mut self, rest: &[char], subst: bool, parens: u32) -> usize {
        let c = rest[0];
        let at_word_start = self.word_start;
        self.end_word_unless_plain(c);
        self.word_start = c.is_whitespace() || ";&|()<>".contains(c);
        match c {
            '\\' => self.escaped = true,
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
            '`' => self.give_up("after a backtick command substitution"),
            '$' => return self.dollar(rest, false),
            '#' if at_word_start => self.stack.push(Frame::Comment),
            '(' if subst => self.set_top(Frame::Code {
                subst,
                parens: parens + 1,
            }),
            ')' if subst && parens == 0 => {
                self.stack.pop();
            }
            ')' if subst => self.set_top(Frame::Code {
                subst,
                parens: parens - 1,
            }),
            '<' if rest.get(1) == Some(&'<') => {
                if rest.get(2) == Some(&'<') {
                    return 3; // `<<<`: a here-string is an ordinary word
                }
                self.heredoc_pending = true;
                return 2;
            }
            '\n' => self.end_line(),
            _ => {}
        }
        1
    }

    fn end_line(&mut self) {
        if self.heredoc_pending {
            self.give_up("inside a here-document body");
        }
    }

    /// Keeps the current plain word; at its end, `case` inside `$( … )` stops classification
    /// (its patterns' `)` cannot be told from the substitution's end without parsing).
    fn end_word_unless_plain(&mut self, c: char) {
        if c.is_alphanumeric() || c == '_' {
            self.word.push(c);
            return;
        }
        let in_subst = self
            .stack
            .iter()
            .any(|frame| matches!(frame, Frame::Code { subst: true, .. }));
        if self.word == "case" && in_subst {
            self.give_up("after a `case` inside `$( … )`");
        }
        self.word.clear();
    }
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

    fn placement_before(text: &str) -> Result<Placement, &'static str> {
        let mut scanner = Scanner::default();
        scanner.feed(text);
        scanner.placement()
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
    fn quoting_state_follows_the_authors_text() {
        use Placement::*;
        let cases: &[(&str, Result<Placement, &str>)] = &[
            ("echo ", Ok(Unquoted)),
            ("echo \"a ", Ok(DoubleQuoted)),
            ("echo 'a ", Ok(SingleQuoted)),
            ("echo 'a \"b' ", Ok(Unquoted)),
            ("echo \"a 'b\" '", Ok(SingleQuoted)),
            ("echo \\' ", Ok(Unquoted)),
            ("echo \"\\\" ", Ok(DoubleQuoted)),
            ("echo # note ", Ok(Comment)),
            ("echo a#b ", Ok(Unquoted)),
            ("echo x # c\necho ", Ok(Unquoted)),
            ("echo \"$(printf %s '", Ok(SingleQuoted)),
            ("echo \"$(printf %s ", Ok(Unquoted)),
            ("echo \"$(printf %s (a) 'b')\" \"", Ok(DoubleQuoted)),
            ("echo ${V:-", Ok(Unquoted)),
            ("k ${C:+--context \"$C\"} '", Ok(SingleQuoted)),
            ("echo <<< ", Ok(Unquoted)),
            ("echo \\", Err("right after a backslash")),
            ("echo $", Err("right after a `$`")),
            ("echo \"$", Err("right after a `$`")),
            (
                "echo \"${V:-",
                Err("inside a `${…}` expansion within double quotes"),
            ),
            (
                "echo $(( 1 + ",
                Err("inside an arithmetic expansion `$(( … ))`"),
            ),
            ("echo `a` ", Err("after a backtick command substitution")),
            ("echo \"`", Err("after a backtick command substitution")),
            ("echo $'a' ", Err("after a `$'…'` string")),
            ("echo $((')')) ", Err("after quotes inside `$(( … ))`")),
            (
                "echo $[1] ",
                Err("after a bash `$[ … ]` arithmetic expansion"),
            ),
            (
                "echo ${x:-{a}} ",
                Err("after a `{` inside a `${…}` expansion"),
            ),
            ("echo $(( (1) + 2 )) ", Ok(Unquoted)),
            ("cat <<EOF > f\n", Err("inside a here-document body")),
            (
                "echo $(case a in a) x;; esac) ",
                Err("after a `case` inside `$( … )`"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(placement_before(text), *expected, "{text:?}");
        }
        // Before its body starts, a here-document's command line is ordinary.
        assert_eq!(placement_before("cat <<EOF > "), Ok(Unquoted));
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
    fn only_plain_words_go_unquoted() {
        for plain in ["1.2.3", "v-1_2", "http://h:80/a,b@c%2B+d", "25"] {
            assert_eq!(quote(plain, Placement::Unquoted).unwrap(), plain);
        }
        for word in [
            "", "if", "a=b", "~root", "a b", "*", "$x", "{a,b}", "a\nb", "é",
        ] {
            assert_eq!(
                quote(word, Placement::Unquoted).unwrap(),
                format!("'{word}'"),
                "{word:?}"
            );
        }
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
