//! Hostile inputs for the fuzz suite: long lines, deep nesting, many interpolations, unicode,
//! mutated JSON plans, and the checked-in corpus (`tests/fuzz_corpus/`) every run replays.

use proptest::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Text that breaks a pipeline wherever it lands.
const BREAKERS: &[&str] = &[
    "@",
    "job",
    "${{ x }}",
    "\"",
    "é",
    "needs = [zz]",
    "}",
    "日本",
];

/// Pieces of unusual unicode: wide, combining, right-to-left, zero-width, emoji, CRLF, tabs.
const UNICODE: &[&str] = &[
    "é",
    "e\u{301}",
    "日本語",
    "🦀",
    "👩\u{200d}👩\u{200d}👧",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "\t",
    "\r\n",
    "\u{fffd}",
    "ǅ",
    "𝕏",
    "\u{0}",
];

/// One line of `col` spaces, then something that does not parse or check (the 65,535-column
/// panic of miette was found this way).
fn long_line() -> impl Strategy<Value = String> {
    (0usize..90_000, 0..BREAKERS.len(), any::<bool>()).prop_map(|(column, breaker, in_job)| {
        let pad = " ".repeat(column);
        let breaker = BREAKERS[breaker];
        if in_job {
            format!("pipeline p {{ job a {{ run \"x\"{pad}{breaker} }} }}\n")
        } else {
            format!("pipeline p {{{pad}{breaker} }}")
        }
    })
}

/// Parentheses, lists, blocks or interpolations nested `depth` deep.
fn deep_nesting() -> impl Strategy<Value = String> {
    (1usize..3_000, 0..4usize).prop_map(|(depth, kind)| {
        let (open, close, inner) = [
            ("(", ")", "true"),
            ("[", "]", "a"),
            ("{", "}", ""),
            ("job x { ", "}", ""),
        ][kind];
        let nested = format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
        match kind {
            0 => format!("pipeline p {{ job a {{ run \"x\"  when = {nested} }} }}\n"),
            1 => format!("pipeline p {{ job a {{ run \"x\"  needs = {nested} }} }}\n"),
            _ => format!("pipeline p {{ {nested} }}\n"),
        }
    })
}

/// Thousands of `${{ … }}` on one line: each a diagnostic when the name is unknown.
fn many_interpolations() -> impl Strategy<Value = String> {
    (1usize..3_000, 0..3usize).prop_map(|(count, name)| {
        let hole = ["${{ x }}", "${{ env.url }}", "${{ jobs.a.outputs.b }}"][name];
        format!(
            "pipeline p {{ job a {{ run \"{}\" }} }}\n",
            hole.repeat(count)
        )
    })
}

/// A seed with unicode pieces inserted at arbitrary places.
fn unicode_soup(seeds: &'static [(&'static str, &'static str)]) -> impl Strategy<Value = String> {
    (
        0..seeds.len(),
        proptest::collection::vec((any::<usize>(), 0..UNICODE.len()), 1..20),
    )
        .prop_map(move |(seed, inserts)| {
            let mut text = seeds[seed].1.to_string();
            for (at, piece) in inserts {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, UNICODE[piece]);
            }
            text
        })
}

/// Every generator of hostile source text.
pub fn hostile_source(
    seeds: &'static [(&'static str, &'static str)],
) -> impl Strategy<Value = String> {
    prop_oneof![
        long_line(),
        deep_nesting(),
        many_interpolations(),
        unicode_soup(seeds),
    ]
}

/// Values a mutated plan field may take: wrong types, edge numbers, other schemas.
const ATOMS: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1e300",
    "18446744073709551615",
    "101.5",
    "\"\"",
    "\"x\"",
    "\"../../etc\"",
    "\"pipe.plan/v999\"",
    "[]",
    "{}",
    "[\"x\", \"x\"]",
];

#[derive(Debug, Clone)]
pub enum PlanMutation {
    /// Replace the value at the k-th position of the tree.
    Replace { at: usize, atom: usize },
    /// Remove the k-th position (an object key or array item).
    Remove { at: usize },
    /// Duplicate the k-th array item in place.
    Duplicate { at: usize },
    /// Node `from` needs node `to` (possibly itself, possibly closing a cycle).
    Need { from: usize, to: usize },
    /// Node `from` needs a node that does not exist.
    MissingNeed { from: usize },
}

pub fn plan_mutation() -> impl Strategy<Value = PlanMutation> {
    prop_oneof![
        (any::<usize>(), 0..ATOMS.len()).prop_map(|(at, atom)| PlanMutation::Replace { at, atom }),
        any::<usize>().prop_map(|at| PlanMutation::Remove { at }),
        any::<usize>().prop_map(|at| PlanMutation::Duplicate { at }),
        (any::<usize>(), any::<usize>()).prop_map(|(from, to)| PlanMutation::Need { from, to }),
        any::<usize>().prop_map(|from| PlanMutation::MissingNeed { from }),
    ]
}

/// Every position (JSON pointer) of a value, parents before children.
fn positions(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(here.clone());
                positions(child, here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let here = format!("{at}/{i}");
                out.push(here.clone());
                positions(child, here, out);
            }
        }
        _ => {}
    }
}

fn split_pointer(pointer: &str) -> (&str, String) {
    let cut = pointer.rfind('/').unwrap_or(0);
    let key = pointer[cut + 1..].replace("~1", "/").replace("~0", "~");
    (&pointer[..cut], key)
}

pub fn mutate_plan(plan: &mut Value, mutation: &PlanMutation) {
    let mut all = Vec::new();
    positions(plan, String::new(), &mut all);
    let pick = |k: usize| all.get(k % all.len().max(1)).cloned().unwrap_or_default();
    match *mutation {
        PlanMutation::Replace { at, atom } => {
            if let Some(slot) = plan.pointer_mut(&pick(at)) {
                *slot = serde_json::from_str(ATOMS[atom]).unwrap_or(Value::Null);
            }
        }
        PlanMutation::Remove { at } => {
            let pointer = pick(at);
            let (parent, key) = split_pointer(&pointer);
            match plan.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key);
                }
                Some(Value::Array(items)) if !items.is_empty() => {
                    let last = items.len() - 1;
                    items.remove(key.parse::<usize>().map_or(last, |i| i.min(last)));
                }
                _ => {}
            }
        }
        PlanMutation::Duplicate { at } => {
            let pointer = pick(at);
            let (parent, key) = split_pointer(&pointer);
            if let (Some(Value::Array(items)), Ok(i)) =
                (plan.pointer_mut(parent), key.parse::<usize>())
                && let Some(item) = items.get(i).cloned()
            {
                items.insert(i, item);
            }
        }
        PlanMutation::Need { from, to } => {
            let ids = node_ids(plan);
            let nodes = plan.get_mut("nodes").and_then(Value::as_array_mut);
            if let (Some(nodes), false) = (nodes, ids.is_empty()) {
                let target = ids[to % ids.len()].clone();
                if let Some(needs) = nodes
                    .get_mut(from % ids.len())
                    .and_then(|n| n.get_mut("needs"))
                    .and_then(Value::as_array_mut)
                {
                    needs.push(Value::String(target));
                }
            }
        }
        PlanMutation::MissingNeed { from } => {
            let nodes = plan.get_mut("nodes").and_then(Value::as_array_mut);
            let node = nodes.and_then(|nodes| {
                let len = nodes.len().max(1);
                nodes.get_mut(from % len)
            });
            let needs = node.and_then(|n| n.get_mut("needs"));
            if let Some(needs) = needs.and_then(Value::as_array_mut) {
                needs.push(Value::String("no-such-node".into()));
            }
        }
    }
}

fn node_ids(plan: &Value) -> Vec<String> {
    plan["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The checked-in corpus files of one kind (`pipe`, `plan`) ending in `.ext`, sorted by name.
pub fn corpus(kind: &str, ext: &str) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(kind);
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .map(|path| {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            (path, text)
        })
        .collect();
    files.sort();
    files
}
