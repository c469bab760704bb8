//! Never panic on user input: mutated examples and arbitrary text always give either a plan
//! or at least one diagnostic, and the checker never panics.
#![allow(clippy::unwrap_used)]

use pipe::compilation::{FileLoader, compile_source};
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
    }
}
