//! Syntax-error recovery: a working copy of the text, repaired in place so that byte offsets
//! never move — a broken statement is blanked to spaces, a block left open is closed in the
//! whitespace before the next item, a non-ASCII identifier character becomes `_`.

use super::syntax_error::{find, plain_string_length};
use crate::diagnostics::{Diagnostic, FileId, Span};

/// The text the parser sees, and the regions of the real file it was not shown as written.
pub(super) struct Repair {
    text: Vec<u8>,
    repaired: Vec<(usize, usize)>,
}

/// Whether each byte is code (not inside a string or a comment), and whether a `"""` string
/// or a `/*` comment runs unclosed to the end of the file.
fn code_mask(text: &[u8]) -> (Vec<bool>, bool) {
    let mut mask = vec![true; text.len()];
    let mut runs_to_the_end = false;
    let mut index = 0;
    while index < text.len() {
        let rest = text.get(index..).unwrap_or(&[]);
        let length = if rest.starts_with(b"//") {
            rest.iter().take_while(|b| **b != b'\n').count()
        } else if rest.starts_with(b"/*") {
            match find(rest, b"*/") {
                Some(end) => end + 2,
                None => {
                    runs_to_the_end = true;
                    rest.len()
                }
            }
        } else if rest.starts_with(b"\"\"\"") {
            let body = rest.get(3..).unwrap_or(&[]);
            match find(body, b"\"\"\"") {
                Some(end) => end + 6,
                None => {
                    runs_to_the_end = true;
                    rest.len()
                }
            }
        } else if rest.first() == Some(&b'"') {
            plain_string_length(rest)
        } else {
            index += 1;
            continue;
        };
        let end = (index + length.max(1)).min(text.len());
        mask.get_mut(index..end)
            .into_iter()
            .flatten()
            .for_each(|code| *code = false);
        index = end;
    }
    (mask, runs_to_the_end)
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// A line of the file: where it starts, its indentation and its first non-blank byte.
struct Line {
    indent: usize,
    first: usize,
}

impl Repair {
    pub(super) fn new(text: &str) -> Repair {
        Repair {
            text: text.as_bytes().to_vec(),
            repaired: Vec::new(),
        }
    }

    /// The working copy (valid UTF-8: only whole characters are ever replaced, by ASCII).
    pub(super) fn text(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// The regions of the real file the parser saw changed, as spans.
    pub(super) fn repaired(&self, file: FileId) -> Vec<Span> {
        self.repaired
            .iter()
            .map(|&(start, end)| Span::new(file, start, end))
            .collect()
    }

    /// Closes every block the file leaves open. The block really unclosed is found by
    /// indentation: the first line after its `{` that is indented no deeper than the line
    /// of the `{` and is not a `}` starts something else. Each gets its own E0001.
    pub(super) fn close_unclosed_blocks(&mut self, file: FileId) -> Vec<Diagnostic> {
        let (mask, runs_to_the_end) = code_mask(&self.text);
        let open = self.unmatched_openers(&mask);
        // A `"""` string or `/*` comment left open swallows the `}`s: the parser says so.
        if open.is_empty() || runs_to_the_end {
            return Vec::new();
        }
        let mut diagnostics = Vec::new();
        let mut closed = Vec::new();
        let openers = self.openers_ending_a_line(&mask);
        for &opener in &openers {
            if closed.len() == open.len() {
                break;
            }
            if let Some(next) = self.next_item_outside(opener, &mask)
                && let Some(at) = self.whitespace_before(next, opener, &mask)
            {
                self.set(at, b'}');
                diagnostics.push(self.unclosed_by_indent(file, opener, next));
                closed.push(opener);
            }
        }
        let missing = open.len() - closed.len();
        // Without a line that shows where the block ended, a `{` that does not end its line
        // is likely left open by a bracket inside it, which the parser reports itself.
        let innermost = open.iter().rev().find(|o| !closed.contains(o));
        let brackets_balance = self.brackets_balance(&mask);
        if let Some(&opener) =
            innermost.filter(|o| missing > 0 && brackets_balance && openers.contains(o))
        {
            // What the open block holds may be cut short: checks about it would only guess.
            self.repaired
                .push((self.line_of(opener).first, self.text.len()));
            self.text.extend(std::iter::repeat_n(b'}', missing));
            diagnostics.push(unclosed_at_end(file, opener, missing));
        }
        diagnostics
    }

    /// Whether every code `[` and `(` is closed: if not, the parser's own error says where.
    fn brackets_balance(&self, mask: &[bool]) -> bool {
        let count = |byte: u8| {
            self.text
                .iter()
                .zip(mask)
                .filter(|(b, code)| **b == byte && **code)
                .count()
        };
        count(b'[') == count(b']') && count(b'(') == count(b')')
    }

    fn set(&mut self, at: usize, byte: u8) {
        if let Some(slot) = self.text.get_mut(at) {
            *slot = byte;
        }
    }

    /// Every `{` with no matching `}`, in file order.
    fn unmatched_openers(&self, mask: &[bool]) -> Vec<usize> {
        let mut open = Vec::new();
        for (index, byte) in self.text.iter().enumerate() {
            if !mask.get(index).copied().unwrap_or(false) {
                continue;
            }
            match byte {
                b'{' => open.push(index),
                b'}' => {
                    open.pop();
                }
                _ => {}
            }
        }
        open
    }

    /// Every code `{` that is the last code on its line.
    fn openers_ending_a_line(&self, mask: &[bool]) -> Vec<usize> {
        let mut openers = Vec::new();
        let mut last_code = None;
        for (index, &byte) in self.text.iter().enumerate() {
            let code = mask.get(index).copied().unwrap_or(false);
            if byte == b'\n' {
                if let Some(at) = last_code.take()
                    && self.text.get(at) == Some(&b'{')
                {
                    openers.push(at);
                }
            } else if code && !is_space(byte) {
                last_code = Some(index);
            }
        }
        openers
    }

    /// The line of byte `at`.
    fn line_of(&self, at: usize) -> Line {
        let start = self
            .text
            .get(..at)
            .and_then(|before| before.iter().rposition(|b| *b == b'\n'))
            .map_or(0, |newline| newline + 1);
        let indent = self
            .text
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        Line {
            indent,
            first: start + indent,
        }
    }

    /// The first byte of the first code line after the `{` at `opener` that is indented no
    /// deeper than the opener's line and does not start with `}`: the block ended before it.
    fn next_item_outside(&self, opener: usize, mask: &[bool]) -> Option<usize> {
        let indent = self.line_of(opener).indent;
        let mut at = opener;
        loop {
            let newline = self.text.get(at..)?.iter().position(|b| *b == b'\n')?;
            let line = self.line_of(at + newline + 1);
            at = line.first;
            let byte = *self.text.get(at)?;
            if byte == b'\n' || !mask.get(at).copied().unwrap_or(false) {
                continue;
            }
            if line.indent <= indent {
                return (byte != b'}').then_some(at);
            }
        }
    }

    /// A code whitespace byte before `next` and after `opener` to hold the missing `}`.
    fn whitespace_before(&self, next: usize, opener: usize, mask: &[bool]) -> Option<usize> {
        (opener + 1..next).rev().find(|&at| {
            mask.get(at).copied().unwrap_or(false)
                && self
                    .text
                    .get(at)
                    .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n'))
        })
    }

    fn unclosed_by_indent(&self, file: FileId, opener: usize, next: usize) -> Diagnostic {
        let word = self
            .text
            .get(next..)
            .unwrap_or(&[])
            .iter()
            .take_while(|b| is_word(**b))
            .count()
            .max(1);
        let words = self
            .text()
            .get(self.line_of(opener).first..opener)
            .unwrap_or("")
            .trim();
        Diagnostic::error("E0001", "syntax error: this block is never closed")
            .primary(
                Span::new(file, opener, opener + 1),
                "this `{` is never closed",
            )
            .secondary(
                Span::new(file, next, next + word),
                "this line is indented like the block's opening line, so the block ends before it",
            )
            .help(format!(
                "add the missing `}}` that closes `{words}` before this line"
            ))
    }

    /// Blanks the statement holding the syntax error at `position` (or, when the error is at
    /// the first word of a statement, the statement before it, which is the one left
    /// incomplete). `false` when nothing could be blanked, so the caller stops.
    pub(super) fn skip_statement_at(&mut self, position: usize) -> bool {
        if self.replace_non_ascii_identifier(position) {
            return true;
        }
        let (mask, _) = code_mask(&self.text);
        let (start, end) = self.enclosing_body(position, &mask);
        let chunks = self.statements(start, end, &mask);
        let Some(index) = chunks
            .iter()
            .rposition(|&(from, _)| from <= position)
            .or_else(|| (!chunks.is_empty()).then_some(0))
        else {
            return false;
        };
        let (mut from, mut to) = chunks.get(index).copied().unwrap_or((0, 0));
        let at_first_word = from == position
            && self
                .text
                .get(from)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        if at_first_word && index > 0 {
            (from, to) = chunks.get(index - 1).copied().unwrap_or((from, to));
        }
        self.blank(from, to)
    }

    /// `caf` + `é`: the characters that are not ASCII letters glued to an identifier become
    /// `_`, so the rest of the file still parses.
    fn replace_non_ascii_identifier(&mut self, position: usize) -> bool {
        let text = self.text();
        let Some(rest) = text.get(position..) else {
            return false;
        };
        let length: usize = rest
            .chars()
            .take_while(|c| !c.is_ascii() && c.is_alphanumeric())
            .map(char::len_utf8)
            .sum();
        if length == 0 {
            return false;
        }
        (position..position + length).for_each(|at| self.set(at, b'_'));
        self.repaired.push((position, position + length));
        true
    }

    /// The body of the innermost block around `position` (its `{` excluded), or the file.
    fn enclosing_body(&self, position: usize, mask: &[bool]) -> (usize, usize) {
        let position = position.min(self.text.len());
        let mut depth = 0usize;
        let mut start = 0;
        for at in (0..position).rev() {
            if !mask.get(at).copied().unwrap_or(false) {
                continue;
            }
            match self.text.get(at) {
                Some(b'}') => depth += 1,
                Some(b'{') if depth == 0 => {
                    start = at + 1;
                    break;
                }
                Some(b'{') => depth -= 1,
                _ => {}
            }
        }
        (start, self.closing_brace(start, mask))
    }

    /// Where the block body starting at `start` ends: its `}` or the end of the file.
    fn closing_brace(&self, start: usize, mask: &[bool]) -> usize {
        let mut depth = 0usize;
        for at in start..self.text.len() {
            if !mask.get(at).copied().unwrap_or(false) {
                continue;
            }
            match self.text.get(at) {
                Some(b'{') => depth += 1,
                Some(b'}') if depth == 0 => return at,
                Some(b'}') => depth -= 1,
                _ => {}
            }
        }
        self.text.len()
    }

    /// The statements of the body `start..end`: each runs from its first code byte to the end
    /// of its line, or on until the brackets it opens close, or to a `;`.
    fn statements(&self, start: usize, end: usize, mask: &[bool]) -> Vec<(usize, usize)> {
        let mut chunks = Vec::new();
        let mut at = start;
        while at < end {
            let byte = self.text.get(at).copied().unwrap_or(b' ');
            let code = mask.get(at).copied().unwrap_or(false);
            if !code || is_space(byte) || matches!(byte, b';' | b',') {
                at += 1;
                continue;
            }
            let to = self.statement_end(at, end, mask);
            chunks.push((at, to));
            at = to.max(at + 1);
        }
        chunks
    }

    fn statement_end(&self, from: usize, end: usize, mask: &[bool]) -> usize {
        let mut depth = 0usize;
        for at in from..end {
            if !mask.get(at).copied().unwrap_or(false) {
                continue;
            }
            match self.text.get(at) {
                Some(b'{' | b'[' | b'(') => depth += 1,
                Some(b'}' | b']' | b')') => depth = depth.saturating_sub(1),
                Some(b'\n' | b';') if depth == 0 => return at,
                _ => {}
            }
        }
        end
    }

    /// Replaces `from..to` with spaces (line breaks kept); `false` when it holds nothing.
    fn blank(&mut self, from: usize, to: usize) -> bool {
        let region = self.text.get_mut(from..to).unwrap_or(&mut []);
        if region.iter().all(|b| is_space(*b)) {
            return false;
        }
        region
            .iter_mut()
            .filter(|b| **b != b'\n')
            .for_each(|b| *b = b' ');
        self.repaired.push((from, to));
        true
    }
}

/// The blocks still open at the end of the file, shown at the innermost.
fn unclosed_at_end(file: FileId, opener: usize, missing: usize) -> Diagnostic {
    let help = match missing {
        1 => "add the missing `}`".to_string(),
        n => format!("{n} blocks are never closed: add the {n} missing `}}`"),
    };
    Diagnostic::error("E0001", "syntax error: this block is never closed")
        .primary(
            Span::new(file, opener, opener + 1),
            "this `{` is never closed",
        )
        .help(help)
}
