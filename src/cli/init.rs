//! `pipe init [DIR]`: writes a starter `pipeline.pipe` fitted to the project it finds (Cargo,
//! npm, or neither), checked clean before it is written, and keeps `.pipe/` out of git.

use super::exit;
use crate::compilation::{FileLoader, compile_source};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The pipeline's name (default: the directory's name)
    #[arg(long)]
    name: Option<String>,
    /// Replace an existing pipeline.pipe
    #[arg(long)]
    force: bool,
}

/// What kind of project the directory holds, by the files that say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Project {
    Cargo,
    Npm,
    Other,
}

pub fn init(args: &InitArgs) -> i32 {
    let target = args.dir.join("pipeline.pipe");
    if target.exists() && !args.force {
        eprintln!(
            "error: {} already exists; `pipe check {}` checks it (--force replaces it)",
            target.display(),
            target.display()
        );
        return exit::USAGE;
    }
    let name = match args
        .name
        .clone()
        .map_or_else(|| default_name(&args.dir), Ok)
    {
        Ok(name) if is_identifier(&name) => name,
        Ok(name) => {
            eprintln!("error: `{name}` is not a pipeline name: use letters, digits, `_` and `-`");
            return exit::USAGE;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return exit::USAGE;
        }
    };
    let project = detect(&args.dir);
    let text = starter(project, &name);
    // The starter is generated, so a problem in it is this tool's bug: never write it.
    let checked = compile_source(&target.display().to_string(), &text, &FileLoader);
    if checked.has_errors() {
        eprint!("{}", checked.render(false));
        eprintln!("error: the generated pipeline does not check (a bug in `pipe init`)");
        return exit::FAILED;
    }
    if let Err(error) = crate::fsutil::write_atomic(&target, text.as_bytes()) {
        eprintln!("error: cannot write {}: {error}", target.display());
        return exit::FAILED;
    }
    println!(
        "wrote {} ({}) for pipeline `{name}`",
        target.display(),
        describe(project)
    );
    match ignore_state_dir(&args.dir) {
        Ok(true) => println!("added .pipe/ to .gitignore (run state, logs and the audit log)"),
        Ok(false) => {}
        Err(error) => eprintln!("warning: could not add .pipe/ to .gitignore: {error}"),
    }
    println!("next: `pipe check`, then `pipe run --dry-run` to see what would run");
    exit::SUCCESS
}

fn default_name(dir: &Path) -> Result<String, String> {
    let absolute = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let base = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline".to_string());
    Ok(identifier_from(&base))
}

/// A directory name made into an identifier: other characters become `_`, and a name that
/// does not start with a letter or `_` gets a leading `p_`.
fn identifier_from(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert_str(0, "p_");
    }
    name
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn detect(dir: &Path) -> Project {
    if dir.join("Cargo.toml").is_file() {
        Project::Cargo
    } else if dir.join("package.json").is_file() {
        Project::Npm
    } else {
        Project::Other
    }
}

fn describe(project: Project) -> &'static str {
    match project {
        Project::Cargo => "a Cargo project: fmt, clippy, test, then a release build",
        Project::Npm => "an npm project: install, test, build",
        Project::Other => "no build system recognised: replace the placeholder commands",
    }
}

fn starter(project: Project, name: &str) -> String {
    let header = "// The delivery pipeline of this repository. `pipe check` checks it, `pipe run --dry-run`\n\
                  // shows what would run, `pipe run` runs it. Add environments and `promote` blocks\n\
                  // to deliver: see `pipe explain` and the language guide.\n";
    let body = match project {
        Project::Cargo => format!(
            "import \"std/rust\"\n\npipeline {name} {{\n\
             \x20 job fmt   = fmt_check()\n\
             \x20 job lint  = clippy()\n\
             \x20 job test  = cargo_test()\n\
             \x20 job build = cargo_build() {{ needs = [fmt, lint, test] }}\n\n\
             \x20 gate ready {{\n\
             \x20   require jobs.test.succeeded\n\
             \x20   require jobs.lint.succeeded\n\
             \x20 }}\n}}\n"
        ),
        Project::Npm => format!(
            "pipeline {name} {{\n\
             \x20 job install {{ run \"npm ci\"  timeout = 10m }}\n\
             \x20 job test    {{ run \"npm test\"  needs = [install]  timeout = 15m }}\n\
             \x20 job build   {{ run \"npm run build --if-present\"  needs = [test]  timeout = 15m }}\n\n\
             \x20 gate ready {{ require jobs.test.succeeded }}\n}}\n"
        ),
        Project::Other => format!(
            "pipeline {name} {{\n\
             \x20 // Placeholders: replace each `run` with the project's own commands.\n\
             \x20 job build {{ run \"echo build\"  timeout = 10m }}\n\
             \x20 job test  {{ run \"echo test\"  needs = [build]  timeout = 10m }}\n\n\
             \x20 gate ready {{ require jobs.test.succeeded }}\n}}\n"
        ),
    };
    format!("{header}{body}")
}

/// Adds `.pipe/` to the project's `.gitignore` when the project is a git repository (or has
/// a `.gitignore`) and does not ignore it yet. `Ok(true)`: it was added.
fn ignore_state_dir(dir: &Path) -> std::io::Result<bool> {
    let path = dir.join(".gitignore");
    if !path.exists() && !dir.join(".git").exists() {
        return Ok(false);
    }
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    let ignored = existing
        .lines()
        .any(|line| matches!(line.trim(), ".pipe" | ".pipe/" | "/.pipe" | "/.pipe/"));
    if ignored {
        return Ok(false);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(".pipe/\n");
    crate::fsutil::write_atomic(&path, text.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_become_identifiers() {
        assert_eq!(identifier_from("my-service"), "my-service");
        assert_eq!(identifier_from("api.v2"), "api_v2");
        assert_eq!(identifier_from("2024 app"), "p_2024_app");
        assert!(is_identifier("p_2024_app"));
        assert!(!is_identifier("2024"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn every_starter_checks_clean() {
        for project in [Project::Cargo, Project::Npm, Project::Other] {
            let text = starter(project, "demo");
            let compiled = compile_source("pipeline.pipe", &text, &FileLoader);
            assert!(
                !compiled.has_errors() && compiled.diagnostics.is_empty(),
                "{project:?}:\n{}",
                compiled.render(false)
            );
        }
    }
}
