//! Completion in context: the keys a block accepts, the names valid where the cursor is
//! (`needs`, `jobs.X.outputs.`, `env.`, `matrix.`, …), templates with their parameters,
//! `std/…` modules in an import, enum-like values, and durations and percents with units.

use super::analysis::Analysis;
use super::context::{Context, context_at, dotted_tail};
use super::docs;
use super::symbols::{Key, Namespace, Symbols};
use crate::syntax::ast::{Block, ExprKind, Module, Stmt};
use serde_json::{Value, json};

// LSP `CompletionItemKind` numbers.
const FUNCTION: u8 = 3;
const FIELD: u8 = 5;
const VARIABLE: u8 = 6;
const MODULE: u8 = 9;
const PROPERTY: u8 = 10;
const VALUE: u8 = 12;
const KEYWORD: u8 = 14;
const REFERENCE: u8 = 18;
const ENUM_MEMBER: u8 = 20;

/// Completions at `offset` of `text`; names come from `names`, the document's last check
/// that parsed (the text being typed usually does not).
pub fn complete(text: &str, offset: usize, names: &Analysis) -> Value {
    let context = context_at(text, offset);
    let items = items(&context, names);
    json!({"isIncomplete": false, "items": items})
}

fn items(context: &Context, names: &Analysis) -> Vec<Value> {
    let statement = context.statement.trim_start();
    if context.in_string {
        return import_modules(statement);
    }
    if let Some((parents, _)) = dotted_tail(statement) {
        return dotted(context, &parents, names);
    }
    if context.in_interpolation {
        return expression_roots(context, &names.symbols);
    }
    if let Some(items) = value_of_key(statement, &names.symbols) {
        return items;
    }
    if let Some(items) = after_keyword(statement, &names.symbols) {
        return items;
    }
    if statement.contains(char::is_whitespace) {
        return expression_roots(context, &names.symbols);
    }
    block_keys(context)
}

/// `import "std/` → every bundled module.
fn import_modules(statement: &str) -> Vec<Value> {
    if !statement.starts_with("import") {
        return Vec::new();
    }
    crate::check::stdlib::modules()
        .iter()
        .map(|(name, text)| {
            let first = text.lines().next().unwrap_or_default();
            let doc = first.trim_start_matches('/').trim();
            json!({"label": format!("std/{name}"), "kind": MODULE, "detail": doc})
        })
        .collect()
}

/// After `root.` or `jobs.J.outputs.`: the fields there.
fn dotted(context: &Context, parents: &[&str], names: &Analysis) -> Vec<Value> {
    let symbols = &names.symbols;
    match parents {
        ["jobs"] => jobs(symbols),
        ["jobs", _] => docs::JOB_FIELDS
            .iter()
            .map(|(field, ty)| json!({"label": field, "kind": FIELD, "detail": ty}))
            .collect(),
        ["jobs", job, "outputs"] => {
            let prefix = format!("{job}.");
            symbols
                .names(Namespace::Output)
                .into_iter()
                .filter_map(|name| name.strip_prefix(&prefix))
                .map(|field| json!({"label": field, "kind": FIELD, "detail": "output"}))
                .collect()
        }
        ["secrets"] => named(symbols, Namespace::Secret, REFERENCE, "secret"),
        ["env"] => environment_keys(context, &names.module),
        ["matrix"] => matrix_keys(context, &names.module),
        [root] => docs::fields(root)
            .iter()
            .map(|field| json!({"label": field, "kind": FIELD, "detail": "string"}))
            .collect(),
        _ => Vec::new(),
    }
}

/// Jobs only (not stages or gates): what `jobs.` reads.
fn jobs(symbols: &Symbols) -> Vec<Value> {
    symbols
        .names(Namespace::Step)
        .into_iter()
        .filter(|name| {
            let key = Key {
                namespace: Namespace::Step,
                name: name.to_string(),
            };
            symbols.decls.get(&key).is_some_and(|d| d.what == "job")
        })
        .map(|name| json!({"label": name, "kind": REFERENCE, "detail": "job"}))
        .collect()
}

/// `env.` inside a promote: the environment's attributes (its own and those it extends), and
/// `name`.
fn environment_keys(context: &Context, module: &Module) -> Vec<Value> {
    let mut keys = vec!["name".to_string()];
    let mut next = context.enclosing("promote").map(str::to_string);
    let mut seen = Vec::new();
    while let Some(environment) = next.take() {
        if seen.contains(&environment) {
            break;
        }
        let Some(block) = find_block(module, "environment", &environment) else {
            break;
        };
        for (key, value) in attrs(block) {
            match key.as_str() {
                "extends" => next = Some(value),
                "protected" => {}
                _ if !keys.contains(&key) => keys.push(key),
                _ => {}
            }
        }
        seen.push(environment);
    }
    keys.into_iter()
        .map(|key| json!({"label": key, "kind": FIELD, "detail": "environment attribute"}))
        .collect()
}

/// `matrix.` inside a matrix job: its keys.
fn matrix_keys(context: &Context, module: &Module) -> Vec<Value> {
    let Some(job) = context.enclosing("job") else {
        return Vec::new();
    };
    let body = find_block(module, "job", job).and_then(|b| b.body.as_deref());
    let matrix = body.into_iter().flatten().find_map(|s| match s {
        Stmt::Block(b) if b.keyword.name == "matrix" => Some(b.as_ref()),
        _ => None,
    });
    matrix
        .map(attr_keys)
        .unwrap_or_default()
        .into_iter()
        .map(|key| json!({"label": key, "kind": FIELD, "detail": "matrix key (string)"}))
        .collect()
}

fn find_block<'m>(module: &'m Module, keyword: &str, name: &str) -> Option<&'m Block> {
    fn search<'m>(body: &'m [Stmt], keyword: &str, name: &str) -> Option<&'m Block> {
        body.iter().find_map(|s| match s {
            Stmt::Block(b)
                if b.keyword.name == keyword && b.name.as_ref().is_some_and(|n| n.name == name) =>
            {
                Some(b.as_ref())
            }
            Stmt::Block(b) if b.keyword.name == "stage" => {
                search(b.body.as_deref().unwrap_or_default(), keyword, name)
            }
            _ => None,
        })
    }
    module
        .pipelines
        .iter()
        .find_map(|p| search(&p.body, keyword, name))
}

fn attr_keys(block: &Block) -> Vec<String> {
    attrs(block).into_iter().map(|(key, _)| key).collect()
}

/// A block's attributes: each key, and the name it is set to when its value is a name.
fn attrs(block: &Block) -> Vec<(String, String)> {
    let body = block.body.as_deref().unwrap_or_default();
    body.iter()
        .filter_map(|s| match s {
            Stmt::Attr(a) => {
                let name = match &a.value.kind {
                    ExprKind::Path(path) => path.first().map(|i| i.name.clone()),
                    _ => None,
                };
                Some((a.key.name.clone(), name.unwrap_or_default()))
            }
            _ => None,
        })
        .collect()
}

/// `needs = [`, `artifact = `, `kind = `, `timeout = `, `job x = ` …: what the value may be.
fn value_of_key(statement: &str, symbols: &Symbols) -> Option<Vec<Value>> {
    let (before, after) = statement.split_once('=')?;
    if let Some(arguments) = template_arguments(after, symbols) {
        return Some(arguments);
    }
    let mut words = before.split_whitespace();
    let (first, second) = (words.next()?, words.next());
    if first == "job" && second.is_some() {
        return Some(templates(symbols));
    }
    if second.is_some() {
        return None;
    }
    let items = match first {
        "needs" => named(symbols, Namespace::Step, REFERENCE, "job, stage or gate"),
        "after" => {
            let mut items = named(symbols, Namespace::Step, REFERENCE, "job, stage or gate");
            items.extend(promotes(symbols));
            items
        }
        "produces" | "artifact" => named(symbols, Namespace::Artifact, REFERENCE, "artifact"),
        "secrets" => named(symbols, Namespace::Secret, REFERENCE, "secret"),
        "environment" | "extends" | "scope" => {
            named(symbols, Namespace::Environment, REFERENCE, "environment")
        }
        "kind" => enum_values(&["expand", "contract"], "migration kind"),
        "from" => vec![
            snippet(
                "env(\"NAME\")",
                "env(\"${1:NAME}\")",
                "read from the runner's environment",
                FUNCTION,
            ),
            snippet(
                "file(\"path\")",
                "file(\"${1:path}\")",
                "read from a file",
                FUNCTION,
            ),
        ],
        "backup" | "restore" | "verify" | "deploy" | "smoke" | "rollback" => templates(symbols),
        "when" => return None,
        key => typed_values(docs::word(key)?.0),
    };
    Some(items)
}

/// Inside `tpl(…`: the parameters not given yet, each as `name: ` with its type and default.
fn template_arguments(value: &str, symbols: &Symbols) -> Option<Vec<Value>> {
    let (callee, arguments) = value.rsplit_once('(')?;
    if arguments.contains(')') {
        return None;
    }
    let callee = callee.trim();
    let params = symbols.template_params.get(callee)?;
    let given: Vec<&str> = arguments
        .split(',')
        .filter_map(|a| a.split_once(':').map(|(name, _)| name.trim()))
        .collect();
    let items = params
        .iter()
        .filter(|(name, _, _)| !given.contains(&name.as_str()))
        .map(|(name, ty, default)| {
            let detail = match default {
                Some(default) => format!("{ty} = {default}"),
                None => format!("{ty} (required)"),
            };
            snippet(name, &format!("{name}: $1"), &detail, FIELD)
        })
        .collect();
    Some(items)
}

/// `rollout ` → strategies; `probe x: ` → types; `probe x: T = ` → its source.
fn after_keyword(statement: &str, _symbols: &Symbols) -> Option<Vec<Value>> {
    let mut words = statement.split_whitespace();
    let first = words.next()?;
    let ends_open = statement.ends_with(char::is_whitespace);
    match first {
        "rollout" if words.next().is_none() && ends_open => Some(enum_values(
            crate::check::rollout_strategies(),
            "rollout strategy",
        )),
        "probe" if statement.contains('=') => Some(vec![snippet(
            "command(\"…\") every 10s",
            "command(\"${1:command}\") every ${2:10s}",
            "the probe's command and how often it runs (a duration)",
            FUNCTION,
        )]),
        "probe" if statement.contains(':') => Some(enum_values(
            &["percent", "duration", "number", "bool", "string"],
            "probe type",
        )),
        _ => None,
    }
}

/// Examples of a value by its type, each with its unit.
fn typed_values(ty: &str) -> Vec<Value> {
    let examples: &[&str] = match ty {
        "duration" => &["30s", "5m", "1h", "500ms"],
        "list<percent>" => &["[10%, 50%, 100%]", "[25%, 100%]"],
        "bool" => &["true", "false"],
        "number" => &["0", "1", "3"],
        _ => &[],
    };
    examples
        .iter()
        .map(|v| json!({"label": v, "kind": VALUE, "detail": ty}))
        .collect()
}

/// Template names, inserted as a call with one placeholder per parameter without a default.
fn templates(symbols: &Symbols) -> Vec<Value> {
    let mut names: Vec<&String> = symbols.template_params.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let params = &symbols.template_params[name];
            let listed: Vec<String> = params
                .iter()
                .map(|(p, ty, default)| match default {
                    Some(d) => format!("{p}: {ty} = {d}"),
                    None => format!("{p}: {ty}"),
                })
                .collect();
            let required: Vec<String> = params
                .iter()
                .filter(|(_, _, default)| default.is_none())
                .enumerate()
                .map(|(n, (p, ty, _))| format!("{p}: ${{{}:{ty}}}", n + 1))
                .collect();
            let detail = format!("{name}({})", listed.join(", "));
            let insert = format!("{name}({})", required.join(", "));
            snippet(name, &insert, &detail, FUNCTION)
        })
        .collect()
}

fn promotes(symbols: &Symbols) -> Vec<Value> {
    let mut names: Vec<&str> = symbols
        .occurrences
        .iter()
        .filter(|o| o.key.namespace == Namespace::Environment && !o.is_def)
        .map(|o| o.key.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|n| json!({"label": n, "kind": REFERENCE, "detail": "promote"}))
        .collect()
}

/// The names that start an expression: the roots of dotted names, and a watch's probes.
fn expression_roots(context: &Context, symbols: &Symbols) -> Vec<Value> {
    let mut items: Vec<Value> = [
        "git", "date", "run", "pipeline", "jobs", "matrix", "env", "artifact", "previous",
        "rollout",
    ]
    .iter()
    .map(|root| {
        let detail = docs::word(root).map_or("", |(_, doc)| doc);
        json!({"label": root, "kind": VARIABLE, "detail": detail})
    })
    .collect();
    if let Some(promote) = context.enclosing("promote") {
        let prefix = format!("{promote}.");
        for probe in symbols.names(Namespace::Probe) {
            if let Some(name) = probe.strip_prefix(&prefix) {
                items.push(json!({"label": name, "kind": VARIABLE, "detail": "probe"}));
            }
        }
    }
    items
}

/// At the start of a statement: what the enclosing block accepts, keys as `key = value`
/// snippets whose placeholder shows the value's type and unit.
fn block_keys(context: &Context) -> Vec<Value> {
    let keyword = context.innermost().map_or("", |h| h.keyword.as_str());
    let Some(keys) = crate::check::block_keys(keyword) else {
        return enum_values(&["pipeline", "template", "import"], "item");
    };
    let mut items: Vec<Value> = keys.attrs.iter().map(|key| attribute(key)).collect();
    for block in keys.blocks {
        items.push(snippet(
            block,
            &block_snippet(block),
            block_doc(block),
            KEYWORD,
        ));
    }
    for item in keys.items {
        let insert = format!("{item} ${{1:name}} {{\n  $0\n}}");
        items.push(snippet(item, &insert, block_doc(item), KEYWORD));
    }
    for statement in &keys.statements {
        items.push(json!({"label": statement, "kind": KEYWORD, "detail": block_doc(statement)}));
    }
    items
}

/// A block with what it needs to be valid: a watch's duration, a rollout's strategy and
/// percent steps, each placeholder showing its unit.
fn block_snippet(block: &str) -> String {
    match block {
        "watch" => "watch ${1:5m} {\n  probe ${2:error_rate}: percent = command(\"$3\") every ${4:10s}\n  rollback when ${2:error_rate} > ${5:1%} for ${6:1m}\n}".into(),
        "rollout" => "rollout ${1|canary|} {\n  steps = [${2:25%}, ${3:100%}]\n  pause = ${4:1m}\n}".into(),
        "migrate" => "migrate {\n  kind = ${1|expand,contract|}\n  run \"$2\"\n}".into(),
        _ => format!("{block} {{\n  $0\n}}"),
    }
}

fn block_doc(word: &str) -> &'static str {
    docs::word(word)
        .or_else(|| docs::word(word.split_whitespace().next().unwrap_or(word)))
        .map_or("", |(_, doc)| doc)
}

fn attribute(key: &str) -> Value {
    let (ty, doc) = docs::word(key).unwrap_or(("value", ""));
    let placeholder = match ty {
        "duration" => "${1:5m}".to_string(),
        "list<percent>" => "[${1:25%}, ${2:100%}]".to_string(),
        "bool" => "${1|true,false|}".to_string(),
        "number" => "${1:1}".to_string(),
        "string" => "\"$1\"".to_string(),
        t if t.starts_with("list") => "[$1]".to_string(),
        _ => "$1".to_string(),
    };
    let detail = format!("{ty} — {doc}");
    json!({
        "label": key,
        "kind": PROPERTY,
        "detail": detail,
        "insertText": format!("{key} = {placeholder}"),
        "insertTextFormat": 2,
    })
}

fn named(symbols: &Symbols, namespace: Namespace, kind: u8, detail: &str) -> Vec<Value> {
    symbols
        .names(namespace)
        .into_iter()
        .map(|name| json!({"label": name, "kind": kind, "detail": detail}))
        .collect()
}

fn enum_values(values: &[&str], detail: &str) -> Vec<Value> {
    values
        .iter()
        .map(|v| json!({"label": v, "kind": ENUM_MEMBER, "detail": detail}))
        .collect()
}

fn snippet(label: &str, insert: &str, detail: &str, kind: u8) -> Value {
    json!({
        "label": label,
        "kind": kind,
        "detail": detail,
        "insertText": insert,
        "insertTextFormat": 2,
    })
}
