//! A stored artifact changed after it was stored (`chmod u+w`, then a write) is never used:
//! deploy, automatic rollback and `pipe rollback` refuse it with the digest named and an
//! `artifact_verification_failed` audit event, and a rebuild of the same digest replaces it.
#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const EVIL: &str = "name=evil;error_rate=0%\n";

/// The digest of the environment's `index`-th release in its ledger.
fn digest_of(project: &Project, environment: &str, index: usize) -> String {
    project.ledger(environment)["releases"][index]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn stored_path(project: &Project, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    project.root().join(".pipe/artifacts/sha256").join(hex)
}

/// What an attacker (or a stray script) with write access to the state directory does.
fn tamper(project: &Project, digest: &str) {
    let path = stored_path(project, digest);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, EVIL).unwrap();
}

fn deploy_count(project: &Project, environment: &str) -> usize {
    std::fs::read_to_string(project.env_dir(environment).join("deploys"))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// The `artifact_verification_failed` events, asserting there is at least one for `digest`.
fn verification_failures(project: &Project, digest: &str) -> Vec<serde_json::Value> {
    let events: Vec<_> = project
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "artifact_verification_failed")
        .collect();
    assert!(
        events.iter().any(|e| e["digest"] == digest),
        "no artifact_verification_failed for {digest}: {events:?}"
    );
    events
}

fn assert_names_digest(output: &std::process::Output, digest: &str) {
    let all = text(output);
    assert!(
        all.contains(&format!("expected {digest}")) && all.contains("found sha256:"),
        "the refusal must name the expected and the found digest: {all}"
    );
}

#[test]
fn a_deploy_refuses_a_stored_object_changed_after_the_build() {
    let project = Project::new();
    let first = project.pipe(GOOD, &["run"]);
    assert_eq!(
        code(&first),
        3,
        "staging done, production awaits approval: {}",
        text(&first)
    );
    let run = text(&first)
        .lines()
        .find(|l| l.contains("--approve production"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_string();
    let digest = digest_of(&project, "staging", 0);
    tamper(&project, &digest);

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
    assert_eq!(code(&resumed), 1, "{}", text(&resumed));
    assert_names_digest(&resumed, &digest);
    let events = verification_failures(&project, &digest);
    assert_eq!(events[0]["environment"], "production");
    assert_eq!(
        deploy_count(&project, "production"),
        0,
        "the deploy never ran"
    );
    assert!(project.serving("production").is_empty());
    let deploys_audited: Vec<_> = project
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "deploy_started")
        .map(|e| e["environment"].clone())
        .collect();
    assert_eq!(
        deploys_audited,
        ["staging"],
        "production's deploy never started"
    );
}

#[test]
fn an_automatic_rollback_refuses_a_tampered_target_and_exits_4() {
    let project = Project::new();
    assert_eq!(code(&project.release(GOOD)), 0);
    let good = digest_of(&project, "staging", 0);
    tamper(&project, &good);

    let output = project.release("name=bad;error_rate=5%");
    assert_eq!(code(&output), 4, "{}", text(&output));
    assert_names_digest(&output, &good);
    verification_failures(&project, &good);
    assert!(!project.has_event("rollback_finished"));
    assert!(
        project.serving("staging").contains("name=bad"),
        "the rollback block never ran, so nothing (least of all the tampered bytes) was redeployed"
    );
    assert_eq!(
        deploy_count(&project, "staging"),
        2,
        "good, then bad; no third deploy"
    );
    assert_eq!(project.statuses("staging"), ["stable", "failed"]);
}

#[test]
fn rollback_by_hand_refuses_a_tampered_target_and_exits_4() {
    let project = Project::new();
    assert_eq!(code(&project.release(GOOD)), 0);
    assert_eq!(code(&project.release(GOOD2)), 0);
    let good = digest_of(&project, "production", 0);
    tamper(&project, &good);
    let deploys = deploy_count(&project, "production");

    let output = project.pipe("unused", &["rollback", "production", "--approver", "dave"]);
    assert_eq!(code(&output), 4, "{}", text(&output));
    assert_names_digest(&output, &good);
    assert!(
        !text(&output).contains("verified"),
        "never reported as verified: {}",
        text(&output)
    );
    let events = verification_failures(&project, &good);
    assert!(events.iter().any(|e| e["actor"] == "dave"), "{events:?}");
    assert_eq!(
        deploy_count(&project, "production"),
        deploys,
        "nothing redeployed"
    );
    assert!(project.serving("production").contains("name=good2"));
}

#[test]
fn a_rebuild_of_the_same_digest_replaces_a_tampered_object_and_deploys_the_real_bytes() {
    let project = Project::new();
    assert_eq!(code(&project.release(GOOD)), 0);
    let digest = digest_of(&project, "staging", 0);
    tamper(&project, &digest);

    let output = project.release(GOOD);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(project.serving("staging").contains("name=good"));
    assert!(project.serving("production").contains("name=good"));
    assert!(!project.serving("production").contains("evil"));
    let stored = std::fs::read_to_string(stored_path(&project, &digest)).unwrap();
    assert_eq!(stored, GOOD.replace(';', "\n") + "\n");
    let events = verification_failures(&project, &digest);
    let quarantine = events[0]["quarantine"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(quarantine).unwrap(),
        EVIL,
        "kept as evidence"
    );
    let verify = project.pipe("unused", &["audit", "verify"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
}

#[test]
fn a_change_between_rollout_steps_stops_the_next_step_and_rolls_back() {
    let project = Project::new();
    assert_eq!(code(&project.release(GOOD)), 0);
    // The first canary step of good2 overwrites the very stored copy it was handed.
    let tampering_deploy = DEPLOY.replace(
        "rm -f \"$envdir/probe_count\"",
        "rm -f \"$envdir/probe_count\"\n\
         if [ \"${PIPE_ROLLOUT_WEIGHT:-}\" = 50 ] && grep -q '^name=good2' \"$artifact\"; then\n\
         chmod u+w \"$artifact\"; echo name=evil > \"$artifact\"; fi",
    );
    std::fs::write(project.root().join("deploy.sh"), tampering_deploy).unwrap();

    let output = project.release(GOOD2);
    assert_eq!(
        code(&output),
        1,
        "rolled back and verified: {}",
        text(&output)
    );
    let good2 = digest_of(&project, "production", 1);
    assert_names_digest(&output, &good2);
    verification_failures(&project, &good2);
    assert!(project.has_event("recovery_verified"));
    assert!(project.serving("production").contains("name=good\n"));
    let all = text(&output);
    let production_step = |weight: &str| {
        all.lines()
            .any(|l| l.starts_with("[production.deploy] deploying") && l.ends_with(weight))
    };
    assert!(production_step("weight 50"), "the first step ran: {all}");
    assert!(
        all.lines().any(|l| l.contains("production.deploy")
            && l.contains("failed")
            && l.contains("changed after it was stored")),
        "the deploy node says why it failed: {all}"
    );
    assert!(
        !production_step("weight 100"),
        "the 100% step never ran: {all}"
    );
    assert_eq!(project.statuses("production"), ["stable", "rolled_back"]);
}
