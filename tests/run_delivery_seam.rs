#![allow(clippy::unwrap_used)]
//! The scheduler's seam to delivery, through the library API with a scripted executor: a
//! promote group runs as one unit, its outcome becomes node states and the exit code, and
//! without an executor the group fails clearly.

use pipe::NodeStatus;
use pipe::Plan;
use pipe::{DeliveryExecutor, PromoteOutcome, PromoteRequest};
use pipe::{RunOptions, run_plan};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

const PLAN: &str = r#"{
  "schema": "pipe.plan/v1", "pipeline": "svc", "source_sha256": "", "source_file": "",
  "nodes": [
    {"id": "build", "kind": "job", "needs": [], "steps": [{"run": [{"text": "echo built"}], "span": {"file": "p", "line": 1, "column": 1}}],
     "span": {"file": "p", "line": 1, "column": 1}},
    {"id": "staging.deploy", "kind": "deploy", "needs": ["build"], "environment": "staging", "span": {"file": "p", "line": 2, "column": 1}},
    {"id": "staging.smoke", "kind": "smoke", "needs": ["staging.deploy"], "environment": "staging", "span": {"file": "p", "line": 3, "column": 1}},
    {"id": "notify", "kind": "job", "needs": ["staging.smoke"], "steps": [{"run": [{"text": "echo notified"}], "span": {"file": "p", "line": 4, "column": 1}}],
     "span": {"file": "p", "line": 4, "column": 1}}
  ],
  "environments": {"staging": {"protected": false}},
  "promotes": {"staging": {
    "environment": "staging", "artifact": "bin", "protected": false,
    "rollout": {"strategy": "all", "steps": [100.0]},
    "deploy": {"steps": []}, "rollback": {"steps": []},
    "nodes": ["staging.deploy", "staging.smoke"],
    "span": {"file": "p", "line": 2, "column": 1}
  }}
}"#;

/// Reports `staging.deploy` as running, then ends with `outcome`; remembers its requests.
struct Scripted {
    outcome: PromoteOutcome,
    seen: Mutex<Vec<(String, String)>>,
}

impl DeliveryExecutor for Scripted {
    fn run_promote(
        &self,
        request: PromoteRequest,
    ) -> Pin<Box<dyn Future<Output = PromoteOutcome> + Send + '_>> {
        Box::pin(async move {
            let run_id = request.bindings.get("run.id").map(pipe::display).unwrap();
            self.seen
                .lock()
                .unwrap()
                .push((request.environment.clone(), run_id));
            request
                .reporter
                .node("staging.deploy", NodeStatus::Running, None);
            if self.outcome == PromoteOutcome::Succeeded {
                request
                    .reporter
                    .node("staging.deploy", NodeStatus::Succeeded, None);
            }
            request
                .reporter
                .record(serde_json::json!({"approvals": ["alice"]}));
            self.outcome
        })
    }
}

fn run_with(outcome: Option<PromoteOutcome>) -> (pipe::RunOutcome, Option<Arc<Scripted>>) {
    let dir = tempfile::tempdir().unwrap();
    let plan: Plan = serde_json::from_str(PLAN).unwrap();
    let store = pipe::Store::directory(&dir.path().join(".pipe"));
    let options = RunOptions::new(store, dir.path().to_path_buf());
    let scripted = outcome.map(|outcome| {
        Arc::new(Scripted {
            outcome,
            seen: Mutex::new(Vec::new()),
        })
    });
    let executor = scripted.clone().map(|s| s as Arc<dyn DeliveryExecutor>);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(run_plan(plan, options, executor)).unwrap();
    (result, scripted)
}

fn status(outcome: &pipe::RunOutcome, node: &str) -> NodeStatus {
    outcome.state.nodes[node].status
}

#[test]
fn a_succeeding_promote_group_runs_once_and_unblocks_downstream() {
    let (outcome, scripted) = run_with(Some(PromoteOutcome::Succeeded));
    assert_eq!(outcome.exit_code, 0);
    let seen = scripted.unwrap().seen.lock().unwrap().clone();
    assert_eq!(seen, vec![("staging".to_string(), outcome.run_id.clone())]);
    assert_eq!(status(&outcome, "staging.smoke"), NodeStatus::Succeeded);
    assert_eq!(status(&outcome, "notify"), NodeStatus::Succeeded);
    assert_eq!(outcome.state.delivery["staging"]["approvals"][0], "alice");
}

#[test]
fn outcomes_map_to_node_states_and_exit_codes() {
    let (failed, _) = run_with(Some(PromoteOutcome::Failed { rolled_back: true }));
    assert_eq!(failed.exit_code, 1);
    assert_eq!(status(&failed, "staging.deploy"), NodeStatus::Failed);
    assert_eq!(status(&failed, "staging.smoke"), NodeStatus::Skipped);
    assert_eq!(status(&failed, "notify"), NodeStatus::Skipped);

    let (broken, _) = run_with(Some(PromoteOutcome::RollbackFailed));
    assert_eq!(broken.exit_code, 4);

    let (waiting, _) = run_with(Some(PromoteOutcome::AwaitingApproval));
    assert_eq!(waiting.exit_code, 3);
    assert_eq!(
        status(&waiting, "staging.deploy"),
        NodeStatus::AwaitingApproval
    );
    assert_eq!(
        status(&waiting, "notify"),
        NodeStatus::Pending,
        "resumable, not skipped"
    );
}

#[test]
fn without_an_executor_the_group_fails_with_a_clear_message() {
    let (outcome, _) = run_with(None);
    assert_eq!(outcome.exit_code, 1);
    let deploy = &outcome.state.nodes["staging.deploy"];
    assert_eq!(deploy.status, NodeStatus::Failed);
    assert!(
        deploy
            .message
            .as_deref()
            .unwrap()
            .contains("no delivery executor"),
        "{deploy:?}"
    );
    assert_eq!(status(&outcome, "build"), NodeStatus::Succeeded);
    assert_eq!(status(&outcome, "notify"), NodeStatus::Skipped);
}
