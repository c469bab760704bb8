//! Runs: what agents share about a run besides its documents, on PostgreSQL — the header
//! (created once), one row per node record, and approvals (one per approver, consumed once).

use super::PgStore;
use crate::store::{ApprovalRecord, RunCreated, RunHeader, StoreError};
use std::collections::BTreeMap;

fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Invalid {
        what: what.to_string(),
        reason: error.to_string(),
    })
}

impl PgStore {
    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        text: &str,
        what: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
            what: format!("{what} in {}", self.target.describe()),
            reason: error.to_string(),
        })
    }

    pub(super) fn create_run_row(
        &self,
        run: &str,
        header: &RunHeader,
    ) -> Result<RunCreated, StoreError> {
        let insert = self.sql(
            "INSERT INTO {s}.runs (run, header) VALUES ($1, $2::text::jsonb) \
             ON CONFLICT (run) DO NOTHING RETURNING run",
        );
        let select = self.sql("SELECT header::text FROM {s}.runs WHERE run = $1");
        let what = format!("the header of run {run}");
        let (id, body) = (run.to_string(), to_json(header, &what)?);
        let existing = self.write("create", &what, move |tx| {
            if tx.query_opt(&insert, &[&id, &body])?.is_some() {
                return Ok(None);
            }
            Ok(Some(tx.query_one(&select, &[&id])?.get::<_, String>(0)))
        })?;
        match existing {
            None => Ok(RunCreated::Created),
            Some(text) => Ok(RunCreated::Exists(self.parse(&text, &what)?)),
        }
    }

    pub(super) fn run_header(&self, run: &str) -> Result<Option<RunHeader>, StoreError> {
        let select = self.sql("SELECT header::text FROM {s}.runs WHERE run = $1");
        let what = format!("the header of run {run}");
        let id = run.to_string();
        let text = self.read(&what, move |client| {
            Ok(client
                .query_opt(&select, &[&id])?
                .map(|row| row.get::<_, String>(0)))
        })?;
        text.map(|text| self.parse(&text, &what)).transpose()
    }

    pub(super) fn write_node_row(
        &self,
        run: &str,
        node: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let upsert = self.sql(
            "INSERT INTO {s}.run_nodes (run, node, body) VALUES ($1, $2, $3) \
             ON CONFLICT (run, node) DO UPDATE SET body = EXCLUDED.body, updated_at = now()",
        );
        let (id, name, body) = (run.to_string(), node.to_string(), bytes.to_vec());
        let what = format!("node {node} of run {run}");
        self.write("write", &what, move |tx| {
            tx.execute(&upsert, &[&id, &name, &body]).map(drop)
        })
    }

    pub(super) fn node_rows(&self, run: &str) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
        let select = self.sql("SELECT node, body FROM {s}.run_nodes WHERE run = $1");
        let id = run.to_string();
        self.read(&format!("the nodes of run {run}"), move |client| {
            let rows = client.query(&select, &[&id])?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }

    pub(super) fn insert_approval(
        &self,
        run: &str,
        environment: &str,
        approval: &ApprovalRecord,
    ) -> Result<(), StoreError> {
        let insert = self.sql(
            "INSERT INTO {s}.approvals (run, environment, approver, record) \
             VALUES ($1, $2, $3, $4::text::jsonb) \
             ON CONFLICT (run, environment, approver) DO NOTHING RETURNING approver",
        );
        let what = format!("an approval of {environment} in run {run}");
        let unconsumed = ApprovalRecord {
            consumed_by: None,
            ..approval.clone()
        };
        let body = to_json(&unconsumed, &what)?;
        let (id, env, approver) = (
            run.to_string(),
            environment.to_string(),
            approval.approver.clone(),
        );
        let inserted = self.write("record", &what, move |tx| {
            Ok(tx
                .query_opt(&insert, &[&id, &env, &approver, &body])?
                .is_some())
        })?;
        if inserted {
            return Ok(());
        }
        Err(StoreError::Refused(format!(
            "{} has already approved {environment} in run {run}; the quorum needs distinct \
             approvers",
            approval.approver
        )))
    }

    /// The approvals of (run, environment) in recording order; with `consume_by`, only the
    /// unconsumed ones, marked consumed by it in the same statement.
    pub(super) fn approval_rows(
        &self,
        run: &str,
        environment: &str,
        consume_by: Option<&str>,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let what = format!("the approvals of {environment} in run {run}");
        let (id, env) = (run.to_string(), environment.to_string());
        let rows: Vec<(i64, String, Option<String>)> = match consume_by {
            None => {
                let select = self.sql(
                    "SELECT position, record::text, consumed_by FROM {s}.approvals \
                     WHERE run = $1 AND environment = $2",
                );
                self.read(&what, move |client| {
                    let rows = client.query(&select, &[&id, &env])?;
                    Ok(rows
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2)))
                        .collect())
                })?
            }
            Some(by) => {
                let update = self.sql(
                    "UPDATE {s}.approvals SET consumed_by = $3 WHERE run = $1 \
                     AND environment = $2 AND consumed_by IS NULL \
                     RETURNING position, record::text, consumed_by",
                );
                let by = by.to_string();
                self.write("consume", &what, move |tx| {
                    let rows = tx.query(&update, &[&id, &env, &by])?;
                    Ok(rows
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2)))
                        .collect())
                })?
            }
        };
        let mut rows = rows;
        rows.sort_by_key(|(position, _, _)| *position);
        rows.into_iter()
            .map(|(_, text, consumed_by)| {
                let record: ApprovalRecord = self.parse(&text, &what)?;
                Ok(ApprovalRecord {
                    consumed_by,
                    ..record
                })
            })
            .collect()
    }

    pub(super) fn delete_run(&self, run: &str) -> Result<(), StoreError> {
        let deletes: Vec<String> = ["run_docs", "run_nodes", "approvals", "runs"]
            .iter()
            .map(|table| self.sql(&format!("DELETE FROM {{s}}.{table} WHERE run = $1")))
            .collect();
        let id = run.to_string();
        self.write("remove", &format!("run {run}"), move |tx| {
            for delete in &deletes {
                tx.execute(delete, &[&id])?;
            }
            Ok(())
        })
    }
}
