//! A blob written into two stores at once (a build's output and its
//! layer cache, `BlobWriter::mirror_into`) is one file under two names.

use std::fs::{self, File};

use super::{BlobStore, Stamp, StoreError};
use crate::oci::Digest;

/// Numbers `BlobStore::link_from`'s temp names within this process.
static LINKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl BlobStore {
    /// Gives this store the blob `digest` that `other` just wrote
    /// (`BlobWriter::mirror_into`), open as `file`: a hard link to the
    /// same file when both are on one file system and this store has no
    /// file by that name, else a checked copy (`copy_stamped_from`).
    ///
    /// The two names are then one file, so a write into either in place
    /// changes both. Stele never writes a blob in place (a blob is a temp
    /// file renamed); whatever else does moves the file's ctime, which
    /// every stamp recorded for it names (SECURITY.md), so it is hashed
    /// again before anyone takes it, and refused as not its digest's
    /// bytes. Linking moves the ctime too, so both stores note the stamp
    /// the file has once linked, as `persist` notes the one it has once
    /// renamed. Both names are made by this process: the umask gave the
    /// one mode they share.
    pub(super) fn link_from(
        &self,
        other: &BlobStore,
        digest: &Digest,
        size: u64,
        file: &File,
    ) -> Result<(), StoreError> {
        let dest = self.path(digest);
        // Linked under a temp name, then renamed over whatever has the
        // name (a damaged blob is replaced, as `persist` replaces one).
        // `file` is open and holds its temp file's lock, so no sweep
        // takes the temp name (`sweep_stale`); rename leaves it when both
        // names are one file already.
        let temp = self.dir().join(format!(
            ".tmp-link-{}-{}",
            std::process::id(),
            LINKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let linked = fs::hard_link(other.path(digest), &temp)
            .and_then(|()| fs::rename(&temp, &dest))
            .is_ok();
        let _ = fs::remove_file(&temp);
        if linked {
            let linked = File::open(&dest).ok();
            let stamp = linked.as_ref().and_then(Stamp::of_file);
            // The same file (device and inode) through both names.
            match stamp {
                Some(stamp) if Some(&stamp) == Stamp::of_file(file).as_ref() => {
                    other.checked.note_stamp(digest, stamp.clone());
                    self.checked.note_stamp(digest, stamp);
                    return Ok(());
                }
                _ => {}
            }
            let _ = fs::remove_file(&dest);
        }
        self.copy_stamped_from(other, digest, size, Stamp::of_file(file).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::io::Write;

    use super::super::{BlobStore, Stamp, StoreError};

    /// A mirrored blob is written once: the second store's name is a
    /// hard link to the same file. A write into either name in place is
    /// caught: the stamps noted no longer match, and the other store's
    /// blob fails its check.
    #[test]
    fn a_mirrored_blob_is_one_file_and_a_change_in_place_is_caught() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        let cache = BlobStore::open(dir.path().join("cache")).unwrap();
        let mut blob = out.begin().unwrap().mirror_into(&cache).unwrap();
        blob.write_all(b"layer").unwrap();
        let (digest, _) = blob.finish().unwrap();
        let ino = |s: &BlobStore| fs::metadata(s.path(&digest)).unwrap().ino();
        assert_eq!(ino(&out), ino(&cache));
        let now = |s: &BlobStore| Stamp::of_file(&File::open(s.path(&digest)).unwrap());
        assert_eq!(out.checked_stamp(&digest), now(&out));
        assert_eq!(cache.checked_stamp(&digest), now(&cache));
        // Someone edits the output's blob in place, same size.
        fs::write(out.path(&digest), b"LAYER").unwrap();
        assert_ne!(cache.checked_stamp(&digest), now(&cache));
        let later = BlobStore::open(dir.path().join("cache")).unwrap();
        assert!(matches!(
            later.verify(&digest, 5),
            Err(StoreError::Mismatch { .. })
        ));
        assert!(BlobStore::open(dir.path().join("elsewhere"))
            .unwrap()
            .copy_checked_from(&later, &digest, 5)
            .is_err());
    }
}
