//! Promotes and drills in the plan: the per-environment node chain
//! (`ENV.approval → ENV.migrate → ENV.deploy → ENV.smoke → ENV.watch`), its edges, and the
//! delivery instructions (rollout, watch, rollback) that are not nodes of their own.

use super::{NodeBuilder, job_reads, job_reads_in_text, push_edges};
use crate::check::program::{Condition, Promote, StepBlock};
use crate::compile::Edge;
use crate::compile::expr::{StaticNames, value_literal};
use crate::compile::plan::{
    ApprovalPlan, ConditionPlan, DrillPlan, Literal, MigratePlan, Node, NodeKind, ProbePlan,
    PromotePlan, RolloutPlan, StepBlockPlan, WatchPlan, promote_node_id,
};
use crate::syntax::ast::Ident;
use std::collections::BTreeMap;

impl NodeBuilder<'_> {
    /// The node ids of a promote, in execution order.
    pub(in crate::compile) fn promote_node_ids(&self, promote: &Promote) -> Vec<String> {
        promote_steps(promote)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    pub(in crate::compile) fn promote_nodes(&self, promote: &Promote) -> Vec<Node> {
        let names = self.environment_names(&promote.environment.name);
        let when = promote
            .when
            .as_ref()
            .map(|w| self.lowerer().expression(w, &names));
        promote_steps(promote)
            .into_iter()
            .enumerate()
            .map(|(i, (id, kind))| {
                let mut node = self.bare_node(&id, kind, promote.span);
                node.environment = Some(promote.environment.name.clone());
                node.secrets = promote.secrets.iter().map(|s| s.name.clone()).collect();
                if i == 0 {
                    node.when = when.clone();
                }
                node
            })
            .collect()
    }

    /// The promote at `position` in the program: its chain, and the edges into its first node.
    pub(in crate::compile) fn promote_edges(
        &self,
        position: usize,
        promote: &Promote,
        edges: &mut Vec<Edge>,
    ) {
        let nodes = self.promote_range(position);
        let entry = nodes.start..(nodes.start + 1).min(nodes.end);
        for from in nodes.clone().take(nodes.len().saturating_sub(1)) {
            push_edges(edges, from, from + 1..from + 2, promote.span);
        }
        self.reference_edges(promote.after.iter(), entry.clone(), edges);
        if let Some(artifact) = &promote.artifact {
            for producer in self.producer_nodes(&artifact.name) {
                push_edges(edges, producer, entry.clone(), artifact.span);
            }
        }
        let mut reads: Vec<Ident> = Vec::new();
        if let Some(when) = &promote.when {
            job_reads(when, &mut reads);
        }
        for block in promote_blocks(promote) {
            block
                .steps
                .iter()
                .for_each(|s| job_reads_in_text(s, &mut reads));
        }
        self.read_edges(&reads, entry, edges);
    }

    /// Compile-time names inside a promote or drill: `env.KEY` and `env.name`.
    fn environment_names(&self, environment: &str) -> StaticNames {
        let mut names = StaticNames::default()
            .with("env.name", Literal::String(environment.to_string()))
            .with(
                "pipeline.name",
                Literal::String(self.program.name.name.clone()),
            );
        if let Some(env) = self
            .program
            .environments
            .iter()
            .find(|e| e.name.name == environment)
        {
            for (key, value) in &env.attrs {
                names = names.with(format!("env.{}", key.name), value_literal(&value.value));
            }
        }
        names
    }

    fn block_plan(&self, block: &StepBlock, names: &StaticNames) -> StepBlockPlan {
        StepBlockPlan {
            steps: self.steps(&block.steps, names),
            timeout_s: block
                .settings
                .timeout
                .as_ref()
                .map(|t| t.value.div_ceil(1000)),
            retries: block.settings.retries.as_ref().map_or(0, |r| r.value),
            backoff_ms: block.settings.backoff.as_ref().map(|b| b.value),
            env: self.env_map(&block.settings.env, names),
        }
    }

    fn optional_block(&self, block: Option<&StepBlock>, names: &StaticNames) -> StepBlockPlan {
        block.map(|b| self.block_plan(b, names)).unwrap_or_default()
    }

    pub(in crate::compile) fn promotes(&self) -> BTreeMap<String, PromotePlan> {
        self.program
            .promotes
            .iter()
            .map(|p| (p.environment.name.clone(), self.promote_plan(p)))
            .collect()
    }

    fn promote_plan(&self, promote: &Promote) -> PromotePlan {
        let env = &promote.environment.name;
        let names = self.environment_names(env);
        let lower = self.lowerer();
        let protected = self
            .program
            .environments
            .iter()
            .find(|e| &e.name.name == env)
            .is_some_and(|e| e.protected.value);
        PromotePlan {
            environment: env.clone(),
            artifact: promote
                .artifact
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            protected,
            secrets: promote.secrets.iter().map(|s| s.name.clone()).collect(),
            when: promote.when.as_ref().map(|w| lower.expression(w, &names)),
            approval: promote.approval.as_ref().map(|a| ApprovalPlan {
                approvers: a
                    .approvers
                    .as_ref()
                    .map(|list| list.iter().map(|s| s.value.clone()).collect()),
                quorum: a.quorum.value,
                allow_self: a.allow_self,
            }),
            migrate: promote.migrate.as_ref().map(|m| MigratePlan {
                kind: m.kind.value,
                block: self.block_plan(&m.block, &names),
            }),
            rollout: promote.rollout.as_ref().map_or(
                RolloutPlan {
                    strategy: "all-at-once".to_string(),
                    steps: vec![100.0],
                    pause_ms: 0,
                },
                |r| RolloutPlan {
                    strategy: r.strategy.name.clone(),
                    steps: r.steps.iter().map(|s| s.value).collect(),
                    pause_ms: r.pause.as_ref().map_or(0, |p| p.value),
                },
            ),
            deploy: self.optional_block(promote.deploy.as_ref(), &names),
            smoke: promote.smoke.as_ref().map(|b| self.block_plan(b, &names)),
            watch: promote.watch.as_ref().map(|w| WatchPlan {
                duration_ms: w.duration.value,
                probes: w
                    .probes
                    .iter()
                    .map(|p| ProbePlan {
                        name: p.name.name.clone(),
                        ty: p.ty.value.clone(),
                        command: lower.template(&p.command, &names),
                        every_ms: p.every.value,
                    })
                    .collect(),
                rollback_when: self.conditions(&w.rollback_when, &names),
                warn_when: self.conditions(&w.warn_when, &names),
            }),
            rollback: self.optional_block(promote.rollback.as_ref(), &names),
            nodes: self.promote_node_ids(promote),
            span: self.span(promote.span),
        }
    }

    fn conditions(&self, conditions: &[Condition], names: &StaticNames) -> Vec<ConditionPlan> {
        conditions
            .iter()
            .map(|c| ConditionPlan {
                condition: self.lowerer().expression(&c.expr, names),
                for_ms: c.window.as_ref().map(|w| w.value),
            })
            .collect()
    }

    pub(in crate::compile) fn drills(&self) -> BTreeMap<String, DrillPlan> {
        self.program
            .drills
            .iter()
            .map(|d| {
                let environment = d
                    .environment
                    .as_ref()
                    .map(|e| e.name.clone())
                    .unwrap_or_default();
                let names = self.environment_names(&environment);
                let plan = DrillPlan {
                    rto_ms: d.rto.as_ref().map_or(0, |r| r.value),
                    rpo_ms: d.rpo.as_ref().map_or(0, |r| r.value),
                    every_ms: d.every.as_ref().map(|e| e.value),
                    secrets: d.secrets.iter().map(|s| s.name.clone()).collect(),
                    backup: self.optional_block(d.backup.as_ref(), &names),
                    restore: self.optional_block(d.restore.as_ref(), &names),
                    verify: self.optional_block(d.verify.as_ref(), &names),
                    environment,
                };
                (d.name.name.clone(), plan)
            })
            .collect()
    }
}

fn promote_blocks(promote: &Promote) -> impl Iterator<Item = &StepBlock> {
    [
        promote.migrate.as_ref().map(|m| &m.block),
        promote.deploy.as_ref(),
        promote.smoke.as_ref(),
        promote.rollback.as_ref(),
    ]
    .into_iter()
    .flatten()
}

/// The promote's nodes with their kinds, in execution order; only the blocks present.
pub(in crate::compile) fn promote_steps(promote: &Promote) -> Vec<(String, NodeKind)> {
    let env = &promote.environment.name;
    let steps = [
        (promote.approval.is_some(), "approval", NodeKind::Approval),
        (promote.migrate.is_some(), "migrate", NodeKind::Migrate),
        (true, "deploy", NodeKind::Deploy),
        (promote.smoke.is_some(), "smoke", NodeKind::Smoke),
        (promote.watch.is_some(), "watch", NodeKind::Watch),
    ];
    steps
        .into_iter()
        .filter(|(present, _, _)| *present)
        .map(|(_, step, kind)| (promote_node_id(env, step), kind))
        .collect()
}
