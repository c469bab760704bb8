//! Where the cursor is, read from the text alone (it usually does not parse while typed): the
//! blocks around it, whether it is in a string or an interpolation, and the statement so far.

/// A block the cursor is inside: its keyword and name as written (`job build`, `watch 4s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub keyword: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// Outermost first.
    pub blocks: Vec<Header>,
    /// The statement's text from its start up to the cursor (inside an interpolation: the
    /// interpolation's text so far).
    pub statement: String,
    pub in_string: bool,
    pub in_interpolation: bool,
}

impl Context {
    pub fn innermost(&self) -> Option<&Header> {
        self.blocks.last()
    }

    /// The name of the closest enclosing block opened by `keyword`.
    pub fn enclosing(&self, keyword: &str) -> Option<&str> {
        self.blocks
            .iter()
            .rev()
            .find(|h| h.keyword == keyword)
            .and_then(|h| h.name.as_deref())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Code,
    LineComment,
    BlockComment,
    Str,
    TripleStr,
}

/// Reads `text` up to `offset` and says where that is.
pub fn context_at(text: &str, offset: usize) -> Context {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let bytes = &text.as_bytes()[..offset];
    let mut blocks: Vec<Header> = Vec::new();
    let mut statement_start = 0;
    let mut interpolation_start = None;
    let mut brackets = 0usize;
    let mut mode = Mode::Code;
    // The string mode an interpolation returns to.
    let mut outer = Mode::Code;
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let byte = bytes[at];
        let step = match mode {
            Mode::LineComment => {
                if byte == b'\n' {
                    mode = Mode::Code;
                    statement_start = at + 1;
                }
                1
            }
            Mode::BlockComment if rest.starts_with(b"*/") => {
                mode = Mode::Code;
                2
            }
            Mode::BlockComment => 1,
            Mode::Str | Mode::TripleStr if rest.starts_with(b"${{") => {
                outer = mode;
                mode = Mode::Code;
                interpolation_start = Some(at + 3);
                3
            }
            Mode::Str if byte == b'\\' => 2,
            Mode::Str if byte == b'"' => {
                mode = Mode::Code;
                1
            }
            Mode::TripleStr if rest.starts_with(b"\"\"\"") => {
                mode = Mode::Code;
                3
            }
            Mode::Str | Mode::TripleStr => 1,
            Mode::Code if interpolation_start.is_some() && rest.starts_with(b"}}") => {
                interpolation_start = None;
                mode = outer;
                2
            }
            Mode::Code => {
                let (step, next) = code_byte(rest);
                match next {
                    Some(next) => mode = next,
                    None if interpolation_start.is_none() => match byte {
                        b'{' => {
                            blocks.push(header(&text[statement_start..at]));
                            statement_start = at + 1;
                            brackets = 0;
                        }
                        b'}' => {
                            blocks.pop();
                            statement_start = at + 1;
                            brackets = 0;
                        }
                        b'[' | b'(' => brackets += 1,
                        b']' | b')' => brackets = brackets.saturating_sub(1),
                        b'\n' if brackets == 0 => statement_start = at + 1,
                        _ => {}
                    },
                    None => {}
                }
                step
            }
        };
        at += step;
    }
    let in_interpolation = interpolation_start.is_some() && mode == Mode::Code;
    let from = match (in_interpolation, interpolation_start) {
        (true, Some(start)) => start,
        _ => statement_start,
    };
    Context {
        blocks,
        statement: text
            .get(from.min(offset)..offset)
            .unwrap_or_default()
            .to_string(),
        in_string: matches!(mode, Mode::Str | Mode::TripleStr),
        in_interpolation,
    }
}

/// One step in code: how far to move, and the mode a comment or string opener enters.
fn code_byte(rest: &[u8]) -> (usize, Option<Mode>) {
    if rest.starts_with(b"//") {
        (2, Some(Mode::LineComment))
    } else if rest.starts_with(b"/*") {
        (2, Some(Mode::BlockComment))
    } else if rest.starts_with(b"\"\"\"") {
        (3, Some(Mode::TripleStr))
    } else if rest.starts_with(b"\"") {
        (1, Some(Mode::Str))
    } else {
        (1, None)
    }
}

/// `job build = cargo(…)` → keyword `job`, name `build`; `watch 4s` → `watch`, `4s`.
fn header(statement: &str) -> Header {
    let mut words = statement
        .split(|c: char| c.is_whitespace() || c == '=' || c == '(')
        .filter(|w| !w.is_empty());
    Header {
        keyword: words.next().unwrap_or_default().to_string(),
        name: words.next().map(str::to_string),
    }
}

fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// The identifier around `offset` and where it starts.
pub fn word_at(text: &str, offset: usize) -> Option<(usize, &str)> {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let start = bytes[..offset]
        .iter()
        .rposition(|b| !is_ident_byte(*b))
        .map_or(0, |i| i + 1);
    let end = bytes[offset..]
        .iter()
        .position(|b| !is_ident_byte(*b))
        .map_or(bytes.len(), |i| offset + i);
    let word = text.get(start..end)?;
    (!word.is_empty()).then_some((start, word))
}

/// The dotted name being typed at the end of `statement`: `jobs.build.outputs.` → the parts
/// before the last dot and the partial last part.
pub fn dotted_tail(statement: &str) -> Option<(Vec<&str>, &str)> {
    let start = statement
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let tail = &statement[start..];
    let (parents, partial) = tail.rsplit_once('.')?;
    if parents.is_empty() || parents.starts_with('.') {
        return None;
    }
    Some((parents.split('.').collect(), partial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_strings_and_statements_are_read_up_to_the_cursor() {
        let text = "pipeline p {\n  job build {\n    needs = [a,\n      b";
        let context = context_at(text, text.len());
        let keywords: Vec<&str> = context.blocks.iter().map(|h| h.keyword.as_str()).collect();
        assert_eq!(keywords, ["pipeline", "job"]);
        assert_eq!(context.enclosing("job"), Some("build"));
        assert_eq!(context.statement.trim_start(), "needs = [a,\n      b");
        let text = "job x { run \"echo { ${{ jobs.";
        let context = context_at(text, text.len());
        assert!(context.in_interpolation);
        assert_eq!(context.statement, " jobs.");
        assert_eq!(context.blocks.len(), 1);
        let text = "job x { // {\n run \"a}\" }\njob y { ";
        let context = context_at(text, text.len());
        assert_eq!(context.enclosing("job"), Some("y"));
    }

    #[test]
    fn words_and_dotted_tails() {
        assert_eq!(word_at("needs = [biuld]", 11), Some((9, "biuld")));
        assert_eq!(word_at("a  b", 2), None);
        let (parents, partial) = dotted_tail("require jobs.build.out").unwrap();
        assert_eq!((parents, partial), (vec!["jobs", "build"], "out"));
        assert_eq!(dotted_tail("needs = [bu"), None);
        assert_eq!(dotted_tail("é.x"), None, "a dot after a non-name character");
        assert_eq!(dotted_tail("\"é jobs."), Some((vec!["jobs"], "")));
    }
}
