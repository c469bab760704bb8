//! Deliver: promotion stages — locks, release ledger, approvals, rollout, watch, rollback.
//! The pure parts (ledger format, approval policy, watch rules) are unit-tested on their own;
//! `engine` runs a promote through a [`host::PromoteHost`] that the runner provides.

pub mod approval;
pub mod approve_later;
pub mod drill;
pub mod drill_backup;
pub mod engine;
pub mod executor;
pub mod host;
mod integrity;
pub mod ledger;
pub mod manual;
pub mod preview;
pub mod probe_value;
pub mod record;
pub mod recovery;
pub mod release_plan;
pub mod request;
pub mod watch;

#[cfg(test)]
mod engine_tests;
