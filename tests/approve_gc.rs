#![allow(clippy::unwrap_used)]
//! `pipe approve` (an approval recorded without running anything, counted once by a later
//! resume, refused by the same rules as `--approve`) and `pipe gc` (never a referenced artifact,
//! never a run in progress).

mod deliver_common;

use deliver_common::{Project, code, text};

fn quick() -> Project {
    Project::with(
        "300ms",
        "for 100ms",
        "run \"sh ./deploy.sh ${{ previous.path }} ${{ env.url }}\"",
    )
}

fn runs(project: &Project) -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(project.root().join(".pipe/runs"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    runs
}

fn events_named(project: &Project, name: &str) -> Vec<serde_json::Value> {
    project
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

#[test]
fn an_approval_recorded_by_pipe_approve_is_checked_and_counted_once_by_the_resume() {
    let project = quick();
    let waiting = project.pipe("v=1;error_rate=0%", &["run"]);
    assert_eq!(code(&waiting), 3, "{}", text(&waiting));
    let run = runs(&project).pop().unwrap();
    let approve = |approver: &str, extra: &[&str]| {
        let mut args = vec![
            "approve",
            run.as_str(),
            "production",
            "--approver",
            approver,
        ];
        args.extend_from_slice(extra);
        project.pipe("v=1;error_rate=0%", &args)
    };
    let stranger = approve("mallory", &[]);
    assert_eq!(code(&stranger), 2, "{}", text(&stranger));
    assert!(
        text(&stranger).contains("mallory is not an approver here"),
        "{}",
        text(&stranger)
    );
    let own = approve("carol", &[]);
    assert_eq!(
        code(&own),
        2,
        "the initiator cannot approve: {}",
        text(&own)
    );
    std::fs::write(project.root().join("ticket.txt"), "CHG-42 approved in CAB").unwrap();
    let evidence = ["--source", "CHG-42", "--evidence", "ticket.txt"];
    let alice = approve("alice", &evidence);
    assert_eq!(code(&alice), 0, "{}", text(&alice));
    assert!(text(&alice).contains("(1/1)"), "{}", text(&alice));
    let twice = approve("alice", &[]);
    assert_eq!(code(&twice), 2, "{}", text(&twice));
    assert_eq!(project.serving("production"), "", "approving runs nothing");

    let resumed = project.pipe("v=1;error_rate=0%", &["resume", &run]);
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert_eq!(project.serving("production"), "v=1\nerror_rate=0%\n");
    let granted = events_named(&project, "approval_granted");
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0]["actor"], "alice");
    assert_eq!(granted[0]["source"], "CHG-42");
    assert!(
        granted[0]["evidence_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(events_named(&project, "approval_refused").len(), 2);
    let consumed = project
        .root()
        .join(".pipe/runs")
        .join(&run)
        .join("approvals/production/consumed/alice.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(consumed).unwrap()).unwrap();
    assert!(record["consumed_by"].as_str().unwrap().starts_with(&run));

    // Another run does not see alice's approval: it waits for its own.
    let next = project.pipe("v=2;error_rate=0%", &["run"]);
    assert_eq!(code(&next), 3, "{}", text(&next));
}

#[test]
fn approving_an_unknown_run_or_environment_is_a_usage_error() {
    let project = quick();
    let missing = project.pipe(
        "v=1;error_rate=0%",
        &["approve", "nope", "production", "--approver", "alice"],
    );
    assert_eq!(code(&missing), 2, "{}", text(&missing));
    assert!(
        text(&missing).contains("no run `nope`"),
        "{}",
        text(&missing)
    );
    assert_eq!(code(&project.pipe("v=1;error_rate=0%", &["run"])), 3);
    let run = runs(&project).pop().unwrap();
    let typo = project.pipe(
        "v=1;error_rate=0%",
        &["approve", &run, "prodution", "--approver", "alice"],
    );
    assert_eq!(code(&typo), 2, "{}", text(&typo));
    assert!(
        text(&typo).contains("did you mean `production`"),
        "{}",
        text(&typo)
    );
    let staging = project.pipe(
        "v=1;error_rate=0%",
        &["approve", &run, "staging", "--approver", "alice"],
    );
    assert_eq!(code(&staging), 2, "{}", text(&staging));
    assert!(
        text(&staging).contains("needs no approval"),
        "{}",
        text(&staging)
    );
}

fn stored_artifacts(project: &Project) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.root().join(".pipe/artifacts/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.len() == 64)
        .collect();
    names.sort();
    names
}

fn ledger_digests(project: &Project) -> Vec<String> {
    let mut digests: Vec<String> = ["staging", "production"]
        .iter()
        .flat_map(|env| {
            let ledger = project.ledger(env);
            let releases = ledger["releases"].as_array().cloned().unwrap_or_default();
            releases
                .into_iter()
                .map(|r| {
                    r["digest"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("sha256:")
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    digests.sort();
    digests.dedup();
    digests
}

#[test]
fn gc_keeps_every_artifact_a_ledger_references_and_removes_the_rest() {
    let project = quick();
    assert_eq!(code(&project.release("v=1;error_rate=0%")), 0);
    let bad = project.pipe("v=2;error_rate=0%;smoke=fail", &["run"]);
    assert_eq!(code(&bad), 1, "{}", text(&bad));
    assert!(
        project
            .statuses("staging")
            .contains(&"rolled_back".to_string())
    );
    let built = project.pipe("v=3;error_rate=0%", &["run", "--only", "build"]);
    assert_eq!(code(&built), 0, "{}", text(&built));
    let referenced = ledger_digests(&project);
    assert_eq!(referenced.len(), 2, "a stable and a rolled-back release");
    assert_eq!(stored_artifacts(&project).len(), 3);

    let dry = project.pipe("", &["gc", "--keep-runs", "0", "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", text(&dry));
    assert_eq!(
        text(&dry).matches("would remove run").count(),
        3,
        "{}",
        text(&dry)
    );
    assert_eq!(
        text(&dry).matches("would remove artifact").count(),
        1,
        "{}",
        text(&dry)
    );
    assert_eq!(runs(&project).len(), 3, "a dry run removes nothing");

    let gc = project.pipe("", &["gc", "--keep-runs", "0"]);
    assert_eq!(code(&gc), 0, "{}", text(&gc));
    assert!(runs(&project).is_empty());
    assert_eq!(stored_artifacts(&project), referenced);
    assert_eq!(events_named(&project, "gc_finished").len(), 1);
    let verify = project.pipe("", &["audit", "verify"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
}

#[test]
fn gc_never_removes_a_run_in_progress() {
    let project = quick();
    assert_eq!(
        code(&project.pipe("v=1;error_rate=0%", &["run", "--only", "build"])),
        0
    );
    let mut slow = project
        .command("v=2;error_rate=0%;deploy=slow", &["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while runs(&project).len() < 2 && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let gc = project.pipe("", &["gc", "--keep-runs", "0"]);
    assert_eq!(code(&gc), 0, "{}", text(&gc));
    assert!(text(&gc).contains("still running"), "{}", text(&gc));
    assert_eq!(runs(&project).len(), 1, "only the finished run went");
    let finished = slow.wait().unwrap();
    assert_eq!(
        finished.code(),
        Some(3),
        "the slow run waits for production's approval"
    );
}
