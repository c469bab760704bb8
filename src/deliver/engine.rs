//! The promote flow of SPEC §11, in order: lock → previous stable (audited before any deploy)
//! → staging first → approval → migrate → per rollout step deploy, smoke, watch for `pause`
//! → final watch → record. Any failure or interrupt after the deploy began goes to `recovery`.

mod approving;
mod lost_lock;
mod watching;

use crate::audit::{AuditEvent, AuditLog};
use crate::compile::plan::{Literal, PromotePlan, StepBlockPlan, promote_node_id};
use crate::deliver::host::{BlockResult, PromoteHost, StepContext};
use crate::deliver::integrity;
use crate::deliver::ledger::{Ledger, Release, ReleaseStatus};
use crate::deliver::record::{DeliveryRecord, PromoteEnd};
use crate::deliver::recovery::{Recovery, RecoveryEnd};
use crate::deliver::request::{
    ArtifactRef, DeliveryError, DeliveryRequest, base_context, log_event, now,
};
use crate::run::state::NodeStatus;
use crate::store::{Lease, LeaseLost, LockError, LockRequest};
use serde_json::json;
use std::time::Duration;
use watching::{WatchEnd, watch_for};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Succeeded,
    /// Nothing is left half-done: either nothing was deployed or the rollback was verified.
    Failed {
        rolled_back: bool,
        reason: String,
    },
    /// The rollback or its verification failed: the environment's state is unknown.
    RollbackFailed {
        reason: String,
    },
    AwaitingApproval {
        approvals: Vec<String>,
    },
    /// Stopped by a signal; any deploy that had begun was rolled back and verified.
    Interrupted,
}

/// Runs one promote to the end and says how it ended. Never panics on user input; IO errors
/// of the ledger or audit log stop the promote before the action they would have recorded.
pub fn promote(
    request: &DeliveryRequest,
    host: &dyn PromoteHost,
    audit: &AuditLog,
) -> DeliveryOutcome {
    let lease = match take_lock(request, host) {
        Ok(held) => held,
        Err(LockError::Interrupted { .. }) => return DeliveryOutcome::Interrupted,
        Err(error) => return refuse(host, &request.promote, error.to_string()),
    };
    if let Err(outcome) = finish_unfinished_rollback(request, host, audit, &lease) {
        return outcome;
    }
    let mut promotion = match Promotion::start(request, host, audit, &lease) {
        Ok(promotion) => promotion,
        Err(error) => return refuse(host, &request.promote, error.to_string()),
    };
    let outcome = promotion.run();
    promotion.finish(&outcome);
    outcome
}

/// Before anything else, a rollback a crash left `rolling_back` is re-run to its recorded
/// target and verified: the new release's rollback target must be what actually serves.
fn finish_unfinished_rollback(
    request: &DeliveryRequest,
    host: &dyn PromoteHost,
    audit: &AuditLog,
    lease: &Lease,
) -> Result<(), DeliveryOutcome> {
    let environment = &request.promote.environment;
    let mut ledger =
        load_ledger(request).map_err(|error| refuse(host, &request.promote, error.to_string()))?;
    if let Some(unknown) = ledger.unknown_state() {
        host.say(&format!(
            "warning: [{environment}] the environment's state is unknown: {unknown}"
        ));
    }
    let recovery = Recovery {
        request,
        host,
        audit,
        lease,
        actor: &request.actor,
    };
    match recovery.finish_unfinished(&mut ledger) {
        None | Some(RecoveryEnd::Verified) => Ok(()),
        Some(RecoveryEnd::Skipped) => Err(refuse(
            host,
            &request.promote,
            format!(
                "{environment}: an unfinished rollback has no target in the ledger; its state is unknown"
            ),
        )),
        Some(RecoveryEnd::Failed(reason)) => Err(DeliveryOutcome::RollbackFailed { reason }),
    }
}

/// Takes the environment's lock, saying once who holds it when it has to wait.
pub(crate) fn take_lock(
    request: &DeliveryRequest,
    host: &dyn PromoteHost,
) -> Result<Lease, LockError> {
    let environment = &request.promote.environment;
    let mut lock = LockRequest::new(
        &request.pipeline,
        environment,
        &request.run_id,
        Duration::ZERO,
    );
    match request.store.lock(&lock) {
        Err(LockError::Busy { holder, .. }) if !request.lock_timeout.is_zero() => {
            let who = holder.map_or("another run".to_string(), |h| {
                format!("run {} (pid {})", h.run, h.pid)
            });
            host.say(&format!(
                "[{environment}] waiting up to {} for the lock held by {who}",
                crate::deliver::probe_value::format_duration(
                    request.lock_timeout.as_millis() as u64
                )
            ));
            let interrupted = || host.interrupted();
            lock.timeout = request.lock_timeout;
            request.store.lock_unless(&lock, &interrupted)
        }
        other => other,
    }
}

/// Ends a promote that deployed nothing: its first node fails with the reason.
fn refuse(host: &dyn PromoteHost, promote: &PromotePlan, reason: String) -> DeliveryOutcome {
    host.say(&format!("error: {reason}"));
    if let Some(first) = promote.nodes.first() {
        host.node_transition(first, NodeStatus::Failed, Some(&reason));
    }
    DeliveryOutcome::Failed {
        rolled_back: false,
        reason,
    }
}

/// One promote in progress, holding the lock (in the caller), the ledger and its record.
struct Promotion<'a> {
    request: &'a DeliveryRequest,
    host: &'a dyn PromoteHost,
    audit: &'a AuditLog,
    ledger: Ledger,
    record: DeliveryRecord,
    /// The environment's lock: every ledger write presents it.
    lease: &'a Lease,
    previous: Option<Release>,
    /// How this run's earlier attempt at the promote ended (`interrupted`, `rolled_back`, …).
    earlier_outcome: Option<PromoteEnd>,
}

/// Why the forward path stopped.
enum Stop {
    /// A step failed or a watch rule fired: roll back.
    Failed(String),
    Interrupted,
    /// Ledger or audit IO failed before the action it guards.
    Broken(DeliveryError),
    /// The backend no longer holds this promote's lock: deploy nothing more.
    LockLost(LeaseLost),
}

impl<'a> Promotion<'a> {
    fn start(
        request: &'a DeliveryRequest,
        host: &'a dyn PromoteHost,
        audit: &'a AuditLog,
        lease: &'a Lease,
    ) -> Result<Promotion<'a>, DeliveryError> {
        let environment = &request.promote.environment;
        audit
            .append(
                &request.run_id,
                AuditEvent::LockAcquired,
                &request.actor,
                json!({"environment": environment}),
            )
            .map_err(|source| DeliveryError::AuditUnwritable {
                environment: environment.clone(),
                source,
            })?;
        let mut ledger = load_ledger(request)?;
        abandon_stale_deploys(&mut ledger, request, audit, lease)?;
        let previous = ledger.previous_stable(&request.artifact.digest).cloned();
        let mut record = DeliveryRecord::load_or_new(&request.store, &request.run_id, environment);
        record.version = request.artifact.version.clone();
        record.digest = request.artifact.digest.clone();
        record.previous = previous.clone();
        let earlier_outcome = record.outcome.take();
        let promotion = Promotion {
            request,
            host,
            audit,
            lease,
            ledger,
            record,
            previous,
            earlier_outcome,
        };
        promotion.record_previous_stable()?;
        Ok(promotion)
    }

    /// Step 2 of §11: the rollback target is audited before anything is deployed.
    fn record_previous_stable(&self) -> Result<(), DeliveryError> {
        let previous = self.previous.as_ref();
        self.log(
            AuditEvent::PreviousStableRecorded,
            json!({
                "version": self.request.artifact.version,
                "digest": self.request.artifact.digest,
                "previous_version": previous.map(|r| r.version.clone()),
                "previous_digest": previous.map(|r| r.digest.clone()),
                "summary": match previous {
                    Some(r) => format!("rollback target {} ({})", r.version, r.digest),
                    None => "no previous stable release: a failure cannot be rolled back".to_string(),
                },
            }),
        )
    }

    fn run(&mut self) -> DeliveryOutcome {
        if let Err(reason) = self.check_not_rolled_back_by_this_run() {
            return self.refuse_before_deploy(reason);
        }
        if let Err(reason) = self.check_staging_first() {
            return self.refuse_before_deploy(reason);
        }
        match self.approve() {
            Ok(true) => {}
            // Ctrl-C at the approval prompt: nothing was approved or deployed.
            Ok(false) if self.host.interrupted() => return DeliveryOutcome::Interrupted,
            Ok(false) => return self.await_approval(),
            Err(reason) => return self.refuse_before_deploy(reason),
        }
        if let Err(reason) = self.verify_artifact() {
            return self.refuse_before_deploy(reason);
        }
        if let Err(reason) = self.begin_release() {
            return self.refuse_before_deploy(reason);
        }
        match self.deploy_and_watch().and_then(|()| self.ensure_lock()) {
            Ok(()) => {
                let outcome = self.record_stable();
                if matches!(outcome, DeliveryOutcome::Succeeded) {
                    self.finish_last_node();
                }
                outcome
            }
            Err(Stop::Broken(error)) => self.recover_from_failure(error.to_string()),
            Err(Stop::Failed(reason)) => self.recover_from_failure(reason),
            Err(Stop::Interrupted) => self.recover_from_interrupt(),
            Err(Stop::LockLost(lost)) => self.recover_from_lost_lock(lost),
        }
    }

    /// `pipe resume` re-runs what did not succeed; a promote whose watch or smoke already
    /// rolled this release back in this run must not deploy the same bad artifact again. A
    /// release rolled back only because the run was interrupted is not known bad: it is
    /// promoted again, deliberately and audited.
    fn check_not_rolled_back_by_this_run(&self) -> Result<(), DeliveryError> {
        let artifact = &self.request.artifact;
        let undone = self.ledger.releases().iter().any(|release| {
            release.run == self.request.run_id
                && release.digest == artifact.digest
                && release.status == ReleaseStatus::RolledBack
        });
        if !undone {
            return Ok(());
        }
        let environment = &self.request.promote.environment;
        if self.earlier_outcome == Some(PromoteEnd::Interrupted) {
            let summary = format!(
                "re-promoting {} to {environment}: this run's interrupt rolled it back, not a failure",
                artifact.version
            );
            self.host.say(&format!("[{environment}] {summary}"));
            return self.log(
                AuditEvent::RepromoteAfterInterrupt,
                json!({"version": artifact.version, "digest": artifact.digest, "summary": summary}),
            );
        }
        Err(DeliveryError::RolledBackByThisRun {
            version: artifact.version.clone(),
            environment: environment.clone(),
        })
    }

    fn refuse_before_deploy(&self, reason: DeliveryError) -> DeliveryOutcome {
        refuse(self.host, &self.request.promote, reason.to_string())
    }

    /// Step 3 of §11: a protected environment takes only a digest that an unprotected
    /// environment's ledger shows stable.
    fn check_staging_first(&self) -> Result<(), DeliveryError> {
        let request = self.request;
        if !request.promote.protected {
            return Ok(());
        }
        let unprotected: Vec<&String> = request
            .environments
            .iter()
            .filter(|(_, plan)| !plan.protected)
            .map(|(name, _)| name)
            .collect();
        for name in &unprotected {
            let ledger =
                Ledger::load(&request.store, &request.pipeline, name).map_err(|source| {
                    DeliveryError::OtherLedgerUnreadable {
                        environment: name.to_string(),
                        source,
                    }
                })?;
            if ledger.stable_digests().contains(&request.artifact.digest) {
                return Ok(());
            }
        }
        let names = unprotected
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let refusal = DeliveryError::StagingFirst {
            environment: request.promote.environment.clone(),
            digest: request.artifact.digest.clone(),
            version: request.artifact.version.clone(),
            unprotected: if names.is_empty() {
                "none declared".to_string()
            } else {
                names
            },
        };
        self.log(
            AuditEvent::StagingFirstRefused,
            json!({"reason": refusal.to_string()}),
        )?;
        Err(refusal)
    }

    fn begin_release(&mut self) -> Result<(), DeliveryError> {
        let now = now();
        let artifact = &self.request.artifact;
        self.ledger
            .begin(
                self.lease,
                Release {
                    version: artifact.version.clone(),
                    artifact: artifact.name.clone(),
                    digest: artifact.digest.clone(),
                    run: self.request.run_id.clone(),
                    started_at: now,
                    finished_at: None,
                    status: ReleaseStatus::Deploying,
                    note: None,
                    rollback_to: None,
                },
            )
            .map_err(DeliveryError::LedgerUnwritable)
    }

    fn deploy_and_watch(&mut self) -> Result<(), Stop> {
        self.ensure_lock()?;
        self.migrate()?;
        let rollout = self.request.promote.rollout.clone();
        for (index, weight) in rollout.steps.iter().enumerate() {
            let last = index + 1 == rollout.steps.len();
            self.ensure_lock()?;
            self.deploy_step(index + 1, *weight)?;
            self.smoke()?;
            if !last && rollout.pause_ms > 0 {
                self.watch(rollout.pause_ms, &format!("pause after {weight}%"))?;
            }
        }
        if let Some(watch) = &self.request.promote.watch {
            self.watch(watch.duration_ms, "watch")?;
        }
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), Stop> {
        let Some(migrate) = self.request.promote.migrate.clone() else {
            return Ok(());
        };
        let kind = format!("{:?}", migrate.kind).to_lowercase();
        self.log_stop(AuditEvent::MigrationStarted, json!({"kind": kind}))?;
        self.run_node("migrate", &migrate.block, self.forward_context(None))
    }

    /// The stored copy is re-hashed before each deploy: bytes changed since the build (or
    /// since the previous rollout step) are never deployed.
    fn verify_artifact(&self) -> Result<(), DeliveryError> {
        let artifact = &self.request.artifact;
        let actor = &self.request.actor;
        integrity::verify_before_use(
            self.audit,
            self.request,
            actor,
            "deploy",
            &artifact.path,
            &artifact.digest,
        )
    }

    fn deploy_step(&mut self, step: usize, weight: f64) -> Result<(), Stop> {
        // The first step was verified just before the release began.
        if step > 1
            && let Err(refusal) = self.verify_artifact()
        {
            let reason = refusal.to_string();
            let node = self.node_id("deploy");
            self.host
                .node_transition(&node, NodeStatus::Failed, Some(&reason));
            return Err(Stop::Failed(reason));
        }
        let artifact = &self.request.artifact;
        self.log_stop(
            AuditEvent::DeployStarted,
            json!({
                "version": artifact.version,
                "digest": artifact.digest,
                "rollout_step": step,
                "weight": weight,
                "summary": format!("deploying {} at {}%", artifact.version, weight),
            }),
        )?;
        let block = self.request.promote.deploy.clone();
        self.run_node("deploy", &block, self.forward_context(Some((step, weight))))
    }

    fn smoke(&mut self) -> Result<(), Stop> {
        let Some(smoke) = self.request.promote.smoke.clone() else {
            return Ok(());
        };
        let result = self.run_node("smoke", &smoke, self.forward_context(None));
        if let Err(Stop::Failed(reason)) = &result {
            self.log_stop(AuditEvent::SmokeFailed, json!({"reason": reason}))?;
        }
        result
    }

    fn watch(&mut self, duration_ms: u64, label: &str) -> Result<(), Stop> {
        let Some(plan) = self.request.promote.watch.clone() else {
            return self.wait(duration_ms);
        };
        let node = self.node_id("watch");
        self.host.node_transition(&node, NodeStatus::Running, None);
        self.host.say(&format!(
            "[{node}] {label}: watching for {}",
            crate::deliver::probe_value::format_duration(duration_ms)
        ));
        let context = self.forward_context(None);
        let end = watch_for(self, &plan, duration_ms, &context);
        let _ = self.record.save(&self.request.store, &self.request.run_id);
        match end {
            WatchEnd::Healthy => Ok(()),
            WatchEnd::Interrupted => Err(Stop::Interrupted),
            WatchEnd::LockLost(lost) => Err(Stop::LockLost(lost)),
            WatchEnd::Breached(decision) => {
                self.log_stop(
                    AuditEvent::RollbackTriggered,
                    json!({
                        "condition": decision.condition,
                        "observed": decision.observed,
                        "evidence": decision.evidence,
                        "summary": decision.evidence,
                    }),
                )?;
                let reason = format!(
                    "rollback when {}: {}",
                    decision.condition, decision.evidence
                );
                self.host
                    .node_transition(&node, NodeStatus::Failed, Some(&reason));
                Err(Stop::Failed(reason))
            }
        }
    }

    /// A pause without a watch block: wait, but stop at once on an interrupt.
    fn wait(&self, duration_ms: u64) -> Result<(), Stop> {
        let deadline = std::time::Instant::now() + Duration::from_millis(duration_ms);
        while std::time::Instant::now() < deadline {
            if self.host.interrupted() {
                return Err(Stop::Interrupted);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn run_node(
        &self,
        suffix: &str,
        block: &StepBlockPlan,
        context: StepContext,
    ) -> Result<(), Stop> {
        if self.host.interrupted() {
            return Err(Stop::Interrupted);
        }
        let node = self.node_id(suffix);
        self.host.node_transition(&node, NodeStatus::Running, None);
        match self.host.run_block(&node, block, &context) {
            BlockResult::Succeeded => {
                if !self.is_last_node(&node) {
                    self.host
                        .node_transition(&node, NodeStatus::Succeeded, None);
                }
                Ok(())
            }
            BlockResult::Failed(reason) => {
                self.host
                    .node_transition(&node, NodeStatus::Failed, Some(&reason));
                Err(Stop::Failed(format!("{node} failed: {reason}")))
            }
            BlockResult::Interrupted => {
                self.host
                    .node_transition(&node, NodeStatus::Interrupted, None);
                Err(Stop::Interrupted)
            }
        }
    }

    /// The promote's last node succeeds only once the release is recorded `stable`: the
    /// scheduler starts what comes after it (a protected environment's staging-first check
    /// reads the ledger) as soon as that node succeeds.
    fn finish_last_node(&self) {
        if let Some(last) = self.request.promote.nodes.last() {
            self.host.node_transition(last, NodeStatus::Succeeded, None);
        }
    }

    fn is_last_node(&self, node: &str) -> bool {
        self.request
            .promote
            .nodes
            .last()
            .is_some_and(|last| last == node)
    }

    fn node_id(&self, suffix: &str) -> String {
        promote_node_id(&self.request.promote.environment, suffix)
    }

    /// Bindings and variables of the forward path: `artifact.*` is the release being deployed.
    fn forward_context(&self, rollout: Option<(usize, f64)>) -> StepContext {
        let mut context = base_context(self.request, &self.request.artifact);
        let artifacts = self.request.store.artifacts();
        let previous_path = self
            .previous
            .as_ref()
            .map(|r| ArtifactRef::stored(r, artifacts.as_ref()).path)
            .unwrap_or_default();
        context
            .variables
            .insert("PIPE_PREVIOUS_ARTIFACT".to_string(), previous_path);
        if let Some((step, weight)) = rollout {
            context
                .bindings
                .set("rollout.weight", Literal::Number(weight));
            context
                .bindings
                .set("rollout.step", Literal::Number(step as f64));
            context
                .variables
                .insert("PIPE_ROLLOUT_WEIGHT".to_string(), format_weight(weight));
        }
        context
    }

    fn record_stable(&mut self) -> DeliveryOutcome {
        let artifact = &self.request.artifact;
        let marked = self.ledger.mark(
            self.lease,
            &self.request.run_id,
            &artifact.digest,
            ReleaseStatus::Stable,
            &now(),
        );
        if let Err(error) = marked {
            let reason = format!(
                "{} passed but the ledger could not record it as stable: {error}",
                artifact.version
            );
            self.host.say(&format!("error: {reason}"));
            // Best effort: on a full disk the audit log cannot take the reason either.
            if let Err(why) = self.log(AuditEvent::ReleaseUnrecorded, json!({"reason": reason})) {
                self.host.say(&format!("error: {why}"));
            }
            return DeliveryOutcome::RollbackFailed { reason };
        }
        let logged = self.log(
            AuditEvent::DeploymentPromoted,
            json!({
                "service": self.request.pipeline,
                "version": artifact.version,
                "digest": artifact.digest,
                "summary": format!("{} is stable", artifact.version),
            }),
        );
        // Stable in the ledger but not in the audit log: nothing may build on it unrecorded.
        if let Err(why) = logged {
            let reason = format!(
                "{} is stable in {}, but {why}",
                artifact.version, self.request.promote.environment
            );
            self.host.say(&format!("error: {reason}"));
            return DeliveryOutcome::Failed {
                rolled_back: false,
                reason,
            };
        }
        self.host.say(&format!(
            "[{}] {} is stable in {}",
            self.request.promote.environment, artifact.version, self.request.promote.environment
        ));
        DeliveryOutcome::Succeeded
    }

    /// A step failed or a watch rule fired: roll back to the previous stable release.
    fn recover_from_failure(&mut self, reason: String) -> DeliveryOutcome {
        let end = self.roll_back(&reason);
        failure_outcome(end, reason)
    }

    /// The run was interrupted after the deploy began: the rollback still runs and is
    /// verified, and the run then ends as interrupted.
    fn recover_from_interrupt(&mut self) -> DeliveryOutcome {
        // Saved before the rollback runs: a resume after a crash mid-rollback must know the
        // release was rolled back for the interrupt, not for a failure.
        self.record.outcome = Some(PromoteEnd::Interrupted);
        let _ = self.record.save(&self.request.store, &self.request.run_id);
        match self.roll_back("interrupted") {
            RecoveryEnd::Verified | RecoveryEnd::Skipped => DeliveryOutcome::Interrupted,
            RecoveryEnd::Failed(why) => DeliveryOutcome::RollbackFailed { reason: why },
        }
    }

    fn roll_back(&mut self, reason: &str) -> RecoveryEnd {
        let lease = self.lease;
        self.roll_back_under(lease, reason)
    }

    /// The rollback under `lease`: the promote's own, or the one taken again after it was lost.
    fn roll_back_under(&mut self, lease: &Lease, reason: &str) -> RecoveryEnd {
        let target = self.previous.clone();
        Recovery {
            request: self.request,
            host: self.host,
            audit: self.audit,
            lease,
            actor: &self.request.actor,
        }
        .roll_back(
            &mut self.ledger,
            &self.request.artifact,
            target.as_ref(),
            reason,
        )
    }

    fn finish(&mut self, outcome: &DeliveryOutcome) {
        let end = match outcome {
            DeliveryOutcome::Succeeded => PromoteEnd::Succeeded,
            DeliveryOutcome::Failed {
                rolled_back: true, ..
            } => PromoteEnd::RolledBack,
            DeliveryOutcome::Failed { .. } => PromoteEnd::Failed,
            DeliveryOutcome::RollbackFailed { .. } => PromoteEnd::RollbackFailed,
            DeliveryOutcome::AwaitingApproval { .. } => PromoteEnd::AwaitingApproval,
            DeliveryOutcome::Interrupted => PromoteEnd::Interrupted,
        };
        self.record.outcome = Some(end);
        if let Err(error) = self.record.save(&self.request.store, &self.request.run_id) {
            self.host.say(&format!(
                "warning: cannot save the delivery record: {error}"
            ));
        }
    }

    fn log(&self, event: AuditEvent, fields: serde_json::Value) -> Result<(), DeliveryError> {
        log_event(self.audit, self.request, &self.request.actor, event, fields)
    }

    fn log_stop(&self, event: AuditEvent, fields: serde_json::Value) -> Result<(), Stop> {
        self.log(event, fields).map_err(Stop::Broken)
    }
}

/// How a promote ends once a failure started its rollback.
fn failure_outcome(end: RecoveryEnd, reason: String) -> DeliveryOutcome {
    match end {
        RecoveryEnd::Verified => DeliveryOutcome::Failed {
            rolled_back: true,
            reason,
        },
        RecoveryEnd::Skipped => DeliveryOutcome::Failed {
            rolled_back: false,
            reason,
        },
        RecoveryEnd::Failed(why) => DeliveryOutcome::RollbackFailed { reason: why },
    }
}

/// The ledger of the promote's environment: read before the lock's first action and again
/// once the promote starts.
fn load_ledger(request: &DeliveryRequest) -> Result<Ledger, DeliveryError> {
    let environment = &request.promote.environment;
    Ledger::load(&request.store, &request.pipeline, environment).map_err(|source| {
        DeliveryError::LedgerUnreadable {
            environment: environment.clone(),
            source,
        }
    })
}

/// A `deploying` release left by a run that died (the lock is ours, so nobody else is
/// deploying): it is marked failed, and this attempt deploys afresh.
fn abandon_stale_deploys(
    ledger: &mut Ledger,
    request: &DeliveryRequest,
    audit: &AuditLog,
    lease: &Lease,
) -> Result<(), DeliveryError> {
    let stale: Vec<Release> = ledger
        .releases()
        .iter()
        .filter(|r| r.status == ReleaseStatus::Deploying)
        .cloned()
        .collect();
    for release in stale {
        log_event(
            audit,
            request,
            &request.actor,
            AuditEvent::ReleaseAbandoned,
            json!({
                "version": release.version,
                "digest": release.digest,
                "abandoned_run": release.run,
                "summary": format!("{} was left deploying by run {} (the process died); marked failed", release.version, release.run),
            }),
        )?;
        ledger
            .mark(
                lease,
                &release.run,
                &release.digest,
                ReleaseStatus::Failed,
                &now(),
            )
            .map_err(DeliveryError::LedgerUnwritable)?;
    }
    Ok(())
}

/// `10` for 10%, `12.5` for 12.5%.
fn format_weight(weight: f64) -> String {
    if weight.fract() == 0.0 {
        format!("{}", weight as i64)
    } else {
        format!("{weight}")
    }
}
