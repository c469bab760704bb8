//! The checks every `StateStore` backend must pass for the operations agents share (run
//! headers, node records, approvals, removal): a backend's tests call [`check_backend`].

use crate::store::{ApprovalRecord, RunCreated, RunHeader, StateStore, fs::FsStore, mem::MemStore};

pub(crate) fn header(digest: &str) -> RunHeader {
    RunHeader {
        plan_digest: digest.to_string(),
        pipeline: "api".to_string(),
        initiator: "carol".to_string(),
        started_at: "2026-01-01T00:00:00.000Z".to_string(),
    }
}

pub(crate) fn approval(approver: &str, at: &str) -> ApprovalRecord {
    ApprovalRecord {
        approver: approver.to_string(),
        source: "cli".to_string(),
        evidence_digest: None,
        at: at.to_string(),
        consumed_by: None,
    }
}

pub(crate) fn runs_are_created_once(store: &dyn StateStore) {
    assert!(store.read_run_header("r1").unwrap().is_none());
    let first = store.create_run("r1", &header("sha256:a")).unwrap();
    assert_eq!(first, RunCreated::Created);
    let second = store.create_run("r1", &header("sha256:b")).unwrap();
    assert_eq!(second, RunCreated::Exists(header("sha256:a")));
    assert_eq!(
        store.read_run_header("r1").unwrap(),
        Some(header("sha256:a"))
    );
    assert!(store.run_ids().unwrap().contains(&"r1".to_string()));
}

pub(crate) fn nodes_are_written_one_by_one(store: &dyn StateStore) {
    store.write_node("r1", "build", b"one").unwrap();
    store.write_node("r1", "test[linux,1.80]", b"two").unwrap();
    store.write_node("r1", "build", b"three").unwrap();
    store.write_node("r2", "build", b"other run").unwrap();
    let nodes = store.read_nodes("r1").unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes["build"], b"three");
    assert_eq!(nodes["test[linux,1.80]"], b"two");
    assert!(store.read_nodes("none").unwrap().is_empty());
}

pub(crate) fn approvals_are_distinct_and_consumed_once(store: &dyn StateStore) {
    store
        .record_approval("r1", "prod", &approval("alice", "1"))
        .unwrap();
    let again = store.record_approval("r1", "prod", &approval("alice", "2"));
    assert!(again.unwrap_err().to_string().contains("already approved"));
    store
        .record_approval("r1", "prod", &approval("bob", "3"))
        .unwrap();
    store
        .record_approval("r1", "staging", &approval("dan", "4"))
        .unwrap();
    let names = |list: Vec<ApprovalRecord>| -> Vec<String> {
        list.into_iter().map(|a| a.approver).collect()
    };
    assert_eq!(
        names(store.approvals("r1", "prod").unwrap()),
        ["alice", "bob"]
    );
    let claimed = store.consume_approvals("r1", "prod", "attempt-1").unwrap();
    assert_eq!(names(claimed.clone()), ["alice", "bob"]);
    assert!(
        claimed
            .iter()
            .all(|a| a.consumed_by.as_deref() == Some("attempt-1"))
    );
    assert!(
        store
            .consume_approvals("r1", "prod", "attempt-2")
            .unwrap()
            .is_empty()
    );
    let after = store.approvals("r1", "prod").unwrap();
    assert_eq!(after.len(), 2);
    assert!(
        after
            .iter()
            .all(|a| a.consumed_by.as_deref() == Some("attempt-1"))
    );
    let consumed_again = store.record_approval("r1", "prod", &approval("alice", "5"));
    assert!(
        consumed_again.is_err(),
        "a consumed approver cannot approve twice"
    );
    assert_eq!(store.approvals("r2", "prod").unwrap(), []);
    assert_eq!(names(store.approvals("r1", "staging").unwrap()), ["dan"]);
}

pub(crate) fn a_removed_run_leaves_nothing(store: &dyn StateStore) {
    store.create_run("gone", &header("sha256:a")).unwrap();
    store.write_node("gone", "build", b"x").unwrap();
    store
        .write_run_doc("gone", &crate::store::RunDoc::Plan, b"plan")
        .unwrap();
    store
        .record_approval("gone", "prod", &approval("alice", "1"))
        .unwrap();
    store.create_run("kept", &header("sha256:a")).unwrap();
    store.remove_run("gone").unwrap();
    store.remove_run("never-existed").unwrap();
    assert!(!store.run_ids().unwrap().contains(&"gone".to_string()));
    assert!(store.read_run_header("gone").unwrap().is_none());
    assert!(store.read_nodes("gone").unwrap().is_empty());
    assert!(store.approvals("gone", "prod").unwrap().is_empty());
    assert!(store.read_run_header("kept").unwrap().is_some());
}

/// Every check above against a fresh store from `make`.
pub(crate) fn check_backend(make: &dyn Fn() -> Box<dyn StateStore>) {
    runs_are_created_once(make().as_ref());
    nodes_are_written_one_by_one(make().as_ref());
    approvals_are_distinct_and_consumed_once(make().as_ref());
    a_removed_run_leaves_nothing(make().as_ref());
}

#[test]
fn the_memory_backend_conforms() {
    check_backend(&|| Box::new(MemStore::default()));
}

#[test]
fn the_directory_backend_conforms() {
    let scratch = tempfile::tempdir().unwrap();
    let counter = std::cell::Cell::new(0);
    check_backend(&|| {
        counter.set(counter.get() + 1);
        Box::new(FsStore::new(
            &scratch.path().join(counter.get().to_string()),
        ))
    });
}

#[test]
fn the_directory_artifact_store_lists_and_removes() {
    use crate::run::artifact::{ArtifactStore, Provenance};
    use crate::store::Artifacts;
    let scratch = tempfile::tempdir().unwrap();
    let store = ArtifactStore::new(&scratch.path().join("sha256"));
    assert!(Artifacts::list(&store).unwrap().is_empty());
    let file = scratch.path().join("a.txt");
    std::fs::write(&file, b"a").unwrap();
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/b.txt"), b"b").unwrap();
    let provenance = Provenance::default();
    let a = store
        .put("a", &file, &provenance, None)
        .unwrap()
        .record
        .digest;
    let t = store
        .put("t", &tree, &provenance, None)
        .unwrap()
        .record
        .digest;
    let mut both = vec![a.clone(), t.clone()];
    both.sort();
    assert_eq!(Artifacts::list(&store).unwrap(), both);
    Artifacts::remove(&store, &t).unwrap();
    Artifacts::remove(&store, &t).unwrap();
    assert_eq!(Artifacts::list(&store).unwrap(), std::slice::from_ref(&a));
    assert!(store.lookup(&t).is_none());
    assert!(store.lookup(&a).is_some());
}
