//! What a promote would bind and which rollback target it would record, decided by the very
//! functions the engine uses: `pipe plan` and, through the runner's seam, `pipe run --dry-run`.

use crate::deliver::ledger::{Ledger, Release};
use crate::deliver::recovery::bind_previous;
use crate::deliver::request::bind_environment;
use crate::run::artifact::hash_path;
use crate::run::delivery::{PreviewRequest, PromotePreview, ReleaseSummary, TargetPreview};

/// The preview of one promote, from the ledger as it is now; reads, never writes.
pub fn preview_promote(request: &PreviewRequest<'_>) -> PromotePreview {
    let mut bindings = request.bindings.clone();
    bind_environment(
        &mut bindings,
        &request.plan.environments,
        request.environment,
    );
    let ledger = Ledger::load(request.store, &request.plan.pipeline, request.environment);
    let rollback_target = match ledger {
        Ok(ledger) => {
            let (expected, preview) = decide_target(&ledger, build_digest(request).as_deref());
            if let Some(target) = expected {
                bind_previous(&mut bindings, target, request.store.artifacts().as_ref());
            }
            preview
        }
        Err(error) => TargetPreview::Unreadable(error.to_string()),
    };
    PromotePreview {
        bindings,
        rollback_target,
    }
}

/// The engine's decision (`previous_stable` of the digest being deployed) for the build on
/// disk; without one, both outcomes: a build that differs from the current stable release
/// rolls back to it, an unchanged build to the stable release before it.
fn decide_target<'l>(
    ledger: &'l Ledger,
    digest: Option<&str>,
) -> (Option<&'l Release>, TargetPreview) {
    let summary = |release: Option<&Release>| release.map(summarise);
    match digest {
        Some(digest) => {
            let target = ledger.previous_stable(digest);
            let preview = TargetPreview::ForBuild {
                digest: digest.to_string(),
                target: summary(target),
            };
            (target, preview)
        }
        None => {
            let current = ledger.current_stable();
            let if_unchanged = current.and_then(|c| ledger.previous_stable(&c.digest));
            let preview = TargetPreview::Unbuilt {
                if_changed: summary(current),
                if_unchanged: summary(if_unchanged),
            };
            (current, preview)
        }
    }
}

/// `sha256:HEX` of the promoted artifact as the build left it on disk, hashed as the store
/// hashes it; `None` when it was not built (or cannot be read).
fn build_digest(request: &PreviewRequest<'_>) -> Option<String> {
    let promote = request.plan.promotes.get(request.environment)?;
    let artifact = request.plan.artifacts.get(&promote.artifact)?;
    let (hex, _) = hash_path(&request.pipeline_dir.join(&artifact.path)).ok()?;
    Some(format!("sha256:{hex}"))
}

fn summarise(release: &Release) -> ReleaseSummary {
    ReleaseSummary {
        version: release.version.clone(),
        digest: release.digest.clone(),
        run: release.run.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::deliver::ledger::ReleaseStatus;
    use crate::store::{LockRequest, Store};

    /// v1 then v2 (digests `a`, `b`; runs r1, r2), both stable, in the in-memory store.
    fn two_stable_releases(scratch: &std::path::Path) -> Ledger {
        let store = Store::memory(scratch);
        let lock = LockRequest::new("api", "prod", "r0", std::time::Duration::ZERO);
        let lease = store.lock(&lock).unwrap();
        let mut ledger = Ledger::load(&store, "api", "prod").unwrap();
        for (version, digest, run) in [("v1", "a", "r1"), ("v2", "b", "r2")] {
            ledger
                .begin(
                    &lease,
                    Release {
                        version: version.to_string(),
                        artifact: "bin".to_string(),
                        digest: digest.to_string(),
                        run: run.to_string(),
                        started_at: "t".to_string(),
                        finished_at: None,
                        status: ReleaseStatus::Deploying,
                        note: None,
                        rollback_to: None,
                    },
                )
                .unwrap();
            ledger
                .mark(&lease, run, digest, ReleaseStatus::Stable, "t")
                .unwrap();
        }
        ledger
    }

    fn target_version(ledger: &Ledger, digest: Option<&str>) -> Option<String> {
        decide_target(ledger, digest).0.map(|r| r.version.clone())
    }

    #[test]
    fn a_known_digest_gets_the_engines_target() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = two_stable_releases(dir.path());
        assert_eq!(target_version(&ledger, Some("b")).as_deref(), Some("v1"));
        assert_eq!(target_version(&ledger, Some("new")).as_deref(), Some("v2"));
        assert_eq!(target_version(&ledger, Some("a")).as_deref(), Some("v2"));
        let (_, preview) = decide_target(&ledger, Some("b"));
        assert_eq!(preview.expected().unwrap().version, "v1");
    }

    #[test]
    fn an_unknown_digest_names_both_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = two_stable_releases(dir.path());
        let (expected, preview) = decide_target(&ledger, None);
        assert_eq!(expected.unwrap().version, "v2");
        let TargetPreview::Unbuilt {
            if_changed: Some(changed),
            if_unchanged: Some(unchanged),
        } = &preview
        else {
            panic!("{preview:?}")
        };
        assert_eq!(
            (changed.version.as_str(), unchanged.version.as_str()),
            ("v2", "v1")
        );
        let line = preview.describe();
        assert!(
            line.ends_with("or v1 (a, run r1) if the build is unchanged"),
            "{line}"
        );
    }

    #[test]
    fn an_empty_ledger_has_no_target() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::load(&Store::memory(dir.path()), "api", "prod").unwrap();
        let (expected, preview) = decide_target(&ledger, None);
        assert!(expected.is_none());
        assert!(preview.describe().starts_with("none: no stable release"));
        let (_, built) = decide_target(&ledger, Some("a"));
        assert!(built.describe().contains("a rollback would be skipped"));
    }
}
