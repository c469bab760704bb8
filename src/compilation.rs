//! The front-end driver: source text → checked program → plan, returned as one value with
//! every diagnostic. `compile_file` is the thin IO shell around the pure `compile_source`.

use crate::check::{self, Loader, program::Program};
use crate::compile::{self, plan::Plan};
use crate::diagnostics::{self, Diagnostic, SourceMap, render_json_line, render_text};
use std::path::{Path, PathBuf};

/// At most this many diagnostics are rendered for a terminal: past it, a broken file would
/// print megabytes that nobody reads.
pub const MAX_RENDERED: usize = 200;

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
        let mut out: String = self
            .diagnostics
            .iter()
            .take(MAX_RENDERED)
            .map(|d| render_text(d, &self.sources, color))
            .collect();
        if let Some(rest) = self
            .diagnostics
            .get(MAX_RENDERED..)
            .filter(|r| !r.is_empty())
        {
            let errors = rest.iter().filter(|d| d.is_error()).count();
            out.push_str(&format!(
                "… and {} more diagnostics ({errors} errors) not shown: fix the ones above first\n",
                rest.len()
            ));
        }
        out
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

/// Reads and compiles a pipeline file (`-`: standard input, named `<stdin>`, its imports
/// relative to the working directory); relative imports resolve against its directory.
pub fn compile_file(path: &Path) -> Compilation {
    let (name, read) = if is_stdin(path) {
        (STDIN_NAME.to_string(), read_stdin())
    } else {
        (normalize(path), read_entry(path))
    };
    match read {
        Ok(text) => compile_source(&name, &text, &FileLoader),
        Err(failure) => Compilation {
            failure: Some(failure),
            ..Compilation::default()
        },
    }
}

/// How standard input is named in diagnostics.
pub const STDIN_NAME: &str = "<stdin>";

/// Whether a FILE argument means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Pipeline files larger than this are refused rather than read into memory.
pub const MAX_PIPELINE_BYTES: u64 = 64 * 1024 * 1024;

/// The entry file's text: a regular file or a pipe (`pipe check /dev/stdin`), read up to
/// [`MAX_PIPELINE_BYTES`]; a device such as `/dev/zero` would be read until memory runs out.
pub fn read_entry(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| missing_file_message(path, &e))?;
    let kind = metadata.file_type();
    if kind.is_char_device() || kind.is_block_device() || kind.is_dir() || kind.is_socket() {
        return Err(format!("cannot read {shown}: not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    read_limited(file, &shown.to_string())
}

/// Standard input as pipeline text, with the same limits as a file.
pub fn read_stdin() -> Result<String, String> {
    read_limited(std::io::stdin().lock(), "stdin")
}

fn read_limited(reader: impl std::io::Read, shown: &str) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader
        .take(MAX_PIPELINE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_PIPELINE_BYTES {
        return Err(format!(
            "cannot read {shown}: larger than {MAX_PIPELINE_BYTES} bytes"
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("cannot read {shown}: not UTF-8 text"))
}

/// A missing `pipeline.pipe` is most often a project without one yet: say how to start one.
fn missing_file_message(path: &Path, error: &std::io::Error) -> String {
    let mut message = format!("cannot read {}: {error}", path.display());
    let default_name = path.file_name().is_some_and(|name| name == "pipeline.pipe");
    if error.kind() == std::io::ErrorKind::NotFound && default_name {
        message.push_str("; `pipe init` writes a starter pipeline.pipe for this project");
    }
    message
}

/// Loads imports from disk, relative to the importing file, and only files of the repository:
/// an import is source code, so `/etc/passwd`, `/dev/zero` or a path out of the checkout is
/// refused (with the reason), never read.
pub struct FileLoader;

/// Imported files larger than this are refused: templates are small, a huge file is a mistake.
pub const MAX_IMPORT_BYTES: u64 = 1024 * 1024;

impl Loader for FileLoader {
    fn load(&self, from: &str, path: &str) -> Result<(String, String), String> {
        if Path::new(path).is_absolute() {
            return Err("an import path cannot be absolute; \
                 import files of the repository by a path relative to the importing file"
                .into());
        }
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let resolved: PathBuf = base.join(path);
        let name = normalize(&resolved);
        let unreadable = |e: std::io::Error| format!("cannot read {}: {e}", resolved.display());
        let real = resolved.canonicalize().map_err(unreadable)?;
        let root = import_root(base);
        if !real.starts_with(&root) {
            return Err(format!(
                "{} is outside the repository; imports stay inside it",
                resolved.display()
            ));
        }
        read_import(&real, &resolved).map(|text| (name, text))
    }
}

/// The directory imports must stay in: the enclosing git checkout; outside one, the working
/// directory when the importing file is under it, else the importing file's directory.
fn import_root(base: &Path) -> PathBuf {
    let dir = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let Ok(dir) = dir.canonicalize() else {
        return dir.to_path_buf();
    };
    if let Some(checkout) = dir.ancestors().find(|a| a.join(".git").exists()) {
        return checkout.to_path_buf();
    }
    match std::env::current_dir().and_then(|cwd| cwd.canonicalize()) {
        Ok(cwd) if dir.starts_with(&cwd) => cwd,
        _ => dir,
    }
}

/// Reads a regular file of at most [`MAX_IMPORT_BYTES`]; devices, FIFOs and directories are
/// refused before they are opened, and the read is bounded even if the file grows meanwhile.
fn read_import(path: &Path, as_written: &Path) -> Result<String, String> {
    use std::io::Read;
    let shown = as_written.display();
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !metadata.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let too_big = || format!("{shown} is larger than the import limit of {MAX_IMPORT_BYTES} bytes");
    if metadata.len() > MAX_IMPORT_BYTES {
        return Err(too_big());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_IMPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))
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
