//! The check every use of a stored artifact passes first: re-hash the copy about to be deployed
//! or rolled back to, and refuse (audited as `artifact_verification_failed`) when it changed.

use crate::audit::{AuditEvent, AuditLog};
use crate::deliver::request::{ArtifactFault, DeliveryError, DeliveryRequest, log_event};
use crate::run::artifact::{VerifyError, verify_path};
use serde_json::json;
use std::path::Path;

/// `Ok` when the object at `path` still hashes to `digest`. Otherwise the refusal is appended to
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
    let (fault, mut fields) = match verify_path(Path::new(path), digest) {
        Ok(()) => return Ok(()),
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
