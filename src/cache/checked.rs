//! Checked-layer entries: which layer blobs uncompress to which DiffID, so
//! a push of an image stele built or checked before, or a pull of one it
//! holds, uncompresses none of its layers again.
//!
//! A record `checked-layers/v<N>/<layer digest>` says that the bytes the
//! digest names, that many of them and read as that codec, uncompress to
//! a DiffID. Like a base view, it can only ever have one right answer,
//! and only two things write one: a build, for the layers it made (it
//! hashed the tar as it wrote it) or took (from the layer cache, a base's
//! checked views), and a check that uncompressed the digest's bytes
//! itself. A record is believed only when the config being checked
//! lists the same DiffID; one that disagrees is read again, so the
//! record can cost time, never decide the answer.
//!
//! Beside each record, `<layer hex>.stamps` holds the `Stamp`s of the
//! last few files found to hold the digest's bytes (a build's output, a
//! layout checked before, the cache's own copy). A blob file that still
//! has one is not read at all; any other is hashed, not uncompressed
//! (SECURITY.md: a file's stamp changes with any write to it).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::records::Records;
use crate::oci::{Built, Digest, LayerBlob};
use crate::source::unpack::{self, Codec, LayerReadError};
use crate::source::{Opened, SourceError, Unchecked};
use crate::store::{BlobStore, Stamp, StoreError};

/// Bumped when a record changes meaning.
const RECORD_FORMAT: u32 = 1;

/// Stamps kept per layer: the files a user pushes and pulls one image
/// through (an output, the cache, a pulled layout) are a handful.
const STAMPS_KEPT: usize = 8;

/// Layers checked before, in a cache folder: records under
/// `checked-layers/v<N>/`, named by layer digest.
#[derive(Clone, Debug)]
pub struct CheckedLayers {
    store: BlobStore,
    records: Records,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    layer: Digest,
    size: u64,
    /// `gzip`, `zstd` or `tar`: how the bytes were read.
    codec: String,
    diff_id: Digest,
}

/// How a check came to know each distinct layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Known from a record, the blob file unchanged since it was checked:
    /// not read at all.
    pub known: usize,
    /// Known from a record, the blob hashed (not uncompressed).
    pub hashed: usize,
    /// Uncompressed (and hashed) now, and recorded.
    pub read: usize,
    /// Of those, uncompressed as independent blocks on several threads.
    pub split: usize,
    /// The most threads one layer was uncompressed on.
    pub widest: usize,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "layers: {} checked before, {} hashed, {} uncompressed",
            self.known, self.hashed, self.read
        )?;
        if self.split > 0 {
            write!(
                f,
                " ({} of them in blocks on up to {} threads)",
                self.split, self.widest
            )?;
        }
        Ok(())
    }
}

impl CheckedLayers {
    pub(crate) fn open(store: &BlobStore) -> Result<CheckedLayers, StoreError> {
        let dir = store
            .root()
            .join("checked-layers")
            .join(format!("v{RECORD_FORMAT}"));
        Ok(CheckedLayers {
            store: store.clone(),
            records: Records::open(dir)?,
        })
    }

    /// The DiffID recorded for `layer`'s bytes, or `None` (a record that
    /// does not answer it is dropped).
    fn recorded(&self, layer: &LayerBlob, codec: Codec) -> Option<Digest> {
        let bytes = self.records.get(&self.store, &layer.digest)?;
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) if r.layer == layer.digest && r.size == layer.size && r.codec == codec.name() => {
                Some(r.diff_id)
            }
            _ => {
                self.records.remove(&layer.digest);
                None
            }
        }
    }

    /// Records that `layer`'s bytes uncompress to `diff_id`, and that the
    /// file with `stamp` holds them.
    fn put(&self, layer: &LayerBlob, codec: Codec, diff_id: &Digest, stamp: Option<&Stamp>) {
        // A record not written costs the next command time, never this
        // one its answer: failures to write the cache are not errors.
        if self.recorded(layer, codec).as_ref() != Some(diff_id) {
            let record = Record {
                layer: layer.digest.clone(),
                size: layer.size,
                codec: codec.name().into(),
                diff_id: diff_id.clone(),
            };
            let bytes = serde_json::to_vec(&record).expect("a record serializes");
            // Cheap to make again: not worth an fsync per layer.
            let _ = self
                .records
                .put_unsynced(&self.store, &layer.digest, &bytes);
        }
        if let Some(stamp) = stamp {
            self.add_stamp(&layer.digest, stamp);
        }
    }

    fn stamps(&self, layer: &Digest) -> Vec<Stamp> {
        self.records
            .side(layer, "stamps")
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn add_stamp(&self, layer: &Digest, stamp: &Stamp) {
        let mut stamps = self.stamps(layer);
        if stamps.first() == Some(stamp) {
            return;
        }
        stamps.retain(|s| s != stamp);
        stamps.insert(0, stamp.clone());
        stamps.truncate(STAMPS_KEPT);
        let bytes = serde_json::to_vec(&stamps).expect("stamps serialize");
        self.records.put_side(layer, "stamps", &bytes);
    }

    /// Records the layers of `built`, which a build just made into
    /// `store`: their DiffIDs are the build's own, and each blob file this
    /// process wrote or hashed (`BlobStore::checked_stamp`) and that still
    /// has that stamp is recorded as holding its bytes.
    pub fn record_built(&self, built: &Built, store: &BlobStore) {
        for layer in built.images.iter().flat_map(|i| &i.layers) {
            let Some(codec) = Codec::of(layer) else {
                continue;
            };
            let stamp = store.checked_stamp(&layer.digest).filter(|s| {
                store
                    .open_blob(&layer.digest)
                    .ok()
                    .and_then(|(f, _)| Stamp::of_file(&f))
                    .as_ref()
                    == Some(s)
            });
            self.put(layer, codec, &layer.diff_id, stamp.as_ref());
        }
    }

    /// Checks every layer of `unchecked` (as `Unchecked::check` does:
    /// each blob is its digest's bytes and uncompresses to the DiffID its
    /// config lists), up to `jobs` layers at once, taking what records
    /// say where the config agrees with them: a layer whose blob file has
    /// a stamp recorded for it is not read, any other recorded layer is
    /// hashed, and the rest are uncompressed and recorded.
    pub fn check(
        &self,
        unchecked: Unchecked,
        jobs: usize,
    ) -> Result<(Opened, CheckReport), SourceError> {
        let store = unchecked.image().store.clone();
        let known = AtomicUsize::new(0);
        let hashed = AtomicUsize::new(0);
        let read = AtomicUsize::new(0);
        let threads = unpack::Threads::new(jobs);
        let opened = unchecked.check_with(jobs, |layer| {
            let codec = Codec::of(layer);
            if let Some(codec) = codec {
                if self.recorded(layer, codec).as_ref() == Some(&layer.diff_id) {
                    let counter = match self.vouch(&store, layer)? {
                        true => &known,
                        false => &hashed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    return Ok(layer.diff_id.clone());
                }
            }
            let (diff_id, stamp) = unpack::checked_diff_id_on(&store, layer, &threads)?;
            if let Some(codec) = codec {
                self.put(layer, codec, &diff_id, stamp.as_ref());
            }
            read.fetch_add(1, Ordering::Relaxed);
            Ok(diff_id)
        })?;
        let report = CheckReport {
            known: known.into_inner(),
            hashed: hashed.into_inner(),
            read: read.into_inner(),
            split: threads.split_layers(),
            widest: threads.widest(),
        };
        Ok((opened, report))
    }

    /// `check` after `check_while`, whose thread read `landed` of the
    /// layers the check then finds recorded: those count as uncompressed
    /// by this command, not as checked before.
    pub fn check_landed(
        &self,
        unchecked: Unchecked,
        jobs: usize,
        landed: usize,
    ) -> Result<(Opened, CheckReport), SourceError> {
        let (opened, mut report) = self.check(unchecked, jobs)?;
        // Found recorded, whether their files' stamps vouched for them
        // or they were hashed again.
        let from_known = landed.min(report.known);
        let from_hashed = (landed - from_known).min(report.hashed);
        report.known -= from_known;
        report.hashed -= from_hashed;
        report.read += from_known + from_hashed;
        Ok((opened, report))
    }

    /// Runs `pulling` (a pull into `store`, the cache folder's own) while
    /// a thread beside it uncompresses each layer as soon as its blob
    /// lands, and records its DiffID: the check after the pull then finds
    /// those layers known, so checking overlaps the download instead of
    /// following it. The layers are learnt from the image manifests that
    /// land first. Whatever the thread has not reached when the pull ends
    /// is left to that check; what it records is only ever what the bytes
    /// give (a blob that does not check out is left to the check too).
    /// Returns `pulling`'s result and how many layers were read and
    /// recorded beside it.
    pub fn check_while<T: Send>(
        &self,
        store: &BlobStore,
        pulling: impl FnOnce() -> T + Send,
    ) -> (T, usize) {
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let follower = s.spawn(|| self.follow(store, &done));
            let result = pulling();
            done.store(true, Ordering::SeqCst);
            (
                result,
                follower.join().expect("the follower does not panic"),
            )
        })
    }

    /// `check_while`'s thread: until `done`, every blob noted in `store`
    /// that is an image manifest names layers; each such layer, once its
    /// blob is noted too, is read and recorded.
    fn follow(&self, store: &BlobStore, done: &AtomicBool) -> usize {
        let mut seen = 0;
        let mut landed: std::collections::BTreeSet<Digest> = Default::default();
        let mut layers: Vec<LayerBlob> = Vec::new();
        let mut read: std::collections::BTreeSet<Digest> = Default::default();
        let mut recorded = 0;
        while !done.load(Ordering::SeqCst) {
            let ready = layers.iter().any(|l| landed.contains(&l.digest));
            let wait = std::time::Duration::from_millis(if ready { 0 } else { 50 });
            let new = store.checked_after(seen, wait);
            seen += new.len();
            for digest in new {
                layers.extend(layers_named(store, &digest));
                landed.insert(digest);
            }
            let Some(i) = layers.iter().position(|l| landed.contains(&l.digest)) else {
                continue;
            };
            let layer = layers.swap_remove(i);
            if !read.insert(layer.digest.clone()) {
                continue;
            }
            if let (Some(codec), Ok((diff_id, stamp))) =
                (Codec::of(&layer), unpack::checked_diff_id(store, &layer))
            {
                self.put(&layer, codec, &diff_id, stamp.as_ref());
                recorded += 1;
            }
        }
        recorded
    }

    /// Makes sure `layer`'s blob in `store` holds its digest's bytes:
    /// true when its file has a stamp recorded for them (not read), false
    /// when it was hashed now (and its stamp recorded).
    fn vouch(&self, store: &BlobStore, layer: &LayerBlob) -> Result<bool, LayerReadError> {
        let store_err = |e| LayerReadError::Store {
            digest: layer.digest.clone(),
            error: Box::new(e),
        };
        let (file, _) = store.open_blob(&layer.digest).map_err(store_err)?;
        if let Some(now) = Stamp::of_file(&file) {
            let this_run = store.checked_stamp(&layer.digest).as_ref() == Some(&now);
            if this_run || self.stamps(&layer.digest).contains(&now) {
                // A copy of it into an output need not hash it either.
                store.note_checked(&layer.digest, &now);
                return Ok(true);
            }
        }
        if let Some(stamp) = store
            .verify_stamped(&layer.digest, layer.size)
            .map_err(store_err)?
        {
            self.add_stamp(&layer.digest, &stamp);
        }
        Ok(false)
    }
}

/// The layers `digest` names when it is an image manifest in `store`
/// (small enough to be one, and parsed as one), each as a `LayerBlob`
/// whose `diff_id` is unknown yet (its digest stands in).
fn layers_named(store: &BlobStore, digest: &Digest) -> Vec<LayerBlob> {
    let limit = crate::oci::media::MANIFEST_LIMIT;
    let Ok(bytes) = store.read_verified(digest, None, limit) else {
        return Vec::new();
    };
    let Ok(manifest) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) else {
        return Vec::new();
    };
    manifest
        .layers()
        .iter()
        .filter_map(|d| {
            let layer = crate::oci::our_digest(d.digest()).ok()?;
            Some(LayerBlob {
                media_type: d.media_type().clone(),
                diff_id: layer.clone(),
                digest: layer,
                size: d.size(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
