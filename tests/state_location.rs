//! One rule finds the state for every command: given the pipeline file `ci/x.pipe` from the
//! repository root, `run`, `resume`, `audit`, `evidence`, `releases` and `rollback` all use
//! `ci/.pipe`, never the current directory's `.pipe`.
#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::*;
use std::path::{Path, PathBuf};

/// The delivery project of `deliver_common`, moved under `ci/` as `ci/x.pipe`.
fn project_under_ci() -> (Project, PathBuf) {
    let project = Project::new();
    let ci = project.root().join("ci");
    std::fs::create_dir_all(&ci).unwrap();
    for name in ["deploy.sh", "smoke.sh", "error_rate.sh"] {
        std::fs::rename(project.root().join(name), ci.join(name)).unwrap();
    }
    std::fs::rename(project.root().join("pipeline.pipe"), ci.join("x.pipe")).unwrap();
    (project, ci)
}

fn expect(output: &std::process::Output, wanted: i32) -> String {
    assert_eq!(code(output), wanted, "{}", text(output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn run_ids(state: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn every_state_command_given_the_pipeline_file_finds_the_state_beside_it() {
    let (project, ci) = project_under_ci();
    let state = ci.join(".pipe");
    let file = "ci/x.pipe";
    let approve = ["--approve", "production", "--approver", "alice"];

    let first = project.pipe(GOOD, &[&["run", file][..], &approve].concat());
    expect(&first, 0);
    assert!(state.join("audit.jsonl").exists(), "{}", text(&first));

    // A run that stops for production's approval, resumed from the root with the file.
    expect(&project.pipe(GOOD2, &["run", file]), 3);
    let waiting = run_ids(&state).pop().unwrap();
    let resumed = project.pipe(
        GOOD2,
        &[&["resume", &waiting, "--file", file][..], &approve].concat(),
    );
    expect(&resumed, 0);

    let verified = expect(&project.pipe("", &["audit", "verify", "-f", file]), 0);
    assert!(verified.starts_with("audit log OK"), "{verified}");
    let shown = expect(&project.pipe("", &["audit", "show", "--file", file]), 0);
    assert!(shown.contains("deployment_promoted"), "{shown}");
    expect(&project.pipe("", &["evidence", "-f", file]), 0);

    let releases = expect(&project.pipe("", &["releases", "staging", "-f", file]), 0);
    assert_eq!(
        releases.lines().count(),
        3,
        "a header and two releases: {releases}"
    );

    let rolled = expect(&project.pipe("", &["rollback", "staging", "-f", file]), 0);
    assert!(rolled.contains("rolled back to"), "{rolled}");
    let ledger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("ledger/svc/staging.json")).unwrap())
            .unwrap();
    let statuses: Vec<&str> = ledger["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[1], "rolled_back", "{ledger:#}");

    assert!(
        !project.root().join(".pipe").exists(),
        "nothing read or wrote the current directory's .pipe"
    );
}

#[test]
fn pipe_state_names_the_state_and_an_unreachable_postgres_url_fails_without_its_password() {
    let (project, ci) = project_under_ci();
    let elsewhere = project.root().join("shared-state");
    let mut run = project.command(GOOD, &["run", "ci/x.pipe", "--until", "build"]);
    let output = run.env("PIPE_STATE", &elsewhere).output().unwrap();
    expect(&output, 0);
    assert!(elsewhere.join("audit.jsonl").exists(), "{}", text(&output));
    assert!(!ci.join(".pipe").exists());

    let mut verify = project.command("", &["audit", "verify", "-f", "ci/x.pipe"]);
    let output = verify.env("PIPE_STATE", &elsewhere).output().unwrap();
    expect(&output, 0);

    let url = "postgres://ci:hunter2@127.0.0.1:1/pipe?connect_timeout=2";
    for args in [
        &["releases", "-f", "ci/x.pipe", "--state", url][..],
        &["audit", "verify", "--state", url],
        &["run", "ci/x.pipe", "--state", url],
    ] {
        let output = project.pipe(GOOD, args);
        let shown = text(&output);
        assert_eq!(code(&output), 1, "{args:?}: {shown}");
        assert!(shown.contains("ci@127.0.0.1:1/pipe"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
