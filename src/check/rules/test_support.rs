//! Builders for small checked programs in the rules' unit tests: each ident and expression gets
//! a span of its own, so labels can be told apart and repeated names are not deduplicated.

use crate::check::program::{
    Approval, Artifact, Condition, Drill, Environment, Gate, Job, Probe, Program, Promote, Secret,
    SecretSource, Spanned, StepBlock, StepSettings, Value, Watch,
};
use crate::diagnostics::{Diagnostic, SourceMap, Span};
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Ident, Segment, StrLit, Type};
use std::cell::Cell;

thread_local! {
    static NEXT_OFFSET: Cell<usize> = const { Cell::new(0) };
}

/// A fresh span of `len` bytes, after every span handed out before on this thread.
pub fn span(len: usize) -> Span {
    NEXT_OFFSET.with(|next| {
        let start = next.get();
        next.set(start + len + 1);
        Span::new(0, start, start + len)
    })
}

pub fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, span(1))
}

pub fn ident(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: span(name.len()),
    }
}

pub fn idents(names: &[&str]) -> Vec<Ident> {
    names.iter().map(|n| ident(n)).collect()
}

pub fn expr(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: span(4),
    }
}

/// `git.branch` → a path expression.
pub fn path(dotted: &str) -> Expr {
    expr(ExprKind::Path(dotted.split('.').map(ident).collect()))
}

pub fn number(value: f64) -> Expr {
    expr(ExprKind::Number(value))
}

pub fn percent(value: f64) -> Expr {
    expr(ExprKind::Percent(value))
}

pub fn millis(value: u64) -> Expr {
    expr(ExprKind::Duration(value))
}

pub fn text(value: &str) -> Expr {
    expr(ExprKind::Str(plain(value)))
}

pub fn binary(lhs: Expr, op: BinaryOp, rhs: Expr) -> Expr {
    expr(ExprKind::Binary {
        op,
        op_span: span(2),
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    })
}

pub fn not(inner: Expr) -> Expr {
    expr(ExprKind::Not(Box::new(inner)))
}

pub fn plain(value: &str) -> StrLit {
    StrLit {
        segments: vec![Segment::Text(value.to_string())],
        span: span(value.len() + 2),
    }
}

/// `"deploy ${{ artifact.path }}"` from `["deploy ", "${{artifact.path}}"]`: a part written as
/// `${{name}}` becomes an interpolation of that dotted name.
pub fn interpolated(parts: &[&str]) -> StrLit {
    let segments = parts
        .iter()
        .map(
            |part| match part.strip_prefix("${{").and_then(|p| p.strip_suffix("}}")) {
                Some(name) => Segment::Interp(path(name.trim())),
                None => Segment::Text(part.to_string()),
            },
        )
        .collect();
    StrLit {
        segments,
        span: span(20),
    }
}

pub fn block(steps: &[&str]) -> StepBlock {
    StepBlock {
        steps: steps.iter().map(|s| plain(s)).collect(),
        settings: StepSettings::default(),
        span: span(10),
    }
}

pub fn block_of(steps: Vec<StrLit>) -> StepBlock {
    StepBlock {
        steps,
        settings: StepSettings::default(),
        span: span(10),
    }
}

pub fn job(name: &str) -> Job {
    Job {
        name: ident(name),
        stage: None,
        template: None,
        steps: vec![plain("true")],
        settings: StepSettings::default(),
        needs: Vec::new(),
        after: Vec::new(),
        secrets: Vec::new(),
        produces: Vec::new(),
        outputs: Vec::new(),
        when: None,
        matrix: Vec::new(),
        shell: None,
        workdir: None,
        outside_workspace: None,
        inherit_env: Vec::new(),
        span: span(10),
    }
}

pub fn environment(name: &str, protected: bool, attrs: &[(&str, Value)]) -> Environment {
    let mut attrs: Vec<(Ident, Spanned<Value>)> = attrs
        .iter()
        .map(|(key, value)| (ident(key), spanned(value.clone())))
        .collect();
    attrs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let own_keys = attrs.iter().map(|(key, _)| key.clone()).collect();
    Environment {
        name: ident(name),
        protected: spanned(protected),
        extends: None,
        attrs,
        own_keys,
        span: span(10),
    }
}

pub fn secret(name: &str, scope: Option<&[&str]>) -> Secret {
    Secret {
        name: ident(name),
        source: spanned(SecretSource::Env(name.to_uppercase())),
        scope: scope.map(idents),
        span: span(10),
    }
}

pub fn artifact(name: &str) -> Artifact {
    Artifact {
        name: ident(name),
        path: spanned(format!("target/{name}")),
        outside_workspace: None,
        span: span(10),
    }
}

pub fn approval() -> Approval {
    Approval {
        approvers: Some(vec![spanned("alice".to_string())]),
        quorum: spanned(1),
        allow_self: false,
        span: span(10),
    }
}

/// A promote with deploy, smoke and rollback blocks that read only what they may.
pub fn promote(environment: &str, artifact: &str, after: &[&str]) -> Promote {
    Promote {
        environment: ident(environment),
        after: idents(after),
        artifact: Some(ident(artifact)),
        secrets: Vec::new(),
        when: None,
        approval: None,
        migrate: None,
        rollout: None,
        deploy: Some(block_of(vec![interpolated(&[
            "./deploy.sh ",
            "${{artifact.path}}",
            " ",
            "${{env.url}}",
        ])])),
        smoke: Some(block_of(vec![interpolated(&[
            "curl -fsS ",
            "${{env.url}}",
        ])])),
        watch: None,
        rollback: Some(block_of(vec![interpolated(&[
            "./deploy.sh ",
            "${{previous.path}}",
        ])])),
        span: span(30),
    }
}

pub fn probe(name: &str, ty: Type) -> Probe {
    Probe {
        name: ident(name),
        ty: spanned(ty),
        command: plain("./probe.sh"),
        every: spanned(5_000),
        span: span(10),
    }
}

pub fn condition(expr: Expr) -> Condition {
    Condition {
        expr,
        window: Some(spanned(30_000)),
        span: span(10),
    }
}

pub fn watch(probes: Vec<Probe>, rollback_when: Vec<Expr>) -> Watch {
    Watch {
        duration: spanned(120_000),
        probes,
        rollback_when: rollback_when.into_iter().map(condition).collect(),
        warn_when: Vec::new(),
        span: span(10),
    }
}

pub fn drill(name: &str, environment: &str) -> Drill {
    Drill {
        name: ident(name),
        environment: Some(ident(environment)),
        secrets: Vec::new(),
        rto: Some(spanned(120_000)),
        rpo: Some(spanned(86_400_000)),
        every: None,
        backup: Some(block(&["./backup.sh"])),
        restore: Some(block(&["./restore.sh"])),
        verify: Some(block(&["./verify.sh"])),
        span: span(10),
    }
}

/// The whole example's shape: lint and package jobs, a gate, staging then protected production,
/// one scoped secret used by both promotes, a restore drill of production. It passes every rule.
pub fn clean_program() -> Program {
    let mut lint = job("lint");
    lint.outputs = vec![(ident("coverage"), spanned(Type::Percent))];
    let mut package = job("package");
    package.needs = idents(&["lint"]);
    package.produces = idents(&["api_bin"]);
    let gate = Gate {
        name: ident("quality"),
        after: idents(&["package"]),
        requires: vec![binary(
            path("jobs.lint.outputs.coverage"),
            BinaryOp::Ge,
            percent(80.0),
        )],
        warns: vec![path("jobs.lint.succeeded")],
        span: span(10),
    };
    let url = |port: &str| Value::String(format!("http://127.0.0.1:{port}"));
    let mut staging = promote("staging", "api_bin", &["quality"]);
    staging.secrets = idents(&["deploy_token"]);
    let mut production = promote("production", "api_bin", &["staging"]);
    production.secrets = idents(&["deploy_token"]);
    production.approval = Some(approval());
    Program {
        name: ident("api"),
        version: Some(interpolated(&[
            "api-",
            "${{date}}",
            "-",
            "${{git.short_sha}}",
        ])),
        env: vec![(ident("RUST_BACKTRACE"), plain("1"))],
        secrets: vec![secret("deploy_token", Some(&["staging", "production"]))],
        artifacts: vec![artifact("api_bin")],
        environments: vec![
            environment("staging", false, &[("url", url("18080"))]),
            environment("production", true, &[("url", url("18081"))]),
        ],
        stages: Vec::new(),
        jobs: vec![lint, package],
        gates: vec![gate],
        promotes: vec![staging, production],
        drills: vec![drill("restore_production", "production")],
    }
}

pub fn diagnostics_of(program: &Program) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    super::check_program(program, &SourceMap::new(), &mut diagnostics);
    diagnostics
}

pub fn codes(program: &Program) -> Vec<&'static str> {
    diagnostics_of(program).iter().map(|d| d.code).collect()
}

/// The diagnostics with this code.
pub fn with_code(program: &Program, code: &str) -> Vec<Diagnostic> {
    diagnostics_of(program)
        .into_iter()
        .filter(|d| d.code == code)
        .collect()
}

/// The text of every label of a diagnostic.
pub fn label_texts(diagnostic: &Diagnostic) -> Vec<&str> {
    diagnostic.labels.iter().map(|l| l.text.as_str()).collect()
}
