//! Validation of a plan read from disk (`pipe run plan.json`, resume, `pipe plan`): a corrupt or
//! hand-edited plan is refused, naming the node and field at fault, before anything runs.

use super::{
    ExprTree, Expression, Literal, Node, NodeKind, PLAN_SCHEMA, Plan, PromotePlan, Template,
    TemplatePart,
};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Why a plan cannot be run: where (`node \`test\`, field \`needs\``) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub location: String,
    pub problem: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.location, self.problem)
        }
    }
}

impl std::error::Error for PlanError {}

fn error(location: impl Into<String>, problem: impl Into<String>) -> PlanError {
    PlanError {
        location: location.into(),
        problem: problem.into(),
    }
}

fn node_field(node: &str, field: &str) -> String {
    format!("node `{node}`, field `{field}`")
}

impl Plan {
    /// Parses a plan's JSON and validates it: the one loader for plans read from disk.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        match serde_json::from_str::<Plan>(text) {
            Ok(plan) => plan.validate().map(|()| plan),
            // A plan of another schema version fails to parse for reasons that do not matter.
            Err(parse) => Err(wrong_schema(text).unwrap_or_else(|| error("", parse.to_string()))),
        }
    }

    /// Checks what the compiler guarantees and the runner relies on: the schema version, unique
    /// node ids, `needs` naming other existing nodes without a cycle, the fields each kind of
    /// node needs, the names promotes and drills refer to, and numeric ranges.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.schema != PLAN_SCHEMA {
            return Err(schema_error(&self.schema));
        }
        check_name("field `pipeline`", &self.pipeline)?;
        let ids = node_ids(&self.nodes)?;
        for node in &self.nodes {
            check_needs(node, &ids)?;
            self.check_node_fields(node)?;
        }
        check_acyclic(&self.nodes)?;
        for (name, promote) in &self.promotes {
            self.check_promote(name, promote, &ids)?;
        }
        self.check_names(&ids)
    }

    fn check_node_fields(&self, node: &Node) -> Result<(), PlanError> {
        let id = &node.id;
        check_node_literals(node)?;
        if node.kind == NodeKind::Gate && node.gate.is_none() {
            return Err(error(
                node_field(id, "gate"),
                "a gate node needs its conditions",
            ));
        }
        let promote_kind = !matches!(node.kind, NodeKind::Job | NodeKind::Gate);
        match &node.environment {
            Some(env) if !self.promotes.contains_key(env) => Err(error(
                node_field(id, "environment"),
                format!("no promote to `{env}` in this plan"),
            )),
            None if promote_kind => Err(error(
                node_field(id, "environment"),
                "a promote node needs its environment",
            )),
            _ => Ok(()),
        }
    }

    fn check_promote(
        &self,
        name: &str,
        promote: &PromotePlan,
        ids: &HashSet<&str>,
    ) -> Result<(), PlanError> {
        let at = |field: &str| format!("promote `{name}`, field `{field}`");
        if promote.environment != name {
            return Err(error(at("environment"), "differs from the promote's key"));
        }
        if !self.environments.contains_key(name) {
            return Err(error(at("environment"), format!("no environment `{name}`")));
        }
        if !self.artifacts.contains_key(&promote.artifact) {
            let artifact = &promote.artifact;
            return Err(error(at("artifact"), format!("no artifact `{artifact}`")));
        }
        if let Some(missing) = promote.nodes.iter().find(|n| !ids.contains(n.as_str())) {
            return Err(error(at("nodes"), format!("no node `{missing}`")));
        }
        let conditions = promote.watch.iter().flat_map(|watch| {
            let all = watch.rollback_when.iter().chain(&watch.warn_when);
            all.map(|c| &c.condition)
        });
        check_literals(promote.when.iter().chain(conditions), || at("when/watch"))?;
        if promote.approval.as_ref().is_some_and(|a| a.quorum == 0) {
            return Err(error(at("approval.quorum"), "must be at least 1"));
        }
        check_rollout(&promote.rollout.steps).map_err(|why| error(at("rollout.steps"), why))
    }

    /// Every name a plan uses as a file name or a reference points at something that exists.
    fn check_names(&self, ids: &HashSet<&str>) -> Result<(), PlanError> {
        for name in self.environments.keys() {
            check_name("field `environments`", name)?;
        }
        for (name, artifact) in &self.artifacts {
            check_name("field `artifacts`", name)?;
            if !ids.contains(artifact.produced_by.as_str()) {
                let by = &artifact.produced_by;
                let at = format!("artifact `{name}`, field `produced_by`");
                return Err(error(at, format!("no node `{by}`")));
            }
        }
        for (name, drill) in &self.drills {
            check_name("field `drills`", name)?;
            if !self.environments.contains_key(&drill.environment) {
                let at = format!("drill `{name}`, field `environment`");
                return Err(error(at, format!("no environment `{}`", drill.environment)));
            }
        }
        Ok(())
    }
}

fn schema_error(schema: &str) -> PlanError {
    error(
        "field `schema`",
        format!(
            "`{schema}` is not supported (this pipe reads `{PLAN_SCHEMA}`); compile the pipeline again"
        ),
    )
}

/// The schema error of a plan that did not parse, when its `schema` is another version.
fn wrong_schema(text: &str) -> Option<PlanError> {
    #[derive(serde::Deserialize)]
    struct SchemaOnly {
        schema: String,
    }
    let only: SchemaOnly = serde_json::from_str(text).ok()?;
    (only.schema != PLAN_SCHEMA).then(|| schema_error(&only.schema))
}

/// Pipeline, environment, artifact and drill names become file names: identifiers only.
fn check_name(location: &str, name: &str) -> Result<(), PlanError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Ok(());
    }
    Err(error(location, format!("`{name}` is not a name")))
}

fn node_ids(nodes: &[Node]) -> Result<HashSet<&str>, PlanError> {
    let mut ids = HashSet::with_capacity(nodes.len());
    for node in nodes {
        if node.id.is_empty() {
            return Err(error("field `nodes`", "a node has an empty id"));
        }
        if !ids.insert(node.id.as_str()) {
            return Err(error(format!("node `{}`", node.id), "listed twice"));
        }
    }
    Ok(ids)
}

fn check_needs(node: &Node, ids: &HashSet<&str>) -> Result<(), PlanError> {
    let mut seen = HashSet::new();
    for need in &node.needs {
        let at = || node_field(&node.id, "needs");
        if *need == node.id {
            return Err(error(at(), "the node needs itself"));
        }
        if !ids.contains(need.as_str()) {
            return Err(error(at(), format!("names `{need}`, which is not a node")));
        }
        if !seen.insert(need.as_str()) {
            return Err(error(at(), format!("names `{need}` twice")));
        }
    }
    Ok(())
}

/// Kahn's algorithm; a node left over is on (or behind) a cycle.
fn check_acyclic(nodes: &[Node]) -> Result<(), PlanError> {
    let mut waiting: HashMap<&str, usize> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.needs.len()))
        .collect();
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in nodes {
        for need in &node.needs {
            dependents.entry(need).or_default().push(&node.id);
        }
    }
    let mut ready: Vec<&str> = nodes
        .iter()
        .filter(|n| n.needs.is_empty())
        .map(|n| n.id.as_str())
        .collect();
    let mut done = 0;
    while let Some(id) = ready.pop() {
        done += 1;
        for dependent in dependents.get(id).into_iter().flatten() {
            if let Some(count) = waiting.get_mut(dependent) {
                *count -= 1;
                if *count == 0 {
                    ready.push(dependent);
                }
            }
        }
    }
    if done == nodes.len() {
        return Ok(());
    }
    let cycle = find_cycle(nodes, &waiting);
    let first = cycle.first().map_or("?", String::as_str);
    Err(error(
        node_field(first, "needs"),
        format!(
            "the needs form a cycle ({}): the nodes can never start",
            cycle.join(" → ")
        ),
    ))
}

/// A cycle among the nodes Kahn's algorithm could not start: from any of them, follow a need
/// that could not start either; after as many steps as there are nodes, the walk is on a cycle.
fn find_cycle(nodes: &[Node], waiting: &HashMap<&str, usize>) -> Vec<String> {
    let stuck = |id: &str| waiting.get(id).is_some_and(|c| *c > 0);
    let by_id: HashMap<&str, &Node> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let next = |id: &str| {
        by_id
            .get(id)
            .and_then(|n| n.needs.iter().find(|need| stuck(need)))
            .map(String::as_str)
    };
    let Some(mut at) = nodes.iter().map(|n| n.id.as_str()).find(|id| stuck(id)) else {
        return Vec::new();
    };
    for _ in 0..nodes.len() {
        at = next(at).unwrap_or(at);
    }
    let mut cycle = vec![at.to_string()];
    let mut walk = next(at);
    while let Some(id) = walk.filter(|id| *id != at && cycle.len() <= nodes.len()) {
        cycle.push(id.to_string());
        walk = next(id);
    }
    cycle.push(at.to_string());
    cycle
}

/// Percent points, strictly increasing, ending at 100 (what E0405 guarantees in source).
fn check_rollout(steps: &[f64]) -> Result<(), String> {
    if let Some(bad) = steps.iter().find(|s| !(0.0..=100.0).contains(*s)) {
        return Err(format!("{bad} is not a percentage between 0 and 100"));
    }
    if steps.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err("the steps must be strictly increasing".into());
    }
    if steps.last() != Some(&100.0) {
        return Err("the last step must be 100".into());
    }
    Ok(())
}

fn check_node_literals(node: &Node) -> Result<(), PlanError> {
    let id = &node.id;
    let expressions = node.when.iter().chain(
        node.gate
            .iter()
            .flat_map(|gate| gate.require.iter().chain(&gate.warn)),
    );
    check_literals(expressions, || node_field(id, "when/gate"))?;
    let templates = node.steps.iter().map(|s| &s.run).chain(node.env.values());
    check_literals(templates.flat_map(holes), || node_field(id, "steps/env"))
}

fn holes(template: &Template) -> impl Iterator<Item = &Expression> {
    template.parts.iter().filter_map(|part| match part {
        TemplatePart::Expr(expression) => Some(expression),
        TemplatePart::Text(_) => None,
    })
}

/// Literals the parser would have refused: a percentage outside 0–100, a number that is not
/// finite.
fn check_literals<'a>(
    expressions: impl IntoIterator<Item = &'a Expression>,
    location: impl Fn() -> String,
) -> Result<(), PlanError> {
    for expression in expressions {
        if let Some(bad) = bad_literal(&expression.tree) {
            let source = &expression.source;
            return Err(error(location(), format!("in `{source}`: {bad}")));
        }
    }
    Ok(())
}

fn bad_literal(tree: &ExprTree) -> Option<String> {
    match tree {
        ExprTree::Lit(Literal::Percent(p)) if !(0.0..=100.0).contains(p) => {
            Some(format!("{p}% is not a percentage between 0 and 100"))
        }
        ExprTree::Lit(Literal::Number(n)) if !n.is_finite() => Some(format!("{n} is not a number")),
        ExprTree::Not(inner) => bad_literal(inner),
        ExprTree::Binary { lhs, rhs, .. } => bad_literal(lhs).or_else(|| bad_literal(rhs)),
        _ => None,
    }
}
