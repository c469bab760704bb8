//! Locks: one promote, hand rollback or drill per pipeline and environment at a time. Taking a
//! lock gives a [`Lease`]; ledger writes require it, and its fencing token lets a backend
//! refuse a write from a holder that has since lost the lock.

use std::any::Any;
use std::fmt;
use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who holds a lock, as the backend records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run: String,
    pub pid: u32,
    /// RFC 3339.
    pub since: String,
    /// The pid of the holder's step supervisor (`run::supervisor`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<u32>,
    /// The machine the holder runs on, when the lock is shared between machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", busy_message(.environment, .holder.as_deref(), *.waited))]
    Busy {
        environment: String,
        /// Boxed: keeps every `Result<_, LockError>` small.
        holder: Option<Box<LockHolder>>,
        waited: Duration,
    },
    #[error("stopped waiting for the lock of environment {environment}: interrupted")]
    Interrupted { environment: String },
    #[error("cannot lock environment {environment} ({path}): {source}")]
    Io {
        environment: String,
        path: String,
        source: io::Error,
    },
}

fn busy_message(environment: &str, holder: Option<&LockHolder>, waited: Duration) -> String {
    let who = match holder {
        Some(holder) => match &holder.host {
            Some(host) => format!("run {} (pid {} on {host})", holder.run, holder.pid),
            None => format!("run {} (pid {})", holder.run, holder.pid),
        },
        None => "another run".to_string(),
    };
    format!(
        "environment {environment} is locked by {who}; waited {}",
        format_wait(waited)
    )
}

pub(crate) fn format_wait(waited: Duration) -> String {
    let millis = waited.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{:.1}s", waited.as_secs_f64())
    }
}

/// What to lock, for whom, and how long to wait (zero: try once).
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub pipeline: String,
    pub environment: String,
    pub run: String,
    pub timeout: Duration,
}

impl LockRequest {
    pub fn new(pipeline: &str, environment: &str, run: &str, timeout: Duration) -> LockRequest {
        LockRequest {
            pipeline: pipeline.to_string(),
            environment: environment.to_string(),
            run: run.to_string(),
            timeout,
        }
    }
}

/// Why a lease no longer holds its lock (the backend's words: a dropped connection, a newer
/// token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LeaseLost(pub String);

/// A backend whose lock can be lost while its lease is alive (a server that closed the lock's
/// connection) answers whether it still holds it, reading what it keeps in the lease
/// ([`Lease::held`]). A lock the kernel keeps for the holder's lifetime (`flock`) cannot be
/// lost and needs no check.
pub type LeaseCheck = fn(&Lease) -> Result<(), LeaseLost>;

/// A held environment lock; dropping it releases the lock.
pub struct Lease {
    pipeline: String,
    environment: String,
    token: u64,
    /// Whatever keeps the lock held in the backend (an open, locked file; a connection).
    held: Box<dyn Any + Send + Sync>,
    /// How the backend tells whether it still honours this lease, if it can lose the lock.
    check: Option<LeaseCheck>,
}

impl Lease {
    pub(crate) fn new(
        request: &LockRequest,
        token: u64,
        held: Box<dyn Any + Send + Sync>,
    ) -> Lease {
        Lease {
            pipeline: request.pipeline.clone(),
            environment: request.environment.clone(),
            token,
            held,
            check: None,
        }
    }

    /// A lease whose backend can lose the lock: [`Lease::check`] asks `check`.
    pub(crate) fn checked_by(mut self, check: LeaseCheck) -> Lease {
        self.check = Some(check);
        self
    }

    /// Whether the lock is still this lease's. The engine asks before each rollout step and
    /// before recording a release, so a holder that lost its lock stops deploying.
    pub fn check(&self) -> Result<(), LeaseLost> {
        match self.check {
            Some(check) => check(self),
            None => Ok(()),
        }
    }

    /// What keeps the lock held, when it is a `T`: a backend reaches its own lock's
    /// connection through it (a write under the lock goes through that session).
    pub(crate) fn held<T: Any>(&self) -> Option<&T> {
        self.held.downcast_ref()
    }

    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The fencing token: larger for every later holder of the same lock.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Whether this lease is the lock of `pipeline`'s `environment`.
    pub fn covers(&self, pipeline: &str, environment: &str) -> bool {
        self.pipeline == pipeline && self.environment == environment
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("pipeline", &self.pipeline)
            .field("environment", &self.environment)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}
