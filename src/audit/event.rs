//! Event: [`AuditEvent`], every kind of record the audit log holds, and the exact JSON name
//! each is stored under (the names are part of the log format and never change).

use std::fmt;
use std::str::FromStr;

/// Declares the enum, its list of every variant and its JSON names from one table, so a name
/// cannot be added to one without the others.
macro_rules! audit_events {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// The kind of an audit record. A record read back keeps its name as a string
        /// ([`super::AuditRecord::event`]); [`super::AuditRecord::kind`] parses it, and a name
        /// no variant knows (from another version of pipe) is still shown and verified.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AuditEvent {
            $($(#[$doc])* $variant,)+
        }

        impl AuditEvent {
            /// Every variant, in declaration order.
            pub const ALL: &'static [AuditEvent] = &[$(AuditEvent::$variant,)+];

            /// The name stored in a record's `event` key.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditEvent::$variant => $name,)+
                }
            }
        }
    };
}

audit_events! {
    /// A run began (or resumed).
    RunStarted => "run_started",
    /// A run ended, with its outcome.
    RunFinished => "run_finished",
    /// `pipe resume --force` resumed a run whose plan or state was questioned.
    ResumeForced => "resume_forced",
    /// `pipe gc` removed finished runs and artifacts no ledger references.
    GcFinished => "gc_finished",
    GatePassed => "gate_passed",
    GateFailed => "gate_failed",
    /// A failed gate was let through, with a reason and an approver.
    GateOverridden => "gate_overridden",
    ArtifactStored => "artifact_stored",
    /// A stored artifact no longer matched its digest.
    ArtifactVerificationFailed => "artifact_verification_failed",
    LockAcquired => "lock_acquired",
    /// The rollback target, decided before anything deploys.
    PreviousStableRecorded => "previous_stable_recorded",
    StagingFirstRefused => "staging_first_refused",
    ApprovalGranted => "approval_granted",
    ApprovalRefused => "approval_refused",
    MigrationStarted => "migration_started",
    DeployStarted => "deploy_started",
    SmokeFailed => "smoke_failed",
    WatchSample => "watch_sample",
    WatchWarning => "watch_warning",
    DeploymentPromoted => "deployment_promoted",
    /// A release left `deploying` by a run that died, marked failed.
    ReleaseAbandoned => "release_abandoned",
    /// A promotion that happened but could not be written to the ledger.
    ReleaseUnrecorded => "release_unrecorded",
    /// A promote's holder lost its environment lock mid-deploy (the backend dropped it): it
    /// stopped deploying; the record says whether it could take the lock back to roll back.
    LockLost => "lock_lost",
    /// A promote interrupted after its deploy began, deployed again on resume.
    RepromoteAfterInterrupt => "repromote_after_interrupt",
    /// `pipe rollback` by hand.
    RollbackRequested => "rollback_requested",
    /// A watch rule or a failed step started a rollback.
    RollbackTriggered => "rollback_triggered",
    RollbackStarted => "rollback_started",
    /// A rollback interrupted earlier, carried on by a resume.
    RollbackResumed => "rollback_resumed",
    RollbackSkipped => "rollback_skipped",
    RollbackFinished => "rollback_finished",
    /// Reported by `pipe evidence` when a log holds it; this version of pipe does not write it.
    RollbackFailed => "rollback_failed",
    RecoveryVerified => "recovery_verified",
    RecoveryFailed => "recovery_failed",
    DrillStarted => "drill_started",
    DrillFinished => "drill_finished",
    /// Written by the log itself when it finds a tail torn by an interrupted write.
    LogRecovered => "log_recovered",
}

/// A record's `event` name that no [`AuditEvent`] has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEvent(pub String);

impl fmt::Display for UnknownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown audit event `{}`", self.0)
    }
}

impl std::error::Error for UnknownEvent {}

impl FromStr for AuditEvent {
    type Err = UnknownEvent;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        AuditEvent::ALL
            .iter()
            .copied()
            .find(|event| event.as_str() == name)
            .ok_or_else(|| UnknownEvent(name.to_string()))
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_name_reads_back_as_its_variant() {
        for &event in AuditEvent::ALL {
            assert_eq!(event.as_str().parse::<AuditEvent>(), Ok(event));
            assert_eq!(event.to_string(), event.as_str());
        }
    }

    #[test]
    fn names_are_distinct_snake_case() {
        let names: BTreeSet<&str> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), AuditEvent::ALL.len());
        for name in names {
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_that_names_it() {
        let error = "deploy_startd".parse::<AuditEvent>().unwrap_err();
        assert_eq!(error.to_string(), "unknown audit event `deploy_startd`");
    }
}
