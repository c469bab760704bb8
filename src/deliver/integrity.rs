//! The check every use of a stored artifact passes first: re-hash the copy about to be deployed
//! or rolled back to, and refuse (audited as `artifact_verification_failed`) when it changed.

use crate::audit::{AuditEvent, AuditLog};
use crate::deliver::request::{DeliveryRequest, log_event};
use crate::run::artifact::{VerifyError, verify_path};
use serde_json::json;
use std::path::Path;

/// `Ok` when the object at `path` still hashes to `digest`. Otherwise the refusal is appended to
/// the audit log and returned as a message naming the expected and the found digest; `action`
/// says what was refused ("deploy", "roll back to").
pub(crate) fn verify_before_use(
    audit: &AuditLog,
    request: &DeliveryRequest,
    actor: &str,
    action: &str,
    path: &str,
    digest: &str,
) -> Result<(), String> {
    let (why, mut fields) = match verify_path(Path::new(path), digest) {
        Ok(()) => return Ok(()),
        Err(VerifyError::Mismatch(mismatch)) => (mismatch.to_string(), mismatch.audit_fields()),
        Err(VerifyError::Io(error)) => (
            format!("the stored artifact at {path} ({digest}) could not be verified: {error}"),
            json!({"digest": digest, "found": format!("unreadable: {error}"), "path": path}),
        ),
    };
    fields["action"] = json!(format!("refused to {action} it"));
    fields["summary"] = json!(why);
    log_event(
        audit,
        request,
        actor,
        AuditEvent::ArtifactVerificationFailed,
        fields,
    )?;
    Err(format!("{why}; refusing to {action} it"))
}
