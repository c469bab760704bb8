//! `pipe drill NAME` through the real binary: a "database" file is backed up, restored and
//! verified by real processes; the drill passes or fails on its RTO, its RPO and its blocks,
//! and each result is an audit event and an evidence record.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn pipeline(rto: &str, rpo: &str, backup: &str, restore: &str, verify: &str) -> String {
    format!(
        r#"pipeline shop {{
  secret db_password {{ from = env("DB_PASSWORD") }}
  environment staging {{ data = "data/orders.db" }}
  job build {{ run "true" }}
  drill restore_db {{
    environment = staging
    rto = {rto}
    rpo = {rpo}
    secrets = [db_password]
    backup  {{ run "{backup}" }}
    restore {{ run "{restore}" }}
    verify  {{ run "{verify}" }}
  }}
}}
"#
    )
}

const BACKUP: &str =
    "mkdir -p backups && cp ${{ env.data }} backups/orders.db && echo using $DB_PASSWORD";
const RESTORE: &str = "mkdir -p restored && cp backups/orders.db restored/orders.db";
const VERIFY: &str = "cmp restored/orders.db ${{ env.data }}";

fn project(pipeline_text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/orders.db"), "order 1\norder 2\n").unwrap();
    std::fs::write(dir.path().join("pipeline.pipe"), pipeline_text).unwrap();
    dir
}

fn pipe(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .current_dir(dir)
        .env("DB_PASSWORD", "s3cret-drill-pw")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The one evidence record of the project, parsed.
fn evidence(dir: &Path) -> serde_json::Value {
    let records: Vec<_> = std::fs::read_dir(dir.join(".pipe/evidence/drills"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    serde_json::from_str(&std::fs::read_to_string(&records[0]).unwrap()).unwrap()
}

#[test]
fn a_drill_that_restores_in_time_passes_and_is_audited_and_kept_as_evidence() {
    let dir = project(&pipeline("2m", "1h", BACKUP, RESTORE, VERIFY));
    let output = pipe(dir.path(), &["drill", "restore_db"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("drill restore_db passed"), "{shown}");
    assert_eq!(
        std::fs::read(dir.path().join("restored/orders.db")).unwrap(),
        b"order 1\norder 2\n"
    );
    let record = evidence(dir.path());
    assert_eq!(record["outcome"], "passed");
    assert_eq!(record["environment"], "staging");
    assert_eq!(record["rto_ms"], 120_000);
    assert!(record["restore_ms"].as_u64().unwrap() < 120_000);

    let verify = pipe(dir.path(), &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let log = std::fs::read_to_string(dir.path().join(".pipe/audit.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["drill_started", "drill_finished"]);
    assert_eq!(events[1]["outcome"], "passed");

    let logs = walk(&dir.path().join(".pipe"));
    assert!(!logs.contains("s3cret-drill-pw"), "a secret reached .pipe/");
    assert!(
        logs.contains("using ***"),
        "the backup's log is kept, redacted"
    );
}

#[test]
fn a_restore_slower_than_the_rto_fails_the_drill_with_the_measured_time() {
    let slow_restore = format!("sleep 1 && {RESTORE}");
    let dir = project(&pipeline("500ms", "1h", BACKUP, &slow_restore, VERIFY));
    let output = pipe(dir.path(), &["drill", "restore_db"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("over the RTO of 500ms"), "{shown}");
    let record = evidence(dir.path());
    assert_eq!(record["outcome"], "failed");
    assert!(record["restore_ms"].as_u64().unwrap() >= 1000);
    assert!(record["verify_ms"].is_u64(), "verify still ran: {record}");
}

#[test]
fn a_backup_older_than_the_rpo_fails_the_drill() {
    let old_backup = format!("{BACKUP} && echo backup_time=1700000000 >> $PIPE_OUTPUT");
    let dir = project(&pipeline("2m", "24h", &old_backup, RESTORE, VERIFY));
    let output = pipe(dir.path(), &["drill", "restore_db"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("over the RPO of 1d"), "{shown}");
    assert_eq!(evidence(dir.path())["outcome"], "failed");
}

#[test]
fn a_restore_that_does_not_verify_fails_the_drill() {
    let corrupting = format!("{RESTORE} && echo lost >> restored/orders.db");
    let dir = project(&pipeline("2m", "1h", BACKUP, &corrupting, VERIFY));
    let output = pipe(dir.path(), &["drill", "restore_db"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("verify failed"), "{shown}");
    assert_eq!(evidence(dir.path())["outcome"], "failed");
}

#[test]
fn an_unknown_drill_is_a_usage_error_that_lists_the_drills() {
    let dir = project(&pipeline("2m", "1h", BACKUP, RESTORE, VERIFY));
    let output = pipe(dir.path(), &["drill", "restore"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("has no drill restore (drills: restore_db)"));
    assert!(!dir.path().join(".pipe/audit.jsonl").exists());
}

#[test]
fn the_evidence_report_lists_the_drill_and_refuses_a_tampered_log() {
    let dir = project(&pipeline("2m", "1h", BACKUP, RESTORE, VERIFY));
    assert_eq!(
        pipe(dir.path(), &["drill", "restore_db"]).status.code(),
        Some(0)
    );
    let report = pipe(dir.path(), &["evidence"]);
    let shown = text(&report);
    assert_eq!(report.status.code(), Some(0), "{shown}");
    assert!(shown.contains("2 events, hash chain verified"), "{shown}");
    assert!(shown.contains("- Drills: 1"), "{shown}");
    assert!(
        shown.contains("| drill_finished | drill restore_db passed"),
        "{shown}"
    );
    let json = pipe(
        dir.path(),
        &["evidence", "--format", "json", "--since", "2000-01-01"],
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["sections"]["drills"][0]["outcome"], "passed");

    let log = dir.path().join(".pipe/audit.jsonl");
    let edited = std::fs::read_to_string(&log)
        .unwrap()
        .replace("\"outcome\":\"passed\"", "\"outcome\":\"failed\"");
    std::fs::write(&log, edited).unwrap();
    let refused = pipe(dir.path(), &["evidence"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("no evidence report from an unverified audit log"));
    assert!(refused.stdout.is_empty());
}

/// A real SQLite database restored by the bundled `std/sqlite` templates used as the drill's
/// blocks. Needs the sqlite3 shell (Debian's `sqlite3`, on the CI machine).
#[test]
fn a_sqlite_drill_made_of_stdlib_templates_restores_a_real_database() {
    assert!(
        Command::new("sqlite3").arg("-version").output().is_ok(),
        "this test needs the sqlite3 shell: apt-get install sqlite3"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("restored")).unwrap();
    let made = Command::new("sqlite3")
        .arg(dir.path().join("data/shop.db"))
        .arg("CREATE TABLE orders(id INTEGER); INSERT INTO orders VALUES (1), (2);")
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(
        dir.path().join("pipeline.pipe"),
        r#"import "std/sqlite"

pipeline shop {
  environment staging { database = "data/shop.db" }
  job build { run "true" }
  drill restore_db {
    environment = staging
    rto = 2m
    rpo = 24h
    backup  = sqlite_backup(database: "data/shop.db", backup: "backups/shop.db")
    restore = sqlite_restore(database: "restored/shop.db", backup: "backups/shop.db")
    verify  = sqlite_verify(database: "restored/shop.db", query: "SELECT count(*) FROM orders;", expect: "2")
  }
}
"#,
    )
    .unwrap();
    let output = pipe(dir.path(), &["drill", "restore_db"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert_eq!(evidence(dir.path())["outcome"], "passed");
    let count = Command::new("sqlite3")
        .arg(dir.path().join("restored/shop.db"))
        .arg("SELECT count(*) FROM orders;")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "2");
}

/// Every file under `root`, concatenated.
fn walk(root: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.push_str(&walk(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push_str(&text);
        }
    }
    out
}
