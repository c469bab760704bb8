//! Recovery after interrupts and crashes, through the real binary: a resume after an interrupt
//! re-promotes, a rollback cut short exits 4, a crashed rollback leaves the environment
//! `rolling_back` (unknown) until the next rollback or promote finishes it, and a resume runs
//! in the current checkout only when its pipeline file matches the stored plan.
#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sleeps 5s first unless the project holds a file `fast`.
const SLOW_ROLLBACK: &str =
    "run \"test -f fast || sleep 5; sh ./deploy.sh ${{ previous.path }} ${{ env.url }}\"";
const ROLLBACK: &str = "run \"sh ./deploy.sh ${{ previous.path }} ${{ env.url }}\"";

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(30), "never {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
}

fn ledger_text(project: &Project, environment: &str) -> String {
    std::fs::read_to_string(
        project
            .root()
            .join(format!(".pipe/ledger/svc/{environment}.json")),
    )
    .unwrap_or_default()
}

fn newest_run(project: &Project) -> String {
    let mut ids: Vec<String> = std::fs::read_dir(project.root().join(".pipe/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains("rollback"))
        .collect();
    ids.sort();
    ids.pop().unwrap()
}

/// Starts a staging-only run of `release` and waits until staging serves it.
fn deploy_to_staging(project: &Project, release: &str, marker: &str) -> Child {
    let child = project
        .command(release, &["run", "--until", "staging.watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("deployed", || project.serving("staging").contains(marker));
    child
}

/// Staging serves GOOD; a run deploying good2 there is interrupted mid-watch.
fn interrupt_a_second_release(project: &Project) -> Child {
    expect(&project.pipe(GOOD, &["run", "--until", "staging.watch"]), 0);
    let child = deploy_to_staging(project, "name=good2;error_rate=0%", "good2");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, Signal::SIGINT);
    child
}

/// Staging has GOOD then GOOD2 stable; `pipe rollback staging` has started.
fn start_rollback_by_hand(project: &Project) -> Child {
    expect(&project.pipe(GOOD, &["run", "--until", "staging.watch"]), 0);
    expect(
        &project.pipe(GOOD2, &["run", "--until", "staging.watch"]),
        0,
    );
    project
        .command("unused", &["rollback", "staging", "--approver", "dave"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_run_interrupted_mid_promote_resumes_by_promoting_again() {
    let project = Project::with("3s", "for 1s", ROLLBACK);
    let child = interrupt_a_second_release(&project);
    let output = child.wait_with_output().unwrap();
    expect(&output, 130);
    let run = newest_run(&project);
    assert!(
        text(&output).contains(&format!("pipe resume {run}")),
        "{}",
        text(&output)
    );
    assert!(project.serving("staging").contains("name=good\n"));

    let resumed = project.pipe("unused", &["resume", &run]);
    expect(&resumed, 0);
    assert!(project.serving("staging").contains("name=good2"));
    assert_eq!(
        project.statuses("staging"),
        ["stable", "rolled_back", "stable"]
    );
    let repromoted = project
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "repromote_after_interrupt")
        .unwrap();
    assert!(
        repromoted["summary"]
            .as_str()
            .unwrap()
            .contains("interrupt rolled it back"),
        "{repromoted}"
    );
}

#[test]
fn a_failed_release_says_why_it_cannot_resume_and_prints_no_hint() {
    let project = Project::with("2s", "for 400ms", ROLLBACK);
    expect(&project.pipe(GOOD, &["run", "--until", "staging.watch"]), 0);
    let output = project.pipe(
        "name=bad;error_rate=5%",
        &["run", "--until", "staging.watch"],
    );
    expect(&output, 1);
    let all = text(&output);
    assert!(all.contains("not resumable:"), "{all}");
    assert!(
        all.contains("failed in staging and was rolled back"),
        "{all}"
    );
    assert!(!all.contains("resume with"), "{all}");
    let run = newest_run(&project);
    let resumed = project.pipe("unused", &["resume", &run]);
    expect(&resumed, 1);
    assert!(
        text(&resumed).contains("because it failed"),
        "{}",
        text(&resumed)
    );
}

#[test]
fn a_rollback_cut_short_by_a_second_signal_exits_4() {
    let project = Project::with("5s", "for 1s", SLOW_ROLLBACK);
    let child = interrupt_a_second_release(&project);
    wait_until("rolling back", || {
        ledger_text(&project, "staging").contains("rolling_back")
    });
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, Signal::SIGINT);
    let output = child.wait_with_output().unwrap();
    expect(&output, 4);
    assert!(
        text(&output).contains("rollback failed"),
        "{}",
        text(&output)
    );
    assert_eq!(project.statuses("staging"), ["stable", "failed"]);
}

#[test]
fn a_rollback_by_hand_cut_short_by_a_second_signal_exits_4() {
    let project = Project::with("300ms", "for 200ms", SLOW_ROLLBACK);
    let child = start_rollback_by_hand(&project);
    wait_until("rolling back", || {
        ledger_text(&project, "staging").contains("rolling_back")
    });
    signal(&child, Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, Signal::SIGINT);
    let output = child.wait_with_output().unwrap();
    expect(&output, 4);
}

#[test]
fn a_crashed_rollback_is_unknown_until_the_next_rollback_finishes_it() {
    let project = Project::with("300ms", "for 200ms", SLOW_ROLLBACK);
    let mut child = start_rollback_by_hand(&project);
    wait_until("rolling back", || {
        ledger_text(&project, "staging").contains("rolling_back")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(project.statuses("staging"), ["stable", "rolling_back"]);
    let releases = project.pipe("unused", &["releases", "staging"]);
    assert!(
        text(&releases).contains("staging: state unknown: a rollback from"),
        "{}",
        text(&releases)
    );
    let plan = project.pipe("unused", &["plan"]);
    assert!(text(&plan).contains("STATE UNKNOWN"), "{}", text(&plan));

    await_orphans_gone(project.root());
    std::fs::write(project.root().join("fast"), "").unwrap();
    let finished = project.pipe("unused", &["rollback", "staging", "--approver", "erin"]);
    expect(&finished, 0);
    assert!(project.serving("staging").contains("name=good\n"));
    assert_eq!(project.statuses("staging"), ["stable", "rolled_back"]);
    let resumed = project
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "rollback_resumed")
        .unwrap();
    assert_eq!(resumed["actor"], "erin");
    expect(&project.pipe("unused", &["audit", "verify"]), 0);
}

#[test]
fn a_crashed_automatic_rollback_is_finished_by_the_next_promote_first() {
    let project = Project::with("3s", "for 1s", SLOW_ROLLBACK);
    expect(&project.pipe(GOOD, &["run", "--until", "staging.watch"]), 0);
    let mut child = deploy_to_staging(&project, "name=good2;error_rate=0%", "good2");
    signal(&child, Signal::SIGINT);
    wait_until("rolling back", || {
        ledger_text(&project, "staging").contains("rolling_back")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    await_orphans_gone(project.root());
    std::fs::write(project.root().join("fast"), "").unwrap();
    let output = project.pipe(GOOD2, &["run", "--until", "staging.watch"]);
    expect(&output, 0);
    let events: Vec<String> = project
        .audit_events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let resumed = events
        .iter()
        .rposition(|e| e == "rollback_resumed")
        .unwrap();
    let verified = events
        .iter()
        .rposition(|e| e == "recovery_verified")
        .unwrap();
    let deployed = events.iter().rposition(|e| e == "deploy_started").unwrap();
    assert!(resumed < verified && verified < deployed, "{events:?}");
    assert_eq!(
        project.statuses("staging"),
        ["stable", "rolled_back", "stable"]
    );
    assert!(project.serving("staging").contains("name=good2"));
}

const WORKSPACE: &str = r#"pipeline p {
  job a { run "true" }
  job b {
    after = [a]
    run "test -f ok && pwd > where.txt"
  }
}
"#;

fn pipe_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_resume_runs_in_the_current_checkout_not_the_stored_directory() {
    let original = tempfile::tempdir().unwrap();
    std::fs::write(original.path().join("pipeline.pipe"), WORKSPACE).unwrap();
    expect(&pipe_in(original.path(), &["run"]), 1);
    let copy = tempfile::tempdir().unwrap();
    copy_tree(original.path(), copy.path());
    std::fs::write(copy.path().join("ok"), "").unwrap();
    std::fs::write(original.path().join("ok"), "").unwrap();
    let runs = std::fs::read_dir(copy.path().join(".pipe/runs")).unwrap();
    let run = runs
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .next()
        .unwrap();

    expect(&pipe_in(copy.path(), &["resume", &run]), 0);
    let here = std::fs::read_to_string(copy.path().join("where.txt")).unwrap();
    assert_eq!(
        Path::new(here.trim()).canonicalize().unwrap(),
        copy.path().canonicalize().unwrap()
    );
    assert!(
        !original.path().join("where.txt").exists(),
        "nothing ran in the directory state.json names"
    );
}

#[test]
fn a_resume_refuses_a_changed_pipeline_file_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.pipe"), WORKSPACE).unwrap();
    expect(&pipe_in(dir.path(), &["run"]), 1);
    let run = std::fs::read_dir(dir.path().join(".pipe/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .next()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!(".pipe/runs/{run}/plan.json"))).unwrap(),
    )
    .unwrap();
    let changed = format!("{WORKSPACE}# changed\n");
    std::fs::write(dir.path().join("pipeline.pipe"), &changed).unwrap();
    std::fs::write(dir.path().join("ok"), "").unwrap();
    use sha2::Digest;
    let current = hex::encode(sha2::Sha256::digest(changed.as_bytes()));

    let refused = pipe_in(dir.path(), &["resume", &run]);
    expect(&refused, 2);
    let message = text(&refused);
    assert!(
        message.contains(plan["source_sha256"].as_str().unwrap()),
        "{message}"
    );
    assert!(message.contains(&current), "{message}");
    assert!(!dir.path().join("where.txt").exists(), "nothing ran");

    expect(&pipe_in(dir.path(), &["resume", &run, "--force"]), 0);
    assert!(dir.path().join("where.txt").exists());
    let audit = std::fs::read_to_string(dir.path().join(".pipe/audit.jsonl")).unwrap();
    let forced = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "resume_forced")
        .unwrap();
    assert_eq!(forced["file_sha256"], current.as_str());
}

fn expect(output: &std::process::Output, expected: i32) {
    assert_eq!(code(output), expected, "{}", text(output));
}
