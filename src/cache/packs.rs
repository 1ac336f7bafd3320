//! Pack entries: each .deb unpacked once (`dpkg::unpack`) and found again
//! by its sha256, so a later build neither reads nor decompresses it.
//!
//! The pack and the index are blobs of the cache's store; the record
//! `unpacked/v<unpack format>/<deb sha256>` is the index itself. A record
//! is used only when its index describes the package asked for, fits its
//! pack, and the pack hashes whole (or its file still has the stamp it had
//! when it last did, `<deb hex>.stamp` beside the record): a flipped byte
//! anywhere makes the package a miss, unpacked again from its .deb, never
//! a build that fails on or trusts a damaged file. A record that is
//! missing, damaged or of another format version is a miss.

use super::records::Records;
use crate::dpkg::unpack::{self, UnpackError, UnpackedDeb, UNPACK_FORMAT};
use crate::fstree::pack_found_whole;
use crate::oci::Digest;
use crate::store::{BlobStore, Stamp, StoreError};

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
        self.pack_whole(deb, digest, size).then_some(unpacked)
    }

    /// Whether the pack `digest` of `deb` is whole: its file still has
    /// the stamp it had when it last hashed whole (beside the record,
    /// `<deb hex>.stamp`), or it hashes whole now (and that is recorded).
    /// A pack is most of a warm build's reading; any write to it moves
    /// its stamp (SECURITY.md), so it is hashed again then.
    fn pack_whole(&self, deb: &Digest, digest: &Digest, size: u64) -> bool {
        if let Ok((file, _)) = self.store.open_blob(digest) {
            if let Some(now) =
                Stamp::of_file(&file).filter(|s| Some(s) == self.records.stamp(deb).as_ref())
            {
                self.store.note_checked(digest, &now);
                pack_found_whole(&self.store.path(digest), &now);
                return true;
            }
        }
        match self.store.verify_stamped(digest, size) {
            Ok(stamp) => {
                if let Some(s) = stamp {
                    self.records.put_stamp(deb, &s);
                    pack_found_whole(&self.store.path(digest), &s);
                }
                true
            }
            Err(_) => false,
        }
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
        // The pack this process just wrote (hashing every byte) is whole
        // while its file keeps that stamp: recorded now, so the next
        // build takes it without hashing it (`pack_whole`).
        let (digest, _) = unpacked.pack();
        if let (Some(written), Ok((file, _))) = (
            self.store.checked_stamp(digest),
            self.store.open_blob(digest),
        ) {
            if Stamp::of_file(&file).as_ref() == Some(&written) {
                self.records.put_stamp(deb, &written);
                pack_found_whole(&self.store.path(digest), &written);
            }
        }
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

    /// A package this process unpacked is recorded with its pack's
    /// stamp, so the next build takes it unhashed.
    #[test]
    fn a_pack_written_here_is_recorded_with_its_stamp() {
        let bytes = sample();
        let (dir, cache, digest) = cache_with(&bytes);
        let unpacked = cache.unpack("t", &digest, bytes.len() as u64).unwrap();
        let (pack, _) = unpacked.pack();
        let file = std::fs::File::open(dir.path().join("blobs/sha256").join(pack.hex())).unwrap();
        assert_eq!(cache.records.stamp(&digest), Stamp::of_file(&file));
        assert!(cache.records.stamp(&digest).is_some());
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

    /// A pack found whole is not hashed again while its file keeps the
    /// stamp recorded beside the record; any write to it moves the stamp,
    /// so damage written after a load is still found.
    #[test]
    fn a_pack_is_hashed_again_only_once_written() {
        let bytes = sample();
        let (dir, cache, digest) = cache_with(&bytes);
        let unpacked = cache.unpack("t.deb", &digest, bytes.len() as u64).unwrap();
        // Recorded as written (`a_pack_written_here_is_recorded_with_its_stamp`).
        assert!(cache.load(&digest).is_some());
        let (pack, _) = unpacked.pack();
        let path = cache.store.path(pack);
        let stamp = cache.records.stamp(&digest).expect("recorded when written");
        let now = |p: &std::path::Path| Stamp::of_file(&std::fs::File::open(p).unwrap());
        assert_eq!(Some(stamp.clone()), now(&path));
        assert!(dir
            .path()
            .join("unpacked/v1")
            .join(format!("{}.stamp", digest.hex()))
            .is_file());

        // Written in place with the same bytes: hashed, found whole, and
        // the new stamp recorded.
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data).unwrap();
        assert!(cache.load(&digest).is_some());
        assert_ne!(cache.records.stamp(&digest), Some(stamp));
        assert_eq!(cache.records.stamp(&digest), now(&path));

        let mut damaged = data.clone();
        damaged[30] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
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
