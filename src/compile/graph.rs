//! Renders a plan's DAG for humans: Graphviz `dot` and Mermaid `flowchart`. Stages and
//! promotes are clusters, each promote's rollback a dashed path, drills sit by their environment.

use super::plan::{NodeKind, Plan};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

/// What to leave out of a drawing.
#[derive(Debug, Clone, Copy, Default)]
pub struct GraphOptions {
    /// Drop an edge `a → b` when `b` already reaches `a` through another of its needs: the
    /// drawing keeps the same order with fewer lines.
    pub hide_implied: bool,
}

/// The drawing, independent of the output syntax: boxes grouped into clusters, plain edges, and
/// the dashed edges into each promote's rollback.
struct Drawing {
    nodes: Vec<Vertex>,
    /// (cluster id, label) in first-seen order; `None` entries of `Vertex::cluster` are top level.
    clusters: Vec<(String, String)>,
    edges: Vec<(usize, usize)>,
    dashed: Vec<(usize, usize)>,
}

struct Vertex {
    id: String,
    label: String,
    shape: Shape,
    cluster: Option<usize>,
}

#[derive(Clone, Copy)]
enum Shape {
    Job,
    Gate,
    Approval,
    Step,
    Rollback,
    Drill,
}

pub fn to_dot(plan: &Plan, options: GraphOptions) -> String {
    let drawing = Drawing::of(plan, options);
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", escape(&plan.pipeline));
    for (index, (id, label)) in drawing.clusters.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph \"cluster_{}\" {{\n    label=\"{}\";\n    style=rounded;",
            escape(id),
            escape(label)
        );
        for node in drawing.nodes.iter().filter(|n| n.cluster == Some(index)) {
            out.push_str("    ");
            out.push_str(&dot_node(node));
        }
        out.push_str("  }\n");
    }
    for node in drawing.nodes.iter().filter(|n| n.cluster.is_none()) {
        out.push_str("  ");
        out.push_str(&dot_node(node));
    }
    for &(from, to) in &drawing.edges {
        let (from, to) = (&drawing.nodes[from].id, &drawing.nodes[to].id);
        let _ = writeln!(out, "  \"{}\" -> \"{}\";", escape(from), escape(to));
    }
    for &(from, to) in &drawing.dashed {
        let (from, to) = (&drawing.nodes[from].id, &drawing.nodes[to].id);
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [style=dashed, color=firebrick];",
            escape(from),
            escape(to)
        );
    }
    out.push_str("}\n");
    out
}

fn dot_node(node: &Vertex) -> String {
    let style = match node.shape {
        Shape::Job => "shape=box",
        Shape::Gate => "shape=diamond",
        Shape::Approval => "shape=house",
        Shape::Step => "shape=ellipse",
        Shape::Rollback => "shape=octagon, style=dashed, color=firebrick",
        Shape::Drill => "shape=cylinder",
    };
    format!(
        "\"{}\" [label=\"{}\", {style}];\n",
        escape(&node.id),
        escape(&node.label)
    )
}

pub fn to_mermaid(plan: &Plan, options: GraphOptions) -> String {
    let drawing = Drawing::of(plan, options);
    let mut out = String::from("flowchart LR\n");
    for (index, (_, label)) in drawing.clusters.iter().enumerate() {
        let _ = writeln!(out, "  subgraph c{index} [\"{}\"]", mermaid_text(label));
        for (i, node) in drawing.nodes.iter().enumerate() {
            if node.cluster == Some(index) {
                let _ = writeln!(out, "    {}", mermaid_node(i, node));
            }
        }
        out.push_str("  end\n");
    }
    for (i, node) in drawing.nodes.iter().enumerate() {
        if node.cluster.is_none() {
            let _ = writeln!(out, "  {}", mermaid_node(i, node));
        }
    }
    for &(from, to) in &drawing.edges {
        let _ = writeln!(out, "  n{from} --> n{to}");
    }
    for &(from, to) in &drawing.dashed {
        let _ = writeln!(out, "  n{from} -.-> n{to}");
    }
    out
}

fn mermaid_node(index: usize, node: &Vertex) -> String {
    let label = mermaid_text(&node.label);
    match node.shape {
        Shape::Gate => format!("n{index}{{\"{label}\"}}"),
        Shape::Job => format!("n{index}[\"{label}\"]"),
        Shape::Approval => format!("n{index}[/\"{label}\"\\]"),
        Shape::Rollback => format!("n{index}{{{{\"{label}\"}}}}"),
        Shape::Drill => format!("n{index}[(\"{label}\")]"),
        Shape::Step => format!("n{index}([\"{label}\"])"),
    }
}

/// Mermaid labels are quoted strings with `<br>` for line breaks and no raw `"`.
fn mermaid_text(text: &str) -> String {
    text.replace('"', "'").replace('\n', "<br>")
}

impl Drawing {
    fn of(plan: &Plan, options: GraphOptions) -> Drawing {
        let mut drawing = Drawing {
            nodes: Vec::with_capacity(plan.nodes.len()),
            clusters: Vec::new(),
            edges: Vec::new(),
            dashed: Vec::new(),
        };
        let mut cluster_of: HashMap<String, usize> = HashMap::new();
        for node in &plan.nodes {
            let cluster = match (&node.environment, &node.stage) {
                (Some(environment), _) => Some(drawing.cluster(
                    &mut cluster_of,
                    format!("promote_{environment}"),
                    promote_label(plan, environment),
                )),
                (None, Some(stage)) => Some(drawing.cluster(
                    &mut cluster_of,
                    format!("stage_{stage}"),
                    format!("stage {stage}"),
                )),
                (None, None) => None,
            };
            let mut label = node.id.clone();
            if let Some(when) = &node.when {
                let _ = write!(label, "\nwhen {}", when.source);
            }
            drawing.nodes.push(Vertex {
                id: node.id.clone(),
                label,
                shape: shape_of(node.kind),
                cluster,
            });
        }
        drawing.edges = need_edges(plan, options);
        drawing.add_rollbacks(plan, &cluster_of);
        drawing.add_drills(plan, &mut cluster_of);
        drawing
    }

    fn cluster(&mut self, index: &mut HashMap<String, usize>, id: String, label: String) -> usize {
        *index.entry(id.clone()).or_insert_with(|| {
            self.clusters.push((id, label));
            self.clusters.len() - 1
        })
    }

    /// One rollback box per promote, reached by a dashed edge from every step whose failure
    /// rolls the environment back.
    fn add_rollbacks(&mut self, plan: &Plan, cluster_of: &HashMap<String, usize>) {
        let index: HashMap<String, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        for (environment, promote) in &plan.promotes {
            let rollback = self.nodes.len();
            self.nodes.push(Vertex {
                id: super::plan::promote_node_id(environment, "rollback"),
                label: format!("rollback {environment}\nto the previous stable release"),
                shape: Shape::Rollback,
                cluster: cluster_of.get(&format!("promote_{environment}")).copied(),
            });
            for id in &promote.nodes {
                let triggers = plan.node(id).is_some_and(|node| {
                    matches!(
                        node.kind,
                        NodeKind::Migrate | NodeKind::Deploy | NodeKind::Smoke | NodeKind::Watch
                    )
                });
                if let (true, Some(&from)) = (triggers, index.get(id)) {
                    self.dashed.push((from, rollback));
                }
            }
        }
    }

    /// Each drill beside its environment's promote (or in a cluster of its own).
    fn add_drills(&mut self, plan: &Plan, cluster_of: &mut HashMap<String, usize>) {
        for (name, drill) in &plan.drills {
            let cluster = match cluster_of.get(&format!("promote_{}", drill.environment)) {
                Some(&cluster) => cluster,
                None => self.cluster(cluster_of, "drills".into(), "drills".into()),
            };
            self.nodes.push(Vertex {
                id: format!("drill.{name}"),
                label: format!("drill {name}\nrestores {}", drill.environment),
                shape: Shape::Drill,
                cluster: Some(cluster),
            });
        }
    }
}

fn promote_label(plan: &Plan, environment: &str) -> String {
    match plan.promotes.get(environment).and_then(|p| p.when.as_ref()) {
        Some(when) => format!("promote {environment}\nwhen {}", when.source),
        None => format!("promote {environment}"),
    }
}

fn shape_of(kind: NodeKind) -> Shape {
    match kind {
        NodeKind::Job => Shape::Job,
        NodeKind::Gate => Shape::Gate,
        NodeKind::Approval => Shape::Approval,
        NodeKind::Migrate | NodeKind::Deploy | NodeKind::Smoke | NodeKind::Watch => Shape::Step,
    }
}

/// The `needs` edges by node index; with `hide_implied`, only those no other path implies.
fn need_edges(plan: &Plan, options: GraphOptions) -> Vec<(usize, usize)> {
    let index: HashMap<&str, usize> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let needs: Vec<Vec<usize>> = plan
        .nodes
        .iter()
        .map(|n| {
            n.needs
                .iter()
                .filter_map(|id| index.get(id.as_str()).copied())
                .collect()
        })
        .collect();
    let ancestors = options.hide_implied.then(|| ancestors_of(&needs));
    let mut edges = Vec::new();
    for (to, froms) in needs.iter().enumerate() {
        for &from in froms {
            let implied = ancestors.as_ref().is_some_and(|ancestors| {
                froms
                    .iter()
                    .any(|&other| other != from && ancestors[other].contains(&from))
            });
            if !implied {
                edges.push((from, to));
            }
        }
    }
    edges
}

/// Every node's ancestors. The plan lists nodes in topological order, so one pass suffices.
fn ancestors_of(needs: &[Vec<usize>]) -> Vec<BTreeSet<usize>> {
    let mut ancestors: Vec<BTreeSet<usize>> = Vec::with_capacity(needs.len());
    for froms in needs {
        let mut set = BTreeSet::new();
        for &from in froms {
            if let Some(theirs) = ancestors.get(from) {
                set.extend(theirs.iter().copied());
            }
            set.insert(from);
        }
        ancestors.push(set);
    }
    ancestors
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
