//! Compile: turns the checked program into the DAG (petgraph) and the `pipe.plan/v1` plan.
//! Pure: no IO; the same program always gives the same plan, byte for byte.

mod dag;
pub mod expr;
pub mod graph;
mod nodes;
pub mod plan;
mod promote;

use crate::check::program::Program;
use crate::diagnostics::{Diagnostic, FileId, SourceMap, Span};
use dag::Dag;
use nodes::NodeBuilder;
use plan::{PLAN_SCHEMA, Plan};
use sha2::{Digest, Sha256};

/// Compiles a checked program. Errors are dependency cycles (E0301), the only static problem
/// that needs the whole graph.
pub fn compile(
    program: &Program,
    sources: &SourceMap,
    entry: FileId,
) -> Result<Plan, Vec<Diagnostic>> {
    let builder = NodeBuilder::new(program, sources);
    let nodes = builder.nodes();
    let edges = builder.edges();
    let (order, needs) = {
        let dag = Dag::new(nodes.iter().map(|n| n.id.as_str()).collect(), &edges);
        // Kahn's algorithm finds every cycle-free graph's order; only a graph it cannot order
        // needs the (costlier) search that names each cycle.
        let Some(order) = dag.topological_order() else {
            return Err(dag.cycle_diagnostics());
        };
        let needs: Vec<Vec<String>> = order.iter().map(|&i| dag.predecessor_ids(i)).collect();
        (order, needs)
    };
    let mut slots: Vec<Option<plan::Node>> = nodes.into_iter().map(Some).collect();
    let ordered = order
        .into_iter()
        .zip(needs)
        .filter_map(|(index, needs)| {
            let mut node = slots.get_mut(index)?.take()?;
            node.needs = needs;
            Some(node)
        })
        .collect();
    Ok(Plan {
        schema: PLAN_SCHEMA.to_string(),
        pipeline: program.name.name.clone(),
        source_sha256: hex::encode(Sha256::digest(sources.text(entry).as_bytes())),
        source_file: sources.name(entry).to_string(),
        version: program
            .version
            .as_ref()
            .map(|v| builder.lowerer().template(v, &Default::default())),
        env: builder.pipeline_env(),
        nodes: ordered,
        environments: builder.environments(),
        artifacts: builder.artifacts(),
        secrets: builder.secrets(),
        promotes: builder.promotes(),
        drills: builder.drills(),
    })
}

/// An edge the program implies, between nodes by their index in the node list, with the span
/// of the reference that implies it.
#[derive(Debug, Clone, Copy)]
struct Edge {
    from: usize,
    to: usize,
    because: Span,
}
