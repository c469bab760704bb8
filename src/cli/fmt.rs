//! `pipe fmt [PATH…|-] [--check] [--diff]`: lays pipeline files out the canonical way
//! (`syntax::format`): in place, from stdin to stdout, or, for CI, only saying what would change.

use super::report::{self, CliError};
use super::{exit, stderr_color};
use crate::diagnostics::{SourceMap, render_text};
use crate::syntax::format::format;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// Pipeline files or directories (every `*.pipe` below, hidden directories, `target` and
    /// `node_modules` skipped); `-` reads stdin and writes the result to stdout
    #[arg(default_value = "pipeline.pipe")]
    paths: Vec<PathBuf>,
    /// Change nothing; name each file that is not formatted and exit 1 if any
    #[arg(long)]
    check: bool,
    /// Change nothing; print a unified diff of what formatting would change
    #[arg(long)]
    diff: bool,
}

/// What happened to one file; a failure carries the exit code its error means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Unchanged,
    Changed,
    Failed(i32),
}

impl From<CliError> for Outcome {
    /// Reports the error now: later files are still formatted.
    fn from(error: CliError) -> Outcome {
        Outcome::Failed(report::error(error))
    }
}

pub fn fmt(args: &FmtArgs) -> i32 {
    let mut worst = Outcome::Unchanged;
    for path in &args.paths {
        let outcome = if path.as_os_str() == "-" {
            fmt_stdin(args)
        } else if path.is_dir() {
            fmt_dir(path, args)
        } else {
            fmt_file(path, args)
        };
        worst = worst.max(outcome);
    }
    match worst {
        Outcome::Failed(code) => code,
        Outcome::Changed if args.check => exit::FAILED,
        _ => exit::SUCCESS,
    }
}

fn fmt_dir(dir: &Path, args: &FmtArgs) -> Outcome {
    let files = match pipeline_files(dir) {
        Ok(files) => files,
        Err(source) => {
            let dir = dir.to_path_buf();
            return CliError::FmtUnreadableDir { dir, source }.into();
        }
    };
    if files.is_empty() {
        eprintln!("warning: no *.pipe file under {}", dir.display());
    }
    files
        .iter()
        .map(|file| fmt_file(file, args))
        .max()
        .unwrap_or(Outcome::Unchanged)
}

/// Every `*.pipe` file under `dir`, sorted; hidden directories (`.git`, `.pipe`), `target`
/// and `node_modules` hold no sources of this project.
fn pipeline_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                let skipped = name.starts_with('.') || name == "target" || name == "node_modules";
                if !skipped {
                    pending.push(path);
                }
            } else if kind.is_file() && name.ends_with(".pipe") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn fmt_stdin(args: &FmtArgs) -> Outcome {
    let text = match crate::compilation::read_stdin() {
        Ok(text) => text,
        Err(message) => return CliError::Source(message).into(),
    };
    let formatted = match formatted("<stdin>", &text) {
        Ok(formatted) => formatted,
        Err(error) => return error.into(),
    };
    let changed = formatted != text;
    if changed && args.check {
        let line = first_difference(&text, &formatted);
        eprintln!("<stdin>: not formatted (from line {line})");
    }
    if args.diff {
        print!("{}", unified_diff("<stdin>", &text, &formatted));
    }
    if !args.check && !args.diff {
        print!("{formatted}");
    }
    if changed {
        Outcome::Changed
    } else {
        Outcome::Unchanged
    }
}

fn fmt_file(file: &Path, args: &FmtArgs) -> Outcome {
    let text = match crate::compilation::read_entry(file) {
        Ok(text) => text,
        Err(failure) => return CliError::Source(failure).into(),
    };
    let shown = file.display().to_string();
    let formatted = match formatted(&shown, &text) {
        Ok(formatted) => formatted,
        Err(error) => return error.into(),
    };
    if formatted == text {
        return Outcome::Unchanged;
    }
    if args.check {
        let line = first_difference(&text, &formatted);
        eprintln!("{shown}: not formatted (from line {line})");
    }
    if args.diff {
        print!("{}", unified_diff(&shown, &text, &formatted));
    }
    if args.check || args.diff {
        return Outcome::Changed;
    }
    match crate::fsutil::write_atomic(file, formatted.as_bytes()) {
        Ok(()) => {
            println!("formatted {shown}");
            Outcome::Changed
        }
        Err(source) => CliError::FmtUnwritable {
            file: shown,
            source,
        }
        .into(),
    }
}

/// The formatted text, or why the file cannot be formatted.
fn formatted(name: &str, text: &str) -> Result<String, CliError> {
    let mut sources = SourceMap::new();
    let id = sources.add(name.to_string(), text);
    let formatted = format(id, text).map_err(|diagnostic| {
        CliError::Diagnostics(format!(
            "{}{name}: not formatted: fix the syntax error first\n",
            render_text(&diagnostic, &sources, stderr_color())
        ))
    })?;
    // Formatting twice must change nothing more; a result that does is a bug: keep the file.
    if format(id, &formatted).as_ref() != Ok(&formatted) {
        return Err(CliError::FmtUnstable(name.to_string()));
    }
    Ok(formatted)
}

/// `diff -u` of the file as it is (`a/NAME`) and as it would be formatted (`b/NAME`).
fn unified_diff(name: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// The 1-based number of the first line that differs.
fn first_difference(a: &str, b: &str) -> usize {
    let same = a.lines().zip(b.lines()).take_while(|(x, y)| x == y).count();
    same + 1
}
