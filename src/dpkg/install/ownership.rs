//! dpkg's file ownership: which package holds each path of the tree being
//! installed, and the rules for adding one. Identical files and
//! directories are shared; a package may take over another's file only
//! when its Replaces names it; nothing is placed below something that is
//! not a directory; anything else is a conflict, refused with both
//! packages named.

use std::collections::BTreeMap;

use super::{package_label, InstallError, Selected};
use crate::dpkg::deb::DebContents;
use crate::fstree::{self, FsTree, Node, NodeKind};

/// The tree being installed: each package's own, and who holds each path.
pub(super) struct State<'a> {
    pub packages: &'a [(Selected, DebContents)],
    pub trees: Vec<FsTree>,
    /// Which packages' trees hold each path (several for shared identical
    /// files and directories, otherwise one).
    pub holders: BTreeMap<String, Vec<usize>>,
}

impl<'a> State<'a> {
    pub fn new(packages: &'a [(Selected, DebContents)]) -> State<'a> {
        State {
            packages,
            trees: vec![FsTree::new(); packages.len()],
            holders: BTreeMap::new(),
        }
    }

    fn label(&self, j: usize) -> String {
        package_label(&self.packages[j].0)
    }

    /// Adds package `j`'s `node` at `key`, settling what earlier packages
    /// hold there as dpkg would.
    pub fn place(&mut self, j: usize, key: String, node: Node) -> Result<(), InstallError> {
        let mut cur = key.as_str();
        while let Some(ancestor) = fstree::parent(cur) {
            if let Some(hs) = self.holders.get(ancestor) {
                let held = &self.trees[hs[0]]
                    .get(ancestor)
                    .expect("holders match trees")
                    .kind;
                if *held != NodeKind::Dir {
                    return Err(InstallError::BelowNonDirectory {
                        package: self.label(j),
                        path: key.clone(),
                        ancestor: ancestor.to_string(),
                        owner: self.label(hs[0]),
                        kind: self.trees[hs[0]].get(ancestor).expect("held").kind_name(),
                    });
                }
            }
            cur = ancestor;
        }
        match self.holders.get(&key).cloned() {
            None => {
                if node.kind != NodeKind::Dir {
                    let prefix = format!("{key}/");
                    let below = self.holders.range(prefix.clone()..).next();
                    if let Some((child, hs)) = below.filter(|(c, _)| c.starts_with(&prefix)) {
                        return Err(InstallError::BelowNonDirectory {
                            package: self.label(hs[0]),
                            path: child.clone(),
                            ancestor: key,
                            owner: self.label(j),
                            kind: node.kind_name(),
                        });
                    }
                }
                self.holders.insert(key.clone(), vec![j]);
            }
            Some(hs) => {
                let old = self.trees[hs[0]].get(&key).expect("holders match trees");
                if equivalent(&key, old, &node) {
                    self.holders.get_mut(&key).expect("present").push(j);
                } else if old.kind != NodeKind::Dir
                    && hs
                        .iter()
                        .all(|&h| replaces(&self.packages[j].0, &self.packages[h].0))
                {
                    for &h in &hs {
                        remove_entry(&mut self.trees[h], &key);
                    }
                    self.holders.insert(key.clone(), vec![j]);
                } else {
                    return Err(InstallError::Conflict {
                        detail: describe_difference(old, &node),
                        path: key,
                        first: self.label(hs[0]),
                        second: self.label(j),
                    });
                }
            }
        }
        self.trees[j].replace(key, node);
        Ok(())
    }
}

/// Removes `key` from `tree`; hard links to it keep its content, one of
/// them becoming the file the others link to.
pub(super) fn remove_entry(tree: &mut FsTree, key: &str) {
    let Some(removed) = tree.remove(key) else {
        return;
    };
    if !matches!(removed.kind, NodeKind::File(_)) {
        return;
    }
    let links: Vec<String> = tree
        .iter()
        .filter(|(_, n)| n.kind == NodeKind::Hardlink(key.to_string()))
        .map(|(k, _)| k.clone())
        .collect();
    if let Some((first, rest)) = links.split_first() {
        tree.replace(first.clone(), removed);
        for link in rest {
            if let Some(n) = tree.get_mut(link) {
                n.kind = NodeKind::Hardlink(first.clone());
            }
        }
    }
}

/// Makes the byte-order-first path of every hard-link group the regular
/// file, since a layer's tar lists paths in byte order and a link must come
/// after its target (a package's archive order, or merged /usr, may differ).
pub(super) fn canonicalize_hardlinks(tree: &mut FsTree) {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, node) in tree.iter() {
        if let NodeKind::Hardlink(target) = &node.kind {
            groups.entry(target.clone()).or_default().push(key.clone());
        }
    }
    for (target, links) in groups {
        let first = &links[0]; // keys iterate in byte order
        if *first > target {
            continue;
        }
        let Some(file) = tree.get(&target).cloned() else {
            continue;
        };
        let link_node = tree.get(first).cloned().expect("listed above");
        tree.replace(first.clone(), file);
        tree.replace(
            target.clone(),
            Node {
                kind: NodeKind::Hardlink(first.clone()),
                ..link_node
            },
        );
        for link in &links[1..] {
            if let Some(n) = tree.get_mut(link) {
                n.kind = NodeKind::Hardlink(first.clone());
            }
        }
    }
}

/// Where a symlink at `key` points, as a normalized key resolved lexically
/// (`None` if it climbs above the root).
pub(super) fn lexical_target(key: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        fstree::parent(key).map_or(Vec::new(), |p| p.split('/').collect())
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Whether two packages' entries at `key` are the same thing. As in dpkg,
/// files shared by Multi-Arch packages are compared by content only.
pub(super) fn equivalent(key: &str, a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Dir, NodeKind::Dir) => true,
        (NodeKind::File(x), NodeKind::File(y)) => x.same_bytes(y),
        (NodeKind::Symlink(x), NodeKind::Symlink(y)) => {
            x == y || lexical_target(key, x).is_some_and(|t| Some(t) == lexical_target(key, y))
        }
        (NodeKind::Hardlink(x), NodeKind::Hardlink(y)) => x == y,
        _ => false,
    }
}

fn describe_difference(a: &Node, b: &Node) -> String {
    match (&a.kind, &b.kind) {
        (NodeKind::File(x), NodeKind::File(y)) => format!(
            "{} bytes, {} against {} bytes, {}",
            x.size(),
            x.digest(),
            y.size(),
            y.digest()
        ),
        (NodeKind::Symlink(x), NodeKind::Symlink(y)) => format!("symlinks to `{x}` and `{y}`"),
        _ => format!("a {} and a {}", a.kind_name(), b.kind_name()),
    }
}

/// Names in a relationship field (`a (>= 1), b:any | c`), without versions
/// or architecture qualifiers.
fn relation_names(field: &str) -> impl Iterator<Item = &str> {
    field.split([',', '|']).filter_map(|r| {
        r.split([' ', '\t', '\n', '(', ':', '['])
            .find(|s| !s.is_empty())
    })
}

/// Whether `later`'s Replaces names `earlier` (or a name it Provides).
/// Version restrictions are not evaluated: a Replaces naming a package at
/// all is taken to cover the version being installed.
fn replaces(later: &Selected, earlier: &Selected) -> bool {
    relation_names(&later.replaces).any(|n| {
        n == earlier.name || relation_names(&earlier.provides).any(|provided| provided == n)
    })
}
