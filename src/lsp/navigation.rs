//! Go to definition, find references and the document outline, answered from the names of
//! the document's last check.

use super::analysis::Analysis;
use super::locations::Locator;
use crate::diagnostics::Span;
use crate::syntax::ast::{Block, Stmt};
use serde_json::{Value, json};

/// Where the name under the cursor is declared (a list: a promote's environment may be
/// declared once, a template in an imported file).
pub fn definition(analysis: &Analysis, locator: &Locator, offset: usize) -> Value {
    let Some(occurrence) = analysis.symbols.at(offset) else {
        return Value::Null;
    };
    let found: Vec<Value> = analysis
        .symbols
        .definitions(&occurrence.key)
        .map(|o| locator.location(o.span))
        .collect();
    if found.is_empty() {
        return Value::Null;
    }
    Value::Array(found)
}

/// Every place the name under the cursor is written, its declaration included when asked.
pub fn references(
    analysis: &Analysis,
    locator: &Locator,
    offset: usize,
    include_declaration: bool,
) -> Value {
    let Some(occurrence) = analysis.symbols.at(offset) else {
        return Value::Null;
    };
    let found: Vec<Value> = analysis
        .symbols
        .all(&occurrence.key)
        .filter(|o| include_declaration || !o.is_def)
        .filter(|o| !o.span.is_empty())
        .map(|o| locator.location(o.span))
        .collect();
    Value::Array(found)
}

/// The pipeline's items as an outline: imports, templates, the pipeline and what it holds.
pub fn document_symbols(analysis: &Analysis, locator: &Locator) -> Value {
    let module = &analysis.module;
    let mut symbols: Vec<Value> = Vec::new();
    for import in &module.imports {
        symbols.push(symbol(
            locator,
            &import.path,
            "import",
            2,
            import.span,
            import.path_span,
            vec![],
        ));
    }
    for template in &module.templates {
        let params = template
            .params
            .iter()
            .map(|p| {
                let detail = p.ty.ty.to_string();
                symbol(
                    locator,
                    &p.name.name,
                    &detail,
                    7,
                    p.span,
                    p.name.span,
                    vec![],
                )
            })
            .collect();
        let name = &template.name;
        symbols.push(symbol(
            locator,
            &name.name,
            "template",
            12,
            template.span,
            name.span,
            params,
        ));
    }
    for pipeline in &module.pipelines {
        let children = items(locator, &pipeline.body);
        let name = &pipeline.name;
        symbols.push(symbol(
            locator,
            &name.name,
            "pipeline",
            2,
            pipeline.span,
            name.span,
            children,
        ));
    }
    Value::Array(symbols)
}

/// The named blocks of a body, nested (a stage's jobs, a promote's probes).
fn items(locator: &Locator, body: &[Stmt]) -> Vec<Value> {
    let mut out = Vec::new();
    for statement in body {
        match statement {
            Stmt::Block(block) => out.extend(item(locator, block)),
            Stmt::Probe(probe) => {
                let detail = format!("probe: {}", probe.ty.ty);
                let name = &probe.name;
                out.push(symbol(
                    locator,
                    &name.name,
                    &detail,
                    13,
                    probe.span,
                    name.span,
                    vec![],
                ));
            }
            Stmt::Field(field) => {
                let detail = format!("output: {}", field.ty.ty);
                let name = &field.name;
                out.push(symbol(
                    locator,
                    &name.name,
                    &detail,
                    8,
                    field.span,
                    name.span,
                    vec![],
                ));
            }
            _ => {}
        }
    }
    out
}

fn item(locator: &Locator, block: &Block) -> Option<Value> {
    let keyword = block.keyword.name.as_str();
    let body = block.body.as_deref().unwrap_or_default();
    let Some(name) = &block.name else {
        // Unnamed blocks (`watch`, `outputs`) only matter for what they hold.
        let nested = items(locator, body);
        return (!nested.is_empty()).then(|| {
            let span = block.keyword.span;
            symbol(locator, keyword, "", 19, block.span, span, nested)
        });
    };
    let kind = match keyword {
        "job" => 12,
        "stage" => 2,
        "gate" => 10,
        "promote" => 6,
        "environment" => 10,
        "artifact" => 1,
        "secret" => 14,
        "drill" => 24,
        _ => 19,
    };
    let children = items(locator, body);
    Some(symbol(
        locator, &name.name, keyword, kind, block.span, name.span, children,
    ))
}

/// An LSP `DocumentSymbol` (`kind` is the protocol's `SymbolKind` number).
fn symbol(
    locator: &Locator,
    name: &str,
    detail: &str,
    kind: u8,
    span: Span,
    selection: Span,
    children: Vec<Value>,
) -> Value {
    json!({
        "name": name,
        "detail": detail,
        "kind": kind,
        "range": locator.range(span),
        "selectionRange": locator.range(selection),
        "children": children,
    })
}
