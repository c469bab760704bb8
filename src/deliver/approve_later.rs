//! `pipe approve`: an approval recorded for a stopped run's promote without running anything,
//! checked against the plan's policy now (and again when a later promote consumes it), audited.

use crate::audit::AuditEvent;
use crate::deliver::approval::{self, Refusal};
use crate::deliver::record::DeliveryRecord;
use crate::run::state::{RunDir, now_rfc3339};
use crate::store::{ApprovalRecord, Store, StoreError};
use serde_json::json;
use sha2::Digest;
use std::path::Path;

/// What `pipe approve` was asked to record.
#[derive(Debug, Clone)]
pub struct ApproveRequest {
    pub run: String,
    pub environment: String,
    pub approver: String,
    pub source: String,
    pub evidence: Option<std::path::PathBuf>,
}

/// How many approvals the promote has now, of how many it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub count: u32,
    pub quorum: u32,
}

/// Why nothing was recorded (exit 2: the request, not the run, is at fault).
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("no run `{run}` with a plan in {state}")]
    NoSuchRun { run: String, state: String },
    #[error("run {run} has no promote to `{environment}`{hint}")]
    NoSuchPromote {
        run: String,
        environment: String,
        hint: String,
    },
    #[error("the promote to {environment} needs no approval (its plan has no approval block)")]
    NoApprovalNeeded { environment: String },
    #[error("approval refused: {0}")]
    Refused(Refusal),
    #[error("cannot read the evidence file {file}: {source}")]
    Evidence {
        file: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot write the audit log: {0}")]
    Audit(std::io::Error),
}

/// Checks `request` against the run's plan and the approvals so far, then records and audits
/// it. A refusal by the policy is audited too (`approval_refused`) and records nothing.
pub fn record(store: &Store, request: &ApproveRequest) -> Result<Recorded, ApproveError> {
    let run = RunDir::new(store, &request.run);
    let plan = run.load_plan()?.ok_or_else(|| ApproveError::NoSuchRun {
        run: request.run.clone(),
        state: store.describe(),
    })?;
    let Some(promote) = plan.promotes.get(&request.environment) else {
        let hint = crate::diagnostics::suggest(
            &request.environment,
            plan.promotes.keys().map(String::as_str),
        )
        .map(|near| format!("; did you mean `{near}`?"))
        .unwrap_or_default();
        return Err(ApproveError::NoSuchPromote {
            run: request.run.clone(),
            environment: request.environment.clone(),
            hint,
        });
    };
    let Some(policy) = &promote.approval else {
        return Err(ApproveError::NoApprovalNeeded {
            environment: request.environment.clone(),
        });
    };
    let initiator = initiator_of(store, &run)?;
    let granted = granted_so_far(store, request)?;
    let audit = store.audit()?;
    let accepted = match approval::evaluate(
        policy,
        initiator.as_deref(),
        &granted,
        &request.approver,
    ) {
        Ok(accepted) => accepted,
        // A repeated approval changes nothing and, as on `--approve`, is not a refusal.
        Err(refusal @ Refusal::AlreadyApproved { .. }) => {
            return Err(ApproveError::Refused(refusal));
        }
        Err(refusal) => {
            let fields = json!({"environment": request.environment, "reason": refusal.to_string(),
                                "source": request.source});
            audit
                .append(
                    &request.run,
                    AuditEvent::ApprovalRefused,
                    &request.approver,
                    fields,
                )
                .map_err(ApproveError::Audit)?;
            return Err(ApproveError::Refused(refusal));
        }
    };
    let evidence_digest = request.evidence.as_deref().map(digest_of).transpose()?;
    let record = ApprovalRecord {
        approver: request.approver.clone(),
        source: request.source.clone(),
        evidence_digest: evidence_digest.clone(),
        at: now_rfc3339(),
        consumed_by: None,
    };
    // Audited first: the chain never misses an approval a promote could count.
    let fields = json!({
        "environment": request.environment,
        "source": request.source,
        "evidence_digest": evidence_digest,
        "approvals": accepted.count,
        "quorum": accepted.quorum,
        "recorded_by": "pipe approve",
    });
    audit
        .append(
            &request.run,
            AuditEvent::ApprovalGranted,
            &request.approver,
            fields,
        )
        .map_err(ApproveError::Audit)?;
    store
        .state()
        .record_approval(&request.run, &request.environment, &record)?;
    Ok(Recorded {
        count: accepted.count,
        quorum: accepted.quorum,
    })
}

/// Who started the run: the shared header's initiator, else the stored state's.
fn initiator_of(store: &Store, run: &RunDir) -> Result<Option<String>, StoreError> {
    if let Some(header) = store.state().read_run_header(run.id())? {
        return Ok(Some(header.initiator));
    }
    Ok(run.load_state()?.map(|state| state.initiator))
}

/// Distinct approvers counted or recorded for this promote so far.
fn granted_so_far(store: &Store, request: &ApproveRequest) -> Result<Vec<String>, StoreError> {
    let record = DeliveryRecord::load_or_new(store, &request.run, &request.environment);
    let mut granted = record.approvals;
    for approval in store
        .state()
        .approvals(&request.run, &request.environment)?
    {
        if !granted.contains(&approval.approver) {
            granted.push(approval.approver);
        }
    }
    Ok(granted)
}

fn digest_of(path: &Path) -> Result<String, ApproveError> {
    let bytes = std::fs::read(path).map_err(|source| ApproveError::Evidence {
        file: path.display().to_string(),
        source,
    })?;
    Ok(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(&bytes))
    ))
}
