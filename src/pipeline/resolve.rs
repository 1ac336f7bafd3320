//! The resolve stage: everything a build needs from outside the recipe,
//! fetched, verified and opened. The base image (from a layout or a
//! registry, through the cache), the lock in force, and every .deb it
//! names unpacked. The only stage that touches the network or the cache.

use std::path::PathBuf;

use super::packages::{unpack_locked, Routes};
use super::{Event, LockPolicy, Progress, Settings};
use crate::apt::debs::{self, CheckedLock, DebsError};
use crate::apt::fetch::Fetcher;
use crate::apt::locking::{self, LockingError};
use crate::attest::BaseRef;
use crate::cache::Chain;
use crate::dpkg::unpack::UnpackError;
use crate::image::{BaseError, BaseImage, BuildInputs, Packages};
use crate::lock::{Lock, LockError};
use crate::recipe::{AptSpec, BaseSpec, Recipe};
use crate::source::layout::{open_layout_base, Selector};
use crate::source::view::LayerViews;
use crate::source::{Opened, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{loc}: cannot open the base layout")]
    BaseLayout {
        loc: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("{loc}: the base image reference {reference} is not valid")]
    BaseReference {
        loc: String,
        reference: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("{loc}: --offline, and the base image {reference} is not in the cache {cache}; build once online (or `stele pull` it) first")]
    BaseOffline {
        loc: String,
        reference: String,
        cache: PathBuf,
    },
    #[error("{loc}: cannot pull the base image {reference}")]
    BasePull {
        loc: String,
        reference: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("{loc}: {error}")]
    BasePlatforms { loc: String, error: Box<BaseError> },
    #[error(
        "--locked: the lockfile {path} {why}; run `stele lock {recipe}` and commit the result"
    )]
    Locked {
        path: PathBuf,
        why: &'static str,
        recipe: PathBuf,
    },
    #[error("--offline: the lockfile {path} {why}, and resolving needs the network; run `stele lock` online first")]
    OfflineResolve { path: PathBuf, why: &'static str },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Locking(#[from] LockingError),
    // Boxed: fetch errors carry several paths and URLs.
    #[error(transparent)]
    Debs(#[from] Box<DebsError>),
    #[error(transparent)]
    Unpack(#[from] Box<UnpackError>),
    #[error(transparent)]
    Apps(#[from] Box<crate::apps::AppsError>),
}

/// How the lock in force came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockStatus {
    /// The lockfile answers the recipe and was used as it is.
    Fresh,
    /// There was no lockfile: resolved now.
    Created,
    /// The lockfile no longer answered the recipe: resolved again.
    Updated,
}

impl From<DebsError> for ResolveError {
    fn from(e: DebsError) -> ResolveError {
        ResolveError::Debs(Box::new(e))
    }
}

impl From<UnpackError> for ResolveError {
    fn from(e: UnpackError) -> ResolveError {
        ResolveError::Unpack(Box::new(e))
    }
}

impl LockStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LockStatus::Fresh => "fresh",
            LockStatus::Created => "created",
            LockStatus::Updated => "updated",
        }
    }
}

/// The lock in force, where it lives, and whether it was resolved now.
#[derive(Clone, Debug)]
pub struct LockOutcome {
    pub path: PathBuf,
    pub lock: Lock,
    pub status: LockStatus,
}

/// What resolving a recipe found.
pub struct Resolved {
    pub inputs: BuildInputs,
    pub lock: Option<LockOutcome>,
}

/// Opens the base and unpacks the packages of `recipe`, each package
/// from `caches` when one has it, else fetched and unpacked into the
/// local folder.
pub fn resolve(
    recipe: &Recipe,
    settings: &Settings,
    caches: &Chain,
    progress: Progress,
) -> Result<Resolved, ResolveError> {
    let base = open_base(recipe, settings, progress)?;
    let (packages, lock) = match &recipe.apt {
        None => (None, None),
        Some(apt) => {
            let fetcher = fetcher(settings, settings.offline);
            let outcome = lock_in_force(recipe, apt, settings, &fetcher, progress)?;
            let checked =
                CheckedLock::check(outcome.lock.clone(), &outcome.path, apt, &recipe.platforms)?;
            let routes = Routes {
                apt: &settings.apt,
                vendor: settings.vendor.as_deref(),
            };
            let unpacked =
                unpack_locked(&checked, &fetcher, caches, &routes, settings.jobs, progress)?;
            progress(Event::Unpacked {
                reused: unpacked.reused,
                fresh: unpacked.debs.len() - unpacked.reused,
                unpacked_now: &unpacked.unpacked_now,
            });
            (
                Some(Packages::new(apt.clone(), checked, unpacked.debs)),
                Some(outcome),
            )
        }
    };
    let apps = resolve_apps(
        recipe,
        settings,
        lock.as_ref().map(|l| &l.lock),
        Some(caches),
    )?;
    Ok(Resolved {
        inputs: BuildInputs {
            base,
            packages,
            apps,
        },
        lock,
    })
}

/// `[python]` and `[node]`: each platform's packages chosen, fetched
/// into the cache folder and unpacked.
pub fn resolve_apps(
    recipe: &Recipe,
    settings: &Settings,
    lock: Option<&Lock>,
    caches: Option<&Chain>,
) -> Result<crate::apps::AppInputs, ResolveError> {
    if recipe.python.is_none() && recipe.node.is_none() {
        return Ok(crate::apps::AppInputs::default());
    }
    let packs = crate::cache::AppPacks::open(settings.cache.blobs())
        .map_err(|e| Box::new(crate::apps::AppsError::Cache(e)))?;
    let cx = crate::apps::resolve::Context {
        store: settings.cache.blobs(),
        packs: &packs,
        transport: &settings.transport,
        settings: &settings.apps,
        offline: settings.offline,
        vendor: settings.vendor.as_deref(),
        caches,
        jobs: settings.apt.jobs.max(settings.jobs),
    };
    Ok(crate::apps::resolve(recipe, lock, &cx).map_err(Box::new)?)
}

/// A downloader into the cache folder whose requests go out through the
/// run's transport; with `offline`, cache misses are errors and nothing
/// touches the network.
pub fn fetcher(settings: &Settings, offline: bool) -> Fetcher {
    Fetcher::new(
        settings.cache.blobs().clone(),
        offline,
        settings.transport.clone(),
    )
}

/// A download's progress as the pipeline reports it.
pub fn download_event(d: debs::Download) -> Event<'static> {
    match d {
        debs::Download::Starting { packages, bytes } => Event::Downloading { packages, bytes },
        debs::Download::Fetched { bytes } => Event::Fetched { bytes },
        debs::Download::Done { packages, bytes } => Event::Downloaded { packages, bytes },
    }
}

/// Opens the recipe's `[base]`, checking it is the image the recipe pins
/// and that it has every platform the recipe builds. A registry base is
/// pulled through the cache: once cached, later builds make no request.
/// Its layers are known through their views (`source::view`): from the
/// cache when an earlier build read them, so a rebuild decompresses none.
fn open_base(
    recipe: &Recipe,
    settings: &Settings,
    progress: Progress,
) -> Result<Option<BaseImage>, ResolveError> {
    let (opened, reference, portable_name, loc) = match &recipe.base {
        BaseSpec::Scratch => return Ok(None),
        BaseSpec::Layout {
            path,
            digest,
            written,
            loc,
        } => {
            let opened = open_layout_base(path, &Selector::Digest(digest.clone()))
                .and_then(|o| with_views(o, settings, progress))
                .map_err(|e| ResolveError::BaseLayout {
                    loc: loc.to_string(),
                    source: Box::new(e),
                })?;
            let reference = BaseRef {
                name: written.clone(),
                digest: digest.clone(),
            };
            (opened, reference, false, loc)
        }
        BaseSpec::Image {
            reference,
            digest,
            loc,
        } => {
            let full = format!("{reference}@{digest}");
            let pinned = crate::registry::Reference::parse(&full).map_err(|e| {
                ResolveError::BaseReference {
                    loc: loc.to_string(),
                    reference: full.clone(),
                    source: Box::new(e),
                }
            })?;
            let cache = settings.cache.blobs();
            if settings.offline && !cache.contains(digest) {
                return Err(ResolveError::BaseOffline {
                    loc: loc.to_string(),
                    reference: full,
                    cache: cache.root().to_path_buf(),
                });
            }
            let opened = crate::source::registry::open_registry(&pinned, &settings.registry, cache)
                .and_then(|o| with_views(o, settings, progress))
                .map_err(|e| ResolveError::BasePull {
                    loc: loc.to_string(),
                    reference: full.clone(),
                    source: Box::new(e),
                })?;
            let reference = BaseRef {
                name: reference.clone(),
                digest: digest.clone(),
            };
            (opened, reference, true, loc)
        }
    };
    let (opened, views) = opened;
    BaseImage::new(opened, views, reference, portable_name, &recipe.platforms)
        .map(Some)
        .map_err(|error| ResolveError::BasePlatforms {
            loc: loc.to_string(),
            error: Box::new(error),
        })
}

/// `opened` with the views of its layers, their DiffIDs checked.
fn with_views(
    opened: Opened,
    settings: &Settings,
    progress: Progress,
) -> Result<(Opened, LayerViews), SourceError> {
    // Like unpacked packages, views are inputs' facts, not outputs: they
    // are used even with the layer cache off.
    let views = settings.cache.views().views_of(&opened, settings.jobs)?;
    progress(Event::BaseLayers {
        cached: views.views.len() - views.read,
        read: views.read,
    });
    Ok((opened, views))
}

/// Whether the lockfile beside `recipe` answers it: `None` when it does,
/// else why not ("does not exist", "is stale …").
pub fn check_lock(recipe: &Recipe, apt: &AptSpec) -> Result<(Option<Lock>, LockStatus), LockError> {
    let path = Lock::path_for(&recipe.path);
    if !path.exists() {
        return Ok((None, LockStatus::Created));
    }
    let lock = Lock::load(&path)?;
    if locking::is_fresh(recipe, apt, &lock) && crate::apps::locking::answers(recipe, &lock) {
        Ok((Some(lock), LockStatus::Fresh))
    } else {
        Ok((Some(lock), LockStatus::Updated))
    }
}

fn why(status: LockStatus) -> &'static str {
    match status {
        LockStatus::Created => "does not exist",
        _ => {
            "is stale (the recipe's packages, sources' suites or components, or platforms changed, or its Python or npm lockfile did)"
        }
    }
}

/// Finds the lock in force, resolving a new one when the lockfile is
/// missing or stale and the policy allows it (and writing it beside the
/// recipe), then imports the vendored folder, if any.
pub fn lock_in_force(
    recipe: &Recipe,
    apt: &AptSpec,
    settings: &Settings,
    fetcher: &Fetcher,
    progress: Progress,
) -> Result<LockOutcome, ResolveError> {
    let path = Lock::path_for(&recipe.path);
    let (existing, status) = check_lock(recipe, apt)?;
    let (existing, status) = match (existing, status) {
        // Only the `[python]`/`[node]` sections are behind (their
        // lockfile changed): they are brought up to date below, without
        // resolving the Debian packages again.
        (Some(lock), LockStatus::Updated)
            if locking::is_fresh(recipe, apt, &lock) && settings.lock != LockPolicy::Locked =>
        {
            (Some(lock), LockStatus::Fresh)
        }
        other => other,
    };
    let mut lock = match (existing, status) {
        (Some(lock), LockStatus::Fresh) => lock,
        _ => {
            if settings.lock == LockPolicy::Locked {
                return Err(ResolveError::Locked {
                    path,
                    why: why(status),
                    recipe: recipe.path.clone(),
                });
            }
            if settings.offline {
                return Err(ResolveError::OfflineResolve {
                    path,
                    why: why(status),
                });
            }
            progress(Event::Resolving {
                lock_path: &path,
                why: why(status),
            });
            let lock = locking::resolve_lock(recipe, apt, fetcher, &settings.apt)?;
            // Written as soon as it is resolved, whatever happens to the
            // build: resolving is the slow, network-bound part, and the
            // lockfile is the recipe's own companion, not a build output.
            lock.write(&path)?;
            progress(Event::LockWritten { lock_path: &path });
            lock
        }
    };
    let mut status = status;
    if crate::apps::locking::update(recipe, &mut lock).map_err(Box::new)? {
        lock.write(&path)?;
        progress(Event::LockWritten { lock_path: &path });
        if status == LockStatus::Fresh {
            status = LockStatus::Updated;
        }
    } else if status == LockStatus::Fresh {
        progress(Event::LockFresh { lock_path: &path });
    }
    if let Some(dir) = &settings.vendor {
        let count = debs::import_vendored(&lock, dir, fetcher)?;
        progress(Event::Vendored { count, dir });
    }
    Ok(LockOutcome { path, lock, status })
}
