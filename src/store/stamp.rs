//! Stamps: which file a blob is and when it last changed, so bytes found
//! to be a digest's are not hashed again while the file keeps its stamp;
//! and `Checked`, the blob files a store's process wrote or hashed itself.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::oci::Digest;

/// Which file a blob is, and when it last changed, as the kernel keeps
/// them: device, inode, size, mtime and ctime. Any write through the file
/// system moves the ctime to the current time, and nothing but the kernel
/// sets it, so a file with the same stamp as when its bytes were checked
/// has not been written since (the argument git's index and make rest on;
/// raw writes to the disk device and a clock set back are outside it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(crate) fn of_file(file: &File) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata().ok()?;
        m.is_file().then(|| Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The blob files of one store that this process wrote (hashing every
/// byte on the way in) or hashed whole, each with the stamp its file had
/// then, in the order they were noted. Shared by a store's clones; never
/// saved: what outlives the process is the cache's to keep
/// (`cache::checked`, `cache::views`), by the same stamps. A file that
/// has another stamp now is not vouched for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Checked {
    inner: Arc<(Mutex<Noted>, Condvar)>,
}

#[derive(Debug, Default)]
struct Noted {
    files: BTreeMap<Digest, Stamp>,
    order: Vec<Digest>,
}

impl Checked {
    fn noted(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `file` was found (or made) to hold `digest`'s bytes.
    pub fn note(&self, digest: &Digest, file: &File) {
        if let Some(stamp) = Stamp::of_file(file) {
            self.note_stamp(digest, stamp);
        }
    }

    pub fn note_stamp(&self, digest: &Digest, stamp: Stamp) {
        let mut noted = self.noted();
        if noted.files.insert(digest.clone(), stamp).is_none() {
            noted.order.push(digest.clone());
        }
        self.inner.1.notify_all();
    }

    /// The stamp `digest`'s file had when it was found to hold its bytes.
    pub fn stamp(&self, digest: &Digest) -> Option<Stamp> {
        self.noted().files.get(digest).cloned()
    }

    /// The digests noted after the first `seen`, waiting up to `wait` for
    /// one when there are none yet.
    pub fn noted_after(&self, seen: usize, wait: Duration) -> Vec<Digest> {
        let noted = self.noted();
        let (noted, _) = self
            .inner
            .1
            .wait_timeout_while(noted, wait, |n| n.order.len() <= seen)
            .unwrap_or_else(|e| e.into_inner());
        noted.order.get(seen..).unwrap_or_default().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use crate::oci::Digest;
    use crate::store::{BlobStore, Stamp};

    fn stamp_now(store: &BlobStore, digest: &Digest) -> Option<Stamp> {
        Stamp::of_file(&store.open_blob(digest).unwrap().0)
    }

    /// A store vouches for the files it wrote or hashed, and for no other:
    /// a file someone else put there, or one written since, is not.
    #[test]
    fn a_store_vouches_only_for_files_it_wrote_or_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let written = store.put_bytes(b"written here").unwrap();
        assert_eq!(store.checked_stamp(&written), stamp_now(&store, &written));

        let placed = Digest::of(b"placed by another");
        std::fs::write(store.path(&placed), b"placed by another").unwrap();
        assert_eq!(store.checked_stamp(&placed), None);
        store.verify(&placed, 17).unwrap();
        assert_eq!(store.checked_stamp(&placed), stamp_now(&store, &placed));

        std::fs::write(store.path(&written), b"written HERE").unwrap();
        assert_ne!(store.checked_stamp(&written), stamp_now(&store, &written));
        // Its copy is hashed, so refused.
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        assert!(out.copy_checked_from(&store, &written, 12).is_err());
        // A clone shares what the store knows; another opening does not.
        assert!(store.clone().checked_stamp(&placed).is_some());
        assert!(BlobStore::open(dir.path())
            .unwrap()
            .checked_stamp(&placed)
            .is_none());
    }
}
