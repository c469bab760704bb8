//! The dependency graph of a pipeline: node ids, the edges that `needs`, `after`, stages,
//! artifacts and `jobs.X` reads imply, cycle detection (E0301) and the deterministic order.

use super::Edge;
use crate::diagnostics::{Diagnostic, Span};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// A directed graph over the plan's nodes, by their index in the node list. An edge `a → b`
/// means `a` must finish before `b`; each edge remembers the source span that created it, for
/// cycle diagnostics. Ids are only read for ordering and messages.
#[derive(Debug)]
pub struct Dag<'n> {
    graph: DiGraph<(), Span>,
    ids: Vec<&'n str>,
    /// Each node's position when all ids are sorted: ties in the order are broken by id, and
    /// comparing ranks is cheaper than comparing strings scattered over memory.
    rank: Vec<usize>,
}

impl<'n> Dag<'n> {
    /// A graph over `ids` (node `i` is `ids[i]`) with `edges`; a repeated edge is kept once.
    pub fn new(ids: Vec<&'n str>, edges: &[Edge]) -> Dag<'n> {
        let mut graph = DiGraph::with_capacity(ids.len(), edges.len());
        for _ in &ids {
            graph.add_node(());
        }
        for edge in edges {
            if edge.from >= ids.len() || edge.to >= ids.len() {
                continue;
            }
            let (a, b) = (NodeIndex::new(edge.from), NodeIndex::new(edge.to));
            if graph.find_edge(a, b).is_none() {
                graph.add_edge(a, b, edge.because);
            }
        }
        let mut sorted: Vec<usize> = (0..ids.len()).collect();
        sorted.sort_unstable_by(|&a, &b| ids[a].cmp(ids[b]).then(a.cmp(&b)));
        let mut rank = vec![0; ids.len()];
        for (position, &node) in sorted.iter().enumerate() {
            rank[node] = position;
        }
        Dag { graph, ids, rank }
    }

    /// Direct predecessors of the node at `index`, by id, sorted.
    pub fn predecessor_ids(&self, index: usize) -> Vec<String> {
        let mut preds: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(index), petgraph::Direction::Incoming)
            .map(|p| p.index())
            .collect();
        preds.sort_unstable_by_key(|&p| self.rank[p]);
        let mut ids: Vec<String> = preds.into_iter().map(|p| self.ids[p].to_string()).collect();
        ids.dedup();
        ids
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
        let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..self.ids.len())
            .filter(|&n| indegree[n] == 0)
            .map(|n| Reverse((self.rank[n], n)))
            .collect();
        let mut order = Vec::with_capacity(self.ids.len());
        while let Some(Reverse((_, node))) = ready.pop() {
            order.push(node);
            for next in self.graph.neighbors(NodeIndex::new(node)) {
                let degree = &mut indegree[next.index()];
                *degree -= 1;
                if *degree == 0 {
                    ready.push(Reverse((self.rank[next.index()], next.index())));
                }
            }
        }
        (order.len() == self.ids.len()).then_some(order)
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

    fn id(&self, node: NodeIndex) -> &'n str {
        self.ids.get(node.index()).copied().unwrap_or_default()
    }

    /// Walks from the smallest id in the component along edges that stay inside it until a node
    /// repeats, giving one concrete cycle in order.
    fn cycle_within(&self, component: &[NodeIndex]) -> Vec<NodeIndex> {
        let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
        let Some(&start) = component.iter().min_by_key(|n| self.rank[n.index()]) else {
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
                .min_by_key(|n| self.rank[n.index()]);
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
        let names: Vec<&str> = cycle.iter().map(|n| self.id(*n)).collect();
        let mut diagnostic =
            Diagnostic::error("E0301", format!("dependency cycle: {}", names.join(" → ")));
        for (i, pair) in cycle.windows(2).enumerate() {
            let Some(edge) = self.graph.find_edge(pair[0], pair[1]) else {
                continue;
            };
            let text = format!("`{}` waits for `{}`", self.id(pair[1]), self.id(pair[0]));
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
