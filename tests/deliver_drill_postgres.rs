//! Restore drills made of `std/postgres` against a real PostgreSQL 15 cluster: a schema with
//! data is dumped (custom format), the dump is stored by digest, restored into a fresh,
//! separate database and verified by a real query. Also: a corrupt dump, a failing verify, an
//! RPO breach judged by the dump's own timestamp, `--from DIGEST`, a tampered stored backup,
//! and `--due` / `--status` across a simulated month (`PIPE_NOW`, never sleeping).

#![allow(clippy::unwrap_used)]

#[path = "support/postgres.rs"]
mod postgres;

use postgres::Postgres;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const VERIFY_QUERY: &str =
    "SELECT count(*), now() - max(created_at) < make_interval(days => 1) FROM orders";

/// A project whose drill dumps `shop`, restores into a fresh `shop_drill` and checks that it
/// holds the three orders, the newest less than a day old.
fn project(pg: &Postgres, verify_expect: &str, every: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = format!(
        r#"import "std/postgres"

pipeline shop {{
  env {{
    PGHOST = "{socket}"
    PGUSER = "pipe"
  }}
  environment staging {{ database = "shop" }}
  job build {{ run "true" }}
  drill restore_db {{
    environment = staging
    rto   = 2m
    rpo   = 24h
    {every}
    backup  = postgres_backup(database: "${{{{ env.database }}}}", backup: "backups/shop.dump")
    restore = postgres_restore(database: "shop_drill", backup: "${{{{ backup.path }}}}", fresh: true)
    verify  = postgres_verify(database: "shop_drill", query: "{VERIFY_QUERY}", expect: "{verify_expect}")
  }}
}}
"#,
        socket = pg.socket_dir().display(),
    );
    std::fs::write(dir.path().join("pipeline.pipe"), pipeline).unwrap();
    dir
}

fn seeded() -> Postgres {
    let pg = Postgres::start();
    pg.create_database("shop");
    pg.psql(
        "shop",
        "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, \
         created_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO orders (item, created_at) VALUES ('tea', now() - interval '3 days'), \
         ('cups', now() - interval '2 hours'), ('pot', now() - interval '5 minutes');",
    );
    pg
}

fn pipe(dir: &Path, args: &[&str], now: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipe"));
    command
        .args(args)
        .current_dir(dir)
        .env("PATH", postgres::path_with_bin_dir())
        .env("NO_COLOR", "1")
        .env_remove("PIPE_NOW");
    if let Some(now) = now {
        command.env("PIPE_NOW", now);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn drill(dir: &Path, args: &[&str], now: Option<&str>) -> (i32, String) {
    let output = pipe(dir, &[&["drill"], args].concat(), now);
    (output.status.code().unwrap(), text(&output))
}

/// The audit log's records, after checking that its chain verifies.
fn audit(dir: &Path) -> Vec<Value> {
    let verify = pipe(dir, &["audit", "verify"], None);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    std::fs::read_to_string(dir.join(".pipe/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn last_finished(dir: &Path) -> Value {
    audit(dir)
        .into_iter()
        .rev()
        .find(|e| e["event"] == "drill_finished")
        .unwrap()
}

#[test]
fn a_postgres_drill_restores_a_stored_dump_into_a_fresh_database_and_can_replay_it_by_digest() {
    let pg = seeded();
    let dir = project(&pg, "3|t", "");
    let (code, shown) = drill(dir.path(), &["restore_db"], None);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("drill restore_db passed"), "{shown}");
    assert_eq!(
        pg.psql(
            "shop_drill",
            "SELECT string_agg(item, ',' ORDER BY id) FROM orders"
        ),
        "tea,cups,pot"
    );

    let finished = last_finished(dir.path());
    assert_eq!(finished["outcome"], "passed");
    let backup = &finished["backup"];
    let digest = backup["digest"].as_str().unwrap();
    let dump = std::fs::read(dir.path().join("backups/shop.dump")).unwrap();
    assert_eq!(backup["size"], dump.len() as u64);
    assert!(dump.starts_with(b"PGDMP"), "a custom-format dump");
    let stored = Path::new(backup["path"].as_str().unwrap());
    assert!(
        stored.starts_with(dir.path().join(".pipe/artifacts/sha256")),
        "{stored:?}"
    );
    assert_eq!(
        std::fs::read(stored).unwrap(),
        dump,
        "the restore read the stored copy"
    );
    // The creation time is the dump's own ("Archive created at"), to the second.
    let created =
        chrono::DateTime::parse_from_rfc3339(backup["created_at"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(created);
    assert!(
        age.num_seconds() >= 0 && age.num_seconds() < 120,
        "{created}"
    );
    let stored_events: Vec<Value> = audit(dir.path())
        .into_iter()
        .filter(|e| e["event"] == "artifact_stored")
        .collect();
    assert_eq!(stored_events.len(), 1);
    assert_eq!(stored_events[0]["digest"], digest);

    // Rehearse restoring that same backup later: no new dump, the same digest restored.
    pg.psql("shop", "INSERT INTO orders (item) VALUES ('saucer')");
    pg.psql("shop_drill", "DROP TABLE orders");
    let (code, shown) = drill(dir.path(), &["restore_db", "--from", digest], None);
    assert_eq!(code, 0, "{shown}");
    let replay = last_finished(dir.path());
    assert_eq!(replay["backup"]["digest"], digest);
    assert_eq!(replay["backup"]["created_at"], backup["created_at"]);
    assert_eq!(replay["backup_ms"], Value::Null, "no backup was taken");
    assert_eq!(pg.psql("shop_drill", "SELECT count(*) FROM orders"), "3");

    // A stored backup that changed is refused before anything restores it.
    pg.psql("shop_drill", "DROP TABLE orders");
    make_writable(stored);
    std::fs::write(stored, b"PGDMP not the dump that was stored").unwrap();
    let (code, shown) = drill(dir.path(), &["restore_db", "--from", digest], None);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("refusing to restore it"), "{shown}");
    let refused = last_finished(dir.path());
    assert_eq!(refused["outcome"], "failed");
    assert_eq!(refused["restore_ms"], Value::Null, "the restore never ran");
    assert!(
        audit(dir.path())
            .iter()
            .any(|e| e["event"] == "artifact_verification_failed" && e["digest"] == digest)
    );
    assert!(
        !pg.try_psql("shop_drill", "SELECT 1 FROM orders")
            .status
            .success()
    );

    let (code, shown) = drill(dir.path(), &["restore_db", "--from", "sha256:0000"], None);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("no stored backup sha256:0000"), "{shown}");
}

#[test]
fn a_corrupt_dump_fails_the_restore_with_the_reason_audited_and_in_the_evidence() {
    let pg = seeded();
    let dir = project(&pg, "3|t", "");
    let script = dir.path().join("corrupt.sh");
    // A backup block that hands over a dump truncated half way (a torn copy).
    std::fs::write(
        &script,
        "set -e\nmkdir -p backups\npg_dump --format=custom --file=backups/full.dump shop\n\
         head -c $(( $(stat -c %s backups/full.dump) / 2 )) backups/full.dump > backups/shop.dump\n\
         echo backup_file=backups/shop.dump >> \"$PIPE_OUTPUT\"\n",
    )
    .unwrap();
    let pipeline = std::fs::read_to_string(dir.path().join("pipeline.pipe"))
        .unwrap()
        .replace(
            r#"backup  = postgres_backup(database: "${{ env.database }}", backup: "backups/shop.dump")"#,
            r#"backup  { run "sh corrupt.sh" }"#,
        );
    std::fs::write(dir.path().join("pipeline.pipe"), pipeline).unwrap();
    let (code, shown) = drill(dir.path(), &["restore_db"], None);
    assert_eq!(code, 1, "{shown}");
    let finished = last_finished(dir.path());
    assert_eq!(finished["outcome"], "failed");
    let why = finished["failures"][0].as_str().unwrap();
    assert!(why.starts_with("restore failed: "), "{why}");
    assert_eq!(finished["verify_ms"], Value::Null);
    let evidence = pipe(dir.path(), &["evidence", "--format", "json"], None);
    let report: Value = serde_json::from_slice(&evidence.stdout).unwrap();
    let record = &report["sections"]["drills"][0];
    assert_eq!(record["outcome"], "failed");
    assert_eq!(record["failures"][0], why);
}

#[test]
fn a_verify_query_that_fails_fails_the_drill() {
    let pg = seeded();
    let dir = project(&pg, "4|t", "");
    let (code, shown) = drill(dir.path(), &["restore_db"], None);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("verify failed"), "{shown}");
    let finished = last_finished(dir.path());
    assert_eq!(finished["outcome"], "failed");
    assert!(finished["restore_ms"].is_u64(), "the restore itself worked");
    assert!(
        finished["summary"].as_str().unwrap().contains("failed"),
        "{finished}"
    );
}

#[test]
fn a_dump_older_than_the_rpo_by_its_own_timestamp_fails_the_drill() {
    let pg = seeded();
    let dir = project(&pg, "3|t", "");
    // Two days on, the dump taken now is two days old: the header says when it was made.
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (code, shown) = drill(dir.path(), &["restore_db"], Some(&later));
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("over the RPO of 1d"), "{shown}");
    let finished = last_finished(dir.path());
    let age = finished["backup_age_ms"].as_u64().unwrap();
    assert!(
        (2 * 86_400_000 - 120_000..=2 * 86_400_000 + 120_000).contains(&age),
        "{age}"
    );
}

#[test]
fn due_and_status_follow_every_across_a_simulated_month() {
    let pg = seeded();
    let dir = project(&pg, "3|t", "every = 30d");
    // Day N of the simulated month, an hour past the schedule's boundaries so that the seconds
    // a drill takes never tip "due in 20d" to "19d".
    let day = |n: i64| {
        let at = chrono::Utc::now() + chrono::Duration::days(n) + chrono::Duration::hours(1);
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let start = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, shown) = drill(dir.path(), &["--status"], Some(&start));
    assert_eq!(code, 1, "never passed: {shown}");
    assert!(shown.contains("due now (never passed)"), "{shown}");

    let (code, shown) = drill(dir.path(), &["--due"], Some(&start));
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("drill restore_db passed"), "{shown}");

    let (code, shown) = drill(dir.path(), &["--status"], Some(&day(10)));
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("due in 19d"), "{shown}");
    let (code, shown) = drill(dir.path(), &["--due"], Some(&day(10)));
    assert_eq!((code, shown.trim()), (0, "no drill is due"));
    assert_eq!(count_finished(dir.path()), 1, "nothing ran on day 10");

    let (code, shown) = drill(dir.path(), &["--status"], Some(&day(31)));
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("overdue by 1d"), "{shown}");
    // Due again, so it runs. The fresh dump states the real time, 31 days before the simulated
    // clock: the RPO fails it, and `--due` exits 1.
    let (code, shown) = drill(dir.path(), &["--due"], Some(&day(31)));
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("over the RPO of 1d"), "{shown}");
    assert_eq!(count_finished(dir.path()), 2);

    let json = pipe(
        dir.path(),
        &["drill", "--status", "--format", "json"],
        Some(&day(32)),
    );
    assert_eq!(
        json.status.code(),
        Some(1),
        "still overdue: a failure does not count"
    );
    let standing: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(standing[0]["drill"], "restore_db");
    assert_eq!(standing[0]["every_ms"], 30 * 86_400_000u64);
    assert_eq!(standing[0]["status"], "overdue by 2d");
    assert!(
        standing[0]["last_failure"].as_str().unwrap() > standing[0]["last_pass"].as_str().unwrap()
    );
}

fn count_finished(dir: &Path) -> usize {
    audit(dir)
        .iter()
        .filter(|e| e["event"] == "drill_finished")
        .count()
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}
