//! What a promote would bind and which rollback target it would record, decided by the very
//! functions the engine uses: `pipe plan` and, through the runner's seam, `pipe run --dry-run`.

use crate::deliver::engine::bind_environment;
use crate::deliver::ledger::{Ledger, Release};
use crate::deliver::recovery::bind_previous;
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
    let ledger = Ledger::load(
        request.state_dir,
        &request.plan.pipeline,
        request.environment,
    );
    let rollback_target = match ledger {
        Ok(ledger) => {
            let (expected, preview) = decide_target(&ledger, build_digest(request).as_deref());
            if let Some(target) = expected {
                bind_previous(&mut bindings, target);
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
