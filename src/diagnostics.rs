//! Diagnostics: the one error type every static phase reports, the source map it points
//! into, and its rendering (miette graphical or JSON lines).

mod excerpt;
mod explain;
mod render;

pub use explain::{all_codes, explanation};
pub use render::{render_json_line, render_text};

use serde::Serialize;

/// Index of a file in a [`SourceMap`].
pub type FileId = u32;

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The smallest span covering both (same file assumed; `self`'s file wins).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// One loaded file: its display name (as given on the command line, or `std/rust`) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    /// Byte offset of the start of every line, so positions resolve in O(log n): plans give
    /// every node a line and column, and a 100k-job file must not rescan itself per node.
    line_starts: Vec<usize>,
    /// `char_marks[k]`: characters that start in the first `k * MARK_STRIDE` bytes, so a column
    /// on a long line costs at most one stride of counting, not the whole line: a line with
    /// thousands of diagnostics must not be rescanned for each.
    char_marks: Vec<usize>,
}

const MARK_STRIDE: usize = 4096;

/// A UTF-8 byte that starts a character (not a continuation byte).
fn starts_char(byte: &u8) -> bool {
    (*byte as i8) >= -0x40
}

impl SourceFile {
    /// Characters that start before byte `offset`.
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / MARK_STRIDE;
        let counted = self.char_marks.get(block).copied().unwrap_or(0);
        let from = block * MARK_STRIDE;
        let rest = self.text.as_bytes().get(from..offset).unwrap_or_default();
        counted + rest.iter().filter(|b| starts_char(b)).count()
    }
}

/// Every file a compilation read, so diagnostics can be rendered after the fact.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let char_marks = std::iter::once(0)
            .chain(text.as_bytes().chunks(MARK_STRIDE).scan(0, |total, chunk| {
                *total += chunk.iter().filter(|b| starts_char(b)).count();
                Some(*total)
            }))
            .collect();
        self.files.push(SourceFile {
            name: name.into(),
            text,
            line_starts,
            char_marks,
        });
        FileId::try_from(self.files.len() - 1).unwrap_or(FileId::MAX)
    }

    pub fn get(&self, file: FileId) -> Option<&SourceFile> {
        self.files.get(file as usize)
    }

    pub fn name(&self, file: FileId) -> &str {
        self.get(file).map_or("<unknown>", |f| f.name.as_str())
    }

    pub fn text(&self, file: FileId) -> &str {
        self.get(file).map_or("", |f| f.text.as_str())
    }

    /// The text a span covers ("" when out of range).
    pub fn snippet(&self, span: Span) -> &str {
        self.text(span.file)
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: u32) -> (usize, usize) {
        let Some(source) = self.get(file) else {
            return (1, 1);
        };
        let offset = (offset as usize).min(source.text.len());
        let line = source.line_starts.partition_point(|&start| start <= offset);
        let line_start = source
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let column = source.chars_before(offset) - source.chars_before(line_start);
        (line.max(1), column + 1)
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId::try_from(i).unwrap_or(FileId::MAX), f))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A labelled span. The primary label marks where the problem is; secondary labels give context
/// (the first definition of a duplicate, the template a bad call refers to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label {
    pub span: Span,
    pub text: String,
    pub primary: bool,
}

/// One problem found in the source. `code` is a stable code from SPEC §8 (`E0101`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// The replacement a "did you mean" help offers for the primary label's text, so an editor
    /// can apply it as a quick fix.
    pub suggestion: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            suggestion: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// Adds the primary label: where the problem is.
    pub fn primary(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: true,
        });
        self
    }

    /// Adds a secondary label: related context.
    pub fn secondary(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: false,
        });
        self
    }

    /// Sets the help line; one made by [`did_you_mean`] also sets [`Diagnostic::suggestion`].
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        let help = help.into();
        self.suggestion = suggested_name(&help);
        self.help = Some(help);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The span of the primary label (or the first label), used for sorting and JSON output.
    pub fn main_span(&self) -> Option<Span> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or_else(|| self.labels.first())
            .map(|l| l.span)
    }
}

/// Sorts diagnostics by file and position, so output reads top to bottom, and drops exact repeats.
pub fn sort_diagnostics(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by_key(|d| (d.main_span(), d.code));
    diagnostics.dedup();
}

/// "Did you mean" candidate, by the one rule every suggestion follows: the closest name by
/// edit distance, allowed one edit per three characters (at least one); a name typed short
/// counts by its distance to the candidate's start (`retry` → `retries`); nothing is
/// suggested for, or as, a one-letter name.
pub fn suggest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = wrong.chars().count();
    if length < 2 {
        return None;
    }
    let limit = (length / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != wrong && c.chars().count() > 1)
        .map(|c| (name_distance(wrong, length, c), c))
        .filter(|((distance, _), _)| *distance <= limit)
        .min_by_key(|(distance, c)| (*distance, *c))
        .map(|(_, c)| c)
}

/// The edit distance, and whether only a prefix of the candidate matched (a whole-word
/// match of the same distance wins).
fn name_distance(wrong: &str, length: usize, candidate: &str) -> (usize, bool) {
    let whole = strsim::damerau_levenshtein(wrong, candidate);
    if length < 4 || candidate.chars().count() <= length {
        return (whole, false);
    }
    let start: String = candidate.chars().take(length).collect();
    let prefix = strsim::damerau_levenshtein(wrong, &start);
    if prefix < whole {
        (prefix, true)
    } else {
        (whole, false)
    }
}

/// The name in a help line that [`did_you_mean`] formatted.
fn suggested_name(help: &str) -> Option<String> {
    let name = help.strip_prefix("did you mean `")?.split_once("`?")?.0;
    (!name.is_empty()).then(|| name.to_string())
}

/// Formats a help line with a suggestion when one exists.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(wrong, candidates).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_did_you_mean_help_carries_its_suggestion() {
        let help = did_you_mean("biuld", ["build", "test"]).unwrap();
        let diagnostic = Diagnostic::error("E0101", "unknown").help(help);
        assert_eq!(diagnostic.suggestion.as_deref(), Some("build"));
        let plain = Diagnostic::error("E0101", "unknown").help("declare it first");
        assert_eq!(plain.suggestion, None);
    }

    #[test]
    fn one_rule_suggests_typos_and_short_forms_but_not_one_letter_names() {
        assert_eq!(
            suggest("retry", ["retries", "run", "needs"]),
            Some("retries")
        );
        assert_eq!(suggest("biuld", ["build", "test"]), Some("build"));
        assert_eq!(suggest("environ", ["environment"]), Some("environment"));
        assert_eq!(
            suggest("x", ["y", "xs"]),
            None,
            "nothing for a one-letter name"
        );
        assert_eq!(
            suggest("ab", ["a", "b"]),
            None,
            "nothing as a one-letter name"
        );
        assert_eq!(suggest("deploy", ["test", "lint"]), None);
    }

    #[test]
    fn line_and_column_count_lines_and_characters() {
        let mut sources = SourceMap::new();
        let file = sources.add("a.pipe", "ab\nçd\n\nx");
        assert_eq!(sources.line_col(file, 0), (1, 1));
        assert_eq!(sources.line_col(file, 2), (1, 3));
        assert_eq!(sources.line_col(file, 3), (2, 1));
        assert_eq!(
            sources.line_col(file, 5),
            (2, 2),
            "ç is one character of two bytes"
        );
        assert_eq!(sources.line_col(file, 7), (3, 1));
        assert_eq!(sources.line_col(file, 8), (4, 1));
        assert_eq!(sources.line_col(file, 99), (4, 2), "past the end clamps");
    }

    #[test]
    fn columns_on_a_long_line_count_characters_across_strides() {
        let line = format!("{}{}x", "é".repeat(5000), " ".repeat(7000));
        let mut sources = SourceMap::new();
        let file = sources.add("a.pipe", format!("a\n{line}"));
        let x = u32::try_from(2 + line.len() - 1).unwrap();
        assert_eq!(sources.line_col(file, x), (2, 12_001));
        assert_eq!(
            sources.line_col(file, 2 + 4),
            (2, 3),
            "two é of two bytes each"
        );
    }
}
