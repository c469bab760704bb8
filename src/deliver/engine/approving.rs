//! Step 4 of §11 inside a promote: counting approvals against the policy, auditing grants
//! and refusals, asking on a terminal, and stopping (exit 3) until the quorum is met.

use super::{DeliveryOutcome, Promotion};
use crate::audit::AuditEvent;
use crate::compile::plan::ApprovalPlan;
use crate::deliver::approval;
use crate::deliver::host::ApprovalPrompt;
use crate::deliver::request::{DeliveryError, log_event};
use crate::run::state::NodeStatus;
use serde_json::json;

impl Promotion<'_> {
    /// Step 4 of §11. `Ok(true)`: approved (or no approval block); `Ok(false)`: the quorum is
    /// not met yet.
    pub(crate) fn approve(&mut self) -> Result<bool, DeliveryError> {
        let Some(policy) = self.request.promote.approval.clone() else {
            return Ok(true);
        };
        let node = self.node_id("approval");
        self.merge_granted();
        self.count_recorded(&policy)?;
        if let Some(approver) = self.request.approval.approver.clone() {
            self.consider(&policy, &approver)?;
        }
        if !self.quorum_met(&policy) && self.request.approval.interactive {
            self.ask_on_terminal(&policy)?;
        }
        let met = self.quorum_met(&policy);
        if met {
            self.host
                .node_transition(&node, NodeStatus::Succeeded, None);
        }
        self.record
            .save(&self.request.store, &self.request.run_id)
            .map_err(DeliveryError::RecordUnsaved)?;
        Ok(met)
    }

    fn merge_granted(&mut self) {
        for name in &self.request.approval.granted {
            if !self.record.approvals.contains(name) {
                self.record.approvals.push(name.clone());
            }
        }
    }

    /// Approvals recorded by `pipe approve` for this run's promote: taken once (marked consumed
    /// by this attempt, so no other attempt counts them again) and checked against the policy
    /// again. They were audited as granted when recorded; only a refusal now is audited.
    fn count_recorded(&mut self, policy: &ApprovalPlan) -> Result<(), DeliveryError> {
        let attempt = format!(
            "{}@{}",
            self.request.run_id,
            crate::run::state::now_rfc3339()
        );
        let recorded = self
            .request
            .store
            .state()
            .consume_approvals(
                &self.request.run_id,
                &self.request.promote.environment,
                &attempt,
            )
            .map_err(DeliveryError::RecordUnsaved)?;
        let initiator = self.request.approval.initiator.clone();
        for approval in recorded {
            let approver = approval.approver;
            match approval::evaluate(
                policy,
                initiator.as_deref(),
                &self.record.approvals,
                &approver,
            ) {
                Ok(accepted) => {
                    self.record.approvals.push(approver.clone());
                    self.host.say(&format!(
                        "[{}] approved by {approver} via {} ({}/{})",
                        self.node_id("approval"),
                        approval.source,
                        accepted.count,
                        accepted.quorum
                    ));
                }
                Err(approval::Refusal::AlreadyApproved { .. }) => {}
                Err(refusal) => {
                    log_event(
                        self.audit,
                        self.request,
                        &approver,
                        AuditEvent::ApprovalRefused,
                        json!({"reason": refusal.to_string(), "source": approval.source}),
                    )?;
                    self.host
                        .say(&format!("error: approval refused: {refusal}"));
                }
            }
        }
        Ok(())
    }

    fn quorum_met(&self, policy: &ApprovalPlan) -> bool {
        self.record.approvals.len() as u32 >= approval::quorum(policy)
    }

    /// Counts one approver, or audits the refusal; a refusal changes nothing else.
    fn consider(&mut self, policy: &ApprovalPlan, approver: &str) -> Result<(), DeliveryError> {
        let initiator = self.request.approval.initiator.as_deref();
        match approval::evaluate(policy, initiator, &self.record.approvals, approver) {
            Ok(accepted) => {
                log_event(
                    self.audit,
                    self.request,
                    approver,
                    AuditEvent::ApprovalGranted,
                    json!({
                        "version": self.request.artifact.version,
                        "digest": self.request.artifact.digest,
                        "approvals": accepted.count,
                        "quorum": accepted.quorum,
                    }),
                )?;
                self.record.approvals.push(approver.to_string());
                self.host.say(&format!(
                    "[{}] approved by {approver} ({}/{})",
                    self.node_id("approval"),
                    accepted.count,
                    accepted.quorum
                ));
            }
            Err(refusal)
                if refusal
                    == approval::Refusal::AlreadyApproved {
                        approver: approver.to_string(),
                    } =>
            {
                self.host.say(&format!("note: {refusal}"));
            }
            Err(refusal) => {
                log_event(
                    self.audit,
                    self.request,
                    approver,
                    AuditEvent::ApprovalRefused,
                    json!({"reason": refusal.to_string()}),
                )?;
                self.host
                    .say(&format!("error: approval refused: {refusal}"));
            }
        }
        Ok(())
    }

    fn ask_on_terminal(&mut self, policy: &ApprovalPlan) -> Result<(), DeliveryError> {
        let Some(approver) = self.request.approval.default_approver.clone() else {
            return Ok(());
        };
        let prompt = self.approval_prompt(approver.clone());
        if self.host.ask_approval(&prompt) == Some(true) {
            self.consider(policy, &approver)?;
        }
        Ok(())
    }

    fn approval_prompt(&self, approver: String) -> ApprovalPrompt {
        let artifact = &self.request.artifact;
        let (previous, changes) = match &self.previous {
            Some(release) => (
                format!("{} ({})", release.version, release.digest),
                vec![
                    format!("version {} → {}", release.version, artifact.version),
                    format!(
                        "digest {} → {}",
                        short(&release.digest),
                        short(&artifact.digest)
                    ),
                ],
            ),
            None => (
                "none (first release: a failure cannot be rolled back)".to_string(),
                vec![format!("first release of {}", artifact.name)],
            ),
        };
        ApprovalPrompt {
            environment: self.request.promote.environment.clone(),
            version: artifact.version.clone(),
            digest: artifact.digest.clone(),
            previous,
            changes,
            approver,
        }
    }

    pub(crate) fn await_approval(&mut self) -> DeliveryOutcome {
        let node = self.node_id("approval");
        let policy = self.request.promote.approval.clone();
        let needed = policy.as_ref().map_or(1, approval::quorum);
        let message = format!(
            "{} of {needed} approvals for {}",
            self.record.approvals.len(),
            self.request.promote.environment
        );
        self.host
            .node_transition(&node, NodeStatus::AwaitingApproval, Some(&message));
        DeliveryOutcome::AwaitingApproval {
            approvals: self.record.approvals.clone(),
        }
    }
}

/// `sha256:0123456789ab`: enough to tell two releases apart in a prompt.
fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}
