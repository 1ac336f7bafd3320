//! The finished values commands' settings are made of: where the cache
//! folder is, how a command reads the images a user names, what a
//! pipeline run takes, and how a recipe is made into an image. Each is
//! resolved once from flags and the environment, and only read after.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use super::{
    apt_settings, builder, cache_dir, open_cache, registry_settings, remote_cache_settings,
    source_date_epoch, transport, work_jobs, CacheArgs, JobsArgs, PackageArgs, RegistryArgs,
    RemoteCacheArgs,
};
use crate::apt::sources::AptSettings;
use crate::attest::{PrivateKey, Selection};
use crate::cache::RemoteCacheSettings;
use crate::cache::{Cache, CheckReport};
use crate::oci::Platform;
use crate::pipeline::{self, AttestOptions, LockPolicy, Produced, Settings};
use crate::recipe::Recipe;
use crate::registry::{Progress, RegistrySettings};
use crate::source::{Opened, RegistryAccess, Target};
use crate::store::BlobStore;
use crate::transport::Transport;

/// The cache folder's place: `--cache-dir`, else the environment's. It is
/// opened (and its shared lock taken) only by what uses it, so a command
/// that reads no registry and builds nothing runs without one.
#[derive(Clone, Debug)]
pub(crate) struct CacheFolder {
    /// The folder, or why there is none.
    dir: Result<PathBuf, String>,
}

impl CacheFolder {
    pub fn resolve(args: &CacheArgs) -> CacheFolder {
        CacheFolder {
            dir: cache_dir(args).map_err(|e| e.to_string()),
        }
    }

    /// Opens the folder: once per command.
    pub fn open(&self) -> Result<Cache> {
        match &self.dir {
            Ok(dir) => open_cache(dir),
            Err(why) => Err(anyhow!("{why}")),
        }
    }

    /// Opens the folder if it exists and opens, for work it only spares
    /// (records of layers checked before): a command that needs no cache
    /// neither makes one nor fails without one.
    pub fn open_if_there(&self) -> Option<Cache> {
        let dir = self.dir.as_ref().ok()?;
        dir.is_dir().then(|| open_cache(dir).ok()).flatten()
    }
}

/// How a command reads the images a user names: a registry's blobs go
/// into the cache folder, opened only when a registry is named.
pub(crate) struct Reader {
    pub registry: RegistrySettings,
    pub cache: CacheFolder,
}

impl Reader {
    /// `network` is the command's, made once; `progress` says what its
    /// transfers are called.
    pub fn resolve(
        registry: &RegistryArgs,
        jobs: &JobsArgs,
        cache: &CacheArgs,
        transport: &Transport,
        progress: Progress,
    ) -> Reader {
        Reader {
            registry: registry_settings(registry, jobs, transport, progress),
            cache: CacheFolder::resolve(cache),
        }
    }

    /// For a command whose only network use is reading the images it is
    /// given (`diff`, `inspect`): its network settings made here, once.
    pub fn for_reading(registry: &RegistryArgs, cache: &CacheArgs) -> Reader {
        let transport = transport(&registry.tls);
        Reader::resolve(
            registry,
            &JobsArgs::default(),
            cache,
            &transport,
            Progress::default(),
        )
    }

    /// Runs `read` with access to registries when `target` names one (the
    /// cache folder is opened then, and only then), else without.
    pub fn with_access<T>(
        &self,
        target: &Target,
        read: impl FnOnce(Option<&RegistryAccess>) -> Result<T>,
    ) -> Result<T> {
        if let Target::Registry { .. } = target {
            let cache = self.cache.open()?;
            let access = RegistryAccess {
                settings: &self.registry,
                cache: cache.blobs(),
            };
            return read(Some(&access));
        }
        read(None)
    }

    /// Opens any image a user names (layout, archive, registry
    /// reference), every layer's DiffID checked.
    pub fn open(&self, words: &str) -> Result<Opened> {
        Ok(self.open_checking(words, false)?.0)
    }

    /// `open`, saying how the layers were checked when the cache folder's
    /// records of checked layers were used: layers stele built or checked
    /// before are then not uncompressed again. A registry image's blobs go
    /// into the cache folder, which must open; for other images it is
    /// used when it exists, or when `make_cache` (`push`, which records
    /// what it checked for the next push) and it can be made.
    pub fn open_checking(
        &self,
        words: &str,
        make_cache: bool,
    ) -> Result<(Opened, Option<CheckReport>)> {
        let target = Target::parse(words)?;
        let cache = match &target {
            Target::Registry { .. } => Some(self.cache.open()?),
            _ if make_cache => self.cache.open().ok(),
            _ => self.cache.open_if_there(),
        };
        let access = cache.as_ref().map(|c| RegistryAccess {
            settings: &self.registry,
            cache: c.blobs(),
        });
        let unchecked = crate::source::open_deferred(&target, access.as_ref())?;
        let jobs = self.registry.jobs;
        Ok(match &cache {
            Some(c) => {
                let (opened, report) = c.checked().check(unchecked, jobs)?;
                (opened, Some(report))
            }
            None => (unchecked.check(jobs)?, None),
        })
    }
}

/// The flags a pipeline run takes, from whichever command runs it.
pub(crate) struct RunFlags<'a> {
    pub cache: &'a CacheArgs,
    pub jobs: &'a JobsArgs,
    pub packages: &'a PackageArgs,
    /// `None` for commands that build nothing (`lock`, `vendor`).
    pub remote_cache: Option<&'a RemoteCacheArgs>,
    pub layer_cache: bool,
    /// Build only these of the recipe's platforms (empty: all).
    pub only_platforms: &'a [Platform],
}

/// `pipeline::Settings` but the opened cache folder (and the builder,
/// which its folder names): decided with the rest of the command's
/// settings, opened by `open` only when the run starts, so a command
/// fails on its flags, its recipe or its output before it locks a cache.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub cache: CacheFolder,
    // How things are reached.
    /// Base images and remote caches.
    pub registry: RegistrySettings,
    /// Apt mirrors; the registries' `network` is this one.
    pub transport: Transport,
    pub apt: AptSettings,
    pub remote_cache: RemoteCacheSettings,
    // Where packages come from.
    pub offline: bool,
    pub lock: LockPolicy,
    pub vendor: Option<PathBuf>,
    // What is built, how.
    pub only_platforms: Vec<Platform>,
    pub layer_cache: bool,
    pub jobs: usize,
}

impl Run {
    /// `registry` and `network` are the command's, made once.
    pub fn resolve(
        flags: &RunFlags,
        registry: RegistrySettings,
        transport: &Transport,
    ) -> Result<Run> {
        let remote_cache = match flags.remote_cache {
            Some(args) => remote_cache_settings(args)?,
            None => RemoteCacheSettings::default(),
        };
        Ok(Run {
            cache: CacheFolder::resolve(flags.cache),
            apt: apt_settings(flags.jobs),
            registry,
            transport: transport.clone(),
            jobs: work_jobs(flags.jobs),
            offline: flags.packages.offline,
            lock: if flags.packages.locked {
                LockPolicy::Locked
            } else {
                LockPolicy::Update
            },
            vendor: flags.packages.vendor.clone(),
            layer_cache: flags.layer_cache,
            remote_cache,
            only_platforms: flags.only_platforms.to_vec(),
        })
    }

    /// The pipeline's settings: the cache folder opened (once per
    /// command) and the builder named.
    pub fn open(&self) -> Result<Settings> {
        let cache = self.cache.open()?;
        Ok(Settings {
            builder: builder(cache.root()),
            cache,
            apt: self.apt.clone(),
            registry: self.registry.clone(),
            transport: self.transport.clone(),
            jobs: self.jobs,
            offline: self.offline,
            lock: self.lock,
            vendor: self.vendor.clone(),
            layer_cache: self.layer_cache,
            remote_cache: self.remote_cache.clone(),
            only_platforms: self.only_platforms.clone(),
        })
    }
}

/// The flags that say how a recipe is made into an image. `build` takes
/// every one; `push RECIPE` takes `build`'s defaults for those it has no
/// flag for yet, and `verify --rebuild` its own (locked, no layer cache).
pub(crate) struct RecipeFlags<'a> {
    pub recipe: &'a Path,
    pub annotation: &'a [(String, String)],
    pub label: &'a [(String, String)],
    pub only_platforms: &'a [Platform],
    pub layer_cache: bool,
    pub packages: &'a PackageArgs,
    pub remote_cache: &'a RemoteCacheArgs,
    pub cache: &'a CacheArgs,
    pub jobs: &'a JobsArgs,
}

/// No `--offline`, `--locked` or `--vendor`.
static NO_PACKAGE_FLAGS: PackageArgs = PackageArgs {
    offline: false,
    locked: false,
    vendor: None,
};

impl<'a> RecipeFlags<'a> {
    /// `build`'s defaults for the flags a command does not take (yet):
    /// no annotations or labels, every platform, the layer cache, no
    /// package flags.
    pub fn defaults(
        recipe: &'a Path,
        remote_cache: &'a RemoteCacheArgs,
        cache: &'a CacheArgs,
        jobs: &'a JobsArgs,
    ) -> RecipeFlags<'a> {
        RecipeFlags {
            recipe,
            annotation: &[],
            label: &[],
            only_platforms: &[],
            layer_cache: true,
            packages: &NO_PACKAGE_FLAGS,
            remote_cache,
            cache,
            jobs,
        }
    }
}

/// How a recipe is made into an image: what `build`, `push RECIPE` and
/// `verify --rebuild` share.
pub(crate) struct Making {
    /// Loaded with `SOURCE_DATE_EPOCH`, the `--annotation`s and
    /// `--label`s added.
    pub recipe: Recipe,
    pub attest: AttestOptions,
    pub run: Run,
}

impl Making {
    /// `attest` is what the command's policy made of `--attest` and
    /// `--sign-key` (`attest_options`); `registry` and `network` are the
    /// command's, made once.
    pub fn resolve(
        flags: &RecipeFlags,
        attest: AttestOptions,
        registry: RegistrySettings,
        transport: &Transport,
    ) -> Result<Making> {
        let mut recipe = crate::recipe::load(flags.recipe, source_date_epoch()?)?;
        recipe.add_metadata(flags.annotation, flags.label);
        check_platforms(&recipe, flags.only_platforms)?;
        let run = Run::resolve(
            &RunFlags {
                cache: flags.cache,
                jobs: flags.jobs,
                packages: flags.packages,
                remote_cache: Some(flags.remote_cache),
                layer_cache: flags.layer_cache,
                only_platforms: flags.only_platforms,
            },
            registry,
            transport,
        )?;
        Ok(Making {
            recipe,
            attest,
            run,
        })
    }

    /// Opens the cache folder and runs the pipeline into `store`.
    pub fn produce(&self, store: &BlobStore, progress: pipeline::Progress) -> Result<Produced> {
        let settings = self.run.open()?;
        Ok(pipeline::produce(
            &self.recipe,
            &settings,
            &self.attest,
            store,
            progress,
        )?)
    }

    /// How many platforms the build makes.
    pub fn building(&self) -> usize {
        match self.run.only_platforms.len() {
            0 => self.recipe.platforms.len(),
            n => n,
        }
    }
}

/// The attestation flags, checked against each other.
pub(crate) fn attest_options(attest: &str, sign_key: Option<&Path>) -> Result<AttestOptions> {
    let selection: Selection = attest.parse()?;
    let key = match sign_key {
        Some(p) => Some(PrivateKey::load(p)?),
        None => None,
    };
    if key.is_some() && selection == Selection::None {
        bail!("--sign-key signs attestations, but --attest none makes none; drop one of them");
    }
    Ok(AttestOptions { selection, key })
}

/// The recipe's platforms, for messages.
pub(crate) fn listed(recipe: &Recipe) -> String {
    recipe
        .platforms
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each `--platform` checked to be one of the recipe's.
pub(crate) fn check_platforms(recipe: &Recipe, wanted: &[Platform]) -> Result<()> {
    for p in wanted {
        if !recipe.platforms.contains(p) {
            bail!(
                "--platform {p} is not one of the platforms {} builds ({}); pass one of them",
                recipe.path.display(),
                listed(recipe)
            );
        }
    }
    Ok(())
}
