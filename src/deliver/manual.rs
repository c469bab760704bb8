//! `pipe rollback ENV [--to VERSION]`: the incident fast path. Same lock, audit events and
//! verification as an automatic rollback, no gates and no approvals; it redeploys a stored
//! immutable artifact from the ledger and never rebuilds.

use crate::audit::{AuditEvent, AuditLog};
use crate::deliver::engine::take_lock;
use crate::deliver::host::PromoteHost;
use crate::deliver::ledger::{Ledger, Release, ReleaseStatus, UnknownState};
use crate::deliver::recovery::{self, Recovery};
use crate::deliver::request::{ArtifactRef, DeliveryError, DeliveryRequest, log_event};
use crate::store::{LockError, StoreError};
use serde_json::json;

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
    let lease = take_lock(request, host)?;
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
    let latest = ledger
        .latest()
        .cloned()
        .ok_or_else(|| ManualError::NoReleases {
            environment: environment.clone(),
        })?;
    let from = rolled_back_from(&ledger, latest);
    let target = choose_target(&ledger, &from, to_version)?;
    let artifacts = request.store.artifacts().as_ref();
    let stored = ArtifactRef::stored(&target, artifacts);
    if !crate::deliver::integrity::stored_copy_present(artifacts, &stored.path, &target.digest) {
        return Err(ManualError::TargetMissing {
            version: target.version,
            path: stored.path,
        });
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
    )?;
    match recovery.roll_back(
        &mut ledger,
        &ArtifactRef::stored(&from, artifacts),
        Some(&target),
        "rollback by hand",
    ) {
        recovery::RecoveryEnd::Verified => Ok(target),
        recovery::RecoveryEnd::Skipped => Err(ManualError::NoTarget),
        recovery::RecoveryEnd::Failed(why) => Err(ManualError::RollbackFailed(why)),
    }
}

fn load_ledger(request: &DeliveryRequest) -> Result<Ledger, ManualError> {
    Ledger::load(
        &request.store,
        &request.pipeline,
        &request.promote.environment,
    )
    .map_err(ManualError::LedgerUnreadable)
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
            return Err(ManualError::UnfinishedTargetUnknown {
                version: to.version.clone(),
            });
        }
        Some(recovery::RecoveryEnd::Failed(why)) => return Err(ManualError::RollbackFailed(why)),
    }
    if to_version.is_none_or(|version| version == to.version) {
        return Ok(ledger.find_digest(&to.digest).cloned());
    }
    *ledger = load_ledger(recovery.request)?;
    Ok(None)
}

/// Why a rollback by hand did not end verified. Every variant but the two that
/// [`ManualError::state_unknown`] names changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("cannot open the audit log: {0}")]
    AuditUnopenable(#[source] StoreError),
    #[error(transparent)]
    Unrecorded(#[from] DeliveryError),
    #[error("cannot read the ledger: {0}")]
    LedgerUnreadable(#[source] StoreError),
    #[error("the ledger of {environment} has no releases: nothing to roll back")]
    NoReleases { environment: String },
    #[error("{environment} has no stable release other than {from} to roll back to")]
    NoOtherStable { environment: String, from: String },
    /// `known` lists the versions the ledger has.
    #[error("{environment} never had a release {version} (releases: {known})")]
    UnknownVersion {
        environment: String,
        version: String,
        known: String,
    },
    #[error("{version} is still marked {status} in {environment}; it is not a known-good release")]
    NotKnownGood {
        version: String,
        status: ReleaseStatus,
        environment: String,
    },
    #[error("the stored artifact of {version} is missing at {path}")]
    TargetMissing { version: String, path: String },
    #[error("no rollback target")]
    NoTarget,
    /// The rollback ran and failed or was not verified (recovery's reason).
    #[error("{0}")]
    RollbackFailed(String),
    #[error(
        "the unfinished rollback's target {version} is not in the ledger; the environment's state is unknown"
    )]
    UnfinishedTargetUnknown { version: String },
}

impl ManualError {
    /// The rollback ran and did not end verified: what the environment serves is unknown.
    pub fn state_unknown(&self) -> bool {
        matches!(
            self,
            ManualError::RollbackFailed(_) | ManualError::UnfinishedTargetUnknown { .. }
        )
    }
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
            .ok_or_else(|| ManualError::NoOtherStable {
                environment: environment.to_string(),
                from: from.version.clone(),
            });
    };
    let release = ledger.find_version(version).cloned().ok_or_else(|| {
        let known: Vec<&str> = ledger
            .releases()
            .iter()
            .map(|r| r.version.as_str())
            .collect();
        ManualError::UnknownVersion {
            environment: environment.to_string(),
            version: version.to_string(),
            known: known.join(", "),
        }
    })?;
    if matches!(
        release.status,
        ReleaseStatus::Deploying | ReleaseStatus::RollingBack
    ) {
        return Err(ManualError::NotKnownGood {
            version: version.to_string(),
            status: release.status,
            environment: environment.to_string(),
        });
    }
    Ok(release)
}
