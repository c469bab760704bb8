//! The PostgreSQL backend: shared state of many agents in one schema — runs' documents,
//! ledgers, locks with fencing tokens, the audit chain, evidence — migrated by `pipe` itself.
//!
//! The sync client must not run on a tokio runtime thread, so each session lives on its own
//! std thread ([`conn`]): one for the store's reads and writes, one per held lock, one per
//! opened audit chain. Each write is one transaction; reads are retried on connection errors.

mod audit;
mod config;
mod conn;
mod lock;
mod schema;

pub use config::Target;

use super::{Lease, LedgerDoc, LockError, LockHolder, LockRequest, RunDoc, StateStore, StoreError};
use crate::audit::AuditSink;
use conn::Connection;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Shared state in a PostgreSQL schema.
#[derive(Debug)]
pub struct PgStore {
    target: Arc<Target>,
    conn: Connection,
}

fn doc_name(doc: &RunDoc) -> String {
    match doc {
        RunDoc::Plan => "plan".to_string(),
        RunDoc::State => "state".to_string(),
        RunDoc::Delivery(environment) => format!("delivery/{environment}"),
    }
}

impl PgStore {
    /// Connects to the location (`postgres://…` or libpq keywords, `schema=` optional) and
    /// creates or migrates the schema; a schema written by a newer `pipe` is refused.
    pub fn connect(location: &str) -> Result<PgStore, StoreError> {
        let target = Arc::new(Target::parse(location)?);
        let conn = Connection::open(target.config.clone(), "state")
            .map_err(|e| StoreError::io("start", "the PostgreSQL connection thread", e))?;
        let store = PgStore { target, conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let schema = self.target.schema.clone();
        let quoted = self.target.quoted_schema();
        let outcome = self.write("migrate", "the schema", move |transaction| {
            schema::migrate(transaction, &schema, &quoted)
        })?;
        match outcome {
            Ok(()) => Ok(()),
            Err(schema::Refusal::Newer { found }) => Err(StoreError::Refused(format!(
                "{} was migrated by a newer pipe (schema version {found}; this pipe knows \
                 up to {}): refusing to use it; upgrade pipe",
                self.describe(),
                schema::VERSION
            ))),
        }
    }

    /// `template` with `{s}` replaced by the quoted schema.
    fn sql(&self, template: &str) -> String {
        template.replace("{s}", &self.target.quoted_schema())
    }

    fn failure(
        &self,
        action: &'static str,
        what: &str,
        error: Option<postgres::Error>,
    ) -> StoreError {
        let reason = match error {
            Some(error) => self.target.scrub(&error.to_string()),
            None => "the connection's thread stopped".to_string(),
        };
        StoreError::Database {
            action,
            what: format!("{what} in {}", self.target.describe()),
            reason,
        }
    }

    /// A read on the store's session, retried on connection errors.
    fn read<R: Send + 'static>(
        &self,
        what: &str,
        query: impl Fn(&mut postgres::Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, StoreError> {
        match self.conn.run(move |session| session.read(query)) {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(self.failure("read", what, Some(error))),
            None => Err(self.failure("read", what, None)),
        }
    }

    /// One transaction on the store's session, never repeated once begun.
    fn write<R: Send + 'static>(
        &self,
        action: &'static str,
        what: &str,
        change: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<R, postgres::Error>
        + Send
        + 'static,
    ) -> Result<R, StoreError> {
        match self.conn.run(move |session| session.write(change)) {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(self.failure(action, what, Some(error))),
            None => Err(self.failure(action, what, None)),
        }
    }
}

impl StateStore for PgStore {
    fn describe(&self) -> String {
        format!("the shared state at {}", self.target.describe())
    }

    fn read_run_doc(&self, run: &str, doc: &RunDoc) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = self.sql("SELECT body FROM {s}.run_docs WHERE run = $1 AND doc = $2");
        let (run_id, name) = (run.to_string(), doc_name(doc));
        self.read(&format!("the {doc} of run {run}"), move |client| {
            let row = client.query_opt(&sql, &[&run_id, &name])?;
            Ok(row.map(|row| row.get::<_, Vec<u8>>(0)))
        })
    }

    fn write_run_doc(&self, run: &str, doc: &RunDoc, bytes: &[u8]) -> Result<(), StoreError> {
        let sql = self.sql(
            "INSERT INTO {s}.run_docs (run, doc, body) VALUES ($1, $2, $3) \
             ON CONFLICT (run, doc) DO UPDATE SET body = EXCLUDED.body, updated_at = now()",
        );
        let (run_id, name, body) = (run.to_string(), doc_name(doc), bytes.to_vec());
        self.write("write", &format!("the {doc} of run {run}"), move |tx| {
            tx.execute(&sql, &[&run_id, &name, &body]).map(drop)
        })
    }

    fn describe_run_doc(&self, run: &str, doc: &RunDoc) -> String {
        format!("the {doc} of run {run} in {}", self.target.describe())
    }

    fn run_ids(&self) -> Result<Vec<String>, StoreError> {
        let sql = self.sql("SELECT DISTINCT run FROM {s}.run_docs ORDER BY run");
        self.read("the list of runs", move |client| {
            let rows = client.query(&sql, &[])?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }

    fn read_ledger(
        &self,
        pipeline: &str,
        environment: &str,
    ) -> Result<Option<LedgerDoc>, StoreError> {
        let sql =
            self.sql("SELECT body::text FROM {s}.ledgers WHERE pipeline = $1 AND environment = $2");
        let what = format!("the ledger of {pipeline}/{environment}");
        let (p, e) = (pipeline.to_string(), environment.to_string());
        let text = self.read(&what, move |client| {
            let row = client.query_opt(&sql, &[&p, &e])?;
            Ok(row.map(|row| row.get::<_, String>(0)))
        })?;
        let Some(text) = text else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                what: format!("{what} in {}", self.target.describe()),
                reason: error.to_string(),
            })
    }

    fn write_ledger(&self, lease: &Lease, doc: &LedgerDoc) -> Result<(), StoreError> {
        let stale = || StoreError::StaleLease {
            environment: doc.environment.clone(),
            token: lease.token(),
        };
        let Some(held) = lease.held::<lock::PgHeld>() else {
            return Err(stale());
        };
        if !lease.covers(&doc.pipeline, &doc.environment)
            || held.quoted != self.target.quoted_schema()
        {
            return Err(stale());
        }
        let body = serde_json::to_string(doc).map_err(|error| StoreError::Invalid {
            what: format!("the ledger of {}", doc.environment),
            reason: error.to_string(),
        })?;
        lock::write_ledger(lease, held, body).map_err(|error| match error {
            StoreError::Database {
                action,
                what,
                reason,
            } => StoreError::Database {
                action,
                what: format!("{what} in {}", self.target.describe()),
                reason: self.target.scrub(&reason),
            },
            other => other,
        })
    }

    fn ledger_environments(&self, pipeline: &str) -> Result<Vec<String>, StoreError> {
        let sql = self
            .sql("SELECT environment FROM {s}.ledgers WHERE pipeline = $1 ORDER BY environment");
        let p = pipeline.to_string();
        self.read(&format!("the ledgers of {pipeline}"), move |client| {
            let rows = client.query(&sql, &[&p])?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }

    fn referenced_digests(&self) -> Result<BTreeSet<String>, StoreError> {
        let sql = self.sql(
            "SELECT DISTINCT release->>'digest' FROM {s}.ledgers, \
             jsonb_array_elements(body->'releases') AS release",
        );
        self.read("the digests the ledgers reference", move |client| {
            let rows = client.query(&sql, &[])?;
            Ok(rows
                .iter()
                .filter_map(|row| row.get::<_, Option<String>>(0))
                .collect())
        })
    }

    fn lock(
        &self,
        request: &LockRequest,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Lease, LockError> {
        lock::acquire(&self.target, request, interrupted)
    }

    fn lock_holder(&self, pipeline: &str, environment: &str) -> Option<LockHolder> {
        lock::read_holder(&self.conn, &self.target, pipeline, environment)
    }

    fn open_audit(&self) -> Result<Arc<dyn AuditSink>, StoreError> {
        match self.read_audit()? {
            Some(bytes) => {
                if let Err(error) = crate::audit::verify_bytes(&bytes) {
                    return Err(StoreError::Refused(format!(
                        "the audit chain in {} does not verify ({error}); refusing to append \
                         to it (see `pipe audit verify`)",
                        self.describe_audit()
                    )));
                }
            }
            None if !self.referenced_digests()?.is_empty() => {
                return Err(StoreError::Refused(format!(
                    "{} is empty, but the ledgers record releases; refusing to start a new \
                     chain at seq 1 (restore the table from a backup)",
                    self.describe_audit()
                )));
            }
            None => {}
        }
        let conn = Connection::open(self.target.config.clone(), "audit")
            .map_err(|e| StoreError::io("start", "the PostgreSQL audit connection", e))?;
        Ok(Arc::new(audit::PgAudit::new(
            conn,
            self.target.quoted_schema(),
        )))
    }

    fn read_audit(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = self.sql("SELECT line FROM {s}.audit ORDER BY seq");
        let lines = self.read("the audit chain", move |client| {
            let rows = client.query(&sql, &[])?;
            Ok(rows
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>())
        })?;
        if lines.is_empty() {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        Ok(Some(bytes))
    }

    fn describe_audit(&self) -> String {
        format!(
            "the audit table {}.audit of {}",
            self.target.schema,
            self.target.describe()
        )
    }

    fn write_evidence(&self, kind: &str, name: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let sql = self.sql(
            "INSERT INTO {s}.evidence (kind, name, body) VALUES ($1, $2, $3) \
             ON CONFLICT (kind, name) DO UPDATE SET body = EXCLUDED.body",
        );
        let what = format!("evidence {kind}/{name}");
        let (k, n, body) = (kind.to_string(), name.to_string(), bytes.to_vec());
        self.write("write", &what, move |tx| {
            tx.execute(&sql, &[&k, &n, &body]).map(drop)
        })?;
        Ok(format!("{what} in {}", self.target.describe()))
    }
}
