//! The release ledger: per pipeline and environment, every release ever deployed there with its
//! status, in `.pipe/ledger/PIPELINE/ENV.json`. It decides rollback targets before a deploy.
//!
//! File format (`pipe.ledger/v1`), rewritten atomically on every change:
//!
//! ```json
//! {
//!   "schema": "pipe.ledger/v1",
//!   "pipeline": "api",
//!   "environment": "production",
//!   "releases": [
//!     { "version": "api-1", "artifact": "api_bin", "digest": "sha256:…", "path": "/…/.pipe/artifacts/sha256/…",
//!       "run": "20261123-…", "started_at": "2026-11-23T23:40:00Z", "finished_at": "2026-11-23T23:40:09Z",
//!       "status": "stable" }
//!   ]
//! }
//! ```
//!
//! Releases are appended in the order they started; "newest" means last in the list. Writers
//! hold the environment lock (`deliver::lock`), so a load–change–save cycle never races.

use crate::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub const LEDGER_SCHEMA: &str = "pipe.ledger/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Started and not finished: a crash here leaves the environment in an unknown state.
    Deploying,
    /// Passed deploy, smoke and watch: a valid rollback target.
    Stable,
    /// Failed and replaced by the previous stable release (or rolled away from by hand).
    RolledBack,
    /// Failed and not (verifiably) rolled back.
    Failed,
    /// Being rolled away from (to `rollback_to`): set before the rollback touches anything, so
    /// a crash mid-rollback leaves the environment visibly unknown and the target recorded.
    RollingBack,
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ReleaseStatus::Deploying => "deploying",
            ReleaseStatus::Stable => "stable",
            ReleaseStatus::RolledBack => "rolled_back",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::RollingBack => "rolling_back",
        };
        f.write_str(text)
    }
}

/// One deployment of one immutable artifact to the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub version: String,
    /// The artifact's name in the pipeline (`api_bin`).
    pub artifact: String,
    /// Content digest of the stored artifact (`sha256:HEX`).
    pub digest: String,
    /// The stored immutable copy that was deployed.
    pub path: String,
    pub run: String,
    /// RFC 3339.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub status: ReleaseStatus,
    /// Why this entry exists when it is not a plain promote, e.g. "redeployed by rollback".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// While `rolling_back`: the release the environment is being rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<RollbackTarget>,
}

/// The target of a rollback in progress, named by version and digest (the release itself is
/// the newest ledger entry with that digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackTarget {
    pub version: String,
    pub digest: String,
    /// The run (or `pipe rollback` invocation) that started the rollback.
    pub by_run: String,
    pub since: String,
}

/// Why the ledger cannot say what an environment serves.
#[derive(Debug, Clone, PartialEq)]
pub enum UnknownState {
    /// A rollback was started and never finished.
    RollingBack { from: Release, to: RollbackTarget },
    /// A deploy was started and never finished.
    Deploying(Release),
    /// The newest release failed and was not (verifiably) rolled back.
    Failed(Release),
}

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownState::RollingBack { from, to } => write!(
                f,
                "a rollback from {} to {} started by {} at {} has not finished (unless that process still holds the environment's lock, it died); the next promote or `pipe rollback` re-runs it and verifies it",
                from.version, to.version, to.by_run, to.since
            ),
            UnknownState::Deploying(release) => write!(
                f,
                "the deploy of {} by run {} (started {}) has not finished (unless that run still holds the environment's lock, it died); the next promote deploys afresh, `pipe rollback` restores the last stable release",
                release.version, release.run, release.started_at
            ),
            UnknownState::Failed(release) => write!(
                f,
                "{} (run {}) failed and was not verifiably rolled back; a new promote or `pipe rollback` replaces it",
                release.version, release.run
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LedgerFile {
    schema: String,
    pipeline: String,
    environment: String,
    releases: Vec<Release>,
}

/// The ledger of one environment of one pipeline, loaded in memory; every change is saved
/// before the method returns.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
    file: LedgerFile,
}

/// Where a pipeline's environment ledger lives under the state directory.
pub fn ledger_path(state_dir: &Path, pipeline: &str, environment: &str) -> PathBuf {
    state_dir
        .join("ledger")
        .join(pipeline)
        .join(format!("{environment}.json"))
}

impl Ledger {
    /// Loads the ledger; a missing file is an empty ledger (the environment's first release).
    pub fn load(state_dir: &Path, pipeline: &str, environment: &str) -> io::Result<Ledger> {
        let path = ledger_path(state_dir, pipeline, environment);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("ledger {} is not valid JSON: {error}", path.display()),
                )
            })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => LedgerFile {
                schema: LEDGER_SCHEMA.to_string(),
                pipeline: pipeline.to_string(),
                environment: environment.to_string(),
                releases: Vec::new(),
            },
            Err(error) => return Err(error),
        };
        Ok(Ledger { path, file })
    }

    pub fn environment(&self) -> &str {
        &self.file.environment
    }

    /// Oldest first.
    pub fn releases(&self) -> &[Release] {
        &self.file.releases
    }

    /// Records a new release as `deploying` (its status field is overwritten).
    pub fn begin(&mut self, mut release: Release) -> io::Result<()> {
        release.status = ReleaseStatus::Deploying;
        release.finished_at = None;
        self.file.releases.push(release);
        self.save()
    }

    /// Sets the status of the newest release of `digest` made by `run`, stamping its finish
    /// time. Returns false (and writes nothing) when there is no such release.
    pub fn mark(
        &mut self,
        run: &str,
        digest: &str,
        status: ReleaseStatus,
        finished_at: &str,
    ) -> io::Result<bool> {
        let Some(release) = self.made_by(run, digest) else {
            return Ok(false);
        };
        release.status = status;
        release.finished_at = Some(finished_at.to_string());
        release.rollback_to = None;
        self.save().map(|()| true)
    }

    /// Marks the newest release of `digest` made by `run` as `rolling_back` to `target`, before
    /// the rollback runs. Returns false (and writes nothing) when there is no such release.
    pub fn mark_rolling_back(
        &mut self,
        run: &str,
        digest: &str,
        target: RollbackTarget,
    ) -> io::Result<bool> {
        let Some(release) = self.made_by(run, digest) else {
            return Ok(false);
        };
        release.status = ReleaseStatus::RollingBack;
        release.rollback_to = Some(target);
        self.save().map(|()| true)
    }

    /// A verified rollback in one write: the release of `from_digest` by `from_run` becomes
    /// `rolled_back` and `target` serves again (see [`Ledger::record_restored`]). One write, so
    /// a crash never leaves the one done without the other.
    pub fn finish_rollback(
        &mut self,
        from_run: &str,
        from_digest: &str,
        target: &Release,
        run: &str,
        at: &str,
    ) -> io::Result<()> {
        if let Some(release) = self.made_by(from_run, from_digest) {
            release.status = ReleaseStatus::RolledBack;
            release.finished_at = Some(at.to_string());
            release.rollback_to = None;
        }
        self.push_restored(target, run, at);
        self.save()
    }

    /// What makes the environment's state unknown right now: a release left `rolling_back`,
    /// or a newest release left `deploying` or `failed`. (While a run holds the lock, a
    /// `deploying` or `rolling_back` entry is work in progress.)
    pub fn unknown_state(&self) -> Option<UnknownState> {
        let rolling_back = self
            .file
            .releases
            .iter()
            .rev()
            .find(|r| r.status == ReleaseStatus::RollingBack);
        if let Some(release) = rolling_back {
            return Some(match &release.rollback_to {
                Some(to) => UnknownState::RollingBack {
                    from: release.clone(),
                    to: to.clone(),
                },
                None => UnknownState::Failed(release.clone()),
            });
        }
        let latest = self.latest()?;
        match latest.status {
            ReleaseStatus::Deploying => Some(UnknownState::Deploying(latest.clone())),
            ReleaseStatus::Failed => Some(UnknownState::Failed(latest.clone())),
            ReleaseStatus::Stable | ReleaseStatus::RolledBack | ReleaseStatus::RollingBack => None,
        }
    }

    /// The newest release of `digest`, of any status.
    pub fn find_digest(&self, digest: &str) -> Option<&Release> {
        self.file.releases.iter().rev().find(|r| r.digest == digest)
    }

    /// The newest release of `digest` made by `run`.
    fn made_by(&mut self, run: &str, digest: &str) -> Option<&mut Release> {
        self.file
            .releases
            .iter_mut()
            .rev()
            .find(|release| release.run == run && release.digest == digest)
    }

    /// The rollback target: the newest `stable` release whose digest is not `excluding`.
    pub fn previous_stable(&self, excluding_digest: &str) -> Option<&Release> {
        self.file
            .releases
            .iter()
            .rev()
            .find(|r| r.status == ReleaseStatus::Stable && r.digest != excluding_digest)
    }

    /// What the environment serves as far as the ledger knows: the newest stable release.
    pub fn current_stable(&self) -> Option<&Release> {
        self.file
            .releases
            .iter()
            .rev()
            .find(|r| r.status == ReleaseStatus::Stable)
    }

    /// The newest release of any status.
    pub fn latest(&self) -> Option<&Release> {
        self.file.releases.last()
    }

    /// The newest release named `version`, of any status.
    pub fn find_version(&self, version: &str) -> Option<&Release> {
        self.file
            .releases
            .iter()
            .rev()
            .find(|r| r.version == version)
    }

    /// Digests with at least one `stable` release here (the staging-first check reads these).
    pub fn stable_digests(&self) -> BTreeSet<String> {
        self.file
            .releases
            .iter()
            .filter(|r| r.status == ReleaseStatus::Stable)
            .map(|r| r.digest.clone())
            .collect()
    }

    /// Records that `target` serves again after a rollback, so "newest stable" names it.
    /// Appends a fresh entry only when another stable release is newer than it.
    #[cfg(test)]
    pub fn record_restored(&mut self, target: &Release, run: &str, at: &str) -> io::Result<()> {
        if self.push_restored(target, run, at) {
            self.save()
        } else {
            Ok(())
        }
    }

    /// [`Ledger::record_restored`] without the save; true when an entry was appended.
    fn push_restored(&mut self, target: &Release, run: &str, at: &str) -> bool {
        let already_current = self
            .current_stable()
            .is_some_and(|current| current.digest == target.digest);
        if already_current {
            return false;
        }
        self.file.releases.push(Release {
            run: run.to_string(),
            started_at: at.to_string(),
            finished_at: Some(at.to_string()),
            status: ReleaseStatus::Stable,
            note: Some(format!(
                "redeployed by rollback (first released by run {})",
                target.run
            )),
            rollback_to: None,
            ..target.clone()
        });
        true
    }

    fn save(&self) -> io::Result<()> {
        let mut text = serde_json::to_string_pretty(&self.file).map_err(io::Error::other)?;
        text.push('\n');
        write_atomic(&self.path, text.as_bytes())
    }
}

/// Every digest any ledger under `state_dir` references, whatever its status: artifacts a
/// cleanup must keep, since any of them may be a rollback target or evidence.
pub fn referenced_digests(state_dir: &Path) -> io::Result<BTreeSet<String>> {
    let mut digests = BTreeSet::new();
    let root = state_dir.join("ledger");
    let pipelines = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(digests),
        Err(error) => return Err(error),
    };
    for pipeline in pipelines {
        for entry in std::fs::read_dir(pipeline?.path())? {
            let bytes = std::fs::read(entry?.path())?;
            if let Ok(file) = serde_json::from_slice::<LedgerFile>(&bytes) {
                digests.extend(file.releases.into_iter().map(|r| r.digest));
            }
        }
    }
    Ok(digests)
}

/// The names of the environments with a ledger for `pipeline`, sorted.
pub fn environments_with_ledger(state_dir: &Path, pipeline: &str) -> io::Result<Vec<String>> {
    let dir = state_dir.join("ledger").join(pipeline);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut names = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json")
            && let Some(stem) = path.file_stem()
        {
            names.push(stem.to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(version: &str, digest: &str, run: &str) -> Release {
        Release {
            version: version.to_string(),
            artifact: "bin".to_string(),
            digest: digest.to_string(),
            path: format!("/store/{digest}"),
            run: run.to_string(),
            started_at: "2026-11-23T00:00:00Z".to_string(),
            finished_at: None,
            status: ReleaseStatus::Stable,
            note: None,
            rollback_to: None,
        }
    }

    /// v1, v2, v3 (digests a, b, c, runs r1, r2, r3), all stable, in `prod`.
    fn three_stable_releases(state_dir: &Path) -> Ledger {
        let mut ledger = Ledger::load(state_dir, "api", "prod").unwrap();
        for (version, digest, run) in [("v1", "a", "r1"), ("v2", "b", "r2"), ("v3", "c", "r3")] {
            ledger.begin(release(version, digest, run)).unwrap();
            ledger
                .mark(run, digest, ReleaseStatus::Stable, "t")
                .unwrap();
        }
        ledger
    }

    #[test]
    fn a_rollback_in_progress_is_an_unknown_state_until_finished_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = three_stable_releases(dir.path());
        assert_eq!(ledger.unknown_state(), None);
        let target = RollbackTarget {
            version: "v1".into(),
            digest: "a".into(),
            by_run: "rb".into(),
            since: "t".into(),
        };
        assert!(ledger.mark_rolling_back("r3", "c", target.clone()).unwrap());
        let reloaded = Ledger::load(dir.path(), "api", "prod").unwrap();
        let unknown = reloaded.unknown_state().unwrap();
        assert!(unknown.to_string().contains("from v3 to v1"), "{unknown}");
        assert_eq!(reloaded.releases()[2].status.to_string(), "rolling_back");
        let mut ledger = reloaded;
        let v1 = ledger.find_digest("a").unwrap().clone();
        ledger.finish_rollback("r3", "c", &v1, "rb", "t2").unwrap();
        let reloaded = Ledger::load(dir.path(), "api", "prod").unwrap();
        assert_eq!(reloaded.unknown_state(), None);
        assert_eq!(reloaded.current_stable().unwrap().version, "v1");
        assert_eq!(reloaded.releases()[2].status, ReleaseStatus::RolledBack);
        assert_eq!(reloaded.releases()[2].rollback_to, None);
    }

    #[test]
    fn missing_file_is_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::load(dir.path(), "api", "staging").unwrap();
        assert!(ledger.releases().is_empty());
        assert!(ledger.previous_stable("sha256:a").is_none());
    }

    #[test]
    fn begin_and_mark_are_saved_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::load(dir.path(), "api", "staging").unwrap();
        ledger.begin(release("v1", "sha256:a", "r1")).unwrap();
        assert_eq!(ledger.releases()[0].status, ReleaseStatus::Deploying);
        let reloaded = Ledger::load(dir.path(), "api", "staging").unwrap();
        assert_eq!(reloaded.releases()[0].status, ReleaseStatus::Deploying);

        let mut ledger = reloaded;
        assert!(
            ledger
                .mark("r1", "sha256:a", ReleaseStatus::Stable, "t")
                .unwrap()
        );
        assert!(
            !ledger
                .mark("r9", "sha256:a", ReleaseStatus::Failed, "t")
                .unwrap()
        );
        let reloaded = Ledger::load(dir.path(), "api", "staging").unwrap();
        assert_eq!(reloaded.releases()[0].status, ReleaseStatus::Stable);
        assert_eq!(reloaded.releases()[0].finished_at.as_deref(), Some("t"));
        assert!(dir.path().join("ledger/api/staging.json").exists());
    }

    #[test]
    fn previous_stable_is_newest_stable_other_than_the_one_deploying() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = three_stable_releases(dir.path());
        ledger
            .mark("r3", "c", ReleaseStatus::RolledBack, "t")
            .unwrap();
        assert_eq!(ledger.previous_stable("d").unwrap().version, "v2");
        assert_eq!(ledger.previous_stable("b").unwrap().version, "v1");
        assert_eq!(
            ledger.stable_digests(),
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn restoring_an_older_release_makes_it_current() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::load(dir.path(), "api", "prod").unwrap();
        for (version, digest, run) in [("v1", "a", "r1"), ("v2", "b", "r2")] {
            ledger.begin(release(version, digest, run)).unwrap();
            ledger
                .mark(run, digest, ReleaseStatus::Stable, "t")
                .unwrap();
        }
        let target = ledger.find_version("v1").unwrap().clone();
        ledger.record_restored(&target, "r3", "t").unwrap();
        assert_eq!(ledger.current_stable().unwrap().version, "v1");
        assert_eq!(ledger.releases().len(), 3);
        ledger.record_restored(&target, "r4", "t").unwrap();
        assert_eq!(
            ledger.releases().len(),
            3,
            "already current: nothing appended"
        );
    }

    #[test]
    fn referenced_digests_cover_every_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let mut staging = Ledger::load(dir.path(), "api", "staging").unwrap();
        staging.begin(release("v1", "a", "r1")).unwrap();
        let mut prod = Ledger::load(dir.path(), "api", "prod").unwrap();
        prod.begin(release("v2", "b", "r2")).unwrap();
        let digests = referenced_digests(dir.path()).unwrap();
        assert_eq!(digests, BTreeSet::from(["a".to_string(), "b".to_string()]));
        assert_eq!(
            environments_with_ledger(dir.path(), "api").unwrap(),
            vec!["prod".to_string(), "staging".to_string()]
        );
    }

    #[test]
    fn corrupt_ledger_is_an_error_not_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "api", "prod");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        let error = Ledger::load(dir.path(), "api", "prod").unwrap_err();
        assert!(error.to_string().contains("not valid JSON"));
    }
}
