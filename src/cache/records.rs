//! Records: how every kind of entry in the cache folder is found by its
//! key. A record is a small JSON blob in the folder's `BlobStore`; a
//! pointer file `<kind>/v<N>/<key hex>` holds the record's digest.
//! Records are read back verified, so a damaged or half-written pointer
//! or record reads as absent (a cache miss), never as another answer.
//! `prune` relies on this shape: a pointer names one record blob, and a
//! record names the blobs it needs by `sha256:` digest.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use crate::oci::Digest;
use crate::store::{
    open_untrusted, read_limited, sweep_stale, temp_file_in, BlobStore, Stamp, StoreError,
};

/// Records are a few hundred kilobytes at most (a large package's index).
pub(crate) const RECORD_LIMIT: u64 = 64 << 20;

/// The pointers of one kind of entry.
#[derive(Clone, Debug)]
pub(crate) struct Records {
    dir: PathBuf,
}

impl Records {
    /// Opens (creating if needed) the pointer folder `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Records, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StoreError::Io {
            path: dir.clone(),
            error: e,
        })?;
        sweep_stale(&dir, ".tmp-");
        Ok(Records { dir })
    }

    pub(crate) fn pointer_path(&self, key: &Digest) -> PathBuf {
        self.dir.join(key.hex())
    }

    /// The record stored under `key`, or `None` when there is none or it
    /// does not check out.
    pub fn get(&self, store: &BlobStore, key: &Digest) -> Option<Vec<u8>> {
        // A pointer is one digest line; anything longer is not one.
        let (file, _) = open_untrusted(&self.dir, key.hex()).ok()?;
        store.mark_used(&file);
        let pointer = read_limited(file, 128).ok()??;
        let text = std::str::from_utf8(&pointer).ok()?;
        let digest: Digest = text.trim_end().parse().ok()?;
        store.read_verified(&digest, None, RECORD_LIMIT).ok()
    }

    /// Stores `record` under `key`: the blob first, then the pointer, each
    /// complete before it gets its name.
    pub fn put(&self, store: &BlobStore, key: &Digest, record: &[u8]) -> Result<(), StoreError> {
        self.put_syncing(store, key, record, true)
    }

    /// `put` without waiting for the disk: for records cheap to make
    /// again, where an fsync would cost more than a miss after a crash.
    /// Both files are read verified, so a torn one is a miss.
    pub fn put_unsynced(
        &self,
        store: &BlobStore,
        key: &Digest,
        record: &[u8],
    ) -> Result<(), StoreError> {
        self.put_syncing(store, key, record, false)
    }

    fn put_syncing(
        &self,
        store: &BlobStore,
        key: &Digest,
        record: &[u8],
        sync: bool,
    ) -> Result<(), StoreError> {
        store.remove_if_damaged(&Digest::of(record), record.len() as u64);
        let digest = match sync {
            true => store.put_bytes(record)?,
            false => store.put_bytes_unsynced(record)?,
        };
        let dest = self.pointer_path(key);
        let io_err = |e| StoreError::Io {
            path: dest.clone(),
            error: e,
        };
        let mut temp = temp_file_in(&self.dir, ".tmp-").map_err(io_err)?;
        temp.write_all(format!("{digest}\n").as_bytes())
            .map_err(io_err)?;
        if sync {
            temp.as_file().sync_all().map_err(io_err)?;
        }
        temp.persist(&dest).map_err(|e| io_err(e.error))?;
        Ok(())
    }

    /// Forgets `key` (a record found damaged or stale).
    pub fn remove(&self, key: &Digest) {
        let _ = fs::remove_file(self.pointer_path(key));
    }

    /// The `Stamp` kept beside `key`'s pointer (`<key hex>.stamp`): the
    /// blob file its record names, when last found whole.
    pub fn stamp(&self, key: &Digest) -> Option<Stamp> {
        serde_json::from_slice(&self.side(key, "stamp")?).ok()
    }

    pub fn put_stamp(&self, key: &Digest, stamp: &Stamp) {
        self.put_side(
            key,
            "stamp",
            &serde_json::to_vec(stamp).expect("a stamp serializes"),
        );
    }

    /// The small file `<key hex>.<what>` beside `key`'s pointer (it goes
    /// with the pointer when pruned); anything unreadable is `None`.
    pub fn side(&self, key: &Digest, what: &str) -> Option<Vec<u8>> {
        let name = format!("{}.{what}", key.hex());
        let (file, _) = open_untrusted(&self.dir, &name).ok()?;
        read_limited(file, 64 * 1024).ok()?
    }

    /// Writes `<key hex>.<what>` whole (temp file, rename), unsynced: a
    /// side file lost or torn in a crash reads as absent. Best effort,
    /// like every cache write that only spares work.
    pub fn put_side(&self, key: &Digest, what: &str, bytes: &[u8]) {
        let Ok(mut temp) = temp_file_in(&self.dir, ".tmp-") else {
            return;
        };
        if temp.write_all(bytes).is_ok() {
            let _ = temp.persist(self.dir.join(format!("{}.{what}", key.hex())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_record_reads_back_only_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let records = Records::open(dir.path().join("kind/v1")).unwrap();
        let key = Digest::of(b"key");
        assert!(records.get(&store, &key).is_none());
        records.put(&store, &key, b"{\"a\":1}").unwrap();
        assert_eq!(records.get(&store, &key).unwrap(), b"{\"a\":1}");
        // A pointer gets its mode from the umask, as blobs do.
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let blob = store.path(&Digest::of(b"{\"a\":1}"));
        assert_eq!(mode(&records.pointer_path(&key)), mode(&blob));

        // A pointer naming a blob that is not a record's digest, or no
        // digest at all, reads as absent.
        fs::write(records.pointer_path(&key), format!("{key}\n")).unwrap();
        assert!(records.get(&store, &key).is_none());
        fs::write(records.pointer_path(&key), "sha256:12").unwrap();
        assert!(records.get(&store, &key).is_none());
        records.remove(&key);
        assert!(!records.pointer_path(&key).exists());
    }
}
