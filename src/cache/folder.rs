//! The local cache folder (`~/.cache/stele` unless `--cache-dir` says
//! otherwise), opened once per command, and its lock.
//!
//! Layout:
//!
//! ```text
//! blobs/sha256/<hex>          every blob: downloaded .debs and apt indexes,
//!                             packs and their indexes, layers, base images'
//!                             blobs, records (store::BlobStore)
//! layers/v<N>/<key>           layer entries (layers)
//! unpacked/v<N>/<deb sha256>  pack entries (packs)
//! base-views/v<N>/<digest>    base-view entries, and <digest>.stamp (views)
//! checked-layers/v<N>/<digest> checked-layer entries, and <digest>.stamps
//!                             (checked)
//! builders/<stamp sha256>     the executable-digest memo (memo)
//! lock                        held shared by commands, exclusively by prune
//! ```
//!
//! Every blob's modification time is when a command last used it, to the
//! hour (`BlobStore::touching`): `prune` removes the least recently used.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::checked::CheckedLayers;
use super::layers::LayerCache;
use super::packs::PackCache;
use super::views::ViewCache;
use crate::store::{BlobStore, StoreError};

/// The lock file in a cache folder's root.
pub const LOCK_FILE: &str = "lock";

/// The cache folder, opened once: downloads, packs, views and layers
/// share one content-addressed blob store.
///
/// While any clone of it lives, the process holds a shared lock on the
/// folder (`LOCK_FILE`): `stele cache prune` takes it exclusively, so it
/// never removes what a running command uses.
#[derive(Clone, Debug)]
pub struct Cache {
    blobs: BlobStore,
    packs: PackCache,
    views: ViewCache,
    checked: CheckedLayers,
    _lock: Option<Arc<File>>,
}

impl Cache {
    /// Opens the cache at `root`; what it uses is marked used `now`, to
    /// the hour (`BlobStore::touching`).
    pub fn open(root: &Path, now: SystemTime) -> Result<Cache, StoreError> {
        let hour_ago = now
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or(UNIX_EPOCH);
        let blobs = BlobStore::open(root)?.touching(hour_ago);
        // A cache this user cannot lock (a read-only one) is used
        // unlocked: this user cannot prune it either.
        let lock = lock(root, false, true).ok().flatten().map(Arc::new);
        let packs = PackCache::open(&blobs)?;
        let views = ViewCache::open(&blobs)?;
        let checked = CheckedLayers::open(&blobs)?;
        Ok(Cache {
            blobs,
            packs,
            views,
            checked,
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        self.blobs.root()
    }

    /// The blob store everything in the folder lives in: downloads go
    /// straight into it (`apt::fetch::Fetcher`), as do registry pulls.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Packages unpacked before.
    pub fn packs(&self) -> &PackCache {
        &self.packs
    }

    /// Base layers' views.
    pub fn views(&self) -> &ViewCache {
        &self.views
    }

    /// Layers whose DiffIDs were checked before.
    pub fn checked(&self) -> &CheckedLayers {
        &self.checked
    }

    /// Layers of earlier builds (the folder is created on first use, so
    /// `--no-layer-cache` leaves none).
    pub fn layers(&self) -> Result<LayerCache, StoreError> {
        LayerCache::open(&self.blobs)
    }
}

/// Takes the lock of the cache `root` (creating the file, never through a
/// link): shared for commands that use the cache, exclusive for prune.
/// With `wait` false, `Ok(None)` when another process holds a lock that
/// conflicts.
pub fn lock(root: &Path, exclusive: bool, wait: bool) -> io::Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(root.join(LOCK_FILE))?;
    let mut op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    if !wait {
        op |= libc::LOCK_NB;
    }
    loop {
        // SAFETY: a valid descriptor for the call's duration.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Some(file));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(None),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_cannot_lock_while_a_command_uses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let shared = lock(dir.path(), false, true).unwrap().unwrap();
        assert!(lock(dir.path(), true, false).unwrap().is_none());
        assert!(lock(dir.path(), false, false).unwrap().is_some());
        drop(shared);
        assert!(lock(dir.path(), true, false).unwrap().is_some());
        let cache = Cache::open(dir.path(), SystemTime::now()).unwrap();
        assert!(lock(dir.path(), true, false).unwrap().is_none());
        drop(cache);
        assert!(lock(dir.path(), true, false).unwrap().is_some());
    }
}
