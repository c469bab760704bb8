//! The promote flow against a scripted host: order of steps, ledger and audit effects, and
//! every failure path, without processes.

use crate::audit::AuditLog;
use crate::compile::plan::{
    ApprovalPlan, ConditionPlan, EnvironmentPlan, ExprTree, Expression, Literal, ProbePlan,
    PromotePlan, RolloutPlan, SourceSpan, Step, StepBlockPlan, Template, TemplatePart, WatchPlan,
    promote_node_id,
};
use crate::deliver::engine::{DeliveryOutcome, promote};
use crate::deliver::host::{ApprovalPrompt, BlockResult, PromoteHost, StepContext};
use crate::deliver::ledger::{Ledger, ReleaseStatus};
use crate::deliver::probe_value::ProbeRun;
use crate::deliver::request::{ApprovalInput, ArtifactRef, DeliveryRequest};
use crate::run::eval::Bindings;
use crate::run::state::NodeStatus;
use crate::store::Store;
use crate::syntax::ast::{BinaryOp, Type};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The in-memory store of one test, and the scratch directory its artifacts live in.
struct Fixture {
    store: Store,
    /// The store's lock table, which a test can take a lock away through.
    mem: std::sync::Arc<crate::store::mem::MemStore>,
    _scratch: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let scratch = tempfile::tempdir().unwrap();
        let mem = std::sync::Arc::new(crate::store::mem::MemStore::default());
        Fixture {
            store: Store::with_state(mem.clone(), scratch.path()),
            mem,
            _scratch: scratch,
        }
    }
}

#[derive(Default)]
struct FakeHost {
    /// Node ids whose blocks fail; `ENV.smoke#2` fails only the second smoke.
    failing: Vec<String>,
    probe_output: String,
    calls: Mutex<Vec<String>>,
    /// When set, each `succeeded` transition also notes whether staging's ledger already
    /// holds a stable release at that moment.
    ledger: Option<Store>,
    /// The node whose forward block is interrupted (SIGINT arrives while it runs); from then
    /// on `interrupted()` holds and every forward block stops at once, as the runner's do.
    interrupt_at: Option<String>,
    interrupt: std::sync::atomic::AtomicBool,
    /// Which entry point ran each block: `forward NODE` or `recovery NODE`.
    entry_points: Mutex<Vec<String>>,
    /// Runs at each probe: what happens to the environment while it is watched.
    on_probe: Option<Box<dyn Fn() + Send + Sync>>,
}

impl FakeHost {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn entry_points(&self) -> Vec<String> {
        self.entry_points.lock().unwrap().clone()
    }

    fn script(&self, node: &str, block: &StepBlockPlan, context: &StepContext) -> BlockResult {
        let mut calls = self.calls.lock().unwrap();
        let nth = calls
            .iter()
            .filter(|c| c.starts_with(&format!("{node} ")))
            .count()
            + 1;
        let command = crate::run::eval::render(&block.steps[0].run, &context.bindings).unwrap();
        calls.push(format!("{node} {command}"));
        let fails = self
            .failing
            .iter()
            .any(|f| f == node || *f == format!("{node}#{nth}"));
        if fails {
            BlockResult::Failed("exit status 1".into())
        } else {
            BlockResult::Succeeded
        }
    }
}

impl PromoteHost for FakeHost {
    fn run_block(&self, node: &str, block: &StepBlockPlan, context: &StepContext) -> BlockResult {
        self.entry_points
            .lock()
            .unwrap()
            .push(format!("forward {node}"));
        if self.interrupt_at.as_deref() == Some(node) {
            self.interrupt.store(true, Ordering::SeqCst);
        }
        if self.interrupted() {
            return BlockResult::Interrupted;
        }
        self.script(node, block, context)
    }

    fn run_recovery_block(
        &self,
        node: &str,
        block: &StepBlockPlan,
        context: &StepContext,
    ) -> BlockResult {
        self.entry_points
            .lock()
            .unwrap()
            .push(format!("recovery {node}"));
        self.script(node, block, context)
    }

    fn run_probe(&self, _: &str, probe: &ProbePlan, _: &StepContext, _: Duration) -> ProbeRun {
        self.calls
            .lock()
            .unwrap()
            .push(format!("probe {}", probe.name));
        if let Some(action) = &self.on_probe {
            action();
        }
        ProbeRun {
            succeeded: true,
            status: "exit status 0".into(),
            stdout: self.probe_output.clone(),
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    fn node_transition(&self, node: &str, status: NodeStatus, _: Option<&str>) {
        let mut line = format!("{node}: {}", status.word());
        if let (Some(store), NodeStatus::Succeeded) = (&self.ledger, status) {
            let stable = statuses_in(store, "staging")
                .iter()
                .any(|(_, s)| *s == ReleaseStatus::Stable);
            line.push_str(if stable {
                " (stable)"
            } else {
                " (not yet stable)"
            });
        }
        self.calls.lock().unwrap().push(line);
    }

    fn ask_approval(&self, _: &ApprovalPrompt) -> Option<bool> {
        None
    }

    fn redact(&self, text: &str) -> String {
        text.to_string()
    }

    fn say(&self, _: &str) {}
}

fn block(command: &str) -> StepBlockPlan {
    let mut parts = vec![TemplatePart::Text(format!("{command} "))];
    parts.push(TemplatePart::Expr(Expression {
        source: "x".into(),
        tree: ExprTree::Name(vec![
            if command == "rollback" {
                "previous"
            } else {
                "artifact"
            }
            .into(),
            "version".into(),
        ]),
    }));
    StepBlockPlan {
        steps: vec![Step {
            run: Template { parts },
            span: SourceSpan::default(),
        }],
        ..StepBlockPlan::default()
    }
}

fn promote_plan(environment: &str, protected: bool) -> PromotePlan {
    PromotePlan {
        environment: environment.into(),
        artifact: "bin".into(),
        protected,
        secrets: vec![],
        when: None,
        approval: None,
        migrate: None,
        rollout: RolloutPlan {
            strategy: "all".into(),
            steps: vec![100.0],
            pause_ms: 0,
        },
        deploy: block("deploy"),
        smoke: Some(block("smoke")),
        watch: None,
        rollback: block("rollback"),
        nodes: ["deploy", "smoke", "watch"]
            .iter()
            .map(|s| promote_node_id(environment, s))
            .collect(),
        span: SourceSpan::default(),
    }
}

fn request(state: &Fixture, plan: PromotePlan, version: &str) -> DeliveryRequest {
    let environments = BTreeMap::from([
        (
            "staging".to_string(),
            EnvironmentPlan {
                protected: false,
                attributes: BTreeMap::new(),
            },
        ),
        (
            "prod".to_string(),
            EnvironmentPlan {
                protected: true,
                attributes: BTreeMap::new(),
            },
        ),
    ]);
    DeliveryRequest {
        pipeline: "api".into(),
        promote: plan,
        environments,
        run_id: format!("run-{version}"),
        store: state.store.clone(),
        artifact: ArtifactRef {
            name: "bin".into(),
            digest: digest_of(version),
            path: stored_artifact(state, version),
            version: version.into(),
        },
        bindings: Bindings::new(),
        approval: ApprovalInput::default(),
        lock_timeout: Duration::ZERO,
        actor: "ci".into(),
    }
}

/// A stand-in for the stored artifact: rollback refuses a target whose copy is gone.
/// Promotes `version` to the unprotected `staging` through `host`.
fn promote_staging(
    state: &Fixture,
    audit: &AuditLog,
    version: &str,
    host: &FakeHost,
) -> DeliveryOutcome {
    promote(
        &request(state, promote_plan("staging", false), version),
        host,
        audit,
    )
}

/// The digest of the stand-in artifact of `version` (its content is the version): the engine
/// re-hashes the copy before deploying or rolling back to it.
fn digest_of(version: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(version.as_bytes()))
    )
}

/// Files the stand-in artifact of `version` in the artifact store, under its digest.
fn stored_artifact(state: &Fixture, version: &str) -> String {
    let path = state.store.artifacts().local_path(&digest_of(version));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, version).unwrap();
    path.display().to_string()
}

fn events(state: &Fixture) -> Vec<String> {
    state
        .store
        .audit_records()
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

fn statuses(state: &Fixture, environment: &str) -> Vec<(String, ReleaseStatus)> {
    statuses_in(&state.store, environment)
}

fn statuses_in(store: &Store, environment: &str) -> Vec<(String, ReleaseStatus)> {
    Ledger::load(store, "api", environment)
        .unwrap()
        .releases()
        .iter()
        .map(|r| (r.version.clone(), r.status))
        .collect()
}

#[test]
fn a_good_release_becomes_stable_after_previous_is_recorded() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    let host = FakeHost::default();
    let outcome = promote_staging(&state, &audit, "v1", &host);
    assert_eq!(outcome, DeliveryOutcome::Succeeded);
    assert_eq!(
        statuses(&state, "staging"),
        vec![("v1".into(), ReleaseStatus::Stable)]
    );
    let events = events(&state);
    let recorded = events
        .iter()
        .position(|e| e == "previous_stable_recorded")
        .unwrap();
    let deploying = events.iter().position(|e| e == "deploy_started").unwrap();
    assert!(recorded < deploying, "{events:?}");
    assert_eq!(events.last().unwrap(), "deployment_promoted");
}

#[test]
fn the_last_node_succeeds_only_once_the_release_is_recorded_stable() {
    // What follows a promote (production's staging-first check) starts as soon as its last
    // node succeeds, so the ledger must already say `stable` by then.
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    let host = FakeHost {
        ledger: Some(state.store.clone()),
        ..FakeHost::default()
    };
    let outcome = promote_staging(&state, &audit, "v1", &host);
    assert_eq!(outcome, DeliveryOutcome::Succeeded);
    let calls = host.calls();
    assert!(
        calls.contains(&"staging.watch: succeeded (stable)".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"staging.smoke: succeeded (not yet stable)".to_string()),
        "{calls:?}"
    );
}

#[test]
fn failed_smoke_rolls_back_to_previous_and_verifies() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let host = FakeHost {
        failing: vec!["staging.smoke#1".into()],
        ..FakeHost::default()
    };
    let outcome = promote_staging(&state, &audit, "v2", &host);
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Failed {
                rolled_back: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_rolled_back_to_v1_and_verified(&state, &host);
}

/// v2 was rolled back to v1, smoke verified v1, and the ledger and audit log say so.
fn assert_rolled_back_to_v1_and_verified(state: &Fixture, host: &FakeHost) {
    let calls = host.calls();
    assert!(
        calls.contains(&"staging.rollback rollback v1".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"staging.smoke smoke v1".to_string()),
        "verification smoke: {calls:?}"
    );
    assert_eq!(
        statuses(state, "staging"),
        vec![
            ("v1".into(), ReleaseStatus::Stable),
            ("v2".into(), ReleaseStatus::RolledBack)
        ]
    );
    assert!(events(state).contains(&"recovery_verified".to_string()));
}

#[test]
fn failed_verification_is_a_rollback_failure() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let host = FakeHost {
        failing: vec!["staging.smoke".into()],
        ..FakeHost::default()
    };
    let outcome = promote_staging(&state, &audit, "v2", &host);
    assert!(
        matches!(outcome, DeliveryOutcome::RollbackFailed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        statuses(&state, "staging")[1],
        ("v2".into(), ReleaseStatus::Failed)
    );
}

#[test]
fn first_release_failure_skips_rollback_loudly() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    let host = FakeHost {
        failing: vec!["staging.deploy".into()],
        ..FakeHost::default()
    };
    let outcome = promote_staging(&state, &audit, "v1", &host);
    assert!(matches!(
        outcome,
        DeliveryOutcome::Failed {
            rolled_back: false,
            ..
        }
    ));
    assert!(events(&state).contains(&"rollback_skipped".to_string()));
    assert!(!host.calls().iter().any(|c| c.contains("rollback")));
}

#[test]
fn protected_environment_refuses_a_digest_staging_never_held() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    let host = FakeHost::default();
    let outcome = promote(
        &request(&state, promote_plan("prod", true), "v1"),
        &host,
        &audit,
    );
    let DeliveryOutcome::Failed { reason, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        reason.contains(&format!(
            "prod is protected and refuses {}",
            digest_of("v1")
        )),
        "{reason}"
    );
    assert!(reason.contains("(staging)"), "{reason}");
    assert!(host.calls().iter().all(|c| !c.contains("deploy v1")));
}

#[test]
fn approval_waits_then_counts_a_listed_approver_and_refuses_others() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let mut plan = promote_plan("prod", true);
    plan.approval = Some(ApprovalPlan {
        approvers: Some(vec!["alice".into()]),
        quorum: 1,
        allow_self: false,
    });
    let mut waiting = request(&state, plan.clone(), "v1");
    waiting.approval.approver = Some("mallory".into());
    let outcome = promote(&waiting, &FakeHost::default(), &audit);
    assert_eq!(
        outcome,
        DeliveryOutcome::AwaitingApproval { approvals: vec![] }
    );
    assert!(events(&state).contains(&"approval_refused".to_string()));
    assert!(
        statuses(&state, "prod").is_empty(),
        "a refusal deploys nothing"
    );

    let mut approved = request(&state, plan, "v1");
    approved.approval.approver = Some("alice".into());
    assert_eq!(
        promote(&approved, &FakeHost::default(), &audit),
        DeliveryOutcome::Succeeded
    );
}

#[test]
fn watch_breach_held_for_the_window_rolls_back_with_evidence() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let mut plan = promote_plan("staging", false);
    plan.watch = Some(WatchPlan {
        duration_ms: 5_000,
        probes: vec![ProbePlan {
            name: "error_rate".into(),
            ty: Type::Percent,
            command: Template::default(),
            every_ms: 100,
        }],
        rollback_when: vec![ConditionPlan {
            condition: Expression {
                source: "error_rate > 1%".into(),
                tree: ExprTree::Binary {
                    op: BinaryOp::Gt,
                    lhs: Box::new(ExprTree::Name(vec!["error_rate".into()])),
                    rhs: Box::new(ExprTree::Lit(Literal::Percent(1.0))),
                },
            },
            for_ms: Some(300),
        }],
        warn_when: vec![],
    });
    let host = FakeHost {
        probe_output: "5%".into(),
        ..FakeHost::default()
    };
    let started = std::time::Instant::now();
    let outcome = promote(&request(&state, plan, "v2"), &host, &audit);
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Failed {
                rolled_back: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fired at the window, not the watch's end"
    );
    let triggered = state
        .store
        .audit_records()
        .unwrap()
        .into_iter()
        .find(|r| r.event == "rollback_triggered")
        .unwrap();
    let evidence = triggered.field_str("evidence").unwrap();
    assert!(
        evidence.starts_with("error_rate 5% > 1% held 0."),
        "{evidence}"
    );
    assert!(evidence.contains(" samples"), "{evidence}");
}

#[test]
fn a_quorum_of_two_needs_two_distinct_approvers_across_resumes() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let mut plan = promote_plan("prod", true);
    plan.approval = Some(ApprovalPlan {
        approvers: None,
        quorum: 2,
        allow_self: false,
    });
    let attempt = |approver: &str| {
        let mut attempt = request(&state, plan.clone(), "v1");
        attempt.approval.approver = Some(approver.to_string());
        promote(&attempt, &FakeHost::default(), &audit)
    };
    let first = attempt("alice");
    assert_eq!(
        first,
        DeliveryOutcome::AwaitingApproval {
            approvals: vec!["alice".into()]
        }
    );
    assert_eq!(
        attempt("alice"),
        DeliveryOutcome::AwaitingApproval {
            approvals: vec!["alice".into()]
        },
        "the same person twice is one approval"
    );
    assert_eq!(attempt("bob"), DeliveryOutcome::Succeeded);
}

#[test]
fn a_rollback_target_whose_stored_copy_is_gone_fails_loudly() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let next = request(&state, promote_plan("staging", false), "v2");
    std::fs::remove_file(state.store.artifacts().local_path(&digest_of("v1"))).unwrap();
    let host = FakeHost {
        failing: vec!["staging.smoke".into()],
        ..FakeHost::default()
    };
    let outcome = promote(&next, &host, &audit);
    let DeliveryOutcome::RollbackFailed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("the stored artifact of v1"), "{reason}");
    assert!(
        !host
            .calls()
            .iter()
            .any(|c| c.starts_with("staging.rollback "))
    );
}

#[test]
fn a_stored_artifact_changed_after_the_build_is_never_deployed() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    let request = request(&state, promote_plan("staging", false), "v1");
    std::fs::write(&request.artifact.path, "tampered").unwrap();
    let host = FakeHost::default();
    let outcome = promote(&request, &host, &audit);
    let DeliveryOutcome::Failed {
        rolled_back: false,
        reason,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(
        reason.contains(&format!("expected {}", digest_of("v1"))),
        "{reason}"
    );
    let calls = host.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("staging.deploy ")),
        "{calls:?}"
    );
    let events = events(&state);
    assert!(events.contains(&"artifact_verification_failed".to_string()));
    assert!(
        !events.contains(&"deploy_started".to_string()),
        "{events:?}"
    );
}

#[test]
fn an_interrupt_during_the_deploy_still_rolls_back_and_verifies() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let host = FakeHost {
        interrupt_at: Some("staging.deploy".into()),
        ..FakeHost::default()
    };
    let outcome = promote_staging(&state, &audit, "v2", &host);
    assert_eq!(outcome, DeliveryOutcome::Interrupted);
    assert_eq!(
        host.entry_points(),
        vec![
            "forward staging.deploy",
            "recovery staging.rollback",
            "recovery staging.smoke"
        ]
    );
    assert_rolled_back_to_v1_and_verified(&state, &host);
}

/// A staging promote of `version` watched for 5 s by a healthy probe (`0%`).
fn watched_request(state: &Fixture, version: &str) -> DeliveryRequest {
    let mut plan = promote_plan("staging", false);
    plan.watch = Some(WatchPlan {
        duration_ms: 5_000,
        probes: vec![ProbePlan {
            name: "error_rate".into(),
            ty: Type::Percent,
            command: Template::default(),
            every_ms: 50,
        }],
        rollback_when: vec![],
        warn_when: vec![],
    });
    request(state, plan, version)
}

#[test]
fn a_lock_lost_mid_watch_stops_and_rolls_back_under_the_lock_taken_again() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let mem = state.mem.clone();
    let host = FakeHost {
        probe_output: "0%".into(),
        on_probe: Some(Box::new(move || mem.break_lock("api", "staging"))),
        ..FakeHost::default()
    };
    let started = std::time::Instant::now();
    let outcome = promote(&watched_request(&state, "v2"), &host, &audit);
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Failed {
                rolled_back: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped at the loss, not the watch's end"
    );
    assert_rolled_back_to_v1_and_verified(&state, &host);
    let lost = state
        .store
        .audit_records()
        .unwrap()
        .into_iter()
        .find(|r| r.event == "lock_lost")
        .unwrap();
    assert_eq!(lost.fields["rolling_back"], true, "{lost:?}");
}

#[test]
fn a_lock_taken_over_mid_watch_never_records_stable_nor_rolls_back() {
    let state = Fixture::new();
    let audit = state.store.audit().unwrap();
    promote_staging(&state, &audit, "v1", &FakeHost::default());
    let mem = state.mem.clone();
    let store = state.store.clone();
    let usurper = Mutex::new(None);
    let host = FakeHost {
        probe_output: "0%".into(),
        on_probe: Some(Box::new(move || {
            let mut held = usurper.lock().unwrap();
            if held.is_none() {
                mem.break_lock("api", "staging");
                let other =
                    crate::store::LockRequest::new("api", "staging", "run-x", Duration::ZERO);
                *held = Some(store.lock(&other).unwrap());
            }
        })),
        ..FakeHost::default()
    };
    let outcome = promote(&watched_request(&state, "v2"), &host, &audit);
    let DeliveryOutcome::RollbackFailed { reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("lost the lock of staging"), "{reason}");
    assert!(reason.contains("locked by run run-x"), "{reason}");
    let calls = host.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("staging.rollback")),
        "never deploys under another run's lock: {calls:?}"
    );
    assert_eq!(
        statuses(&state, "staging"),
        vec![
            ("v1".into(), ReleaseStatus::Stable),
            ("v2".into(), ReleaseStatus::Deploying)
        ],
        "the next holder finds v2 unfinished and marks it failed; it never reads stable"
    );
    assert!(events(&state).contains(&"lock_lost".to_string()));
}
