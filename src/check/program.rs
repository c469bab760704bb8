//! The checked program: the pipeline with imports resolved, templates expanded, `extends`
//! applied and every attribute typed. It is what `compile` consumes; it holds no pest types
//! and no secret values (only secret names and where to read them).

use crate::diagnostics::Span;
use crate::syntax::ast::{Expr, Ident, StrLit, Type};

/// A value that carries the span it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { value, span }
    }
}

/// Milliseconds.
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub name: Ident,
    pub version: Option<StrLit>,
    /// `env { K = "v" }` at pipeline level, in source order.
    pub env: Vec<(Ident, StrLit)>,
    pub secrets: Vec<Secret>,
    pub artifacts: Vec<Artifact>,
    pub environments: Vec<Environment>,
    pub stages: Vec<Stage>,
    /// All jobs, including those declared inside stages (with `stage` set) and template instances.
    pub jobs: Vec<Job>,
    pub gates: Vec<Gate>,
    pub promotes: Vec<Promote>,
    pub drills: Vec<Drill>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum SecretSource {
    /// `env("NAME")`: read from the host environment of `pipe` at run time.
    Env(String),
    /// `file("path")`: read from a file relative to the pipeline file.
    File(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub name: Ident,
    pub source: Spanned<SecretSource>,
    /// `None`: usable anywhere a promote or drill declares it.
    pub scope: Option<Vec<Ident>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub name: Ident,
    pub path: Spanned<String>,
    /// `outside_workspace = true`: the path may leave the pipeline's directory (W0104).
    pub outside_workspace: Option<Spanned<bool>>,
    pub span: Span,
}

/// A free attribute value of an environment (`url = "…"`, `replicas = 3`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Number(f64),
    Bool(bool),
    Duration(Millis),
    Percent(f64),
    List(Vec<Value>),
}

impl Value {
    pub fn ty(&self) -> Type {
        match self {
            Value::String(_) => Type::String,
            Value::Number(_) => Type::Number,
            Value::Bool(_) => Type::Bool,
            Value::Duration(_) => Type::Duration,
            Value::Percent(_) => Type::Percent,
            Value::List(items) => {
                Type::List(Box::new(items.first().map_or(Type::String, Value::ty)))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: Ident,
    pub protected: Spanned<bool>,
    pub extends: Option<Ident>,
    /// Free attributes after `extends` is applied (own values override inherited ones),
    /// sorted by key. The span is where the effective value was written.
    pub attrs: Vec<(Ident, Spanned<Value>)>,
    /// Keys written in this environment's own block (for the E0404 shape check).
    pub own_keys: Vec<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: Ident,
    pub after: Vec<Ident>,
    pub when: Option<Expr>,
    /// Names of the jobs declared inside, in order.
    pub jobs: Vec<Ident>,
    pub span: Span,
}

/// Step attributes shared by jobs and the blocks of promotes and drills.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepSettings {
    pub timeout: Option<Spanned<Millis>>,
    pub retries: Option<Spanned<u32>>,
    pub backoff: Option<Spanned<Millis>>,
    pub env: Vec<(Ident, StrLit)>,
}

/// `deploy { run "…" retries = 5 }` and its siblings (`smoke`, `rollback`, `migrate`, `backup`,
/// `restore`, `verify`).
#[derive(Debug, Clone, PartialEq)]
pub struct StepBlock {
    pub steps: Vec<StrLit>,
    pub settings: StepSettings,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: Ident,
    /// The stage it was declared in, if any.
    pub stage: Option<Ident>,
    /// The template call it was made from (`cargo(...)`), for secondary labels.
    pub template: Option<TemplateUse>,
    pub steps: Vec<StrLit>,
    pub settings: StepSettings,
    pub needs: Vec<Ident>,
    /// Own `after` plus the enclosing stage's `after`.
    pub after: Vec<Ident>,
    pub secrets: Vec<Ident>,
    pub produces: Vec<Ident>,
    pub outputs: Vec<(Ident, Spanned<Type>)>,
    pub when: Option<Expr>,
    /// `matrix { os = ["linux", "macos"] }`, keys in declared order.
    pub matrix: Vec<(Ident, Vec<Spanned<String>>)>,
    pub shell: Option<Spanned<String>>,
    pub workdir: Option<Spanned<String>>,
    /// `outside_workspace = true`: `workdir` may leave the pipeline's directory (W0104).
    pub outside_workspace: Option<Spanned<bool>>,
    pub inherit_env: Vec<Spanned<String>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateUse {
    pub template: Ident,
    /// Where the template is defined.
    pub definition: Span,
    pub call: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub name: Ident,
    pub after: Vec<Ident>,
    pub requires: Vec<Expr>,
    pub warns: Vec<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// `None`: anyone but the initiator (unless `allow_self`).
    pub approvers: Option<Vec<Spanned<String>>>,
    pub quorum: Spanned<u32>,
    pub allow_self: bool,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationKind {
    /// Backwards compatible: the previous release still works after it.
    Expand,
    /// Destructive: the previous release cannot run against it (E0403 with a rollback).
    Contract,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Migrate {
    pub kind: Spanned<MigrationKind>,
    pub block: StepBlock,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// `canary`
    pub strategy: Ident,
    /// Percent points, as written.
    pub steps: Vec<Spanned<f64>>,
    pub pause: Option<Spanned<Millis>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub name: Ident,
    pub ty: Spanned<Type>,
    pub command: StrLit,
    pub every: Spanned<Millis>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub expr: Expr,
    pub window: Option<Spanned<Millis>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    pub duration: Spanned<Millis>,
    pub probes: Vec<Probe>,
    pub rollback_when: Vec<Condition>,
    pub warn_when: Vec<Condition>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Promote {
    /// The environment promoted to (`promote staging`).
    pub environment: Ident,
    pub after: Vec<Ident>,
    pub artifact: Option<Ident>,
    pub secrets: Vec<Ident>,
    pub when: Option<Expr>,
    pub approval: Option<Approval>,
    pub migrate: Option<Migrate>,
    pub rollout: Option<Rollout>,
    pub deploy: Option<StepBlock>,
    pub smoke: Option<StepBlock>,
    pub watch: Option<Watch>,
    pub rollback: Option<StepBlock>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    pub name: Ident,
    pub environment: Option<Ident>,
    pub secrets: Vec<Ident>,
    pub rto: Option<Spanned<Millis>>,
    pub rpo: Option<Spanned<Millis>>,
    /// `every = 30d`: how often the drill must pass.
    pub every: Option<Spanned<Millis>>,
    pub backup: Option<StepBlock>,
    pub restore: Option<StepBlock>,
    pub verify: Option<StepBlock>,
    pub span: Span,
}
