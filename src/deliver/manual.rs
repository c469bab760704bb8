//! `pipe rollback ENV [--to VERSION]`: the incident fast path. Same lock, audit events and
//! verification as an automatic rollback, no gates and no approvals; it redeploys a stored
//! immutable artifact from the ledger and never rebuilds.

use crate::audit::{AuditEvent, AuditLog};
use crate::deliver::engine::take_lock;
use crate::deliver::host::PromoteHost;
use crate::deliver::ledger::{Ledger, Release, ReleaseStatus, UnknownState};
use crate::deliver::recovery::{self, Recovery};
use crate::deliver::request::{ArtifactRef, DeliveryRequest, log_event};
use serde_json::json;
use std::path::Path;

/// Rolls `request.promote.environment` back by hand. `request.artifact` is ignored: the
/// release rolled away from is the ledger's newest. Ok: verified; Err: why not (the message
/// says whether the environment's state is unknown).
pub fn rollback_by_hand(
    request: &DeliveryRequest,
    to_version: Option<&str>,
    host: &dyn PromoteHost,
    audit: &AuditLog,
) -> Result<Release, ManualError> {
    let environment = &request.promote.environment;
    let lease = take_lock(request, host).map_err(|e| ManualError::Refused(e.to_string()))?;
    let recovery = Recovery {
        request,
        host,
        audit,
        lease: &lease,
        actor: &request.actor,
    };
    let mut ledger = load_ledger(request)?;
    if let Some(restored) = finish_unfinished(&recovery, &mut ledger, to_version)? {
        return Ok(restored);
    }
    let latest = ledger.latest().cloned().ok_or_else(|| {
        ManualError::Refused(format!(
            "the ledger of {environment} has no releases: nothing to roll back"
        ))
    })?;
    let from = rolled_back_from(&ledger, latest);
    let target = choose_target(&ledger, &from, to_version)?;
    let artifacts = request.store.artifacts().as_ref();
    let stored = ArtifactRef::stored(&target, artifacts);
    if !Path::new(&stored.path).exists() {
        return Err(ManualError::Refused(format!(
            "the stored artifact of {} is missing at {}",
            target.version, stored.path
        )));
    }
    log_event(
        audit,
        request,
        &request.actor,
        AuditEvent::RollbackRequested,
        json!({
            "from_version": from.version,
            "to_version": target.version,
            "to_digest": target.digest,
            "summary": format!("rollback by hand: {} → {}", from.version, target.version),
        }),
    )
    .map_err(|error| ManualError::Refused(error.to_string()))?;
    match recovery.roll_back(
        &mut ledger,
        &ArtifactRef::stored(&from, artifacts),
        Some(&target),
        "rollback by hand",
    ) {
        recovery::RecoveryEnd::Verified => Ok(target),
        recovery::RecoveryEnd::Skipped => Err(ManualError::Refused("no rollback target".into())),
        recovery::RecoveryEnd::Failed(why) => Err(ManualError::Failed(why)),
    }
}

fn load_ledger(request: &DeliveryRequest) -> Result<Ledger, ManualError> {
    Ledger::load(
        &request.store,
        &request.pipeline,
        &request.promote.environment,
    )
    .map_err(|e| ManualError::Refused(format!("cannot read the ledger: {e}")))
}

/// A rollback a crash left unfinished is finished first, to its recorded target. When that is
/// what the operator asked for (no `--to`, or `--to` that target) it is the whole job: returns
/// the restored release. Otherwise the ledger is reloaded for the rollback asked for.
fn finish_unfinished(
    recovery: &Recovery,
    ledger: &mut Ledger,
    to_version: Option<&str>,
) -> Result<Option<Release>, ManualError> {
    let Some(UnknownState::RollingBack { to, .. }) = ledger.unknown_state() else {
        return Ok(None);
    };
    match recovery.finish_unfinished(ledger) {
        None | Some(recovery::RecoveryEnd::Verified) => {}
        Some(recovery::RecoveryEnd::Skipped) => {
            return Err(ManualError::Failed(format!(
                "the unfinished rollback's target {} is not in the ledger; the environment's state is unknown",
                to.version
            )));
        }
        Some(recovery::RecoveryEnd::Failed(why)) => return Err(ManualError::Failed(why)),
    }
    if to_version.is_none_or(|version| version == to.version) {
        return Ok(ledger.find_digest(&to.digest).cloned());
    }
    *ledger = load_ledger(recovery.request)?;
    Ok(None)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualError {
    /// Nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The rollback ran and failed or was not verified: the environment's state is unknown.
    #[error("{0}")]
    Failed(String),
}

/// What the environment is rolled back *from*: after a clean finish (the newest release stable,
/// or rolled back and verified) the newest stable release, which is what serves; after a
/// failed or interrupted one (`failed`, `deploying`: state unknown) that newest release.
fn rolled_back_from(ledger: &Ledger, latest: Release) -> Release {
    match latest.status {
        ReleaseStatus::Stable | ReleaseStatus::RolledBack => {
            ledger.current_stable().cloned().unwrap_or(latest)
        }
        ReleaseStatus::Failed | ReleaseStatus::Deploying | ReleaseStatus::RollingBack => latest,
    }
}

/// `--to VERSION`: the newest release of that version (the operator names it explicitly, so
/// any finished release is allowed). Otherwise the newest stable release whose digest differs
/// from `from`'s: one step back from what serves, or back to the last known-good release when
/// the state is unknown.
fn choose_target(
    ledger: &Ledger,
    from: &Release,
    to_version: Option<&str>,
) -> Result<Release, ManualError> {
    let environment = ledger.environment();
    let Some(version) = to_version else {
        return ledger
            .previous_stable(&from.digest)
            .cloned()
            .ok_or_else(|| {
                ManualError::Refused(format!(
                    "{environment} has no stable release other than {} to roll back to",
                    from.version
                ))
            });
    };
    let release = ledger.find_version(version).cloned().ok_or_else(|| {
        let known: Vec<&str> = ledger
            .releases()
            .iter()
            .map(|r| r.version.as_str())
            .collect();
        ManualError::Refused(format!(
            "{environment} never had a release {version} (releases: {})",
            known.join(", ")
        ))
    })?;
    if matches!(
        release.status,
        ReleaseStatus::Deploying | ReleaseStatus::RollingBack
    ) {
        return Err(ManualError::Refused(format!(
            "{version} is still marked {} in {environment}; it is not a known-good release",
            release.status
        )));
    }
    Ok(release)
}
