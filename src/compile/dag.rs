//! The dependency graph of a pipeline: node ids, the edges that `needs`, `after`, stages,
//! artifacts and `jobs.X` reads imply, cycle detection (E0301) and the deterministic order.

use super::Edge;
use crate::diagnostics::{Diagnostic, Span};
use petgraph::algo::tarjan_scc;
use petgraph::csr::Csr;
use petgraph::visit::EdgeRef;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// Node indices in the graph (the plan has far fewer than 4 billion nodes).
type NodeId = u32;

/// A directed graph over the plan's nodes, by their index in the node list. An edge `a → b`
/// means `a` must finish before `b`; each edge remembers the source span that created it, for
/// cycle diagnostics. Ids are only read for ordering and messages.
///
/// Both directions are compressed adjacency arrays (petgraph's `Csr`), built once from the
/// sorted edge list: the order and each node's `needs` are read off contiguous slices rather
/// than by chasing per-edge links across a graph of a hundred thousand nodes.
#[derive(Debug)]
pub struct Dag<'n> {
    successors: Csr<(), Span, petgraph::Directed, NodeId>,
    predecessors: Csr<(), (), petgraph::Directed, NodeId>,
    ids: Vec<&'n str>,
    /// Each node's position when all ids are sorted: ties in the order are broken by id, and
    /// comparing ranks is cheaper than comparing strings scattered over memory.
    rank: Vec<usize>,
}

impl<'n> Dag<'n> {
    /// A graph over `ids` (node `i` is `ids[i]`) with `edges`; a repeated edge is kept once,
    /// with the span of its first occurrence.
    pub fn new(ids: Vec<&'n str>, edges: &[Edge]) -> Dag<'n> {
        let count = ids.len();
        let mut forward: Vec<(NodeId, NodeId, Span)> = edges
            .iter()
            .filter(|e| e.from < count && e.to < count)
            .filter_map(|e| Some((e.from.try_into().ok()?, e.to.try_into().ok()?, e.because)))
            .collect();
        forward.sort_by_key(|&(from, to, _)| (from, to));
        forward.dedup_by_key(|&mut (from, to, _)| (from, to));
        let mut backward: Vec<(NodeId, NodeId, ())> = forward
            .iter()
            .map(|&(from, to, _)| (to, from, ()))
            .collect();
        backward.sort_unstable();
        let mut sorted: Vec<usize> = (0..count).collect();
        sorted.sort_unstable_by(|&a, &b| ids[a].cmp(ids[b]).then(a.cmp(&b)));
        let mut rank = vec![0; count];
        for (position, &node) in sorted.iter().enumerate() {
            rank[node] = position;
        }
        Dag {
            successors: adjacency(&forward, count),
            predecessors: adjacency(&backward, count),
            ids,
            rank,
        }
    }

    /// Direct predecessors of the node at `index`, by id, sorted.
    pub fn predecessor_ids(&self, index: usize) -> Vec<String> {
        let mut preds: Vec<usize> = self
            .predecessors
            .neighbors_slice(node(index))
            .iter()
            .map(|&p| p as usize)
            .collect();
        preds.sort_unstable_by_key(|&p| self.rank[p]);
        let mut ids: Vec<String> = preds.into_iter().map(|p| self.ids[p].to_string()).collect();
        ids.dedup();
        ids
    }

    /// Kahn's algorithm with ties broken by id, so the order is the same on every run.
    /// Returns node indices, or `None` when the graph has a cycle.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let count = self.ids.len();
        let mut indegree: Vec<usize> = (0..count)
            .map(|n| self.predecessors.out_degree(node(n)))
            .collect();
        let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..count)
            .filter(|&n| indegree[n] == 0)
            .map(|n| Reverse((self.rank[n], n)))
            .collect();
        let mut order = Vec::with_capacity(count);
        while let Some(Reverse((_, current))) = ready.pop() {
            order.push(current);
            for &next in self.successors.neighbors_slice(node(current)) {
                let next = next as usize;
                indegree[next] -= 1;
                if indegree[next] == 0 {
                    ready.push(Reverse((self.rank[next], next)));
                }
            }
        }
        (order.len() == count).then_some(order)
    }

    /// One E0301 per strongly connected component that forms a cycle, listing it in order.
    pub fn cycle_diagnostics(&self) -> Vec<Diagnostic> {
        let mut diagnostics = Vec::new();
        for component in tarjan_scc(&self.successors) {
            let is_cycle = component.len() > 1
                || component
                    .first()
                    .is_some_and(|&n| self.edge_span(n, n).is_some());
            if is_cycle {
                let cycle = self.cycle_within(&component);
                diagnostics.push(self.cycle_diagnostic(&cycle));
            }
        }
        diagnostics
    }

    fn id(&self, node: NodeId) -> &'n str {
        self.ids.get(node as usize).copied().unwrap_or_default()
    }

    fn rank_of(&self, node: NodeId) -> usize {
        self.rank.get(node as usize).copied().unwrap_or(usize::MAX)
    }

    /// The span that created the edge `from → to`, if there is one.
    fn edge_span(&self, from: NodeId, to: NodeId) -> Option<Span> {
        self.successors
            .edges(from)
            .find(|edge| edge.target() == to)
            .map(|edge| *edge.weight())
    }

    /// Walks from the smallest id in the component along edges that stay inside it until a node
    /// repeats, giving one concrete cycle in order.
    fn cycle_within(&self, component: &[NodeId]) -> Vec<NodeId> {
        let members: BTreeSet<NodeId> = component.iter().copied().collect();
        let Some(&start) = component.iter().min_by_key(|&&n| self.rank_of(n)) else {
            return Vec::new();
        };
        let mut path = vec![start];
        let mut seen: HashMap<NodeId, usize> = HashMap::from([(start, 0)]);
        let mut current = start;
        loop {
            let next = self
                .successors
                .neighbors_slice(current)
                .iter()
                .copied()
                .filter(|n| members.contains(n))
                .min_by_key(|&n| self.rank_of(n));
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

    fn cycle_diagnostic(&self, cycle: &[NodeId]) -> Diagnostic {
        let names: Vec<&str> = cycle.iter().map(|&n| self.id(n)).collect();
        let mut diagnostic =
            Diagnostic::error("E0301", format!("dependency cycle: {}", names.join(" → ")));
        for (i, pair) in cycle.windows(2).enumerate() {
            let Some(span) = self.edge_span(pair[0], pair[1]) else {
                continue;
            };
            let text = format!("`{}` waits for `{}`", self.id(pair[1]), self.id(pair[0]));
            diagnostic = if i == 0 {
                diagnostic.primary(span, text)
            } else {
                diagnostic.secondary(span, text)
            };
        }
        diagnostic.help("remove one of these dependencies so the items can run in an order")
    }
}

/// A node's index in the graph; the plan's node count was checked to fit when it was built.
fn node(index: usize) -> NodeId {
    NodeId::try_from(index).unwrap_or(NodeId::MAX)
}

/// A compressed adjacency array over `count` nodes from edges sorted by `(from, to)`, unique.
fn adjacency<E: Copy + Default>(
    edges: &[(NodeId, NodeId, E)],
    count: usize,
) -> Csr<(), E, petgraph::Directed, NodeId> {
    let mut graph = Csr::from_sorted_edges(edges).unwrap_or_default();
    while graph.node_count() < count {
        graph.add_node(());
    }
    graph
}
