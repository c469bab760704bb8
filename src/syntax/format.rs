//! `pipe fmt`: the canonical layout of a `.pipe` file. Conservative on purpose: it re-indents
//! lines by nesting (two spaces per `{`, `[` or `(` left open), trims trailing whitespace,
//! collapses runs of blank lines and ends the file with one newline. It never touches a byte
//! inside a string or a block comment, and never moves anything within a line, so alignment
//! that a person chose (`environment staging    { … }`) stays.

use super::string_ranges;
use crate::diagnostics::{Diagnostic, FileId};
use std::ops::Range;

const INDENT: &str = "  ";

/// The formatted text, or the syntax error that stops the file from being formatted.
pub fn format(file: FileId, text: &str) -> Result<String, Diagnostic> {
    let strings = string_ranges(file, text)?;
    let lines = scan(text, &strings);
    Ok(render(text, &lines))
}

/// What the formatter needs to know about one line of the source.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    range: Range<usize>,
    /// Open `{ [ (` before the line, outside strings and comments.
    depth: usize,
    /// The line begins inside a string or block comment: its leading space is content.
    starts_protected: bool,
    /// The line ends inside a string or block comment: its trailing space is content.
    ends_protected: bool,
    /// Closers (`} ] )`) that open the line, which sit at their opener's depth.
    leading_closers: usize,
}

/// One pass over the text: nesting depth and protected regions, line by line.
fn scan(text: &str, strings: &[Range<usize>]) -> Vec<Line> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut strings = strings.iter().peekable();
    let (mut depth, mut at) = (0usize, 0usize);
    let mut protected_until: Option<usize> = None;
    let mut line = new_line(0, 0, false);
    let mut seen_code = false;
    while at < bytes.len() {
        if let Some(end) = protected_until {
            if at < end {
                if bytes[at] == b'\n' {
                    finish(&mut lines, &mut line, at, true);
                    line = new_line(at + 1, depth, true);
                    seen_code = true;
                }
                at += 1;
                continue;
            }
            protected_until = None;
        }
        while strings.peek().is_some_and(|s| s.end <= at) {
            strings.next();
        }
        if let Some(string) = strings.peek().filter(|s| s.start == at) {
            protected_until = Some(string.end);
            seen_code = true;
            continue;
        }
        match bytes[at] {
            b'\n' => {
                finish(&mut lines, &mut line, at, false);
                line = new_line(at + 1, depth, false);
                seen_code = false;
            }
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                let end = text[at..].find('\n').map_or(bytes.len(), |n| at + n);
                at = end;
                seen_code = true;
                continue;
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                let end = text[at + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| at + 2 + n + 2);
                protected_until = Some(end);
                seen_code = true;
                continue;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                seen_code = true;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                if !seen_code {
                    line.leading_closers += 1;
                }
            }
            b' ' | b'\t' | b'\r' => {}
            _ => seen_code = true,
        }
        at += 1;
    }
    finish(
        &mut lines,
        &mut line,
        bytes.len(),
        protected_until.is_some(),
    );
    lines
}

fn new_line(start: usize, depth: usize, starts_protected: bool) -> Line {
    Line {
        range: start..start,
        depth,
        starts_protected,
        ends_protected: false,
        leading_closers: 0,
    }
}

fn finish(lines: &mut Vec<Line>, line: &mut Line, end: usize, ends_protected: bool) {
    line.range.end = end;
    line.ends_protected = ends_protected;
    lines.push(line.clone());
}

/// Lays the lines out again: indentation from depth, trailing space trimmed, one blank line
/// at most between two lines, none at either end, one final newline. A file whose first line
/// ends in CRLF keeps CRLF endings.
fn render(text: &str, lines: &[Line]) -> String {
    let newline = match text.find('\n') {
        Some(at) if at > 0 && text.as_bytes().get(at - 1) == Some(&b'\r') => "\r\n",
        _ => "\n",
    };
    let mut out = String::with_capacity(text.len());
    let mut pending_blank = false;
    for line in lines {
        let raw = text.get(line.range.clone()).unwrap_or_default();
        if line.starts_protected {
            flush_blank(&mut out, &mut pending_blank, newline);
            // The line's own `\r`, if any, is part of it: only the `\n` was split off.
            out.push_str(raw);
            out.push('\n');
            continue;
        }
        let body = raw.trim_start_matches([' ', '\t']);
        let body = if line.ends_protected {
            body
        } else {
            body.trim_end()
        };
        if body.is_empty() {
            pending_blank = !out.is_empty();
            continue;
        }
        flush_blank(&mut out, &mut pending_blank, newline);
        let depth = line.depth.saturating_sub(line.leading_closers);
        out.push_str(&INDENT.repeat(depth));
        out.push_str(body);
        if line.ends_protected && newline == "\r\n" && raw.ends_with('\r') {
            out.push('\n');
        } else {
            out.push_str(newline);
        }
    }
    out
}

fn flush_blank(out: &mut String, pending_blank: &mut bool, newline: &str) {
    if std::mem::take(pending_blank) {
        out.push_str(newline);
    }
}

#[cfg(test)]
mod tests {
    use super::format;

    fn fmt(text: &str) -> String {
        format(0, text).unwrap()
    }

    #[test]
    fn reindents_by_nesting_and_keeps_alignment_within_lines() {
        let text = "pipeline p {\n    job a { run \"x\" }\n job b {\n\trun \"y\"\n   needs = [\n a,\n ]\n      }\n\n\n\n  environment s    { url = \"u\" }   \n}";
        assert_eq!(
            fmt(text),
            "pipeline p {\n  job a { run \"x\" }\n  job b {\n    run \"y\"\n    needs = [\n      a,\n    ]\n  }\n\n  environment s    { url = \"u\" }\n}\n"
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
    fn braces_in_strings_and_line_comments_do_not_count() {
        let text = r#"pipeline p {
// a { comment
job a { run "echo } ${{ "{" }}" }
job b { run "x" }
}
"#;
        assert_eq!(
            fmt(text),
            r#"pipeline p {
  // a { comment
  job a { run "echo } ${{ "{" }}" }
  job b { run "x" }
}
"#
        );
    }

    #[test]
    fn formatting_twice_changes_nothing_more() {
        let text = "\n\npipeline p {\n job a {\n run \"x\" }\n}\n\n\n";
        let once = fmt(text);
        assert_eq!(once, "pipeline p {\n  job a {\n    run \"x\" }\n}\n");
        assert_eq!(fmt(&once), once);
    }

    #[test]
    fn a_crlf_file_stays_crlf_inside_and_outside_strings() {
        let text =
            "pipeline p {\r\n    job a {\r\n run \"\"\"\r\n   echo hi\r\n   \"\"\"\r\n  }\r\n}\r\n";
        let once = fmt(text);
        assert_eq!(
            once,
            "pipeline p {\r\n  job a {\r\n    run \"\"\"\r\n   echo hi\r\n   \"\"\"\r\n  }\r\n}\r\n"
        );
        assert_eq!(fmt(&once), once);
    }

    #[test]
    fn a_syntax_error_is_reported_not_formatted() {
        let error = format(0, "pipeline p {\n  job a { run \"x\" \n").unwrap_err();
        assert_eq!(error.code, "E0001");
    }
}
