//! The plan's DAG by index: node ids, predecessors and dependents as vectors, so the scheduler
//! reacts to each transition in time proportional to the node's edges, not the plan's size.

use crate::compile::plan::Plan;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub ids: Vec<String>,
    index: HashMap<String, usize>,
    /// Predecessors in the plan (unknown ids are dropped).
    pub needs: Vec<Vec<usize>>,
    pub dependents: Vec<Vec<usize>>,
}

impl Graph {
    pub fn new(plan: &Plan) -> Graph {
        let ids: Vec<String> = plan.nodes.iter().map(|n| n.id.clone()).collect();
        let index: HashMap<String, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let mut needs = vec![Vec::new(); ids.len()];
        let mut dependents = vec![Vec::new(); ids.len()];
        for (i, node) in plan.nodes.iter().enumerate() {
            for need in &node.needs {
                if let Some(&j) = index.get(need) {
                    needs[i].push(j);
                    dependents[j].push(i);
                }
            }
        }
        Graph {
            ids,
            index,
            needs,
            dependents,
        }
    }

    pub fn of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}
