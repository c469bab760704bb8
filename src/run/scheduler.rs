//! The scheduler: starts ready nodes (jobs up to `--jobs` at once, gates inline, promote groups
//! through the delivery executor), skips what a failure blocks, records every transition in the
//! run state, and ends when nothing more can run.

use crate::audit::{AuditEvent, AuditLog};
use crate::compile::plan::{Node, NodeKind, Plan};
use crate::run::artifact::Provenance;
use crate::run::console::Console;
use crate::run::delivery::{
    DeliveryExecutor, DeliveryReport, PromoteOutcome, PromoteReporter, PromoteRequest,
};
use crate::run::error::PromoteSetupError;
use crate::run::eval::{self, Bindings, JobFacts};
use crate::run::gate::{evaluate_gate, values_read};
use crate::run::graph::Graph;
use crate::run::interrupt::{Interrupt, InterruptLevel};
use crate::run::job::{JobContext, JobResult, reads_bindings, run_job};
use crate::run::process::StepRunner;
use crate::run::secrets::SecretValues;
use crate::run::state::{NodeRecord, NodeStatus, RunDir, RunState, RunStatus, now_rfc3339};
use crate::store::Store;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{Id as TaskId, JoinSet};

/// What a finished task hands back.
enum Finished {
    Job(String, JobResult),
    Promote(String, PromoteOutcome),
}

/// What the scheduler needs besides the plan and state; built by `start`.
pub(crate) struct SchedulerSetup {
    pub plan: Arc<Plan>,
    pub state: RunState,
    pub run_dir: RunDir,
    pub runner: Arc<StepRunner>,
    pub secrets: Arc<SecretValues>,
    pub bindings: Bindings,
    pub pipeline_env: BTreeMap<String, String>,
    /// Shared state and the artifact store.
    pub store: Store,
    pub pipeline_dir: std::path::PathBuf,
    pub jobs: usize,
    pub approvals: Vec<String>,
    pub approver: Option<String>,
    pub lock_timeout: Duration,
    pub console: Arc<Console>,
    pub interrupt: Interrupt,
    pub delivery: Option<Arc<dyn DeliveryExecutor>>,
    pub audit: Option<Arc<AuditLog>>,
}

pub(crate) struct Scheduler {
    setup: SchedulerSetup,
    state: Arc<Mutex<RunState>>,
    saver: StateSaver,
    tasks: JoinSet<Finished>,
    task_nodes: HashMap<TaskId, (String, Instant)>,
    running_jobs: usize,
    started_groups: BTreeSet<String>,
    group_of: HashMap<String, String>,
    report_sender: mpsc::UnboundedSender<DeliveryReport>,
    reports: mpsc::UnboundedReceiver<DeliveryReport>,
    /// The worst status any node or promote reached so far.
    worst: RunStatus,
    interrupted: bool,
    started_at: HashMap<String, Instant>,
    graph: Graph,
    /// The scheduler's copy of each node's status (the run state holds the same).
    statuses: Vec<NodeStatus>,
    /// Predecessors not yet succeeded, per node.
    unmet: Vec<usize>,
    ready_jobs: BTreeSet<usize>,
    /// Gates and promote groups: they take no job slot.
    ready_other: BTreeSet<usize>,
    /// Nodes to skip because a predecessor failed or was skipped, with the reason.
    to_skip: VecDeque<(usize, String)>,
    /// Why the run can no longer record what it does (state not saved, audit not appended):
    /// it starts nothing more and fails.
    io_failure: Option<String>,
}

impl Scheduler {
    pub(crate) fn new(mut setup: SchedulerSetup) -> Scheduler {
        let state = Arc::new(Mutex::new(std::mem::replace(
            &mut setup.state,
            RunState::new(&setup.plan, "", "", ""),
        )));
        let saver = StateSaver::start(Arc::clone(&state), setup.run_dir.clone());
        let group_of = setup
            .plan
            .promotes
            .iter()
            .flat_map(|(env, promote)| promote.nodes.iter().map(move |n| (n.clone(), env.clone())))
            .collect();
        let (report_sender, reports) = mpsc::unbounded_channel();
        let graph = Graph::new(&setup.plan);
        let statuses: Vec<NodeStatus> = {
            let locked = match state.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            graph.ids.iter().map(|id| locked.status_of(id)).collect()
        };
        let unmet = graph
            .needs
            .iter()
            .map(|needs| {
                needs
                    .iter()
                    .filter(|&&j| statuses[j] != NodeStatus::Succeeded)
                    .count()
            })
            .collect();
        Scheduler {
            setup,
            state,
            saver,
            tasks: JoinSet::new(),
            task_nodes: HashMap::new(),
            running_jobs: 0,
            started_groups: BTreeSet::new(),
            group_of,
            report_sender,
            reports,
            worst: RunStatus::Succeeded,
            interrupted: false,
            started_at: HashMap::new(),
            graph,
            statuses,
            unmet,
            ready_jobs: BTreeSet::new(),
            ready_other: BTreeSet::new(),
            to_skip: VecDeque::new(),
            io_failure: None,
        }
    }

    fn state(&self) -> MutexGuard<'_, RunState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn status(&self, node: &str) -> NodeStatus {
        self.graph
            .of(node)
            .map_or(NodeStatus::Pending, |i| self.statuses[i])
    }

    /// Before the first start: skip what is already blocked, queue what is ready.
    fn seed(&mut self) {
        for i in 0..self.graph.len() {
            if self.statuses[i] != NodeStatus::Pending {
                continue;
            }
            if let Some(reason) = self.blocker(i) {
                self.finish_node(
                    &self.graph.ids[i].clone(),
                    NodeStatus::Skipped,
                    Some(reason),
                    |_| {},
                );
            } else if self.unmet[i] == 0 {
                self.enqueue(i);
            }
        }
    }

    fn blocker(&self, i: usize) -> Option<String> {
        self.graph.needs[i].iter().find_map(|&j| {
            let need = &self.graph.ids[j];
            match self.statuses[j] {
                NodeStatus::Failed => Some(format!("skipped: `{need}` failed")),
                NodeStatus::Skipped => Some(format!("skipped: `{need}` was skipped")),
                _ => None,
            }
        })
    }

    fn enqueue(&mut self, i: usize) {
        let is_job = self.setup.plan.nodes[i].kind == NodeKind::Job;
        if is_job && !self.group_of.contains_key(&self.graph.ids[i]) {
            self.ready_jobs.insert(i);
        } else {
            self.ready_other.insert(i);
        }
    }

    /// Reacts to node `i` reaching `status`: dependents become ready or are skipped.
    fn propagate(&mut self, i: usize, status: NodeStatus) {
        let dependents = self.graph.dependents[i].clone();
        match status {
            NodeStatus::Succeeded => {
                for d in dependents {
                    self.unmet[d] = self.unmet[d].saturating_sub(1);
                    let grouped = self.group_of.contains_key(&self.graph.ids[d]);
                    if self.statuses[d] == NodeStatus::Pending && (self.unmet[d] == 0 || grouped) {
                        self.enqueue(d);
                    }
                }
            }
            NodeStatus::Failed | NodeStatus::Skipped => {
                let need = &self.graph.ids[i];
                let word = if status == NodeStatus::Failed {
                    "failed"
                } else {
                    "was skipped"
                };
                let reason = format!("skipped: `{need}` {word}");
                for d in dependents {
                    self.to_skip.push_back((d, reason.clone()));
                }
            }
            _ => {}
        }
    }

    /// Runs until nothing more can run; returns the final state.
    pub(crate) async fn run(mut self) -> RunState {
        let total = self
            .state()
            .nodes
            .values()
            .filter(|r| r.status != NodeStatus::Excluded)
            .count();
        self.setup.console.set_total(total);
        let interrupt = self.setup.interrupt.clone();
        self.seed();
        loop {
            if !self.interrupted {
                self.advance();
            }
            if self.tasks.is_empty() {
                break;
            }
            tokio::select! {
                Some(joined) = self.tasks.join_next_with_id() => self.on_joined(joined),
                Some(report) = self.reports.recv() => self.on_report(report),
                () = interrupt.reached(InterruptLevel::Graceful), if !self.interrupted => {
                    self.interrupted = true;
                    self.setup.console.notice(
                        "interrupted",
                        None,
                        "interrupted: stopping running processes (interrupt again to kill at once)",
                        json!({}),
                    );
                }
            }
        }
        while let Ok(report) = self.reports.try_recv() {
            self.on_report(report);
        }
        self.finish()
    }

    /// Skips blocked nodes and starts ready ones until nothing changes (gates decide inline
    /// and can make more nodes ready at once).
    fn advance(&mut self) {
        if let Some(why) = self.saver.failure() {
            self.fail_run(format!("the run state could not be saved: {why}"));
        }
        loop {
            let mut changed = false;
            while let Some((i, reason)) = self.to_skip.pop_front() {
                let id = self.graph.ids[i].clone();
                if self.statuses[i] == NodeStatus::Pending && !self.in_started_group(&id) {
                    self.finish_node(&id, NodeStatus::Skipped, Some(reason), |_| {});
                    changed = true;
                }
            }
            if self.interrupted || self.io_failure.is_some() {
                return;
            }
            while let Some(i) = self.ready_other.pop_first() {
                changed |= self.try_start(i);
            }
            while self.running_jobs < self.setup.jobs {
                let Some(i) = self.ready_jobs.pop_first() else {
                    break;
                };
                changed |= self.try_start(i);
            }
            if !changed && self.to_skip.is_empty() {
                return;
            }
        }
    }

    fn in_started_group(&self, node: &str) -> bool {
        self.group_of
            .get(node)
            .is_some_and(|env| self.started_groups.contains(env))
    }

    fn needs_met(&self, i: usize) -> bool {
        self.graph.needs[i]
            .iter()
            .all(|&j| self.statuses[j] == NodeStatus::Succeeded)
    }

    /// Starts node `i` if it is ready; true when its state changed. Nodes are found by their
    /// index in the plan (the graph's order), never by searching ids.
    fn try_start(&mut self, i: usize) -> bool {
        let plan = Arc::clone(&self.setup.plan);
        let node = &plan.nodes[i];
        let id = node.id.as_str();
        if let Some(env) = self.group_of.get(id).cloned() {
            return self.try_start_group(&env);
        }
        if !self.needs_met(i) {
            return false;
        }
        if node.kind == NodeKind::Job && self.running_jobs >= self.setup.jobs {
            return false;
        }
        if let Some(when) = &node.when {
            match eval::eval_condition(when, &self.setup.bindings) {
                Ok(true) => {}
                Ok(false) => {
                    let reason = format!(
                        "skipped: when `{}` is false{}",
                        when.source,
                        values_read(when, &self.setup.bindings)
                    );
                    self.finish_node(id, NodeStatus::Skipped, Some(reason), |_| {});
                    return true;
                }
                Err(e) => {
                    let reason = format!("`when` could not be evaluated: {e}");
                    self.fail_node(id, reason);
                    return true;
                }
            }
        }
        match node.kind {
            NodeKind::Job => self.start_job(i),
            NodeKind::Gate => self.decide_gate(node),
            other => {
                let reason = format!("{other:?} node `{id}` belongs to no promote in the plan");
                self.fail_node(id, reason);
            }
        }
        true
    }

    fn start_job(&mut self, i: usize) {
        let plan = Arc::clone(&self.setup.plan);
        let node = &plan.nodes[i];
        self.mark_running(&node.id);
        self.running_jobs += 1;
        let setup = &self.setup;
        let context = JobContext {
            plan: Arc::clone(&setup.plan),
            runner: Arc::clone(&setup.runner),
            secrets: Arc::clone(&setup.secrets),
            store: Arc::clone(setup.store.artifacts()),
            pipeline_dir: setup.pipeline_dir.clone(),
            pipeline_env: setup.pipeline_env.clone(),
            bindings: if reads_bindings(node) {
                setup.bindings.clone()
            } else {
                Bindings::new()
            },
            provenance: Provenance {
                git_sha: string_binding(&setup.bindings, "git.sha"),
                version: string_binding(&setup.bindings, "pipeline.version"),
                run_id: self.state().run_id.clone(),
            },
        };
        let id = node.id.clone();
        let task_id = id.clone();
        let handle = self
            .tasks
            .spawn(async move { Finished::Job(id, run_job(context, i).await) });
        self.task_nodes
            .insert(handle.id(), (task_id, Instant::now()));
    }

    fn mark_running(&mut self, id: &str) {
        if let Some(i) = self.graph.of(id) {
            self.statuses[i] = NodeStatus::Running;
        }
        self.started_at.insert(id.to_string(), Instant::now());
        {
            let mut state = self.state();
            if let Some(record) = state.nodes.get_mut(id) {
                record.status = NodeStatus::Running;
                record.started_at = Some(now_rfc3339());
                record.message = None;
            }
        }
        self.saver.dirty();
        self.setup.console.node_started(id);
    }

    fn on_joined(&mut self, joined: Result<(TaskId, Finished), tokio::task::JoinError>) {
        match joined {
            Ok((task, Finished::Job(id, result))) => {
                self.task_nodes.remove(&task);
                self.running_jobs = self.running_jobs.saturating_sub(1);
                self.finish_job(&id, result);
            }
            Ok((task, Finished::Promote(env, outcome))) => {
                self.task_nodes.remove(&task);
                self.finish_promote(&env, outcome);
            }
            Err(error) => {
                // A panic in a task is a bug of ours; the node fails instead of the run hanging.
                let Some((id, _)) = self.task_nodes.remove(&error.id()) else {
                    return;
                };
                if let Some(env) = self.group_of.get(&id).cloned() {
                    self.finish_promote(&env, PromoteOutcome::Failed { rolled_back: false });
                } else {
                    self.running_jobs = self.running_jobs.saturating_sub(1);
                    self.fail_node(&id, format!("internal error while running `{id}`: {error}"));
                }
            }
        }
    }

    fn finish_job(&mut self, id: &str, mut result: JobResult) {
        for replaced in &result.replaced {
            let mut fields = replaced.mismatch.audit_fields();
            fields["node"] = json!(id);
            fields["action"] = json!("quarantined and replaced by the fresh build");
            fields["quarantine"] = json!(replaced.quarantine.display().to_string());
            let summary = format!(
                "{}; quarantined at {} and replaced by this build's verified copy",
                replaced.mismatch,
                replaced.quarantine.display()
            );
            fields["summary"] = json!(summary);
            self.audit(AuditEvent::ArtifactVerificationFailed, fields);
            let warning = format!("warning: {summary}");
            self.setup
                .console
                .notice("warning", Some(id), &warning, json!({}));
        }
        let artifacts = result.artifacts.clone();
        for artifact in &artifacts {
            let recorded = self.audit(
                AuditEvent::ArtifactStored,
                json!({"artifact": artifact.name, "digest": artifact.digest, "size": artifact.size,
                       "node": id, "version": artifact.version, "git_sha": artifact.git_sha}),
            );
            if !recorded && result.succeeded {
                result.succeeded = false;
                result.message = Some(format!(
                    "job `{id}` failed: the audit log could not record artifact `{}`",
                    artifact.name
                ));
            }
        }
        self.setup.bindings.set_job_result(
            id,
            &JobFacts {
                succeeded: result.succeeded,
                duration_ms: result.duration_ms,
                exit_code: result.exit_code,
                outputs: result.outputs.clone(),
                redacted_outputs: result.redacted_outputs.clone(),
            },
        );
        let status = if result.succeeded {
            NodeStatus::Succeeded
        } else if result.interrupted {
            NodeStatus::Interrupted
        } else {
            self.worst = self.worst.max(RunStatus::Failed);
            NodeStatus::Failed
        };
        self.finish_node(id, status, result.message.clone(), |record| {
            record.duration_ms = Some(result.duration_ms);
            record.exit_code = result.exit_code;
            record.attempts = result.attempts;
            record.outputs = result.outputs;
            record.redacted_outputs = result.redacted_outputs;
            record.artifacts = result
                .artifacts
                .iter()
                .map(|a| (a.name.clone(), a.digest.clone()))
                .collect();
        });
    }

    fn decide_gate(&mut self, node: &Node) {
        let id = node.id.clone();
        self.mark_running(&id);
        let Some(gate) = &node.gate else {
            self.finish_node(&id, NodeStatus::Succeeded, None, |_| {});
            return;
        };
        let verdict = evaluate_gate(gate, &self.setup.bindings);
        let redactor = self.setup.runner.redactor.clone();
        for warning in &verdict.warnings {
            let human = redactor.text(&format!("warning: gate `{id}`: {warning}"));
            self.setup
                .console
                .notice("gate_warning", Some(&id), &human, json!({"gate": id}));
        }
        if verdict.passed() {
            if self.audit(
                AuditEvent::GatePassed,
                json!({"gate": id, "warnings": verdict.warnings}),
            ) {
                self.finish_node(&id, NodeStatus::Succeeded, None, |_| {});
            } else {
                let message = format!("gate `{id}` passed but could not be audited");
                self.fail_node(&id, message);
            }
            return;
        }
        let failures = redactor.text(&verdict.failures.join("; "));
        let granted = self
            .state()
            .overrides
            .iter()
            .find(|o| o.gate == id)
            .cloned();
        match granted {
            Some(granted) => {
                if !self.audit(
                    AuditEvent::GateOverridden,
                    json!({"gate": id, "reason": granted.reason, "approver": granted.approver,
                           "failures": verdict.failures}),
                ) {
                    let message = format!(
                        "gate `{id}` failed: {failures} (the override could not be audited)"
                    );
                    self.fail_node(&id, message);
                    return;
                }
                if let Some(record) = self.state().overrides.iter_mut().find(|o| o.gate == id) {
                    record.used = true;
                }
                let message = format!("overridden ({failures}); reason: {}", granted.reason);
                self.finish_node(
                    &id,
                    NodeStatus::Succeeded,
                    Some(redactor.text(&message)),
                    |_| {},
                );
            }
            None => {
                self.audit(
                    AuditEvent::GateFailed,
                    json!({"gate": id, "failures": verdict.failures}),
                );
                self.worst = self.worst.max(RunStatus::Failed);
                let message = format!("gate `{id}` failed: {failures}");
                self.finish_node(&id, NodeStatus::Failed, Some(message), |_| {});
            }
        }
    }

    fn fail_node(&mut self, id: &str, message: String) {
        self.worst = self.worst.max(RunStatus::Failed);
        self.finish_node(id, NodeStatus::Failed, Some(message), |_| {});
    }

    /// Records a final (or awaiting) state, tells the console, and saves.
    fn finish_node(
        &mut self,
        id: &str,
        status: NodeStatus,
        message: Option<String>,
        fill: impl FnOnce(&mut NodeRecord),
    ) {
        let message = message.map(|m| self.setup.runner.redactor.text(&m));
        let elapsed = self
            .started_at
            .remove(id)
            .map(|t| t.elapsed().as_millis() as u64);
        let duration = {
            let mut state = self.state();
            let Some(record) = state.nodes.get_mut(id) else {
                return;
            };
            record.status = status;
            record.message = message.clone();
            if record.duration_ms.is_none() {
                record.duration_ms = elapsed;
            }
            fill(record);
            record.duration_ms.unwrap_or(0)
        };
        self.saver.dirty();
        self.setup
            .console
            .node_finished(id, status.word(), duration, message.as_deref());
        if let Some(i) = self.graph.of(id) {
            self.statuses[i] = status;
            self.propagate(i, status);
        }
    }

    fn try_start_group(&mut self, env: &str) -> bool {
        if self.started_groups.contains(env) {
            return false;
        }
        let plan = Arc::clone(&self.setup.plan);
        let Some(promote) = plan.promotes.get(env) else {
            return false;
        };
        let members: BTreeSet<&String> = promote.nodes.iter().collect();
        let external_needs_met = promote
            .nodes
            .iter()
            .filter_map(|id| self.graph.of(id))
            .map(|i| &plan.nodes[i])
            .flat_map(|node| node.needs.iter())
            .filter(|need| !members.contains(need))
            .all(|need| self.status(need) == NodeStatus::Succeeded);
        let first_pending = promote
            .nodes
            .iter()
            .find(|id| self.status(id) == NodeStatus::Pending);
        let Some(first) = first_pending.cloned() else {
            return false;
        };
        if !external_needs_met {
            return false;
        }
        self.started_groups.insert(env.to_string());
        if let Some(reason) = self.promote_skip_reason(env) {
            self.end_group(env, NodeStatus::Skipped, Some(reason));
            return true;
        }
        let Some(executor) = self.setup.delivery.clone() else {
            let reason =
                format!("no delivery executor: this build of `pipe` cannot run `promote {env}`");
            self.fail_node(&first, reason);
            self.end_group(
                env,
                NodeStatus::Skipped,
                Some(format!("skipped: promote `{env}` failed")),
            );
            return true;
        };
        match self.promote_request(env) {
            Ok(request) => {
                let env_name = env.to_string();
                let handle = self.tasks.spawn(async move {
                    let outcome = executor.run_promote(request).await;
                    Finished::Promote(env_name, outcome)
                });
                self.task_nodes.insert(handle.id(), (first, Instant::now()));
            }
            Err(reason) => {
                self.fail_node(&first, reason.to_string());
                self.end_group(
                    env,
                    NodeStatus::Skipped,
                    Some(format!("skipped: promote `{env}` failed")),
                );
            }
        }
        true
    }

    /// `when` of the promote (or of its first node) decides whether it runs at all.
    fn promote_skip_reason(&self, env: &str) -> Option<String> {
        let plan = &self.setup.plan;
        let promote = plan.promotes.get(env)?;
        let first_when = promote
            .nodes
            .first()
            .and_then(|id| self.graph.of(id))
            .map(|i| &plan.nodes[i])
            .and_then(|n| n.when.as_ref());
        let when = promote.when.as_ref().or(first_when)?;
        match eval::eval_condition(when, &self.setup.bindings) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "skipped: promote `{env}`: when `{}` is false{}",
                when.source,
                values_read(when, &self.setup.bindings)
            )),
            Err(e) => Some(format!(
                "skipped: promote `{env}`: `when` could not be evaluated: {e}"
            )),
        }
    }

    /// Gives every unfinished node of the group `status`.
    fn end_group(&mut self, env: &str, status: NodeStatus, message: Option<String>) {
        let plan = Arc::clone(&self.setup.plan);
        let Some(promote) = plan.promotes.get(env) else {
            return;
        };
        for id in &promote.nodes {
            if !self.status(id).is_terminal() {
                self.finish_node(id, status, message.clone(), |_| {});
            }
        }
    }

    fn promote_request(&self, env: &str) -> Result<PromoteRequest, PromoteSetupError> {
        let setup = &self.setup;
        let promote = setup
            .plan
            .promotes
            .get(env)
            .ok_or_else(|| PromoteSetupError::NoPromote(env.to_string()))?;
        let secrets = setup.secrets.select(&promote.secrets)?;
        let state = self.state();
        let artifact_digests = state
            .nodes
            .values()
            .filter(|r| r.status == NodeStatus::Succeeded)
            .flat_map(|r| r.artifacts.clone())
            .collect();
        Ok(PromoteRequest {
            plan: Arc::clone(&setup.plan),
            environment: env.to_string(),
            run_id: state.run_id.clone(),
            store: setup.store.clone(),
            pipeline_dir: setup.pipeline_dir.clone(),
            steps: Arc::clone(&setup.runner),
            secrets,
            pipeline_env: setup.pipeline_env.clone(),
            artifact_digests,
            bindings: setup.bindings.clone(),
            approvals: setup.approvals.clone(),
            approver: setup.approver.clone(),
            initiator: state.initiator.clone(),
            lock_timeout: setup.lock_timeout,
            interrupt: setup.interrupt.clone(),
            reporter: PromoteReporter::with_sender(env, self.report_sender.clone()),
            stored: state.delivery.get(env).cloned(),
        })
    }

    fn on_report(&mut self, report: DeliveryReport) {
        match report {
            DeliveryReport::Node {
                node,
                status,
                message,
            } => match status {
                NodeStatus::Running => self.mark_running(&node),
                NodeStatus::Pending => {}
                other => self.finish_node(&node, other, message, |_| {}),
            },
            DeliveryReport::Record { environment, value } => {
                let text = self.setup.runner.redactor.text(&value.to_string());
                let value = serde_json::from_str(&text).unwrap_or(value);
                self.state().delivery.insert(environment, value);
                self.saver.dirty();
            }
        }
    }

    fn finish_promote(&mut self, env: &str, outcome: PromoteOutcome) {
        while let Ok(report) = self.reports.try_recv() {
            self.on_report(report);
        }
        self.worst = self.worst.max(outcome.run_status());
        let plan = Arc::clone(&self.setup.plan);
        let Some(promote) = plan.promotes.get(env) else {
            return;
        };
        let failed = format!("promote `{env}` failed");
        for id in &promote.nodes {
            let (status, message) = match (outcome, self.status(id)) {
                (_, done) if done.is_terminal() => continue,
                (PromoteOutcome::Succeeded, _) => (NodeStatus::Succeeded, None),
                (
                    PromoteOutcome::Failed { .. } | PromoteOutcome::RollbackFailed,
                    NodeStatus::Running,
                ) => (NodeStatus::Failed, Some(failed.clone())),
                (PromoteOutcome::Failed { .. } | PromoteOutcome::RollbackFailed, _) => {
                    (NodeStatus::Skipped, Some(format!("skipped: {failed}")))
                }
                (PromoteOutcome::AwaitingApproval, NodeStatus::Running) => {
                    (NodeStatus::AwaitingApproval, None)
                }
                (PromoteOutcome::Interrupted, NodeStatus::Running) => {
                    (NodeStatus::Interrupted, None)
                }
                // Left pending: a resume runs them.
                _ => continue,
            };
            self.finish_node(id, status, message, |_| {});
        }
    }

    /// Appends to the audit log; false (and the run fails) when it could not be written, so
    /// the caller does not proceed with what the record would have covered.
    fn audit(&mut self, event: AuditEvent, fields: serde_json::Value) -> bool {
        let Some(audit) = &self.setup.audit else {
            return true;
        };
        let (run, actor) = {
            let state = self.state();
            (state.run_id.clone(), state.initiator.clone())
        };
        match audit.append(&run, event, &actor, fields) {
            Ok(()) => true,
            Err(e) => {
                self.fail_run(format!("the audit log could not be written ({event}): {e}"));
                false
            }
        }
    }

    /// Records the first reason the run cannot go on recording itself; nothing new starts.
    fn fail_run(&mut self, reason: String) {
        self.worst = self.worst.max(RunStatus::Failed);
        if self.io_failure.is_some() {
            return;
        }
        let human = format!("error: {reason}; starting nothing more");
        self.setup
            .console
            .notice("error", None, &human, json!({"reason": reason}));
        self.io_failure = Some(reason);
    }

    fn finish(mut self) -> RunState {
        // The background saver stops first: the final save below covers every transition it
        // has not written yet, so the state is written once at the end, not twice.
        self.saver.stop();
        if let Some(why) = self.saver.failure() {
            self.fail_run(format!("the run state could not be saved: {why}"));
        }
        let status = if self.interrupted || self.setup.interrupt.is_set() {
            self.worst.max(RunStatus::Interrupted)
        } else {
            self.worst
        };
        let status = self.record_finish(status);
        if let Err(e) = self.saver.finish() {
            self.fail_run(format!("the run state could not be saved: {e}"));
            self.state().status = failed_if_succeeded(status);
        }
        self.state().clone()
    }

    /// Sets the final status (failed when the run could not record itself) and audits it.
    fn record_finish(&mut self, status: RunStatus) -> RunStatus {
        let mut status = status;
        if self.io_failure.is_some() {
            status = failed_if_succeeded(status);
        }
        {
            let mut state = self.state();
            state.status = status;
            state.finished_at = Some(now_rfc3339());
        }
        let fields = json!({"status": status, "exit_code": status.exit_code()});
        if !self.audit(AuditEvent::RunFinished, fields) {
            status = failed_if_succeeded(status);
            self.state().status = status;
        }
        status
    }
}

/// A run that could not record itself has not succeeded, whatever its nodes did.
fn failed_if_succeeded(status: RunStatus) -> RunStatus {
    match status {
        RunStatus::Succeeded => RunStatus::Failed,
        other => other,
    }
}

fn string_binding(bindings: &Bindings, name: &str) -> String {
    bindings.get(name).map(eval::display).unwrap_or_default()
}

/// Saves the run state after transitions on its own thread. Transitions that happen while a
/// save is being written, or within 50 ms of the last one, are coalesced into the next save, so
/// a burst of a thousand quick jobs costs a few dozen writes, and a crash loses at most the
/// transitions of the last few dozen milliseconds (those nodes simply run again on resume).
struct StateSaver {
    signal: Arc<(Mutex<SaverSignal>, Condvar)>,
    /// The first save that failed on the thread.
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<Mutex<RunState>>,
    run_dir: RunDir,
}

/// What the scheduler tells the saver thread. A transition wakes the thread only when it is
/// idle: while it waits out its interval, transitions just mark the state dirty (a wake-up per
/// transition would cost two context switches per job on a busy machine).
#[derive(Default)]
struct SaverSignal {
    dirty: bool,
    idle: bool,
    stopping: bool,
}

fn lock_failure(failure: &Mutex<Option<String>>) -> MutexGuard<'_, Option<String>> {
    match failure.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn lock_signal(signal: &Mutex<SaverSignal>) -> MutexGuard<'_, SaverSignal> {
    match signal.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl StateSaver {
    fn start(state: Arc<Mutex<RunState>>, run_dir: RunDir) -> StateSaver {
        let signal = Arc::new((Mutex::new(SaverSignal::default()), Condvar::new()));
        let thread_signal = Arc::clone(&signal);
        let thread_state = Arc::clone(&state);
        let thread_dir = run_dir.clone();
        let failure = Arc::new(Mutex::new(None));
        let thread_failure = Arc::clone(&failure);
        let thread = std::thread::spawn(move || {
            let (signal, wake) = &*thread_signal;
            let mut last_save: Option<Instant> = None;
            // Bursts of transitions share one write; a lone transition is written at once.
            while wait_for_dirty(signal, wake) {
                let not_before = last_save.map(|t| t + MIN_SAVE_INTERVAL);
                if !wait_out_interval(signal, wake, not_before) {
                    // `finish` writes the final state itself: a save here would be stale.
                    return;
                }
                lock_signal(signal).dirty = false;
                last_save = Some(Instant::now());
                if let Err(e) = save(&thread_state, &thread_dir) {
                    let mut failure = lock_failure(&thread_failure);
                    failure.get_or_insert(e.to_string());
                }
            }
        });
        StateSaver {
            signal,
            failure,
            thread: Some(thread),
            state,
            run_dir,
        }
    }

    /// Why a save failed, if one did.
    fn failure(&self) -> Option<String> {
        lock_failure(&self.failure).clone()
    }

    fn dirty(&self) {
        let (signal, wake) = &*self.signal;
        let mut signal = lock_signal(signal);
        if !signal.dirty {
            signal.dirty = true;
            if signal.idle {
                wake.notify_one();
            }
        }
    }

    /// Stops the thread at once, even mid-interval; only a save already being written
    /// completes. Transitions it has not written are left to [`StateSaver::finish`].
    fn stop(&mut self) {
        let (signal, wake) = &*self.signal;
        lock_signal(signal).stopping = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the thread and writes the final state.
    fn finish(&mut self) -> std::io::Result<()> {
        self.stop();
        save(&self.state, &self.run_dir)
    }
}

/// The shortest time between two state writes while transitions keep coming.
const MIN_SAVE_INTERVAL: Duration = Duration::from_millis(50);

/// Sleeps until a transition is pending; false when the saver is stopping.
fn wait_for_dirty(signal: &Mutex<SaverSignal>, wake: &Condvar) -> bool {
    let mut guard = lock_signal(signal);
    guard.idle = true;
    while !guard.dirty && !guard.stopping {
        guard = match wake.wait(guard) {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
    }
    guard.idle = false;
    !guard.stopping
}

/// Waits until `not_before`, woken early only by a stop (then false), so the run's exit is
/// not delayed by up to the interval.
fn wait_out_interval(
    signal: &Mutex<SaverSignal>,
    wake: &Condvar,
    not_before: Option<Instant>,
) -> bool {
    let mut guard = lock_signal(signal);
    while let Some(left) = not_before.and_then(|t| t.checked_duration_since(Instant::now())) {
        if guard.stopping {
            break;
        }
        guard = match wake.wait_timeout(guard, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    !guard.stopping
}

/// Serialises under the lock (cheaper than cloning the state), writes outside it.
fn save(state: &Mutex<RunState>, run_dir: &RunDir) -> std::io::Result<()> {
    let json = {
        let guard = match state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        run_dir.state_json(&guard)?
    };
    run_dir
        .save_state_json(&json)
        .map_err(|e| std::io::Error::other(e.to_string()))
}
