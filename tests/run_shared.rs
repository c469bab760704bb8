#![allow(clippy::unwrap_used)]
//! Agents sharing one run (`pipe run --run-id`): separate working directories, one state
//! directory, each agent running its part; what one stores the others see, and nothing is lost.

#[path = "support/run_harness.rs"]
mod harness;

use harness::{Project, Run};
use std::path::Path;

const PIPELINE: &str = r#"pipeline p {
  artifact app { path = "app.txt" }
  environment staging { url = "local" }
  job build {
    run "echo built-by-a > app.txt; echo tag=v7 >> $PIPE_OUTPUT"
    outputs { tag: string }
    produces = [app]
  }
  job lint { run "true" }
  promote staging {
    after    = [build]
    artifact = app
    deploy   { run "echo ${{ jobs.build.outputs.tag }} > deployed-tag; cat ${{ artifact.path }} > deployed-app" }
    smoke    { run "true" }
    rollback { run "true" }
  }
}"#;

/// One agent: its own checkout of the pipeline, sharing only `state`.
fn agent(state: &Path) -> (Project, Vec<String>) {
    let project = Project::new(PIPELINE);
    let args = vec!["--state-dir".to_string(), state.display().to_string()];
    (project, args)
}

fn run(project: &Project, shared: &[String], args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(shared.iter().map(String::as_str));
    project.run(&all)
}

fn node_status(state: &Path, run: &str, node: &str) -> String {
    let path = state
        .join("runs")
        .join(run)
        .join("nodes")
        .join(format!("{node}.json"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_default();
    record["status"].as_str().unwrap_or("").to_string()
}

#[test]
fn an_agent_with_only_sees_another_agents_outputs_and_artifacts() {
    let state = tempfile::tempdir().unwrap();
    let (a, a_state) = agent(state.path());
    let (b, b_state) = agent(state.path());
    let built = run(
        &a,
        &a_state,
        &["run", "--run-id", "rel-1", "--only", "build"],
    );
    assert_eq!(built.code(), 0, "{}", built.all());
    assert!(!b.path().join("app.txt").exists(), "agent B never built");
    let deployed = run(
        &b,
        &b_state,
        &["run", "--run-id", "rel-1", "--only", "staging.deploy"],
    );
    assert_eq!(deployed.code(), 0, "{}", deployed.all());
    assert_eq!(b.read("deployed-tag"), "v7\n");
    assert_eq!(b.read("deployed-app"), "built-by-a\n");
    assert_eq!(node_status(state.path(), "rel-1", "build"), "succeeded");
    assert_eq!(
        node_status(state.path(), "rel-1", "staging.deploy"),
        "succeeded"
    );
}

#[test]
fn an_only_whose_predecessor_has_not_succeeded_in_that_run_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let (a, a_state) = agent(state.path());
    let (b, b_state) = agent(state.path());
    // A succeeded build in another run does not count for rel-2.
    assert_eq!(run(&a, &a_state, &["run", "--only", "build"]).code(), 0);
    assert_eq!(
        run(
            &a,
            &a_state,
            &["run", "--run-id", "rel-2", "--only", "lint"]
        )
        .code(),
        0
    );
    let refused = run(
        &b,
        &b_state,
        &["run", "--run-id", "rel-2", "--only", "staging.deploy"],
    );
    assert_eq!(refused.code(), 2, "{}", refused.all());
    assert!(
        refused
            .stderr()
            .contains("`build` has not succeeded in run rel-2"),
        "{}",
        refused.stderr()
    );
}

#[test]
fn joining_a_run_of_another_plan_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let (a, a_state) = agent(state.path());
    assert_eq!(
        run(
            &a,
            &a_state,
            &["run", "--run-id", "rel-3", "--only", "lint"]
        )
        .code(),
        0
    );
    let other = Project::new(r#"pipeline p { job lint { run "false" } }"#);
    let refused = run(&other, &a_state, &["run", "--run-id", "rel-3"]);
    assert_eq!(refused.code(), 2, "{}", refused.all());
    assert!(
        refused
            .stderr()
            .contains("refusing to join run rel-3: it runs another plan"),
        "{}",
        refused.stderr()
    );
    let bad = run(&other, &a_state, &["run", "--run-id", "../x"]);
    assert_eq!(bad.code(), 2, "{}", bad.all());
    assert!(bad.stderr().contains("--run-id `../x`"), "{}", bad.stderr());
}

#[test]
fn parallel_agents_on_different_nodes_keep_each_others_records() {
    let source = r#"pipeline p {
      job one   { run "sleep 0.3" }
      job two   { run "sleep 0.3" }
      job three { run "sleep 0.3" }
    }"#;
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().display().to_string();
    let agents: Vec<Project> = (0..3).map(|_| Project::new(source)).collect();
    let children: Vec<_> = agents
        .iter()
        .zip(["one", "two", "three"])
        .map(|(agent, node)| {
            agent.spawn(&[
                "run",
                "--run-id",
                "par",
                "--only",
                node,
                "--state-dir",
                &dir,
            ])
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    for node in ["one", "two", "three"] {
        assert_eq!(
            node_status(state.path(), "par", node),
            "succeeded",
            "{node}"
        );
    }
    // A fourth agent joining without --only finds nothing left to run.
    let last = Project::new(source);
    let rest = last.run(&["run", "--run-id", "par", "--state-dir", &dir]);
    assert_eq!(rest.code(), 0, "{}", rest.all());
    let resumed = last.run(&["resume", "par", "--state-dir", &dir]);
    assert_eq!(resumed.code(), 0, "{}", resumed.all());
}

#[test]
fn a_run_of_one_agent_keeps_its_nodes_in_its_state_document_only() {
    let project = Project::new(r#"pipeline p { job a { run "true" } }"#);
    assert_eq!(project.run(&["run"]).code(), 0);
    let run_dir = project.state_dir().join("runs").join(&project.runs()[0]);
    assert!(
        !run_dir.join("nodes").exists(),
        "no per-node writes without --run-id"
    );
    assert!(run_dir.join("run.json").exists(), "the header is recorded");
    assert_eq!(project.node_status("a"), "succeeded");
}

#[test]
fn a_state_saved_whole_by_an_older_pipe_still_resumes() {
    let project = Project::new(
        r#"pipeline p {
      job a { run "echo a >> count-a" }
      job b { needs = [a]  run "test -f ok; echo b >> count-b" }
    }"#,
    );
    assert_eq!(project.run(&["run", "--run-id", "old-1"]).code(), 1);
    let run_id = project.runs()[0].clone();
    assert_eq!(run_id, "old-1");
    let run_dir = project.state_dir().join("runs").join(&run_id);
    // An older pipe kept nodes only inside state.json, and no header.
    std::fs::remove_dir_all(run_dir.join("nodes")).unwrap();
    std::fs::remove_file(run_dir.join("run.json")).unwrap();
    project.write("ok", "");
    let resumed = project.run(&["resume", &run_id]);
    assert_eq!(resumed.code(), 0, "{}", resumed.all());
    assert_eq!(
        project.read("count-a"),
        "a\n",
        "a had succeeded: not run again"
    );
    assert_eq!(project.read("count-b"), "b\n");
}
