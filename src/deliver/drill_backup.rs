//! A drill's backup as an immutable, content-addressed object: filed in the artifact store when
//! the backup block names it, re-hashed before the restore reads it, found again by digest.

use crate::audit::{AuditEvent, AuditRecord};
use crate::run::artifact::{Provenance, VerifyError};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the drill's audit event and evidence record say about the backup that was restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFacts {
    /// `sha256:HEX`
    pub digest: String,
    pub size: u64,
    /// When the backup was taken (RFC 3339): the time the backup itself states, else when its
    /// backup block started.
    pub created_at: String,
    /// The stored, read-only copy the restore reads (`${{ backup.path }}`).
    pub path: String,
}

/// An audit append that failed: the drill step it guards does not happen.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log before {event}: {source}")]
pub struct AuditUnwritable {
    pub event: AuditEvent,
    pub source: std::io::Error,
}

/// Why the backup a restore would read cannot be used; the message becomes the failed
/// block's line in the drill report.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the backup could not be stored: {0}")]
    Unstorable(#[source] std::io::Error),
    #[error("no stored backup {digest} in the artifact store of {state}")]
    NotStored { digest: String, state: String },
    #[error("{0}; refusing to restore it")]
    Changed(#[source] VerifyError),
    #[error(transparent)]
    Audit(#[from] AuditUnwritable),
}

/// How a drill appends its audit events.
pub(crate) type AuditAs<'a> =
    &'a dyn Fn(AuditEvent, serde_json::Value) -> Result<(), AuditUnwritable>;

/// Files the backup named by the backup block (`backup_file=PATH`, relative to `workdir`) in
/// the store and audits it as `artifact_stored`.
pub(crate) fn store_backup(
    store: &Store,
    workdir: &Path,
    file: &str,
    created_at: &str,
    audit_as: AuditAs,
    provenance: &Provenance,
    drill: &str,
) -> Result<BackupFacts, BackupError> {
    let artifacts = store.artifacts();
    let source = workdir.join(file);
    let stored = artifacts
        .put(&format!("{drill}.backup"), &source, provenance, None)
        .map_err(BackupError::Unstorable)?;
    if let Some(replaced) = &stored.replaced {
        let mut fields = replaced.mismatch.audit_fields();
        fields["action"] = "quarantined and replaced by this drill's backup".into();
        fields["summary"] = replaced.mismatch.to_string().into();
        audit_as(AuditEvent::ArtifactVerificationFailed, fields)?;
    }
    let record = stored.record;
    let facts = BackupFacts {
        path: artifacts.local_path(&record.digest).display().to_string(),
        digest: record.digest,
        size: record.size,
        created_at: created_at.to_string(),
    };
    audit_as(
        AuditEvent::ArtifactStored,
        serde_json::json!({
            "artifact": record.name,
            "digest": facts.digest,
            "size": facts.size,
            "created_at": facts.created_at,
            "source": source.display().to_string(),
            "summary": format!("backup {} stored ({} bytes, taken {})", facts.digest, facts.size, facts.created_at),
        }),
    )?;
    Ok(facts)
}

/// An earlier backup by its digest (`sha256:HEX` or `HEX`), for `pipe drill N --from DIGEST`.
/// Its creation time is the one audited when it was stored; without that record, the time it
/// was stored (never earlier than when it was taken).
pub(crate) fn stored_backup(
    store: &Store,
    digest: &str,
    audited: &[AuditRecord],
) -> Result<BackupFacts, BackupError> {
    let artifacts = store.artifacts();
    let Some(record) = artifacts.lookup(digest) else {
        return Err(BackupError::NotStored {
            digest: digest.to_string(),
            state: store.describe(),
        });
    };
    let created_at = audited
        .iter()
        .rev()
        .filter(|r| r.kind() == Some(AuditEvent::ArtifactStored))
        .filter(|r| r.fields.get("digest").and_then(|d| d.as_str()) == Some(&record.digest))
        .find_map(|r| r.fields.get("created_at").and_then(|c| c.as_str()))
        .map_or_else(|| record.built_at.clone(), str::to_string);
    Ok(BackupFacts {
        path: artifacts.local_path(&record.digest).display().to_string(),
        digest: record.digest,
        size: record.size,
        created_at,
    })
}

/// Re-hashes the stored backup before the restore reads it; a copy that changed is refused,
/// audited as `artifact_verification_failed`.
pub(crate) fn verify_backup(
    store: &Store,
    backup: &BackupFacts,
    audit_as: AuditAs,
) -> Result<(), BackupError> {
    let error = match store.artifacts().materialise(&backup.digest) {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    if let VerifyError::Mismatch(mismatch) = &error {
        let mut fields = mismatch.audit_fields();
        fields["action"] = "refused to restore it".into();
        fields["summary"] = mismatch.to_string().into();
        audit_as(AuditEvent::ArtifactVerificationFailed, fields)?;
    }
    Err(BackupError::Changed(error))
}

/// `KEY=…` in a block's `$PIPE_OUTPUT` (the last one wins).
pub(crate) fn output_value<'o>(output: &'o str, key: &str) -> Option<&'o str> {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn a_stored_backup_is_found_by_digest_and_refused_once_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.dump"), "dump bytes").unwrap();
        let events = RefCell::new(Vec::new());
        let audit_as = |event: AuditEvent, fields: serde_json::Value| {
            events.borrow_mut().push((event, fields));
            Ok(())
        };
        let state = Store::directory(&dir.path().join(".pipe"));
        let taken = "2026-11-01T00:00:00Z";
        let facts = store_backup(
            &state,
            dir.path(),
            "app.dump",
            taken,
            &audit_as,
            &Provenance::default(),
            "restore_db",
        )
        .unwrap();
        assert_eq!(facts.size, 10);
        assert_eq!(events.borrow()[0].0, AuditEvent::ArtifactStored);
        assert_eq!(events.borrow()[0].1["created_at"], taken);
        verify_backup(&state, &facts, &audit_as).unwrap();

        let found = stored_backup(&state, &facts.digest, &[]).unwrap();
        assert_eq!(
            (found.digest.as_str(), found.size),
            (facts.digest.as_str(), 10)
        );
        assert!(stored_backup(&state, "sha256:00", &[]).is_err());

        let stored = Path::new(&facts.path);
        let mut permissions = std::fs::metadata(stored).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(stored, permissions).unwrap();
        std::fs::write(stored, "tampered").unwrap();
        let refused = verify_backup(&state, &facts, &audit_as).unwrap_err();
        let refused = refused.to_string();
        assert!(refused.contains("refusing to restore it"), "{refused}");
        assert_eq!(
            events.borrow().last().unwrap().0,
            AuditEvent::ArtifactVerificationFailed
        );
    }

    #[test]
    fn output_values_are_read_by_key_the_last_one_winning() {
        let output = "backup_file=a.dump\nbackup_files=x\nbackup_file=b.dump\n";
        assert_eq!(output_value(output, "backup_file"), Some("b.dump"));
        assert_eq!(output_value("backup_file=\n", "backup_file"), None);
        assert_eq!(output_value("", "backup_time"), None);
    }
}
