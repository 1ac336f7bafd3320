//! Pack entries: each .deb unpacked once (`dpkg::unpack`) and found again
//! by its sha256, so a later build neither reads nor decompresses it.
//!
//! The pack and the index are blobs of the cache's store; the record
//! `unpacked/v<unpack format>/<deb sha256>` is the index itself. A record
//! is used only when its index describes the package asked for, fits its
//! pack, and the pack hashes whole: a flipped byte anywhere makes the
//! package a miss, unpacked again from its .deb, never a build that fails
//! on or trusts a damaged file. A record that is missing, damaged or of
//! another format version is a miss.

use super::records::Records;
use crate::dpkg::unpack::{self, UnpackError, UnpackedDeb, UNPACK_FORMAT};
use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};

/// The unpacked packages of a cache folder.
#[derive(Clone, Debug)]
pub struct PackCache {
    store: BlobStore,
    records: Records,
}

impl PackCache {
    /// The packs of `store` (records under `<root>/unpacked/`).
    pub(crate) fn open(store: &BlobStore) -> Result<PackCache, StoreError> {
        let dir = store
            .root()
            .join("unpacked")
            .join(format!("v{UNPACK_FORMAT}"));
        Ok(PackCache {
            store: store.clone(),
            records: Records::open(dir)?,
        })
    }

    /// The package `deb` as unpacked before, if its record, index and pack
    /// are all there and whole (the pack's files are checked as read).
    pub fn load(&self, deb: &Digest) -> Option<UnpackedDeb> {
        let bytes = self.records.get(&self.store, deb)?;
        let found = self.checked(&bytes, deb);
        if found.is_none() {
            self.records.remove(deb);
        }
        found
    }

    /// The index `bytes` for `deb`, checked as a record of this cache is:
    /// it describes `deb`, fits its pack, and the pack hashes whole.
    fn checked(&self, bytes: &[u8], deb: &Digest) -> Option<UnpackedDeb> {
        let unpacked = UnpackedDeb::from_index(bytes, deb, &self.store)?;
        let (digest, size) = unpacked.pack();
        self.store.verify(digest, size).is_ok().then_some(unpacked)
    }

    /// Records `unpacked` (its pack in this cache's store) as `deb`.
    pub fn record(&self, deb: &Digest, unpacked: &UnpackedDeb) -> Result<(), StoreError> {
        self.records.put(&self.store, deb, &unpacked.index_bytes())
    }

    /// Unpacks the cached .deb `deb` (`size` bytes, as the lock says) and
    /// records it. `label` names the package in errors.
    pub fn unpack(&self, label: &str, deb: &Digest, size: u64) -> Result<UnpackedDeb, UnpackError> {
        let unpacked = unpack::unpack(&self.store, label, deb, size)?;
        self.record(deb, &unpacked)?;
        Ok(unpacked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::unpack::tests::{assert_same, sample};

    fn cache_with(bytes: &[u8]) -> (tempfile::TempDir, PackCache, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = store.put_bytes(bytes).unwrap();
        (dir, PackCache::open(&store).unwrap(), digest)
    }

    #[test]
    fn an_unpacked_package_is_found_again() {
        let bytes = sample();
        let (_dir, cache, digest) = cache_with(&bytes);
        assert!(cache.load(&digest).is_none());
        let unpacked = cache.unpack("t", &digest, bytes.len() as u64).unwrap();
        let reloaded = cache.load(&digest).expect("recorded");
        assert_same(&reloaded.contents(2_000), &unpacked.contents(2_000));
    }

    #[test]
    fn a_damaged_record_or_pack_is_a_miss() {
        let bytes = sample();
        let (dir, cache, digest) = cache_with(&bytes);
        let unpacked = cache.unpack("t.deb", &digest, bytes.len() as u64).unwrap();

        // A pointer naming another blob: no record.
        let pointer = dir.path().join("unpacked/v1").join(digest.hex());
        let good_pointer = std::fs::read(&pointer).unwrap();
        std::fs::write(&pointer, format!("{digest}\n")).unwrap();
        assert!(cache.load(&digest).is_none());
        assert!(
            !pointer.exists(),
            "a record that does not check out is dropped"
        );

        // The index itself damaged: its digest no longer matches.
        std::fs::write(&pointer, &good_pointer).unwrap();
        let index_path = dir
            .path()
            .join("blobs/sha256")
            .join(&std::str::from_utf8(&good_pointer).unwrap().trim()[7..]);
        let mut index = std::fs::read(&index_path).unwrap();
        let at = index.len() / 2;
        index[at] ^= 1;
        std::fs::write(&index_path, &index).unwrap();
        assert!(cache.load(&digest).is_none());

        // The pack flipped in place: the whole package is a miss.
        cache.unpack("t.deb", &digest, bytes.len() as u64).unwrap();
        let (pack, _) = unpacked.pack();
        let path = cache.store.path(pack);
        let mut data = std::fs::read(&path).unwrap();
        data[30] ^= 0xff;
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &data).unwrap();
        assert!(cache.load(&digest).is_none());
    }

    #[test]
    fn a_deb_that_is_not_the_locked_one_records_nothing() {
        let bytes = sample();
        let (_dir, cache, digest) = cache_with(&bytes);
        assert!(cache
            .unpack("t.deb", &digest, bytes.len() as u64 + 1)
            .is_err());
        assert!(cache.load(&digest).is_none(), "nothing recorded");
    }
}
