//! A layer's key: a sha256 over everything that decides the layer's
//! bytes, known before the layer is written.
//!
//! It lives beside the writer because it must name exactly what the
//! writer reads: the encoding profile, the compression and a canonical
//! description of the tree (every path with its kind, mode, owner, mtime,
//! xattrs, link target and content digest and size). The tar stream is a
//! function of exactly these (`tar::write_tree`), and the blob a function
//! of the tar stream, the compression and the profile; a change to what
//! the writer reads changes this description in the same review. Content
//! digests are the ones taken when the tree was made (hashing the host
//! file or unpacking the package), so a key never reads the content.
//!
//! The build uses keys to write a layer two platforms share once; the
//! caches find layers by them and never look inside.

use std::io::Write;

use super::Encoding;
use crate::fstree::{FsTree, NodeKind};
use crate::oci::digest::HashingWriter;
use crate::oci::Digest;

/// Bumped when the description changes meaning.
const KEY_FORMAT: u32 = 1;

/// The key of the layer `tree` makes with `encoding` when written by
/// `builder`: the program writing layers (the CLI passes its executable's
/// identity, so layers another build of stele wrote are never taken, and
/// a change to the encoder that forgot to bump the encoding profile
/// cannot hide behind a cache). The tree must be complete (parents
/// added), as it is written.
pub fn layer_key(tree: &FsTree, encoding: Encoding, builder: &str) -> Digest {
    let mut hw = HashingWriter::new(std::io::sink());
    let head = serde_json::json!([
        "stele layer key",
        KEY_FORMAT,
        encoding.profile.id(),
        env!("CARGO_PKG_VERSION"),
        builder,
        encoding.compression.name()
    ]);
    serde_json::to_writer(&mut hw, &head).expect("a sink takes everything");
    hw.write_all(b"\n").expect("a sink takes everything");
    for (path, node) in tree.iter() {
        let (kind, link, content) = match &node.kind {
            NodeKind::Dir => ("dir", None, None),
            NodeKind::File(c) => ("file", None, Some((c.digest(), c.size()))),
            NodeKind::Symlink(t) => ("symlink", Some(t.as_str()), None),
            NodeKind::Hardlink(t) => ("hardlink", Some(t.as_str()), None),
            NodeKind::Whiteout => ("whiteout", None, None),
        };
        let xattrs: Vec<(&str, String)> = node
            .xattrs
            .iter()
            .map(|(k, v)| (k.as_str(), hex::encode(v)))
            .collect();
        // One JSON array per node, one per line: strings are escaped, so
        // no two trees describe alike.
        let line = serde_json::json!([
            path, kind, node.mode, node.uid, node.gid, node.mtime, xattrs, link, content
        ]);
        serde_json::to_writer(&mut hw, &line).expect("a sink takes everything");
        hw.write_all(b"\n").expect("a sink takes everything");
    }
    hw.finish().1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fstree::{Content, Node};
    use crate::layer::test_support::*;
    use crate::layer::Profile;

    #[test]
    fn every_input_of_the_bytes_changes_the_key() {
        let key = |t: &FsTree, c| layer_key(t, c, "b");
        let base = key(&tree(), GZIP);
        assert_eq!(base, key(&tree(), GZIP));
        assert_ne!(base, key(&tree(), ZSTD));
        let old = Encoding {
            profile: Profile::V2026_1,
            ..GZIP
        };
        assert_ne!(base, key(&tree(), old));
        assert_ne!(base, layer_key(&tree(), GZIP, "other"));
        let edits: [fn(&mut Node); 6] = [
            |n| n.mode = 0o600,
            |n| n.uid = 1,
            |n| n.gid = 1,
            |n| n.mtime = 6,
            |n| {
                n.xattrs.insert("user.x".into(), vec![1]);
            },
            |n| n.kind = NodeKind::File(Content::bytes("b")),
        ];
        for edit in edits {
            let mut t = tree();
            edit(t.get_mut("etc/a").unwrap());
            assert_ne!(base, key(&t, GZIP));
        }
        let mut t = tree();
        t.insert("etc/b".into(), Node::symlink("a", 0, 0, 5))
            .unwrap();
        assert_ne!(base, key(&t, GZIP));
    }
}
