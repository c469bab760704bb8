//! Renders a plan's DAG for humans: Graphviz `dot` and Mermaid `flowchart`.

use super::plan::{NodeKind, Plan};
use std::fmt::Write;

pub fn to_dot(plan: &Plan) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", escape(&plan.pipeline));
    for node in &plan.nodes {
        let shape = match node.kind {
            NodeKind::Job => "box",
            NodeKind::Gate => "diamond",
            NodeKind::Approval => "house",
            _ => "ellipse",
        };
        let _ = writeln!(out, "  \"{}\" [shape={shape}];", escape(&node.id));
    }
    for node in &plan.nodes {
        for need in &node.needs {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", escape(need), escape(&node.id));
        }
    }
    out.push_str("}\n");
    out
}

pub fn to_mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    for (i, node) in plan.nodes.iter().enumerate() {
        let label = node.id.replace('"', "'");
        let shape = match node.kind {
            NodeKind::Gate => format!("{{\"{label}\"}}"),
            NodeKind::Job => format!("[\"{label}\"]"),
            _ => format!("([\"{label}\"])"),
        };
        let _ = writeln!(out, "  n{i}{shape}");
    }
    let index: std::collections::HashMap<&str, usize> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    for (i, node) in plan.nodes.iter().enumerate() {
        for need in &node.needs {
            if let Some(from) = index.get(need.as_str()) {
                let _ = writeln!(out, "  n{from} --> n{i}");
            }
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
