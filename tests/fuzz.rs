//! Never panic on user input: mutated examples and arbitrary text always give either a plan
//! or at least one diagnostic, and the checker never panics. And `pipe fmt` keeps meaning:
//! a formatted mutation checks and compiles as the original did.
#![allow(clippy::unwrap_used)]

use pipe::compilation::{FileLoader, compile_source};
use pipe::syntax::format::format;
use proptest::prelude::*;

const SEEDS: &[(&str, &str)] = &[
    (
        "examples/minimal/pipeline.pipe",
        include_str!("../examples/minimal/pipeline.pipe"),
    ),
    (
        "examples/monorepo/pipeline.pipe",
        include_str!("../examples/monorepo/pipeline.pipe"),
    ),
    (
        "examples/rust-service/pipeline.pipe",
        include_str!("../examples/rust-service/pipeline.pipe"),
    ),
];

/// Fragments that push a mutation towards interesting corners of the language.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "\"",
    "${{",
    "}}",
    "\"\"\"",
    "=",
    "[",
    "]",
    "(",
    ")",
    ",",
    "job x { run \"a\" }",
    "needs = [",
    "after = [x]",
    "1h30m",
    "101%",
    "5x",
    "not ",
    " and ",
    " or ",
    "==",
    "jobs.",
    "previous.path",
    "rollback { }",
    "protected = true",
    "\n",
    "/*",
    "*/",
    "//",
    "\\u{",
    "matrix { a = [\"1\"] }",
    "env.url",
    "secrets.t",
    "AKIAABCDEFGHIJKLMNOP",
    "é",
    "\u{0}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, fragment: usize },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Mutation::Insert { at, fragment }),
        (any::<usize>(), 1usize..80).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, mutation: &Mutation) -> String {
    match *mutation {
        Mutation::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, start + len);
            let end = if end < start { text.len() } else { end };
            format!("{}{}", &text[..start], &text[end..])
        }
        Mutation::Insert { at, fragment } => {
            let at = boundary(text, at);
            format!("{}{}{}", &text[..at], FRAGMENTS[fragment], &text[at..])
        }
        Mutation::Duplicate { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, (start + len).min(text.len()));
            let piece = text[start..end.max(start)].to_string();
            format!(
                "{}{}{}",
                &text[..end.max(start)],
                piece,
                &text[end.max(start)..]
            )
        }
    }
}

fn assert_plan_or_diagnostic(name: &str, source: &str) {
    let compilation = compile_source(name, source, &FileLoader);
    assert!(
        compilation.plan.is_some() || compilation.diagnostics.iter().any(|d| d.is_error()),
        "neither a plan nor an error for:\n{source}"
    );
    // Rendering must not panic either (spans inside the text, on char boundaries).
    let _ = compilation.render(false);
    let _ = compilation.render_json();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(
        seed in 0..SEEDS.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let (name, text) = SEEDS[seed];
        let mut text = text.to_string();
        for m in &mutations {
            text = apply(&text, m);
        }
        assert_plan_or_diagnostic(name, &text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        assert_plan_or_diagnostic("fuzz.pipe", &text);
        assert_formatting_keeps_meaning("fuzz.pipe", &text);
    }

    #[test]
    fn formatting_mutated_examples_keeps_their_meaning(
        seed in 0..SEEDS.len(),
        mutations in proptest::collection::vec(mutation(), 0..4),
    ) {
        let (name, text) = SEEDS[seed];
        let mut text = text.to_string();
        for m in &mutations {
            text = apply(&text, m);
        }
        assert_formatting_keeps_meaning(name, &text);
    }
}

/// `pipe fmt`'s promise: formatting twice changes nothing more, and the formatted file means
/// what the original meant: the same diagnostics by code, the same plan but for positions.
fn assert_formatting_keeps_meaning(name: &str, source: &str) {
    let Ok(formatted) = format(0, source) else {
        return;
    };
    assert_eq!(
        format(0, &formatted).as_ref(),
        Ok(&formatted),
        "not idempotent:\n{source}"
    );
    let before = compile_source(name, source, &FileLoader);
    let after = compile_source(name, &formatted, &FileLoader);
    let codes = |c: &pipe::compilation::Compilation| {
        let mut codes: Vec<String> = c.diagnostics.iter().map(|d| d.code.to_string()).collect();
        codes.sort();
        codes
    };
    assert_eq!(
        codes(&before),
        codes(&after),
        "diagnostics changed:\n{source}\n---\n{formatted}"
    );
    let plan = |c: &pipe::compilation::Compilation| {
        c.plan
            .as_ref()
            .map(|p| without_positions(serde_json::to_value(p).unwrap()))
    };
    assert_eq!(
        plan(&before),
        plan(&after),
        "plan changed:\n{source}\n---\n{formatted}"
    );
}

/// A plan as JSON without what formatting may move: spans, the source hash, and the
/// whitespace inside an expression's source text.
fn without_positions(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(key, _)| key != "span" && key != "source_sha256")
                .map(|(key, value)| match (key.as_str(), value) {
                    ("source", Value::String(text)) => {
                        let words: Vec<&str> = text.split_whitespace().collect();
                        (key, Value::String(words.join(" ")))
                    }
                    (_, value) => (key, without_positions(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_positions).collect()),
        other => other,
    }
}

const CANONICAL: &[&str] = &[
    include_str!("../examples/minimal/pipeline.pipe"),
    include_str!("../examples/monorepo/pipeline.pipe"),
    include_str!("../examples/monorepo/ci/common.pipe"),
    include_str!("../examples/rust-service/pipeline.pipe"),
    include_str!("../examples/release/pipeline.pipe"),
    include_str!("../stdlib/std/docker.pipe"),
    include_str!("../stdlib/std/git.pipe"),
    include_str!("../stdlib/std/http.pipe"),
    include_str!("../stdlib/std/k8s.pipe"),
    include_str!("../stdlib/std/postgres.pipe"),
    include_str!("../stdlib/std/rust.pipe"),
    include_str!("../stdlib/std/sqlite.pipe"),
];

#[test]
fn the_examples_and_the_stdlib_are_formatted() {
    for text in CANONICAL {
        assert_eq!(
            format(0, text).ok().as_deref(),
            Some(*text),
            "not formatted:\n{text}"
        );
    }
}

#[test]
fn a_file_with_its_layout_destroyed_is_formatted_back() {
    for text in CANONICAL.iter().filter(|t| !t.contains("\"\"\"")) {
        let flattened: String = text
            .lines()
            .map(|line| match line.trim_start() {
                "" => " \n\t\n\n".to_string(),
                code => format!("{code}   \n"),
            })
            .collect();
        assert_eq!(format(0, &flattened).ok().as_deref(), Some(*text));
    }
}
