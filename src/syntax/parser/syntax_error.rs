//! E0001: turns pest's first parse failure into a readable diagnostic — the expected tokens in
//! words, the offending token's span, and a `help:` line when the likely fix is known.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::Rule;
use crate::diagnostics::{Diagnostic, FileId, Span, did_you_mean};

const CODE: &str = "E0001";
const TYPE_NAMES: [&str; 6] = ["string", "number", "bool", "duration", "percent", "list"];
const ITEM_KEYWORDS: [&str; 3] = ["import", "template", "pipeline"];

/// What the parser expected, in words. `None` leaves the rule out of the list.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::import | Rule::kw_import => "`import`",
        Rule::template | Rule::kw_template => "`template`",
        Rule::pipeline | Rule::kw_pipeline => "`pipeline`",
        Rule::kw_as => "`as`",
        Rule::ident | Rule::path => "an identifier",
        Rule::when_stmt
        | Rule::run_stmt
        | Rule::require_stmt
        | Rule::warn_stmt
        | Rule::probe_stmt
        | Rule::when_kind
        | Rule::kw_run
        | Rule::kw_require
        | Rule::kw_warn
        | Rule::kw_probe => "a statement",
        Rule::block_body => "`{`",
        Rule::rbrace => "`}`",
        Rule::call_args | Rule::template_call => "`(`",
        Rule::rparen => "`)`",
        Rule::rbracket => "`]`",
        Rule::langle => "`<`",
        Rule::rangle => "`>`",
        Rule::colon => "`:`",
        Rule::equals => "`=`",
        Rule::comma => "`,`",
        Rule::type_expr | Rule::scalar_type | Rule::list_type | Rule::kw_list => "a type",
        Rule::param => "a parameter",
        Rule::arg => "an argument",
        Rule::kw_when => "`when`",
        Rule::kw_for => "`for`",
        Rule::kw_every => "`every`",
        Rule::expr | Rule::paren | Rule::list | Rule::kw_not => "an expression",
        Rule::compare_op | Rule::bool_op => "an operator",
        Rule::attr_value => "`=`",
        Rule::field_type => "`:`",
        Rule::block_rest => "a block",
        Rule::number_like => "a number",
        Rule::string | Rule::triple_string => "a string",
        Rule::interp_close => "`}}`",
        Rule::interp => "`${{`",
        _ => return None,
    })
}

/// Rules that can only begin a value: when several show up, the parser wanted an expression.
fn starts_a_value(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::paren
            | Rule::list
            | Rule::number_like
            | Rule::string
            | Rule::triple_string
            | Rule::ident
            | Rule::path
            | Rule::kw_not
            | Rule::expr
    )
}

/// The expected items in words, deduplicated, the likeliest first.
fn expected_words(positives: &[Rule]) -> Vec<&'static str> {
    let wants_value = positives.contains(&Rule::number_like)
        && (positives.contains(&Rule::string) || positives.contains(&Rule::list));
    let mut words: Vec<&'static str> = Vec::new();
    for rule in positives {
        let word = if wants_value && starts_a_value(*rule) {
            Some("an expression")
        } else {
            describe(*rule)
        };
        if let Some(word) = word
            && !words.contains(&word)
        {
            words.push(word);
        }
    }
    // A statement may start with any identifier: "an identifier" would only repeat it.
    if words.contains(&"a statement") {
        words.retain(|word| *word != "an identifier");
    }
    words.sort_by_key(|word| rank(word));
    words
}

/// Tokens first, then a value or a statement, then operators, end of file last.
fn rank(word: &str) -> u8 {
    match word {
        "an expression" | "a statement" | "a type" | "an identifier" => 1,
        "an operator" => 2,
        "end of file" => 3,
        _ => 0,
    }
}

fn join_expected(words: &[&str]) -> String {
    match words {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [first, second] => format!("{first} or {second}"),
        [init @ .., last] => format!("one of {}, or {last}", init.join(", ")),
    }
}

/// The byte where pest's failure is.
pub(super) fn position(error: &Error<Rule>) -> usize {
    match error.location {
        InputLocation::Pos(position) => position,
        InputLocation::Span((start, _)) => start,
    }
}

/// Whether recovery cannot go on: the error is at the end of the file, or pest hit its
/// stack or call limit.
pub(super) fn ends_parsing(text: &str, error: &Error<Rule>) -> bool {
    matches!(error.variant, ErrorVariant::CustomError { .. })
        || text
            .get(position(error)..)
            .is_none_or(|rest| rest.trim().is_empty())
}

/// The E0001 diagnostic for pest's failure.
pub(super) fn from_pest(file: FileId, text: &str, error: &Error<Rule>) -> Diagnostic {
    let position = position(error);
    let positives = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.as_slice(),
        // pest's own guards ("stack limit reached", "call limit reached").
        ErrorVariant::CustomError { .. } => {
            return too_deeply_nested(Span::new(file, position, position));
        }
    };
    let found = Token::at(text, position);
    if let Some(diagnostic) = non_ascii_identifier(file, &found) {
        return diagnostic;
    }
    let words = if positives == [Rule::file] {
        // Nothing of the file parsed: pest names the whole rule.
        vec!["`import`", "`template`", "`pipeline`"]
    } else {
        expected_words(positives)
    };
    if words == ["`{`"]
        && let Some(diagnostic) = missing_equals(file, text, found.start)
    {
        return diagnostic;
    }
    let mut diagnostic = Diagnostic::error(
        CODE,
        format!("syntax error: expected {}", join_expected(&words)),
    );
    if found.is_end() {
        // Pointing past the last line would show an empty snippet: point at the file's end.
        let end = text.trim_end().len();
        diagnostic = diagnostic.primary(Span::new(file, end, end), "the file ends here");
        if let Some(open) = unclosed_triple_string(text) {
            return diagnostic
                .secondary(
                    Span::new(file, open, open + 3),
                    "this string is never closed",
                )
                .help("a `\"\"\"` string runs to the end of the file: close it with `\"\"\"`");
        }
    } else {
        diagnostic = diagnostic.primary(Span::new(file, found.start, found.end), found.label());
    }
    match guess_help(text, &words, &found) {
        Some(help) => diagnostic.help(help),
        None => diagnostic,
    }
}

/// `pipeline café`: a letter outside ASCII where a name goes (strings may hold any).
fn non_ascii_identifier(file: FileId, found: &Token<'_>) -> Option<Diagnostic> {
    let length: usize = found
        .rest
        .chars()
        .take_while(|c| !c.is_ascii() && c.is_alphanumeric())
        .map(char::len_utf8)
        .sum();
    if length == 0 {
        return None;
    }
    let span = Span::new(file, found.start, found.start + length);
    Some(
        Diagnostic::error(
            CODE,
            "syntax error: identifiers are ASCII letters, digits, `_` and `-`",
        )
        .primary(span, "not allowed in an identifier")
        .help(
            "rename it with ASCII letters, digits, `_` and `-` only; any text may go in a string",
        ),
    )
}

/// `timeout 10m`: a key and a value with no `=` between, found when the parser, taking it
/// for a block, wanted a `{` after the value.
fn missing_equals(file: FileId, text: &str, position: usize) -> Option<Diagnostic> {
    let before = text.get(..position)?.trim_end();
    let value_start = if before.ends_with('"') {
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        line_start + before.get(line_start..before.len() - 1)?.rfind('"')?
    } else {
        let start = before
            .rfind(|c: char| !(is_word_byte_char(c) || c == '.' || c == '%'))
            .map_or(0, |index| index + 1);
        before
            .get(start..)?
            .starts_with(|c: char| c.is_ascii_digit())
            .then_some(start)?
    };
    let value = before.get(value_start..)?;
    let before_value = before.get(..value_start)?;
    let key_part = before_value.trim_end();
    if key_part.len() == before_value.len() {
        return None;
    }
    let key_start = key_part
        .rfind(|c: char| !is_word_byte_char(c))
        .map_or(0, |index| index + 1);
    let key = key_part.get(key_start..)?;
    let opens_statement = key_part
        .get(..key_start)?
        .trim_end()
        .chars()
        .last()
        .is_none_or(|c| matches!(c, '{' | ';' | ','))
        || key_part
            .get(..key_start)?
            .rfind('\n')
            .is_some_and(|newline| {
                key_part
                    .get(newline..key_start)
                    .is_some_and(|gap| gap.trim().is_empty())
            });
    if key.is_empty() || !key.starts_with(|c: char| c.is_ascii_alphabetic()) || !opens_statement {
        return None;
    }
    let span = Span::new(file, key_start, key_start + key.len());
    Some(
        Diagnostic::error(
            CODE,
            format!("syntax error: expected `=` after the key `{key}`"),
        )
        .primary(span, format!("`{key}` is given a value without `=`"))
        .help(format!("write `{key} = {value}`")),
    )
}

fn is_word_byte_char(c: char) -> bool {
    c.is_ascii() && is_word_byte(c as u8)
}

/// E0001 for nesting too deep to parse safely.
pub(super) fn too_deeply_nested(span: Span) -> Diagnostic {
    Diagnostic::error(CODE, "syntax error: too deeply nested")
        .primary(span, "nesting goes too deep here")
        .help("split the expression or block into smaller parts")
}

/// The offending token: a whole word, number or operator where possible.
struct Token<'t> {
    text: &'t str,
    /// The source from the token on.
    rest: &'t str,
    start: usize,
    end: usize,
}

impl<'t> Token<'t> {
    fn at(source: &'t str, position: usize) -> Token<'t> {
        let position = floor_char_boundary(source, position);
        let rest = source.get(position..).unwrap_or("");
        let length = token_length(rest);
        Token {
            text: rest.get(..length).unwrap_or(""),
            rest,
            start: position,
            end: position + length,
        }
    }

    fn is_end(&self) -> bool {
        self.text.is_empty()
    }

    fn label(&self) -> String {
        if self.is_end() {
            "unexpected end of file".to_string()
        } else {
            format!("found `{}`", self.text.escape_debug())
        }
    }
}

fn floor_char_boundary(text: &str, mut position: usize) -> usize {
    position = position.min(text.len());
    while !text.is_char_boundary(position) {
        position -= 1;
    }
    position
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// How many bytes of `rest` the token at its start covers.
fn token_length(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let Some(&first) = bytes.first() else {
        return 0;
    };
    if first.is_ascii_alphanumeric() || first == b'_' {
        let glued =
            |b: &u8| is_word_byte(*b) || (first.is_ascii_digit() && matches!(b, b'.' | b'%'));
        return bytes.iter().take_while(|b| glued(b)).count();
    }
    for operator in ["${{", "==", "!=", "<=", ">=", "&&", "||", "}}", "/*", "//"] {
        if rest.starts_with(operator) {
            return operator.len();
        }
    }
    rest.chars().next().map_or(0, char::len_utf8)
}

fn guess_help(text: &str, expected: &[&str], found: &Token<'_>) -> Option<String> {
    let expects = |word: &str| expected.contains(&word);
    let found_text = found.text;
    if found.is_end() && expects("`}`") {
        return Some("a block is not closed: add the missing `}`".to_string());
    }
    if found_text.starts_with("/*") {
        return Some("this block comment is never closed: end it with `*/`".to_string());
    }
    match found_text {
        "&&" => return Some("write `and` instead of `&&`".to_string()),
        "||" => return Some("write `or` instead of `||`".to_string()),
        "!" => return Some("write `not` instead of `!`".to_string()),
        "==" | "!=" | "<" | "<=" | ">" | ">=" if !follows_a_value(text, found.start) => {
            return Some(format!("a value is missing before `{found_text}`"));
        }
        "==" | "!=" | "<" | "<=" | ">" | ">=" => {
            return Some(
                "comparisons do not chain: combine them with `and`, e.g. `a < b and b < c`"
                    .to_string(),
            );
        }
        "%" if number_before(text, found.start).is_some() => {
            let number = number_before(text, found.start).unwrap_or_default();
            return Some(format!("write `{number}%`, with no space before `%`"));
        }
        "=" if expects("`:`") => {
            return Some(
                "parameters and named arguments use `:`, e.g. `task: \"clippy\"` or \
                 `timeout: duration = 15m`"
                    .to_string(),
            );
        }
        "=" if expects("a statement") || expects("an operator") => {
            return Some("to compare two values use `==`".to_string());
        }
        ":" if expects("`=`") => {
            return Some("attributes are set with `=`, e.g. `timeout = 10m`".to_string());
        }
        "}" | ")" | "]" if expects("an expression") => {
            return Some("a value is missing here".to_string());
        }
        _ => {}
    }
    let found_a_value =
        found_text.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '"');
    if found_a_value && expects("`,`") && expects("`]`") {
        return Some("separate list items with `,`, e.g. `[lint, test]`".to_string());
    }
    if found_a_value && expects("`,`") && expects("`)`") {
        return Some("separate arguments with `,`".to_string());
    }
    if expects("a type") && found_text.starts_with(|c: char| c.is_ascii_digit() || c == '"') {
        return Some("to set an attribute use `=`, e.g. `timeout = 10m`".to_string());
    }
    if expects("a type") {
        return did_you_mean(found_text, TYPE_NAMES).or_else(|| {
            Some("the types are string, number, bool, duration, percent and list<T>".to_string())
        });
    }
    if expects("`pipeline`") {
        return did_you_mean(found_text, ITEM_KEYWORDS).or_else(|| {
            Some("a file holds `import`s, `template`s and one `pipeline NAME { … }`".to_string())
        });
    }
    if expected == ["`{`"] && previous_is_value(text, found.start) {
        return Some(
            "to set an attribute write `key = value`; a block needs a `{ … }` body".to_string(),
        );
    }
    None
}

/// The number just before `position`, separated from it by spaces (`10 %`).
fn number_before(text: &str, position: usize) -> Option<&str> {
    let before = text.get(..position)?;
    let trimmed = before.trim_end_matches([' ', '\t']);
    if trimmed.len() == before.len() {
        return None;
    }
    let start = trimmed
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |index| index + 1);
    let number = trimmed.get(start..)?;
    number
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(number)
}

/// Whether the token before `position` ends a value: a name that is not an expression
/// keyword, a literal, or a closing bracket.
fn follows_a_value(text: &str, position: usize) -> bool {
    let before = text.get(..position).unwrap_or("").trim_end();
    let word_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |index| index + 1);
    let word = before.get(word_start..).unwrap_or("");
    const EXPECTING_A_VALUE: [&str; 8] = [
        "when", "require", "warn", "for", "every", "not", "and", "or",
    ];
    if !word.is_empty() {
        return !EXPECTING_A_VALUE.contains(&word);
    }
    before
        .bytes()
        .last()
        .is_some_and(|b| matches!(b, b'"' | b'%' | b')' | b']'))
}

/// Whether the token before `position` is a literal or a name (so `key value` lacks its `=`).
fn previous_is_value(text: &str, position: usize) -> bool {
    let before = text.get(..position).unwrap_or("").trim_end();
    before
        .bytes()
        .last()
        .is_some_and(|b| is_word_byte(b) || matches!(b, b'"' | b'%'))
}

/// The `"""` string that is never closed, if any (comments and other strings skipped).
fn unclosed_triple_string(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let rest = bytes.get(index..).unwrap_or(&[]);
        index += if rest.starts_with(b"//") {
            rest.iter().take_while(|b| **b != b'\n').count()
        } else if rest.starts_with(b"/*") {
            find(rest, b"*/").map_or(rest.len(), |end| end + 2)
        } else if rest.starts_with(b"\"\"\"") {
            match find(rest.get(3..).unwrap_or(&[]), b"\"\"\"") {
                Some(end) => end + 6,
                None => return Some(index),
            }
        } else if byte == b'"' {
            plain_string_length(rest)
        } else {
            1
        };
    }
    None
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Length of a `"…"` string starting at `rest`, up to its closing quote or the end of the line.
pub(super) fn plain_string_length(rest: &[u8]) -> usize {
    let mut index = 1;
    while let Some(&byte) = rest.get(index) {
        match byte {
            b'\\' => index += 2,
            b'"' => return index + 1,
            b'\n' => return index,
            _ => index += 1,
        }
    }
    rest.len()
}
