#![allow(clippy::unwrap_used)]
//! `pipe audit verify|show` through the real binary, over logs written by `pipe::audit`,
//! including appends racing from threads and from two processes.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use pipe::{AUDIT_FILE, AuditEvent};
use serde_json::{Value, json};

/// Set in a child copy of this test binary: the state dir it appends to.
const CHILD_DIR_VAR: &str = "PIPE_AUDIT_TEST_CHILD_DIR";
const CHILD_EVENTS: usize = 60;

fn pipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn audit(args: &[&str], state_dir: &Path) -> (i32, String, String) {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--state-dir", state_dir.to_str().unwrap()]);
    let output = pipe(&all);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    (output.status.code().unwrap(), stdout, stderr)
}

fn write_events(state_dir: &Path, count: usize) {
    let log = pipe::Store::directory(state_dir).audit().unwrap();
    for index in 0..count {
        log.append(
            "run-1",
            AuditEvent::GatePassed,
            "ci",
            json!({"gate": format!("gate{index}")}),
        )
        .unwrap();
    }
}

fn log_lines(state_dir: &Path) -> Vec<String> {
    fs::read_to_string(state_dir.join(AUDIT_FILE))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_long_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 30);
    let (code, stdout, _) = audit(&["verify"], dir.path());
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("audit log OK: 30 events, chain intact (last hash "),
        "{stdout}"
    );
}

#[test]
fn editing_one_byte_names_that_line() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 10);
    let path = dir.path().join(AUDIT_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let line_7_start = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(5)
        .unwrap()
        .0
        + 1;
    let gate_digit = line_7_start + find(&bytes[line_7_start..], b"\"gate6\"") + 5;
    bytes[gate_digit] = b'9';
    fs::write(&path, bytes).unwrap();

    let (code, _, stderr) = audit(&["verify"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stderr.contains("line 7: hash mismatch (the line was modified after it was written)"),
        "{stderr}"
    );
}

#[test]
fn deleting_a_line_names_where_the_chain_breaks() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 6);
    let mut lines = log_lines(dir.path());
    lines.remove(3);
    fs::write(dir.path().join(AUDIT_FILE), lines.join("\n") + "\n").unwrap();

    let (code, _, stderr) = audit(&["verify"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stderr.contains("line 4: sequence gap: expected seq 4, found 5"),
        "{stderr}"
    );
}

#[test]
fn a_missing_log_fails_and_bad_usage_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = audit(&["verify"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("no audit log at"), "{stderr}");
    assert_eq!(pipe(&["audit", "verify", "--bogus"]).status.code(), Some(2));
}

#[test]
fn threads_and_two_processes_appending_at_once_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    pipe::Store::directory(dir.path()).audit().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "append_from_a_child_process",
                    "--ignored",
                    "--quiet",
                ])
                .env(CHILD_DIR_VAR, dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let log = std::sync::Arc::new(pipe::Store::directory(dir.path()).audit().unwrap());
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let log = log.clone();
            std::thread::spawn(move || {
                for index in 0..25 {
                    log.append(
                        "parent",
                        AuditEvent::WatchSample,
                        "ci",
                        json!({"t": thread, "i": index}),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    threads
        .into_iter()
        .for_each(|thread| thread.join().unwrap());
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }

    let (code, stdout, _) = audit(&["verify"], dir.path());
    assert_eq!(code, 0, "{stdout}");
    let expected = 100 + 2 * CHILD_EVENTS;
    assert!(
        stdout.contains(&format!("OK: {expected} events")),
        "{stdout}"
    );
}

/// Not a test of its own: the body of the child processes above.
#[test]
#[ignore = "run as a child process by threads_and_two_processes_appending_at_once_keep_one_chain"]
fn append_from_a_child_process() {
    let dir = std::env::var_os(CHILD_DIR_VAR).expect("run by the parent test");
    let log = pipe::Store::directory(Path::new(&dir)).audit().unwrap();
    for index in 0..CHILD_EVENTS {
        log.append(
            "child",
            AuditEvent::WatchSample,
            "ci",
            json!({"pid": std::process::id(), "i": index}),
        )
        .unwrap();
    }
}

#[test]
fn secret_values_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = pipe::Store::directory(dir.path()).audit().unwrap();
    log.set_secrets(vec!["s3cr3t-token".into()]);
    let fields = json!({"environment": "staging", "command": "deploy --key s3cr3t-token",
                        "steps": [{"env": {"TOKEN": "s3cr3t-token"}}]});
    log.append("run-1", AuditEvent::DeployStarted, "ci", fields)
        .unwrap();
    let text = fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    let (code, stdout, _) = audit(&["show"], dir.path());
    assert_eq!(code, 0);
    assert!(stdout.contains("command=deploy --key ***"), "{stdout}");
    assert_eq!(audit(&["verify"], dir.path()).0, 0);
}

#[test]
fn show_filters_by_run_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let log = pipe::Store::directory(dir.path()).audit().unwrap();
    log.append("run-a", AuditEvent::RunStarted, "alice", Value::Null)
        .unwrap();
    log.append(
        "run-a",
        AuditEvent::DeployStarted,
        "alice",
        json!({"environment": "staging"}),
    )
    .unwrap();
    log.append(
        "run-b",
        AuditEvent::RollbackTriggered,
        "bob",
        json!({"environment": "production", "summary": "error_rate 5% > 1% held 1.0s over 3 samples"}),
    )
    .unwrap();

    let (code, all, _) = audit(&["show"], dir.path());
    assert_eq!((code, all.lines().count()), (0, 3), "{all}");
    let (_, run_a, _) = audit(&["show", "--run", "run-a"], dir.path());
    assert_eq!(run_a.lines().count(), 2, "{run_a}");
    assert!(
        run_a.lines().all(|line| line.contains("run run-a  alice")),
        "{run_a}"
    );
    let (_, production, _) = audit(&["show", "--env", "production"], dir.path());
    assert_eq!(production.lines().count(), 1, "{production}");
    assert!(
        production.contains(
            "run run-b  bob  rollback_triggered  production: error_rate 5% > 1% held 1.0s over 3 samples"
        ),
        "{production}"
    );
    let (_, none, _) = audit(
        &["show", "--run", "run-a", "--env", "production"],
        dir.path(),
    );
    assert_eq!(none, "");

    let (code, json_out, _) = audit(
        &["show", "--env", "staging", "--format", "json"],
        dir.path(),
    );
    assert_eq!(code, 0);
    let records: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(records[0]["event"], "deploy_started");
    assert_eq!(records[0]["seq"], 2);
    assert_eq!(records.as_array().unwrap().len(), 1);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .unwrap()
}
