//! Lease check: whether a PostgreSQL lease still holds its lock — its own session is alive,
//! still holds the advisory lock, and its token is still the lock's current one.

use super::{LockSessionError, PgHeld, holds_advisory_lock};
use crate::store::pg::conn::Session;
use crate::store::{Lease, LeaseLost};

/// Asked by the engine before each rollout step, at each watch round and before recording.
/// Never reconnects: a new session would not hold the lock.
pub(in crate::store::pg) fn still_held(lease: &Lease) -> Result<(), LeaseLost> {
    let Some(held) = lease.held::<PgHeld>() else {
        return Err(LeaseLost(
            "not a lease of this PostgreSQL state".to_string(),
        ));
    };
    let current = format!(
        "SELECT token, held FROM {}.locks WHERE pipeline = $1 AND environment = $2",
        held.quoted
    );
    let (key, token) = (held.key, held.token);
    let (pipeline, environment) = (held.pipeline.clone(), held.environment.clone());
    let answer = held.conn.run(
        move |session: &mut Session| -> Result<(), LockSessionError> {
            let Some(client) = session.client.as_mut().filter(|c| !c.is_closed()) else {
                return Err(LockSessionError::Gone);
            };
            if !holds_advisory_lock(client, key)? {
                return Err(LockSessionError::NoLongerHeld);
            }
            let row = client.query_opt(&current, &[&pipeline, &environment])?;
            match row.map(|row| (row.get::<_, i64>(0), row.get::<_, bool>(1))) {
                Some((now, true)) if now == token => Ok(()),
                Some((now, _)) => Err(LockSessionError::TokenMoved { now, token }),
                None => Err(LockSessionError::RowGone),
            }
        },
    );
    match answer {
        Some(Ok(())) => Ok(()),
        Some(Err(reason)) => Err(LeaseLost(reason.to_string())),
        None => Err(LeaseLost(
            "the lock connection's thread stopped".to_string(),
        )),
    }
}
