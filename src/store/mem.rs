//! The in-memory backend: the same semantics as the directory backend, held in one process
//! (engine tests). Its lock table checks fencing tokens for real: a ledger write with a lease
//! that is no longer the holder's is refused.

use super::lock::LeaseLost;
use super::{
    ApprovalRecord, Lease, LedgerDoc, LockError, LockHolder, LockRequest, RunCreated, RunDoc,
    RunHeader, StateStore, StoreError,
};
use crate::audit::{AuditSink, AuditTail, tail_of};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Key = (String, String);

#[derive(Debug, Default)]
struct Tables {
    run_docs: BTreeMap<(String, String), Vec<u8>>,
    ledgers: BTreeMap<Key, LedgerDoc>,
    evidence: BTreeMap<Key, Vec<u8>>,
    headers: BTreeMap<String, RunHeader>,
    /// (run, node) → the node's record.
    nodes: BTreeMap<Key, Vec<u8>>,
    /// (run, environment) → approvals in recording order.
    approvals: BTreeMap<Key, Vec<ApprovalRecord>>,
}

/// Held locks by (pipeline, environment): the holder and its token.
#[derive(Debug, Default)]
struct LockTable {
    held: BTreeMap<Key, (u64, LockHolder)>,
    next_token: u64,
}

#[derive(Debug, Default)]
pub struct MemStore {
    tables: Mutex<Tables>,
    locks: Arc<Mutex<LockTable>>,
    audit: Arc<MemAudit>,
}

#[derive(Debug, Default)]
struct MemAudit {
    bytes: Mutex<Vec<u8>>,
    opened: Mutex<bool>,
}

fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn doc_key(run: &str, doc: &RunDoc) -> (String, String) {
    let name = match doc {
        RunDoc::Plan => "plan".to_string(),
        RunDoc::State => "state".to_string(),
        RunDoc::Delivery(environment) => format!("delivery/{environment}"),
    };
    (run.to_string(), name)
}

/// Removes the lock table entry when the lease is dropped, if it is still this lease's.
struct MemHeld {
    locks: Arc<Mutex<LockTable>>,
    key: Key,
    token: u64,
}

impl Drop for MemHeld {
    fn drop(&mut self) {
        let mut table = guard(&self.locks);
        if table
            .held
            .get(&self.key)
            .is_some_and(|(token, _)| *token == self.token)
        {
            table.held.remove(&self.key);
        }
    }
}

/// The lease holds while the table still names its token ([`MemStore::break_lock`] is how
/// tests take it away, as a server does when the lock's connection drops).
fn still_held(lease: &Lease) -> Result<(), LeaseLost> {
    let Some(held) = lease.held::<MemHeld>() else {
        return Err(LeaseLost("not a lease of the in-memory state".to_string()));
    };
    match guard(&held.locks).held.get(&held.key) {
        Some((token, _)) if *token == held.token => Ok(()),
        Some((token, holder)) => Err(LeaseLost(format!(
            "the lock was taken over by run {} (token {token})",
            holder.run
        ))),
        None => Err(LeaseLost(
            "the lock was released by the backend".to_string(),
        )),
    }
}

impl MemStore {
    fn try_lock(&self, request: &LockRequest) -> Result<Lease, Option<LockHolder>> {
        let key = (request.pipeline.clone(), request.environment.clone());
        let mut table = guard(&self.locks);
        if let Some((_, holder)) = table.held.get(&key) {
            return Err(Some(holder.clone()));
        }
        table.next_token += 1;
        let token = table.next_token;
        let holder = LockHolder {
            run: request.run.clone(),
            pid: std::process::id(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            supervisor: None,
            host: None,
        };
        table.held.insert(key.clone(), (token, holder));
        let held = MemHeld {
            locks: Arc::clone(&self.locks),
            key,
            token,
        };
        Ok(Lease::new(request, token, Box::new(held)).checked_by(still_held))
    }

    /// Takes the lock away from its holder, as a server does when the holder's connection
    /// drops: the old lease's writes are refused from now on.
    #[cfg(test)]
    pub fn break_lock(&self, pipeline: &str, environment: &str) {
        let key = (pipeline.to_string(), environment.to_string());
        guard(&self.locks).held.remove(&key);
    }
}

impl StateStore for MemStore {
    fn describe(&self) -> String {
        "the in-memory state".to_string()
    }

    fn read_run_doc(&self, run: &str, doc: &RunDoc) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(guard(&self.tables)
            .run_docs
            .get(&doc_key(run, doc))
            .cloned())
    }

    fn write_run_doc(&self, run: &str, doc: &RunDoc, bytes: &[u8]) -> Result<(), StoreError> {
        guard(&self.tables)
            .run_docs
            .insert(doc_key(run, doc), bytes.to_vec());
        Ok(())
    }

    fn describe_run_doc(&self, run: &str, doc: &RunDoc) -> String {
        format!("the in-memory {doc} of run {run}")
    }

    fn run_ids(&self) -> Result<Vec<String>, StoreError> {
        let tables = guard(&self.tables);
        let ids: BTreeSet<String> = tables
            .run_docs
            .keys()
            .chain(tables.nodes.keys())
            .map(|(run, _)| run.clone())
            .chain(tables.headers.keys().cloned())
            .collect();
        Ok(ids.into_iter().collect())
    }

    fn read_ledger(
        &self,
        pipeline: &str,
        environment: &str,
    ) -> Result<Option<LedgerDoc>, StoreError> {
        let key = (pipeline.to_string(), environment.to_string());
        Ok(guard(&self.tables).ledgers.get(&key).cloned())
    }

    fn write_ledger(&self, lease: &Lease, doc: &LedgerDoc) -> Result<(), StoreError> {
        let key = (doc.pipeline.clone(), doc.environment.clone());
        let current = guard(&self.locks).held.get(&key).map(|(token, _)| *token);
        if !lease.covers(&doc.pipeline, &doc.environment) || current != Some(lease.token()) {
            return Err(StoreError::StaleLease {
                environment: doc.environment.clone(),
                token: lease.token(),
            });
        }
        guard(&self.tables).ledgers.insert(key, doc.clone());
        Ok(())
    }

    fn ledger_environments(&self, pipeline: &str) -> Result<Vec<String>, StoreError> {
        let tables = guard(&self.tables);
        Ok(tables
            .ledgers
            .keys()
            .filter(|(p, _)| p == pipeline)
            .map(|(_, environment)| environment.clone())
            .collect())
    }

    fn referenced_digests(&self) -> Result<BTreeSet<String>, StoreError> {
        let tables = guard(&self.tables);
        Ok(tables
            .ledgers
            .values()
            .flat_map(|doc| doc.releases.iter().map(|r| r.digest.clone()))
            .collect())
    }

    fn lock(
        &self,
        request: &LockRequest,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Lease, LockError> {
        let started = Instant::now();
        loop {
            let holder = match self.try_lock(request) {
                Ok(lease) => return Ok(lease),
                Err(holder) => holder,
            };
            if interrupted() {
                return Err(LockError::Interrupted {
                    environment: request.environment.clone(),
                });
            }
            let waited = started.elapsed();
            if waited >= request.timeout {
                return Err(LockError::Busy {
                    environment: request.environment.clone(),
                    holder: holder.map(Box::new),
                    waited: request.timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(20).min(request.timeout - waited));
        }
    }

    fn lock_holder(&self, pipeline: &str, environment: &str) -> Option<LockHolder> {
        let key = (pipeline.to_string(), environment.to_string());
        guard(&self.locks).held.get(&key).map(|(_, h)| h.clone())
    }

    fn open_audit(&self) -> Result<Arc<dyn AuditSink>, StoreError> {
        let bytes = guard(&self.audit.bytes).clone();
        if let Err(error) = crate::audit::verify_bytes(&bytes) {
            let torn = tail_of(&bytes);
            if torn.torn.is_empty() {
                return Err(StoreError::Refused(format!(
                    "the in-memory audit chain does not verify ({error}); refusing to append to it"
                )));
            }
        }
        *guard(&self.audit.opened) = true;
        Ok(Arc::clone(&self.audit) as Arc<dyn AuditSink>)
    }

    fn read_audit(&self) -> Result<Option<Vec<u8>>, StoreError> {
        if !*guard(&self.audit.opened) {
            return Ok(None);
        }
        Ok(Some(guard(&self.audit.bytes).clone()))
    }

    fn describe_audit(&self) -> String {
        "the in-memory audit chain".to_string()
    }

    fn write_evidence(&self, kind: &str, name: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let key = (kind.to_string(), name.to_string());
        guard(&self.tables).evidence.insert(key, bytes.to_vec());
        Ok(format!("in-memory evidence {kind}/{name}"))
    }

    fn create_run(&self, run: &str, header: &RunHeader) -> Result<RunCreated, StoreError> {
        let mut tables = guard(&self.tables);
        if let Some(existing) = tables.headers.get(run) {
            return Ok(RunCreated::Exists(existing.clone()));
        }
        tables.headers.insert(run.to_string(), header.clone());
        Ok(RunCreated::Created)
    }

    fn read_run_header(&self, run: &str) -> Result<Option<RunHeader>, StoreError> {
        Ok(guard(&self.tables).headers.get(run).cloned())
    }

    fn write_node(&self, run: &str, node: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let key = (run.to_string(), node.to_string());
        guard(&self.tables).nodes.insert(key, bytes.to_vec());
        Ok(())
    }

    fn read_nodes(&self, run: &str) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
        let tables = guard(&self.tables);
        Ok(tables
            .nodes
            .iter()
            .filter(|((r, _), _)| r == run)
            .map(|((_, node), bytes)| (node.clone(), bytes.clone()))
            .collect())
    }

    fn record_approval(
        &self,
        run: &str,
        environment: &str,
        approval: &ApprovalRecord,
    ) -> Result<(), StoreError> {
        let mut tables = guard(&self.tables);
        let key = (run.to_string(), environment.to_string());
        let recorded = tables.approvals.entry(key).or_default();
        if recorded.iter().any(|a| a.approver == approval.approver) {
            return Err(StoreError::Refused(format!(
                "{} has already approved {environment} in run {run}; the quorum needs distinct \
                 approvers",
                approval.approver
            )));
        }
        recorded.push(approval.clone());
        Ok(())
    }

    fn approvals(&self, run: &str, environment: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let key = (run.to_string(), environment.to_string());
        Ok(guard(&self.tables)
            .approvals
            .get(&key)
            .cloned()
            .unwrap_or_default())
    }

    fn consume_approvals(
        &self,
        run: &str,
        environment: &str,
        by: &str,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let mut tables = guard(&self.tables);
        let key = (run.to_string(), environment.to_string());
        let mut claimed = Vec::new();
        for approval in tables.approvals.entry(key).or_default() {
            if approval.consumed_by.is_none() {
                approval.consumed_by = Some(by.to_string());
                claimed.push(approval.clone());
            }
        }
        Ok(claimed)
    }

    fn remove_run(&self, run: &str) -> Result<(), StoreError> {
        let mut tables = guard(&self.tables);
        tables.run_docs.retain(|(r, _), _| r != run);
        tables.nodes.retain(|(r, _), _| r != run);
        tables.approvals.retain(|(r, _), _| r != run);
        tables.headers.remove(run);
        Ok(())
    }
}

impl AuditSink for MemAudit {
    fn append_with(&self, build: &mut dyn FnMut(&AuditTail) -> String) -> io::Result<()> {
        let mut bytes = guard(&self.bytes);
        let tail = tail_of(&bytes);
        let text = build(&tail);
        bytes.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;
    use crate::store::Store;
    use serde_json::Value;

    fn request(run: &str, timeout: Duration) -> LockRequest {
        LockRequest::new("api", "prod", run, timeout)
    }

    #[test]
    fn a_held_lock_names_its_holder_and_frees_when_the_lease_is_dropped() {
        let scratch = tempfile::tempdir().unwrap();
        let store = Store::memory(scratch.path());
        let held = store.lock(&request("run-1", Duration::ZERO)).unwrap();
        let busy = store
            .lock(&request("run-2", Duration::from_millis(60)))
            .unwrap_err();
        let message = busy.to_string();
        assert!(
            message.starts_with("environment prod is locked by run run-1 (pid "),
            "{message}"
        );
        let other = LockRequest::new("api", "staging", "run-3", Duration::ZERO);
        assert!(
            store.lock(&other).is_ok(),
            "environments lock independently"
        );
        drop(held);
        assert!(store.state().lock_holder("api", "prod").is_none());
        let again = store.lock(&request("run-2", Duration::ZERO)).unwrap();
        assert_eq!(
            store.state().lock_holder("api", "prod").unwrap().run,
            "run-2"
        );
        drop(again);
    }

    #[test]
    fn an_interrupt_stops_the_wait() {
        let scratch = tempfile::tempdir().unwrap();
        let store = Store::memory(scratch.path());
        let _held = store.lock(&request("run-1", Duration::ZERO)).unwrap();
        let error = store
            .lock_unless(&request("run-2", Duration::from_secs(60)), &|| true)
            .unwrap_err();
        assert!(matches!(error, LockError::Interrupted { .. }), "{error}");
    }

    #[test]
    fn the_audit_chain_is_the_same_chain_as_on_disk_and_verifies() {
        let scratch = tempfile::tempdir().unwrap();
        let store = Store::memory(scratch.path());
        assert!(store.state().read_audit().unwrap().is_none());
        let log = store.audit().unwrap();
        for event in [AuditEvent::RunStarted, AuditEvent::RunFinished] {
            log.append("run-1", event, "ci", Value::Null).unwrap();
        }
        let summary = store.verify_audit().unwrap();
        assert_eq!(summary.events, 2);
        let records = store.audit_records().unwrap();
        assert_eq!(records[1].prev, records[0].hash);
        assert_eq!(records[1].event, "run_finished");
    }

    #[test]
    fn run_documents_are_kept_per_run_and_listed() {
        let store = MemStore::default();
        assert!(store.read_run_doc("r1", &RunDoc::Plan).unwrap().is_none());
        store.write_run_doc("r1", &RunDoc::Plan, b"plan").unwrap();
        let delivery = RunDoc::Delivery("prod".into());
        store.write_run_doc("r2", &delivery, b"record").unwrap();
        assert_eq!(
            store.read_run_doc("r1", &RunDoc::Plan).unwrap().unwrap(),
            b"plan"
        );
        assert!(store.read_run_doc("r2", &RunDoc::Plan).unwrap().is_none());
        assert_eq!(store.run_ids().unwrap(), ["r1", "r2"]);
    }
}
