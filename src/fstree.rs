//! The in-memory file system a layer is made from. Paths are normalized
//! (relative to `/`, no `.`/`..`, no trailing slash) and kept in a BTreeMap,
//! so iteration is byte order and every parent sorts before its children.

mod content;

use std::collections::{BTreeMap, BTreeSet};

pub(crate) use content::pack_found_whole;
pub use content::{Content, ContentError, ContentReader};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File(Content),
    Symlink(String),
    /// A hard link to another regular file of the same tree (normalized path).
    Hardlink(String),
    /// Removes this path from lower layers (an OCI whiteout).
    Whiteout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky (0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Node {
    pub fn dir(mode: u32, uid: u32, gid: u32, mtime: u64) -> Node {
        Node {
            kind: NodeKind::Dir,
            mode,
            uid,
            gid,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }
    pub fn file(content: Content, mode: u32, uid: u32, gid: u32, mtime: u64) -> Node {
        Node {
            kind: NodeKind::File(content),
            mode,
            uid,
            gid,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }
    pub fn symlink(target: impl Into<String>, uid: u32, gid: u32, mtime: u64) -> Node {
        Node {
            kind: NodeKind::Symlink(target.into()),
            mode: 0o777,
            uid,
            gid,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }

    pub(crate) fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Dir => "directory",
            NodeKind::File(_) => "file",
            NodeKind::Symlink(_) => "symlink",
            NodeKind::Hardlink(_) => "hard link",
            NodeKind::Whiteout => "whiteout",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    #[error("`{path}` is not an absolute path: image paths start with `/`, e.g. `/{path}`")]
    NotAbsolute { path: String },
    #[error("`{path}` contains `..`: image paths may not climb out of their parent; write the path it means without `..`")]
    ParentComponent { path: String },
    #[error("`{path}` names the root directory, which always exists; name a path below `/`")]
    Root { path: String },
    #[error("`{path}` contains a NUL byte")]
    Nul { path: String },
}

/// Normalizes an absolute image path to the tree's key form (`etc/passwd`).
pub(crate) fn normalize_abs(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute {
            path: path.to_string(),
        });
    }
    let key = normalize_rel(path)?;
    if key.is_empty() {
        return Err(PathError::Root {
            path: path.to_string(),
        });
    }
    Ok(key)
}

/// Normalizes a path found inside an archive, where a leading `/` or `./`
/// is common and means the same as none.
pub(crate) fn normalize_rel(path: &str) -> Result<String, PathError> {
    if path.contains('\0') {
        return Err(PathError::Nul {
            path: path.replace('\0', "\\0"),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(PathError::ParentComponent {
                    path: path.to_string(),
                })
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The parent key of a normalized path, `None` for top-level entries.
pub fn parent(key: &str) -> Option<&str> {
    key.rfind('/').map(|i| &key[..i])
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("/{path} is given twice with different {what} ({first} and {second}): keep one, or make both the same")]
    Conflict {
        path: String,
        what: &'static str,
        first: String,
        second: String,
    },
    #[error("/{path} needs /{ancestor} to be a directory, but it is a {kind}")]
    NotADirectory {
        path: String,
        ancestor: String,
        kind: &'static str,
    },
    #[error(
        "hard link /{path} points to /{target}, which is not a regular file in the same layer"
    )]
    BadHardlink { path: String, target: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsTree {
    nodes: BTreeMap<String, Node>,
}

impl FsTree {
    pub fn new() -> FsTree {
        FsTree::default()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.nodes.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.nodes.get_mut(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        self.nodes.remove(key)
    }

    /// Removes `key` and everything below it; returns how many nodes went.
    pub(crate) fn remove_subtree(&mut self, key: &str) -> usize {
        let prefix = format!("{key}/");
        let doomed: Vec<String> = self
            .nodes
            .range::<str, _>((std::ops::Bound::Included(key), std::ops::Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| {
                k.as_str() == key || k.starts_with(&prefix) || k.as_str() < prefix.as_str()
            })
            .filter(|k| k.as_str() == key || k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in &doomed {
            self.nodes.remove(k);
        }
        doomed.len()
    }

    /// Inserts a node. The same path given twice is accepted only when both
    /// say the same thing; anything else is a conflict naming what differs.
    pub fn insert(&mut self, key: String, node: Node) -> Result<(), TreeError> {
        match self.nodes.get(&key) {
            None => {
                self.nodes.insert(key, node);
                Ok(())
            }
            Some(old) => {
                if let Some((what, first, second)) = difference(old, &node) {
                    Err(TreeError::Conflict {
                        path: key,
                        what,
                        first,
                        second,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Inserts or replaces, for callers whose later entries deliberately win
    /// (a package upgrade of a file, an account file regenerated).
    pub fn replace(&mut self, key: String, node: Node) -> Option<Node> {
        self.nodes.insert(key, node)
    }

    /// Adds every missing ancestor directory with `template`'s metadata and
    /// checks that no ancestor is something other than a directory. Called
    /// once before a tree is written, so the tar never relies on a reader
    /// inventing parent directories with its own modes.
    pub fn complete_parents(&mut self, template: &Node) -> Result<(), TreeError> {
        self.complete_parents_over(None, template)
    }

    /// As `complete_parents`, but a missing directory that `lower` (the
    /// layers below) has is repeated with its metadata, so an upper layer
    /// never resets, say, /tmp's 1777 to the template's 0755.
    pub(crate) fn complete_parents_over(
        &mut self,
        lower: Option<&FsTree>,
        template: &Node,
    ) -> Result<(), TreeError> {
        let mut missing: BTreeSet<String> = BTreeSet::new();
        for key in self.nodes.keys() {
            let mut cur = key.as_str();
            while let Some(p) = parent(cur) {
                match self.nodes.get(p) {
                    Some(n) if n.kind == NodeKind::Dir => {}
                    Some(n) => {
                        return Err(TreeError::NotADirectory {
                            path: key.clone(),
                            ancestor: p.to_string(),
                            kind: n.kind_name(),
                        })
                    }
                    None => {
                        missing.insert(p.to_string());
                    }
                }
                cur = p;
            }
        }
        for k in missing {
            let node = match lower.and_then(|l| l.get(&k)) {
                Some(n) if n.kind == NodeKind::Dir => n.clone(),
                _ => template.clone(),
            };
            self.nodes.insert(k, node);
        }
        for (key, node) in &self.nodes {
            if let NodeKind::Hardlink(target) = &node.kind {
                let ok = matches!(
                    self.nodes.get(target),
                    Some(Node {
                        kind: NodeKind::File(_),
                        ..
                    })
                ) && target < key;
                if !ok {
                    return Err(TreeError::BadHardlink {
                        path: key.clone(),
                        target: target.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Moves every node of `other` into this tree; `other` wins on a clash.
    pub(crate) fn overlay(&mut self, other: FsTree) {
        self.nodes.extend(other.nodes);
    }
}

fn difference(a: &Node, b: &Node) -> Option<(&'static str, String, String)> {
    let kinds = match (&a.kind, &b.kind) {
        (NodeKind::Dir, NodeKind::Dir) | (NodeKind::Whiteout, NodeKind::Whiteout) => None,
        (NodeKind::File(x), NodeKind::File(y)) => (!x.same_bytes(y)).then(|| {
            (
                "content",
                format!("{} bytes, {}", x.size(), x.digest()),
                format!("{} bytes, {}", y.size(), y.digest()),
            )
        }),
        (NodeKind::Symlink(x), NodeKind::Symlink(y))
        | (NodeKind::Hardlink(x), NodeKind::Hardlink(y)) => {
            (x != y).then(|| ("link targets", x.clone(), y.clone()))
        }
        _ => Some((
            "kinds",
            a.kind_name().to_string(),
            b.kind_name().to_string(),
        )),
    };
    if kinds.is_some() {
        return kinds;
    }
    if a.mode != b.mode {
        return Some((
            "modes",
            format!("{:04o}", a.mode),
            format!("{:04o}", b.mode),
        ));
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        return Some((
            "owners",
            format!("{}:{}", a.uid, a.gid),
            format!("{}:{}", b.uid, b.gid),
        ));
    }
    if a.xattrs != b.xattrs {
        return Some((
            "xattrs",
            format!("{:?}", a.xattrs.keys()),
            format!("{:?}", b.xattrs.keys()),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize_abs("/a//b/./c/").unwrap(), "a/b/c");
        assert!(matches!(
            normalize_abs("a/b"),
            Err(PathError::NotAbsolute { .. })
        ));
        assert!(matches!(
            normalize_abs("/a/../b"),
            Err(PathError::ParentComponent { .. })
        ));
        assert!(matches!(normalize_abs("/"), Err(PathError::Root { .. })));
        assert_eq!(normalize_rel("./usr/bin").unwrap(), "usr/bin");
    }

    #[test]
    fn conflicts_name_what_differs() {
        let mut t = FsTree::new();
        t.insert("a".into(), Node::file(Content::bytes("x"), 0o644, 0, 0, 0))
            .unwrap();
        t.insert("a".into(), Node::file(Content::bytes("x"), 0o644, 0, 0, 0))
            .unwrap();
        let e = t
            .insert("a".into(), Node::file(Content::bytes("y"), 0o644, 0, 0, 0))
            .unwrap_err();
        assert!(e.to_string().contains("different content"), "{e}");
        let e = t
            .insert("a".into(), Node::file(Content::bytes("x"), 0o600, 0, 0, 0))
            .unwrap_err();
        assert!(e.to_string().contains("0644 and 0600"), "{e}");
    }

    #[test]
    fn parents_are_completed_and_checked() {
        let mut t = FsTree::new();
        t.insert(
            "a/b/c".into(),
            Node::file(Content::bytes(""), 0o644, 0, 0, 0),
        )
        .unwrap();
        t.complete_parents(&Node::dir(0o755, 0, 0, 0)).unwrap();
        let keys: Vec<_> = t.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "a/b", "a/b/c"]);
        t.insert("a/b/c/d".into(), Node::dir(0o755, 0, 0, 0))
            .unwrap();
        assert!(matches!(
            t.complete_parents(&Node::dir(0o755, 0, 0, 0)),
            Err(TreeError::NotADirectory { .. })
        ));
    }
}
