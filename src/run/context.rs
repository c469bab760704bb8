//! The run-wide bindings every expression sees: `git.*` (read from the checkout), `date`,
//! `run.id`, `pipeline.name` and `pipeline.version`.

use crate::compile::plan::Plan;
use crate::run::eval::{self, Bindings};
use std::path::{Path, PathBuf};
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
    /// Read from the checkout's files where they are plain (no process before the first job);
    /// `git` itself answers anything else.
    pub fn read(dir: &Path) -> GitInfo {
        if std::env::var_os("GIT_DIR").is_some() {
            return GitInfo::read_with_git(dir);
        }
        let Some(git_dir) = find_git_dir(dir) else {
            return GitInfo::default();
        };
        match head_from_files(&git_dir) {
            Some((sha, branch)) => GitInfo {
                short_sha: sha.chars().take(7).collect(),
                tag: if has_tags(&git_dir) {
                    git(dir, &["describe", "--tags", "--exact-match", "HEAD"])
                } else {
                    String::new()
                },
                sha,
                branch,
            },
            None => GitInfo::read_with_git(dir),
        }
    }

    fn read_with_git(dir: &Path) -> GitInfo {
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

/// The `.git` directory of the checkout holding `dir` (a worktree's `.git` file followed).
fn find_git_dir(dir: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(dir).ok()?;
    let dot_git = absolute
        .ancestors()
        .map(|ancestor| ancestor.join(".git"))
        .find(|candidate| candidate.exists())?;
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let target = Path::new(text.strip_prefix("gitdir:")?.trim());
    Some(dot_git.parent()?.join(target))
}

/// Where shared refs live: a linked worktree's `commondir`, else the git directory itself.
fn common_dir(git_dir: &Path) -> PathBuf {
    match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(text) => git_dir.join(text.trim()),
        Err(_) => git_dir.to_path_buf(),
    }
}

/// `(sha, branch)` from `HEAD` and a loose or packed ref; `None` for anything unusual (then
/// `git` answers).
fn head_from_files(git_dir: &Path) -> Option<(String, String)> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return is_object_id(head).then(|| (head.to_string(), String::new()));
    };
    let branch = reference.strip_prefix("refs/heads/")?.to_string();
    let common = common_dir(git_dir);
    let loose = [git_dir, common.as_path()]
        .iter()
        .find_map(|dir| std::fs::read_to_string(dir.join(reference)).ok());
    let sha = match loose {
        Some(text) => text.trim().to_string(),
        None => packed_ref(&common, reference)?,
    };
    is_object_id(&sha).then_some((sha, branch))
}

fn packed_ref(common: &Path, reference: &str) -> Option<String> {
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (sha, name) = line.split_once(' ')?;
        (name == reference).then(|| sha.to_string())
    })
}

fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the repository has any tag at all: without one, `git describe` is not asked.
fn has_tags(git_dir: &Path) -> bool {
    let common = common_dir(git_dir);
    let loose = std::fs::read_dir(common.join("refs/tags"))
        .is_ok_and(|mut entries| entries.next().is_some());
    let packed = std::fs::read_to_string(common.join("packed-refs"))
        .is_ok_and(|text| text.contains(" refs/tags/"));
    loose || packed
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

/// A `version` template that did not evaluate: the run goes on with an empty version.
#[derive(Debug, thiserror::Error)]
#[error("`version` could not be evaluated: {0}")]
pub struct VersionUnevaluated(#[source] eval::EvalError);

/// The bindings of a run before any job has finished. `version` is `None` at run start (then
/// the plan's `version` template is evaluated) and the stored version on resume.
pub fn base_bindings(
    plan: &Plan,
    run_id: &str,
    git: &GitInfo,
    version: Option<&str>,
) -> (Bindings, Result<String, VersionUnevaluated>) {
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
        (None, Some(template)) => eval::render(template, &bindings).map_err(VersionUnevaluated),
        (None, None) => Ok(String::new()),
    };
    let shown = version.as_deref().unwrap_or_default();
    bindings.set_string("pipeline.version", shown);
    (bindings, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files are read as `git` would answer: on a real repository with a branch, a
    /// detached HEAD, a packed ref and a tag.
    #[test]
    fn git_names_read_from_files_match_git() {
        let dir = tempfile::tempdir().unwrap();
        let sh = |script: &str| {
            let done = Command::new("sh")
                .args(["-ec", script])
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(done.status.success(), "{script}: {done:?}");
        };
        sh(
            "git init -q -b trunk . && git -c user.name=t -c user.email=t@e commit -q --allow-empty -m one",
        );
        let sub = dir.path().join("sub/deeper");
        std::fs::create_dir_all(&sub).unwrap();
        let check = |what: &str| {
            let fast = GitInfo::read(&sub);
            assert_eq!(fast, GitInfo::read_with_git(&sub), "{what}");
            assert!(!fast.sha.is_empty(), "{what}");
            fast
        };
        assert_eq!(check("loose branch ref").branch, "trunk");
        sh("git pack-refs --all");
        check("packed branch ref");
        sh("git tag v1.0");
        assert_eq!(check("tagged").tag, "v1.0");
        sh("git checkout -q --detach");
        assert_eq!(check("detached").branch, "");
    }

    #[test]
    fn outside_a_checkout_git_names_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(GitInfo::read(dir.path()), GitInfo::default());
    }
}
