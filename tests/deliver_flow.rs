//! Delivery through the real binary with real processes: approvals, watch windows, rollbacks,
//! rollback failure, locks, crash recovery and secrets, each in its own temporary project.
#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::*;
use std::time::{Duration, Instant};

#[test]
fn a_good_release_goes_to_staging_then_production_after_approval() {
    let project = Project::new();
    let output = project.release(GOOD);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(project.serving("production").contains("name=good"));
    assert_eq!(project.statuses("staging"), ["stable"]);
    assert_eq!(project.statuses("production"), ["stable"]);
    let deploys = std::fs::read_to_string(project.env_dir("production").join("deploys")).unwrap();
    assert_eq!(
        deploys.lines().count(),
        2,
        "one deploy per canary step: {deploys}"
    );
    assert!(
        deploys.starts_with("production /"),
        "PIPE_ENVIRONMENT and PIPE_ARTIFACT: {deploys}"
    );
    let events: Vec<String> = project
        .audit_events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let recorded = events
        .iter()
        .position(|e| e == "previous_stable_recorded")
        .unwrap();
    let deploying = events.iter().position(|e| e == "deploy_started").unwrap();
    assert!(recorded < deploying, "{events:?}");
    assert!(events.contains(&"deployment_promoted".to_string()));
}

#[test]
fn approval_stops_with_exit_3_and_resume_continues() {
    let project = Project::new();
    let output = project.pipe(GOOD, &["run"]);
    assert_eq!(code(&output), 3, "{}", text(&output));
    let all = text(&output);
    let line = all
        .lines()
        .find(|l| l.contains("--approve production"))
        .unwrap();
    let run = line.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(
        line.trim(),
        format!("pipe resume {run} --approve production --approver NAME")
    );
    assert!(
        project.serving("production").is_empty(),
        "nothing deployed before approval"
    );

    let resumed = project.pipe(
        GOOD,
        &[
            "resume",
            &run,
            "--approve",
            "production",
            "--approver",
            "bob",
        ],
    );
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert!(project.serving("production").contains("name=good"));
    let granted = project
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "approval_granted")
        .unwrap();
    assert_eq!(granted["actor"], "bob");
}

#[test]
fn a_refused_approver_changes_nothing_and_is_audited() {
    let project = Project::new();
    let output = project.pipe(
        GOOD,
        &["run", "--approve", "production", "--approver", "mallory"],
    );
    assert_eq!(code(&output), 3, "{}", text(&output));
    assert!(text(&output).contains("mallory is not an approver here (approvers: alice, bob)"));
    let refused = project
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "approval_refused")
        .unwrap();
    assert_eq!(refused["actor"], "mallory");
    assert!(
        !project
            .root()
            .join(".pipe/ledger/svc/production.json")
            .exists()
    );
    assert!(project.serving("production").is_empty());
}

#[test]
fn the_initiator_cannot_approve_their_own_run() {
    let project = Project::new();
    let mut command = project.command(
        GOOD,
        &["run", "--approve", "production", "--approver", "alice"],
    );
    let output = command.env("USER", "alice").output().unwrap();
    assert_eq!(code(&output), 3, "{}", text(&output));
    assert!(text(&output).contains("alice started this run and cannot approve it"));
}

#[test]
fn a_breach_shorter_than_the_window_does_not_roll_back() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    // Two breaching samples (~200ms apart) against a 1s window, then healthy.
    let output = project.release("name=flaky;error_rate_seq=5%,5%,0%");
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_eq!(project.statuses("staging"), ["stable", "stable"]);
    assert!(!project.has_event("rollback_triggered"));
}

#[test]
fn a_sustained_breach_rolls_back_and_the_previous_version_serves_again() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    let output = project.release("name=bad;error_rate=5%");
    assert_eq!(code(&output), 1, "{}", text(&output));
    assert!(
        project.serving("staging").contains("name=good"),
        "previous version serves"
    );
    assert_eq!(project.statuses("staging"), ["stable", "rolled_back"]);
    assert!(
        project.serving("production").contains("name=good"),
        "production untouched"
    );
    assert_eq!(project.statuses("production"), ["stable"]);
    let triggered = project
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "rollback_triggered")
        .unwrap();
    let evidence = triggered["evidence"].as_str().unwrap();
    assert!(
        evidence.starts_with("error_rate 5% > 1% held 1."),
        "{evidence}"
    );
    for event in ["rollback_started", "rollback_finished", "recovery_verified"] {
        assert!(project.has_event(event), "{event}");
    }

    // Resuming the run must not deploy the release its own watch rolled back.
    let run = text(&output)
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let deploys = || std::fs::read_to_string(project.env_dir("staging").join("deploys")).unwrap();
    let before = deploys();
    let resumed = project.pipe("unused", &["resume", &run]);
    expect_exit(&resumed, 1);
    assert!(
        text(&resumed).contains("was rolled back from staging earlier in this run"),
        "{}",
        text(&resumed)
    );
    assert_eq!(deploys(), before, "nothing was deployed again");
    assert!(project.serving("staging").contains("name=good"));
}

#[test]
fn an_unreadable_probe_is_a_breach() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    let output = project.release("name=garbled;error_rate=lots");
    assert_eq!(code(&output), 1, "{}", text(&output));
    assert!(
        text(&output).contains("unreadable output \"lots\", expected a percent"),
        "{}",
        text(&output)
    );
    assert!(project.serving("staging").contains("name=good"));
}

#[test]
fn a_failed_smoke_rolls_back() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    let output = project.release("name=bad;smoke=fail");
    assert_eq!(code(&output), 1, "{}", text(&output));
    assert!(project.has_event("smoke_failed"));
    assert!(project.serving("staging").contains("name=good"));
}

#[test]
fn a_failing_rollback_exits_4() {
    let project = Project::with("2s", "for 1s", "run \"exit 7\"");
    expect_exit(&project.release(GOOD), 0);
    let output = project.release("name=bad;error_rate=5%");
    assert_eq!(code(&output), 4, "{}", text(&output));
    assert!(
        text(&output).contains("ROLLBACK FAILED in staging"),
        "{}",
        text(&output)
    );
    assert_eq!(project.statuses("staging"), ["stable", "failed"]);
    // By hand, the target is the last known-good release; the same broken block fails again.
    let by_hand = project.pipe("unused", &["rollback", "staging"]);
    assert_eq!(code(&by_hand), 4, "{}", text(&by_hand));
    assert!(
        text(&by_hand).contains("the rollback block failed"),
        "{}",
        text(&by_hand)
    );
    // Both failures are on the record with their reason, not only a `rollback_started`.
    let failures: Vec<_> = project
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "recovery_failed")
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures.iter().all(|e| e["reason"]
            .as_str()
            .unwrap()
            .contains("the rollback block failed")),
        "{failures:?}"
    );
}

#[test]
fn a_first_release_that_fails_skips_rollback_loudly() {
    let project = Project::new();
    let output = project.release("name=bad;error_rate=5%");
    assert_eq!(code(&output), 1, "{}", text(&output));
    assert!(
        text(&output).contains("ROLLBACK SKIPPED"),
        "{}",
        text(&output)
    );
    assert!(project.has_event("rollback_skipped"));
    assert_eq!(project.statuses("staging"), ["failed"]);
}

#[test]
fn two_runs_promoting_one_environment_do_not_overlap() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    let slow = project
        .command(
            "name=slow;deploy=slow;error_rate=0%",
            &["run", "--until", "staging.watch"],
        )
        .spawn()
        .unwrap();
    let deploys = project.env_dir("staging").join("deploys");
    let before = std::fs::read_to_string(&deploys).unwrap().lines().count();
    let started = Instant::now();
    while !project
        .root()
        .join(".pipe/locks/svc.staging.lock.holder")
        .exists()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slow run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = project.pipe(
        GOOD2,
        &["run", "--until", "staging.watch", "--lock-timeout", "500ms"],
    );
    let output = slow.wait_with_output().unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_eq!(code(&second), 1, "{}", text(&second));
    let message = text(&second);
    assert!(
        message.contains("environment staging is locked by run "),
        "{message}"
    );
    assert!(message.contains("waited 0.5s"), "{message}");
    assert!(
        message.contains("waiting up to 500ms for the lock held by run "),
        "{message}"
    );
    let after = std::fs::read_to_string(&deploys).unwrap().lines().count();
    assert_eq!(after, before + 1, "only the holder deployed");
}

#[test]
fn kill_9_during_a_deploy_then_resume_and_audit_verify_succeed() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    let mut child = project
        .command(
            "name=slow;deploy=slow;error_rate=0%",
            &["run", "--until", "staging.watch"],
        )
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let ledger =
            std::fs::read_to_string(project.root().join(".pipe/ledger/svc/staging.json")).unwrap();
        if ledger.contains("\"deploying\"") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never started deploying"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let runs = std::fs::read_dir(project.root().join(".pipe/runs")).unwrap();
    let mut ids: Vec<String> = runs
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    let run = ids.last().unwrap().clone();
    let resumed = project.pipe("unused", &["resume", &run]);
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert!(project.has_event("release_abandoned"));
    assert_eq!(project.statuses("staging"), ["stable", "failed", "stable"]);
    let verify = project.pipe("unused", &["audit", "verify"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
}

#[test]
fn no_secret_value_is_written_under_the_state_directory() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    assert_eq!(code(&project.release("name=bad;error_rate=5%")), 1);
    let rollback = project.pipe("unused", &["rollback", "staging", "--approver", "dave"]);
    assert_eq!(code(&rollback), 1, "{}", text(&rollback));
    assert!(text(&rollback).contains("has no stable release other than"));
    let mut offenders = Vec::new();
    for entry in walk(&project.root().join(".pipe")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        if String::from_utf8_lossy(&bytes).contains(SECRET) {
            offenders.push(entry.display().to_string());
        }
    }
    assert!(offenders.is_empty(), "secret found in {offenders:?}");
    let logs = project.root().join(".pipe/runs");
    let redacted = walk(&logs).iter().any(|p| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .contains("token ***")
    });
    assert!(redacted, "the deploy log shows the redacted token");
}

#[test]
fn rollback_by_hand_redeploys_the_previous_stable_release() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    assert_eq!(code(&project.release("name=good2;error_rate=0%")), 0);
    assert!(project.serving("production").contains("name=good2"));
    let output = project.pipe("unused", &["rollback", "production", "--approver", "dave"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(project.serving("production").contains("name=good\n"));
    assert_eq!(project.statuses("production"), ["stable", "rolled_back"]);
    let requested = project
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "rollback_requested")
        .unwrap();
    assert_eq!(requested["actor"], "dave");
    let good2 = project.ledger("production")["releases"][1]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let forward = project.pipe("unused", &["rollback", "production", "--to", &good2]);
    assert_eq!(code(&forward), 0, "{}", text(&forward));
    assert!(project.serving("production").contains("name=good2"));
    let unknown = project.pipe("unused", &["rollback", "production", "--to", "nope"]);
    assert_eq!(code(&unknown), 1, "{}", text(&unknown));
    assert!(text(&unknown).contains("never had a release nope"));
    assert!(
        project.serving("production").contains("name=good2"),
        "a refusal changes nothing"
    );
    let releases = project.pipe("unused", &["releases", "production"]);
    let table = String::from_utf8_lossy(&releases.stdout).to_string();
    assert!(table.starts_with("ENVIRONMENT  VERSION"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    let plan = project.pipe("unused", &["plan", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["promotes"][1]["environment"], "production");
    assert_eq!(
        plan["promotes"][1]["rollout_steps"],
        serde_json::json!([50.0, 100.0])
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn an_interrupt_mid_promote_rolls_back_and_exits_130() {
    let project = Project::with(
        "3s",
        "for 1s",
        "run \"sh ./deploy.sh ${{ previous.path }} ${{ env.url }}\"",
    );
    expect_exit(&project.release(GOOD), 0);
    let child = project
        .command(
            "name=good2;error_rate=0%",
            &["run", "--until", "staging.watch"],
        )
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(project.env_dir("staging").join("current"))
        .unwrap_or_default()
        .contains("good2")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never deployed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 130, "{}", text(&output));
    assert!(
        project.serving("staging").contains("name=good\n"),
        "rolled back to the previous release"
    );
    assert_eq!(project.statuses("staging"), ["stable", "rolled_back"]);
    assert!(project.has_event("recovery_verified"));
}

#[test]
fn production_refuses_a_release_staging_no_longer_holds_as_stable() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    let waiting = project.pipe("name=good2;error_rate=0%", &["run"]);
    assert_eq!(code(&waiting), 3, "{}", text(&waiting));
    let all = text(&waiting);
    let line = all
        .lines()
        .find(|l| l.contains("--approve production"))
        .unwrap();
    let run = line.split_whitespace().nth(2).unwrap().to_string();
    let rollback = project.pipe("unused", &["rollback", "staging"]);
    assert_eq!(code(&rollback), 0, "{}", text(&rollback));

    let resumed = project.pipe(
        "unused",
        &[
            "resume",
            &run,
            "--approve",
            "production",
            "--approver",
            "alice",
        ],
    );
    let all = text(&resumed);
    assert_eq!(code(&resumed), 1, "{all}");
    assert!(
        all.contains("production is protected and refuses sha256:"),
        "{all}"
    );
    assert!(
        all.contains("no unprotected environment (staging) holds it as stable"),
        "{all}"
    );
    assert!(project.serving("production").contains("name=good\n"));
    assert!(project.has_event("staging_first_refused"));
}

#[test]
fn on_a_terminal_pipe_asks_and_a_yes_approves() {
    // A test that cannot run fails, never skips: `script` (bsdutils) gives pipe a terminal.
    which::which("script").expect("`script` (Debian's bsdutils) is needed to give pipe a terminal");
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    let command = format!("'{}' run", env!("CARGO_BIN_EXE_pipe"));
    let mut child = project
        .command("name=good2;error_rate=0%", &[])
        .env("PIPE_APPROVER", "bob")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn_script(&command);
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let all = text(&output);
    assert_eq!(code(&output), 0, "{all}");
    assert!(all.contains("Approve as bob? [y/N]"), "{all}");
    assert!(all.contains("previous  "), "{all}");
    assert!(
        project.serving("production").contains("name=good2"),
        "{all}"
    );
}

/// Runs a command line under `script`, which gives it a pseudo-terminal.
trait SpawnScript {
    fn spawn_script(&mut self, command: &str) -> std::process::Child;
}

impl SpawnScript for std::process::Command {
    fn spawn_script(&mut self, command: &str) -> std::process::Child {
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", command, "/dev/null"])
            .current_dir(self.get_current_dir().unwrap());
        for (key, value) in self.get_envs() {
            match value {
                Some(value) => script.env(key, value),
                None => script.env_remove(key),
            };
        }
        script
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn a_warn_rule_records_a_warning_and_never_rolls_back() {
    let project = Project::new();
    expect_exit(&project.release(GOOD), 0);
    assert!(!project.has_event("watch_warning"));
    let output = project.release(GOOD2);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let warning = project
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "watch_warning")
        .unwrap();
    assert_eq!(warning["condition"], "error_rate > 0.1%");
    assert_eq!(warning["observed"]["error_rate"], "0.5%");
    assert_eq!(project.statuses("staging"), ["stable", "stable"]);
}

/// Asserts an exit code, showing everything the run printed when it is not the expected one.
fn expect_exit(output: &std::process::Output, expected: i32) {
    assert_eq!(code(output), expected, "{}", text(output));
}
