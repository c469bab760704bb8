//! Lock: an environment's lock as a session-level advisory lock on a dedicated connection (the
//! server releases it when the holder dies or its connection drops), a holder row naming who
//! holds it, and a fencing token checked by every ledger write, made on that same session.

mod lease_check;

use super::super::{Lease, LockError, LockHolder, LockRequest, StoreError};
use super::Target;
use super::conn::{Connection, Session};
use sha2::{Digest, Sha256};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a waiter retries the lock.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What a [`Lease`] of this backend holds: the session that holds the advisory lock.
pub struct PgHeld {
    conn: Connection,
    key: i64,
    pipeline: String,
    environment: String,
    token: i64,
    /// The quoted schema the lock lives in: a lease of another schema is not this store's.
    pub(super) quoted: String,
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        let release = format!(
            "UPDATE {}.locks SET held = false WHERE pipeline = $1 AND environment = $2 \
             AND token = $3",
            self.quoted
        );
        let (key, token) = (self.key, self.token);
        let (pipeline, environment) = (self.pipeline.clone(), self.environment.clone());
        // Closed before `drop` returns, so this process can take the lock again at once.
        self.conn.run(move |session: &mut Session| {
            if let Some(client) = session.client.as_mut() {
                let _ = client.execute(&release, &[&pipeline, &environment, &token]);
                let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
            }
            session.client = None;
        });
    }
}

/// The advisory lock key of one environment of one pipeline in one schema.
fn advisory_key(schema: &str, pipeline: &str, environment: &str) -> i64 {
    let digest = Sha256::digest(format!("pipe\0{schema}\0{pipeline}\0{environment}"));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The machine's name, for the holder row.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Takes the lock on a new connection, polling until the request's timeout.
pub fn acquire(
    target: &Arc<Target>,
    request: &LockRequest,
    interrupted: &dyn Fn() -> bool,
) -> Result<Lease, LockError> {
    let failed = |reason: String| LockError::Io {
        environment: request.environment.clone(),
        path: target.describe(),
        source: io::Error::other(target.scrub(&reason)),
    };
    let conn =
        Connection::open(target.config.clone(), "lock").map_err(|e| failed(e.to_string()))?;
    let key = advisory_key(&target.schema, &request.pipeline, &request.environment);
    let started = Instant::now();
    loop {
        let attempt = conn.run(move |session| {
            session.read(|client| {
                let row = client.query_one("SELECT pg_try_advisory_lock($1)", &[&key])?;
                Ok(row.get::<_, bool>(0))
            })
        });
        match attempt {
            None => return Err(failed("the lock connection's thread stopped".into())),
            Some(Err(error)) => return Err(failed(format!("cannot take the lock: {error}"))),
            Some(Ok(true)) => {
                let token =
                    claim(&conn, target, request, key).map_err(|e| failed(e.to_string()))?;
                let held = PgHeld {
                    conn,
                    key,
                    pipeline: request.pipeline.clone(),
                    environment: request.environment.clone(),
                    token,
                    quoted: target.quoted_schema(),
                };
                return Ok(Lease::new(request, token.unsigned_abs(), Box::new(held))
                    .checked_by(lease_check::still_held));
            }
            Some(Ok(false)) => {}
        }
        if interrupted() {
            return Err(LockError::Interrupted {
                environment: request.environment.clone(),
            });
        }
        let waited = started.elapsed();
        if waited >= request.timeout {
            return Err(LockError::Busy {
                environment: request.environment.clone(),
                holder: read_holder(&conn, target, &request.pipeline, &request.environment)
                    .map(Box::new),
                waited: request.timeout,
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(request.timeout - waited));
    }
}

/// Why a lock's own session cannot claim or keep the lock.
#[derive(Debug, thiserror::Error)]
pub(in crate::store::pg) enum LockSessionError {
    #[error("the lock's connection to the server is gone")]
    Gone,
    #[error("the lock connection's thread stopped")]
    ThreadStopped,
    #[error(
        "the lock was won on a session that does not keep it (is the state URL a \
         transaction-pooling proxy such as PgBouncer? locks need a direct connection to \
         PostgreSQL)"
    )]
    NotKeptBySession,
    #[error("the server no longer holds the lock for this session")]
    NoLongerHeld,
    #[error("the lock's token is now {now}, not {token}")]
    TokenMoved { now: i64, token: i64 },
    #[error("the lock's holder row is gone")]
    RowGone,
    #[error("the lock's connection: {0}")]
    Query(#[from] postgres::Error),
}

/// On the session that won the advisory lock: checks the session really holds it (a
/// transaction-pooling proxy hands each statement to any server session), then bumps the
/// fencing token and names the holder, in one transaction.
fn claim(
    conn: &Connection,
    target: &Target,
    request: &LockRequest,
    key: i64,
) -> Result<i64, LockSessionError> {
    let upsert = format!(
        "INSERT INTO {}.locks AS l (pipeline, environment, token, held, run, host, pid, since, \
         backend_pid) VALUES ($1, $2, 1, true, $3, $4, $5, $6, pg_backend_pid()) \
         ON CONFLICT (pipeline, environment) DO UPDATE SET token = l.token + 1, held = true, \
         run = EXCLUDED.run, host = EXCLUDED.host, pid = EXCLUDED.pid, since = EXCLUDED.since, \
         backend_pid = EXCLUDED.backend_pid RETURNING token",
        target.quoted_schema()
    );
    let pipeline = request.pipeline.clone();
    let environment = request.environment.clone();
    let run = request.run.clone();
    let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let outcome = conn.run(
        move |session: &mut Session| -> Result<i64, LockSessionError> {
            let client = session.client.as_mut().ok_or(LockSessionError::Gone)?;
            if !holds_advisory_lock(client, key)? {
                return Err(LockSessionError::NotKeptBySession);
            }
            let mut transaction = client.transaction()?;
            let row = transaction.query_one(
                &upsert,
                &[&pipeline, &environment, &run, &host_name(), &pid, &since],
            )?;
            transaction.commit()?;
            Ok(row.get(0))
        },
    );
    outcome.unwrap_or(Err(LockSessionError::ThreadStopped))
}

/// Whether this session holds the advisory lock `key` (as `pg_locks` shows it).
fn holds_advisory_lock(
    client: &mut impl postgres::GenericClient,
    key: i64,
) -> Result<bool, postgres::Error> {
    let row = client.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND pid = pg_backend_pid() AND objsubid = 1 \
         AND ((classid::bigint << 32) | objid::bigint) = $1)",
        &[&key],
    )?;
    Ok(row.get(0))
}

/// The holder row of a lock that is held now (its session still holds the advisory lock).
pub fn holder_query(quoted: &str) -> String {
    format!(
        "SELECT run, pid, since, host FROM {quoted}.locks l WHERE pipeline = $1 \
         AND environment = $2 AND held AND EXISTS (SELECT 1 FROM pg_locks WHERE \
         locktype = 'advisory' AND granted AND pid = l.backend_pid)"
    )
}

/// Reads the holder row through `conn` (best effort: `None` on any failure).
pub fn read_holder(
    conn: &Connection,
    target: &Target,
    pipeline: &str,
    environment: &str,
) -> Option<LockHolder> {
    let query = holder_query(&target.quoted_schema());
    let (pipeline, environment) = (pipeline.to_string(), environment.to_string());
    conn.run(move |session| {
        session.read(|client| client.query_opt(&query, &[&pipeline, &environment]))
    })?
    .ok()?
    .map(|row| LockHolder {
        run: row.get(0),
        pid: u32::try_from(row.get::<_, i32>(1)).unwrap_or_default(),
        since: row.get(2),
        supervisor: None,
        host: Some(row.get(3)),
    })
}

/// Replaces a ledger on the lease's own session, in one transaction that first checks the
/// session still holds the advisory lock and the lease's token is still the lock's current
/// one: a holder that lost its connection or was superseded can never write.
pub fn write_ledger(lease: &Lease, held: &PgHeld, body: String) -> Result<(), StoreError> {
    let stale = || StoreError::StaleLease {
        environment: lease.environment().to_string(),
        token: lease.token(),
    };
    let current = format!(
        "SELECT token, held FROM {}.locks WHERE pipeline = $1 AND environment = $2 FOR UPDATE",
        held.quoted
    );
    let upsert = format!(
        "INSERT INTO {}.ledgers (pipeline, environment, body, lock_token) \
         VALUES ($1, $2, $3::text::jsonb, $4) ON CONFLICT (pipeline, environment) DO UPDATE \
         SET body = EXCLUDED.body, lock_token = EXCLUDED.lock_token, updated_at = now()",
        held.quoted
    );
    let (key, token) = (held.key, held.token);
    let (pipeline, environment) = (held.pipeline.clone(), held.environment.clone());
    let outcome = held.conn.run(
        move |session: &mut Session| -> Result<bool, postgres::Error> {
            // Never reconnect here: a new session does not hold the lock.
            let Some(client) = session.client.as_mut().filter(|c| !c.is_closed()) else {
                return Ok(false);
            };
            let mut transaction = client.transaction()?;
            let row = transaction.query_opt(&current, &[&pipeline, &environment])?;
            let is_current = row.is_some_and(|row| row.get::<_, i64>(0) == token && row.get(1));
            if !is_current {
                return Ok(false);
            }
            if !holds_advisory_lock(&mut transaction, key)? {
                return Ok(false);
            }
            transaction.execute(&upsert, &[&pipeline, &environment, &body, &token])?;
            transaction.commit()?;
            Ok(true)
        },
    );
    match outcome {
        Some(Ok(true)) => Ok(()),
        // The session is gone (killed, server restarted): the lock went with it.
        Some(Ok(false)) | None => Err(stale()),
        Some(Err(error)) if super::conn::is_connection_error(&error) => Err(stale()),
        Some(Err(error)) => Err(StoreError::Database {
            action: "write",
            what: format!("the ledger of {}", lease.environment()),
            reason: error.to_string(),
        }),
    }
}
