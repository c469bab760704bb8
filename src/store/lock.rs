//! Locks: one promote, hand rollback or drill per pipeline and environment at a time. Taking a
//! lock gives a [`Lease`]; ledger writes require it, and its fencing token lets a backend
//! refuse a write from a holder that has since lost the lock.

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
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", busy_message(.environment, .holder.as_ref(), *.waited))]
    Busy {
        environment: String,
        holder: Option<LockHolder>,
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
        Some(holder) => format!("run {} (pid {})", holder.run, holder.pid),
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
/// connection) answers whether it still holds it. A lock the kernel keeps for the holder's
/// lifetime (`flock`) cannot be lost and needs no check.
pub trait LeaseCheck: Send + Sync {
    fn still_held(&self) -> Result<(), LeaseLost>;
}

/// A held environment lock; dropping it releases the lock.
pub struct Lease {
    pipeline: String,
    environment: String,
    token: u64,
    /// Whatever keeps the lock held in the backend (an open, locked file; a connection).
    _held: Box<dyn Send + Sync>,
    check: Option<Box<dyn LeaseCheck>>,
}

impl Lease {
    pub(crate) fn new(request: &LockRequest, token: u64, held: Box<dyn Send + Sync>) -> Lease {
        Lease {
            pipeline: request.pipeline.clone(),
            environment: request.environment.clone(),
            token,
            _held: held,
            check: None,
        }
    }

    /// A lease whose backend can lose the lock: [`Lease::check`] asks `check`.
    pub(crate) fn checked_by(mut self, check: Box<dyn LeaseCheck>) -> Lease {
        self.check = Some(check);
        self
    }

    /// Whether the lock is still this lease's. The engine asks before each rollout step and
    /// before recording a release, so a holder that lost its lock stops deploying.
    pub fn check(&self) -> Result<(), LeaseLost> {
        match &self.check {
            Some(check) => check.still_held(),
            None => Ok(()),
        }
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
