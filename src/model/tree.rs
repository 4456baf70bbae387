//! The node tree: children from `children` arrays and `parent` links (2026 slim
//! exports have only the latter), and the active branch. Every walk is iterative and
//! cycle-safe, and ids that point outside the mapping are tolerated: trees thousands
//! of nodes deep and damaged trees are both real.

use super::Node;
use std::collections::HashMap;

/// An index over a conversation's nodes.
pub struct Tree<'n> {
    nodes: &'n [Node<'n>],
    index: HashMap<&'n str, usize>,
    parents: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

impl<'n> Tree<'n> {
    /// Indexes the nodes; the first node wins when a key repeats.
    pub fn new(nodes: &'n [Node<'n>]) -> Self {
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            index.entry(n.key.as_ref()).or_insert(i);
        }
        let parents: Vec<Option<usize>> = nodes
            .iter()
            .map(|n| n.parent.as_deref().and_then(|p| index.get(p).copied()))
            .collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        // Linear on any input (a node may list 200,000 children, or one child many
        // times): `listed_by[c]` is the last node whose list took `c`, and
        // `under_parent[c]` says `c` is already a child of its own `parent`.
        let mut listed_by = vec![usize::MAX; nodes.len()];
        let mut under_parent = vec![false; nodes.len()];
        // Listed children first, in their order, then children known only by their
        // `parent` link, in mapping order.
        for (i, n) in nodes.iter().enumerate() {
            for c in &n.children {
                if let Some(&ci) = index.get(c.as_ref())
                    && ci != i
                    && listed_by[ci] != i
                {
                    listed_by[ci] = i;
                    under_parent[ci] |= parents[ci] == Some(i);
                    children[i].push(ci);
                }
            }
        }
        for (ci, parent) in parents.iter().enumerate() {
            if let Some(pi) = *parent
                && pi != ci
                && !under_parent[ci]
            {
                children[pi].push(ci);
            }
        }
        Tree {
            nodes,
            index,
            parents,
            children,
        }
    }

    /// The position of a node id, if it is in the mapping.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Children of a node that are in the mapping.
    pub fn children(&self, i: usize) -> &[usize] {
        &self.children[i]
    }

    /// The parent of a node, when it is in the mapping.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }

    /// Nodes none of whose children are in the mapping, in mapping order.
    pub fn leaves(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.children[i].is_empty())
            .collect()
    }

    /// The leaf with the newest message `create_time` (a missing time is oldest; ties
    /// go to the first in mapping order). Falls back to all nodes when a cycle leaves
    /// no leaf at all.
    pub fn newest_leaf(&self) -> Option<usize> {
        let leaves = self.leaves();
        let candidates: Vec<usize> = if leaves.is_empty() {
            (0..self.nodes.len()).collect()
        } else {
            leaves
        };
        self.newest_of(candidates)
    }

    /// Of `candidates`, the node with the newest message `create_time` (a missing
    /// time is oldest; ties go to the first given).
    pub fn newest_of(&self, candidates: impl IntoIterator<Item = usize>) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for i in candidates {
            let t = self.nodes[i]
                .message
                .as_ref()
                .and_then(|m| m.create_time.secs())
                .unwrap_or(f64::NEG_INFINITY);
            if best.is_none_or(|(_, bt)| t > bt) {
                best = Some((i, t));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The active branch, root first: from `current_node` (or the newest leaf when it
    /// is missing or not in the mapping) up through `parent` links until a node has
    /// no parent in the mapping, stopping at the first repeated node.
    pub fn active_branch(&self, current_node: Option<&str>) -> Vec<usize> {
        let start = current_node
            .and_then(|id| self.position(id))
            .or_else(|| self.newest_leaf());
        let Some(mut cur) = start else {
            return Vec::new();
        };
        let mut seen = vec![false; self.nodes.len()];
        let mut path = Vec::new();
        loop {
            seen[cur] = true;
            path.push(cur);
            match self.parent(cur) {
                Some(p) if !seen[p] => cur = p,
                _ => break,
            }
        }
        path.reverse();
        path
    }
}
