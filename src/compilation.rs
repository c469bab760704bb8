//! The front-end driver: source text → checked program → plan, returned as one value with
//! every diagnostic. `compile_file` is the thin IO shell around the pure `compile_source`.

use crate::check::{self, Loader, program::Program};
use crate::compile::{self, plan::Plan};
use crate::diagnostics::{self, Diagnostic, SourceMap, render_json_line, render_text};
use std::path::{Path, PathBuf};

/// The outcome of compiling one pipeline file.
#[derive(Debug, Default)]
pub struct Compilation {
    pub sources: SourceMap,
    /// Present when there is no error (warnings allowed).
    pub plan: Option<Plan>,
    /// The checked program the plan was compiled from (for tools that want more than the plan).
    pub program: Option<Program>,
    pub diagnostics: Vec<Diagnostic>,
    /// The entry file could not be read at all (no diagnostics then).
    pub failure: Option<String>,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.failure.is_some() || self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// Every diagnostic rendered for a terminal (or a file read failure), ready for stderr.
    pub fn render(&self, color: bool) -> String {
        if let Some(failure) = &self.failure {
            return format!("error: {failure}\n");
        }
        self.diagnostics
            .iter()
            .map(|d| render_text(d, &self.sources, color))
            .collect()
    }

    /// One JSON object per diagnostic, one per line.
    pub fn render_json(&self) -> String {
        if let Some(failure) = &self.failure {
            let line = serde_json::json!({"code": "", "severity": "error", "message": failure});
            return format!("{line}\n");
        }
        self.diagnostics
            .iter()
            .map(|d| render_json_line(d, &self.sources) + "\n")
            .collect()
    }
}

/// Compiles source text held in memory; imports go through `loader`.
pub fn compile_source(name: &str, text: &str, loader: &dyn Loader) -> Compilation {
    let mut sources = SourceMap::new();
    let entry = sources.add(name, text);
    let checked = check::check(&mut sources, entry, loader);
    let mut diagnostics = checked.diagnostics;
    let program = checked.program;
    let plan = match &program {
        Some(program) if !diagnostics.iter().any(Diagnostic::is_error) => {
            match compile::compile(program, &sources, entry) {
                Ok(plan) => Some(plan),
                Err(errors) => {
                    diagnostics.extend(errors);
                    None
                }
            }
        }
        _ => None,
    };
    diagnostics::sort_diagnostics(&mut diagnostics);
    Compilation {
        sources,
        plan,
        program,
        diagnostics,
        failure: None,
    }
}

/// Reads and compiles a pipeline file; relative imports resolve against its directory.
pub fn compile_file(path: &Path) -> Compilation {
    match std::fs::read_to_string(path) {
        Ok(text) => compile_source(&normalize(path), &text, &FileLoader),
        Err(error) => Compilation {
            failure: Some(format!("cannot read {}: {error}", path.display())),
            ..Compilation::default()
        },
    }
}

/// Loads imports from disk, relative to the importing file.
pub struct FileLoader;

impl Loader for FileLoader {
    fn load(&self, from: &str, path: &str) -> Result<(String, String), String> {
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let resolved: PathBuf = base.join(path);
        let name = normalize(&resolved);
        std::fs::read_to_string(&resolved)
            .map(|text| (name, text))
            .map_err(|e| format!("cannot read {}: {e}", resolved.display()))
    }
}

/// `a/./b/../c.pipe` → `a/c.pipe`, so the same file imported two ways is one file (cycles).
fn normalize(path: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other.as_os_str()),
        }
    }
    let joined: PathBuf = parts.iter().collect();
    joined.display().to_string()
}
