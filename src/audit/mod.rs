//! Audit: the append-only, hash-chained, fsynced audit log (kept by the store), its
//! verification, the one-line timeline rendering of its records and the evidence report.
//! Format: docs/audit.md.

pub mod drills;
mod event;
pub mod evidence;
mod log;
mod record;
mod timeline;
mod verify;

pub use event::AuditEvent;
pub use log::{AuditFile, AuditLog, AuditSink, AuditTail, tail_of};
pub use record::{AUDIT_FILE, AuditRecord};
pub use timeline::timeline_line;
pub use verify::{VerifyError, VerifySummary, records_of, verify_bytes};
