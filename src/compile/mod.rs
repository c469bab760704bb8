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
    let mut builder = NodeBuilder::new(program, sources);
    let nodes = builder.nodes();
    let mut dag = Dag::default();
    for node in &nodes {
        dag.add_node(&node.id);
    }
    for edge in builder.edges() {
        dag.add_edge(&edge.from, &edge.to, edge.because);
    }
    // Kahn's algorithm finds every cycle-free graph's order; only a graph it cannot order
    // needs the (costlier) search that names each cycle.
    let Some(order) = dag.topological_order() else {
        return Err(dag.cycle_diagnostics());
    };
    let mut slots: Vec<Option<plan::Node>> = nodes.into_iter().map(Some).collect();
    let ordered = order
        .into_iter()
        .filter_map(|index| {
            let mut node = slots.get_mut(index)?.take()?;
            node.needs = dag.predecessor_ids(index);
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

/// An edge the program implies, with the span of the reference that implies it.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    because: Span,
}
