//! The layer cache: a layer written once is found again by a key over
//! everything that decides its bytes, so a rebuild with nothing changed
//! reads no package file and compresses nothing.
//!
//! The key is a sha256 over the encoding profile, the compression and a
//! canonical description of the tree: every path with its kind, mode,
//! owner, mtime, xattrs, link target and content digest and size. The tar
//! stream is a function of exactly these (see `tar::write_tree`), and the
//! blob a function of the tar stream, the compression and the profile.
//! Content digests are the ones taken when the tree was made (hashing the
//! host file or unpacking the package), so a hit never reads the content.
//!
//! A record `layers/v<N>/<key>` names the layer's descriptor fields; the
//! blob is in the cache's blob store, copied (never hard-linked) to and
//! from outputs, and checked against its digest and size as it is copied
//! out. A missing or damaged record or blob is a miss (and is dropped),
//! never a wrong image.

use std::io::Write;
use std::path::Path;

use oci_spec::image::MediaType;
use serde::{Deserialize, Serialize};

use super::Encoding;
use crate::fstree::{FsTree, NodeKind};
use crate::oci::digest::HashingWriter;
use crate::oci::{Digest, LayerBlob};
use crate::store::{BlobStore, Records, StoreError};

/// Bumped when the key's description or the record changes meaning.
const CACHE_FORMAT: u32 = 1;

/// Layers of earlier builds, in a cache folder's blob store.
#[derive(Clone, Debug)]
pub struct LayerCache {
    store: BlobStore,
    records: Records,
    builder: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    key: Digest,
    media_type: String,
    digest: Digest,
    size: u64,
    diff_id: Digest,
}

/// The key of the layer `tree` makes with `encoding` when written by
/// `builder` (see `LayerCache::open`). The tree must be complete (parents
/// added), as it is written.
pub fn layer_key(tree: &FsTree, encoding: Encoding, builder: &str) -> Digest {
    let mut hw = HashingWriter::new(std::io::sink());
    let head = serde_json::json!([
        "stele layer key",
        CACHE_FORMAT,
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

impl LayerCache {
    /// Opens (creating if needed) the layer cache under `root`: blobs in
    /// `root/blobs/sha256`, records in `root/layers/`. `builder` names the
    /// program writing layers (the CLI passes its executable's identity):
    /// it is part of every key, so layers written by another build of
    /// stele are never taken, and a change to the encoder that forgot to
    /// bump the encoding profile cannot hide behind the cache.
    pub fn open(root: &Path, builder: &str) -> Result<LayerCache, StoreError> {
        LayerCache::in_store(&BlobStore::open(root)?, builder)
    }

    /// The layer cache beside the blobs of an opened cache folder.
    pub(crate) fn in_store(store: &BlobStore, builder: &str) -> Result<LayerCache, StoreError> {
        let records = Records::open(store.root().join("layers").join(format!("v{CACHE_FORMAT}")))?;
        Ok(LayerCache {
            store: store.clone(),
            records,
            builder: builder.to_string(),
        })
    }

    /// The key of `tree`'s layer in this cache.
    pub fn key(&self, tree: &FsTree, encoding: Encoding) -> Digest {
        layer_key(tree, encoding, &self.builder)
    }

    /// The layer recorded under `key`, its blob checked and copied into
    /// `out`; `None` when there is none or it does not check out.
    pub fn get(&self, key: &Digest, encoding: Encoding, out: &BlobStore) -> Option<LayerBlob> {
        let bytes = self.records.get(&self.store, key)?;
        let record = serde_json::from_slice::<Record>(&bytes).ok().filter(|r| {
            &r.key == key && r.media_type == encoding.compression.media_type().to_string()
        });
        let Some(record) = record else {
            self.records.remove(key);
            return None;
        };
        match out.copy_checked_from(&self.store, &record.digest, record.size) {
            Ok(()) => {}
            Err(StoreError::Mismatch { .. } | StoreError::Longer { .. }) => {
                self.store.remove(&record.digest);
                self.records.remove(key);
                return None;
            }
            Err(_) => return None,
        }
        Some(LayerBlob {
            media_type: MediaType::from(record.media_type.as_str()),
            digest: record.digest,
            size: record.size,
            diff_id: record.diff_id,
        })
    }

    /// Records `layer`, whose blob is in `from`, under `key`.
    pub fn put(&self, key: &Digest, layer: &LayerBlob, from: &BlobStore) -> Result<(), StoreError> {
        self.store.remove_if_damaged(&layer.digest, layer.size);
        self.store
            .copy_checked_from(from, &layer.digest, layer.size)?;
        self.record(key, layer)
    }

    /// The store layers are kept in: `write_layer_to` may write there
    /// directly, and `record` then names the result.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Records `layer`, whose blob is already in `store()`, under `key`.
    pub fn record(&self, key: &Digest, layer: &LayerBlob) -> Result<(), StoreError> {
        let record = Record {
            key: key.clone(),
            media_type: layer.media_type.to_string(),
            digest: layer.digest.clone(),
            size: layer.size,
            diff_id: layer.diff_id.clone(),
        };
        let bytes = serde_json::to_vec(&record).expect("a record serializes");
        self.records.put(&self.store, key, &bytes)
    }

    #[cfg(test)]
    /// Where the record of `key` is (for tests and messages).
    pub(crate) fn record_path(&self, key: &Digest) -> std::path::PathBuf {
        self.records.pointer_path(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fstree::{Content, Node};
    use crate::layer::{Compression, Profile};

    const GZIP: Encoding = Encoding {
        profile: Profile::V2026_2,
        compression: Compression::Gzip,
    };
    const ZSTD: Encoding = Encoding {
        profile: Profile::V2026_2,
        compression: Compression::Zstd,
    };

    fn tree() -> FsTree {
        let mut t = FsTree::new();
        t.insert(
            "etc/a".into(),
            Node::file(Content::bytes("a"), 0o644, 0, 0, 5),
        )
        .unwrap();
        t.complete_parents(&Node::dir(0o755, 0, 0, 5)).unwrap();
        t
    }

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

    #[test]
    fn hits_are_checked_and_damage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&dir.path().join("cache"), "test").unwrap();
        let first = BlobStore::open(dir.path().join("first")).unwrap();
        let t = tree();
        let key = cache.key(&t, GZIP);
        let layer = super::super::write_layer(&t, GZIP, &first, None).unwrap();
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        assert!(cache.get(&key, GZIP, &out).is_none());
        cache.put(&key, &layer, &first).unwrap();
        assert_eq!(cache.get(&key, GZIP, &out), Some(layer.clone()));
        out.verify(&layer.digest, layer.size).unwrap();
        assert!(cache.get(&key, ZSTD, &out).is_none());

        // The cached blob damaged in place; the stores share no file.
        cache.put(&key, &layer, &first).unwrap();
        let blob = cache.store.path(&layer.digest);
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&blob, &bytes).unwrap();
        first.verify(&layer.digest, layer.size).unwrap();
        out.verify(&layer.digest, layer.size).unwrap();
        let out2 = BlobStore::open(dir.path().join("out2")).unwrap();
        assert!(cache.get(&key, GZIP, &out2).is_none());
        assert!(
            !out2.contains(&layer.digest),
            "a damaged blob is not copied"
        );
        cache.put(&key, &layer, &first).unwrap();
        assert_eq!(cache.get(&key, GZIP, &out2), Some(layer.clone()));

        // A truncated record.
        std::fs::write(cache.record_path(&key), "sha256:12").unwrap();
        assert!(cache.get(&key, GZIP, &out2).is_none());
    }
}
