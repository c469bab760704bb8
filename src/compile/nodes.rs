//! Builds plan nodes and the edges between them from the checked program: matrix expansion,
//! stage and promote references, artifacts, and the implicit edges of `jobs.X` reads.

mod promote;

use super::Edge;
use super::expr::{Lowerer, StaticNames, value_literal};
use super::plan::{
    ArtifactPlan, EnvironmentPlan, ExprTree, Expression, GatePlan, Literal, Node, NodeKind,
    SecretPlan, SourceSpan, Step, Template,
};
use crate::check::program::{Gate, Job, Program, StepSettings};
use crate::diagnostics::{SourceMap, Span};
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Ident, Segment, StrLit};
use promote::promote_steps;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// One node of a job: its id and, for a matrix job, the values of this combination.
pub(super) type Instance = (String, Vec<(String, String)>);

pub(super) struct NodeBuilder<'a> {
    pub(super) program: &'a Program,
    pub(super) sources: &'a SourceMap,
    /// Each source file's name, shared by the spans that point into it.
    file_names: Vec<std::sync::Arc<str>>,
    /// What each name in `needs`/`after` stands for. A hash map: it is looked up once per
    /// reference, and nothing iterates it, so order cannot leak into the plan.
    names: HashMap<&'a str, Named>,
    /// Where each item's nodes start in the node list: jobs (one node per matrix combination),
    /// then gates, then promotes, each in program order; a final entry closes the last range.
    first_node: Vec<usize>,
}

/// An item that `needs`/`after` can name, by its position in the program.
#[derive(Debug, Clone, Copy)]
enum Named {
    Job(usize),
    Stage(usize),
    Gate(usize),
    Promote(usize),
}

impl<'a> NodeBuilder<'a> {
    pub(super) fn new(program: &'a Program, sources: &'a SourceMap) -> NodeBuilder<'a> {
        let file_names = sources
            .files()
            .map(|(_, f)| f.name.as_str().into())
            .collect();
        NodeBuilder {
            program,
            sources,
            file_names,
            names: named_items(program),
            first_node: first_nodes(program),
        }
    }

    pub(super) fn lowerer(&self) -> Lowerer<'a> {
        Lowerer {
            sources: self.sources,
        }
    }

    pub(super) fn span(&self, span: Span) -> SourceSpan {
        let (line, column) = self.sources.line_col(span.file, span.start);
        let file = self
            .file_names
            .get(span.file as usize)
            .cloned()
            .unwrap_or_else(|| self.sources.name(span.file).into());
        SourceSpan { file, line, column }
    }

    /// Every node without its `needs`, in the layout of `first_node`. Built in program order:
    /// walking the jobs in plan order instead reads them all over memory.
    pub(super) fn nodes(&self) -> Vec<Node> {
        let mut nodes = Vec::with_capacity(self.first_node.last().copied().unwrap_or_default());
        for job in &self.program.jobs {
            let instances = (0..matrix_size(job)).map(|i| matrix_instance(job, i));
            nodes.extend(instances.map(|instance| self.job_node(job, instance)));
        }
        nodes.extend(self.program.gates.iter().map(|gate| self.gate_node(gate)));
        for promote in &self.program.promotes {
            nodes.extend(self.promote_nodes(promote));
        }
        nodes
    }

    fn gate_node(&self, gate: &Gate) -> Node {
        let lower = self.lowerer();
        let names = StaticNames::default();
        let mut node = self.bare_node(&gate.name.name, NodeKind::Gate, gate.span);
        let expressions =
            |list: &[Expr]| list.iter().map(|e| lower.expression(e, &names)).collect();
        node.gate = Some(GatePlan {
            require: expressions(&gate.requires),
            warn: expressions(&gate.warns),
        });
        node
    }

    pub(super) fn bare_node(&self, id: &str, kind: NodeKind, span: Span) -> Node {
        Node {
            id: id.to_string(),
            kind,
            needs: Vec::new(),
            steps: Vec::new(),
            timeout_s: None,
            retries: 0,
            backoff_ms: None,
            env: BTreeMap::new(),
            secrets: Vec::new(),
            produces: Vec::new(),
            outputs: BTreeMap::new(),
            when: None,
            matrix: Vec::new(),
            shell: None,
            workdir: None,
            outside_workspace: false,
            inherit_env: Vec::new(),
            environment: None,
            gate: None,
            stage: None,
            span: self.span(span),
        }
    }

    /// The node of one matrix combination of `job` (the only one without a matrix).
    fn job_node(&self, job: &Job, (id, matrix): Instance) -> Node {
        let stage_when = match job
            .stage
            .as_ref()
            .and_then(|s| self.names.get(s.name.as_str()))
        {
            Some(Named::Stage(stage)) => self.program.stages.get(*stage),
            _ => None,
        }
        .and_then(|stage| stage.when.as_ref());
        let mut names = StaticNames::default();
        for (key, value) in &matrix {
            names = names.with(format!("matrix.{key}"), Literal::String(value.clone()));
        }
        let lower = self.lowerer();
        let mut node = self.bare_node(&id, NodeKind::Job, job.span);
        node.steps = self.steps(&job.steps, &names);
        self.apply_settings(&mut node, &job.settings, &names);
        node.secrets = names_of(&job.secrets);
        node.produces = names_of(&job.produces);
        node.outputs = job
            .outputs
            .iter()
            .map(|(k, t)| (k.name.clone(), t.value.clone()))
            .collect();
        let own = job.when.as_ref().map(|w| lower.expression(w, &names));
        let staged = stage_when.map(|w| lower.expression(w, &names));
        node.when = and_expression(own, staged);
        node.matrix = matrix;
        node.shell = job.shell.as_ref().map(|s| s.value.clone());
        node.workdir = job.workdir.as_ref().map(|s| s.value.clone());
        node.outside_workspace = opted_out(&job.outside_workspace);
        node.inherit_env = job.inherit_env.iter().map(|s| s.value.clone()).collect();
        node.stage = job.stage.as_ref().map(|s| s.name.clone());
        node
    }

    pub(super) fn steps(&self, steps: &[StrLit], names: &StaticNames) -> Vec<Step> {
        steps
            .iter()
            .map(|s| Step {
                run: self.lowerer().template(s, names),
                span: self.span(s.span),
            })
            .collect()
    }

    fn apply_settings(&self, node: &mut Node, settings: &StepSettings, names: &StaticNames) {
        node.timeout_s = settings.timeout.as_ref().map(|t| t.value.div_ceil(1000));
        node.retries = settings.retries.as_ref().map_or(0, |r| r.value);
        node.backoff_ms = settings.backoff.as_ref().map(|b| b.value);
        node.env = self.env_map(&settings.env, names);
    }

    pub(super) fn env_map(
        &self,
        env: &[(Ident, StrLit)],
        names: &StaticNames,
    ) -> BTreeMap<String, Template> {
        env.iter()
            .map(|(k, v)| (k.name.clone(), self.lowerer().template(v, names)))
            .collect()
    }

    pub(super) fn pipeline_env(&self) -> BTreeMap<String, Template> {
        self.env_map(&self.program.env, &StaticNames::default())
    }

    pub(super) fn environments(&self) -> BTreeMap<String, EnvironmentPlan> {
        self.program
            .environments
            .iter()
            .map(|e| {
                let attributes = e
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.name.clone(), value_literal(&v.value)))
                    .collect();
                let plan = EnvironmentPlan {
                    protected: e.protected.value,
                    attributes,
                };
                (e.name.name.clone(), plan)
            })
            .collect()
    }

    pub(super) fn artifacts(&self) -> BTreeMap<String, ArtifactPlan> {
        self.program
            .artifacts
            .iter()
            .map(|a| {
                let produced_by = self
                    .producers(&a.name.name)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let plan = ArtifactPlan {
                    path: a.path.value.clone(),
                    produced_by,
                    outside_workspace: opted_out(&a.outside_workspace),
                };
                (a.name.name.clone(), plan)
            })
            .collect()
    }

    /// Node ids of the jobs that list `artifact` in `produces`.
    pub(super) fn producers(&self, artifact: &str) -> Vec<String> {
        self.program
            .jobs
            .iter()
            .filter(|j| j.produces.iter().any(|p| p.name == artifact))
            .flat_map(|j| (0..matrix_size(j)).map(|i| matrix_instance(j, i).0))
            .collect()
    }

    /// Node indices of the jobs that list `artifact` in `produces`.
    pub(super) fn producer_nodes(&self, artifact: &str) -> Vec<usize> {
        let jobs = self.program.jobs.iter().enumerate();
        jobs.filter(|(_, j)| j.produces.iter().any(|p| p.name == artifact))
            .flat_map(|(i, _)| self.job_range(i))
            .collect()
    }

    pub(super) fn secrets(&self) -> BTreeMap<String, SecretPlan> {
        self.program
            .secrets
            .iter()
            .map(|s| {
                let plan = SecretPlan {
                    from: s.source.value.clone(),
                    scope: s.scope.as_ref().map(|scope| names_of(scope)),
                };
                (s.name.name.clone(), plan)
            })
            .collect()
    }

    /// The nodes of the item at `position` in the layout of `first_node`.
    fn item_nodes(&self, position: usize) -> Range<usize> {
        let start = self.first_node.get(position).copied().unwrap_or_default();
        let end = self.first_node.get(position + 1).copied().unwrap_or(start);
        start..end
    }

    pub(super) fn job_range(&self, job: usize) -> Range<usize> {
        self.item_nodes(job)
    }

    pub(super) fn gate_range(&self, gate: usize) -> Range<usize> {
        self.item_nodes(self.program.jobs.len() + gate)
    }

    pub(super) fn promote_range(&self, promote: usize) -> Range<usize> {
        let program = self.program;
        self.item_nodes(program.jobs.len() + program.gates.len() + promote)
    }

    fn job_nodes_named(&self, name: &str) -> Range<usize> {
        match self.names.get(name) {
            Some(Named::Job(job)) => self.job_range(*job),
            _ => 0..0,
        }
    }

    /// The nodes a job, gate or promote named in `needs`/`after` stands for: a job's
    /// instances, the gate, or the final node of the promote to that environment. (A stage
    /// stands for its jobs: see `reference_edges`.)
    fn named_range(&self, named: Named) -> Range<usize> {
        match named {
            Named::Job(job) => self.job_range(job),
            Named::Gate(gate) => self.gate_range(gate),
            Named::Promote(promote) => {
                let nodes = self.promote_range(promote);
                nodes.end.saturating_sub(1).max(nodes.start)..nodes.end
            }
            Named::Stage(_) => 0..0,
        }
    }

    pub(super) fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (position, job) in self.program.jobs.iter().enumerate() {
            let readers = self.job_range(position);
            let references = job.needs.iter().chain(&job.after);
            self.reference_edges(references, readers.clone(), &mut edges);
            let mut reads = Vec::new();
            job.steps
                .iter()
                .for_each(|s| job_reads_in_text(s, &mut reads));
            job.settings
                .env
                .iter()
                .for_each(|(_, v)| job_reads_in_text(v, &mut reads));
            if let Some(when) = &job.when {
                job_reads(when, &mut reads);
            }
            self.read_edges(&reads, readers, &mut edges);
        }
        for (position, gate) in self.program.gates.iter().enumerate() {
            let readers = self.gate_range(position);
            self.reference_edges(gate.after.iter(), readers.clone(), &mut edges);
            let mut reads = Vec::new();
            gate.requires
                .iter()
                .chain(&gate.warns)
                .for_each(|e| job_reads(e, &mut reads));
            self.read_edges(&reads, readers, &mut edges);
        }
        for (position, promote) in self.program.promotes.iter().enumerate() {
            self.promote_edges(position, promote, &mut edges);
        }
        edges
    }

    pub(super) fn reference_edges<'r>(
        &self,
        references: impl Iterator<Item = &'r Ident>,
        readers: Range<usize>,
        edges: &mut Vec<Edge>,
    ) {
        for reference in references {
            let because = reference.span;
            match self.names.get(reference.name.as_str()) {
                Some(Named::Stage(stage)) => {
                    let jobs = self.program.stages.get(*stage).into_iter();
                    for job in jobs.flat_map(|s| &s.jobs) {
                        for from in self.job_nodes_named(&job.name) {
                            push_edges(edges, from, readers.clone(), because);
                        }
                    }
                }
                Some(&named) => {
                    for from in self.named_range(named) {
                        push_edges(edges, from, readers.clone(), because);
                    }
                }
                None => {}
            }
        }
    }

    /// `jobs.X.…` read by an item makes every instance of X upstream of it.
    pub(super) fn read_edges(&self, reads: &[Ident], readers: Range<usize>, edges: &mut Vec<Edge>) {
        for read in reads {
            for from in self.job_nodes_named(&read.name) {
                push_edges(edges, from, readers.clone(), read.span);
            }
        }
    }
}

/// `from → to` for every node `to` in `readers`.
pub(super) fn push_edges(edges: &mut Vec<Edge>, from: usize, readers: Range<usize>, because: Span) {
    edges.extend(readers.map(|to| Edge { from, to, because }));
}

/// Names that `needs`/`after` can use. When two items share a name (the checker reports
/// that), a job wins over a stage, a stage over a gate, a gate over a promote.
fn named_items(program: &Program) -> HashMap<&str, Named> {
    let mut names = HashMap::with_capacity(program.jobs.len() + program.gates.len());
    let promotes = program.promotes.iter().enumerate();
    for (i, p) in promotes {
        names.insert(p.environment.name.as_str(), Named::Promote(i));
    }
    for (i, g) in program.gates.iter().enumerate() {
        names.insert(g.name.name.as_str(), Named::Gate(i));
    }
    for (i, s) in program.stages.iter().enumerate() {
        names.insert(s.name.name.as_str(), Named::Stage(i));
    }
    for (i, j) in program.jobs.iter().enumerate() {
        names.insert(j.name.name.as_str(), Named::Job(i));
    }
    names
}

/// The start of each item's nodes in the order `NodeBuilder::nodes` emits them, plus the end.
fn first_nodes(program: &Program) -> Vec<usize> {
    let counts = program
        .jobs
        .iter()
        .map(matrix_size)
        .chain(program.gates.iter().map(|_| 1))
        .chain(program.promotes.iter().map(|p| promote_steps(p).len()));
    let mut first = Vec::with_capacity(program.jobs.len() + program.gates.len() + 1);
    let mut next = 0;
    first.push(next);
    for count in counts {
        next += count;
        first.push(next);
    }
    first
}

/// How many nodes a job has: the product of its matrix's value counts (1 without a matrix).
fn matrix_size(job: &Job) -> usize {
    job.matrix.iter().map(|(_, values)| values.len()).product()
}

/// Job names read as `jobs.X.…` in an expression, with the span of the whole path.
pub(super) fn job_reads(expr: &Expr, out: &mut Vec<Ident>) {
    match &expr.kind {
        ExprKind::Path(parts) => {
            if let [root, job, ..] = parts.as_slice()
                && root.name == "jobs"
            {
                out.push(Ident {
                    name: job.name.clone(),
                    span: expr.span,
                });
            }
        }
        ExprKind::Not(inner) => job_reads(inner, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            job_reads(lhs, out);
            job_reads(rhs, out);
        }
        ExprKind::List(items) => items.iter().for_each(|e| job_reads(e, out)),
        ExprKind::Str(text) => job_reads_in_text(text, out),
        ExprKind::Call(call) => call.args.iter().for_each(|a| job_reads(&a.value, out)),
        ExprKind::Number(_) | ExprKind::Bool(_) | ExprKind::Duration(_) | ExprKind::Percent(_) => {}
    }
}

pub(super) fn job_reads_in_text(text: &StrLit, out: &mut Vec<Ident>) {
    for segment in &text.segments {
        if let Segment::Interp(expr) = segment {
            job_reads(expr, out);
        }
    }
}

fn names_of(idents: &[Ident]) -> Vec<String> {
    idents.iter().map(|i| i.name.clone()).collect()
}

/// `a and b`, where either may be absent (a job's own `when` and its stage's).
fn and_expression(a: Option<Expression>, b: Option<Expression>) -> Option<Expression> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Expression {
            source: format!("({}) and ({})", a.source, b.source),
            tree: ExprTree::Binary {
                op: BinaryOp::And,
                lhs: Box::new(a.tree),
                rhs: Box::new(b.tree),
            },
        }),
        (a, b) => a.or(b),
    }
}

/// Combination number `position` of a job's matrix, counting with the last key varying
/// fastest (`test[linux,stable]`, `test[linux,beta]`, `test[mac,stable]`, …), and its node id.
fn matrix_instance(job: &Job, mut position: usize) -> Instance {
    let mut combo = Vec::with_capacity(job.matrix.len());
    for (key, values) in job.matrix.iter().rev() {
        let count = values.len().max(1);
        if let Some(value) = values.get(position % count) {
            combo.push((key.name.clone(), value.value.clone()));
        }
        position /= count;
    }
    combo.reverse();
    let id = if combo.is_empty() {
        job.name.name.clone()
    } else {
        let values: Vec<&str> = combo.iter().map(|(_, v)| v.as_str()).collect();
        format!("{}[{}]", job.name.name, values.join(","))
    };
    (id, combo)
}

/// Whether an item set `outside_workspace = true`.
fn opted_out(flag: &Option<crate::check::program::Spanned<bool>>) -> bool {
    flag.as_ref().is_some_and(|flag| flag.value)
}
