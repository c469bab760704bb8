//! Deliver: promotion stages — locks, release ledger, approvals, rollout, watch, rollback.
