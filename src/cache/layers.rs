//! Layer entries: a layer written once is found again by its key
//! (`layer::layer_key`, over everything that decides its bytes), so a
//! rebuild with nothing changed reads no package file and compresses
//! nothing.
//!
//! A record `layers/v<N>/<key>` names the layer's descriptor fields; the
//! blob is in the cache's blob store, copied (never hard-linked) to and
//! from outputs, and checked against its digest and size as it is copied
//! out. A missing or damaged record or blob is a miss (and is dropped),
//! never a wrong image.

use oci_spec::image::MediaType;
use serde::{Deserialize, Serialize};

use super::records::Records;
use crate::layer::Encoding;
use crate::oci::{Digest, LayerBlob};
use crate::store::{BlobStore, StoreError};

/// Bumped when the record changes meaning.
const RECORD_FORMAT: u32 = 1;

/// Layers of earlier builds, in a cache folder's blob store.
#[derive(Clone, Debug)]
pub struct LayerCache {
    store: BlobStore,
    records: Records,
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

impl LayerCache {
    /// The layer cache beside the blobs of an opened cache folder: records
    /// in `<root>/layers/`, created if needed.
    pub(crate) fn open(store: &BlobStore) -> Result<LayerCache, StoreError> {
        let records = Records::open(
            store
                .root()
                .join("layers")
                .join(format!("v{RECORD_FORMAT}")),
        )?;
        Ok(LayerCache {
            store: store.clone(),
            records,
        })
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

    /// The store layers are kept in: `layer::write_layer_to` may write
    /// there directly, and `record` then names the result.
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
        // Read verified, so a record torn by a crash is a miss: two
        // fsyncs per layer would cost a cold build more than that.
        self.records.put_unsynced(&self.store, key, &bytes)
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
    use crate::layer::test_support::*;

    use crate::layer::layer_key;

    #[test]
    fn hits_are_checked_and_damage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&BlobStore::open(dir.path().join("cache")).unwrap()).unwrap();
        let first = BlobStore::open(dir.path().join("first")).unwrap();
        let t = tree();
        let key = layer_key(&t, GZIP, "test");
        let layer = crate::layer::write_layer(&t, GZIP, &first, None).unwrap();
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
