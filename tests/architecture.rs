#![allow(clippy::unwrap_used)]
//! The layering of `src/`, read from the source text: no file imports a file that imports it
//! back, `run/` never reaches into `deliver/`, and no phase depends on `cli`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file and the module path it defines (`["deliver", "engine"]`).
struct SourceFile {
    /// Relative to `src/`, e.g. `deliver/engine.rs`.
    name: String,
    module: Vec<String>,
    tokens: Vec<Token>,
    /// Modules declared with `mod NAME`: a path may start with their bare name.
    children: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let graph = import_graph();
    let mut cycles = Vec::new();
    for (file, targets) in &graph {
        for target in targets {
            if file < target && graph.get(target).is_some_and(|back| back.contains(file)) {
                cycles.push(format!("{file} <-> {target}"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_runner_never_imports_the_delivery_engine() {
    let graph = import_graph();
    let upward = edges_between(
        &graph,
        |from| from.starts_with("run/"),
        |to| to.starts_with("deliver/"),
    );
    assert!(
        upward.is_empty(),
        "run/ imports deliver/:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_phase_imports_the_cli() {
    let graph = import_graph();
    let is_driver = |file: &str| file.starts_with("cli/") || file == "main.rs" || file == "lib.rs";
    let upward = edges_between(&graph, |from| !is_driver(from), |to| to.starts_with("cli/"));
    assert!(
        upward.is_empty(),
        "phases import cli:\n{}",
        upward.join("\n")
    );
}

/// Every CLI error gets its wording, hint and exit code in `cli/report.rs`; a command module
/// that prints `error:` itself would decide them a second time.
#[test]
fn only_the_cli_report_prints_errors() {
    let printed: Vec<String> = source_texts()
        .into_iter()
        .filter(|(name, _)| name.starts_with("cli/") && name != "cli/report.rs")
        .flat_map(|(name, text)| {
            error_prints(&text)
                .into_iter()
                .map(move |line| format!("{name}:{line}"))
        })
        .collect();
    assert!(
        printed.is_empty(),
        "print errors through cli::report instead:\n{}",
        printed.join("\n")
    );
}

/// `String` errors left in the back-end phases, each a user-facing text on purpose: the
/// quoting reasons of `run/shell_quote.rs` (the same sentences the checker's E0504 gives).
const BACK_END_STRING_ERRORS: usize = 3;

#[test]
fn back_end_errors_are_typed() {
    let back_end = ["run/", "deliver/", "store/", "audit/"];
    let sites: Vec<String> = source_texts()
        .into_iter()
        .filter(|(name, _)| back_end.iter().any(|phase| name.starts_with(phase)))
        .flat_map(|(name, text)| {
            string_error_lines(&text)
                .into_iter()
                .map(move |line| format!("{name}:{line}"))
        })
        .collect();
    assert!(
        sites.len() <= BACK_END_STRING_ERRORS,
        "{} `Result<_, String>` in run/, deliver/, store/, audit/ (at most {BACK_END_STRING_ERRORS}); \
         give them a thiserror type:\n{}",
        sites.len(),
        sites.join("\n")
    );
}

/// The two text checks themselves find what they look for, and only that.
#[test]
fn the_error_checks_find_planted_sites() {
    let text = "fn a() -> Result<Vec<String>, StoreError> {}\n\
                fn b() -> Result<BTreeMap<String, String>,\n    String> {}\n\
                fn c(x: Result<(), String>) {}\n\
                // eprintln!(\"error: in a comment\");\n\
                eprintln!(\"error: {x}\");\n";
    assert_eq!(string_error_lines(text), vec![3, 4]);
    assert_eq!(error_prints(text), vec![6]);
}

/// 1-based lines where an `error:` message is written out (comments aside).
fn error_prints(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//") && line.contains("\"error:"))
        .map(|(i, _)| i + 1)
        .collect()
}

/// 1-based lines where a `Result<…, String>` ends: its last type argument is `String`.
fn string_error_lines(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("Result<") {
        let open = from + offset + "Result<".len();
        from = open;
        let (mut depth, mut last_arg, mut end) = (1, open, None);
        for (i, &byte) in bytes.iter().enumerate().skip(open) {
            match byte {
                b'<' => depth += 1,
                b'>' if i > 0 && bytes[i - 1] == b'-' => {}
                b'>' => depth -= 1,
                b',' if depth == 1 => last_arg = i + 1,
                _ => {}
            }
            if depth == 0 {
                end = Some(i);
                break;
            }
        }
        if let Some(end) = end.filter(|&end| text[last_arg..end].trim() == "String") {
            found.push(text[..end].lines().count());
        }
    }
    found
}

/// Every file of `src/`, by its name relative to `src/`.
fn source_texts() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    rust_files(&root)
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// The checker itself: a planted cycle and a planted upward import are found.
#[test]
fn the_import_reader_resolves_use_trees_super_and_re_exports() {
    let files = vec![
        parse("lib.rs", "mod a; mod b;"),
        parse("a/mod.rs", "mod x; mod y; pub use x::Thing;"),
        parse("a/x.rs", "use super::y::{self, Other};\npub struct Thing;"),
        parse(
            "a/y.rs",
            "pub struct Other;\nfn f() { crate::a::Thing; }\n#[cfg(test)] mod tests { use crate::b::X; }\nmod inner { use super::super::x::Thing; }",
        ),
        parse("b.rs", "use crate::{a::{x as _, y::Other}};"),
    ];
    let graph = resolve_all(&files);
    assert_eq!(graph["a/x.rs"], set(&["a/y.rs"]));
    assert_eq!(
        graph["a/y.rs"],
        set(&["a/x.rs"]),
        "through the re-export in a/mod.rs"
    );
    assert_eq!(
        graph["a/mod.rs"],
        set(&[]),
        "a module's own parts are not imports"
    );
    assert_eq!(graph["b.rs"], set(&["a/x.rs", "a/y.rs"]));
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn edges_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: impl Fn(&str) -> bool,
    to: impl Fn(&str) -> bool,
) -> Vec<String> {
    graph
        .iter()
        .filter(|(file, _)| from(file))
        .flat_map(|(file, targets)| {
            targets
                .iter()
                .filter(|t| to(t))
                .map(move |t| format!("{file} -> {t}"))
        })
        .collect()
}

/// Each file of `src/` and the other files its paths resolve to.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for path in rust_files(&root) {
        let name = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        files.push(parse(&name, &std::fs::read_to_string(&path).unwrap()));
    }
    resolve_all(&files)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

fn parse(name: &str, text: &str) -> SourceFile {
    let tokens = tokenize(text);
    let children = tokens
        .windows(2)
        .filter_map(|w| match (&w[0], &w[1]) {
            (Token::Ident(m), Token::Ident(child)) if m == "mod" => Some(child.clone()),
            _ => None,
        })
        .collect();
    SourceFile {
        name: name.to_string(),
        module: module_of(name),
        tokens,
        children,
    }
}

/// `deliver/engine.rs` → `deliver::engine`; `deliver/mod.rs` → `deliver`; `lib.rs` → the root.
fn module_of(name: &str) -> Vec<String> {
    let stem = name.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn resolve_all(files: &[SourceFile]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module = files.iter().map(|f| (f.module.clone(), f)).collect();
    let exports = files
        .iter()
        .map(|f| (f.name.clone(), re_exports(f)))
        .collect();
    let resolver = Resolver { by_module, exports };
    files
        .iter()
        .map(|file| {
            let mut targets = BTreeSet::new();
            for path in paths_in(file) {
                // A module using its own submodules is containment, not an import.
                let Some(target) = resolver.file_of(&path, 0) else {
                    continue;
                };
                if !module_of(&target).starts_with(&file.module) {
                    targets.insert(target);
                }
            }
            (file.name.clone(), targets)
        })
        .collect()
}

struct Resolver<'a> {
    by_module: BTreeMap<Vec<String>, &'a SourceFile>,
    /// Per file, the absolute paths of its `pub use` items.
    exports: BTreeMap<String, Vec<Vec<String>>>,
}

impl Resolver<'_> {
    /// The file that defines what the absolute `path` names, following `pub use` re-exports
    /// of a module file to the file that really defines the item.
    fn file_of(&self, path: &[String], depth: usize) -> Option<String> {
        let (file, rest) = (0..=path.len())
            .rev()
            .find_map(|k| self.by_module.get(&path[..k]).map(|f| (*f, &path[k..])))?;
        if let (Some(first), true) = (rest.first(), depth < 8) {
            for export in &self.exports[&file.name] {
                if export.last() == Some(first) {
                    let mut target = export.clone();
                    target.extend(rest[1..].iter().cloned());
                    return self.file_of(&target, depth + 1);
                }
            }
        }
        Some(file.name.clone())
    }
}

/// The absolute paths a file's `pub use` lines bring in, under the name they are used by.
fn re_exports(file: &SourceFile) -> Vec<Vec<String>> {
    let mut exports = Vec::new();
    let tokens = &file.tokens;
    for (i, token) in tokens.iter().enumerate() {
        let is_pub_use = *token == Token::Ident("use".into())
            && i > 0
            && matches!(&tokens[i - 1], Token::Ident(p) if p == "pub");
        if is_pub_use {
            let mut cursor = i + 1;
            let scope = Scope {
                module: &file.module,
                inline_depth: 0,
                file,
            };
            for path in use_tree(tokens, &mut cursor, Vec::new()) {
                if let Some(absolute) = scope.absolute(&path) {
                    exports.push(absolute);
                }
            }
        }
    }
    exports
}

/// Where a path is written: the file's module, nested `inline_depth` inline `mod x { … }` deep.
struct Scope<'a> {
    module: &'a [String],
    inline_depth: usize,
    file: &'a SourceFile,
}

impl Scope<'_> {
    /// `crate::…`, `super::…`, `self::…` or `child::…` as a path from the crate root; `None`
    /// for another crate's path or a local name.
    fn absolute(&self, path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?;
        match first.as_str() {
            "crate" => Some(path[1..].to_vec()),
            "self" if self.inline_depth > 0 => None,
            "self" => Some(join(self.module, &path[1..])),
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                // Inside `mod tests { … }`, the first `super` is the file's own module.
                let up = supers.saturating_sub(self.inline_depth);
                let keep = self.module.len().checked_sub(up)?;
                Some(join(&self.module[..keep], &path[supers..]))
            }
            child if self.inline_depth == 0 && self.has_child(child) => {
                Some(join(self.module, path))
            }
            _ => None,
        }
    }

    fn has_child(&self, name: &str) -> bool {
        self.file.children.contains(name)
    }
}

fn join(base: &[String], rest: &[String]) -> Vec<String> {
    base.iter().chain(rest).cloned().collect()
}

/// Every path in the file that can name a module of this crate, made absolute.
fn paths_in(file: &SourceFile) -> Vec<Vec<String>> {
    let tokens = &file.tokens;
    let mut paths = Vec::new();
    let mut inline_modules: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        if is_test_module(tokens, i) {
            i = after_block(tokens, i + 2);
            continue;
        }
        match &tokens[i] {
            Token::Open => {
                let opens_module = i >= 2
                    && tokens[i - 2] == Token::Ident("mod".into())
                    && matches!(tokens[i - 1], Token::Ident(_));
                depth += 1;
                if opens_module {
                    inline_modules.push(depth);
                }
                i += 1;
            }
            Token::Close => {
                if inline_modules.last() == Some(&depth) {
                    inline_modules.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Token::Ident(_) if starts_path(tokens, i) => {
                let scope = Scope {
                    module: &file.module,
                    inline_depth: inline_modules.len(),
                    file,
                };
                let mut cursor = i;
                for path in use_tree(tokens, &mut cursor, Vec::new()) {
                    paths.extend(scope.absolute(&path));
                }
                i = cursor.max(i + 1);
            }
            _ => i += 1,
        }
    }
    paths
}

/// `#[cfg(test)] mod NAME {` at `i` (the `mod`): tests drive the layers from above (e.g.
/// the compiler's tests compile source text), so what they use is not an import of the file.
fn is_test_module(tokens: &[Token], i: usize) -> bool {
    let ident = |at: usize, word: &str| tokens.get(at) == Some(&Token::Ident(word.into()));
    i >= 5
        && ident(i, "mod")
        && matches!(tokens.get(i + 1), Some(Token::Ident(_)))
        && tokens.get(i + 2) == Some(&Token::Open)
        && ident(i - 5, "cfg")
        && ident(i - 3, "test")
}

/// The index just after the block that opens at `open`.
fn after_block(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (offset, token) in tokens[open..].iter().enumerate() {
        match token {
            Token::Open => depth += 1,
            Token::Close if depth == 1 => return open + offset + 1,
            Token::Close => depth -= 1,
            _ => {}
        }
    }
    tokens.len()
}

/// An identifier that begins a path (`a::…`), not one in the middle of one.
fn starts_path(tokens: &[Token], i: usize) -> bool {
    let follows_sep = i > 0 && tokens[i - 1] == Token::PathSep;
    !follows_sep && tokens.get(i + 1) == Some(&Token::PathSep)
        || matches!(&tokens[i], Token::Ident(w) if w == "use")
}

/// Reads a path or `use` tree from `cursor` (`a::{b, c::d}` → `a::b`, `a::c::d`), leaving
/// the cursor after it.
fn use_tree(tokens: &[Token], cursor: &mut usize, prefix: Vec<String>) -> Vec<Vec<String>> {
    if tokens.get(*cursor) == Some(&Token::Ident("use".into())) {
        *cursor += 1;
    }
    let mut path = prefix;
    loop {
        match tokens.get(*cursor) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                *cursor += 1;
            }
            Some(Token::Open) => {
                *cursor += 1;
                let mut all = Vec::new();
                while !matches!(tokens.get(*cursor), None | Some(Token::Close)) {
                    let before = *cursor;
                    all.extend(use_tree(tokens, cursor, path.clone()));
                    // A comma, or anything a path cannot hold (e.g. a struct literal): skip it.
                    if *cursor == before || tokens.get(*cursor) == Some(&Token::Comma) {
                        *cursor += 1;
                    }
                }
                *cursor += 1;
                return all;
            }
            Some(Token::Star) => {
                *cursor += 1;
                return vec![path];
            }
            _ => return vec![path],
        }
        if tokens.get(*cursor) == Some(&Token::PathSep) {
            *cursor += 1;
            continue;
        }
        // `x as y`: the alias does not change what is imported.
        if tokens.get(*cursor) == Some(&Token::Ident("as".into())) {
            *cursor += 2;
        }
        return vec![path];
    }
}

/// Identifiers and the punctuation paths are made of; comments, strings and char literals
/// are dropped, so a path in a doc comment or a message is not an import.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i);
        } else if c == '"' {
            i = skip_string(&chars, i + 1, None);
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, body) = raw_string_start(&chars, i).unwrap_or((None, i));
            i = skip_string(&chars, body, hashes);
        } else if c == '\'' {
            i = skip_char_literal(&chars, i);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && next == Some(':') {
            tokens.push(Token::PathSep);
            i += 2;
        } else {
            tokens.push(match c {
                '{' => Token::Open,
                '}' => Token::Close,
                ',' => Token::Comma,
                ';' => Token::Semi,
                '*' => Token::Star,
                _ => Token::Other,
            });
            i += 1;
        }
    }
    tokens
}

fn skip_block_comment(chars: &[char], start: usize) -> usize {
    let (mut i, mut nesting) = (start + 2, 1);
    while i < chars.len() && nesting > 0 {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            nesting += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            nesting -= 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    i
}

/// `r"`, `r#"`, `br"`, `b"`…: the number of `#` (`None`: not raw, so escapes count) and
/// where the body starts.
fn raw_string_start(chars: &[char], i: usize) -> Option<(Option<usize>, usize)> {
    let preceded_by_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if preceded_by_ident {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
        if chars.get(j) == Some(&'"') {
            return Some((None, j + 1));
        }
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some((Some(hashes), j + hashes + 1))
}

/// Skips to just after the closing quote of a string whose body starts at `i`; a raw string
/// (`raw_hashes` is `Some`) has no escapes and ends at `"` followed by as many `#`.
fn skip_string(chars: &[char], mut i: usize, raw_hashes: Option<usize>) -> usize {
    let hashes = raw_hashes.unwrap_or(0);
    while i < chars.len() {
        if chars[i] == '\\' && raw_hashes.is_none() {
            i += 2;
            continue;
        }
        if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|c| *c == '#') {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// `'x'`, `'\n'`, `'\u{1F600}'` are skipped; a lifetime `'a` is only its quote.
fn skip_char_literal(chars: &[char], i: usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let close = chars[i + 2..].iter().position(|c| *c == '\'');
        return close.map_or(chars.len(), |p| i + 2 + p + 1);
    }
    if chars.get(i + 2) == Some(&'\'') {
        return i + 3;
    }
    i + 1
}
