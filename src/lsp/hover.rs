//! Hover: over a diagnostic its message and `pipe explain` text; over a name what it is and
//! its declaration (a template's signature and doc comment); over a word of the language its
//! type and doc line.

use super::analysis::Analysis;
use super::context::word_at;
use super::docs;
use super::symbols::Namespace;
use crate::diagnostics::{Diagnostic, explanation};
use serde_json::{Value, json};

pub fn hover(analysis: &Analysis, diagnostics: &[Diagnostic], offset: usize) -> Value {
    let mut sections: Vec<String> = Vec::new();
    if let Some(diagnostic) = diagnostic_at(diagnostics, offset) {
        let mut text = format!("**{}**: {}", diagnostic.code, diagnostic.message);
        if let Some(explained) = explanation(diagnostic.code) {
            text.push_str("\n\n---\n\n");
            text.push_str(explained);
        }
        sections.push(text);
    }
    if let Some(text) = name(analysis, offset).or_else(|| word(analysis.text(), offset)) {
        sections.push(text);
    }
    if sections.is_empty() {
        return Value::Null;
    }
    json!({"contents": {"kind": "markdown", "value": sections.join("\n\n---\n\n")}})
}

fn diagnostic_at(diagnostics: &[Diagnostic], offset: usize) -> Option<&Diagnostic> {
    diagnostics.iter().find(|d| {
        d.main_span()
            .is_some_and(|s| s.file == 0 && (s.start as usize..=s.end as usize).contains(&offset))
    })
}

/// A declared name: what it is, its declaration as written, and its doc comment.
fn name(analysis: &Analysis, offset: usize) -> Option<String> {
    let occurrence = analysis.symbols.at(offset)?;
    let key = &occurrence.key;
    let Some(decl) = analysis.symbols.decls.get(key) else {
        let what = match key.namespace {
            Namespace::Environment => "promote",
            _ => return Some(format!("`{}` is not declared", key.name)),
        };
        return Some(format!("{what} `{}`", key.name));
    };
    let title = match key.namespace {
        Namespace::Probe | Namespace::Output | Namespace::Param => {
            match key.name.rsplit_once('.') {
                Some((owner, name)) => format!("{} `{name}` of `{owner}`", decl.what),
                None => format!("{} `{}`", decl.what, key.name),
            }
        }
        _ => format!("{} `{}`", decl.what, key.name),
    };
    let mut text = format!("{title}\n\n```pipe\n{}\n```", decl.header);
    if !decl.doc.is_empty() {
        text.push_str("\n\n");
        text.push_str(&decl.doc);
    }
    Some(text)
}

/// A word of the language: its type and doc line.
fn word(text: &str, offset: usize) -> Option<String> {
    let (_, word) = word_at(text, offset)?;
    let (ty, doc) = docs::word(word)?;
    Some(format!("`{word}`: {ty}\n\n{doc}"))
}
