//! A run refuses an audit log it cannot trust: a chain that no longer verifies (naming the
//! line), or a log deleted while the ledger still records releases. Nothing deploys.
#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::*;

fn deploys(project: &Project) -> usize {
    std::fs::read_to_string(project.env_dir("staging").join("deploys"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn a_run_refuses_to_append_to_a_chain_that_does_not_verify() {
    let project = Project::new();
    assert_eq!(code(&project.release(GOOD)), 0);
    let path = project.root().join(".pipe/audit.jsonl");
    let log = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = log.lines().map(str::to_string).collect();
    lines[2] = lines[2].replacen("\"run\":\"", "\"run\":\"x", 1);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let before = deploys(&project);

    let refused = project.release(GOOD2);
    let all = text(&refused);
    assert_ne!(code(&refused), 0, "{all}");
    assert!(all.contains("does not verify"), "{all}");
    assert!(all.contains("line 3: hash mismatch"), "{all}");
    assert_eq!(deploys(&project), before, "nothing deployed: {all}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        lines.join("\n") + "\n"
    );
}

#[test]
fn a_deleted_audit_log_with_ledger_history_is_an_error_not_a_new_chain() {
    let project = Project::new();
    assert_eq!(code(&project.release(GOOD)), 0);
    let path = project.root().join(".pipe/audit.jsonl");
    std::fs::remove_file(&path).unwrap();
    let before = deploys(&project);

    let refused = project.release(GOOD2);
    let all = text(&refused);
    assert_ne!(code(&refused), 0, "{all}");
    assert!(all.contains("is missing"), "{all}");
    assert!(all.contains("ledger"), "{all}");
    assert_eq!(deploys(&project), before, "nothing deployed: {all}");
    assert!(!path.exists(), "no new chain was started at seq 1");
}
