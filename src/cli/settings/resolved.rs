//! The finished values commands' settings are made of: where the cache
//! folder is, how a command reads the images a user names, what a
//! pipeline run takes, and how a recipe is made into an image. Each is
//! resolved once from flags and the environment, and only read after.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::signing::{load_signing_key, Provenance, ProvenanceArgs, NO_PROVENANCE_FLAGS};
use super::{
    apt_settings, builder, cache_dir, open_cache, registry_settings, registry_transport,
    remote_cache_settings, source_date_epoch, work_jobs, CacheArgs, JobsArgs, PackageArgs,
    RegistryArgs, RemoteCacheArgs,
};
use crate::apt::sources::AptSettings;
use crate::attest::Selection;
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

    /// Opens the folder, checked to take new blobs: a read-only folder
    /// (or file system) opens, and fails only at the first write.
    pub fn open_writable(&self) -> Result<Cache> {
        let cache = self.open()?;
        writable(&cache).with_context(|| {
            format!(
                "the cache folder {} cannot be written",
                cache.root().display()
            )
        })?;
        Ok(cache)
    }

    /// Opens the folder if it exists, opens and can be written, for work
    /// it only spares (records of layers checked before): a command that
    /// needs no cache neither makes one nor fails without one.
    pub fn open_if_there(&self) -> Option<Cache> {
        let dir = self.dir.as_ref().ok()?;
        let cache = dir.is_dir().then(|| open_cache(dir).ok()).flatten()?;
        writable(&cache).ok().map(|()| cache)
    }
}

/// Whether `cache` takes new blobs: a temp file made and removed where a
/// blob would be written (a read-only folder or file system opens, and
/// fails only at the first write).
fn writable(cache: &Cache) -> Result<(), crate::store::StoreError> {
    cache.blobs().begin().map(drop)
}

/// How a command reads the images a user names: a registry's blobs go
/// into the cache folder, opened only when a registry is named. Reading
/// needs no cache: without a writable folder (a deploy container with no
/// HOME, a read-only mount) they go into a temp folder the command
/// removes when it ends.
pub(crate) struct Reader {
    pub registry: RegistrySettings,
    pub cache: CacheFolder,
    /// Made on the first read that needs it, removed with the `Reader`.
    scratch: std::sync::OnceLock<(BlobStore, tempfile::TempDir)>,
    /// Whether to say (`-v`) that the blobs went into a temp folder.
    verbose: bool,
}

/// Where a registry image's blobs are read into.
pub(crate) enum ReadInto<'a> {
    /// The cache folder (its lock held while this lives).
    Cache(Box<Cache>),
    /// The reader's temp folder.
    Scratch(&'a BlobStore),
}

impl ReadInto<'_> {
    pub fn blobs(&self) -> &BlobStore {
        match self {
            ReadInto::Cache(c) => c.blobs(),
            ReadInto::Scratch(s) => s,
        }
    }
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
    ) -> Result<Reader> {
        Ok(Reader::new(
            registry_settings(registry, jobs, transport, progress)?,
            CacheFolder::resolve(cache),
        ))
    }

    pub fn new(registry: RegistrySettings, cache: CacheFolder) -> Reader {
        Reader {
            registry,
            cache,
            scratch: std::sync::OnceLock::new(),
            verbose: false,
        }
    }

    /// Says with `-v` where blobs went when the cache could not take them.
    pub fn verbose(mut self, verbose: bool) -> Reader {
        self.verbose = verbose;
        self
    }

    /// Where a registry image's blobs go: the cache folder when it can be
    /// written, else a temp folder of this reader's.
    pub fn read_into(&self) -> Result<ReadInto<'_>> {
        let why = match self.cache.open_writable() {
            Ok(cache) => return Ok(ReadInto::Cache(Box::new(cache))),
            Err(why) => why,
        };
        if let Some((store, _)) = self.scratch.get() {
            return Ok(ReadInto::Scratch(store));
        }
        let dir = tempfile::Builder::new()
            .prefix("stele-read-")
            .tempdir()
            .with_context(|| format!("{why:#}; and no temp folder could be made for the image's blobs either: pass --cache-dir DIR (a writable folder), or set TMPDIR"))?;
        let store = BlobStore::open(dir.path())?;
        if self.verbose {
            eprintln!(
                "{why:#}: reading the image's blobs into {}, removed when done",
                dir.path().display()
            );
        }
        let (store, _) = self.scratch.get_or_init(|| (store, dir));
        Ok(ReadInto::Scratch(store))
    }

    /// For a command whose only network use is reading the images it is
    /// given (`diff`, `inspect`): its network settings made here, once.
    pub fn for_reading(registry: &RegistryArgs, cache: &CacheArgs) -> Result<Reader> {
        let transport = registry_transport(registry)?;
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
            let into = self.read_into()?;
            let access = RegistryAccess {
                settings: &self.registry,
                cache: into.blobs(),
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
        // A registry image's blobs go where `read_into` says: the cache
        // folder when it can be written, else a temp folder.
        let into = match &target {
            Target::Registry { .. } => Some(self.read_into()?),
            _ => None,
        };
        let local = match &into {
            Some(_) => None,
            None if make_cache => self.cache.open_writable().ok(),
            None => self.cache.open_if_there(),
        };
        let cache = match &into {
            Some(ReadInto::Cache(c)) => Some(&**c),
            Some(ReadInto::Scratch(_)) => None,
            None => local.as_ref(),
        };
        let access = into.as_ref().map(|i| RegistryAccess {
            settings: &self.registry,
            cache: i.blobs(),
        });
        let unchecked = crate::source::open_deferred(&target, access.as_ref())?;
        let jobs = self.registry.jobs;
        Ok(match cache {
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
    /// Python indexes and npm registries, as pip and npm are configured.
    pub apps: crate::apps::AppSettings,
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
            apps: super::apps::app_settings(None),
            only_platforms: flags.only_platforms.to_vec(),
        })
    }

    /// The pipeline's settings: the cache folder opened (once per
    /// command) and the builder named (by the defaults: a run that
    /// attests names it with `open_attesting`).
    pub fn open(&self) -> Result<Settings> {
        self.open_attesting(&Provenance::defaults())
    }

    /// `open`, provenance naming the builder and run as `provenance` says.
    pub fn open_attesting(&self, provenance: &Provenance) -> Result<Settings> {
        let cache = self.cache.open()?;
        Ok(Settings {
            builder: builder(cache.root(), provenance),
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
            apps: self.apps.clone(),
            only_platforms: self.only_platforms.clone(),
        })
    }
}

/// The flags that say how a recipe is made into an image. `build` and
/// `push RECIPE` take every one (`BuildOptions`, through
/// `Making::from_options`); `verify --rebuild` its own (locked, no layer
/// cache).
pub(crate) struct RecipeFlags<'a> {
    pub recipe: &'a Path,
    /// `--context`: where `[[files]] src` is read from (default: the
    /// recipe's folder).
    pub context: Option<&'a Path>,
    pub annotation: &'a [(String, String)],
    pub label: &'a [(String, String)],
    pub only_platforms: &'a [Platform],
    pub layer_cache: bool,
    pub packages: &'a PackageArgs,
    pub remote_cache: &'a RemoteCacheArgs,
    pub cache: &'a CacheArgs,
    pub jobs: &'a JobsArgs,
    pub provenance: &'a ProvenanceArgs,
}

/// No `--offline`, `--locked` or `--vendor`.
static NO_PACKAGE_FLAGS: PackageArgs = PackageArgs {
    offline: false,
    locked: false,
    vendor: None,
};

impl<'a> RecipeFlags<'a> {
    /// `build`'s defaults for the flags a command does not take: the
    /// recipe's folder as the context, no annotations or labels, every
    /// platform, the layer cache, no package flags.
    pub fn defaults(
        recipe: &'a Path,
        remote_cache: &'a RemoteCacheArgs,
        cache: &'a CacheArgs,
        jobs: &'a JobsArgs,
    ) -> RecipeFlags<'a> {
        RecipeFlags {
            recipe,
            context: None,
            annotation: &[],
            label: &[],
            only_platforms: &[],
            layer_cache: true,
            packages: &NO_PACKAGE_FLAGS,
            remote_cache,
            cache,
            jobs,
            provenance: &NO_PROVENANCE_FLAGS,
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
    /// What provenance says of the builder and this run.
    pub provenance: Provenance,
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
        recipe.read_files_from(flags.context)?;
        recipe.add_metadata(flags.annotation, flags.label);
        check_platforms(&recipe, flags.only_platforms)?;
        let mut run = Run::resolve(
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
        // The project's .npmrc beside its lock counts, as npm reads it.
        let project = recipe.node.as_ref().and_then(|n| n.lock.parent());
        run.apps = super::apps::app_settings(project);
        Ok(Making {
            recipe,
            attest,
            run,
            provenance: Provenance::resolve(flags.provenance)?,
        })
    }

    /// Opens the cache folder and runs the pipeline into `store`.
    pub fn produce(&self, store: &BlobStore, progress: pipeline::Progress) -> Result<Produced> {
        let settings = self.run.open_attesting(&self.provenance)?;
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

/// The attestation flags, checked against each other. `identity` is the
/// repository (with the tag, when pushed by one) the image signature
/// names: `--sign-identity`, else the `--push` destination.
pub(crate) fn attest_options(
    attest: &str,
    sign_key: Option<&Path>,
    identity: Option<String>,
) -> Result<AttestOptions> {
    let selection: Selection = attest.parse()?;
    let key = match sign_key {
        Some(p) => Some(load_signing_key(p)?),
        None => None,
    };
    if key.is_some() && selection == Selection::None && identity.is_none() {
        bail!("--sign-key signs attestations, but --attest none makes none; drop one of them, or give --push or --sign-identity to sign the image itself");
    }
    Ok(AttestOptions {
        selection,
        key,
        identity,
    })
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
