//! Several agents, one PostgreSQL: each agent is a `pipe` process in its own temporary
//! directory (no shared files), sharing only the state URL and the artifact store; the
//! "service" they deploy is one directory outside every agent.

#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::state_backend::{Postgres, fresh_schema, schema_of, state_url};
use deliver_common::{GOOD, GOOD2, Project, await_orphans_gone, code, text};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// One server, one schema, one service and one artifact store, shared by every agent.
struct Fleet {
    pg: Postgres,
    url: String,
    service: tempfile::TempDir,
    artifacts: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let pg = Postgres::start();
        pg.create_database("pipe");
        let url = state_url(&pg, &fresh_schema());
        Fleet {
            pg,
            url,
            service: tempfile::tempdir().unwrap(),
            artifacts: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh agent: its own directory and pipeline, deploying to the shared service.
    fn agent(&self) -> Agent {
        let project = Project::new();
        let pipeline = project.root().join("pipeline.pipe");
        let own = project.root().join("envs").display().to_string();
        let shared = self.service.path().display().to_string();
        let text = std::fs::read_to_string(&pipeline)
            .unwrap()
            .replace(&own, &shared);
        std::fs::write(&pipeline, text).unwrap();
        let mut project = project;
        project.state = Some(self.url.clone());
        Agent {
            project,
            artifacts: self.artifacts.path().display().to_string(),
        }
    }

    /// Whether the environment serves the release whose first line is `name=NAME`.
    fn serves(&self, environment: &str, name: &str) -> bool {
        let wanted = format!("name={name}");
        self.serving(environment).lines().any(|line| line == wanted)
    }

    fn serving(&self, environment: &str) -> String {
        std::fs::read_to_string(self.service.path().join(environment).join("current"))
            .unwrap_or_default()
    }

    /// How many environment locks are held now: a holder row whose session still holds its
    /// advisory lock (other advisory locks, e.g. a migration's, do not count).
    fn locks_held(&self) -> usize {
        let sql = format!(
            "SELECT count(*) FROM {}.locks l WHERE held AND EXISTS (SELECT 1 FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid = l.backend_pid)",
            schema_of(&self.url)
        );
        let output = self.pg.try_psql("pipe", &sql);
        // Before the first agent migrated the schema there is no table, and no lock.
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    fn wait_for(&self, what: &str, limit: Duration, condition: impl Fn(&Fleet) -> bool) {
        let started = Instant::now();
        while !condition(self) {
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Agent {
    project: Project,
    artifacts: String,
}

impl Agent {
    fn command(&self, release: &str, args: &[&str]) -> Command {
        let mut command = self.project.command(release, args);
        command.env("PIPE_ARTIFACTS", &self.artifacts);
        command
    }

    fn pipe(&self, release: &str, args: &[&str]) -> Output {
        self.command(release, args).output().unwrap()
    }

    fn spawn(&self, release: &str, args: &[&str]) -> Child {
        self.command(release, args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Releases to staging only: build, deploy, smoke, the 2 s watch.
    fn to_staging(&self, release: &str) -> Output {
        self.pipe(release, &["run", "--until", "staging.watch"])
    }

    fn root(&self) -> &Path {
        self.project.root()
    }
}

/// `(name line of the release, status)` of each staging release, oldest first.
fn staging(agent: &Agent) -> Vec<(String, String)> {
    agent.project.ledger("staging")["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["run"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn statuses(agent: &Agent) -> Vec<String> {
    staging(agent)
        .into_iter()
        .map(|(_, status)| status)
        .collect()
}

#[test]
fn a_second_agent_sees_who_holds_the_lock_and_waits_or_gives_up_per_lock_timeout() {
    let fleet = Fleet::new();
    let (a, b, c) = (fleet.agent(), fleet.agent(), fleet.agent());
    let slow = a.spawn(
        "name=slow;deploy=slow;error_rate=0%",
        &["run", "--until", "staging.watch"],
    );
    fleet.wait_for("agent A to take the lock", Duration::from_secs(30), |f| {
        f.locks_held() == 1
    });
    let impatient = b.pipe(
        GOOD2,
        &["run", "--until", "staging.watch", "--lock-timeout", "500ms"],
    );
    let patient = c.spawn(
        GOOD,
        &["run", "--until", "staging.watch", "--lock-timeout", "60s"],
    );
    let first = slow.wait_with_output().unwrap();
    let waited = patient.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert_eq!(code(&impatient), 1, "{}", text(&impatient));
    let message = text(&impatient);
    assert!(
        message.contains("environment staging is locked by run ") && message.contains("(pid "),
        "{message}"
    );
    assert_eq!(code(&waited), 0, "{}", text(&waited));
    assert!(
        text(&waited).contains("waiting up to 1m"),
        "{}",
        text(&waited)
    );
    assert_eq!(statuses(&a), ["stable", "stable"], "A's then C's release");
    assert!(
        fleet.serves("staging", "good"),
        "C's release, deployed last"
    );
}

#[test]
fn an_agent_with_a_fresh_directory_rolls_back_to_the_release_another_agent_made_stable() {
    let fleet = Fleet::new();
    let (a, b) = (fleet.agent(), fleet.agent());
    for release in [GOOD, GOOD2] {
        let output = a.to_staging(release);
        assert_eq!(code(&output), 0, "{}", text(&output));
    }
    let bad = b.to_staging("name=bad;error_rate=5%");
    assert_eq!(code(&bad), 1, "{}", text(&bad));
    assert!(
        text(&bad).contains("rolling back"),
        "rolled back to A's release: {}",
        text(&bad)
    );
    assert!(
        fleet.serves("staging", "good2"),
        "serves v2 again: {}",
        fleet.serving("staging")
    );
    assert_eq!(statuses(&b), ["stable", "stable", "rolled_back"]);
    assert!(
        !b.root().join(".pipe").join("ledger").exists(),
        "B kept no ledger of its own"
    );
}

#[test]
fn a_lock_holder_killed_mid_watch_frees_the_lock_and_its_deploy_never_reads_stable() {
    let fleet = Fleet::new();
    let (a, b) = (fleet.agent(), fleet.agent());
    assert_eq!(code(&a.to_staging(GOOD)), 0);
    let mut doomed = a.spawn(GOOD2, &["run", "--until", "staging.watch"]);
    fleet.wait_for("the second deploy to serve", Duration::from_secs(30), |f| {
        f.serves("staging", "good2")
    });
    assert_eq!(fleet.locks_held(), 1, "A watches under its lock");
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    await_orphans_gone(a.root());
    fleet.wait_for(
        "the server to free A's lock",
        Duration::from_secs(10),
        |f| f.locks_held() == 0,
    );
    let next = b.pipe(
        "name=good3;error_rate=0%",
        &["run", "--until", "staging.watch", "--lock-timeout", "5s"],
    );
    assert_eq!(code(&next), 0, "{}", text(&next));
    let releases = staging(&b);
    assert_eq!(releases.len(), 3, "{releases:?}");
    assert_eq!(
        releases[1].1, "failed",
        "the killed deploy was found unfinished and marked failed: {releases:?}"
    );
    assert_eq!(releases[2].1, "stable", "{releases:?}");
    assert!(b.project.has_event("release_abandoned"));
}

#[test]
fn an_approval_recorded_by_one_agent_is_consumed_by_another() {
    let fleet = Fleet::new();
    let (builder, gate, deployer) = (fleet.agent(), fleet.agent(), fleet.agent());
    let run = "ci-4711";
    let waiting = builder.pipe(GOOD, &["run", "--run-id", run]);
    assert_eq!(
        code(&waiting),
        3,
        "awaits production's approval: {}",
        text(&waiting)
    );
    let approved = gate.pipe(
        "unused",
        &[
            "approve",
            run,
            "production",
            "--approver",
            "alice",
            "--source",
            "test",
        ],
    );
    assert_eq!(code(&approved), 0, "{}", text(&approved));
    let resumed = deployer.pipe("unused", &["resume", run]);
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert!(fleet.serves("production", "good"));
    let granted: Vec<serde_json::Value> = deployer
        .project
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "approval_granted")
        .collect();
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert!(
        serde_json::to_string(&granted[0])
            .unwrap()
            .contains("alice"),
        "names the approver: {granted:?}"
    );
    let deploys = || {
        std::fs::read_to_string(fleet.service.path().join("production/deploys"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let before = deploys();
    let again = deployer.pipe("unused", &["resume", run]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(deploys(), before, "a finished run deploys nothing again");
}
