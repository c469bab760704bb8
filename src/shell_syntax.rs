//! POSIX `sh` quoting: where a spot in command text sits (outside quotes, in `"…"`, in `'…'`,
//! in a comment, or somewhere no quoting is safe) and how to write a value there as data.

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
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+-".contains(c))
        && !RESERVED_WORDS.contains(&value)
}

/// The words of a command that is a single simple command of plain words (see
/// `is_plain_word`) separated by spaces or tabs: `sh` runs it as exactly these arguments, with
/// nothing expanded, split, globbed, redirected or assigned. `None` for anything else, an empty
/// command included.
pub fn plain_command_words(command: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = command
        .split([' ', '\t'])
        .filter(|word| !word.is_empty())
        .collect();
    (!words.is_empty() && words.iter().all(|word| is_plain_word(word))).then_some(words)
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
pub struct Scanner {
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
    pub fn placement(&self) -> Result<Placement, &'static str> {
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
    pub fn after_hole(&mut self) {
        self.escaped = false;
        self.after_dollar = false;
        self.word_start = false;
        self.word.clear();
    }

    pub fn feed(&mut self, text: &str) {
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

    fn placement_before(text: &str) -> Result<Placement, &'static str> {
        let mut scanner = Scanner::default();
        scanner.feed(text);
        scanner.placement()
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
    fn only_plain_words_go_unquoted() {
        for plain in ["1.2.3", "v-1_2", "http://h:80/a@c%2B+d", "25"] {
            assert_eq!(quote(plain, Placement::Unquoted).unwrap(), plain);
        }
        // `,` stays quoted: after the author's own `{a,`, bash would split it as a brace list.
        for word in [
            "", "if", "a=b", "~root", "a b", "*", "$x", "{a,b}", "b,c", "a\nb", "é",
        ] {
            assert_eq!(
                quote(word, Placement::Unquoted).unwrap(),
                format!("'{word}'"),
                "{word:?}"
            );
        }
    }
}
