//! Everything a pipeline run needs to know about its surroundings,
//! decided once by the CLI from flags and the environment.

use std::path::{Path, PathBuf};

use crate::apt::fetch::Fetcher;
use crate::apt::sources::AptSettings;
use crate::dpkg::unpack::UnpackCache;
use crate::layer::LayerCache;
use crate::registry::RegistrySettings;
use crate::source::view::ViewCache;
use crate::store::{BlobStore, StoreError};
use crate::transport::Transport;

/// What to do when the lockfile is missing or stale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockPolicy {
    /// Resolve again (the caller writes the new lockfile after success).
    #[default]
    Update,
    /// Fail: CI's `--locked`, and every rebuild.
    Locked,
}

/// Who builds: what provenance names, and what the layer cache keys by.
#[derive(Clone, Debug)]
pub struct Builder {
    /// SLSA `builder.id`.
    pub id: String,
    pub version: String,
    /// This executable as the layer cache's keys name it, so layers that
    /// another build of stele wrote are never taken.
    pub identity: String,
}

/// The cache folder, opened once: downloads, unpacked packages and layers
/// share one content-addressed blob store.
///
/// While any clone of it lives, the process holds a shared lock on the
/// folder (`super::prune::LOCK_FILE`): `stele cache prune` takes it
/// exclusively, so it never removes what a running command uses.
#[derive(Clone, Debug)]
pub struct Cache {
    blobs: BlobStore,
    unpacked: UnpackCache,
    views: ViewCache,
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

impl Cache {
    /// Opens the cache at `root`; what it uses is marked used `now`, to
    /// the hour (`BlobStore::touching`).
    pub fn open(root: &Path, now: std::time::SystemTime) -> Result<Cache, StoreError> {
        let hour_ago = now
            .checked_sub(std::time::Duration::from_secs(3600))
            .unwrap_or(std::time::UNIX_EPOCH);
        let blobs = BlobStore::open(root)?.touching(hour_ago);
        // A cache this user cannot lock (a read-only one) is used
        // unlocked: this user cannot prune it either.
        let lock = super::prune::lock(root, false, true)
            .ok()
            .flatten()
            .map(std::sync::Arc::new);
        let unpacked = UnpackCache::open(&blobs)?;
        let views = ViewCache::open(&blobs)?;
        Ok(Cache {
            blobs,
            unpacked,
            views,
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        self.blobs.root()
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn unpacked(&self) -> &UnpackCache {
        &self.unpacked
    }

    /// Base layers' views (`source::view`).
    pub fn views(&self) -> &ViewCache {
        &self.views
    }

    /// A downloader into this cache whose requests go out through
    /// `transport`; with `offline`, cache misses are errors and nothing
    /// touches the network.
    pub fn fetcher(&self, offline: bool, transport: &Transport) -> Fetcher {
        Fetcher::new(self.blobs.clone(), offline, transport.clone())
    }

    pub fn layer_cache(&self, builder_identity: &str) -> Result<LayerCache, StoreError> {
        LayerCache::in_store(&self.blobs, builder_identity)
    }
}

/// The settings of one run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cache: Cache,
    pub apt: AptSettings,
    /// Registries: auth files, plain HTTP, chunk size; its `transport` is
    /// the run's.
    pub registry: RegistrySettings,
    /// The run's one transport (proxies, CAs, timeouts, retries): apt
    /// mirrors are reached through it, and `registry` holds the same.
    pub transport: Transport,
    /// Threads for unpacking packages and writing layers; the bytes never
    /// depend on it.
    pub jobs: usize,
    /// Use only the cache (and `vendor`): never touch the network.
    pub offline: bool,
    pub lock: LockPolicy,
    /// A folder `stele vendor` wrote, imported before fetching.
    pub vendor: Option<PathBuf>,
    /// Reuse and record layers in the cache's layer cache.
    pub layer_cache: bool,
    /// Registry repositories holding layers and unpacked packages other
    /// runners made (`--cache-from`), and those to push this build's to
    /// (`--cache-to`).
    pub remote_cache: crate::remote_cache::RemoteCacheSettings,
    pub builder: Builder,
    /// Build only these of the recipe's platforms (empty: all of them).
    /// The lock and the base are still resolved and checked for every
    /// platform the recipe names, so a subset never rewrites the lock.
    pub only_platforms: Vec<crate::oci::Platform>,
}
