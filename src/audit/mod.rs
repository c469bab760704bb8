//! Audit: the append-only, hash-chained, fsynced audit log (`.pipe/audit.jsonl`), its
//! verification, the one-line timeline rendering of its records and the evidence report.
//! Format: docs/audit.md.

mod event;
pub mod evidence;
mod log;
mod record;
mod timeline;
mod verify;

pub use event::{AuditEvent, UnknownEvent};
pub use log::AuditLog;
pub use record::{AUDIT_FILE, AuditRecord, GENESIS_HASH};
pub use timeline::timeline_line;
pub use verify::{LineProblem, VerifyError, VerifySummary, read_events, verify, verify_bytes};
