//! Audit: the hash chain kept as one row per record (`seq` the primary key, the stored line
//! byte for byte as `audit.jsonl` would hold it), appended in a transaction that locks the table
//! against other appenders while it reads the tail and inserts.

use super::conn::{Connection, Session};
use crate::audit::{AuditSink, AuditTail, tail_of};
use std::io;
use std::sync::Mutex;

/// The audit table of one schema, appended to on its own session (an append's transaction
/// spans two jobs, so nothing else may use that session in between).
#[derive(Debug)]
pub struct PgAudit {
    conn: Connection,
    quoted: String,
    /// Serialises this process's appenders on the one session.
    appending: Mutex<()>,
}

impl PgAudit {
    pub fn new(conn: Connection, quoted: String) -> PgAudit {
        PgAudit {
            conn,
            quoted,
            appending: Mutex::new(()),
        }
    }

    /// `BEGIN`, lock the table, read the last line: nothing is written, so it is retried
    /// like a read when the connection fails.
    fn begin(&self) -> io::Result<Option<String>> {
        let lock = format!("LOCK TABLE {}.audit IN EXCLUSIVE MODE", self.quoted);
        let tail = format!(
            "SELECT line FROM {}.audit ORDER BY seq DESC LIMIT 1",
            self.quoted
        );
        let begun = self.conn.run(move |session: &mut Session| {
            session.read(|client| {
                client.batch_execute("BEGIN")?;
                let read = client
                    .batch_execute(&lock)
                    .and_then(|()| client.query_opt(&tail, &[]));
                match read {
                    Ok(row) => Ok(row.map(|row| row.get::<_, String>(0))),
                    Err(error) => {
                        let _ = client.batch_execute("ROLLBACK");
                        Err(error)
                    }
                }
            })
        });
        flatten(begun, "begin an audit append")
    }

    /// Inserts `rows` and commits, or rolls back when there are none (or an insert fails).
    /// A failed commit is reported, never retried: it may have happened.
    fn finish(&self, rows: Option<Vec<(i64, String)>>) -> io::Result<()> {
        let insert = format!(
            "INSERT INTO {}.audit (seq, line) VALUES ($1, $2)",
            self.quoted
        );
        let finished = self.conn.run(move |session: &mut Session| {
            let Some(client) = session.client.as_mut() else {
                return Err(None);
            };
            let Some(rows) = rows else {
                let _ = client.batch_execute("ROLLBACK");
                return Ok(());
            };
            let inserted = rows
                .iter()
                .try_for_each(|(seq, line)| client.execute(&insert, &[seq, line]).map(drop));
            match inserted {
                Ok(()) => client.batch_execute("COMMIT").map_err(Some),
                Err(error) => {
                    let _ = client.batch_execute("ROLLBACK");
                    Err(Some(error))
                }
            }
        });
        match finished {
            Some(Ok(())) => Ok(()),
            Some(Err(Some(error))) => Err(io::Error::other(format!(
                "cannot append to the audit chain: {error}"
            ))),
            Some(Err(None)) | None => Err(io::Error::other(
                "cannot append to the audit chain: its connection was lost",
            )),
        }
    }
}

fn flatten<T>(outcome: Option<Result<T, postgres::Error>>, action: &str) -> io::Result<T> {
    match outcome {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) => Err(io::Error::other(format!("cannot {action}: {error}"))),
        None => Err(io::Error::other(format!(
            "cannot {action}: the connection's thread stopped"
        ))),
    }
}

/// The `seq` of each line `build` produced, paired with the line.
fn rows_of(text: &str) -> io::Result<Vec<(i64, String)>> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).map_err(io::Error::other)?;
            let seq = value
                .get("seq")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| io::Error::other("an audit record without a seq"))?;
            Ok((seq, line.to_string()))
        })
        .collect()
}

impl AuditSink for PgAudit {
    fn append_with(&self, build: &mut dyn FnMut(&AuditTail) -> String) -> io::Result<()> {
        let _one = match self.appending.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let last = self.begin()?;
        let tail = tail_of(last.map(|line| line + "\n").unwrap_or_default().as_bytes());
        if !tail.torn.is_empty() {
            self.finish(None)?;
            return Err(io::Error::other(
                "the last record of the audit table is not a readable record; refusing to \
                 append (see `pipe audit verify`)",
            ));
        }
        match rows_of(&build(&tail)) {
            Ok(rows) => self.finish(Some(rows)),
            Err(error) => {
                self.finish(None)?;
                Err(error)
            }
        }
    }
}
