//! `--dry-run`: what a run would do, in order, without executing or creating anything —
//! resolved commands (secrets as `***`), gates and what they read, `when` skips, approvals,
//! rollout steps, watch conditions and the rollback target from the ledger.

use crate::check::program::SecretSource;
use crate::compile::plan::{Node, NodeKind, Plan, PromotePlan, StepBlockPlan};
use crate::run::delivery::{DeliveryExecutor, PreviewRequest, PromotePreview, TargetPreview};
use crate::run::eval::{self, Bindings, format_duration_ms};
use crate::run::redact::Redactor;
use crate::run::shell_quote;
use crate::store::Store;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

/// What the dry run needs besides the plan.
pub struct DryRunInput<'a> {
    pub plan: &'a Plan,
    pub bindings: &'a Bindings,
    pub redactor: &'a Redactor,
    pub store: &'a Store,
    /// Where the build writes its artifacts (the pipeline's directory).
    pub pipeline_dir: &'a Path,
    /// Decides what a promote binds and its rollback target, as the real run would (`None`:
    /// promotes are shown unbound and their target unknown, as the run would fail them).
    pub delivery: Option<&'a dyn DeliveryExecutor>,
    /// `None`: every node.
    pub selected: Option<&'a BTreeSet<String>>,
    pub approvals: &'a [String],
    pub approver: Option<&'a str>,
}

/// The dry run's text.
pub fn describe(input: &DryRunInput<'_>) -> String {
    let plan = input.plan;
    let version = input
        .bindings
        .get("pipeline.version")
        .map(eval::display)
        .unwrap_or_default();
    let mut out = format!("dry run of pipeline `{}`", plan.pipeline);
    if !version.is_empty() {
        let _ = write!(out, " (version {version})");
    }
    out.push_str(": nothing is executed\n");
    let mut step = 0;
    let mut shown_promotes = BTreeSet::new();
    for node in &plan.nodes {
        if input.selected.is_some_and(|s| !s.contains(&node.id)) {
            continue;
        }
        if let Some(env) = &node.environment {
            if !shown_promotes.insert(env.clone()) {
                continue;
            }
            step += 1;
            if let Some(promote) = plan.promotes.get(env) {
                describe_promote(&mut out, step, input, promote);
            }
            continue;
        }
        step += 1;
        match node.kind {
            NodeKind::Gate => describe_gate(&mut out, step, input, node),
            _ => describe_job(&mut out, step, input, node),
        }
    }
    input.redactor.text(&out)
}

fn header(out: &mut String, step: usize, what: &str, node: &Node) {
    let _ = write!(out, "{step:>3}. {what} {}", node.id);
    if !node.needs.is_empty() {
        let _ = write!(out, " (after {})", node.needs.join(", "));
    }
    out.push('\n');
}

fn describe_when(
    out: &mut String,
    when: Option<&crate::compile::plan::Expression>,
    bindings: &Bindings,
) {
    let Some(when) = when else { return };
    let line = match eval::eval_condition(when, bindings) {
        Ok(true) => format!("when `{}`: true, runs", when.source),
        Ok(false) => format!(
            "would skip: when `{}` is false{}",
            when.source,
            crate::run::gate::values_read(when, bindings)
        ),
        Err(_) => format!("when `{}`: decided at run time", when.source),
    };
    let _ = writeln!(out, "       {line}");
}

fn describe_job(out: &mut String, step: usize, input: &DryRunInput<'_>, node: &Node) {
    header(out, step, "job", node);
    describe_when(out, node.when.as_ref(), input.bindings);
    for run in &node.steps {
        let _ = writeln!(
            out,
            "       $ {}",
            shell_quote::render_command_lenient(&run.run, input.bindings, node.shell.as_deref())
        );
    }
    let mut settings = Vec::new();
    if let Some(timeout) = node.timeout_s {
        settings.push(format!("timeout {}", format_duration_ms(timeout * 1000)));
    }
    if node.retries > 0 {
        let backoff = node.backoff_ms.unwrap_or(1000);
        settings.push(format!(
            "retries {} (backoff {})",
            node.retries,
            format_duration_ms(backoff)
        ));
    }
    if let Some(shell) = &node.shell {
        settings.push(format!("shell {shell}"));
    }
    if let Some(workdir) = &node.workdir {
        settings.push(format!("workdir {workdir}"));
    }
    if !settings.is_empty() {
        let _ = writeln!(out, "       {}", settings.join(", "));
    }
    for (name, template) in &node.env {
        let _ = writeln!(
            out,
            "       env {name}={}",
            eval::render_lenient(template, input.bindings)
        );
    }
    for secret in &node.secrets {
        let _ = writeln!(out, "       {}", secret_line(input.plan, secret));
    }
    if !node.outputs.is_empty() {
        let outputs: Vec<String> = node
            .outputs
            .iter()
            .map(|(k, t)| format!("{k}: {t}"))
            .collect();
        let _ = writeln!(out, "       outputs {}", outputs.join(", "));
    }
    for artifact in &node.produces {
        let path = input
            .plan
            .artifacts
            .get(artifact)
            .map_or("?", |a| a.path.as_str());
        let _ = writeln!(
            out,
            "       produces artifact {artifact} ({path}), stored by digest"
        );
    }
}

fn describe_gate(out: &mut String, step: usize, input: &DryRunInput<'_>, node: &Node) {
    header(out, step, "gate", node);
    describe_when(out, node.when.as_ref(), input.bindings);
    let Some(gate) = &node.gate else { return };
    for (word, conditions) in [("require", &gate.require), ("warn", &gate.warn)] {
        for condition in conditions {
            let mut names = Vec::new();
            eval::names_read(&condition.tree, &mut names);
            let _ = writeln!(
                out,
                "       {word} {}   (reads {})",
                condition.source,
                names.join(", ")
            );
        }
    }
}

fn describe_promote(out: &mut String, step: usize, input: &DryRunInput<'_>, promote: &PromotePlan) {
    let env = &promote.environment;
    let protected = if promote.protected { ", protected" } else { "" };
    let _ = writeln!(
        out,
        "{step:>3}. promote {env} (artifact {}{protected}): {}",
        promote.artifact,
        promote.nodes.join(" → ")
    );
    let preview = preview(input, env);
    let bindings = preview.bindings;
    describe_when(out, promote.when.as_ref(), &bindings);
    if let Some(approval) = &promote.approval {
        let who = approval
            .approvers
            .as_ref()
            .map_or("anyone".to_string(), |list| list.join(", "));
        let self_rule = if approval.allow_self {
            ""
        } else {
            "; not the run's initiator"
        };
        let given = if input.approvals.iter().any(|a| a == env) {
            format!(
                "; --approve given by {}",
                input.approver.unwrap_or("$PIPE_APPROVER/$USER")
            )
        } else {
            "; would ask, or stop with exit 3".into()
        };
        let _ = writeln!(
            out,
            "       approval: {} of [{who}]{self_rule}{given}",
            approval.quorum
        );
    }
    if let Some(migrate) = &promote.migrate {
        describe_block(
            out,
            &format!("migrate ({:?})", migrate.kind).to_lowercase(),
            &migrate.block,
            &bindings,
        );
    }
    let steps: Vec<String> = promote
        .rollout
        .steps
        .iter()
        .map(|s| format!("{s}%"))
        .collect();
    let _ = writeln!(
        out,
        "       rollout {}: {} (pause {})",
        promote.rollout.strategy,
        steps.join(" → "),
        format_duration_ms(promote.rollout.pause_ms)
    );
    for secret in &promote.secrets {
        let _ = writeln!(out, "       {}", secret_line(input.plan, secret));
    }
    describe_block(out, "deploy", &promote.deploy, &bindings);
    if let Some(smoke) = &promote.smoke {
        describe_block(out, "smoke", smoke, &bindings);
    }
    if let Some(watch) = &promote.watch {
        let _ = writeln!(
            out,
            "       watch {}:",
            format_duration_ms(watch.duration_ms)
        );
        for probe in &watch.probes {
            let command = shell_quote::render_command_lenient(&probe.command, &bindings, None);
            let every = format_duration_ms(probe.every_ms);
            let _ = writeln!(
                out,
                "         probe {}: {} every {every}: $ {command}",
                probe.name, probe.ty
            );
        }
        for (word, conditions) in [
            ("rollback when", &watch.rollback_when),
            ("warn when", &watch.warn_when),
        ] {
            for condition in conditions {
                let held = condition
                    .for_ms
                    .map(|ms| format!(" for {}", format_duration_ms(ms)))
                    .unwrap_or_default();
                let _ = writeln!(out, "         {word} {}{held}", condition.condition.source);
            }
        }
    }
    describe_block(out, "rollback", &promote.rollback, &bindings);
    let _ = writeln!(
        out,
        "       rollback target: {}",
        preview.rollback_target.describe()
    );
}

/// `secret API_KEY=*** (api_key, from $DEMO_API_KEY)`: the variable the steps read, and where
/// its value comes from, which is not a variable the steps receive.
fn secret_line(plan: &Plan, secret: &str) -> String {
    let exported = secret.to_uppercase();
    let source = match plan.secrets.get(secret).map(|s| &s.from) {
        Some(SecretSource::Env(from)) => format!(", from ${from}"),
        Some(SecretSource::File(path)) => format!(", from file {path}"),
        None => String::new(),
    };
    format!("secret {exported}=*** ({secret}{source})")
}

fn describe_block(out: &mut String, name: &str, block: &StepBlockPlan, bindings: &Bindings) {
    for run in &block.steps {
        let _ = writeln!(
            out,
            "       {name}: $ {}",
            shell_quote::render_command_lenient(&run.run, bindings, None)
        );
    }
}

/// The promote as the delivery executor would start it.
fn preview(input: &DryRunInput<'_>, environment: &str) -> PromotePreview {
    let request = PreviewRequest {
        plan: input.plan,
        environment,
        store: input.store,
        pipeline_dir: input.pipeline_dir,
        bindings: input.bindings,
    };
    match input.delivery {
        Some(delivery) => delivery.preview(&request),
        None => PromotePreview {
            bindings: input.bindings.clone(),
            rollback_target: TargetPreview::Unreadable("no delivery executor".to_string()),
        },
    }
}
