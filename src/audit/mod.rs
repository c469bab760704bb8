//! Audit: the append-only, hash-chained, fsynced audit log (`.pipe/audit.jsonl`), its
//! verification, and the one-line timeline rendering of its records. Format: docs/audit.md.

mod log;
mod record;
mod timeline;
mod verify;

pub use log::{AUDIT_FILE, AuditLog};
pub use record::{AuditRecord, GENESIS_HASH, RECOVERY_EVENT};
pub use timeline::timeline_line;
pub use verify::{LineProblem, VerifyError, VerifySummary, read_events, verify, verify_bytes};
