//! Check: resolves imports and templates, interprets the generic blocks of the AST into the
//! typed [`program::Program`], and runs every static check of SPEC §8, collecting all problems.

mod elaborate;
mod imports;
pub mod program;
mod rules;
pub mod stdlib;
mod templates;

use crate::diagnostics::{Diagnostic, FileId, SourceMap, Span, sort_diagnostics};
use program::Program;
use std::collections::HashSet;

/// Reads imported files. The core does no IO itself; the CLI passes a file-system loader and
/// tests pass in-memory ones. `std/…` imports never reach the loader (they are bundled).
pub trait Loader {
    /// Resolves `path` (as written in the import) relative to the importing file `from`
    /// (its name in the source map) and returns the resolved name and the text.
    fn load(&self, from: &str, path: &str) -> Result<(String, String), String>;
}

/// What one kind of block accepts, for editors (completion of keys in context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockKeys {
    pub attrs: &'static [&'static str],
    /// Blocks that may appear once (`deploy`, `env`).
    pub blocks: &'static [&'static str],
    /// Named items that may repeat (`job`, `environment`).
    pub items: &'static [&'static str],
    /// Other statements: `run`, `require`, `rollback when`, `probe`, …
    pub statements: Vec<&'static str>,
    /// Any key is accepted (`env { }`, `matrix { }`, an environment's own attributes).
    pub free_attrs: bool,
}

/// What the block opened by `keyword` accepts (`None` for a word that opens no block).
pub fn block_keys(keyword: &str) -> Option<BlockKeys> {
    elaborate::block_keys(keyword)
}

/// The strategies `rollout NAME { … }` accepts (`canary`).
pub fn rollout_strategies() -> &'static [&'static str] {
    elaborate::rollout_strategies()
}

/// The outcome of checking: the program when there were no errors, and every diagnostic.
#[derive(Debug, Default)]
pub struct Checked {
    pub program: Option<Program>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks the file `entry` (already in `sources`); imported files are added to `sources`.
///
/// In order: parse (a syntax error ends the check there), resolve imports and the templates
/// they bring, elaborate the one pipeline into a [`Program`], run the rules over it. Every
/// problem found on the way is reported, sorted by position; the program is returned only
/// when none of them is an error.
pub fn check(sources: &mut SourceMap, entry: FileId, loader: &dyn Loader) -> Checked {
    let mut diagnostics = Vec::new();
    let mut recovered = Vec::new();
    let program = elaborate_entry(sources, entry, loader, &mut diagnostics, &mut recovered);
    if let Some(program) = &program {
        rules::check_program(program, sources, &mut diagnostics);
    }
    drop_consequences(&mut diagnostics, &recovered, sources);
    drop_unused_duplicates(&mut diagnostics);
    sort_diagnostics(&mut diagnostics);
    let failed = diagnostics.iter().any(Diagnostic::is_error);
    Checked {
        program: program.filter(|_| !failed),
        diagnostics,
    }
}

/// Parses `entry`, resolves its imports and elaborates its one pipeline; everything but the
/// rules. `None` when there is no pipeline to elaborate or the file does not parse even after
/// recovery; `recovered` receives the regions the parser skipped.
fn elaborate_entry(
    sources: &mut SourceMap,
    entry: FileId,
    loader: &dyn Loader,
    diagnostics: &mut Vec<Diagnostic>,
    recovered: &mut Vec<Span>,
) -> Option<Program> {
    let text = sources.text(entry).to_string();
    let (module, parse_diagnostics) = crate::syntax::parse(entry, &text);
    let syntax_errors = parse_diagnostics.iter().any(|d| d.code == "E0001");
    diagnostics.extend(parse_diagnostics);
    let nothing_parsed =
        module.pipelines.is_empty() && module.templates.is_empty() && module.imports.is_empty();
    if syntax_errors && nothing_parsed {
        return None;
    }
    recovered.extend(module.recovered.iter().copied());
    let templates = imports::resolve(sources, entry, &module, loader, diagnostics);
    let Some((pipeline, extra)) = module.pipelines.split_first() else {
        if !syntax_errors {
            diagnostics.push(no_pipeline(sources.name(entry), entry));
        }
        return None;
    };
    for other in extra {
        diagnostics.push(
            Diagnostic::error("E0102", "a file holds at most one pipeline")
                .primary(other.name.span, "defined again here")
                .secondary(pipeline.name.span, "first defined here")
                .help("move the other pipeline into a file of its own"),
        );
    }
    Some(elaborate::elaborate(
        pipeline,
        &templates,
        sources,
        diagnostics,
    ))
}

/// Drops what a syntax error already explains: a check whose label touches a region the
/// parser skipped, an error naming something declared there (the `job lint` that did not
/// parse is not also "unknown"), or "never used" for a name the skipped text mentions.
fn drop_consequences(diagnostics: &mut Vec<Diagnostic>, recovered: &[Span], sources: &SourceMap) {
    if recovered.is_empty() {
        return;
    }
    let skipped = || recovered.iter().map(|span| sources.snippet(*span));
    let declared: HashSet<&str> = skipped()
        .flat_map(str::lines)
        .flat_map(declared_words)
        .collect();
    let mentioned: HashSet<&str> = skipped()
        .flat_map(|text| text.split(|c: char| !is_name_char(c)))
        .collect();
    let touches = |span: Span| {
        recovered
            .iter()
            .any(|r| r.file == span.file && span.start <= r.end && r.start <= span.end)
    };
    diagnostics.retain(|d| {
        let names = if d.code == "W0101" {
            &mentioned
        } else {
            &declared
        };
        matches!(d.code, "E0001" | "E0002")
            || !(d.labels.iter().any(|l| touches(l.span))
                || quoted_names(&d.message).any(|name| names.contains(name)))
    });
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A name defined twice (E0102) is not also "never used" (W0101): which of the two is used
/// means nothing until one is renamed.
fn drop_unused_duplicates(diagnostics: &mut Vec<Diagnostic>) {
    let duplicated: Vec<Span> = diagnostics
        .iter()
        .filter(|d| d.code == "E0102")
        .flat_map(|d| d.labels.iter().map(|l| l.span))
        .collect();
    diagnostics.retain(|d| {
        d.code != "W0101" || !d.main_span().is_some_and(|span| duplicated.contains(&span))
    });
}

/// What a skipped line declares: its first word (a key or block keyword) and, in
/// `job lint {`, the name after it. Names it only refers to (`needs = [lint]`) stay checked.
fn declared_words(line: &str) -> impl Iterator<Item = &str> {
    let is_name = |word: &&str| !word.is_empty() && word.chars().all(is_name_char);
    let mut words = line.split_whitespace();
    let key = words.next().filter(is_name);
    let name = words.next().filter(is_name);
    key.into_iter().chain(name)
}

/// The `…` quoted parts of a message.
fn quoted_names(message: &str) -> impl Iterator<Item = &str> {
    message.split('`').skip(1).step_by(2)
}

fn no_pipeline(file_name: &str, entry: FileId) -> Diagnostic {
    Diagnostic::error("E0104", format!("no pipeline in {file_name}"))
        .primary(
            Span::new(entry, 0, 0),
            "this file has no `pipeline NAME { … }`",
        )
        .help("add `pipeline NAME { job build { run \"make\" } }`, or check the file name")
}

/// In-memory sources for the checker's tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Checked, Loader, check, drop_consequences, elaborate_entry};
    use crate::diagnostics::{Diagnostic, SourceMap, sort_diagnostics};
    use std::collections::HashMap;

    /// A loader over named texts; paths are looked up as written, without `./`.
    pub(crate) struct MemoryLoader {
        pub files: HashMap<String, String>,
    }

    impl Loader for MemoryLoader {
        fn load(&self, _from: &str, path: &str) -> Result<(String, String), String> {
            let name = path.trim_start_matches("./");
            self.files
                .get(name)
                .map(|text| (name.to_string(), text.clone()))
                .ok_or_else(|| format!("no such file `{name}`"))
        }
    }

    fn loader(files: &[(&str, &str)]) -> MemoryLoader {
        MemoryLoader {
            files: files
                .iter()
                .map(|(name, text)| (name.to_string(), text.to_string()))
                .collect(),
        }
    }

    /// Checks `entry` (named `pipeline.pipe`) with `files` importable, rules included.
    pub(crate) fn full_check(entry: &str, files: &[(&str, &str)]) -> (Checked, SourceMap) {
        let mut sources = SourceMap::new();
        let file = sources.add("pipeline.pipe", entry);
        let checked = check(&mut sources, file, &loader(files));
        (checked, sources)
    }

    /// Everything the checker does up to, not including, the rules: these tests are about
    /// elaboration, and the rules have their own.
    pub(crate) fn check_with(entry: &str, files: &[(&str, &str)]) -> (Checked, SourceMap) {
        let mut sources = SourceMap::new();
        let file = sources.add("pipeline.pipe", entry);
        let mut diagnostics = Vec::new();
        let mut recovered = Vec::new();
        let program = elaborate_entry(
            &mut sources,
            file,
            &loader(files),
            &mut diagnostics,
            &mut recovered,
        );
        drop_consequences(&mut diagnostics, &recovered, &sources);
        sort_diagnostics(&mut diagnostics);
        let failed = diagnostics.iter().any(Diagnostic::is_error);
        let checked = Checked {
            program: program.filter(|_| !failed),
            diagnostics,
        };
        (checked, sources)
    }

    pub(crate) fn check_source(entry: &str) -> (Checked, SourceMap) {
        check_with(entry, &[])
    }

    /// The codes of every diagnostic, in order.
    pub(crate) fn codes(checked: &Checked) -> Vec<&'static str> {
        checked.diagnostics.iter().map(|d| d.code).collect()
    }

    /// Every diagnostic as plain lines (code, message, labels, help, unwrapped, for `contains`
    /// assertions) followed by its miette rendering (for reading a failure).
    pub(crate) fn rendered(checked: &Checked, sources: &SourceMap) -> String {
        let mut out = String::new();
        for diagnostic in &checked.diagnostics {
            out.push_str(&format!("{}: {}\n", diagnostic.code, diagnostic.message));
            for label in &diagnostic.labels {
                out.push_str(&format!("  label: {}\n", label.text));
            }
            if let Some(help) = &diagnostic.help {
                out.push_str(&format!("  help: {help}\n"));
            }
            out.push_str(&crate::diagnostics::render_text(diagnostic, sources, false));
        }
        out
    }
}
