//! A promote whose lock the backend took away mid-deploy (its connection dropped): it deploys
//! nothing more, never records the release, and rolls back only under a lock it took again.

use super::{Promotion, Stop, failure_outcome, load_ledger};
use crate::audit::AuditEvent;
use crate::deliver::engine::DeliveryOutcome;
use crate::deliver::ledger::ReleaseStatus;
use crate::store::{Lease, LeaseLost, LockError, LockRequest};
use serde_json::json;
use std::time::Duration;

impl Promotion<'_> {
    /// Asked before each rollout step and before recording: a lease the backend no longer
    /// honours must not deploy again nor write `stable`.
    pub(super) fn ensure_lock(&self) -> Result<(), Stop> {
        self.lease.check().map_err(Stop::LockLost)
    }

    /// Stops deploying, audits why, and rolls back only when this agent can take the lock
    /// again and the ledger still shows its own deploy unfinished (nobody took over in
    /// between). Otherwise the environment's state is not ours to judge: exit 4.
    pub(super) fn recover_from_lost_lock(&mut self, lost: LeaseLost) -> DeliveryOutcome {
        let environment = self.request.promote.environment.clone();
        let reason = format!("lost the lock of {environment} mid-deploy: {lost}");
        self.host.say(&format!(
            "error: [{environment}] {reason}; stopped deploying"
        ));
        let retaken = self.retake_lock();
        let rolling_back = retaken.is_ok() && self.still_ours();
        self.audit_lost(&reason, &retaken, rolling_back);
        match retaken {
            Ok(lease) if rolling_back => {
                let end = self.roll_back_under(&lease, &reason);
                failure_outcome(end, reason)
            }
            Ok(_) => DeliveryOutcome::RollbackFailed {
                reason: format!(
                    "{reason}; another run changed the ledger meanwhile, so this run did not roll back"
                ),
            },
            Err(why) => DeliveryOutcome::RollbackFailed {
                reason: format!("{reason}; cannot take it back to roll back ({why})"),
            },
        }
    }

    /// Tries once: waiting would let this agent deploy over whoever holds it now.
    fn retake_lock(&self) -> Result<Lease, LockError> {
        let request = LockRequest::new(
            &self.request.pipeline,
            &self.request.promote.environment,
            &self.request.run_id,
            Duration::ZERO,
        );
        self.request.store.lock(&request)
    }

    /// Whether the ledger, read again under the new lease, still ends with this run's deploy
    /// of this digest: then nobody deployed or rolled back in between.
    fn still_ours(&mut self) -> bool {
        let Ok(ledger) = load_ledger(self.request) else {
            return false;
        };
        let ours = ledger.latest().is_some_and(|release| {
            release.run == self.request.run_id
                && release.digest == self.request.artifact.digest
                && release.status == ReleaseStatus::Deploying
        });
        if ours {
            self.ledger = ledger;
        }
        ours
    }

    /// Best effort: the audit chain may live on the server that just dropped us.
    fn audit_lost(&self, reason: &str, retaken: &Result<Lease, LockError>, rolling_back: bool) {
        let artifact = &self.request.artifact;
        let fields = json!({
            "version": artifact.version,
            "digest": artifact.digest,
            "token": self.lease.token(),
            "retaken_token": retaken.as_ref().ok().map(Lease::token),
            "rolling_back": rolling_back,
            "reason": reason,
            "summary": reason,
        });
        if let Err(why) = self.log(AuditEvent::LockLost, fields) {
            self.host.say(&format!("error: {why}"));
        }
    }
}
