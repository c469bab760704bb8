//! Never panic on user input: mutated examples and arbitrary text always give either a plan
//! or at least one diagnostic, and the checker never panics. And `pipe fmt` keeps meaning:
//! a formatted mutation checks and compiles as the original did.
#![allow(clippy::unwrap_used)]

use pipe::Plan;
use pipe::format;
use pipe::{FileLoader, compile_source};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

mod fuzz_inputs;

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

/// Cases per property: `default` in CI (the suite stays well under a minute), or
/// `PIPE_FUZZ_CASES` for a long run. Failures are persisted in `tests/fuzz.proptest-regressions`
/// (checked in) and replayed first on every run.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PIPE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

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

    /// Recovery: `KEY VALUE` lines (a missing `=`) slipped in at statement starts are each
    /// reported at most once, with no cascade of further syntax errors.
    #[test]
    fn slipped_in_mistakes_are_reported_without_cascades(
        seed in 0..SEEDS.len(),
        lines in proptest::collection::vec(any::<proptest::sample::Index>(), 1..4),
    ) {
        let (name, text) = SEEDS[seed];
        let mut source: Vec<String> = text.lines().map(str::to_string).collect();
        let statement_starts: Vec<usize> = (0..source.len())
            .filter(|&i| source[i].starts_with("    ") && source[i].trim_start().starts_with(|c: char| c.is_ascii_lowercase()))
            .collect();
        prop_assume!(!statement_starts.is_empty());
        let mut chosen: Vec<usize> = lines.iter().map(|l| statement_starts[l.index(statement_starts.len())]).collect();
        chosen.sort_unstable();
        chosen.dedup();
        for &at in chosen.iter().rev() {
            source.insert(at, "    timeout 10m".to_string());
        }
        let source = source.join("\n");
        let compilation = compile_source(name, &source, &FileLoader);
        let syntax_errors = compilation.diagnostics.iter().filter(|d| d.code == "E0001").count();
        prop_assert!(syntax_errors <= chosen.len(), "{} syntax errors for {} slips:\n{}", syntax_errors, chosen.len(), compilation.render(false));
        let _ = compilation.render_json();
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
    let codes = |c: &pipe::Compilation| {
        let mut codes: Vec<String> = c.diagnostics.iter().map(|d| d.code.to_string()).collect();
        codes.sort();
        codes
    };
    assert_eq!(
        codes(&before),
        codes(&after),
        "diagnostics changed:\n{source}\n---\n{formatted}"
    );
    let plan = |c: &pipe::Compilation| {
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
                        // `pipe fmt` respaces expressions (`a==b` becomes `a == b`).
                        let tight: String = text.split_whitespace().collect();
                        (key, Value::String(tight))
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

/// Byte by byte: whether a canonical file's byte is inside a string or a comment (generously:
/// a one-line string runs to the last quote of its line), where a space would be content.
fn protected(text: &str) -> Vec<bool> {
    let mut protected = vec![false; text.len()];
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let line_end = rest.find('\n').map_or(text.len(), |n| at + n);
        let end = if let Some(body) = rest.strip_prefix("\"\"\"") {
            body.find("\"\"\"").map_or(text.len(), |n| at + 6 + n)
        } else if rest.starts_with('"') {
            text[at..line_end]
                .rfind('"')
                .map_or(line_end, |n| at + n + 1)
        } else if rest.starts_with("//") {
            line_end
        } else if let Some(body) = rest.strip_prefix("/*") {
            body.find("*/").map_or(text.len(), |n| at + 4 + n)
        } else {
            at += 1;
            continue;
        };
        protected[at..end].iter_mut().for_each(|p| *p = true);
        at = end.max(at + 1);
    }
    protected
}

/// A change to the spaces of a line that no token notices.
#[derive(Debug, Clone)]
enum Respace {
    Insert { at: usize, space: &'static str },
    Delete { at: usize },
}

fn respace() -> impl Strategy<Value = Respace> {
    prop_oneof![
        (
            any::<usize>(),
            prop_oneof![Just(" "), Just("   "), Just("\t")]
        )
            .prop_map(|(at, space)| Respace::Insert { at, space }),
        any::<usize>().prop_map(|at| Respace::Delete { at }),
    ]
}

/// Applies `edit` at a place outside strings and comments where it keeps every token: a space
/// added next to punctuation or space, or a space removed between two tokens that stay apart.
fn apply_respace(text: &str, edit: &Respace) -> String {
    let bytes = text.as_bytes();
    let protected = protected(text);
    let free = |at: usize| at < bytes.len() && !protected[at];
    let word = |b: u8| b.is_ascii_alphanumeric() || b"_-.%\"".contains(&b);
    let glues = |a: u8, b: u8| b"=!<>/*".contains(&a) && b"=!<>/*".contains(&b);
    let loose = |b: u8| b" \t{}[](),;:".contains(&b);
    let places: Vec<usize> = match edit {
        Respace::Insert { .. } => (1..bytes.len())
            .filter(|&at| free(at - 1) && free(at))
            .filter(|&at| loose(bytes[at - 1]) || loose(bytes[at]))
            .filter(|&at| !glues(bytes[at - 1], bytes[at]))
            .collect(),
        Respace::Delete { .. } => (1..bytes.len().saturating_sub(1))
            .filter(|&at| bytes[at] == b' ' && free(at - 1) && free(at) && free(at + 1))
            .filter(|&at| !(word(bytes[at - 1]) && word(bytes[at + 1])))
            .filter(|&at| !glues(bytes[at - 1], bytes[at + 1]))
            .collect(),
    };
    let pick = |n: usize| places[n % places.len()];
    match edit {
        _ if places.is_empty() => text.to_string(),
        Respace::Insert { at, space } => {
            let at = pick(*at);
            format!("{}{space}{}", &text[..at], &text[at..])
        }
        Respace::Delete { at } => {
            let at = pick(*at);
            format!("{}{}", &text[..at], &text[at + 1..])
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// The layout depends on the tokens only: however the spaces within its lines are changed,
    /// a canonical file formats back to itself, meaning kept.
    #[test]
    fn respaced_canonical_files_format_back_to_themselves(
        seed in 0..CANONICAL.len(),
        edits in proptest::collection::vec(respace(), 1..24),
    ) {
        let canonical = CANONICAL[seed];
        let mut text = canonical.to_string();
        for edit in &edits {
            text = apply_respace(&text, edit);
        }
        assert_formatting_keeps_meaning("fuzz.pipe", &text);
        let formatted = format(0, &text).ok();
        prop_assert_eq!(formatted.as_deref(), Some(canonical), "from:\n{}", text);
    }
}

/// Diagnostics rendered for a terminal stay proportional to the input (a window around each
/// label, at most a bounded number of diagnostics), however the input is shaped.
fn assert_bounded_output(name: &str, source: &str) {
    let compilation = compile_source(name, source, &FileLoader);
    let rendered = compilation.render(false).len();
    let limit = 64 * source.len() + 256 * 1024;
    assert!(
        rendered <= limit,
        "{rendered} bytes of diagnostics for {} bytes of input",
        source.len()
    );
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn hostile_sources_never_panic_and_render_bounded(
        text in fuzz_inputs::hostile_source(SEEDS),
    ) {
        assert_plan_or_diagnostic("fuzz.pipe", &text);
        assert_bounded_output("fuzz.pipe", &text);
        assert_formatting_keeps_meaning("fuzz.pipe", &text);
    }
}

/// The compiled plans of the examples, as JSON values to mutate.
fn plan_seeds() -> &'static [serde_json::Value] {
    static SEEDS: std::sync::OnceLock<Vec<serde_json::Value>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        ["minimal", "monorepo", "rust-service", "release"]
            .iter()
            .map(|example| {
                let path = format!(
                    "{}/examples/{example}/pipeline.pipe",
                    env!("CARGO_MANIFEST_DIR")
                );
                let plan = pipe::compile_file(std::path::Path::new(&path))
                    .plan
                    .unwrap_or_else(|| panic!("{path} compiles"));
                serde_json::to_value(&plan).unwrap()
            })
            .collect()
    })
}

/// The plan loader never panics: a plan either loads (and then is a runnable DAG that
/// survives a round trip) or is refused with a message.
fn assert_plan_loads_or_is_refused(text: &str) {
    match Plan::from_json(text) {
        Ok(plan) => {
            let graph = pipe::Graph::new(&plan);
            assert_eq!(graph.len(), plan.nodes.len());
            assert_all_nodes_can_start(&graph);
            let again = Plan::from_json(&plan.to_json());
            assert_eq!(again.as_ref().ok(), Some(&plan), "round trip of\n{text}");
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

/// Kahn's algorithm over the runner's graph: a loaded plan has no node that can never start.
fn assert_all_nodes_can_start(graph: &pipe::Graph) {
    let mut waiting: Vec<usize> = graph.needs.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..graph.len()).filter(|&i| waiting[i] == 0).collect();
    let mut started = 0;
    while let Some(node) = ready.pop() {
        started += 1;
        for &next in &graph.dependents[node] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(next);
            }
        }
    }
    assert_eq!(
        started,
        graph.len(),
        "a loaded plan has a node that never starts"
    );
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_plans_load_or_are_refused_never_panic(
        seed in 0..4usize,
        mutations in proptest::collection::vec(fuzz_inputs::plan_mutation(), 1..5),
    ) {
        let mut plan = plan_seeds()[seed].clone();
        for mutation in &mutations {
            fuzz_inputs::mutate_plan(&mut plan, mutation);
        }
        assert_plan_loads_or_is_refused(&plan.to_string());
    }

    #[test]
    fn arbitrary_text_is_refused_as_a_plan(text in "\\PC{0,300}") {
        assert_plan_loads_or_is_refused(&text);
    }
}

/// Every input the fuzz suite (or a bug report) ever found interesting, replayed on each run.
#[test]
fn the_source_corpus_replays_without_panics() {
    for (path, text) in fuzz_inputs::corpus("pipe", "pipe") {
        let name = path.display().to_string();
        assert_plan_or_diagnostic(&name, &text);
        assert_bounded_output(&name, &text);
        assert_formatting_keeps_meaning(&name, &text);
    }
}

/// Plans named `ok-*` must load; `bad-*` must be refused with a message naming `expect`
/// (the file's `_expect` field, when present, or just refused).
#[test]
fn the_plan_corpus_loads_or_is_refused_as_recorded() {
    for (path, text) in fuzz_inputs::corpus("plan", "json") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let loaded = Plan::from_json(&text);
        if name.starts_with("ok-") {
            assert!(loaded.is_ok(), "{name}: {:?}", loaded.err());
        } else {
            let error = loaded
                .err()
                .unwrap_or_else(|| panic!("{name} loaded"))
                .to_string();
            let expected = std::fs::read_to_string(path.with_extension("expect")).ok();
            if let Some(expected) = expected {
                assert!(error.contains(expected.trim()), "{name}: {error}");
            }
        }
        assert_plan_loads_or_is_refused(&text);
    }
}

/// What the compiler writes, the loader accepts: validation never refuses a compiled plan.
#[test]
fn every_example_compiles_to_a_plan_that_loads() {
    for plan in plan_seeds() {
        let text = plan.to_string();
        assert!(
            Plan::from_json(&text).is_ok(),
            "{:?}",
            Plan::from_json(&text).err()
        );
    }
}
