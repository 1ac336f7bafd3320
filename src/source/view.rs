//! A base layer's view: what a build needs to know about a layer it
//! builds on (its DiffID, every entry's metadata, the account files'
//! bytes), read once from the layer's blob. The cache keeps views by the
//! layer's digest (`cache::views`), so a rebuild on a base reads and
//! decompresses no base layer.
//!
//! The view is a function of the layer's compressed bytes, and those are
//! named by its digest: a view can only ever have one right answer. It is
//! made from bytes hashed as they are read (a view of bytes that are not
//! the digest's is never made), and must name the layer, size and media
//! type it answers (`LayerView::answers`). The layer's blob is still
//! checked against its digest when it is copied into an output, so what
//! the view spares is the decompression and the DiffID, not the check
//! that the output holds the right bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::unpack::{
    apply_layer, entries_of, read_checked_on, LayerEntry, LayerReadError, Threads,
};
use super::{DiffIdMismatch, Opened, SourceError};
use crate::fstree::FsTree;
use crate::oci::{Digest, LayerBlob};
use crate::store::{BlobStore, Stamp, StoreError};

/// Bumped when a view's contents change meaning (what is kept, how
/// entries are described); the cache keeps views of each format apart.
pub(crate) const VIEW_FORMAT: u32 = 1;

/// Files of a base image a build reads, kept whole in the view: the
/// account files the recipe's accounts merge with and `[config] user`
/// is checked against. Changing this list changes `VIEW_FORMAT`.
const KEPT_FILES: [&str; 2] = ["etc/passwd", "etc/group"];

/// One layer as a build sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerView {
    format: u32,
    layer: Digest,
    size: u64,
    media_type: String,
    diff_id: Digest,
    /// Stream order; a kept file's bytes beside it.
    entries: Vec<(LayerEntry, Option<Vec<u8>>)>,
}

impl LayerView {
    /// Reads `layer` from `store`: decompresses it, takes every entry, and
    /// checks the compressed bytes read against the layer's digest and
    /// size, so the view is the digest's or there is none.
    /// Returns the blob file's `Stamp` too, when it did not change while
    /// it was read.
    #[cfg(test)]
    pub(crate) fn read_stamped(
        store: &BlobStore,
        layer: &LayerBlob,
    ) -> Result<(LayerView, Option<Stamp>), LayerReadError> {
        LayerView::read_stamped_on(store, layer, &Threads::new(1))
    }

    /// `read_stamped`, a layer of independent blocks uncompressed on
    /// several of `threads` (`unpack::read_checked_on`).
    pub(crate) fn read_stamped_on(
        store: &BlobStore,
        layer: &LayerBlob,
        threads: &Threads,
    ) -> Result<(LayerView, Option<Stamp>), LayerReadError> {
        let keep = |p: &str| KEPT_FILES.contains(&p);
        let read = |stream: Box<dyn std::io::Read + '_>| {
            let mut entries = Vec::new();
            let diff_id = entries_of(stream, layer, &keep, &mut |e, c| entries.push((e, c)))?;
            Ok((diff_id, entries))
        };
        let accept = |(diff_id, _): &(Digest, _)| diff_id == &layer.diff_id;
        let ((diff_id, entries), stamp) = read_checked_on(store, layer, threads, read, accept)?;
        let view = LayerView {
            format: VIEW_FORMAT,
            layer: layer.digest.clone(),
            size: layer.size,
            media_type: layer.media_type.to_string(),
            diff_id,
            entries,
        };
        Ok((view, stamp))
    }

    /// The sha256 of the layer's uncompressed stream.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The layer's digest: what the view answers.
    pub fn layer(&self) -> &Digest {
        &self.layer
    }

    /// Whether this view answers `layer`.
    pub(crate) fn answers(&self, layer: &LayerBlob) -> bool {
        self.format == VIEW_FORMAT
            && self.layer == layer.digest
            && self.size == layer.size
            && self.media_type == layer.media_type.to_string()
    }
}

/// The file system `layers` make, applied in order, from their views:
/// metadata of every entry, and the bytes of the kept files only.
pub(crate) fn merged(views: &[&LayerView]) -> FsTree {
    let mut tree = FsTree::new();
    for view in views {
        apply_layer(&mut tree, view.entries.clone());
    }
    tree
}

/// What a build knows of a base's layers without reading them.
pub struct LayerViews {
    /// Every distinct layer, by digest.
    pub(crate) views: BTreeMap<Digest, LayerView>,
    /// The layers whose blob file is known to hold their digest's bytes
    /// as long as it keeps this stamp (`BlobStore::copy_stamped_from`).
    pub(crate) stamps: BTreeMap<Digest, Stamp>,
    /// How many layers were read (decompressed) now.
    pub(crate) read: usize,
}

/// Checks each layer's view against what its image's config lists (size
/// and DiffID), as `Unchecked::check` does; every layer of `opened`
/// must have a view in `views`.
pub(crate) fn check_views(
    opened: &Opened,
    views: &BTreeMap<Digest, LayerView>,
) -> Result<(), SourceError> {
    for image in &opened.built.images {
        let count = image.layers.len();
        for (i, layer) in image.layers.iter().enumerate() {
            let view = &views[&layer.digest];
            if view.size != layer.size || view.diff_id != layer.diff_id {
                return Err(SourceError::DiffIdMismatch {
                    image: opened.name.clone(),
                    mismatch: Box::new(DiffIdMismatch {
                        platform: image.platform.to_string(),
                        position: format!("{}/{count}", i + 1),
                        digest: layer.digest.clone(),
                        found: view.diff_id.clone(),
                        claimed: layer.diff_id.clone(),
                    }),
                });
            }
        }
    }
    Ok(())
}

/// The error for `layer` (`position` in `platform`'s image of `opened`)
/// whose blob cannot be read as its digest's bytes.
pub(crate) fn unreadable(
    opened: &Opened,
    platform: &crate::oci::Platform,
    position: &str,
    layer: &Digest,
    error: StoreError,
) -> SourceError {
    SourceError::DiffIdUnreadable {
        image: opened.name.clone(),
        platform: platform.to_string(),
        position: position.to_string(),
        digest: layer.clone(),
        source: Box::new(LayerReadError::Store {
            digest: layer.clone(),
            error: Box::new(error),
        }),
    }
}

/// Reads the views of `missing` (each layer with its platform and
/// position, for errors) from `opened`'s blobs on up to `jobs` threads,
/// with the `Stamp` of each blob file when it did not change while read.
pub(crate) fn read_views(
    opened: &Opened,
    missing: &[(LayerBlob, String, String)],
    jobs: usize,
) -> Result<Vec<(LayerView, Option<Stamp>)>, SourceError> {
    let threads = Threads::new(jobs);
    crate::parallel::map(
        missing,
        jobs,
        |(l, _, _)| l.size,
        |(layer, platform, position)| {
            LayerView::read_stamped_on(&opened.store, layer, &threads).map_err(|e| {
                SourceError::DiffIdUnreadable {
                    image: opened.name.clone(),
                    platform: platform.clone(),
                    position: position.clone(),
                    digest: layer.digest.clone(),
                    source: Box::new(e),
                }
            })
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fstree::{Content, Node};
    use crate::layer::Compression;

    pub(crate) fn layer_in(store: &BlobStore) -> LayerBlob {
        let mut tree = FsTree::new();
        tree.replace("etc".into(), Node::dir(0o755, 0, 0, 1));
        tree.replace(
            "etc/passwd".into(),
            Node::file(
                Content::bytes(b"root:x:0:0::/root:/bin/sh\n".to_vec()),
                0o644,
                0,
                0,
                1,
            ),
        );
        tree.replace(
            "etc/big".into(),
            Node::file(Content::bytes(vec![7; 4096]), 0o644, 0, 0, 1),
        );
        crate::layer::write_layer(
            &tree,
            crate::layer::Encoding {
                profile: crate::layer::Profile::V2026_2,
                compression: Compression::Gzip,
            },
            store,
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_view_keeps_account_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("s")).unwrap();
        let layer = layer_in(&store);
        let view = LayerView::read_stamped(&store, &layer).unwrap().0;
        assert_eq!(view.diff_id, layer.diff_id);
        let tree = merged(&[&view]);
        let passwd = match &tree.get("etc/passwd").unwrap().kind {
            crate::fstree::NodeKind::File(c) => c.read_all().unwrap(),
            k => panic!("{k:?}"),
        };
        assert_eq!(passwd, b"root:x:0:0::/root:/bin/sh\n");
        assert!(tree.get("etc/big").is_some());

        // A view is only the answer for the layer it names.
        assert!(view.answers(&layer));
        let other = LayerBlob {
            size: layer.size + 1,
            ..layer.clone()
        };
        assert!(!view.answers(&other));
    }

    #[test]
    fn a_blob_that_is_not_its_digest_makes_no_view() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let layer = layer_in(&store);
        let path = store.path(&layer.digest);
        let mut bytes = std::fs::read(&path).unwrap();
        // The same length, the gzip header's MTIME changed: the stream
        // still decompresses to the same tar, but these are not the bytes
        // the digest names.
        bytes[4] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = LayerView::read_stamped(&store, &layer).unwrap_err();
        assert!(
            matches!(&err, LayerReadError::Store { error, .. } if matches!(**error, StoreError::Mismatch { .. })),
            "{err:?}"
        );
    }
}
