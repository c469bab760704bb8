//! Rendering of [`Diagnostic`]s: miette's graphical report (colour optional) and JSON lines.

use super::excerpt::Excerpt;
use super::{Diagnostic, FileId, Label, SourceMap, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan};
use std::fmt;

/// Renders one diagnostic as miette's graphical report, headed `error[CODE]: message` or
/// `warning[CODE]: …` so a log without colour still tells them apart. Labels in files other
/// than the primary one, or far above it, become related reports, each with its own source,
/// so the first snippet's `file:line:column` is always the primary label's.
pub fn render_text(diagnostic: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let report = Report::new(diagnostic, sources);
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        out = format!(
            "{}[{}]: {}\n",
            severity_word(diagnostic),
            diagnostic.code,
            diagnostic.message
        );
    }
    out
}

fn severity_word(diagnostic: &Diagnostic) -> &'static str {
    if diagnostic.is_error() {
        "error"
    } else {
        "warning"
    }
}

/// Renders one diagnostic as a JSON object on one line:
/// `{"code","severity","message","file","line","column","help"}`.
pub fn render_json_line(diagnostic: &Diagnostic, sources: &SourceMap) -> String {
    let (file, line, column) = match diagnostic.main_span() {
        Some(span) => {
            let (line, column) = sources.line_col(span.file, span.start);
            (sources.name(span.file).to_string(), line, column)
        }
        None => (String::new(), 0, 0),
    };
    let labels: Vec<serde_json::Value> = diagnostic
        .labels
        .iter()
        .map(|l| {
            let (line, column) = sources.line_col(l.span.file, l.span.start);
            serde_json::json!({
                "file": sources.name(l.span.file), "line": line, "column": column,
                "text": l.text, "primary": l.primary,
            })
        })
        .collect();
    serde_json::json!({
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "file": file,
        "line": line,
        "column": column,
        "help": diagnostic.help,
        "labels": labels,
    })
    .to_string()
}

/// Adapter from our plain diagnostic to miette's trait, holding the labels of one file.
struct Report {
    /// Shown by miette above a related report only: the main one carries it in its message.
    code: Option<&'static str>,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    source: Option<Excerpt>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

/// Secondary labels this many lines or more above the primary one would open the report
/// with their own snippet, whose header would name their line, not the problem's.
const FAR_ABOVE: usize = 4;

impl Report {
    fn new(diagnostic: &Diagnostic, sources: &SourceMap) -> Report {
        let main = diagnostic.main_span();
        let severity = if diagnostic.is_error() {
            miette::Severity::Error
        } else {
            miette::Severity::Warning
        };
        let primary_line = main.map(|span| sources.line_col(span.file, span.start).0);
        let far_above = |label: &Label| {
            let line = sources.line_col(label.span.file, label.span.start).0;
            !label.primary && primary_line.is_some_and(|primary| line + FAR_ABOVE <= primary)
        };
        let (here, elsewhere): (Vec<&Label>, Vec<&Label>) = diagnostic
            .labels
            .iter()
            .partition(|l| Some(l.span.file) == main.map(|s| s.file) && !far_above(l));
        let related = elsewhere
            .into_iter()
            .map(|l| Report::related(diagnostic.code, l, sources))
            .collect();
        let (source, labels) = match main {
            Some(span) => {
                let report = Report::with_labels(sources, span.file, &here);
                (report.source, report.labels)
            }
            None => (None, Vec::new()),
        };
        Report {
            code: None,
            severity,
            message: format!(
                "{}[{}]: {}",
                severity_word(diagnostic),
                diagnostic.code,
                diagnostic.message
            ),
            help: diagnostic.help.clone(),
            source,
            labels,
            related,
        }
    }

    /// A label shown in a report of its own, after the main one: in another file, or far
    /// above the problem.
    fn related(code: &'static str, label: &Label, sources: &SourceMap) -> Report {
        let (line, _) = sources.line_col(label.span.file, label.span.start);
        Report {
            code: Some(code),
            severity: miette::Severity::Advice,
            message: format!("see {}:{line}", sources.name(label.span.file)),
            help: None,
            // In its own report, the related label is where that report points.
            ..Report::with_labels(
                sources,
                label.span.file,
                &[&Label {
                    primary: true,
                    ..label.clone()
                }],
            )
        }
    }

    /// A report body holding `labels` of `file`, over the excerpt of the file they need.
    fn with_labels(sources: &SourceMap, file: FileId, labels: &[&Label]) -> Report {
        let spans: Vec<Span> = labels.iter().map(|l| l.span).collect();
        let (excerpt, ranges) = Excerpt::new(sources, file, &spans);
        let labels = labels
            .iter()
            .zip(ranges)
            .map(|(l, range)| labeled(range, &l.text, l.primary))
            .collect();
        Report {
            code: None,
            severity: miette::Severity::Advice,
            message: String::new(),
            help: None,
            source: Some(excerpt),
            labels,
            related: Vec::new(),
        }
    }
}

fn labeled(range: (usize, usize), text: &str, primary: bool) -> LabeledSpan {
    let label = (!text.is_empty()).then(|| text.to_string());
    if primary {
        LabeledSpan::new_primary_with_span(label, range)
    } else {
        LabeledSpan::new_with_span(label, range)
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code
            .map(|code| Box::new(code) as Box<dyn fmt::Display + 'a>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}
