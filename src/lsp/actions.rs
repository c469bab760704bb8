//! Code actions: every "did you mean" as a quick fix, a rollback skeleton for a promote
//! without one (E0401), and removal of an item declared and never used (W0101).

use super::locations::Locator;
use crate::diagnostics::{Diagnostic, Span};
use crate::syntax::ast::{Block, Module, Stmt};
use serde_json::{Value, json};

/// The quick fixes of the diagnostics whose primary span meets `start..=end`.
pub fn actions(
    module: &Module,
    text: &str,
    diagnostics: &[Diagnostic],
    locator: &Locator,
    (start, end): (usize, usize),
) -> Value {
    let mut out = Vec::new();
    for diagnostic in diagnostics {
        let Some(span) = diagnostic.main_span().filter(|s| s.file == 0) else {
            continue;
        };
        if (span.end as usize) < start || (span.start as usize) > end {
            continue;
        }
        let fix = match diagnostic.code {
            "E0401" => rollback_skeleton(module, text, span),
            "W0101" => removal(module, text, span),
            _ => suggestion(diagnostic, text, span),
        };
        if let Some((title, edit_span, new_text)) = fix {
            let edit = json!({"range": locator.range(edit_span), "newText": new_text});
            out.push(json!({
                "title": title,
                "kind": "quickfix",
                "isPreferred": true,
                "diagnostics": [{"range": locator.range(span), "code": diagnostic.code, "message": diagnostic.message}],
                "edit": {"changes": {locator.entry_uri: [edit]}},
            }));
        }
    }
    Value::Array(out)
}

type Fix = (String, Span, String);

/// "did you mean `build`?" replaces the mistyped word inside the primary label's text: the
/// segment of a dotted name closest to the suggestion, or the whole name for a dotted one.
fn suggestion(diagnostic: &Diagnostic, text: &str, span: Span) -> Option<Fix> {
    let suggested = diagnostic.suggestion.as_deref()?;
    let written = text.get(span.start as usize..span.end as usize)?;
    let title = format!("Replace with `{suggested}`");
    if suggested.contains('.') || !written.contains('.') {
        return Some((title, span, suggested.to_string()));
    }
    let mut at = span.start as usize;
    let mut best: Option<(usize, usize, usize)> = None;
    for part in written.split('.') {
        let distance = strsim::damerau_levenshtein(part, suggested);
        if best.is_none_or(|(d, _, _)| distance < d) {
            best = Some((distance, at, at + part.len()));
        }
        at += part.len() + 1;
    }
    let (_, from, to) = best?;
    Some((title, Span::new(0, from, to), suggested.to_string()))
}

/// A `rollback { … }` block added at the end of the promote: the deploy's command with
/// `artifact.` read as `previous.`, or a placeholder that says what to run.
fn rollback_skeleton(module: &Module, text: &str, span: Span) -> Option<Fix> {
    let promote = blocks(module).find(|b| b.keyword.name == "promote" && contains(b.span, span))?;
    let deploy = promote
        .body
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|s| match s {
            Stmt::Block(b) if b.keyword.name == "deploy" => b
                .body
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find_map(|s| match s {
                    Stmt::Run(run) => text.get(run.span.start as usize..run.span.end as usize),
                    _ => None,
                }),
            _ => None,
        });
    let command = deploy.map_or_else(
        || "\"./deploy.sh ${{ previous.path }}\"".to_string(),
        |run| run.replace("artifact.", "previous."),
    );
    let close = (promote.span.end as usize).saturating_sub(1);
    let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
    let before_close = &text[line_start..close];
    let title = "Add a rollback block that redeploys the previous release".to_string();
    if before_close.trim().is_empty() {
        let indent = before_close;
        let new_text = format!("{indent}  rollback {{ run {command} }}\n");
        return Some((title, Span::new(0, line_start, line_start), new_text));
    }
    let new_text = format!(" rollback {{ run {command} }} ");
    Some((title, Span::new(0, close, close), new_text))
}

/// Deletes the unused item's whole lines (or just the item, when it shares a line).
fn removal(module: &Module, text: &str, span: Span) -> Option<Fix> {
    let item = blocks(module)
        .filter(|b| contains(b.span, span))
        .min_by_key(|b| b.span.len())?;
    let probe = item
        .body
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|s| match s {
            Stmt::Probe(p) if contains(p.span, span) => Some(p.span),
            _ => None,
        });
    let (name, target) = match probe {
        Some(probe_span) => ("probe", probe_span),
        None => (item.keyword.name.as_str(), item.span),
    };
    let (mut from, mut to) = (target.start as usize, target.end as usize);
    let line_start = text[..from].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[to..].find('\n').map_or(text.len(), |i| to + i + 1);
    if text[line_start..from].trim().is_empty() && text[to..line_end].trim().is_empty() {
        (from, to) = (line_start, line_end);
    }
    let word = text
        .get(span.start as usize..span.end as usize)
        .unwrap_or_default();
    Some((
        format!("Remove the unused {name} `{word}`"),
        Span::new(0, from, to),
        String::new(),
    ))
}

fn contains(outer: Span, inner: Span) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Every block of the file's pipelines, nested ones included.
fn blocks(module: &Module) -> impl Iterator<Item = &Block> {
    let mut out: Vec<&Block> = Vec::new();
    let mut pending: Vec<&[Stmt]> = module.pipelines.iter().map(|p| p.body.as_slice()).collect();
    while let Some(body) = pending.pop() {
        for statement in body {
            if let Stmt::Block(block) = statement {
                out.push(block);
                pending.extend(block.body.as_deref());
            }
        }
    }
    out.into_iter()
}
