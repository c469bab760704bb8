//! What miette sees of a file when rendering one diagnostic: only the lines from its first
//! label to its last (plus a line of context), long lines cut to windows around the labels.

use super::{FileId, SourceFile, SourceMap, Span};
use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// Lines up to this many characters are shown whole (as rustc does).
const LONG_LINE: usize = 120;
/// Characters kept before and after each label end on a long line.
const BEFORE: usize = 40;
const AFTER: usize = 60;
const ELLIPSIS: char = '…';

/// The shortened text of lines `first_line..` of one file, with the true line and column of
/// every label start, so the header's `file:line:column` still points into the real file.
pub(super) struct Excerpt {
    name: String,
    text: String,
    first_line: usize,
    /// (offset in `text`, 0-based column in characters in the real line) of each label start.
    starts: Vec<(usize, usize)>,
}

/// One kept run of a long line: bytes `from..to` of the real line at `at` in the excerpt.
struct Kept {
    from: usize,
    to: usize,
    at: usize,
}

impl Excerpt {
    /// The excerpt of `file` for `spans`, and each span as (offset, length) in the excerpt.
    pub(super) fn new(
        sources: &SourceMap,
        file: FileId,
        spans: &[Span],
    ) -> (Excerpt, Vec<(usize, usize)>) {
        let name = sources.name(file).to_string();
        let Some(source) = sources.get(file) else {
            let empty = Excerpt {
                name,
                text: String::new(),
                first_line: 0,
                starts: Vec::new(),
            };
            return (empty, spans.iter().map(|_| (0, 0)).collect());
        };
        let points: Vec<(usize, usize)> = spans
            .iter()
            .map(|s| {
                (
                    boundary(source, s.start),
                    boundary(source, s.end.max(s.start)),
                )
            })
            .collect();
        let mut builder = Builder::new(source, &points);
        builder.build();
        let ranges: Vec<(usize, usize)> = points
            .iter()
            .map(|&(start, end)| {
                let from = builder.map(start);
                (from, builder.map(end).saturating_sub(from))
            })
            .collect();
        let starts = points
            .iter()
            .zip(&ranges)
            .map(|(&(start, _), &(at, _))| (at, builder.column(start)))
            .collect();
        let excerpt = Excerpt {
            name,
            first_line: builder.first_line,
            text: builder.text,
            starts,
        };
        (excerpt, ranges)
    }
}

/// A byte offset clamped into the text and onto a character boundary.
fn boundary(source: &SourceFile, offset: u32) -> usize {
    let mut offset = (offset as usize).min(source.text.len());
    while !source.text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

struct Builder<'a> {
    source: &'a SourceFile,
    /// Every label start and end (byte offsets).
    points: Vec<usize>,
    /// Lines to show, as inclusive ranges (labels' lines with one line of context each side).
    shown: Vec<(usize, usize)>,
    first_line: usize,
    text: String,
    /// Per shown long line: its kept runs. Short lines map one to one from `line_at`.
    kept: Vec<(usize, Vec<Kept>)>,
    line_at: Vec<(usize, usize)>,
}

impl<'a> Builder<'a> {
    fn new(source: &'a SourceFile, points: &[(usize, usize)]) -> Builder<'a> {
        let last = source.line_starts.len().saturating_sub(1);
        let line = |offset| line_of(source, offset);
        let shown: Vec<(usize, usize)> = points
            .iter()
            .map(|&(s, e)| (line(s).saturating_sub(1), (line(e) + 1).min(last)))
            .collect();
        let first_line = shown.iter().map(|r| r.0).min().unwrap_or(0);
        Builder {
            source,
            points: points.iter().flat_map(|&(s, e)| [s, e]).collect(),
            shown,
            first_line,
            text: String::new(),
            kept: Vec::new(),
            line_at: Vec::new(),
        }
    }

    fn build(&mut self) {
        let last = self.shown.iter().map(|r| r.1).max().unwrap_or(0);
        for line in self.first_line..=last {
            let (start, end) = line_bounds(self.source, line);
            self.line_at.push((line, self.text.len()));
            // Lines between two labels stay: miette shows them when it joins the labels' contexts.
            self.push_line(line, start, end);
            if self.source.text.get(end..end + 1) == Some("\n") {
                self.text.push('\n');
            }
        }
    }

    fn push_line(&mut self, line: usize, start: usize, end: usize) {
        let text = self.source.text.get(start..end).unwrap_or("");
        let length = text.chars().count();
        if length <= LONG_LINE {
            self.text.push_str(text);
            return;
        }
        let columns: Vec<usize> = self
            .points
            .iter()
            .filter(|&&p| (start..=end).contains(&p))
            .map(|&p| text.get(..p - start).map_or(0, |s| s.chars().count()))
            .collect();
        let windows = windows(&columns, length);
        let bytes = |column: usize| {
            text.char_indices()
                .nth(column)
                .map_or(text.len(), |(b, _)| b)
        };
        let mut runs = Vec::new();
        let mut previous_end = 0;
        for (from, to) in windows {
            if from > previous_end {
                self.text.push(ELLIPSIS);
            }
            let (from_byte, to_byte) = (bytes(from), bytes(to));
            runs.push(Kept {
                from: start + from_byte,
                to: start + to_byte,
                at: self.text.len(),
            });
            self.text
                .push_str(text.get(from_byte..to_byte).unwrap_or(""));
            previous_end = to;
        }
        if previous_end < length {
            self.text.push(ELLIPSIS);
        }
        self.kept.push((line, runs));
    }

    /// Where a real byte offset (a label start or end) is in the excerpt.
    fn map(&self, offset: usize) -> usize {
        let line = line_of(self.source, offset);
        if let Some((_, runs)) = self.kept.iter().find(|(l, _)| *l == line) {
            return runs
                .iter()
                .find(|run| (run.from..=run.to).contains(&offset))
                .map_or(self.text.len(), |run| run.at + (offset - run.from));
        }
        let (line_start, _) = line_bounds(self.source, line);
        let at = self
            .line_at
            .iter()
            .find(|(l, _)| *l == line)
            .map_or(0, |(_, at)| *at);
        (at + offset - line_start).min(self.text.len())
    }

    /// The 0-based column, in characters, of a real byte offset in its real line.
    fn column(&self, offset: usize) -> usize {
        let (start, _) = line_bounds(self.source, line_of(self.source, offset));
        self.source
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
    }
}

/// Character ranges of a long line to keep: around every label column, merged when they touch;
/// a line without a label (context) keeps its beginning.
fn windows(columns: &[usize], length: usize) -> Vec<(usize, usize)> {
    let mut wanted: Vec<(usize, usize)> = columns
        .iter()
        .map(|&c| (c.saturating_sub(BEFORE), (c + AFTER).min(length)))
        .collect();
    if wanted.is_empty() {
        wanted.push((0, BEFORE + AFTER));
    }
    wanted.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (from, to) in wanted {
        match merged.last_mut() {
            Some(last) if from <= last.1 + 1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

fn line_of(source: &SourceFile, offset: usize) -> usize {
    source
        .line_starts
        .partition_point(|&s| s <= offset)
        .saturating_sub(1)
}

/// Byte range of a line without its newline.
fn line_bounds(source: &SourceFile, line: usize) -> (usize, usize) {
    let start = source.line_starts.get(line).copied().unwrap_or(0);
    let end = source
        .line_starts
        .get(line + 1)
        .map_or(source.text.len(), |next| next - 1);
    (start, end.max(start))
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        // Asked without context, miette wants the header's column: the real one, in characters.
        let real_column = self
            .starts
            .iter()
            .find(|(at, _)| *at == span.offset())
            .map(|(_, column)| *column);
        let column = match real_column {
            Some(column) if before == 0 => column,
            _ => inner.column(),
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            column,
            // Counted from the start of the text by miette; it joins contexts by it.
            inner.line_count() + self.first_line,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::windows;

    #[test]
    fn windows_merge_when_labels_are_close_and_stay_apart_when_far() {
        assert_eq!(windows(&[100, 110], 1000), vec![(60, 170)]);
        assert_eq!(windows(&[100, 900], 1000), vec![(60, 160), (860, 960)]);
        assert_eq!(windows(&[990], 1000), vec![(950, 1000)]);
        assert_eq!(windows(&[], 1000), vec![(0, 100)]);
    }
}
