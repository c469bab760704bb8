#![allow(clippy::unwrap_used)]
//! Keeps the hand-written language material in step with the tool: the error index
//! `docs/errors.md` (generated from the `pipe explain` texts), the shape of every explanation,
//! the examples in them, the editor grammars' keyword lists, and the stdlib reference.
//!
//! Regenerate the generated files with `PIPE_REGENERATE=1 cargo test --test error_index`.

use pipe::Loader;
use pipe::compile_source;
use pipe::{all_codes, explanation};
use std::path::{Path, PathBuf};

const REGENERATE_VAR: &str = "PIPE_REGENERATE";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// Compares a generated file with its committed copy, or rewrites it when asked to.
fn assert_generated_file_is_current(relative: &str, generated: &str) {
    if std::env::var_os(REGENERATE_VAR).is_some() {
        std::fs::write(repo_path(relative), generated).unwrap();
        return;
    }
    let committed = read(relative);
    assert!(
        committed == generated,
        "{relative} is stale: run `{REGENERATE_VAR}=1 cargo test --test error_index` and commit it"
    );
}

fn explanation_of(code: &str) -> &'static str {
    explanation(code).unwrap_or_else(|| panic!("{code} has no explanation"))
}

/// The first line of an explanation: `E0401: a promote has no rollback block`.
fn title_of(code: &str) -> &'static str {
    explanation_of(code).lines().next().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// The error index
// ---------------------------------------------------------------------------------------------

/// The families of codes, by prefix, in the order the index lists them.
const FAMILIES: &[(&str, &str)] = &[
    ("E00", "Syntax and literals"),
    ("E01", "Names, blocks and imports"),
    ("E02", "Types, templates and scopes"),
    ("E03", "The dependency graph and artifacts"),
    ("E04", "Delivery safety"),
    ("E05", "Secrets"),
    ("W", "Warnings"),
];

fn render_error_index() -> String {
    let mut out = String::from(
        "# Error index\n\n\
         Every diagnostic code `pipe check` reports, with its one-line meaning. The codes are\n\
         stable. `pipe explain CODE` prints the long explanation: what the check protects\n\
         against, a wrong example and the fixed one.\n\n\
         <!-- Generated from src/diagnostics/explain/*.md by\n     \
         `PIPE_REGENERATE=1 cargo test --test error_index`; a test fails when it is stale. -->\n",
    );
    for (prefix, heading) in FAMILIES {
        out.push_str(&format!("\n## {heading}\n\n"));
        for code in all_codes().filter(|code| code.starts_with(prefix)) {
            out.push_str(&format!("- {}\n", title_of(code)));
        }
    }
    out
}

#[test]
fn every_code_belongs_to_a_family_of_the_index() {
    for code in all_codes() {
        assert!(
            FAMILIES.iter().any(|(prefix, _)| code.starts_with(prefix)),
            "{code} matches no family in FAMILIES"
        );
    }
}

#[test]
fn error_index_lists_every_code_with_its_title_line() {
    let index = read("docs/errors.md");
    for code in all_codes() {
        let line = format!("- {}", title_of(code));
        assert!(
            index.lines().any(|l| l == line),
            "docs/errors.md lacks `{line}`"
        );
    }
}

#[test]
fn error_index_is_generated_from_the_explanations() {
    assert_generated_file_is_current("docs/errors.md", &render_error_index());
}

// ---------------------------------------------------------------------------------------------
// The explanations
// ---------------------------------------------------------------------------------------------

/// The indented example that follows a `Wrong:` or `Fixed:` line, dedented.
fn example_after(text: &str, heading: &str) -> Option<String> {
    let start = text.find(&format!("\n{heading}\n"))? + heading.len() + 2;
    let mut lines = Vec::new();
    for line in text[start..].lines() {
        if !line.is_empty() && !line.starts_with("    ") {
            break;
        }
        lines.push(line.strip_prefix("    ").unwrap_or(line));
    }
    let example = lines.join("\n").trim().to_string();
    (!example.is_empty()).then_some(example)
}

#[test]
fn every_explanation_has_a_title_and_wrong_and_fixed_examples() {
    for code in all_codes() {
        let text = explanation_of(code);
        let title = title_of(code);
        assert!(
            title.starts_with(&format!("{code}: ")) && title.len() > code.len() + 2,
            "{code}: the first line must be `{code}: meaning`, found `{title}`"
        );
        let wrong = text.find("\nWrong:\n");
        let fixed = text.find("\nFixed:\n");
        assert!(
            matches!((wrong, fixed), (Some(w), Some(f)) if w < f),
            "{code}: needs a `Wrong:` section followed by a `Fixed:` section"
        );
        let wrong_example = example_after(text, "Wrong:").unwrap();
        let fixed_example = example_after(text, "Fixed:").unwrap();
        assert_ne!(
            wrong_example, fixed_example,
            "{code}: the fixed example must differ"
        );
        assert!(
            !text.contains("</") && !text.contains("<br"),
            "{code}: explanations are plain text for a terminal, no HTML"
        );
    }
}

/// The examples never import files; a loader that finds nothing keeps the test hermetic.
struct NoFiles;

impl Loader for NoFiles {
    fn load(&self, _from: &str, path: &str) -> Result<(String, String), String> {
        Err(format!("no file {path} in this test"))
    }
}

#[test]
fn fixed_examples_check_without_any_diagnostic() {
    for code in all_codes() {
        let fixed = example_after(explanation_of(code), "Fixed:").unwrap();
        let compilation = compile_source(&format!("{code}-fixed.pipe"), &fixed, &NoFiles);
        assert!(
            compilation.diagnostics.is_empty(),
            "the fixed example of {code} is not clean:\n{}",
            compilation.render(false)
        );
    }
}

#[test]
fn wrong_examples_report_their_own_code() {
    for code in all_codes() {
        let wrong = example_after(explanation_of(code), "Wrong:").unwrap();
        let compilation = compile_source(&format!("{code}-wrong.pipe"), &wrong, &NoFiles);
        assert!(
            compilation.diagnostics.iter().any(|d| d.code == code),
            "the wrong example of {code} does not report {code}:\n{}",
            compilation.render(false)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Editor grammars
// ---------------------------------------------------------------------------------------------

/// `editors/keywords.txt`: `group word word …` lines, `#` comments.
fn keyword_groups() -> Vec<(String, Vec<String>)> {
    read("editors/keywords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut words = line.split_whitespace().map(str::to_string);
            let group = words.next().unwrap();
            (group, words.collect())
        })
        .collect()
}

/// Each group of `editors/keywords.txt`: the tmLanguage repository entry whose `match` it fills,
/// the Vim highlight group, and whether the words are names (followed by `.`) rather than
/// keywords. `item` also captures the declared name after the keyword.
const KEYWORD_GROUPS: &[(&str, &str, &str)] = &[
    ("name", "name", "pipeName"),
    ("item", "item", "pipeItem"),
    ("block", "block", "pipeBlock"),
    ("statement", "statement", "pipeStatement"),
    ("attribute", "attribute", "pipeAttribute"),
    ("operator", "logical-operator", "pipeOperator"),
    ("constant", "constant", "pipeConstant"),
    ("type", "type", "pipeType"),
];

fn words_of<'a>(groups: &'a [(String, Vec<String>)], group: &str) -> &'a [String] {
    groups
        .iter()
        .find(|(g, _)| g == group)
        .map(|(_, words)| words.as_slice())
        .unwrap_or_else(|| panic!("editors/keywords.txt lacks the group `{group}`"))
}

/// The Oniguruma pattern of one keyword group: whole words only (identifiers contain `-`).
fn textmate_match(group: &str, words: &[String]) -> String {
    let alternatives = words.join("|");
    let before = r"(?<![\w.-])";
    match group {
        "item" => format!(r"{before}({alternatives})(?![\w.-])(?:\s+([A-Za-z_][A-Za-z0-9_-]*))?"),
        "attribute" => format!(r"{before}(?:{alternatives})(?=\s*=(?!=))"),
        "name" => format!(r"{before}(?:{alternatives})(?![\w-])"),
        _ => format!(r"{before}(?:{alternatives})(?![\w.-])"),
    }
}

fn render_textmate_grammar(committed: &str, groups: &[(String, Vec<String>)]) -> String {
    let mut grammar: serde_json::Value = serde_json::from_str(committed).unwrap();
    for (group, repository_key, _) in KEYWORD_GROUPS {
        let entry = &mut grammar["repository"][repository_key];
        assert!(
            entry.is_object(),
            "the tmLanguage has no repository entry `{repository_key}`"
        );
        entry["match"] = serde_json::Value::String(textmate_match(group, words_of(groups, group)));
    }
    serde_json::to_string_pretty(&grammar).unwrap() + "\n"
}

const VIM_BEGIN: &str = "\" BEGIN GENERATED KEYWORDS\n";
const VIM_END: &str = "\" END GENERATED KEYWORDS\n";

/// The Vim pattern of one keyword group. Matches rather than `syntax keyword`, so that a word
/// inside a dotted path (`jobs.test.outputs.coverage`) is not taken for a keyword.
fn vim_pattern(group: &str, words: &[String]) -> String {
    let alternatives = words.join(r"\|");
    let before = r"[A-Za-z0-9_.-]\@1<!";
    match group {
        "attribute" => format!(r"{before}\%({alternatives}\)\ze\s*=\%(=\)\@!"),
        "name" => format!(r"{before}\%({alternatives}\)[A-Za-z0-9_-]\@!"),
        _ => format!(r"{before}\%({alternatives}\)[A-Za-z0-9_.-]\@!"),
    }
}

fn render_vim_syntax(committed: &str, groups: &[(String, Vec<String>)]) -> String {
    let begin = committed.find(VIM_BEGIN).unwrap() + VIM_BEGIN.len();
    let end = committed.find(VIM_END).unwrap();
    let mut matches = String::new();
    for (group, _, vim_group) in KEYWORD_GROUPS {
        let contained = if *group == "name" { " contained" } else { "" };
        let pattern = vim_pattern(group, words_of(groups, group));
        matches.push_str(&format!(
            "syntax match {vim_group}{contained} /{pattern}/\n"
        ));
    }
    format!("{}{matches}{}", &committed[..begin], &committed[end..])
}

#[test]
fn keyword_list_groups_are_the_ones_the_grammars_use() {
    let groups = keyword_groups();
    for (group, words) in &groups {
        assert!(
            KEYWORD_GROUPS.iter().any(|(g, _, _)| g == group),
            "editors/keywords.txt has the group `{group}` that no grammar uses"
        );
        assert!(!words.is_empty(), "the keyword group `{group}` is empty");
    }
}

#[test]
fn editor_grammars_are_generated_from_the_keyword_list() {
    let groups = keyword_groups();
    let textmate = "editors/vscode/syntaxes/pipe.tmLanguage.json";
    assert_generated_file_is_current(textmate, &render_textmate_grammar(&read(textmate), &groups));
    let vim = "editors/vim/syntax/pipe.vim";
    assert_generated_file_is_current(vim, &render_vim_syntax(&read(vim), &groups));
}

// ---------------------------------------------------------------------------------------------
// The stdlib reference
// ---------------------------------------------------------------------------------------------

/// Template names of one stdlib module, by a plain scan of `template NAME(`.
fn template_names(module_text: &str) -> Vec<String> {
    module_text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("template "))
        .filter_map(|rest| rest.split('(').next())
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn stdlib_reference_documents_every_template() {
    let reference = read("docs/stdlib.md");
    for module in ["rust", "http", "git", "k8s", "docker", "sqlite", "postgres"] {
        let text = read(&format!("stdlib/std/{module}.pipe"));
        let names = template_names(&text);
        assert!(!names.is_empty(), "std/{module} defines no template");
        assert!(
            reference.contains(&format!("## std/{module}")),
            "docs/stdlib.md lacks a section for std/{module}"
        );
        for name in names {
            assert!(
                reference.contains(&format!("### `{name}(")),
                "docs/stdlib.md does not document std/{module}'s template `{name}`"
            );
        }
    }
}

#[test]
fn every_stdlib_template_has_a_doc_comment_directly_above_it() {
    for module in ["rust", "http", "git", "k8s", "docker", "sqlite", "postgres"] {
        let text = read(&format!("stdlib/std/{module}.pipe"));
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("template ") {
                let above = index.checked_sub(1).map(|i| lines[i].trim_start());
                assert!(
                    above.is_some_and(|l| l.starts_with("//")),
                    "std/{module}: `{}` has no `//` comment directly above it",
                    line.trim()
                );
            }
        }
    }
}
