//! The run-wide bindings every expression sees: `git.*` (read from the checkout), `date`,
//! `run.id`, `pipeline.name` and `pipeline.version`.

use crate::compile::plan::Plan;
use crate::run::eval::{self, Bindings};
use std::path::Path;
use std::process::Command;

/// `git.sha`, `git.short_sha`, `git.branch`, `git.tag`; empty strings outside a git checkout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GitInfo {
    pub sha: String,
    pub short_sha: String,
    pub branch: String,
    pub tag: String,
}

impl GitInfo {
    pub fn read(dir: &Path) -> GitInfo {
        let sha = git(dir, &["rev-parse", "HEAD"]);
        if sha.is_empty() {
            return GitInfo::default();
        }
        let branch = git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]);
        GitInfo {
            short_sha: sha.chars().take(7).collect(),
            sha,
            // A detached HEAD has no branch.
            branch: if branch == "HEAD" {
                String::new()
            } else {
                branch
            },
            tag: git(dir, &["describe", "--tags", "--exact-match", "HEAD"]),
        }
    }
}

/// The `git.*` names a run can read.
const GIT_NAMES: [&str; 4] = ["git.sha", "git.short_sha", "git.branch", "git.tag"];

impl GitInfo {
    /// The warning a run owes its user when the plan reads `git.*` but no commit was found:
    /// the names would silently be empty (a version `api-2026.11.29-`).
    pub fn missing_warning(&self, plan: &Plan, dir: &Path) -> Option<String> {
        if !self.sha.is_empty() {
            return None;
        }
        let text = serde_json::to_string(plan).unwrap_or_default();
        let read: Vec<&str> = GIT_NAMES
            .into_iter()
            .filter(|name| text.contains(name))
            .collect();
        (!read.is_empty()).then(|| {
            format!(
                "the pipeline reads {} but {} is not in a git repository with a commit (or `git` \
                 is not installed): every `git.*` value is empty in this run",
                read.join(", "),
                dir.display()
            )
        })
    }
}

/// Runs `git ARGS` in `dir`; empty on any failure (no git, not a checkout, no tag).
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        }
        _ => String::new(),
    }
}

/// The bindings of a run before any job has finished. `version` is `None` at run start (then
/// the plan's `version` template is evaluated) and the stored version on resume.
pub fn base_bindings(
    plan: &Plan,
    run_id: &str,
    git: &GitInfo,
    version: Option<&str>,
) -> (Bindings, Result<String, String>) {
    let mut bindings = Bindings::new();
    bindings.set_string("git.sha", &git.sha);
    bindings.set_string("git.short_sha", &git.short_sha);
    bindings.set_string("git.branch", &git.branch);
    bindings.set_string("git.tag", &git.tag);
    bindings.set_string("date", chrono::Local::now().format("%Y.%m.%d").to_string());
    bindings.set_string("run.id", run_id);
    bindings.set_string("pipeline.name", &plan.pipeline);
    let version = match (version, &plan.version) {
        (Some(stored), _) => Ok(stored.to_string()),
        (None, Some(template)) => eval::render(template, &bindings)
            .map_err(|e| format!("`version` could not be evaluated: {e}")),
        (None, None) => Ok(String::new()),
    };
    bindings.set_string("pipeline.version", version.clone().unwrap_or_default());
    (bindings, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_checkout_git_names_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(GitInfo::read(dir.path()), GitInfo::default());
    }
}
