//! Recovery: the `rollback` block with `previous.*` bound to the target release, then `smoke`
//! again to verify the environment serves it, with the ledger and audit log updated at each
//! step. Shared by an automatic rollback and by `pipe rollback ENV` by hand.

use crate::audit::{AuditEvent, AuditLog};
use crate::compile::plan::promote_node_id;
use crate::deliver::host::{BlockResult, PromoteHost, StepContext};
use crate::deliver::integrity;
use crate::deliver::ledger::{Ledger, Release, ReleaseStatus, RollbackTarget, UnknownState};
use crate::deliver::request::{
    ArtifactRef, DeliveryError, DeliveryRequest, base_context, log_event, now,
};
use crate::run::eval::Bindings;
use crate::run::state::NodeStatus;
use crate::store::{Artifacts, Lease};
use serde_json::json;
use std::fmt::Display;

/// How a recovery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryEnd {
    /// Rolled back and smoke passed against the target.
    Verified,
    /// No previous stable release: nothing was rolled back (said loudly).
    Skipped,
    /// The rollback block or the verification failed: the environment's state is unknown.
    Failed(String),
}

pub struct Recovery<'a> {
    pub request: &'a DeliveryRequest,
    pub host: &'a dyn PromoteHost,
    pub audit: &'a AuditLog,
    /// The environment's lock, held by the caller: every ledger write presents it.
    pub lease: &'a Lease,
    pub actor: &'a str,
}

impl Recovery<'_> {
    /// Rolls the environment back from `from` to `target`. `from` is marked `rolled_back` when
    /// recovery is verified, `failed` otherwise.
    pub fn roll_back(
        &self,
        ledger: &mut Ledger,
        from: &ArtifactRef,
        target: Option<&Release>,
        reason: &str,
    ) -> RecoveryEnd {
        let environment = &self.request.promote.environment;
        let Some(target) = target else {
            return self.skip(ledger, from, reason);
        };
        self.host.say(&format!(
            "[{environment}] rolling back {} → {} ({reason})",
            from.version, target.version
        ));
        let started = self.log(
            AuditEvent::RollbackStarted,
            json!({
                "from_version": from.version,
                "from_digest": from.digest,
                "to_version": target.version,
                "to_digest": target.digest,
                "reason": reason,
                "ledger": "rolling_back",
            }),
        );
        if let Err(why) = started {
            return self.fail(ledger, from, why);
        }
        let artifacts = self.request.store.artifacts().as_ref();
        let stored = ArtifactRef::stored(target, artifacts);
        if !integrity::stored_copy_present(artifacts, &stored.path, &target.digest) {
            let missing = DeliveryError::RollbackTargetMissing {
                version: target.version.clone(),
                digest: target.digest.clone(),
                path: stored.path,
            };
            return self.fail(ledger, from, missing);
        }
        let verified = integrity::verify_before_use(
            self.audit,
            self.request,
            self.actor,
            "roll back to",
            &stored.path,
            &target.digest,
        );
        if let Err(why) = verified {
            return self.fail(ledger, from, why);
        }
        if let Err(why) = self.mark_rolling_back(ledger, from, target) {
            return self.fail(ledger, from, why);
        }
        let context = self.rollback_context(target);
        let node = promote_node_id(environment, "rollback");
        match self
            .host
            .run_recovery_block(&node, &self.request.promote.rollback, &context)
        {
            BlockResult::Succeeded => {}
            BlockResult::Failed(why) => {
                return self.fail(ledger, from, format!("the rollback block failed: {why}"));
            }
            BlockResult::Interrupted => {
                return self.fail(ledger, from, "the rollback block was interrupted");
            }
        }
        if let Err(why) = self.log(
            AuditEvent::RollbackFinished,
            json!({"version": target.version, "digest": target.digest}),
        ) {
            return self.fail(ledger, from, why);
        }
        self.verify(ledger, from, target, &context)
    }

    fn verify(
        &self,
        ledger: &mut Ledger,
        from: &ArtifactRef,
        target: &Release,
        context: &StepContext,
    ) -> RecoveryEnd {
        let environment = &self.request.promote.environment;
        let Some(smoke) = &self.request.promote.smoke else {
            let why = format!(
                "recovery unverified: promote {environment} has no smoke block to check that {} serves again",
                target.version
            );
            return self.fail(ledger, from, why);
        };
        let node = promote_node_id(environment, "smoke");
        match self.host.run_recovery_block(&node, smoke, context) {
            BlockResult::Succeeded => {}
            BlockResult::Failed(why) => {
                let why = format!("recovery verification (smoke) failed: {why}");
                return self.fail(ledger, from, why);
            }
            BlockResult::Interrupted => {
                let why = "recovery verification was interrupted".to_string();
                return self.fail(ledger, from, why);
            }
        }
        let recorded = self.log(
            AuditEvent::RecoveryVerified,
            json!({
                "version": target.version,
                "digest": target.digest,
                "summary": format!("{environment} serves {} again", target.version),
            }),
        );
        // A recovery the audit log does not hold is not a verified recovery on record.
        if let Err(why) = recorded {
            let why = format!("{} serves again (smoke passed), but {why}", target.version);
            return self.fail(ledger, from, why);
        }
        let at = now();
        let updated = ledger.finish_rollback(
            self.lease,
            &from_run(from, ledger),
            &from.digest,
            target,
            &self.request.run_id,
            &at,
        );
        if let Err(error) = updated {
            return RecoveryEnd::Failed(format!(
                "rolled back, but the ledger could not be written: {error}"
            ));
        }
        self.host.say(&format!(
            "[{environment}] rolled back: {} serves again (verified by smoke)",
            target.version
        ));
        RecoveryEnd::Verified
    }

    /// Re-runs the rollback a crash left `rolling_back` in the ledger, to its recorded target,
    /// and verifies it. `None` when no rollback was left unfinished.
    pub fn finish_unfinished(&self, ledger: &mut Ledger) -> Option<RecoveryEnd> {
        let Some(UnknownState::RollingBack { from, to }) = ledger.unknown_state() else {
            return None;
        };
        let environment = &self.request.promote.environment;
        let summary = format!(
            "the rollback of {environment} from {} to {} started by {} never finished; re-running it",
            from.version, to.version, to.by_run
        );
        self.host
            .say(&format!("warning: [{environment}] {summary}"));
        let logged = self.log(
            AuditEvent::RollbackResumed,
            json!({
                "from_version": from.version,
                "from_digest": from.digest,
                "to_version": to.version,
                "to_digest": to.digest,
                "abandoned_run": to.by_run,
                "summary": summary,
            }),
        );
        let from_ref = ArtifactRef::stored(&from, self.request.store.artifacts().as_ref());
        if let Err(why) = logged {
            return Some(RecoveryEnd::Failed(why.to_string()));
        }
        let target = ledger.find_digest(&to.digest).cloned();
        Some(self.roll_back(
            ledger,
            &from_ref,
            target.as_ref(),
            "finishing a rollback a crash left unfinished",
        ))
    }

    /// The marker a crash leaves behind: `from` is `rolling_back` to `target` until the
    /// rollback is verified or has failed.
    fn mark_rolling_back(
        &self,
        ledger: &mut Ledger,
        from: &ArtifactRef,
        target: &Release,
    ) -> Result<(), DeliveryError> {
        let marker = RollbackTarget {
            version: target.version.clone(),
            digest: target.digest.clone(),
            by_run: self.request.run_id.clone(),
            since: now(),
        };
        ledger
            .mark_rolling_back(self.lease, &from_run(from, ledger), &from.digest, marker)
            .map(|_| ())
            .map_err(DeliveryError::LedgerUnmarkable)
    }

    fn skip(&self, ledger: &mut Ledger, from: &ArtifactRef, reason: &str) -> RecoveryEnd {
        let environment = &self.request.promote.environment;
        let warning = format!(
            "ROLLBACK SKIPPED: {environment} has no previous stable release to go back to; {} failed ({reason}) and may still be what {environment} serves",
            from.version
        );
        self.host.say(&format!("warning: {warning}"));
        let _ = self.log(AuditEvent::RollbackSkipped, json!({"reason": warning}));
        let _ = ledger.mark(
            self.lease,
            &from_run(from, ledger),
            &from.digest,
            ReleaseStatus::Failed,
            &now(),
        );
        RecoveryEnd::Skipped
    }

    /// Every way a rollback can fail ends here, so each one is audited (`recovery_failed` with
    /// the reason), not only a failed verification.
    fn fail(&self, ledger: &mut Ledger, from: &ArtifactRef, why: impl Display) -> RecoveryEnd {
        let why = why.to_string();
        let environment = &self.request.promote.environment;
        // Best effort: the failure being reported may be the audit log itself.
        let _ = self.log(AuditEvent::RecoveryFailed, json!({"reason": why}));
        self.host.say(&format!(
            "error: ROLLBACK FAILED in {environment}: {why}; the environment's state is unknown. Fix it, then run `pipe rollback {environment}`"
        ));
        self.host.node_transition(
            &promote_node_id(environment, "deploy"),
            NodeStatus::Failed,
            Some(&why),
        );
        let _ = ledger.mark(
            self.lease,
            &from_run(from, ledger),
            &from.digest,
            ReleaseStatus::Failed,
            &now(),
        );
        RecoveryEnd::Failed(why)
    }

    /// `artifact.*` and `previous.*` both name the target: the rollback redeploys it and the
    /// verification smoke checks the environment serves it.
    fn rollback_context(&self, target: &Release) -> StepContext {
        let artifacts = self.request.store.artifacts().as_ref();
        let stored = ArtifactRef::stored(target, artifacts);
        let mut context = base_context(self.request, &stored);
        bind_previous(&mut context.bindings, target, artifacts);
        context
            .variables
            .insert("PIPE_PREVIOUS_ARTIFACT".to_string(), stored.path);
        context
    }

    fn log(&self, event: AuditEvent, fields: serde_json::Value) -> Result<(), DeliveryError> {
        log_event(self.audit, self.request, self.actor, event, fields)
    }
}

/// `previous.*`: the rollback target a rollback redeploys (`pipe plan` and the dry run show
/// the rollback action with the same values).
pub(crate) fn bind_previous(bindings: &mut Bindings, target: &Release, artifacts: &dyn Artifacts) {
    let path = artifacts.local_path(&target.digest);
    bindings.set_string("previous.path", path.display().to_string());
    bindings.set_string("previous.digest", target.digest.clone());
    bindings.set_string("previous.version", target.version.clone());
}

/// The run whose release `from` is: this run for a promote, the ledger's entry for a rollback
/// by hand (whose run differs from the release's).
fn from_run(from: &ArtifactRef, ledger: &Ledger) -> String {
    ledger
        .releases()
        .iter()
        .rev()
        .find(|r| r.digest == from.digest)
        .map(|r| r.run.clone())
        .unwrap_or_default()
}
