#![allow(clippy::unwrap_used)]
//! `pipe run` scheduling: parallelism, failure propagation, selection, gates and overrides,
//! outputs, retries and `when`, through the real binary.

#[path = "support/run_harness.rs"]
mod harness;

use harness::Project;
use std::time::Duration;

#[test]
fn two_one_second_jobs_run_in_parallel_with_two_slots() {
    let project = Project::new(
        r#"pipeline p {
             job a { run "sleep 1" }
             job b { run "sleep 1" }
           }"#,
    );
    let run = project.run(&["run", "--jobs", "2"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(
        run.elapsed < Duration::from_millis(1800),
        "took {:?}",
        run.elapsed
    );
    assert_eq!(project.node_status("a"), "succeeded");
    assert_eq!(project.node_status("b"), "succeeded");
}

#[test]
fn one_slot_runs_jobs_one_after_the_other() {
    let project = Project::new(
        r#"pipeline p {
             job a { run "sleep 0.5" }
             job b { run "sleep 0.5" }
           }"#,
    );
    let run = project.run(&["run", "--jobs", "1"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(
        run.elapsed >= Duration::from_millis(1000),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn a_failure_skips_downstream_and_independent_branches_carry_on() {
    let project = Project::new(
        r#"pipeline p {
             job broken { run "echo starting"  run "exit 3" }
             job after { needs = [broken]  run "touch after-ran" }
             job later { needs = [after]  run "touch later-ran" }
             job other { run "sleep 0.3; touch other-ran" }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    let out = run.stdout();
    assert!(
        out.contains("job `broken` failed: step 2 `exit 3` exited 3 (see .pipe/runs/"),
        "{out}"
    );
    assert!(out.contains("broken.log)"), "{out}");
    assert!(out.contains("exit 1: pipeline failed"), "{out}");
    assert_eq!(project.node_status("after"), "skipped");
    assert_eq!(project.node_status("later"), "skipped");
    let reason = project.latest_state()["nodes"]["after"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(reason, "skipped: `broken` failed");
    assert!(!project.path().join("after-ran").exists());
    assert!(
        project.path().join("other-ran").exists(),
        "the independent branch finished"
    );
    assert_eq!(project.node_status("other"), "succeeded");
}

#[test]
fn until_runs_a_node_and_what_it_needs_only() {
    let project = Project::new(
        r#"pipeline p {
             job build { run "touch built" }
             job test { needs = [build]  run "touch tested" }
             job deploy { needs = [test]  run "touch deployed" }
             job docs { run "touch docs" }
           }"#,
    );
    let run = project.run(&["run", "--until", "test"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(project.path().join("tested").exists());
    assert!(!project.path().join("deployed").exists());
    assert!(!project.path().join("docs").exists());
    assert_eq!(project.node_status("deploy"), "excluded");
    let unknown = project.run(&["run", "--until", "tset"]);
    assert_eq!(unknown.code(), 2);
    assert!(
        unknown.stderr().contains("did you mean `test`"),
        "{}",
        unknown.all()
    );
}

#[test]
fn only_takes_predecessor_results_from_an_earlier_run() {
    let project = Project::new(
        r#"pipeline p {
             job build { run "echo x >> build-count" }
             job test { needs = [build]  run "echo x >> test-count" }
           }"#,
    );
    let refused = project.run(&["run", "--only", "test"]);
    assert_eq!(refused.code(), 2, "{}", refused.all());
    assert!(
        refused
            .stderr()
            .contains("`build` must already have succeeded"),
        "{}",
        refused.all()
    );
    assert!(
        project
            .run(&["run", "--until", "build"])
            .output
            .status
            .success()
    );
    let run = project.run(&["run", "--only", "test"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(
        project.read("build-count").lines().count(),
        1,
        "build is not re-run"
    );
    assert_eq!(project.read("test-count").lines().count(), 1);
    let state = project.latest_state();
    assert!(
        state["nodes"]["build"]["reused_from"].is_string(),
        "{state}"
    );
}

#[test]
fn gates_read_typed_outputs_and_overrides_are_recorded() {
    let project = Project::new(
        r#"pipeline p {
             job test {
               run "echo coverage=72.5% >> $PIPE_OUTPUT"
               outputs { coverage: percent }
             }
             gate quality {
               after = [test]
               require jobs.test.outputs.coverage >= 80%
               warn jobs.test.succeeded
             }
             job ship { needs = [quality]  run "touch shipped" }
           }"#,
    );
    let failed = project.run(&["run"]);
    assert_eq!(failed.code(), 1, "{}", failed.all());
    assert!(
        failed.stdout().contains(
            "gate `quality` failed: require `jobs.test.outputs.coverage >= 80%` is false \
             (jobs.test.outputs.coverage = 72.5%)"
        ),
        "{}",
        failed.all()
    );
    assert_eq!(project.node_status("ship"), "skipped");

    let missing_reason = project.run(&["run", "--override", "quality"]);
    assert_eq!(missing_reason.code(), 2, "{}", missing_reason.all());

    let overridden = project.run(&[
        "run",
        "--override",
        "quality",
        "--reason",
        "flaky coverage tool",
    ]);
    assert_eq!(overridden.code(), 0, "{}", overridden.all());
    assert!(project.path().join("shipped").exists());
    let state = project.latest_state();
    assert_eq!(state["overrides"][0]["gate"], "quality");
    assert_eq!(state["overrides"][0]["used"], true);
    let audit = std::fs::read_to_string(project.state_dir().join("audit.jsonl")).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("gate_overridden"))
        .expect(&audit);
    assert!(line.contains("flaky coverage tool"), "{line}");
}

#[test]
fn a_missing_or_ill_typed_output_fails_the_job_naming_it() {
    let project = Project::new(
        r#"pipeline p {
             job silent { run "true"  outputs { size: number } }
             job wrong { run "echo ratio=lots >> $PIPE_OUTPUT"  outputs { ratio: percent } }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    let state = project.latest_state();
    let silent = state["nodes"]["silent"]["message"].as_str().unwrap();
    assert!(
        silent.contains("declared output `size` was not written to $PIPE_OUTPUT"),
        "{silent}"
    );
    let wrong = state["nodes"]["wrong"]["message"].as_str().unwrap();
    assert!(
        wrong.contains("output `ratio`") && wrong.contains("not a percent"),
        "{wrong}"
    );
}

#[test]
fn retries_back_off_and_log_each_attempt() {
    let project = Project::new(
        r#"pipeline p {
             job flaky {
               run "echo x >> tries; [ $(wc -l < tries) -ge 3 ]"
               retries = 3
               backoff = 100ms
             }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(project.read("tries").lines().count(), 3);
    assert!(
        run.stdout()
            .contains("[flaky] attempt 1/4 exited 1; retrying in 100ms"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout()
            .contains("[flaky] attempt 2/4 exited 1; retrying in 200ms"),
        "{}",
        run.all()
    );
    assert_eq!(project.latest_state()["nodes"]["flaky"]["attempts"], 3);
}

#[test]
fn when_false_skips_with_the_reason() {
    let project = Project::new(
        r#"pipeline p {
             job release { when = git.branch == "main"  run "touch released" }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(!project.path().join("released").exists());
    let message = project.latest_state()["nodes"]["release"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("when `git.branch == \"main\"` is false"),
        "{message}"
    );
}

#[test]
fn json_log_format_prints_one_event_per_line() {
    let project = Project::new(r#"pipeline p { job a { run "echo hi" } }"#);
    let run = project.run(&["run", "--log-format", "json"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let events: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"node_started") && names.contains(&"run_finished"),
        "{names:?}"
    );
    let log = events.iter().find(|e| e["event"] == "log").unwrap();
    assert_eq!(log["node"], "a");
    assert_eq!(log["line"], "hi");
}

const PROTECTED_PLAN: &str = r#"{
  "schema": "pipe.plan/v1", "pipeline": "svc", "source_sha256": "", "source_file": "",
  "nodes": [
    {"id": "quality", "kind": "gate", "needs": [], "gate": {"require": [
      {"source": "false", "tree": {"lit": {"type": "bool", "value": false}}}], "warn": []},
     "span": {"file": "p", "line": 1, "column": 1}},
    {"id": "production.deploy", "kind": "deploy", "needs": ["quality"], "environment": "production",
     "span": {"file": "p", "line": 2, "column": 1}}
  ],
  "environments": {"production": {"protected": true}},
  "artifacts": {"bin": {"path": "bin", "produced_by": "quality"}},
  "promotes": {"production": {
    "environment": "production", "artifact": "bin", "protected": true,
    "rollout": {"strategy": "all", "steps": [100.0]},
    "deploy": {"steps": []}, "rollback": {"steps": []},
    "nodes": ["production.deploy"], "span": {"file": "p", "line": 2, "column": 1}
  }}
}"#;

#[test]
fn overriding_a_gate_upstream_of_a_protected_environment_needs_an_approver() {
    let project = Project::new("");
    project.write("plan.json", PROTECTED_PLAN);
    let refused = project.run(&[
        "run",
        "plan.json",
        "--override",
        "quality",
        "--reason",
        "hotfix",
    ]);
    assert_eq!(refused.code(), 2, "{}", refused.all());
    assert!(
        refused.stderr().contains(
            "refusing to override gate `quality`: it is upstream of protected environment `production`"
        ),
        "{}",
        refused.all()
    );
    assert!(project.runs().is_empty(), "nothing ran");
    let approved = project.run(&[
        "run",
        "plan.json",
        "--until",
        "quality",
        "--override",
        "quality",
        "--reason",
        "hotfix",
        "--approver",
        "alice",
    ]);
    assert_eq!(approved.code(), 0, "{}", approved.all());
    let state = project.latest_state();
    assert_eq!(state["overrides"][0]["approver"], "alice");
    assert_eq!(state["nodes"]["quality"]["status"], "succeeded");
    assert_eq!(state["nodes"]["production.deploy"]["status"], "excluded");
}

#[test]
fn the_summary_shows_a_failed_jobs_log_tail_its_scripts_first_line_and_plain_skips() {
    let project = Project::new(
        r#"pipeline p {
             secret token { from = env("PIPE_TEST_SUMMARY_TOKEN") }
             job broken {
               secrets = [token]
               run """
                 for i in $(seq 1 30); do echo "line $i"; done
                 echo "token is $TOKEN"
                 exit 4
               """
             }
             job after { needs = [broken]  run "true" }
           }"#,
    );
    let run = project
        .command(&["run"])
        .env("PIPE_TEST_SUMMARY_TOKEN", "hunter2-summary")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let out = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        out.contains("step 1 `for i in $(seq 1 30); do echo \"line $i\"; done …` exited 4"),
        "{out}"
    );
    assert!(
        !out.contains("exit 4`"),
        "the script is shown by its first line: {out}"
    );
    let tail = out.split("last 20 lines of broken").nth(1).expect(&out);
    assert!(tail.contains("  | line 12\n"), "{out}");
    assert!(!tail.contains("  | line 11\n"), "only 20 lines: {out}");
    assert!(tail.contains("  | token is ***\n"), "redacted: {out}");
    assert!(!out.contains("hunter2-summary"), "{out}");
    assert!(
        out.contains("[after] skipped (needs broken, which failed)"),
        "{out}"
    );
    assert!(out.contains("needs broken, which failed"), "{out}");
    assert!(!out.contains("skipped in 0.00s"), "{out}");
    assert!(!out.contains("\x1b["), "no colour off a terminal: {out}");
}
