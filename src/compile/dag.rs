//! The dependency graph of a pipeline: node ids, the edges that `needs`, `after`, stages,
//! artifacts and `jobs.X` reads imply, cycle detection (E0301) and the deterministic order.

use crate::diagnostics::{Diagnostic, Span};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeSet, HashMap};

/// A directed graph over node ids. An edge `a → b` means `a` must finish before `b`; each edge
/// remembers the source span that created it, for cycle diagnostics.
#[derive(Debug, Default)]
pub struct Dag {
    graph: DiGraph<String, Span>,
    index: HashMap<String, NodeIndex>,
}

impl Dag {
    /// Adds a node and returns its index; indices follow insertion order, so callers can keep
    /// per-node data in a parallel vector. A repeated id keeps edges on its first node.
    pub fn add_node(&mut self, id: &str) -> usize {
        let node = self.graph.add_node(id.to_string());
        self.index.entry(id.to_string()).or_insert(node);
        node.index()
    }

    /// Adds `from → to` (both must exist; unknown ids are ignored, the checker reported them).
    pub fn add_edge(&mut self, from: &str, to: &str, because: Span) {
        if let (Some(&a), Some(&b)) = (self.index.get(from), self.index.get(to))
            && self.graph.find_edge(a, b).is_none()
        {
            self.graph.add_edge(a, b, because);
        }
    }

    /// Direct predecessors of the node at `index`, by id, sorted.
    pub fn predecessor_ids(&self, index: usize) -> Vec<String> {
        let mut preds: Vec<String> = self
            .graph
            .neighbors_directed(NodeIndex::new(index), petgraph::Direction::Incoming)
            .map(|p| self.graph[p].clone())
            .collect();
        preds.sort_unstable();
        preds.dedup();
        preds
    }

    /// Kahn's algorithm with ties broken by id, so the order is the same on every run.
    /// Returns node indices, or `None` when the graph has a cycle.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let mut indegree: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| {
                self.graph
                    .neighbors_directed(n, petgraph::Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BTreeSet<(&str, NodeIndex)> = self
            .graph
            .node_indices()
            .filter(|n| indegree[n.index()] == 0)
            .map(|n| (self.graph[n].as_str(), n))
            .collect();
        let mut order = Vec::with_capacity(self.graph.node_count());
        while let Some((_, node)) = ready.pop_first() {
            order.push(node.index());
            for next in self.graph.neighbors(node) {
                let degree = &mut indegree[next.index()];
                *degree -= 1;
                if *degree == 0 {
                    ready.insert((self.graph[next].as_str(), next));
                }
            }
        }
        (order.len() == self.graph.node_count()).then_some(order)
    }

    /// One E0301 per strongly connected component that forms a cycle, listing it in order.
    pub fn cycle_diagnostics(&self) -> Vec<Diagnostic> {
        let mut diagnostics = Vec::new();
        for component in tarjan_scc(&self.graph) {
            let is_cycle = component.len() > 1
                || component
                    .first()
                    .is_some_and(|&n| self.graph.find_edge(n, n).is_some());
            if is_cycle {
                let cycle = self.cycle_within(&component);
                diagnostics.push(self.cycle_diagnostic(&cycle));
            }
        }
        diagnostics
    }

    /// Walks from the smallest id in the component along edges that stay inside it until a node
    /// repeats, giving one concrete cycle in order.
    fn cycle_within(&self, component: &[NodeIndex]) -> Vec<NodeIndex> {
        let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
        let Some(&start) = component.iter().min_by_key(|n| self.graph[**n].as_str()) else {
            return Vec::new();
        };
        let mut path = vec![start];
        let mut seen: HashMap<NodeIndex, usize> = HashMap::from([(start, 0)]);
        let mut current = start;
        loop {
            let next = self
                .graph
                .neighbors(current)
                .filter(|n| members.contains(n))
                .min_by_key(|n| self.graph[*n].as_str());
            let Some(next) = next else { return path };
            if let Some(&at) = seen.get(&next) {
                let mut cycle = path.split_off(at);
                cycle.push(next);
                return cycle;
            }
            seen.insert(next, path.len());
            path.push(next);
            current = next;
        }
    }

    fn cycle_diagnostic(&self, cycle: &[NodeIndex]) -> Diagnostic {
        let names: Vec<&str> = cycle.iter().map(|n| self.graph[*n].as_str()).collect();
        let mut diagnostic =
            Diagnostic::error("E0301", format!("dependency cycle: {}", names.join(" → ")));
        for (i, pair) in cycle.windows(2).enumerate() {
            let Some(edge) = self.graph.find_edge(pair[0], pair[1]) else {
                continue;
            };
            let text = format!(
                "`{}` waits for `{}`",
                self.graph[pair[1]], self.graph[pair[0]]
            );
            let span = self.graph[edge];
            diagnostic = if i == 0 {
                diagnostic.primary(span, text)
            } else {
                diagnostic.secondary(span, text)
            };
        }
        diagnostic.help("remove one of these dependencies so the items can run in an order")
    }
}
