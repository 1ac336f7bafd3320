//! Base-view entries: the view of a base layer (`source::view`: its
//! DiffID, entries and account files), recorded by the layer's digest, so
//! a rebuild on a base reads and decompresses no base layer.
//!
//! A record `base-views/v<N>/<layer digest>` can only ever have one right
//! answer (the view is a function of the bytes the digest names); it is
//! read back verified (`records`), must answer the layer, size and media
//! type asked for, and must agree with the DiffID the image's config
//! lists, else it is a miss and the layer is read again: the cache can
//! cost time, never decide the answer.
//!
//! Beside each record, `<layer hex>.stamp` is the `Stamp` (device, inode,
//! size, mtime, ctime) of the file the layer's blob was last found to hold
//! its digest's bytes in; while the file keeps it, the blob is copied into
//! an output without being hashed again (SECURITY.md).

use std::collections::BTreeMap;

use super::records::Records;
use crate::oci::{Digest, LayerBlob};
use crate::source::view::{self, LayerView, LayerViews, VIEW_FORMAT};
use crate::source::{Opened, SourceError};
use crate::store::{BlobStore, Stamp, StoreError};

/// Views of earlier builds, in a cache folder: records under
/// `base-views/v<N>/`, named by layer digest.
#[derive(Clone, Debug)]
pub struct ViewCache {
    store: BlobStore,
    records: Records,
}

impl ViewCache {
    pub(crate) fn open(store: &BlobStore) -> Result<ViewCache, StoreError> {
        let dir = store
            .root()
            .join("base-views")
            .join(format!("v{VIEW_FORMAT}"));
        Ok(ViewCache {
            store: store.clone(),
            records: Records::open(dir)?,
        })
    }

    /// The view of `layer` recorded before, or `None` (a damaged or
    /// mismatched record is dropped).
    fn get(&self, layer: &LayerBlob) -> Option<LayerView> {
        let bytes = self.records.get(&self.store, &layer.digest)?;
        match serde_json::from_slice::<LayerView>(&bytes) {
            Ok(view) if view.answers(layer) => Some(view),
            _ => {
                self.records.remove(&layer.digest);
                None
            }
        }
    }

    fn put(&self, view: &LayerView) {
        // A view not recorded costs the next build time, never this one
        // its image: failures to write the cache are not errors.
        let bytes = serde_json::to_vec(view).expect("a view serializes");
        let _ = self.records.put(&self.store, view.layer(), &bytes);
    }

    /// Every distinct layer of `opened` as a view, each layer's DiffID
    /// checked against what its config lists (`source::view::check_views`).
    /// Views come from this cache when an earlier build recorded them;
    /// misses are read on up to `jobs` threads and recorded. A layer
    /// whose blob file lost the stamp recorded for it is hashed now (not
    /// decompressed), so its copy into the output need not hash it.
    pub(crate) fn views_of(&self, opened: &Opened, jobs: usize) -> Result<LayerViews, SourceError> {
        let mut views: BTreeMap<Digest, LayerView> = BTreeMap::new();
        let mut stamps: BTreeMap<Digest, Stamp> = BTreeMap::new();
        let mut missing: Vec<(LayerBlob, String, String)> = Vec::new();
        for image in &opened.built.images {
            let count = image.layers.len();
            for (i, layer) in image.layers.iter().enumerate() {
                if views.contains_key(&layer.digest)
                    || missing.iter().any(|(l, _, _)| l.digest == layer.digest)
                {
                    continue;
                }
                let position = format!("{}/{count}", i + 1);
                // A recorded view that disagrees with the config is read
                // again rather than believed.
                match self.get(layer).filter(|v| v.diff_id() == &layer.diff_id) {
                    Some(found) => {
                        if let Some(stamp) =
                            self.current_stamp(opened, layer, &image.platform, &position)?
                        {
                            stamps.insert(layer.digest.clone(), stamp);
                        }
                        views.insert(layer.digest.clone(), found);
                    }
                    None => missing.push((layer.clone(), image.platform.to_string(), position)),
                }
            }
        }
        let read = view::read_views(opened, &missing, jobs)?;
        let fresh = read.len();
        for (found, stamp) in read {
            self.put(&found);
            if let Some(s) = stamp {
                self.records.put_stamp(found.layer(), &s);
                stamps.insert(found.layer().clone(), s);
            }
            views.insert(found.layer().clone(), found);
        }
        view::check_views(opened, &views)?;
        Ok(LayerViews {
            views,
            stamps,
            read: fresh,
        })
    }

    /// The stamp of `layer`'s blob file when it still has the one
    /// recorded, else the one it has after it is hashed now (and recorded).
    fn current_stamp(
        &self,
        opened: &Opened,
        layer: &LayerBlob,
        platform: &crate::oci::Platform,
        position: &str,
    ) -> Result<Option<Stamp>, SourceError> {
        let store_err = |e| view::unreadable(opened, platform, position, &layer.digest, e);
        let (file, _) = opened.store.open_blob(&layer.digest).map_err(store_err)?;
        let now = Stamp::of_file(&file);
        if now.is_some() && now == self.records.stamp(&layer.digest) {
            return Ok(now);
        }
        let stamp = opened
            .store
            .verify_stamped(&layer.digest, layer.size)
            .map_err(store_err)?;
        if let Some(s) = &stamp {
            self.records.put_stamp(&layer.digest, s);
        }
        Ok(stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::view::tests::layer_in;

    #[test]
    fn a_view_round_trips_and_answers_only_its_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("s")).unwrap();
        let layer = layer_in(&store);
        let view = LayerView::read_stamped(&store, &layer).unwrap().0;

        let cache = ViewCache::open(&BlobStore::open(dir.path().join("c")).unwrap()).unwrap();
        assert!(cache.get(&layer).is_none());
        cache.put(&view);
        assert_eq!(cache.get(&layer), Some(view.clone()));
        let other = LayerBlob {
            size: layer.size + 1,
            ..layer.clone()
        };
        assert!(cache.get(&other).is_none());
        // A record that does not answer is dropped.
        assert!(cache.get(&layer).is_none());
    }
}
