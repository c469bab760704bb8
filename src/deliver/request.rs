//! What one promote (or a rollback by hand) is asked to do, and the helpers every part of
//! the delivery flow shares: the step context, audit appends for the environment, timestamps.

use crate::audit::{AuditEvent, AuditLog};
use crate::compile::plan::{EnvironmentPlan, PromotePlan};
use crate::deliver::host::StepContext;
use crate::deliver::ledger::Release;
use crate::run::artifact::Mismatch;
use crate::run::eval::Bindings;
use crate::store::{Artifacts, Store, StoreError};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// The stored immutable artifact a promote deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    pub name: String,
    /// `sha256:HEX`
    pub digest: String,
    /// The stored copy in the artifact store, never the build-tree path.
    pub path: String,
    pub version: String,
}

impl ArtifactRef {
    /// The stored artifact a ledger entry deployed, found by its digest.
    pub fn stored(release: &Release, artifacts: &dyn Artifacts) -> ArtifactRef {
        ArtifactRef {
            name: release.artifact.clone(),
            digest: release.digest.clone(),
            path: artifacts.local_path(&release.digest).display().to_string(),
            version: release.version.clone(),
        }
    }
}

/// Approval input of this attempt: who approves now (from `--approve ENV` and the approver
/// flags), and who started the run.
#[derive(Debug, Clone, Default)]
pub struct ApprovalInput {
    /// Set when `--approve` names this environment: the resolved approver.
    pub approver: Option<String>,
    /// Who else the runner has recorded as approving this environment already.
    pub granted: Vec<String>,
    pub initiator: Option<String>,
    /// Who a terminal prompt approves as (`--approver`, `$PIPE_APPROVER`, `$USER`), whether or
    /// not `--approve` named this environment.
    pub default_approver: Option<String>,
    /// A terminal is attached and may be asked.
    pub interactive: bool,
}

/// Everything one promote needs.
#[derive(Debug, Clone)]
pub struct DeliveryRequest {
    pub pipeline: String,
    pub promote: PromotePlan,
    pub environments: BTreeMap<String, EnvironmentPlan>,
    pub run_id: String,
    /// Shared state: ledger, locks, delivery records, audit; and the artifact store.
    pub store: Store,
    pub artifact: ArtifactRef,
    /// git.*, run.id, pipeline.*, jobs.* — the engine adds env.*, artifact.*, rollout.*, previous.*.
    pub bindings: Bindings,
    pub approval: ApprovalInput,
    pub lock_timeout: Duration,
    /// Who the audit log names for the run's own actions.
    pub actor: String,
}

/// The delivery flow could not read or record its own state; the action it guards does not
/// happen. The message becomes the reason of the promote's outcome.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot read the ledger for {environment}: {source}")]
    LedgerUnreadable {
        environment: String,
        source: StoreError,
    },
    #[error("cannot write the ledger: {0}")]
    LedgerUnwritable(#[source] StoreError),
    #[error("cannot write the audit log for {environment}: {source}")]
    AuditUnwritable {
        environment: String,
        source: io::Error,
    },
    #[error("cannot write the audit log before {event}: {source}")]
    AuditUnwritableBefore {
        event: AuditEvent,
        source: io::Error,
    },
    /// Another environment's ledger, read to check staging first.
    #[error("cannot read the ledger of {environment}: {source}")]
    OtherLedgerUnreadable {
        environment: String,
        source: StoreError,
    },
    #[error("cannot mark the ledger rolling_back: {0}")]
    LedgerUnmarkable(#[source] StoreError),
    #[error("cannot save the delivery record: {0}")]
    RecordUnsaved(#[source] StoreError),
    #[error(
        "{version} was rolled back from {environment} earlier in this run because it failed; resuming will not deploy it again \
         (fix the release and start a new run, or `pipe rollback` by hand)"
    )]
    RolledBackByThisRun {
        version: String,
        environment: String,
    },
    /// `unprotected` lists the unprotected environments, or says none is declared.
    #[error(
        "{environment} is protected and refuses {digest} ({version}): no unprotected environment ({unprotected}) holds it as stable; promote it there first"
    )]
    StagingFirst {
        environment: String,
        digest: String,
        version: String,
        unprotected: String,
    },
    /// The stored copy cannot be used; `action` is what was refused ("deploy", "roll back to").
    #[error("{source}; refusing to {action} it")]
    ArtifactRefused {
        action: &'static str,
        source: ArtifactFault,
    },
    #[error(
        "artifact {artifact} was not produced in run {run} (nothing to promote to {environment})"
    )]
    ArtifactNotProduced {
        artifact: String,
        run: String,
        environment: String,
    },
    #[error("the stored copy of {artifact} ({digest}) is missing at {path}")]
    StoredCopyMissing {
        artifact: String,
        digest: String,
        path: String,
    },
    #[error("the stored artifact of {version} ({digest}) is missing at {path}")]
    RollbackTargetMissing {
        version: String,
        digest: String,
        path: String,
    },
}

/// Why a stored artifact failed its re-hash before use.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactFault {
    #[error(transparent)]
    Changed(Mismatch),
    #[error("the stored artifact at {path} ({digest}) could not be verified: {source}")]
    Unreadable {
        path: String,
        digest: String,
        source: io::Error,
    },
}

/// Appends an event for the promote's environment; the error stops the action it guards.
pub(crate) fn log_event(
    audit: &AuditLog,
    request: &DeliveryRequest,
    actor: &str,
    event: AuditEvent,
    fields: serde_json::Value,
) -> Result<(), DeliveryError> {
    let mut fields = fields;
    if let Some(object) = fields.as_object_mut() {
        object.insert(
            "environment".into(),
            request.promote.environment.clone().into(),
        );
    }
    audit
        .append(&request.run_id, event, actor, fields)
        .map_err(|source| DeliveryError::AuditUnwritableBefore { event, source })
}

/// `env.*`, `artifact.*` and the `PIPE_*` variables shared by every promote step.
pub(crate) fn base_context(request: &DeliveryRequest, artifact: &ArtifactRef) -> StepContext {
    let environment = &request.promote.environment;
    let mut bindings = request.bindings.clone();
    bind_environment(&mut bindings, &request.environments, environment);
    bindings.set_string("artifact.path", artifact.path.clone());
    bindings.set_string("artifact.digest", artifact.digest.clone());
    bindings.set_string("artifact.version", artifact.version.clone());
    let variables = BTreeMap::from([
        ("PIPE_ENVIRONMENT".to_string(), environment.clone()),
        ("PIPE_ARTIFACT".to_string(), artifact.path.clone()),
    ]);
    StepContext {
        bindings,
        variables,
    }
}

/// `env.KEY` for each attribute of `environment`, and `env.name`: what a promote's or a
/// drill's steps may read of the environment they act on.
pub(crate) fn bind_environment(
    bindings: &mut Bindings,
    environments: &BTreeMap<String, EnvironmentPlan>,
    environment: &str,
) {
    if let Some(plan) = environments.get(environment) {
        for (key, value) in &plan.attributes {
            bindings.set(format!("env.{key}"), value.clone());
        }
    }
    bindings.set_string("env.name", environment.to_string());
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
