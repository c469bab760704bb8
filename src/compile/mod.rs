//! Compile: turns the checked program into the DAG (petgraph) and the `pipe.plan/v1` plan.
//! Pure: no IO; the same program always gives the same plan, byte for byte.

mod dag;
pub mod expr;
pub mod graph;
mod nodes;
pub mod plan;

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

#[cfg(test)]
mod tests {
    use crate::check::testing::MemoryLoader;
    use crate::compilation::compile_source;

    /// Each node id with its sorted `needs`, in plan order.
    fn needs_by_node(source: &str) -> Vec<(String, Vec<String>)> {
        let loader = MemoryLoader {
            files: Default::default(),
        };
        let compilation = compile_source("pipeline.pipe", source, &loader);
        let rendered = compilation.render(false);
        let Some(plan) = compilation.plan else {
            panic!("expected a plan, got:\n{rendered}");
        };
        plan.nodes.into_iter().map(|n| (n.id, n.needs)).collect()
    }

    #[test]
    fn matrix_stage_gate_and_promote_references_become_edges_between_the_right_nodes() {
        let nodes = needs_by_node(
            r#"pipeline p {
              environment staging { url = "http://localhost" }
              artifact app { path = "app" }
              stage checks {
                job lint { run "true" }
                job test {
                  matrix { os = ["linux", "mac"]  rust = ["stable", "beta", "nightly"] }
                  run "true"
                }
              }
              job build { run "true"  after = [checks]  produces = [app] }
              gate ready { require jobs.build.succeeded }
              promote staging {
                after = [ready]
                artifact = app
                deploy { run "true" }
                rollback { run "true" }
              }
              job notify { run "true"  after = [staging] }
            }"#,
        );
        let ids: Vec<&str> = nodes.iter().map(|(id, _)| id.as_str()).collect();
        let needs = |id: &str| {
            nodes
                .iter()
                .find(|(n, _)| n == id)
                .map(|(_, needs)| needs.join(" "))
                .unwrap_or_default()
        };
        let matrix: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| id.starts_with("test["))
            .collect();
        assert_eq!(
            matrix,
            [
                "test[linux,beta]",
                "test[linux,nightly]",
                "test[linux,stable]",
                "test[mac,beta]",
                "test[mac,nightly]",
                "test[mac,stable]"
            ]
        );
        assert_eq!(
            needs("build"),
            "lint test[linux,beta] test[linux,nightly] test[linux,stable] \
             test[mac,beta] test[mac,nightly] test[mac,stable]"
        );
        assert_eq!(needs("ready"), "build");
        assert_eq!(needs("staging.deploy"), "build ready");
        assert_eq!(needs("notify"), "staging.deploy");
    }
}
