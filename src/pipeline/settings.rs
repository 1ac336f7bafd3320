//! Everything a pipeline run needs to know about its surroundings,
//! decided once by the CLI from flags and the environment.

use std::path::PathBuf;

use crate::apt::sources::AptSettings;
use crate::cache::{Cache, RemoteCacheSettings};
use crate::registry::RegistrySettings;
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
    /// SLSA `buildType`.
    pub build_type: String,
    pub version: String,
    /// This executable as the layer cache's keys name it, so layers that
    /// another build of stele wrote are never taken.
    pub identity: String,
    /// What provenance records of this run: the CI's invocation id and
    /// start time, read by the CLI, and how to read the time the build
    /// finished (the only clock below the CLI, and it never reaches an
    /// image).
    pub run: RunClock,
}

/// This run's facts for provenance, and its clock.
#[derive(Clone, Debug)]
pub struct RunClock {
    pub invocation_id: Option<String>,
    /// Seconds since 1970 the run started (the CI's job start, else the
    /// process's).
    pub started_on: Option<u64>,
    /// Seconds since 1970 now; `None` records no finish time.
    pub clock: Option<fn() -> u64>,
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
    pub remote_cache: RemoteCacheSettings,
    /// Where `[python]` and `[node]` packages are downloaded from.
    pub apps: crate::apps::AppSettings,
    pub builder: Builder,
    /// Build only these of the recipe's platforms (empty: all of them).
    /// The lock and the base are still resolved and checked for every
    /// platform the recipe names, so a subset never rewrites the lock.
    pub only_platforms: Vec<crate::oci::Platform>,
}
