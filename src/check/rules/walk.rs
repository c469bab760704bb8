//! Where every expression and string of a program sits: the place (pipeline, job, gate, a part
//! of a promote, drill) decides which names an expression may read.

use crate::check::program::{
    Drill, Gate, Job, Program, Promote, Stage, StepBlock, StepSettings, Value, Watch,
};
use crate::diagnostics::Span;
use crate::syntax::ast::{Expr, ExprKind, Segment, StrLit};

/// The part of a promote an expression is written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PromotePart<'p> {
    /// `when = …` of the promote itself.
    Header,
    Migrate,
    Deploy,
    Smoke,
    Rollback,
    /// A probe's command inside `watch`.
    Probe(&'p Watch),
    /// `rollback when` / `warn when` of this watch.
    Condition(&'p Watch),
}

/// The block of a drill an expression is written in: only the restore and the verify read the
/// stored backup (`backup.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DrillPart {
    Backup,
    Restore,
    Verify,
}

/// The item an expression belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Place<'p> {
    /// `version` and the pipeline-level `env`.
    Pipeline,
    Stage(&'p Stage),
    Job(&'p Job),
    Gate(&'p Gate),
    Promote(&'p Promote, PromotePart<'p>),
    Drill(&'p Drill, DrillPart),
}

/// What an expression is used for: a condition must be a bool, an interpolation may be any value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The word that introduces the condition (`require`, `when`, `rollback when`), for messages.
    Condition(&'static str),
    Interpolation,
}

/// One top-level expression of the program.
#[derive(Debug, Clone, Copy)]
pub(super) struct Site<'p> {
    pub expr: &'p Expr,
    pub place: Place<'p>,
    pub role: Role,
}

/// Every string literal of the program that may hold `${{ }}`, with its place.
pub(super) fn strings(program: &Program) -> Vec<(&StrLit, Place<'_>)> {
    let mut out = Vec::new();
    let pipeline = Place::Pipeline;
    out.extend(program.version.iter().map(|v| (v, pipeline)));
    out.extend(program.env.iter().map(|(_, v)| (v, pipeline)));
    for job in &program.jobs {
        let place = Place::Job(job);
        out.extend(job.steps.iter().map(|s| (s, place)));
        push_settings(&mut out, &job.settings, place);
    }
    for promote in &program.promotes {
        push_promote_strings(&mut out, promote);
    }
    for drill in &program.drills {
        let parts = [
            (&drill.backup, DrillPart::Backup),
            (&drill.restore, DrillPart::Restore),
            (&drill.verify, DrillPart::Verify),
        ];
        for (block, part) in parts {
            if let Some(block) = block {
                push_block(&mut out, block, Place::Drill(drill, part));
            }
        }
    }
    out
}

fn push_promote_strings<'p>(out: &mut Vec<(&'p StrLit, Place<'p>)>, promote: &'p Promote) {
    let at = |part| Place::Promote(promote, part);
    if let Some(migrate) = &promote.migrate {
        push_block(out, &migrate.block, at(PromotePart::Migrate));
    }
    let blocks = [
        (&promote.deploy, PromotePart::Deploy),
        (&promote.smoke, PromotePart::Smoke),
        (&promote.rollback, PromotePart::Rollback),
    ];
    for (block, part) in blocks {
        if let Some(block) = block {
            push_block(out, block, at(part));
        }
    }
    if let Some(watch) = &promote.watch {
        let place = at(PromotePart::Probe(watch));
        out.extend(watch.probes.iter().map(|p| (&p.command, place)));
    }
}

fn push_block<'p>(out: &mut Vec<(&'p StrLit, Place<'p>)>, block: &'p StepBlock, place: Place<'p>) {
    out.extend(block.steps.iter().map(|s| (s, place)));
    push_settings(out, &block.settings, place);
}

fn push_settings<'p>(
    out: &mut Vec<(&'p StrLit, Place<'p>)>,
    settings: &'p StepSettings,
    place: Place<'p>,
) {
    out.extend(settings.env.iter().map(|(_, v)| (v, place)));
}

/// Every condition of the program (`require`, `warn`, `when`, `rollback when`, `warn when`).
pub(super) fn conditions(program: &Program) -> Vec<Site<'_>> {
    let mut out = Vec::new();
    for stage in &program.stages {
        push_when(&mut out, &stage.when, Place::Stage(stage));
    }
    for job in &program.jobs {
        push_when(&mut out, &job.when, Place::Job(job));
    }
    for promote in &program.promotes {
        push_when(
            &mut out,
            &promote.when,
            Place::Promote(promote, PromotePart::Header),
        );
    }
    for gate in &program.gates {
        let place = Place::Gate(gate);
        let requires = gate.requires.iter().map(|e| (e, "`require`"));
        for (expr, word) in requires.chain(gate.warns.iter().map(|e| (e, "`warn`"))) {
            out.push(Site {
                expr,
                place,
                role: Role::Condition(word),
            });
        }
    }
    for promote in &program.promotes {
        if let Some(watch) = &promote.watch {
            let place = Place::Promote(promote, PromotePart::Condition(watch));
            let rollbacks = watch.rollback_when.iter().map(|c| (c, "`rollback when`"));
            let warns = watch.warn_when.iter().map(|c| (c, "`warn when`"));
            for (condition, word) in rollbacks.chain(warns) {
                out.push(Site {
                    expr: &condition.expr,
                    place,
                    role: Role::Condition(word),
                });
            }
        }
    }
    out
}

fn push_when<'p>(out: &mut Vec<Site<'p>>, when: &'p Option<Expr>, place: Place<'p>) {
    if let Some(expr) = when {
        out.push(Site {
            expr,
            place,
            role: Role::Condition("`when`"),
        });
    }
}

/// Every expression of the program: the conditions and each `${{ }}` of every string.
pub(super) fn sites(program: &Program) -> Vec<Site<'_>> {
    let mut out = conditions(program);
    for (string, place) in strings(program) {
        for segment in &string.segments {
            if let Segment::Interp(expr) = segment {
                out.push(Site {
                    expr,
                    place,
                    role: Role::Interpolation,
                });
            }
        }
    }
    out
}

/// A piece of literal text written in the source and the span of the literal holding it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Literal<'p> {
    pub text: &'p str,
    pub span: Span,
}

/// Every literal text of the program: string segments (also inside expressions), environment
/// values, paths, matrix values, approvers, shells and the like.
pub(super) fn literals(program: &Program) -> Vec<Literal<'_>> {
    let mut out = Vec::new();
    for (string, _) in strings(program) {
        push_str_lit(&mut out, string);
    }
    for site in conditions(program) {
        push_expr_literals(&mut out, site.expr);
    }
    for secret in &program.secrets {
        let (crate::check::program::SecretSource::Env(text)
        | crate::check::program::SecretSource::File(text)) = &secret.source.value;
        out.push(Literal {
            text,
            span: secret.source.span,
        });
    }
    for artifact in &program.artifacts {
        out.push(Literal {
            text: &artifact.path.value,
            span: artifact.path.span,
        });
    }
    for environment in &program.environments {
        for (_, value) in &environment.attrs {
            push_value(&mut out, &value.value, value.span);
        }
    }
    for job in &program.jobs {
        let values = job.matrix.iter().flat_map(|(_, values)| values.iter());
        let texts = values
            .chain(&job.shell)
            .chain(&job.workdir)
            .chain(&job.inherit_env);
        out.extend(texts.map(|t| Literal {
            text: &t.value,
            span: t.span,
        }));
    }
    for promote in &program.promotes {
        let approvers = promote
            .approval
            .iter()
            .flat_map(|a| a.approvers.iter().flatten());
        out.extend(approvers.map(|a| Literal {
            text: &a.value,
            span: a.span,
        }));
    }
    out
}

fn push_value<'p>(out: &mut Vec<Literal<'p>>, value: &'p Value, span: Span) {
    match value {
        Value::String(text) => out.push(Literal { text, span }),
        Value::List(items) => items.iter().for_each(|item| push_value(out, item, span)),
        Value::Number(_) | Value::Bool(_) | Value::Duration(_) | Value::Percent(_) => {}
    }
}

fn push_str_lit<'p>(out: &mut Vec<Literal<'p>>, string: &'p StrLit) {
    for segment in &string.segments {
        match segment {
            Segment::Text(text) => out.push(Literal {
                text,
                span: string.span,
            }),
            Segment::Interp(expr) => push_expr_literals(out, expr),
        }
    }
}

fn push_expr_literals<'p>(out: &mut Vec<Literal<'p>>, expr: &'p Expr) {
    match &expr.kind {
        ExprKind::Str(string) => push_str_lit(out, string),
        ExprKind::List(items) => items.iter().for_each(|e| push_expr_literals(out, e)),
        ExprKind::Call(call) => call
            .args
            .iter()
            .for_each(|a| push_expr_literals(out, &a.value)),
        ExprKind::Not(inner) => push_expr_literals(out, inner),
        ExprKind::Binary { lhs, rhs, .. } => {
            push_expr_literals(out, lhs);
            push_expr_literals(out, rhs);
        }
        ExprKind::Number(_)
        | ExprKind::Bool(_)
        | ExprKind::Duration(_)
        | ExprKind::Percent(_)
        | ExprKind::Path(_) => {}
    }
}

/// The bare names an expression reads (`error_rate` in `error_rate > 1%`), with nested strings.
pub(super) fn bare_names(expr: &Expr, out: &mut Vec<String>) {
    match &expr.kind {
        ExprKind::Path(path) if path.len() == 1 => {
            out.extend(path.first().map(|i| i.name.clone()));
        }
        ExprKind::Not(inner) => bare_names(inner, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            bare_names(lhs, out);
            bare_names(rhs, out);
        }
        ExprKind::List(items) => items.iter().for_each(|e| bare_names(e, out)),
        _ => {}
    }
}

/// The jobs an expression reads through `jobs.J.…`.
pub(super) fn jobs_read(expr: &Expr, out: &mut Vec<String>) {
    match &expr.kind {
        ExprKind::Path(path) => {
            if let [root, job, ..] = path.as_slice()
                && root.name == "jobs"
            {
                out.push(job.name.clone());
            }
        }
        ExprKind::Not(inner) => jobs_read(inner, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            jobs_read(lhs, out);
            jobs_read(rhs, out);
        }
        ExprKind::List(items) => items.iter().for_each(|e| jobs_read(e, out)),
        ExprKind::Str(string) => {
            for segment in &string.segments {
                if let Segment::Interp(inner) = segment {
                    jobs_read(inner, out);
                }
            }
        }
        _ => {}
    }
}
