//! The release ledger: per pipeline and environment, every release ever deployed there with its
//! status, kept by the store. It decides rollback targets before a deploy.
//!
//! Stored format (`pipe.ledger/v1`), replaced whole on every change:
//!
//! ```json
//! {
//!   "schema": "pipe.ledger/v1",
//!   "pipeline": "api",
//!   "environment": "production",
//!   "releases": [
//!     { "version": "api-1", "artifact": "api_bin", "digest": "sha256:…",
//!       "run": "20261123-…", "started_at": "2026-11-23T23:40:00Z", "finished_at": "2026-11-23T23:40:09Z",
//!       "status": "stable" }
//!   ]
//! }
//! ```
//!
//! Releases are appended in the order they started; "newest" means last in the list. Every
//! change takes the environment lock's [`Lease`], so a load–change–save cycle never races.

use crate::store::{Lease, LedgerDoc, Store, StoreError};
pub use crate::store::{Release, ReleaseStatus, RollbackTarget};
use std::collections::BTreeSet;
use std::fmt;

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

/// The ledger of one environment of one pipeline, loaded in memory; every change is saved
/// before the method returns.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Store,
    file: LedgerDoc,
}

impl Ledger {
    /// Loads the ledger; none stored is an empty ledger (the environment's first release).
    pub fn load(store: &Store, pipeline: &str, environment: &str) -> Result<Ledger, StoreError> {
        let file = store
            .state()
            .read_ledger(pipeline, environment)?
            .unwrap_or_else(|| LedgerDoc::empty(pipeline, environment));
        Ok(Ledger {
            store: store.clone(),
            file,
        })
    }

    pub fn environment(&self) -> &str {
        &self.file.environment
    }

    /// Oldest first.
    pub fn releases(&self) -> &[Release] {
        &self.file.releases
    }

    /// Records a new release as `deploying` (its status field is overwritten).
    pub fn begin(&mut self, lease: &Lease, mut release: Release) -> Result<(), StoreError> {
        release.status = ReleaseStatus::Deploying;
        release.finished_at = None;
        self.file.releases.push(release);
        self.save(lease)
    }

    /// Sets the status of the newest release of `digest` made by `run`, stamping its finish
    /// time. Returns false (and writes nothing) when there is no such release.
    pub fn mark(
        &mut self,
        lease: &Lease,
        run: &str,
        digest: &str,
        status: ReleaseStatus,
        finished_at: &str,
    ) -> Result<bool, StoreError> {
        let Some(release) = self.made_by(run, digest) else {
            return Ok(false);
        };
        release.status = status;
        release.finished_at = Some(finished_at.to_string());
        release.rollback_to = None;
        self.save(lease).map(|()| true)
    }

    /// Marks the newest release of `digest` made by `run` as `rolling_back` to `target`, before
    /// the rollback runs. Returns false (and writes nothing) when there is no such release.
    pub fn mark_rolling_back(
        &mut self,
        lease: &Lease,
        run: &str,
        digest: &str,
        target: RollbackTarget,
    ) -> Result<bool, StoreError> {
        let Some(release) = self.made_by(run, digest) else {
            return Ok(false);
        };
        release.status = ReleaseStatus::RollingBack;
        release.rollback_to = Some(target);
        self.save(lease).map(|()| true)
    }

    /// A verified rollback in one write: the release of `from_digest` by `from_run` becomes
    /// `rolled_back` and `target` serves again (see [`Ledger::record_restored`]). One write, so
    /// a crash never leaves the one done without the other.
    pub fn finish_rollback(
        &mut self,
        lease: &Lease,
        from_run: &str,
        from_digest: &str,
        target: &Release,
        run: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        if let Some(release) = self.made_by(from_run, from_digest) {
            release.status = ReleaseStatus::RolledBack;
            release.finished_at = Some(at.to_string());
            release.rollback_to = None;
        }
        self.push_restored(target, run, at);
        self.save(lease)
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
    pub fn record_restored(
        &mut self,
        lease: &Lease,
        target: &Release,
        run: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        if self.push_restored(target, run, at) {
            self.save(lease)
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

    fn save(&self, lease: &Lease) -> Result<(), StoreError> {
        self.store.state().write_ledger(lease, &self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LockRequest;
    use std::path::Path;
    use std::time::Duration;

    /// The directory store of `dir` and the lease of `environment`'s lock.
    fn held(dir: &Path, environment: &str) -> (Store, Lease) {
        let store = Store::directory(dir);
        let request = LockRequest::new("api", environment, "test", Duration::ZERO);
        let lease = store.lock(&request).unwrap();
        (store, lease)
    }

    fn release(version: &str, digest: &str, run: &str) -> Release {
        Release {
            version: version.to_string(),
            artifact: "bin".to_string(),
            digest: digest.to_string(),
            run: run.to_string(),
            started_at: "2026-11-23T00:00:00Z".to_string(),
            finished_at: None,
            status: ReleaseStatus::Stable,
            note: None,
            rollback_to: None,
        }
    }

    /// v1, v2, v3 (digests a, b, c, runs r1, r2, r3), all stable, in `prod`.
    fn three_stable_releases(store: &Store, lease: &Lease) -> Ledger {
        let mut ledger = Ledger::load(store, "api", "prod").unwrap();
        for (version, digest, run) in [("v1", "a", "r1"), ("v2", "b", "r2"), ("v3", "c", "r3")] {
            ledger.begin(lease, release(version, digest, run)).unwrap();
            ledger
                .mark(lease, run, digest, ReleaseStatus::Stable, "t")
                .unwrap();
        }
        ledger
    }

    #[test]
    fn a_rollback_in_progress_is_an_unknown_state_until_finished_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let (store, lease) = held(dir.path(), "prod");
        let mut ledger = three_stable_releases(&store, &lease);
        assert_eq!(ledger.unknown_state(), None);
        let target = RollbackTarget {
            version: "v1".into(),
            digest: "a".into(),
            by_run: "rb".into(),
            since: "t".into(),
        };
        assert!(
            ledger
                .mark_rolling_back(&lease, "r3", "c", target.clone())
                .unwrap()
        );
        let reloaded = Ledger::load(&store, "api", "prod").unwrap();
        let unknown = reloaded.unknown_state().unwrap();
        assert!(unknown.to_string().contains("from v3 to v1"), "{unknown}");
        assert_eq!(reloaded.releases()[2].status.to_string(), "rolling_back");
        let mut ledger = reloaded;
        let v1 = ledger.find_digest("a").unwrap().clone();
        ledger
            .finish_rollback(&lease, "r3", "c", &v1, "rb", "t2")
            .unwrap();
        let reloaded = Ledger::load(&store, "api", "prod").unwrap();
        assert_eq!(reloaded.unknown_state(), None);
        assert_eq!(reloaded.current_stable().unwrap().version, "v1");
        assert_eq!(reloaded.releases()[2].status, ReleaseStatus::RolledBack);
        assert_eq!(reloaded.releases()[2].rollback_to, None);
    }

    #[test]
    fn missing_file_is_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::load(&Store::directory(dir.path()), "api", "staging").unwrap();
        assert!(ledger.releases().is_empty());
        assert!(ledger.previous_stable("sha256:a").is_none());
    }

    #[test]
    fn begin_and_mark_are_saved_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (store, lease) = held(dir.path(), "staging");
        let mut ledger = Ledger::load(&store, "api", "staging").unwrap();
        ledger
            .begin(&lease, release("v1", "sha256:a", "r1"))
            .unwrap();
        assert_eq!(ledger.releases()[0].status, ReleaseStatus::Deploying);
        let reloaded = Ledger::load(&store, "api", "staging").unwrap();
        assert_eq!(reloaded.releases()[0].status, ReleaseStatus::Deploying);

        let mut ledger = reloaded;
        assert!(
            ledger
                .mark(&lease, "r1", "sha256:a", ReleaseStatus::Stable, "t")
                .unwrap()
        );
        assert!(
            !ledger
                .mark(&lease, "r9", "sha256:a", ReleaseStatus::Failed, "t")
                .unwrap()
        );
        let reloaded = Ledger::load(&store, "api", "staging").unwrap();
        assert_eq!(reloaded.releases()[0].status, ReleaseStatus::Stable);
        assert_eq!(reloaded.releases()[0].finished_at.as_deref(), Some("t"));
        assert!(dir.path().join("ledger/api/staging.json").exists());
    }

    #[test]
    fn previous_stable_is_newest_stable_other_than_the_one_deploying() {
        let dir = tempfile::tempdir().unwrap();
        let (store, lease) = held(dir.path(), "prod");
        let mut ledger = three_stable_releases(&store, &lease);
        ledger
            .mark(&lease, "r3", "c", ReleaseStatus::RolledBack, "t")
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
        let (store, lease) = held(dir.path(), "prod");
        let mut ledger = Ledger::load(&store, "api", "prod").unwrap();
        for (version, digest, run) in [("v1", "a", "r1"), ("v2", "b", "r2")] {
            ledger.begin(&lease, release(version, digest, run)).unwrap();
            ledger
                .mark(&lease, run, digest, ReleaseStatus::Stable, "t")
                .unwrap();
        }
        let target = ledger.find_version("v1").unwrap().clone();
        ledger.record_restored(&lease, &target, "r3", "t").unwrap();
        assert_eq!(ledger.current_stable().unwrap().version, "v1");
        assert_eq!(ledger.releases().len(), 3);
        ledger.record_restored(&lease, &target, "r4", "t").unwrap();
        assert_eq!(
            ledger.releases().len(),
            3,
            "already current: nothing appended"
        );
    }

    #[test]
    fn referenced_digests_cover_every_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let (store, staging_lease) = held(dir.path(), "staging");
        let (_, prod_lease) = held(dir.path(), "prod");
        let mut staging = Ledger::load(&store, "api", "staging").unwrap();
        staging
            .begin(&staging_lease, release("v1", "a", "r1"))
            .unwrap();
        let mut prod = Ledger::load(&store, "api", "prod").unwrap();
        prod.begin(&prod_lease, release("v2", "b", "r2")).unwrap();
        let digests = store.state().referenced_digests().unwrap();
        assert_eq!(digests, BTreeSet::from(["a".to_string(), "b".to_string()]));
        assert_eq!(
            store.state().ledger_environments("api").unwrap(),
            vec!["prod".to_string(), "staging".to_string()]
        );
    }

    #[test]
    fn corrupt_ledger_is_an_error_not_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger/api/prod.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        let error = Ledger::load(&Store::directory(dir.path()), "api", "prod").unwrap_err();
        assert!(error.to_string().contains("not valid JSON"));
    }

    #[test]
    fn a_ledger_written_with_artifact_paths_loads_and_is_rewritten_with_digests_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger/api/prod.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let old = r#"{"schema":"pipe.ledger/v1","pipeline":"api","environment":"prod",
            "releases":[{"version":"v1","artifact":"bin","digest":"sha256:a",
            "path":"/old/.pipe/artifacts/sha256/a","run":"r1",
            "started_at":"t","finished_at":"t","status":"stable"}]}"#;
        std::fs::write(&path, old).unwrap();
        let (store, lease) = held(dir.path(), "prod");
        let mut ledger = Ledger::load(&store, "api", "prod").unwrap();
        assert_eq!(ledger.current_stable().unwrap().digest, "sha256:a");
        ledger
            .begin(&lease, release("v2", "sha256:b", "r2"))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"path\""), "{text}");
        assert!(
            text.contains("sha256:a") && text.contains("sha256:b"),
            "{text}"
        );
    }

    #[test]
    fn a_write_under_a_lease_that_lost_the_lock_is_refused() {
        let scratch = tempfile::tempdir().unwrap();
        let mem = std::sync::Arc::new(crate::store::mem::MemStore::default());
        let store = Store::with_state(mem.clone(), scratch.path());
        let request = LockRequest::new("api", "prod", "r1", Duration::ZERO);
        let first = store.lock(&request).unwrap();
        let mut ledger = Ledger::load(&store, "api", "prod").unwrap();
        ledger.begin(&first, release("v1", "a", "r1")).unwrap();
        mem.break_lock("api", "prod");
        let second = store.lock(&request).unwrap();
        assert!(second.token() > first.token());
        let error = ledger
            .mark(&first, "r1", "a", ReleaseStatus::Stable, "t")
            .unwrap_err();
        assert!(matches!(error, StoreError::StaleLease { .. }), "{error}");
        assert!(
            ledger
                .mark(&second, "r1", "a", ReleaseStatus::Stable, "t")
                .unwrap()
        );
    }

    #[test]
    fn a_lease_of_another_environment_cannot_write_this_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let (store, staging_lease) = held(dir.path(), "staging");
        let mut prod = Ledger::load(&store, "api", "prod").unwrap();
        let error = prod
            .begin(&staging_lease, release("v1", "a", "r1"))
            .unwrap_err();
        assert!(matches!(error, StoreError::StaleLease { .. }), "{error}");
        assert!(!dir.path().join("ledger/api/prod.json").exists());
    }
}
