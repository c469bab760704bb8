//! Faults of the PostgreSQL state: the server unreachable at start, stopped mid-run and back
//! for `pipe resume`, and the lock holder's connection killed mid-watch.

#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::state_backend::{Postgres, fresh_schema, run_state_on, schema_of, state_url};
use deliver_common::{GOOD, GOOD2, Project, code, text};
use std::process::Output;
use std::time::{Duration, Instant};

fn on_server(pg: &Postgres) -> Project {
    pg.create_database("pipe");
    let mut project = Project::new();
    project.state = Some(state_url(pg, &fresh_schema()));
    project
}

fn wait_for(what: &str, limit: Duration, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_unreachable_server_at_start_is_a_clear_error_without_the_password() {
    let nowhere = tempfile::tempdir().unwrap();
    let socket = nowhere.path().display().to_string().replace('/', "%2F");
    let mut project = Project::new();
    project.state = Some(format!(
        "postgresql://ci:hunter2@{socket}/pipe?schema=team&connect_timeout=2"
    ));
    let started = Instant::now();
    let output = project.pipe(GOOD, &["run", "--until", "staging.watch"]);
    // Not a usage error: the command was right, the server is not there (docs/state.md).
    assert_eq!(code(&output), 1, "{}", text(&output));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("error: cannot "),
        "names the operation: {message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gives up in bounded time"
    );
    assert!(
        !project.root().join(".pipe").exists(),
        "never falls back to a local directory"
    );
    assert!(project.serving("staging").is_empty(), "nothing deployed");
}

const TWO_JOBS: &str = r#"
pipeline svc {
  job first  { run "echo ran >> first.count" }
  job second {
    after = [first]
    run "touch second.started && sleep 3 && echo done > second.done"
  }
}
"#;

#[test]
fn a_server_stopped_mid_run_names_the_write_and_resume_continues_once_it_is_back() {
    let mut pg = Postgres::start();
    let project = on_server(&pg);
    std::fs::write(project.root().join("pipeline.pipe"), TWO_JOBS).unwrap();
    let running = project
        .command("unused", &["run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = project.root().join("second.started");
    wait_for("the second job to start", Duration::from_secs(30), || {
        started.exists()
    });
    // Stop the server once the first job's success is stored: the second job is still running
    // (it sleeps 3 s), so the stop lands mid-run.
    let url = project.state.clone().unwrap();
    let stored_runs = || {
        let sql = format!(
            "SELECT run FROM {}.run_docs WHERE doc = 'state'",
            schema_of(&url)
        );
        pg.psql("pipe", &sql)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_for(
        "the first job's success to be stored",
        Duration::from_secs(30),
        || {
            stored_runs()
                .iter()
                .any(|run| run_state_on(&pg, &url, run)["nodes"]["first"]["status"] == "succeeded")
        },
    );
    pg.stop();
    let stopped: Output = running.wait_with_output().unwrap();
    assert_ne!(code(&stopped), 0, "{}", text(&stopped));
    let message = text(&stopped);
    // Whichever write met the stopped server first (the run's state, the audit chain's
    // `run_finished`), the message says which, and what failed underneath.
    assert!(
        message.contains("cannot write the state of run")
            || message.contains("the audit log could not be written"),
        "names the operation: {message}"
    );
    assert!(message.contains("error connecting to server"), "{message}");
    pg.start_again();
    let runs = pg.psql(
        "pipe",
        &format!(
            "SELECT run FROM {}.run_docs WHERE doc = 'state'",
            schema_of(&url)
        ),
    );
    let run = runs.lines().next().unwrap().to_string();
    assert_eq!(
        run_state_on(&pg, &url, &run)["nodes"]["first"]["status"],
        "succeeded",
        "the last state written is whole"
    );
    let resumed = project.pipe("unused", &["resume", &run]);
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert_eq!(
        std::fs::read_to_string(project.root().join("first.count")).unwrap(),
        "ran\n",
        "a succeeded job is not run again"
    );
    assert!(project.root().join("second.done").exists());
}

#[test]
fn a_holder_whose_lock_connection_is_killed_mid_watch_never_records_stable() {
    let pg = Postgres::start();
    let project = on_server(&pg);
    let first = project.pipe(GOOD, &["run", "--until", "staging.watch"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let holder = project
        .command(GOOD2, &["run", "--until", "staging.watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "the second deploy to serve",
        Duration::from_secs(30),
        || project.serving("staging").contains("name=good2"),
    );
    let url = project.state.clone().unwrap();
    let killed = pg.psql(
        "pipe",
        &format!(
            "SELECT count(pg_terminate_backend(backend_pid)) FROM {}.locks WHERE held",
            schema_of(&url)
        ),
    );
    assert_eq!(killed, "1", "one lock connection to kill");
    let output = holder.wait_with_output().unwrap();
    let outcome = text(&output);
    assert!(
        [1, 4].contains(&code(&output)),
        "a verified rollback (1) or unverified recovery (4): {outcome}"
    );
    let releases = project.ledger("staging")["releases"].clone();
    let statuses: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[0], "stable", "{statuses:?}");
    assert_ne!(
        statuses[1], "stable",
        "the stale holder never wrote stable: {statuses:?}"
    );
    if code(&output) == 1 {
        assert_eq!(statuses[1], "rolled_back", "{outcome}");
        assert!(
            project.serving("staging").lines().any(|l| l == "name=good"),
            "serves v1 again"
        );
    }
    let promoted = project
        .audit_events()
        .iter()
        .filter(|e| e["event"] == "deployment_promoted")
        .count();
    assert_eq!(promoted, 1, "only v1 was promoted: {outcome}");
    assert!(
        project.has_event("lock_lost") || code(&output) == 4,
        "{outcome}"
    );
}
