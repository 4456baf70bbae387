//! Which branch of a conversation's tree a page shows, and where the reader can switch.
//!
//! A page shows the active branch unless it is asked for a node (`?node=`, a node id or
//! a message id). A node on the active branch shows the active branch; any other shows
//! the branch through it that ends at its newest leaf, as ChatGPT shows the latest
//! answer under an edited message. Every node with more than one child is a fork,
//! shown as "2 / 3" with links to the neighbouring children. Every walk is iterative
//! and cycle-safe, like the tree itself.

use crate::model::Conversation;
use crate::model::tree::Tree;
use std::collections::HashMap;

/// A fork on the shown branch: which child the branch takes, and its neighbours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The node the branches leave from (for a stable anchor on every branch).
    pub parent: String,
    /// 1-based position of the shown child among the children.
    pub position: usize,
    /// Number of children.
    pub count: usize,
    /// Node id of the previous child.
    pub prev: Option<String>,
    /// Node id of the next child.
    pub next: Option<String>,
}

/// The branch a page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    /// Node indices, root first.
    pub path: Vec<usize>,
    /// Forks, keyed by the node id of the visible message that shows them.
    pub forks: HashMap<String, Fork>,
    /// Set when a node was asked for but is not in the conversation (the active branch
    /// is shown instead).
    pub unknown_node: bool,
}

/// Chooses the branch for `node` (none: the active branch) and finds its forks.
pub fn select(conv: &Conversation<'_>, tree: &Tree<'_>, node: Option<&str>) -> Branch {
    let nodes = conv.nodes();
    let active = tree.active_branch(conv.current_node.as_deref());
    let target = node.map(|n| {
        tree.position(n).or_else(|| {
            nodes.iter().position(|x| {
                x.message
                    .as_ref()
                    .and_then(|m| m.id.as_deref())
                    .is_some_and(|id| id == n)
            })
        })
    });
    let (path, unknown_node) = match target {
        None => (active, false),
        Some(None) => (active, true),
        Some(Some(t)) if active.contains(&t) => (active, false),
        Some(Some(t)) => {
            let leaf = newest_leaf_under(conv, tree, t);
            (tree.active_branch(Some(nodes[leaf].key.as_ref())), false)
        }
    };
    let forks = forks(conv, tree, &path);
    Branch {
        path,
        forks,
        unknown_node,
    }
}

/// The newest leaf (by message time; a missing time is oldest, ties to the first found)
/// in the subtree under `top`; `top` itself when a cycle leaves no leaf.
fn newest_leaf_under(conv: &Conversation<'_>, tree: &Tree<'_>, top: usize) -> usize {
    let mut seen = vec![false; conv.nodes().len()];
    let mut stack = vec![top];
    let mut leaves = Vec::new();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let kids = tree.children(i);
        if kids.is_empty() {
            leaves.push(i);
        }
        // Reversed so children are visited in their listed order.
        stack.extend(kids.iter().rev().filter(|&&c| !seen[c]));
    }
    tree.newest_of(leaves).unwrap_or(top)
}

/// Forks along `path`, each shown at the first visible message after it.
fn forks(conv: &Conversation<'_>, tree: &Tree<'_>, path: &[usize]) -> HashMap<String, Fork> {
    let nodes = conv.nodes();
    let visible = |i: usize| {
        nodes[i]
            .message
            .as_ref()
            .is_some_and(|m| !m.meta().hidden())
    };
    let key = |i: usize| nodes[i].key.to_string();
    let mut out = HashMap::new();
    for (k, pair) in path.windows(2).enumerate() {
        let (parent, chosen) = (pair[0], pair[1]);
        let kids = tree.children(parent);
        if kids.len() < 2 {
            continue;
        }
        let Some(pos) = kids.iter().position(|&c| c == chosen) else {
            continue;
        };
        let Some(&shown) = path[k + 1..].iter().find(|&&i| visible(i)) else {
            continue;
        };
        out.entry(key(shown)).or_insert_with(|| Fork {
            parent: key(parent),
            position: pos + 1,
            count: kids.len(),
            prev: pos.checked_sub(1).map(|p| key(kids[p])),
            next: kids.get(pos + 1).map(|&n| key(n)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// root → u1 → {a1 (t=3), a1b (t=5) → u2 → a2}; the active branch ends at a1.
    fn doc() -> Vec<u8> {
        let msg = |id: &str, role: &str, t: f64| {
            json!({"id": id, "author": {"role": role}, "create_time": t,
                   "content": {"content_type": "text", "parts": [id]}})
        };
        let v = json!({
            "id": "c", "current_node": "a1",
            "mapping": {
                "root": {"message": null, "parent": null, "children": ["u1"]},
                "u1": {"message": msg("u1", "user", 1.0), "parent": "root", "children": ["a1", "a1b"]},
                "a1": {"message": msg("a1", "assistant", 3.0), "parent": "u1", "children": []},
                "a1b": {"message": msg("msg-a1b", "assistant", 5.0), "parent": "u1", "children": ["u2"]},
                "u2": {"message": msg("u2", "user", 6.0), "parent": "a1b", "children": ["a2", "a2x"]},
                "a2": {"message": msg("a2", "assistant", 7.0), "parent": "u2", "children": []},
                "a2x": {"message": msg("a2x", "assistant", 6.5), "parent": "u2", "children": []}
            }
        });
        serde_json::to_vec(&v).expect("json")
    }

    fn keys(conv: &Conversation<'_>, path: &[usize]) -> Vec<String> {
        path.iter()
            .map(|&i| conv.nodes()[i].key.to_string())
            .collect()
    }

    #[test]
    fn the_active_branch_by_default_with_its_fork() {
        let raw = doc();
        let conv = Conversation::parse(&raw, None).expect("parse");
        let tree = conv.tree();
        let b = select(&conv, &tree, None);
        assert_eq!(keys(&conv, &b.path), ["root", "u1", "a1"]);
        assert!(!b.unknown_node);
        assert_eq!(
            b.forks.get("a1"),
            Some(&Fork {
                parent: "u1".into(),
                position: 1,
                count: 2,
                prev: None,
                next: Some("a1b".into()),
            })
        );
        assert_eq!(b.forks.len(), 1);
    }

    #[test]
    fn another_node_shows_the_branch_through_it_to_its_newest_leaf() {
        let raw = doc();
        let conv = Conversation::parse(&raw, None).expect("parse");
        let tree = conv.tree();
        let b = select(&conv, &tree, Some("a1b"));
        assert_eq!(keys(&conv, &b.path), ["root", "u1", "a1b", "u2", "a2"]);
        assert_eq!(b.forks["a1b"].position, 2);
        assert_eq!(b.forks["a1b"].prev.as_deref(), Some("a1"));
        assert_eq!(b.forks["a1b"].next, None);
        assert_eq!(b.forks["a2"].position, 1);
        assert_eq!(b.forks["a2"].next.as_deref(), Some("a2x"));
        // By message id too, and a deeper choice keeps the nodes above it.
        let by_msg = select(&conv, &tree, Some("msg-a1b"));
        assert_eq!(by_msg.path, b.path);
        let deeper = select(&conv, &tree, Some("a2x"));
        assert_eq!(
            keys(&conv, &deeper.path),
            ["root", "u1", "a1b", "u2", "a2x"]
        );
        assert_eq!(deeper.forks["a2x"].position, 2);
        // A node on the active branch keeps the active branch.
        assert_eq!(
            select(&conv, &tree, Some("u1")).path,
            select(&conv, &tree, None).path
        );
    }

    #[test]
    fn an_unknown_node_falls_back_to_the_active_branch() {
        let raw = doc();
        let conv = Conversation::parse(&raw, None).expect("parse");
        let tree = conv.tree();
        let b = select(&conv, &tree, Some("../../etc/passwd"));
        assert!(b.unknown_node);
        assert_eq!(keys(&conv, &b.path), ["root", "u1", "a1"]);
    }

    #[test]
    fn cycles_terminate() {
        let v = json!({"id": "c", "current_node": "zz", "mapping": {
            "a": {"message": {"id": "a", "author": {"role": "user"}, "content": {"content_type": "text", "parts": ["a"]}}, "parent": "b", "children": ["b"]},
            "b": {"message": {"id": "b", "author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["b"]}}, "parent": "a", "children": ["a"]}
        }});
        let raw = serde_json::to_vec(&v).expect("json");
        let conv = Conversation::parse(&raw, None).expect("parse");
        let tree = conv.tree();
        let b = select(&conv, &tree, Some("b"));
        assert!(!b.path.is_empty() && b.path.len() <= 2);
    }
}
