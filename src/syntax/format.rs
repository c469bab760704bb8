//! `pipe fmt`: the one canonical layout of a `.pipe` file, rebuilt from its tokens (user docs:
//! "Layout and `pipe fmt`" in `docs/language.md`). Strings and comments are copied verbatim.
//!
//! The rules, all decided by the tokens and never by the spaces the file had:
//! - one space around `=` and comparison operators, after `:` and `,`, and on both sides of
//!   `{`; none inside `[ ]` and `( )`, before `,`, `;`, `:`, or a call's `(`; two spaces
//!   between statements that share a line;
//! - a list `[…]`, a call's arguments and a template's parameters go on one line if that line
//!   then ends within 100 columns, else one item per line, each with a trailing comma; a
//!   comment inside one also puts it one item per line;
//! - otherwise the lines stay as written (a `{`, `,` or `;` that opened a line joins the line
//!   before), indented two spaces per open bracket, at most one blank line in a row and none
//!   after `{` or before `}`;
//! - the `=` of attributes on consecutive lines of one block are aligned.

use super::parser::tokens::{Bracket, Token, TokenKind, tokens};
use crate::diagnostics::{Diagnostic, FileId, Span};
use std::ops::Range;

const INDENT: &str = "  ";
/// A list is kept on one line if that line ends within this many columns.
pub const MAX_WIDTH: usize = 100;

/// The formatted text, or the syntax error that stops the file from being formatted.
pub fn format(file: FileId, text: &str) -> Result<String, Diagnostic> {
    let tokens = tokens(file, text)?;
    let mut printer = Printer::new(text, &tokens);
    printer.flow();
    let formatted = printer.finish();
    // Formatting may move only whitespace (and a wrapped list's trailing comma).
    let after = tokens_of(file, &formatted)?;
    if words(text, &tokens) != words(&formatted, &after) {
        return Err(Diagnostic::error(
            "E0001",
            "the formatter would change this file's tokens (an internal error); the file is unchanged",
        )
        .primary(Span::new(file, 0, 0), "here")
        .help("please report this file"));
    }
    Ok(formatted)
}

fn tokens_of(file: FileId, text: &str) -> Result<Vec<Token>, Diagnostic> {
    tokens(file, text).map_err(|_| {
        Diagnostic::error(
            "E0001",
            "the formatter produced text that does not parse (an internal error); the file is unchanged",
        )
        .primary(Span::new(file, 0, 0), "here")
        .help("please report this file")
    })
}

/// The code tokens that carry meaning (a comma before a closing bracket carries none), and
/// the comments apart: a comment may move past a wrapped list's comma.
fn words<'t>(text: &'t str, tokens: &[Token]) -> (Vec<&'t str>, Vec<&'t str>) {
    let (comments, code): (Vec<_>, Vec<_>) = tokens
        .iter()
        .enumerate()
        .filter(|(at, token)| {
            !(token.kind == TokenKind::Comma
                && tokens[at + 1..]
                    .iter()
                    .find(|next| !is_comment(next))
                    .is_some_and(|next| matches!(next.kind, TokenKind::Close(_))))
        })
        .map(|(_, token)| token)
        .partition(|token| is_comment(token));
    let texts = |tokens: Vec<&Token>| tokens.iter().map(|t| token_text(text, t)).collect();
    (texts(code), texts(comments))
}

fn token_text<'t>(text: &'t str, token: &Token) -> &'t str {
    let raw = text.get(token.range.clone()).unwrap_or_default();
    match token.kind {
        TokenKind::LineComment => raw.trim_end(),
        _ => raw,
    }
}

/// How two neighbouring tokens on one line are separated.
fn spacing(before: &Token, token: &Token) -> &'static str {
    use TokenKind::*;
    match (before.kind, token.kind) {
        (Bom, _) | (Open(_), Close(_)) => "",
        (Open(Bracket::Brace), _) | (_, Close(Bracket::Brace)) => " ",
        (Open(_), _) | (_, Close(_)) => "",
        (_, Comma | Separator | Colon | Open(Bracket::Call)) => "",
        (Angle, _) | (_, Angle) => "",
        (Separator, _) => " ",
        _ if token.starts_statement => "  ",
        _ => " ",
    }
}

fn is_comment(token: &Token) -> bool {
    matches!(token.kind, TokenKind::LineComment | TokenKind::BlockComment)
}

/// One attribute line whose `=` may be aligned with its neighbours'.
struct Assignment {
    line: usize,
    depth: usize,
    /// Where the key ends in the output, and its width from the start of the line.
    key_end: usize,
    key_width: usize,
}

struct Printer<'t> {
    text: &'t str,
    tokens: &'t [Token],
    out: String,
    newline: &'static str,
    /// Open brackets at the current token.
    depth: usize,
    /// Characters on the current output line, and its number.
    column: usize,
    line: usize,
    /// Tokens written on the current output line.
    on_line: usize,
    /// The last token written.
    last: Option<usize>,
    /// The key just written as a line's first token, awaiting its `=`.
    key: Option<(usize, usize)>,
    assignments: Vec<Assignment>,
}

impl<'t> Printer<'t> {
    fn new(text: &'t str, tokens: &'t [Token]) -> Self {
        let newline = match text.find('\n') {
            Some(at) if at > 0 && text.as_bytes().get(at - 1) == Some(&b'\r') => "\r\n",
            _ => "\n",
        };
        Printer {
            text,
            tokens,
            out: String::with_capacity(text.len() + text.len() / 8),
            newline,
            depth: 0,
            column: 0,
            line: 0,
            on_line: 0,
            last: None,
            key: None,
            assignments: Vec::new(),
        }
    }

    /// The file outside lists: lines as written, spaces canonical.
    fn flow(&mut self) {
        self.lay_out(0..self.tokens.len(), true);
    }

    /// The tokens of `range`, each list among them laid out in turn: outside lists with the
    /// line breaks the file had, inside one with a break only after a line comment.
    fn lay_out(&mut self, range: Range<usize>, as_written: bool) {
        let mut at = range.start;
        while at < range.end {
            let token = &self.tokens[at];
            if matches!(token.kind, TokenKind::Close(_)) {
                self.depth = self.depth.saturating_sub(1);
            }
            if as_written {
                self.separate_as_written(at);
            } else if at > range.start {
                self.separate_inline(at);
            }
            match token.kind {
                TokenKind::Open(Bracket::List | Bracket::Call) => {
                    at = self.group(at);
                    continue;
                }
                TokenKind::Open(_) => {
                    self.write(at);
                    self.depth += 1;
                }
                _ => self.write(at),
            }
            at += 1;
        }
    }

    fn separate_inline(&mut self, at: usize) {
        if let Some(last) = self.last {
            if self.tokens[last].kind == TokenKind::LineComment {
                self.line_break(false);
            } else {
                self.space(spacing(&self.tokens[last], &self.tokens[at]));
            }
        }
    }

    /// Before a token outside lists: the line breaks the file had (blank lines capped), or the
    /// canonical space.
    fn separate_as_written(&mut self, at: usize) {
        let Some(last) = self.last else {
            return;
        };
        let (before, token) = (&self.tokens[last], &self.tokens[at]);
        let breaks = self.text[before.range.end..token.range.start]
            .bytes()
            .filter(|b| *b == b'\n')
            .count();
        let joins = matches!(
            token.kind,
            TokenKind::Separator | TokenKind::Open(Bracket::Brace | Bracket::Call)
        ) && before.kind != TokenKind::LineComment;
        if before.kind == TokenKind::LineComment || (breaks > 0 && !joins) {
            let blank = breaks > 1
                && before.kind != TokenKind::Open(Bracket::Brace)
                && !matches!(token.kind, TokenKind::Close(_));
            self.line_break(blank);
        } else {
            self.space(spacing(before, token));
        }
    }

    /// A list, call arguments or template parameters, from its `[`/`(` to its closer; returns
    /// the index after the closer.
    fn group(&mut self, open: usize) -> usize {
        let close = self.closer(open);
        if let Some(flat) = self.flat(open, close)
            && self.column + flat.chars().count() <= MAX_WIDTH
        {
            self.push_text(&flat);
            self.on_line += 1;
            self.last = Some(close);
            self.key = None;
            return close + 1;
        }
        self.write(open);
        self.depth += 1;
        for entry in entries(self.text, self.tokens, open, close) {
            match entry {
                Entry::Comment { at, same_line } => {
                    if same_line {
                        self.space(" ");
                    } else {
                        self.line_break(false);
                    }
                    self.write(at);
                }
                Entry::Value(range) => {
                    self.line_break(false);
                    self.lay_out(range, false);
                    self.push_text(",");
                }
            }
        }
        self.depth -= 1;
        self.line_break(false);
        self.write(close);
        close + 1
    }

    /// The group on one line, or `None` when a comment or a multi-line string forbids it.
    fn flat(&self, open: usize, close: usize) -> Option<String> {
        let mut text = String::new();
        let mut last: Option<&Token> = None;
        for at in open..=close {
            let token = &self.tokens[at];
            let raw = token_text(self.text, token);
            if token.kind == TokenKind::LineComment || raw.contains('\n') {
                return None;
            }
            let trailing_comma = token.kind == TokenKind::Comma
                && self
                    .tokens
                    .get(at + 1)
                    .is_some_and(|next| matches!(next.kind, TokenKind::Close(_)));
            if trailing_comma {
                continue;
            }
            if let Some(last) = last {
                text.push_str(spacing(last, token));
            }
            text.push_str(raw);
            last = Some(token);
        }
        Some(text)
    }

    /// The index of the bracket that closes the one at `open`.
    fn closer(&self, open: usize) -> usize {
        let mut depth = 0usize;
        for (at, token) in self.tokens.iter().enumerate().skip(open) {
            match token.kind {
                TokenKind::Open(_) => depth += 1,
                TokenKind::Close(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return at;
                    }
                }
                _ => {}
            }
        }
        self.tokens.len() - 1
    }

    fn write(&mut self, at: usize) {
        let token = &self.tokens[at];
        let text = token_text(self.text, token);
        if token.kind == TokenKind::Assign
            && let Some((key_end, key_width)) = self.key
        {
            self.assignments.push(Assignment {
                line: self.line,
                depth: self.depth,
                key_end,
                key_width,
            });
        }
        self.key = None;
        let first_on_line = self.on_line == 0;
        self.push_text(text);
        if first_on_line && token.starts_statement && token.kind == TokenKind::Word {
            self.key = Some((self.out.len(), self.column));
        }
        self.on_line += 1;
        self.last = Some(at);
    }

    fn push_text(&mut self, text: &str) {
        if self.on_line == 0 && self.column == 0 && !self.out.is_empty() {
            for _ in 0..self.depth {
                self.out.push_str(INDENT);
            }
            self.column = INDENT.len() * self.depth;
        }
        self.out.push_str(text);
        match text.rfind('\n') {
            Some(at) => {
                self.line += text.matches('\n').count();
                self.column = text[at + 1..].chars().count();
            }
            None => self.column += text.chars().count(),
        }
    }

    fn space(&mut self, space: &str) {
        self.out.push_str(space);
        self.column += space.len();
    }

    fn line_break(&mut self, blank: bool) {
        let count = if blank { 2 } else { 1 };
        for _ in 0..count {
            self.out.push_str(self.newline);
        }
        self.line += count;
        self.column = 0;
        self.on_line = 0;
        self.key = None;
    }

    /// The text with attribute `=` aligned and one final newline.
    fn finish(self) -> String {
        // Padding is spliced in one pass: inserting into the string one key at a time would
        // move the rest of a large file once per attribute.
        let mut padding: Vec<(usize, usize)> = Vec::new();
        for run in alignment_runs(&self.assignments) {
            let width = run.iter().map(|a| a.key_width).max().unwrap_or(0);
            padding.extend(run.iter().map(|a| (a.key_end, width - a.key_width)));
        }
        padding.sort_unstable();
        let mut out = String::with_capacity(self.out.len() + padding.len() * 4 + 2);
        let mut copied = 0;
        for (at, spaces) in padding {
            out.push_str(&self.out[copied..at]);
            out.extend(std::iter::repeat_n(' ', spaces));
            copied = at;
        }
        out.push_str(&self.out[copied..]);
        if !out.is_empty() {
            out.push_str(self.newline);
        }
        out
    }
}

/// Attribute lines that follow each other at one depth.
fn alignment_runs(assignments: &[Assignment]) -> Vec<&[Assignment]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for at in 1..=assignments.len() {
        let continues = assignments.get(at).is_some_and(|next| {
            let previous = &assignments[at - 1];
            next.line == previous.line + 1 && next.depth == previous.depth
        });
        if !continues {
            runs.push(&assignments[start..at]);
            start = at;
        }
    }
    runs
}

/// What a wrapped list holds, in order: values (each written with a comma after it) and the
/// comments between them, which stay on the line they shared with what came before, or on a
/// line of their own.
enum Entry {
    Value(Range<usize>),
    Comment { at: usize, same_line: bool },
}

/// The entries between `open` and `close`, split at the commas of this level. Comments at
/// the end of a value follow its comma.
fn entries(text: &str, tokens: &[Token], open: usize, close: usize) -> Vec<Entry> {
    let mut segments = Vec::new();
    let (mut depth, mut start) = (0usize, open + 1);
    for (at, token) in tokens.iter().enumerate().take(close).skip(open + 1) {
        match token.kind {
            TokenKind::Open(_) => depth += 1,
            TokenKind::Close(_) => depth = depth.saturating_sub(1),
            TokenKind::Comma if depth == 0 => {
                segments.push(start..at);
                start = at + 1;
            }
            _ => {}
        }
    }
    segments.push(start..close);
    let comment = |at: usize| Entry::Comment {
        at,
        same_line: !text[tokens[at - 1].range.end..tokens[at].range.start].contains('\n'),
    };
    let mut entries = Vec::new();
    for segment in segments {
        let (mut first, mut end) = (segment.start, segment.end);
        while first < end && is_comment(&tokens[first]) {
            entries.push(comment(first));
            first += 1;
        }
        while end > first && is_comment(&tokens[end - 1]) {
            end -= 1;
        }
        if first < end {
            entries.push(Entry::Value(first..end));
        }
        entries.extend((end..segment.end).map(comment));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::format;

    fn fmt(text: &str) -> String {
        let once = format(0, text).unwrap();
        assert_eq!(format(0, &once).unwrap(), once, "not idempotent");
        once
    }

    #[test]
    fn spaces_inside_lines_are_canonical() {
        let text = "pipeline   api{\n job lint{run \"x\" }\n job test { needs=[ lint ,  ] ; run \"y\"}\n gate g { require jobs.test.succeeded==true and(not false) }\n}";
        assert_eq!(
            fmt(text),
            "pipeline api {\n  job lint { run \"x\" }\n  job test { needs = [lint]; run \"y\" }\n  gate g { require jobs.test.succeeded == true and (not false) }\n}\n"
        );
    }

    #[test]
    fn statements_sharing_a_line_are_two_spaces_apart() {
        let text = "pipeline p {\n  environment s { url = \"u\" protected=true }\n  job a { run \"x\"   retries = 2 }\n}\n";
        assert_eq!(
            fmt(text),
            "pipeline p {\n  environment s { url = \"u\"  protected = true }\n  job a { run \"x\"  retries = 2 }\n}\n"
        );
    }

    #[test]
    fn calls_types_and_templates_are_tight() {
        let text = "template t ( a : list < string > , b: duration= 5m ) { run \"x\" }\npipeline p {\n  job a = t ( a : [\"x\"] ) { }\n}\n";
        assert_eq!(
            fmt(text),
            "template t(a: list<string>, b: duration = 5m) { run \"x\" }\npipeline p {\n  job a = t(a: [\"x\"]) {}\n}\n"
        );
    }

    #[test]
    fn a_list_that_fits_goes_on_one_line_and_one_that_does_not_one_item_per_line() {
        let text = "pipeline p {\n  job a {\n    needs = [\n      b,\n      c\n    ]\n    inherit_env = [\"AAAAAAAAAAAAAAAAAAAA\", \"BBBBBBBBBBBBBBBBBBBB\", \"CCCCCCCCCCCCCCCCCCCC\", \"DDDDDDDDDD\"]\n  }\n}\n";
        assert_eq!(
            fmt(text),
            "pipeline p {\n  job a {\n    needs       = [b, c]\n    inherit_env = [\n      \"AAAAAAAAAAAAAAAAAAAA\",\n      \"BBBBBBBBBBBBBBBBBBBB\",\n      \"CCCCCCCCCCCCCCCCCCCC\",\n      \"DDDDDDDDDD\",\n    ]\n  }\n}\n"
        );
    }

    #[test]
    fn comments_stay_where_they_were_and_wrap_their_list() {
        let text = "// head\npipeline p { // why\n  job a {\n    needs = [b, // first\n      // before c\n      c /* inline */, d]\n  }\n  /* block\n     comment */\n}\n";
        assert_eq!(
            fmt(text),
            "// head\npipeline p { // why\n  job a {\n    needs = [\n      b, // first\n      // before c\n      c, /* inline */\n      d,\n    ]\n  }\n  /* block\n     comment */\n}\n"
        );
    }

    #[test]
    fn attributes_on_consecutive_lines_align_their_equals() {
        let text = "pipeline p {\n  job a {\n    needs=[b]\n    produces    = [x]\n\n    timeout = 5m\n    run \"y\"\n    retries = 1\n  }\n}\n";
        assert_eq!(
            fmt(text),
            "pipeline p {\n  job a {\n    needs    = [b]\n    produces = [x]\n\n    timeout = 5m\n    run \"y\"\n    retries = 1\n  }\n}\n"
        );
    }

    #[test]
    fn lines_stay_blank_lines_shrink_and_braces_join() {
        let text =
            "\n\npipeline p\n{\n\n\n job a {\n run \"x\" }\n\n\n\n job b { run \"y\" }\n\n}\n\n\n";
        assert_eq!(
            fmt(text),
            "pipeline p {\n  job a {\n    run \"x\" }\n\n  job b { run \"y\" }\n}\n"
        );
    }

    #[test]
    fn never_touches_multi_line_strings_or_block_comments() {
        let text = "pipeline p {\n        job a {\n  run \"\"\"\n      echo {\n   \n        done   \n  \"\"\"\n  }\n/* keep\n      this { */\n}\n";
        assert_eq!(
            fmt(text),
            "pipeline p {\n  job a {\n    run \"\"\"\n      echo {\n   \n        done   \n  \"\"\"\n  }\n  /* keep\n      this { */\n}\n"
        );
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let text = "pipeline p {\n// a { comment\njob a { run \"echo } ${{ \"{\" }}\" }\njob b { run \"x=[ 1 ,2]\" }\n}\n";
        assert_eq!(
            fmt(text),
            "pipeline p {\n  // a { comment\n  job a { run \"echo } ${{ \"{\" }}\" }\n  job b { run \"x=[ 1 ,2]\" }\n}\n"
        );
    }

    #[test]
    fn a_crlf_file_stays_crlf_inside_and_outside_strings() {
        let text = "pipeline p {\r\n    job a {\r\n run \"\"\"\r\n   echo hi\r\n   \"\"\"\r\n  } // c\r\n}\r\n";
        assert_eq!(
            fmt(text),
            "pipeline p {\r\n  job a {\r\n    run \"\"\"\r\n   echo hi\r\n   \"\"\"\r\n  } // c\r\n}\r\n"
        );
    }

    #[test]
    fn a_syntax_error_is_reported_not_formatted() {
        let error = format(0, "pipeline p {\n  job a { run \"x\" \n").unwrap_err();
        assert_eq!(error.code, "E0001");
    }
}
