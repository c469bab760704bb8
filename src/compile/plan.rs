//! The compiled plan (`pipe.plan/v1`): everything the runner needs, serialisable to JSON with
//! byte-identical output for the same source. Invariant: it never holds a secret value, only
//! secret names and where to read them.

use crate::check::program::{MigrationKind, SecretSource};
use crate::syntax::ast::{BinaryOp, Type};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod validate;
pub use validate::PlanError;

pub const PLAN_SCHEMA: &str = "pipe.plan/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    pub pipeline: String,
    /// SHA-256 of the entry file's bytes (hex); `resume` warns when the source has changed.
    pub source_sha256: String,
    /// The pipeline file as written on the command line; steps run in its directory.
    pub source_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Template>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Template>,
    /// In topological order, ties broken by id.
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentPlan>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, ArtifactPlan>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretPlan>,
    /// One per promoted environment, keyed by environment name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub promotes: BTreeMap<String, PromotePlan>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drills: BTreeMap<String, DrillPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Job,
    Gate,
    Approval,
    Migrate,
    Deploy,
    Smoke,
    Watch,
}

/// The id of a promote's node, `ENV.STEP` (`staging.deploy`), and the name a rollback's logs
/// go under (`staging.rollback`): the one place these ids are made.
pub fn promote_node_id(environment: &str, step: &str) -> String {
    format!("{environment}.{step}")
}

/// One DAG node. Which optional fields are set depends on `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    /// Direct predecessors, sorted.
    pub needs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Template>,
    /// Names of secrets this node's processes receive (as upper-case variables).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub produces: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Type>,
    /// Skip the node (and, for a promote, the rest of it) when false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
    /// Matrix values of this instance, in declared key order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matrix: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `workdir` may resolve outside the pipeline's directory (an explicit opt-in).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_workspace: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherit_env: Vec<String>,
    /// Promote nodes: the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Gate nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GatePlan>,
    /// The stage the job was declared in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub span: SourceSpan,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where an item was written, for run-time messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourceSpan {
    /// Shared by every span of one file: a large plan has a span per node and per step.
    pub file: std::sync::Arc<str>,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub run: Template,
    pub span: SourceSpan,
}

/// A string with `${{ }}` holes, evaluated at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplatePart {
    Text(String),
    Expr(Expression),
}

/// An expression with its source text (for dry runs and evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expression {
    pub source: String,
    pub tree: ExprTree,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExprTree {
    Lit(Literal),
    /// A dotted run-time name: `["jobs", "test", "outputs", "coverage"]`.
    Name(Vec<String>),
    Not(Box<ExprTree>),
    Binary {
        op: BinaryOp,
        lhs: Box<ExprTree>,
        rhs: Box<ExprTree>,
    },
}

/// A typed literal value. Durations are milliseconds; percents are percent points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "value")]
pub enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    Duration(u64),
    Percent(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatePlan {
    pub require: Vec<Expression>,
    pub warn: Vec<Expression>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentPlan {
    pub protected: bool,
    /// Free attributes (after `extends`), as `${{ env.KEY }}` sees them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Literal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactPlan {
    /// Relative to the pipeline file's directory.
    pub path: String,
    pub produced_by: String,
    /// `path` may resolve outside the pipeline's directory (an explicit opt-in).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_workspace: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretPlan {
    pub from: SecretSource,
    /// `None`: any environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
}

/// Step settings of a promote or drill block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StepBlockPlan {
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Template>,
}

/// Everything about one `promote ENV` that is not a DAG node of its own: the delivery
/// engine's instructions, including the compensation (`rollback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotePlan {
    pub environment: String,
    pub artifact: String,
    pub protected: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigratePlan>,
    pub rollout: RolloutPlan,
    pub deploy: StepBlockPlan,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<StepBlockPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchPlan>,
    pub rollback: StepBlockPlan,
    /// Ids of this promote's nodes, in execution order.
    pub nodes: Vec<String>,
    pub span: SourceSpan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalPlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Vec<String>>,
    pub quorum: u32,
    pub allow_self: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigratePlan {
    pub kind: MigrationKind,
    #[serde(flatten)]
    pub block: StepBlockPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutPlan {
    pub strategy: String,
    /// Percent points; the last is 100.
    pub steps: Vec<f64>,
    #[serde(default)]
    pub pause_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchPlan {
    pub duration_ms: u64,
    pub probes: Vec<ProbePlan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_when: Vec<ConditionPlan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warn_when: Vec<ConditionPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePlan {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Type,
    pub command: Template,
    pub every_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionPlan {
    pub condition: Expression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillPlan {
    pub environment: String,
    pub rto_ms: u64,
    pub rpo_ms: u64,
    /// `every`: how often the drill must pass; `pipe drill --due` runs it once this has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    pub backup: StepBlockPlan,
    pub restore: StepBlockPlan,
    pub verify: StepBlockPlan,
}

impl Plan {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Pretty JSON with a trailing newline: the on-disk and stdout form.
    pub fn to_json(&self) -> String {
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail, and every field of a plan serialises.
        let _ = self.write_json(&mut bytes);
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Writes the same bytes as [`Plan::to_json`] to `out`, without building them in memory.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }
}
