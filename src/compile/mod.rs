//! Compile: turns the checked program into the DAG (petgraph) and the `pipe.plan/v1` plan.

pub mod plan;
