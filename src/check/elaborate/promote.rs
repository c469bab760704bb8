//! `promote ENV { … }`: its attributes and its delivery blocks (approval, migrate, rollout,
//! deploy, smoke, watch with probes and conditions, rollback).

use super::Elaborator;
use super::body::{Schema, StmtKind};
use crate::check::program::{
    Approval, Condition, Migrate, MigrationKind, Probe, Promote, Rollout, Spanned, Watch,
};
use crate::diagnostics::{Diagnostic, did_you_mean};
use crate::syntax::ast::{self, Block, ExprKind, Ident, StrLit, WhenKind, WhenStmt};

pub(super) const PROMOTE: Schema = Schema {
    what: "a promote",
    attrs: &["after", "artifact", "secrets", "when"],
    blocks: &[
        "approval", "migrate", "rollout", "deploy", "smoke", "watch", "rollback",
    ],
    items: &[],
    statements: &[],
    free_attrs: false,
};
pub(super) const APPROVAL: Schema = Schema::attrs_only(
    "an `approval` block",
    &["approvers", "quorum", "allow_self"],
);
pub(super) const ROLLOUT: Schema = Schema::attrs_only("a `rollout` block", &["steps", "pause"]);
pub(super) const WATCH: Schema = Schema {
    what: "a `watch` block",
    attrs: &[],
    blocks: &[],
    items: &[],
    statements: &[StmtKind::Probe, StmtKind::RollbackWhen, StmtKind::WarnWhen],
    free_attrs: false,
};

pub(super) const MIGRATE: Schema = Schema {
    what: "a `migrate` block",
    attrs: &["timeout", "retries", "backoff", "kind"],
    blocks: &["env"],
    items: &[],
    statements: &[StmtKind::Run],
    free_attrs: false,
};

/// The rollout strategies there are.
pub(super) const STRATEGIES: &[&str] = &["canary"];

impl Elaborator<'_> {
    /// `promote ENV { … }`; a missing `rollback` is left to the rules (E0401).
    pub(super) fn promote(&mut self, block: &Block, environment: Ident) -> Promote {
        let statements = self.statements(block);
        let body = self.read_body(statements, &PROMOTE);
        let what = format!("promote `{}`", environment.name);
        if body.attr("artifact").is_none() {
            self.missing(&what, "artifact", environment.span, "artifact = api_bin");
        }
        if !Self::has_step_block(&body, "deploy") {
            let example = "deploy { run \"./scripts/deploy.sh ${{ artifact.path }}\" }";
            self.missing(&what, "deploy", environment.span, example);
        }
        let names = |this: &mut Self, key: &str| {
            body.attr(key)
                .and_then(|attr| this.names(&attr.value))
                .unwrap_or_default()
        };
        Promote {
            after: names(self, "after"),
            secrets: names(self, "secrets"),
            artifact: body
                .attr("artifact")
                .and_then(|attr| self.name(&attr.value)),
            when: body.attr("when").map(|attr| attr.value.clone()),
            approval: body.block("approval").map(|b| self.approval(b)),
            migrate: body.block("migrate").and_then(|b| self.migrate(b)),
            rollout: body.block("rollout").and_then(|b| self.rollout(b)),
            deploy: self.step_block_of(&body, "deploy"),
            smoke: self.step_block_of(&body, "smoke"),
            watch: body.block("watch").and_then(|b| self.watch(b)),
            rollback: self.step_block_of(&body, "rollback"),
            environment,
            span: block.span,
        }
    }

    fn approval(&mut self, block: &Block) -> Approval {
        let statements = self.anonymous_statements(block);
        let body = self.read_body(statements, &APPROVAL);
        let quorum = body
            .attr("quorum")
            .and_then(|attr| self.whole_number(&attr.value));
        if let Some(zero) = quorum.as_ref().filter(|quorum| quorum.value == 0) {
            self.diagnostics.push(
                Diagnostic::error("E0201", "an approval quorum must be at least 1")
                    .primary(zero.span, "expected a whole number of at least 1, found 0")
                    .help("write `quorum = 1`, or remove the approval block"),
            );
        }
        Approval {
            approvers: body
                .attr("approvers")
                .and_then(|attr| self.strings(&attr.value)),
            quorum: quorum.unwrap_or(Spanned::new(1, block.span)),
            allow_self: body
                .attr("allow_self")
                .and_then(|attr| self.bool_value(&attr.value))
                .is_some_and(|allow| allow.value),
            span: block.span,
        }
    }

    /// `migrate { kind = expand  run "…" }`; `None` without a readable `kind`.
    fn migrate(&mut self, block: &Block) -> Option<Migrate> {
        let statements = self.anonymous_statements(block);
        let body = self.read_body(statements, &MIGRATE);
        let step_block = self.step_block_from(block, &body);
        let Some(kind_attr) = body.attr("kind") else {
            self.missing("migrate block", "kind", block.keyword.span, "kind = expand");
            return None;
        };
        let kind = self.name(&kind_attr.value)?;
        let kind = match kind.name.as_str() {
            "expand" => MigrationKind::Expand,
            "contract" => MigrationKind::Contract,
            other => {
                let help = did_you_mean(other, ["expand", "contract"]).unwrap_or_else(|| {
                    "`expand` keeps the previous release working; `contract` removes what it needed"
                        .to_string()
                });
                self.diagnostics.push(
                    Diagnostic::error("E0201", format!("unknown migration kind `{other}`"))
                        .primary(kind.span, "expected `expand` or `contract`")
                        .help(help),
                );
                return None;
            }
        };
        Some(Migrate {
            kind: Spanned::new(kind, kind_attr.value.span),
            block: step_block,
        })
    }

    /// `rollout canary { steps = [10%, 50%, 100%]  pause = 30s }`
    fn rollout(&mut self, block: &Block) -> Option<Rollout> {
        self.check_head(block, true, false);
        let statements = self.statements(block);
        let body = self.read_body(statements, &ROLLOUT);
        let steps = body
            .attr("steps")
            .and_then(|attr| self.percents(&attr.value));
        let pause = body
            .attr("pause")
            .and_then(|attr| self.duration(&attr.value));
        let Some(strategy) = block.name.clone() else {
            self.diagnostics.push(
                Diagnostic::error("E0104", "a rollout block is missing its strategy")
                    .primary(block.keyword.span, "which strategy?")
                    .help("write `rollout canary { steps = [10%, 50%, 100%] }`"),
            );
            return None;
        };
        if !STRATEGIES.contains(&strategy.name.as_str()) {
            let help = did_you_mean(&strategy.name, STRATEGIES.iter().copied())
                .unwrap_or_else(|| format!("the strategies are: {}", STRATEGIES.join(", ")));
            self.diagnostics.push(
                Diagnostic::error(
                    "E0201",
                    format!("unknown rollout strategy `{}`", strategy.name),
                )
                .primary(strategy.span, "expected `canary`")
                .help(help),
            );
            return None;
        }
        if body.attr("steps").is_none() {
            self.missing(
                "rollout block",
                "steps",
                block.keyword.span,
                "steps = [10%, 50%, 100%]",
            );
        }
        Some(Rollout {
            strategy,
            steps: steps?,
            pause,
            span: block.span,
        })
    }

    /// `watch 2m { probe … rollback when … warn when … }`
    fn watch(&mut self, block: &Block) -> Option<Watch> {
        self.check_head(block, false, true);
        let statements = self.statements(block);
        let body = self.read_body(statements, &WATCH);
        let mut probes: Vec<Probe> = Vec::new();
        for probe in body.probes {
            let Some(probe) = self.probe(probe) else {
                continue;
            };
            if let Some(first) = probes.iter().find(|p| p.name.name == probe.name.name) {
                let first = first.name.span;
                let message = format!("probe `{}` is defined twice", probe.name.name);
                self.duplicate(message, first, probe.name.span);
                continue;
            }
            probes.push(probe);
        }
        let (rollback_when, warn_when) = self.conditions(&body.whens);
        let Some(duration) = &block.arg else {
            self.diagnostics.push(
                Diagnostic::error("E0104", "a watch block is missing its duration")
                    .primary(block.keyword.span, "how long to watch?")
                    .help("write `watch 2m { … }`"),
            );
            return None;
        };
        Some(Watch {
            duration: self.duration(duration)?,
            probes,
            rollback_when,
            warn_when,
            span: block.span,
        })
    }

    /// `probe error_rate: percent = command("…") every 5s`
    fn probe(&mut self, probe: &ast::Probe) -> Option<Probe> {
        let command = self.probe_command(&probe.source);
        let Some(every) = &probe.every else {
            self.diagnostics.push(
                Diagnostic::error(
                    "E0104",
                    format!("probe `{}` is missing `every`", probe.name.name),
                )
                .primary(probe.name.span, "how often should it run?")
                .help("add `every 5s` after the probe's command"),
            );
            return None;
        };
        let every = self.duration(every)?;
        Some(Probe {
            name: probe.name.clone(),
            ty: Spanned::new(probe.ty.ty.clone(), probe.ty.span),
            command: command?,
            every,
            span: probe.span,
        })
    }

    /// The `command("…")` a probe runs.
    fn probe_command(&mut self, source: &ast::Expr) -> Option<StrLit> {
        if let ExprKind::Call(call) = &source.kind
            && call.name() == "command"
            && let [arg] = call.args.as_slice()
            && arg.name.is_none()
            && let ExprKind::Str(text) = &arg.value.kind
        {
            return Some(text.clone());
        }
        let found = super::values::describe(source);
        self.diagnostics.push(
            Diagnostic::error(
                "E0201",
                format!("mismatched types: expected a probe source, found {found}"),
            )
            .primary(
                source.span,
                format!("expected `command(\"…\")`, found {found}"),
            )
            .help("a probe reads its value from a command: `command(\"./scripts/error_rate.sh\")`"),
        );
        None
    }

    /// `rollback when` and `warn when` conditions, in order.
    fn conditions(&mut self, whens: &[&WhenStmt]) -> (Vec<Condition>, Vec<Condition>) {
        let mut rollback_when = Vec::new();
        let mut warn_when = Vec::new();
        for when in whens {
            let window = match &when.window {
                Some(window) => match self.duration(window) {
                    Some(window) => Some(window),
                    None => continue,
                },
                None => None,
            };
            let condition = Condition {
                expr: when.condition.clone(),
                window,
                span: when.span,
            };
            match when.kind {
                WhenKind::Rollback => rollback_when.push(condition),
                WhenKind::Warn => warn_when.push(condition),
            }
        }
        (rollback_when, warn_when)
    }
}
