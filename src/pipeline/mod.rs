//! The build pipeline as typed stages, shared by `stele build`,
//! `stele push RECIPE` and `stele verify --rebuild`:
//!
//! ```text
//! Settings (the CLI, once) ─▶ resolve (network, cache) ─▶ BuildInputs
//!   ─▶ build (pure) ─▶ BuildOutput ─▶ attest ─▶ Produced
//! ```
//!
//! `resolve` is the only stage that touches the network or the cache
//! folder, but for layers: `build` asks the run's chain of caches
//! (`caches`, a `cache::Chain`) for each layer before writing it, and an
//! answer is used only once checked, so `build` stays a function of the
//! recipe and its inputs; `attest` adds the facts that ride beside the
//! image. Nothing here writes a user's output: the caller decides where
//! `Produced` goes, and only after it exists.

mod packages;
mod resolve;
mod settings;

pub(crate) use packages::{fetch_debs, Routes};
pub use resolve::download_event;
pub use resolve::{
    check_lock, fetcher, lock_in_force, resolve, resolve_apps, LockOutcome, LockStatus, Resolved,
};
pub use settings::{Builder, LockPolicy, RunClock, Settings};

use std::path::PathBuf;
use std::sync::Arc;

use crate::attest::{
    self, AttestError, AttestInput, Attestation, BuilderFacts, PrivateKey, RunFacts, Selection,
    SignOptions,
};
use crate::cache::lookup::{DebQuery, Entry, EntryStore};
use crate::cache::{Chain, Local, RemoteCacheError, RemoteReport, Repository, Roles};
use crate::image::{BuildError, BuildOutput, BuildSettings, LayerProgress, LayerStats};
use crate::store::{BlobStore, StoreError};

/// What a pipeline run tells its caller while it works, so the CLI can
/// show progress without the library printing anything.
#[derive(Debug)]
pub enum Event<'a> {
    /// The lockfile is missing or stale and is being resolved again.
    Resolving {
        lock_path: &'a std::path::Path,
        why: &'static str,
    },
    /// The lockfile was written anew.
    LockWritten { lock_path: &'a std::path::Path },
    /// Packages imported from a vendored folder.
    Vendored {
        count: usize,
        dir: &'a std::path::Path,
    },
    /// The lockfile answers the recipe and is used as it is.
    LockFresh { lock_path: &'a std::path::Path },
    /// Packages unpacked by an earlier build, and now (`unpacked_now`
    /// names the latter, `name version (arch)`).
    Unpacked {
        reused: usize,
        fresh: usize,
        unpacked_now: &'a [String],
    },
    /// Where the .debs downloaded now came from: each route (a remote
    /// cache, the mirror, the snapshot archive) and how many it gave.
    DebRoutes { routes: &'a [(String, usize)] },
    /// The base's layers: known from the cache's views, or read now
    /// (decompressed, their DiffIDs taken).
    BaseLayers { cached: usize, read: usize },
    /// The layer step advancing (from its threads).
    Writing(LayerProgress),
    /// The layer step: taken from the layer cache, or written.
    Layers { stats: &'a LayerStats, cache: bool },
    /// Locked packages no cache had unpacked are being unpacked
    /// (`bytes`: their .debs).
    Unpacking { packages: usize, bytes: u64 },
    /// One of them was unpacked (from the unpacking threads, in any
    /// order).
    UnpackedOne { bytes: u64 },
    /// Locked .debs the cache lacks are being downloaded.
    Downloading { packages: usize, bytes: u64 },
    /// One of them was downloaded, verified and cached (from the download
    /// threads, in any order).
    Fetched { bytes: u64 },
    /// They were downloaded, verified and cached.
    Downloaded { packages: usize, bytes: u64 },
    /// What the remote caches did: hits, pushes, warnings (after the
    /// build, once).
    RemoteCache { report: &'a RemoteReport },
}

/// Where a pipeline run reports its events; called from worker threads
/// too, hence `Sync`.
pub type Progress<'a> = &'a (dyn Fn(Event) + Sync);

/// Which attestations to make, the key that signs them, and the name the
/// image is signed as (cosign's simple signing names a repository: known
/// when the build pushes, or given with `--sign-identity`).
#[derive(Default)]
pub struct AttestOptions {
    pub selection: Selection,
    pub key: Option<PrivateKey>,
    pub identity: Option<String>,
}

impl AttestOptions {
    pub fn none() -> AttestOptions {
        AttestOptions {
            selection: Selection::None,
            key: None,
            identity: None,
        }
    }
}

impl From<resolve::ResolveError> for PipelineError {
    fn from(e: resolve::ResolveError) -> PipelineError {
        PipelineError::Resolve(Box::new(e))
    }
}

impl From<BuildError> for PipelineError {
    fn from(e: BuildError) -> PipelineError {
        PipelineError::Build(Box::new(e))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    // Boxed: both carry paths and digests; a `Result` stays small.
    #[error(transparent)]
    Resolve(#[from] Box<resolve::ResolveError>),
    #[error(transparent)]
    Build(#[from] Box<BuildError>),
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error(transparent)]
    RemoteCache(#[from] Box<RemoteCacheError>),
    #[error("cannot open the layer cache in {dir}; pass --no-layer-cache to build without it")]
    LayerCache {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
}

/// A build and its attestations, every blob in the store it was given,
/// and the lock it used.
pub struct Produced {
    pub output: BuildOutput,
    pub attestations: Vec<Attestation>,
    pub lock: Option<LockOutcome>,
    /// What the remote caches did, when there were any.
    pub remote_cache: Option<RemoteReport>,
}

impl Produced {
    /// The attestations as index.json and referrers lists name them.
    pub fn referrers(&self) -> Vec<oci_spec::image::Descriptor> {
        self.attestations
            .iter()
            .map(|a| a.index_descriptor())
            .collect()
    }
}

/// The caches of one run, chained: the local folder first, then each
/// `--cache-from` in order; what a build made goes to the local folder as
/// it is made, and its .debs to each `--cache-to` after. A repository
/// named by both is one place. `--offline` asks no remote cache;
/// `--no-layer-cache` takes and records no layer.
pub fn caches(settings: &Settings) -> Result<Chain, PipelineError> {
    let layers = if settings.layer_cache {
        Some(
            settings
                .cache
                .layers()
                .map_err(|source| PipelineError::LayerCache {
                    dir: settings.cache.root().to_path_buf(),
                    source,
                })?,
        )
    } else {
        None
    };
    let identity = &settings.builder.identity;
    let mut remotes: Vec<(Box<dyn EntryStore>, Roles)> = Vec::new();
    // Offline means no network at all: remote caches are not asked.
    if !settings.offline {
        let cache = &settings.remote_cache;
        let registry = cache.registry(&settings.registry);
        for (reference, roles) in cache.places() {
            let repository = Repository::open(reference, &registry, cache.now).map_err(Box::new)?;
            remotes.push((Box::new(repository), roles));
        }
    }
    Ok(Chain::new(
        Local::new(&settings.cache, layers),
        remotes,
        identity,
    ))
}

/// Resolves, builds and attests `recipe` into `store`: what `build`
/// writes, what `push RECIPE` pushes and what `verify --rebuild` compares.
pub fn produce(
    recipe: &crate::recipe::Recipe,
    settings: &Settings,
    attest_options: &AttestOptions,
    store: &BlobStore,
    progress: Progress,
) -> Result<Produced, PipelineError> {
    let caches = Arc::new(caches(settings)?);
    let Resolved { inputs, lock } = resolve(recipe, settings, &caches, progress)?;
    let subset;
    let recipe = if settings.only_platforms.is_empty() {
        recipe
    } else {
        let mut r = recipe.clone();
        r.platforms.retain(|p| settings.only_platforms.contains(p));
        subset = r;
        &subset
    };
    let writing = |p| progress(Event::Writing(p));
    let build_settings = BuildSettings {
        jobs: settings.jobs,
        caches: Some(caches.clone()),
        progress: Some(&writing),
    };
    let output = crate::image::build(recipe, &inputs, &build_settings, store)?;
    // What a push or pull of this image would otherwise uncompress again:
    // a few small cache files per layer, written beside the attestations
    // (which wait on nothing they write) instead of before them.
    let checked = settings.cache.checked();
    let attestations = std::thread::scope(|scope| {
        let recording =
            (settings.jobs > 1).then(|| scope.spawn(|| checked.record_built(&output.built, store)));
        if recording.is_none() {
            checked.record_built(&output.built, store);
        }
        let attested = attest_built(
            recipe,
            settings,
            attest_options,
            &inputs,
            &output,
            store,
            progress,
        );
        if let Some(recording) = recording {
            // Best effort, like every cache write that only spares work.
            let _ = recording.join();
        }
        attested
    })?;
    let remote_cache = caches.has_remote().then(|| {
        push_remote(&caches, inputs.packages.as_ref(), &inputs.apps, settings);
        let report = caches.report();
        progress(Event::RemoteCache { report: &report });
        report
    });
    Ok(Produced {
        output,
        attestations,
        lock,
        remote_cache,
    })
}

/// Reports the layers written and makes the attestations `attest_options`
/// asks for, of `output`, into `store`.
fn attest_built(
    recipe: &crate::recipe::Recipe,
    settings: &Settings,
    attest_options: &AttestOptions,
    inputs: &crate::image::BuildInputs,
    output: &BuildOutput,
    store: &BlobStore,
    progress: Progress,
) -> Result<Vec<Attestation>, PipelineError> {
    progress(Event::Layers {
        stats: &output.layers,
        cache: settings.layer_cache,
    });
    let attestations = if attest_options.selection == Selection::None {
        Vec::new()
    } else {
        let builder = &settings.builder;
        let input = AttestInput {
            built: &output.built,
            recipe,
            lock: inputs.packages.as_ref().map(|p| p.lock()),
            packages: output.packages.clone(),
            distros: output.distros.clone(),
            base: output.base.clone(),
            scripts: output.scripts.clone(),
            builder: BuilderFacts {
                id: builder.id.clone(),
                build_type: builder.build_type.clone(),
                stele_version: builder.version.clone(),
            },
            run: RunFacts {
                invocation_id: builder.run.invocation_id.clone(),
                started_on: builder.run.started_on.map(crate::timefmt::rfc3339),
                finished_on: builder.run.clock.map(|now| crate::timefmt::rfc3339(now())),
            },
        };
        attest::attest(
            &input,
            attest_options.selection,
            &SignOptions {
                key: attest_options.key.as_ref(),
                identity: attest_options.identity.as_deref(),
            },
            store,
        )?
    };
    Ok(attestations)
}

/// Pushes this build's .debs and application archives to `--cache-to`:
/// what a registry keeps (`cache::lookup` says why nothing else).
fn push_remote(
    caches: &Chain,
    packages: Option<&crate::image::Packages>,
    apps: &crate::apps::AppInputs,
    settings: &Settings,
) {
    if let Some(packages) = packages {
        let wanted = packages.lock.wanted();
        push_debs(
            caches,
            wanted.values().copied(),
            &settings.cache,
            settings.jobs,
        );
    }
    let archives: Vec<Entry> = apps
        .keys
        .iter()
        .map(|(key, sha256, size)| Entry::Archive {
            key,
            sha256,
            size: *size,
            from: settings.cache.blobs(),
        })
        .collect();
    caches.push(&archives, settings.jobs);
}

/// Pushes the .debs of `packages` (each once), from the local folder,
/// to each `--cache-to` of `caches`, `jobs` at a time.
pub(crate) fn push_debs<'a>(
    caches: &Chain,
    packages: impl Iterator<Item = &'a crate::lock::LockedPackage>,
    cache: &crate::cache::Cache,
    jobs: usize,
) {
    let labels: Vec<(String, &crate::lock::LockedPackage)> = packages
        .map(|p| (crate::apt::debs::package_label(p), p))
        .collect();
    let entries: Vec<Entry> = labels
        .iter()
        .map(|(label, p)| Entry::Deb {
            deb: DebQuery {
                sha256: &p.sha256,
                size: p.size,
                label,
            },
            from: cache.blobs(),
        })
        .collect();
    caches.push(&entries, jobs);
}
