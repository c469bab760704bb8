//! Audit: the append-only, hash-chained, fsynced audit log and its verification.
