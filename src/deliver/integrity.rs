//! The check every use of a stored artifact passes first: re-hash the copy about to be deployed
//! or rolled back to, and refuse (audited as `artifact_verification_failed`) when it changed.

use crate::audit::{AuditEvent, AuditLog};
use crate::deliver::request::{ArtifactFault, DeliveryError, DeliveryRequest, log_event};
use crate::run::artifact::VerifyError;
use crate::store::Artifacts;
use serde_json::json;
use std::path::Path;

/// Whether the stored copy of `digest` can be looked for at `path`: present there, or brought
/// there now by a remote store. A copy that exists but cannot be fetched or verified counts as
/// present, so that [`verify_before_use`] refuses it with the reason.
pub(crate) fn stored_copy_present(artifacts: &dyn Artifacts, path: &str, digest: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    !matches!(
        artifacts.materialise(digest),
        Err(VerifyError::Mismatch(mismatch)) if mismatch.found == "nothing"
    )
}

/// `Ok` when the stored object of `digest` (at `path` locally; a remote store fetches it there
/// first) still hashes to `digest`. Otherwise the refusal is appended to
/// the audit log and returned, naming the expected and the found digest; `action`
/// says what was refused ("deploy", "roll back to").
pub(crate) fn verify_before_use(
    audit: &AuditLog,
    request: &DeliveryRequest,
    actor: &str,
    action: &'static str,
    path: &str,
    digest: &str,
) -> Result<(), DeliveryError> {
    let (fault, mut fields) = match request.store.artifacts().materialise(digest) {
        Ok(_) => return Ok(()),
        Err(VerifyError::Mismatch(mismatch)) => {
            let fields = mismatch.audit_fields();
            (ArtifactFault::Changed(mismatch), fields)
        }
        Err(VerifyError::Io(error)) => {
            let fields =
                json!({"digest": digest, "found": format!("unreadable: {error}"), "path": path});
            let fault = ArtifactFault::Unreadable {
                path: path.to_string(),
                digest: digest.to_string(),
                source: error,
            };
            (fault, fields)
        }
    };
    fields["action"] = json!(format!("refused to {action} it"));
    fields["summary"] = json!(fault.to_string());
    log_event(
        audit,
        request,
        actor,
        AuditEvent::ArtifactVerificationFailed,
        fields,
    )?;
    Err(DeliveryError::ArtifactRefused {
        action,
        source: fault,
    })
}
