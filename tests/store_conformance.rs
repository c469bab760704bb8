//! One set of store behaviours run against every backend — the state directory, the in-memory
//! store and PostgreSQL (a fresh cluster per test) — plus what only PostgreSQL has: fencing a
//! holder whose connection was killed, migrations, secrets kept out of messages, and whole
//! runs of the binary with `--state postgres://…`.
#![allow(clippy::unwrap_used)]

mod deliver_common;

use pipe::{AuditEvent, LedgerDoc, Location, LockRequest, RunDoc, Store, StoreError};
// The one copy of the cluster helper, reached through the shared harness.
use deliver_common::state_backend::Postgres;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A store of one backend with the scratch directory (and server) it lives on.
struct Backend {
    scratch: tempfile::TempDir,
    server: Option<Postgres>,
    store: Store,
}

#[derive(Clone, Copy)]
enum Kind {
    Directory,
    Memory,
    Postgres,
}

impl Backend {
    fn new(kind: Kind) -> Backend {
        let scratch = tempfile::tempdir().unwrap();
        let (server, store) = match kind {
            Kind::Directory => (None, Store::directory(&scratch.path().join(".pipe"))),
            Kind::Memory => (None, Store::memory(scratch.path())),
            Kind::Postgres => {
                let server = Postgres::start();
                let store = open(&server.conninfo("postgres"), scratch.path());
                (Some(server), store)
            }
        };
        Backend {
            scratch,
            server,
            store,
        }
    }

    /// Rewrites one audit record in place, as an intruder would; `false` where the backend
    /// offers no way in (the in-memory store).
    fn tamper_with_record(&self, seq: u64, from: &str, to: &str) -> bool {
        if let Some(server) = &self.server {
            server.psql(
                "postgres",
                &format!(
                    "UPDATE pipe.audit SET line = replace(line, '{from}', '{to}') WHERE seq = {seq}"
                ),
            );
            return true;
        }
        let path = self.scratch.path().join(".pipe").join(pipe::AUDIT_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return false;
        };
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                if i as u64 + 1 == seq {
                    line.replace(from, to)
                } else {
                    line.to_string()
                }
            })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        true
    }
}

fn open(location: &str, local: &Path) -> Store {
    Location::parse(location).open_with_local(local).unwrap()
}

fn request(run: &str, environment: &str, timeout: Duration) -> LockRequest {
    LockRequest::new("api", environment, run, timeout)
}

fn ledger_with(environment: &str, digest: &str) -> LedgerDoc {
    let mut doc = LedgerDoc::empty("api", environment);
    let release = serde_json::json!({
        "version": "1", "artifact": "app", "digest": digest, "run": "run-1",
        "started_at": "2026-11-29T00:00:00Z", "status": "stable"
    });
    doc.releases.push(serde_json::from_value(release).unwrap());
    doc
}

/// Runs each behaviour on each backend: `behaviour::directory`, `::memory`, `::postgres`.
macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            #[test]
            fn directory() {
                super::$behaviour(&super::Backend::new(super::Kind::Directory));
            }
            #[test]
            fn memory() {
                super::$behaviour(&super::Backend::new(super::Kind::Memory));
            }
            #[test]
            fn postgres() {
                super::$behaviour(&super::Backend::new(super::Kind::Postgres));
            }
        }
    )*};
}

conformance!(
    run_documents_are_kept_per_run,
    the_ledger_is_written_under_its_lock_only,
    a_held_lock_names_its_holder_until_dropped,
    the_audit_chain_verifies_and_names_a_tampered_record,
    evidence_is_kept,
);

fn run_documents_are_kept_per_run(backend: &Backend) {
    let state = backend.store.state();
    assert!(state.read_run_doc("r1", &RunDoc::Plan).unwrap().is_none());
    state
        .write_run_doc("r1", &RunDoc::Plan, b"{\"plan\":1}")
        .unwrap();
    state
        .write_run_doc("r1", &RunDoc::Plan, b"{\"plan\":2}")
        .unwrap();
    let delivery = RunDoc::Delivery("prod".into());
    state
        .write_run_doc("r2", &delivery, b"{\"record\":true}")
        .unwrap();
    assert_eq!(
        state.read_run_doc("r1", &RunDoc::Plan).unwrap().unwrap(),
        b"{\"plan\":2}"
    );
    assert!(state.read_run_doc("r2", &RunDoc::Plan).unwrap().is_none());
    assert_eq!(
        state.read_run_doc("r2", &delivery).unwrap().unwrap(),
        b"{\"record\":true}"
    );
    let mut ids = state.run_ids().unwrap();
    ids.sort();
    assert_eq!(ids, ["r1", "r2"]);
    assert!(state.describe_run_doc("r1", &RunDoc::State).contains("r1"));
}

fn the_ledger_is_written_under_its_lock_only(backend: &Backend) {
    let state = backend.store.state();
    assert!(state.read_ledger("api", "prod").unwrap().is_none());
    let lease = backend
        .store
        .lock(&request("run-1", "prod", Duration::ZERO))
        .unwrap();
    let doc = ledger_with("prod", "sha256:aa");
    state.write_ledger(&lease, &doc).unwrap();
    assert_eq!(state.read_ledger("api", "prod").unwrap().unwrap(), doc);
    let staging = backend
        .store
        .lock(&request("run-1", "staging", Duration::ZERO))
        .unwrap();
    let refused = state
        .write_ledger(&staging, &ledger_with("prod", "sha256:bb"))
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::StaleLease { .. }),
        "{refused}"
    );
    assert_eq!(state.read_ledger("api", "prod").unwrap().unwrap(), doc);
    state
        .write_ledger(&staging, &ledger_with("staging", "sha256:cc"))
        .unwrap();
    assert_eq!(
        state.ledger_environments("api").unwrap(),
        ["prod", "staging"]
    );
    let digests: Vec<String> = state.referenced_digests().unwrap().into_iter().collect();
    assert_eq!(digests, ["sha256:aa", "sha256:cc"]);
}

fn a_held_lock_names_its_holder_until_dropped(backend: &Backend) {
    let held = backend
        .store
        .lock(&request("run-1", "prod", Duration::ZERO))
        .unwrap();
    let busy = backend
        .store
        .lock(&request("run-2", "prod", Duration::from_millis(300)))
        .unwrap_err()
        .to_string();
    assert!(
        busy.starts_with("environment prod is locked by run run-1 (pid "),
        "{busy}"
    );
    assert!(busy.ends_with("; waited 0.3s"), "{busy}");
    assert_eq!(
        backend
            .store
            .state()
            .lock_holder("api", "prod")
            .unwrap()
            .run,
        "run-1"
    );
    drop(held);
    assert!(backend.store.state().lock_holder("api", "prod").is_none());
    let again = backend
        .store
        .lock(&request("run-2", "prod", Duration::ZERO))
        .unwrap();
    assert!(again.token() > 0);
    let interrupted = backend
        .store
        .lock_unless(&request("run-3", "prod", Duration::from_secs(60)), &|| true)
        .unwrap_err();
    assert!(
        interrupted.to_string().contains("interrupted"),
        "{interrupted}"
    );
}

fn the_audit_chain_verifies_and_names_a_tampered_record(backend: &Backend) {
    let log = backend.store.audit().unwrap();
    for event in [
        AuditEvent::RunStarted,
        AuditEvent::RunFinished,
        AuditEvent::RunStarted,
    ] {
        log.append("run-1", event, "ci", Value::Null).unwrap();
    }
    let summary = backend.store.verify_audit().unwrap();
    assert_eq!(summary.events, 3);
    let records = backend.store.audit_records().unwrap();
    assert_eq!(records[2].prev, records[1].hash);
    assert_eq!(records[1].event, "run_finished");
    // A second opening appends to the same chain.
    let again = backend.store.audit().unwrap();
    again
        .append("run-2", AuditEvent::RunFinished, "ci", Value::Null)
        .unwrap();
    assert_eq!(backend.store.verify_audit().unwrap().events, 4);
    if backend.tamper_with_record(2, "\"actor\":\"ci\"", "\"actor\":\"eve\"") {
        let error = backend.store.verify_audit().unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        let refused = backend.store.audit().unwrap_err().to_string();
        assert!(refused.contains("does not verify"), "{refused}");
    }
}

fn evidence_is_kept(backend: &Backend) {
    let state = backend.store.state();
    let place = state
        .write_evidence("drills", "db-2026-11-29", b"{\"ok\":true}")
        .unwrap();
    assert!(place.contains("db-2026-11-29"), "{place}");
    if let Some(server) = &backend.server {
        let stored = server.psql(
            "postgres",
            "SELECT convert_from(body, 'UTF8') FROM pipe.evidence WHERE kind = 'drills'",
        );
        assert_eq!(stored, "{\"ok\":true}");
    }
}

// PostgreSQL only.

/// The lock row's session, killed as a DBA (or a network) would kill it.
fn kill_lock_session(server: &Postgres) {
    server.psql(
        "postgres",
        "SELECT pg_terminate_backend(backend_pid) FROM pipe.locks WHERE held",
    );
}

#[test]
fn a_holder_whose_connection_was_killed_can_never_write_the_ledger() {
    let backend = Backend::new(Kind::Postgres);
    let server = backend.server.as_ref().unwrap();
    let state = backend.store.state();
    let first = backend
        .store
        .lock(&request("run-1", "prod", Duration::ZERO))
        .unwrap();
    state
        .write_ledger(&first, &ledger_with("prod", "sha256:aa"))
        .unwrap();
    kill_lock_session(server);
    // Nobody took over yet: the lock went with the session all the same.
    let refused = state
        .write_ledger(&first, &ledger_with("prod", "sha256:bad"))
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::StaleLease { .. }),
        "{refused}"
    );
    let second = backend
        .store
        .lock(&request("run-2", "prod", Duration::from_secs(10)))
        .unwrap();
    assert!(second.token() > first.token());
    let refused = state
        .write_ledger(&first, &ledger_with("prod", "sha256:bad"))
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::StaleLease { .. }),
        "{refused}"
    );
    state
        .write_ledger(&second, &ledger_with("prod", "sha256:bb"))
        .unwrap();
    let digests: Vec<String> = state.referenced_digests().unwrap().into_iter().collect();
    assert_eq!(digests, ["sha256:bb"]);
    drop(first);
    assert_eq!(state.lock_holder("api", "prod").unwrap().run, "run-2");
}

#[test]
fn reads_reconnect_after_a_restart_and_a_stopped_server_is_named_in_the_error() {
    let mut server = Postgres::start();
    let scratch = tempfile::tempdir().unwrap();
    let store = open(&server.conninfo("postgres"), scratch.path());
    let state = store.state();
    state.write_run_doc("r1", &RunDoc::Plan, b"{}").unwrap();
    server.stop();
    let error = state.read_run_doc("r1", &RunDoc::Plan).unwrap_err();
    assert!(matches!(error, StoreError::Database { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with("cannot read the plan of run r1 in PostgreSQL pipe@"),
        "{message}"
    );
    let error = state
        .write_run_doc("r1", &RunDoc::State, b"{}")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot write the state of run r1"),
        "{error}"
    );
    server.start_again();
    // The old session died with the server; the store connects again by itself.
    assert_eq!(
        state.read_run_doc("r1", &RunDoc::Plan).unwrap().unwrap(),
        b"{}"
    );
    state
        .write_run_doc("r1", &RunDoc::State, b"{\"n\":1}")
        .unwrap();
    assert!(state.read_run_doc("r1", &RunDoc::State).unwrap().is_some());
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let server = Postgres::start();
    let scratch = tempfile::tempdir().unwrap();
    let location = format!("{} schema=team_a", server.conninfo("postgres"));
    drop(open(&location, scratch.path()));
    // Opening again migrates nothing twice.
    drop(open(&location, scratch.path()));
    assert_eq!(
        server.psql(
            "postgres",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM team_a.schema_migrations"
        ),
        "1,2"
    );
    server.psql(
        "postgres",
        "INSERT INTO team_a.schema_migrations (version, pipe_version) VALUES (99, '9.9.9')",
    );
    let error = Location::parse(&location)
        .open_with_local(scratch.path())
        .unwrap_err()
        .to_string();
    assert!(error.contains("newer pipe (schema version 99"), "{error}");
    assert!(error.contains("schema team_a"), "{error}");
    // Another schema of the same database is its own state.
    drop(open(
        &format!("{} schema=team_b", server.conninfo("postgres")),
        scratch.path(),
    ));
}

#[test]
fn a_url_with_a_socket_directory_selects_the_same_state() {
    let server = Postgres::start();
    let scratch = tempfile::tempdir().unwrap();
    let socket = server
        .socket_dir()
        .display()
        .to_string()
        .replace('/', "%2F");
    let url = format!("postgresql://pipe@{socket}/postgres?schema=urls");
    let by_url = open(&url, scratch.path());
    by_url
        .state()
        .write_run_doc("r1", &RunDoc::Plan, b"{}")
        .unwrap();
    let keywords = format!("{} schema=urls", server.conninfo("postgres"));
    let by_keywords = open(&keywords, scratch.path());
    assert_eq!(by_keywords.state().run_ids().unwrap(), ["r1"]);
    assert!(by_url.describe().contains("pipe@"), "{}", by_url.describe());
}

#[test]
fn a_password_never_appears_in_what_pipe_prints() {
    let project = deliver_common::Project::new();
    let url = "postgres://ci:hunter2-secret@127.0.0.1:1/state?connect_timeout=2";
    for args in [
        vec!["audit", "verify", "--state", url],
        vec!["run", "--state", url],
    ] {
        let output = project.pipe(deliver_common::GOOD, &args);
        let all = deliver_common::text(&output);
        assert_eq!(deliver_common::code(&output), 1, "{all}");
        assert!(all.contains("ci@127.0.0.1:1/state"), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
    }
    let output = project
        .command(deliver_common::GOOD, &["audit", "show"])
        .env(
            "PIPE_STATE",
            "postgres://ci@127.0.0.1:1/state?connect_timeout=2",
        )
        .env("PGPASSWORD", "hunter2-secret")
        .output()
        .unwrap();
    let all = deliver_common::text(&output);
    assert_eq!(deliver_common::code(&output), 1, "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}

/// The standalone verifier of docs/audit.md, reading `path` instead of `.pipe/audit.jsonl`.
fn documented_verifier(path: &Path) -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/audit.md")).unwrap();
    let start = doc.find("```python\n").unwrap() + "```python\n".len();
    let script = &doc[start..start + doc[start..].find("```").unwrap()];
    assert!(script.contains("\".pipe/audit.jsonl\""), "{script}");
    script.replace(
        "\".pipe/audit.jsonl\"",
        &format!("{:?}", path.display().to_string()),
    )
}

#[test]
fn a_release_runs_end_to_end_on_postgres_and_its_chain_exports_and_verifies() {
    let server = Postgres::start();
    let project = deliver_common::Project::new();
    let state = server.conninfo("postgres");
    let pipe = |args: &[&str]| {
        project
            .command(deliver_common::GOOD, args)
            .env("PIPE_STATE", &state)
            .output()
            .unwrap()
    };
    let output = pipe(&["run", "--approve", "production", "--approver", "alice"]);
    assert_eq!(
        deliver_common::code(&output),
        0,
        "{}",
        deliver_common::text(&output)
    );
    assert!(project.serving("production").contains("name=good"));
    assert!(
        !project.root().join(".pipe/ledger").exists(),
        "the ledger lives in PostgreSQL"
    );
    let statuses = server.psql(
        "postgres",
        "SELECT environment || '=' || (body->'releases'->0->>'status') FROM pipe.ledgers \
         ORDER BY environment",
    );
    assert_eq!(statuses, "production=stable\nstaging=stable");
    let verified = pipe(&["audit", "verify"]);
    assert_eq!(
        deliver_common::code(&verified),
        0,
        "{}",
        deliver_common::text(&verified)
    );

    let exported = project.root().join("exported.jsonl");
    let output = pipe(&["audit", "export", "-o", exported.to_str().unwrap()]);
    assert_eq!(
        deliver_common::code(&output),
        0,
        "{}",
        deliver_common::text(&output)
    );
    let events = std::fs::read_to_string(&exported).unwrap().lines().count();
    let checked = std::process::Command::new("python3")
        .args(["-c", &documented_verifier(&exported)])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(said.starts_with(&format!("ok {events} ")), "{said}");
    let evidence = pipe(&["evidence"]);
    assert_eq!(
        deliver_common::code(&evidence),
        0,
        "{}",
        deliver_common::text(&evidence)
    );

    server.psql(
        "postgres",
        "UPDATE pipe.audit SET line = replace(line, '\"actor\":\"alice\"', '\"actor\":\"mallory\"') \
         WHERE seq = (SELECT min(seq) FROM pipe.audit WHERE line LIKE '%\"actor\":\"alice\"%')",
    );
    let tampered: u64 = server
        .psql(
            "postgres",
            "SELECT seq FROM pipe.audit WHERE line LIKE '%mallory%'",
        )
        .parse()
        .unwrap();
    let broken = pipe(&["audit", "verify"]);
    let all = deliver_common::text(&broken);
    assert_eq!(deliver_common::code(&broken), 1, "{all}");
    assert!(all.contains(&format!("line {tampered}")), "{all}");
    assert!(all.contains("audit table pipe.audit"), "{all}");
}

#[test]
fn the_directory_chain_exports_for_the_documented_verifier_too() {
    let project = deliver_common::Project::new();
    let output = project.release(deliver_common::GOOD);
    assert_eq!(
        deliver_common::code(&output),
        0,
        "{}",
        deliver_common::text(&output)
    );
    let exported = project.root().join("exported.jsonl");
    let output = project.pipe(
        deliver_common::GOOD,
        &["audit", "export", "--output", exported.to_str().unwrap()],
    );
    assert_eq!(
        deliver_common::code(&output),
        0,
        "{}",
        deliver_common::text(&output)
    );
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(project.root().join(".pipe").join(pipe::AUDIT_FILE)).unwrap()
    );
    let checked = std::process::Command::new("python3")
        .args(["-c", &documented_verifier(&exported)])
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}
