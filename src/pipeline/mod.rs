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

pub use resolve::download_event;
pub use resolve::{check_lock, fetcher, lock_in_force, resolve, LockOutcome, LockStatus, Resolved};
pub use settings::{Builder, LockPolicy, Settings};

use std::path::PathBuf;
use std::sync::Arc;

use crate::attest::{self, AttestError, AttestInput, Attestation, PrivateKey, Selection};
use crate::cache::lookup::{Entry, EntryStore};
use crate::cache::{Chain, Local, RemoteCacheError, RemoteReport, Repository, Roles};
use crate::image::{BuildError, BuildOutput, BuildSettings, LayerStats};
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
        /// Taken unpacked from a remote cache (`--cache-from`).
        remote: usize,
        fresh: usize,
        unpacked_now: &'a [String],
    },
    /// The base's layers: known from the cache's views, or read now
    /// (decompressed, their DiffIDs taken).
    BaseLayers { cached: usize, read: usize },
    /// The layer step: taken from the layer cache, or written.
    Layers { stats: &'a LayerStats, cache: bool },
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

/// Which attestations to make, and the key that signs them.
#[derive(Default)]
pub struct AttestOptions {
    pub selection: Selection,
    pub key: Option<PrivateKey>,
}

impl AttestOptions {
    pub fn none() -> AttestOptions {
        AttestOptions {
            selection: Selection::None,
            key: None,
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
/// it is made and to each `--cache-to` after. `--offline` asks no remote
/// cache; `--no-layer-cache` takes and records no layer (packages still
/// come from the caches).
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
    // Offline means no network at all: remote caches are not asked. A
    // repository named by both flags is two places here, each marked down
    // on its own when it fails.
    if !settings.offline {
        let cache = &settings.remote_cache;
        let named = cache.from.iter().map(|r| (r, Roles::FROM));
        for (reference, roles) in named.chain(cache.to.iter().map(|r| (r, Roles::TO))) {
            let repository =
                Repository::open(reference, &settings.registry, &settings.cache, identity)
                    .map_err(Box::new)?;
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
    let build_settings = BuildSettings {
        jobs: settings.jobs,
        caches: Some(caches.clone()),
    };
    let output = crate::image::build(recipe, &inputs, &build_settings, store)?;
    // What a push or pull of this image would otherwise uncompress again.
    settings.cache.checked().record_built(&output.built, store);
    progress(Event::Layers {
        stats: &output.layers,
        cache: settings.layer_cache,
    });
    let attestations = if attest_options.selection == Selection::None {
        Vec::new()
    } else {
        let input = AttestInput {
            built: &output.built,
            recipe,
            lock: inputs.packages.as_ref().map(|p| p.lock()),
            packages: output.packages.clone(),
            base: output.base.clone(),
            scripts: output.scripts.clone(),
            builder_id: settings.builder.id.clone(),
            stele_version: settings.builder.version.clone(),
            invocation_started: None,
            invocation_finished: None,
        };
        attest::attest(
            &input,
            attest_options.selection,
            attest_options.key.as_ref(),
            store,
        )?
    };
    let remote_cache = caches.has_remote().then(|| {
        let profile = crate::image::provenance::profile(recipe, &inputs);
        push_remote(
            &caches,
            &output,
            inputs.packages.as_ref(),
            profile,
            settings,
            store,
        );
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

/// Pushes this build's layers and unpacked packages to `--cache-to`.
fn push_remote(
    caches: &Chain,
    output: &BuildOutput,
    packages: Option<&crate::image::Packages>,
    profile: crate::layer::Profile,
    settings: &Settings,
    store: &BlobStore,
) {
    let mut entries: Vec<Entry> = output
        .layers
        .decisions
        .iter()
        .map(|d| Entry::Layer {
            key: &d.key,
            layer: &d.layer,
            profile,
            from: store,
        })
        .collect();
    if let Some(packages) = packages {
        entries.extend(
            packages
                .debs
                .iter()
                .map(|(deb, unpacked)| Entry::Pack { deb, unpacked }),
        );
    }
    caches.push(&entries, settings.jobs);
}
