//! Dedenting of `"""…"""` strings: drops a blank first and last line and the leading
//! whitespace all non-blank lines share, leaving `${{ }}` interpolations where they were.

use crate::syntax::ast::{Expr, Segment};

/// One piece of a triple-quoted string as written: raw text or an interpolation.
pub(super) enum RawPiece<'t> {
    Text(&'t str),
    Interp(Expr),
}

/// Turns the pieces of a `"""…"""` string into segments, dedented (SPEC §3).
///
/// Lines are split on `\n` (a `\r` before it is dropped). The first line is dropped when it is
/// blank (the text right after the opening quotes), and so is the last (the indentation of the
/// closing quotes), so the result has no leading or trailing newline. Whitespace-only lines
/// become empty.
pub(super) fn dedent(pieces: Vec<RawPiece<'_>>) -> Vec<Segment> {
    let mut lines = split_lines(pieces);
    if lines.len() > 1 && lines.first().is_some_and(|line| is_blank(line)) {
        lines.remove(0);
    }
    if lines.len() > 1 && lines.last().is_some_and(|line| is_blank(line)) {
        lines.pop();
    }
    let indent = common_indent(&lines);
    join_lines(lines, indent)
}

fn split_lines(pieces: Vec<RawPiece<'_>>) -> Vec<Vec<RawPiece<'_>>> {
    let mut lines = vec![Vec::new()];
    for piece in pieces {
        match piece {
            RawPiece::Text(text) => {
                let mut parts = text.split('\n').peekable();
                while let Some(part) = parts.next() {
                    let ends_line = parts.peek().is_some();
                    let part = if ends_line {
                        part.strip_suffix('\r').unwrap_or(part)
                    } else {
                        part
                    };
                    if let Some(line) = lines.last_mut()
                        && !part.is_empty()
                    {
                        line.push(RawPiece::Text(part));
                    }
                    if ends_line {
                        lines.push(Vec::new());
                    }
                }
            }
            interp @ RawPiece::Interp(_) => {
                if let Some(line) = lines.last_mut() {
                    line.push(interp);
                }
            }
        }
    }
    lines
}

fn is_blank(line: &[RawPiece<'_>]) -> bool {
    line.iter().all(|piece| match piece {
        RawPiece::Text(text) => text.trim().is_empty(),
        RawPiece::Interp(_) => false,
    })
}

fn leading_whitespace<'t>(line: &[RawPiece<'t>]) -> &'t str {
    match line.first() {
        Some(RawPiece::Text(text)) => {
            let end = text
                .find(|c: char| c != ' ' && c != '\t')
                .unwrap_or(text.len());
            text.get(..end).unwrap_or("")
        }
        _ => "",
    }
}

/// The longest whitespace prefix shared by every non-blank line, in bytes.
fn common_indent(lines: &[Vec<RawPiece<'_>>]) -> usize {
    let mut common: Option<&str> = None;
    for line in lines.iter().filter(|line| !is_blank(line)) {
        let indent = leading_whitespace(line);
        common = Some(match common {
            None => indent,
            Some(previous) => {
                let shared = previous
                    .bytes()
                    .zip(indent.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                previous.get(..shared).unwrap_or("")
            }
        });
    }
    common.map_or(0, str::len)
}

fn join_lines(lines: Vec<Vec<RawPiece<'_>>>, indent: usize) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut text = String::new();
    for (index, line) in lines.into_iter().enumerate() {
        if index > 0 {
            text.push('\n');
        }
        if is_blank(&line) {
            continue;
        }
        for (position, piece) in line.into_iter().enumerate() {
            match piece {
                RawPiece::Text(part) if position == 0 => {
                    text.push_str(part.get(indent..).unwrap_or(""));
                }
                RawPiece::Text(part) => text.push_str(part),
                RawPiece::Interp(expr) => {
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Interp(expr));
                }
            }
        }
    }
    if !text.is_empty() || segments.is_empty() {
        segments.push(Segment::Text(text));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Span;
    use crate::syntax::ast::ExprKind;

    fn text_of(segments: &[Segment]) -> String {
        segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.clone(),
                Segment::Interp(_) => "<interp>".to_string(),
            })
            .collect()
    }

    fn interp() -> RawPiece<'static> {
        RawPiece::Interp(Expr {
            kind: ExprKind::Bool(true),
            span: Span::default(),
        })
    }

    #[test]
    fn drops_blank_first_and_last_lines_and_common_indent() {
        let pieces = vec![RawPiece::Text("\n    a\n      b\n\n    c\n  ")];
        assert_eq!(text_of(&dedent(pieces)), "a\n  b\n\nc");
    }

    #[test]
    fn keeps_text_on_the_first_line() {
        let pieces = vec![RawPiece::Text("one\n  two")];
        assert_eq!(text_of(&dedent(pieces)), "one\n  two");
    }

    #[test]
    fn interpolations_count_as_content_and_keep_their_place() {
        let pieces = vec![
            RawPiece::Text("\n    echo "),
            interp(),
            RawPiece::Text("\n    "),
            interp(),
            RawPiece::Text(" done\n  "),
        ];
        let segments = dedent(pieces);
        assert_eq!(text_of(&segments), "echo <interp>\n<interp> done");
        assert_eq!(segments.len(), 5);
    }

    #[test]
    fn crlf_and_empty_strings() {
        assert_eq!(
            text_of(&dedent(vec![RawPiece::Text("\r\n  a\r\n  b\r\n")])),
            "a\nb"
        );
        assert_eq!(dedent(vec![]), vec![Segment::Text(String::new())]);
    }
}
