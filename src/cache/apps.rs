//! Application package archives (wheels, npm tarballs) unpacked once
//! (`apps::archive`) and found again by the archive's sha256, as packs of
//! .debs are (`packs`); and, since npm locks name a tarball by its
//! `integrity` (a sha512), which cached blob a checked integrity turned
//! out to be.
//!
//! `app-unpacked/v<format>/<archive sha256>` is the index itself, used
//! only when it describes the archive asked for and its pack hashes
//! whole; `npm-integrity/v1/<sha256 of the integrity>` names the blob a
//! download with that integrity was checked to be (written only after
//! the check). Anything missing or damaged is a miss.

use super::records::Records;
use crate::apps::archive::{self, ArchiveError, ArchiveKind, Unpacked, ARCHIVE_FORMAT};
use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};

/// The unpacked application archives of a cache folder.
#[derive(Clone, Debug)]
pub struct AppPacks {
    store: BlobStore,
    unpacked: Records,
    integrity: Records,
}

impl AppPacks {
    pub fn open(store: &BlobStore) -> Result<AppPacks, StoreError> {
        let root = store.root();
        Ok(AppPacks {
            store: store.clone(),
            unpacked: Records::open(root.join("app-unpacked").join(format!("v{ARCHIVE_FORMAT}")))?,
            integrity: Records::open(root.join("npm-integrity").join("v1"))?,
        })
    }

    /// The archive `digest` as unpacked before, if its record and pack
    /// are whole.
    pub fn load(&self, digest: &Digest, kind: ArchiveKind) -> Option<Unpacked> {
        let bytes = self.unpacked.get(&self.store, digest)?;
        let found = Unpacked::from_index(&bytes, digest, kind, &self.store).filter(|u| {
            let (pack, size) = u.pack();
            self.store.verify(pack, size).is_ok()
        });
        if found.is_none() {
            self.unpacked.remove(digest);
        }
        found
    }

    /// Unpacks the cached archive `digest` and records it.
    pub fn unpack(
        &self,
        label: &str,
        digest: &Digest,
        size: u64,
        kind: ArchiveKind,
    ) -> Result<Unpacked, ArchiveError> {
        let unpacked = archive::unpack(&self.store, label, digest, size, kind)?;
        self.unpacked
            .put(&self.store, digest, &unpacked.index_bytes())?;
        Ok(unpacked)
    }

    /// The blob an npm integrity (its key) was checked to be.
    pub fn integrity(&self, key: &Digest) -> Option<Digest> {
        let bytes = self.integrity.get(&self.store, key)?;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }

    /// Records that the integrity `key` is the blob `digest` (checked).
    pub fn record_integrity(&self, key: &Digest, digest: &Digest) -> Result<(), StoreError> {
        self.integrity
            .put(&self.store, key, format!("{digest}\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpacked_archive_is_found_again_and_a_damaged_pack_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let zip = crate::apps::zip::tests::make(&[("m/__init__.py", b"x = 1\n", 0o100644, true)]);
        let digest = store.put_bytes(&zip).unwrap();
        let packs = AppPacks::open(&store).unwrap();
        assert!(packs.load(&digest, ArchiveKind::Wheel).is_none());
        let u = packs
            .unpack("m 1", &digest, zip.len() as u64, ArchiveKind::Wheel)
            .unwrap();
        assert!(packs.load(&digest, ArchiveKind::Wheel).is_some());
        assert!(packs.load(&digest, ArchiveKind::NpmTarball).is_none());
        // The miss dropped the record: unpack again, then damage the pack.
        packs
            .unpack("m 1", &digest, zip.len() as u64, ArchiveKind::Wheel)
            .unwrap();
        let path = store.path(u.pack().0);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"damaged").unwrap();
        assert!(packs.load(&digest, ArchiveKind::Wheel).is_none());
        let key = Digest::of(b"npm-integrity:sha512-x");
        assert_eq!(packs.integrity(&key), None);
        packs.record_integrity(&key, &digest).unwrap();
        assert_eq!(packs.integrity(&key), Some(digest));
    }
}
