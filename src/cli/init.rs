//! `pipe init [DIR]`: writes a starter `pipeline.pipe` (jobs, artifact, staging promote) fitted to
//! the project it finds (Cargo, npm, or neither), checked clean before it is written, and keeps
//! `.pipe/` out of git.

use super::exit;
use super::report::{self, CliError};
use crate::compilation::{FileLoader, compile_source};
use crate::syntax::format::format;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The pipeline's name (default: the crate's or npm package's name, else the directory's)
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
        return report::error(CliError::AlreadyExists(target));
    }
    let project = detect(&args.dir);
    let name = match args
        .name
        .clone()
        .map_or_else(|| default_name(&args.dir, project), Ok)
    {
        Ok(name) if is_identifier(&name) => name,
        Ok(name) => return report::error(CliError::NotPipelineName(name)),
        Err(error) => return report::error(error),
    };
    let text = match generate(project, &name, &target) {
        Ok(text) => text,
        Err(error) => return report::error(error),
    };
    if let Err(source) = crate::fsutil::write_atomic(&target, text.as_bytes()) {
        return report::error(CliError::Unwritable {
            file: target,
            source,
        });
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

/// The starter in `pipe fmt`'s layout (so it passes `pipe fmt --check` as written), checked.
/// The text is generated, so a problem in it is this tool's bug: it is never written.
fn generate(project: Project, name: &str, target: &Path) -> Result<String, CliError> {
    let text = format(0, &starter(project, name))
        .map_err(|diagnostic| CliError::InitUnparsable(diagnostic.message))?;
    let checked = compile_source(&target.display().to_string(), &text, &FileLoader);
    if checked.has_errors() {
        return Err(CliError::InitUnchecked(checked.render(false)));
    }
    Ok(text)
}

/// The project's own name (the crate's or the npm package's), else the directory's.
fn default_name(dir: &Path, project: Project) -> Result<String, CliError> {
    let declared = match project {
        Project::Cargo => std::fs::read_to_string(dir.join("Cargo.toml"))
            .ok()
            .and_then(|text| cargo_package_name(&text)),
        Project::Npm => std::fs::read_to_string(dir.join("package.json"))
            .ok()
            .and_then(|text| npm_package_name(&text)),
        Project::Other => None,
    };
    if let Some(name) = declared {
        return Ok(identifier_from(&name));
    }
    let absolute = std::path::absolute(dir).map_err(|source| CliError::UnresolvableDir {
        dir: dir.to_path_buf(),
        source,
    })?;
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

/// `name` under `[package]` in a Cargo.toml (a workspace manifest has none).
fn cargo_package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            let value = value.trim();
            let value = match value.chars().next() {
                Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or(""),
                _ => value.split('#').next().unwrap_or("").trim(),
            };
            return (!value.is_empty()).then(|| value.to_string());
        }
    }
    None
}

/// `name` in a package.json, its `@scope/` left out.
fn npm_package_name(manifest: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(manifest).ok()?;
    let name = value.get("name")?.as_str()?;
    let name = name.rsplit('/').next().unwrap_or(name);
    (!name.is_empty()).then(|| name.to_string())
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
        Project::Cargo => {
            "a Cargo project: fmt, clippy, test, a release build delivered to staging"
        }
        Project::Npm => "an npm project: install, test, build, a package delivered to staging",
        Project::Other => "no build system recognised: replace the placeholder commands",
    }
}

/// The starter: the project's jobs and gate, then the delivery every kind shares.
fn starter(project: Project, name: &str) -> String {
    let header = "// The delivery pipeline of this repository. `pipe check` checks it, `pipe run --dry-run`\n\
                  // shows what would run, `pipe run` runs it; `pipe explain CODE` explains a diagnostic.\n";
    let (import, jobs, artifact) = match project {
        Project::Cargo => (
            "import \"std/rust\"\n\n",
            cargo_jobs(),
            format!("target/release/{name}"),
        ),
        Project::Npm => ("", NPM_JOBS.to_string(), "build/package.tgz".to_string()),
        Project::Other => ("", OTHER_JOBS.to_string(), "build/output".to_string()),
    };
    let file = artifact.rsplit('/').next().unwrap_or("artifact");
    format!(
        "{header}{import}pipeline {name} {{\n\
         \x20 artifact app {{ path = \"{artifact}\" }}\n\n\
         {jobs}\n\
         \x20 gate ready {{ require jobs.test.succeeded }}\n\n\
         {}}}\n",
        delivery(file)
    )
}

/// Cargo's jobs. The first run of a fresh `cargo new` project has no `Cargo.lock` yet, and
/// the std/rust templates build `--locked`: the `lock` job writes one only when it is missing.
fn cargo_jobs() -> String {
    "  job lock { run \"test -f Cargo.lock || cargo generate-lockfile\"  timeout = 5m }\n\
     \x20 job fmt = fmt_check()\n\
     \x20 job lint = clippy() { needs = [lock] }\n\
     \x20 job test = cargo_test(flags: \"--workspace\") { needs = [lock] }\n\
     \x20 job build = cargo_build(flags: \"--workspace\") {\n\
     \x20   needs    = [fmt, lint, test]\n\
     \x20   produces = [app]\n\
     \x20 }\n"
        .to_string()
}

const NPM_JOBS: &str = "  job install { run \"npm ci\"  timeout = 10m }
  job test { run \"npm test\"  needs = [install]  timeout = 15m }
  job build {
    needs = [test]
    run \"npm run build --if-present && mkdir -p build && mv \\\"$(npm pack --silent)\\\" build/package.tgz\"
    produces = [app]
    timeout  = 15m
  }
";

const OTHER_JOBS: &str = "  // Placeholders: replace each `run` with the project's own commands.
  job test { run \"echo test\"  timeout = 10m }
  job build {
    needs = [test]
    run \"echo build\"
    run \"mkdir -p build && date > build/output\"
    produces = [app]
    timeout  = 10m
  }
";

/// A staging promote that works as written (it installs the artifact under `deploy/staging`),
/// and production and a restore drill to uncomment once deploys are real.
fn delivery(file: &str) -> String {
    format!(
        r#"  environment staging {{ url = "http://127.0.0.1:8080" }}

  // Replace these commands with the real deploy: as written they install the artifact under
  // deploy/staging, so that the first `pipe run` shows the whole flow. A failed smoke check
  // runs `rollback`, which puts the previous release back.
  promote staging {{
    after    = [ready]
    artifact = app
    deploy {{ run "mkdir -p deploy/staging && cp ${{{{ artifact.path }}}} deploy/staging/{file}" }}
    smoke {{ run "test -s deploy/staging/{file}"  retries = 2  backoff = 1s }}
    rollback {{ run "cp ${{{{ previous.path }}}} deploy/staging/{file}" }}
  }}

  // Production, once staging deploys for real: a protected environment needs an approval
  // (`pipe run --approve production --approver NAME`).
  // environment production {{ url = "https://example.com"  protected = true }}
  //
  // promote production {{
  //   after    = [staging]
  //   artifact = app
  //   approval {{ approvers = ["you"] }}
  //   deploy {{ run "./deploy.sh ${{{{ artifact.path }}}} ${{{{ env.url }}}}" }}
  //   smoke {{ run "curl -fsS ${{{{ env.url }}}}/health"  retries = 5  backoff = 2s }}
  //   rollback {{ run "./deploy.sh ${{{{ previous.path }}}} ${{{{ env.url }}}}" }}
  // }}

  // A restore drill (`pipe drill restore_db`): back up, restore into a scratch copy, verify,
  // judged against how long a restore may take (rto) and how much data it may lose (rpo).
  // drill restore_db {{
  //   environment = staging
  //   rto         = 5m
  //   rpo         = 24h
  //   backup {{ run "./scripts/backup.sh" }}
  //   restore {{ run "./scripts/restore.sh" }}
  //   verify {{ run "./scripts/verify_restore.sh" }}
  // }}
"#
    )
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
    fn the_project_is_named_by_its_manifest() {
        let cargo = "[workspace]\nmembers = []\n\n[package]\nversion = \"0.1.0\"\nname = \"my-svc\" # the crate\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(cargo_package_name(cargo).as_deref(), Some("my-svc"));
        assert_eq!(cargo_package_name("[workspace]\nname = \"x\"\n"), None);
        let npm = r#"{"name": "@acme/web.app", "version": "1.0.0"}"#;
        assert_eq!(npm_package_name(npm).as_deref(), Some("web.app"));
        assert_eq!(npm_package_name("{}"), None);
    }

    #[test]
    fn every_starter_checks_clean() {
        for project in [Project::Cargo, Project::Npm, Project::Other] {
            let text = starter(project, "demo");
            assert_eq!(
                format(0, &text).as_ref(),
                Ok(&text),
                "{project:?} is not formatted"
            );
            assert!(!text.lines().any(|line| line.ends_with(' ')), "{text}");
            let compiled = compile_source("pipeline.pipe", &text, &FileLoader);
            assert!(
                !compiled.has_errors() && compiled.diagnostics.is_empty(),
                "{project:?}:\n{}",
                compiled.render(false)
            );
            let uncommented = uncomment(&text);
            assert!(uncommented.contains("promote production") && uncommented.contains("drill"));
            let compiled = compile_source("pipeline.pipe", &uncommented, &FileLoader);
            assert!(
                !compiled.has_errors() && compiled.diagnostics.is_empty(),
                "{project:?} uncommented:\n{}",
                compiled.render(false)
            );
        }
    }

    /// The starter with its commented production and drill sections turned on.
    fn uncomment(text: &str) -> String {
        let code = ["environment production", "promote", "drill", "}", "  "];
        text.lines()
            .map(|line| match line.trim_start().strip_prefix("//") {
                Some("") => "",
                Some(rest)
                    if code
                        .iter()
                        .any(|c| rest.strip_prefix(' ').is_some_and(|r| r.starts_with(c))) =>
                {
                    &rest[1..]
                }
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect()
    }
}
