//! Deliver: promotion stages — locks, release ledger, approvals, rollout, watch, rollback.
//! The pure parts (ledger format, approval policy, watch rules) are unit-tested on their own.

pub mod approval;
pub mod ledger;
pub mod lock;
pub mod probe_value;
pub mod watch;
