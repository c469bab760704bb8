//! `pipe fmt [FILE…] [--check]`: lays pipeline files out the canonical way (`syntax::format`),
//! in place, or with `--check` only says which files would change (exit 1), for CI.

use super::{exit, stderr_color};
use crate::diagnostics::{SourceMap, render_text};
use crate::syntax::format::format;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// The pipeline files
    #[arg(default_value = "pipeline.pipe")]
    files: Vec<PathBuf>,
    /// Change nothing; exit 1 if any file is not formatted
    #[arg(long)]
    check: bool,
}

/// What happened to one file.
enum Outcome {
    Unchanged,
    Changed,
    Failed,
}

pub fn fmt(args: &FmtArgs) -> i32 {
    let mut code = exit::SUCCESS;
    for file in &args.files {
        match fmt_file(file, args.check) {
            Outcome::Unchanged => {}
            Outcome::Changed if args.check => code = code.max(exit::FAILED),
            Outcome::Changed => {}
            Outcome::Failed => code = exit::USAGE,
        }
    }
    code
}

fn fmt_file(file: &Path, check: bool) -> Outcome {
    let text = match crate::compilation::read_entry(file) {
        Ok(text) => text,
        Err(failure) => {
            eprintln!("error: {failure}");
            return Outcome::Failed;
        }
    };
    let mut sources = SourceMap::new();
    let id = sources.add(file.display().to_string(), &text);
    let formatted = match format(id, &text) {
        Ok(formatted) => formatted,
        Err(diagnostic) => {
            eprint!("{}", render_text(&diagnostic, &sources, stderr_color()));
            eprintln!(
                "{}: not formatted: fix the syntax error first",
                file.display()
            );
            return Outcome::Failed;
        }
    };
    if formatted == text {
        return Outcome::Unchanged;
    }
    // Formatting only moves whitespace; a result that reads differently is a bug: keep the file.
    if format(id, &formatted).as_ref() != Ok(&formatted) {
        eprintln!(
            "error: {}: formatting is not stable here (a bug in `pipe fmt`); the file is unchanged",
            file.display()
        );
        return Outcome::Failed;
    }
    if check {
        let line = first_difference(&text, &formatted);
        eprintln!("{}: not formatted (from line {line})", file.display());
        return Outcome::Changed;
    }
    match crate::fsutil::write_atomic(file, formatted.as_bytes()) {
        Ok(()) => {
            println!("formatted {}", file.display());
            Outcome::Changed
        }
        Err(error) => {
            eprintln!("error: cannot write {}: {error}", file.display());
            Outcome::Failed
        }
    }
}

/// The 1-based number of the first line that differs.
fn first_difference(a: &str, b: &str) -> usize {
    let same = a.lines().zip(b.lines()).take_while(|(x, y)| x == y).count();
    same + 1
}
