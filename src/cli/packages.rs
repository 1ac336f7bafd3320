//! `stele lock`, `stele vendor`, and the package step of `stele build`:
//! the CLI's half of `[apt]` (environment, cache location, flags).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::apt::fetch::Fetcher;
use crate::deb::unpack::UnpackedDeb;
use crate::lock::Lock;
use crate::packages::{self, AptSettings};
use crate::recipe::Recipe;
use crate::store::BlobStore;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct PackageArgs {
    /// Cache of downloads, unpacked packages and layers (default
    /// $XDG_CACHE_HOME/stele, else ~/.cache/stele).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use only the cache (and --vendor): never touch the network.
    #[arg(long)]
    pub offline: bool,
    /// Fail instead of resolving when the lockfile is missing or stale.
    #[arg(long)]
    pub locked: bool,
    /// Import .debs from a folder written by `stele vendor` before fetching.
    #[arg(long, value_name = "DIR")]
    pub vendor: Option<PathBuf>,
    /// How much runs at once: downloads (default 4), and package unpacking
    /// and layer writing (default: one per CPU). The image is the same for
    /// any value.
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

impl PackageArgs {
    /// Threads for unpacking packages and writing layers.
    pub fn work_jobs(&self) -> usize {
        self.jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}

#[derive(clap::Args, Debug)]
pub struct LockArgs {
    /// The recipe (TOML); the lock is written as <stem>.lock beside it.
    pub recipe: PathBuf,
    #[command(flatten)]
    pub packages: PackageArgs,
}

#[derive(clap::Args, Debug)]
pub struct VendorArgs {
    /// The recipe (TOML), with its lockfile beside it.
    pub recipe: PathBuf,
    /// Folder to copy every locked .deb into.
    pub dir: PathBuf,
    #[command(flatten)]
    pub packages: PackageArgs,
}

/// The cache folder: the flag, else `$XDG_CACHE_HOME/stele`, else `~/.cache/stele`.
pub fn cache_dir(flag: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = flag {
        return Ok(d.clone());
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("stele"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache").join("stele")),
        None => bail!("no cache folder: HOME and XDG_CACHE_HOME are unset; pass --cache-dir DIR"),
    }
}

/// `STELE_MIRROR_<NAME>` variables, by NAME.
fn mirror_variables() -> BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(k, v)| k.strip_prefix("STELE_MIRROR_").map(|n| (n.to_string(), v)))
        .collect()
}

/// `STELE_APT_ROOT` moves where `mirror = "host"` reads `etc/apt` from
/// (a chroot, or a test's own configuration); the default is `/`.
pub fn apt_settings(args: &PackageArgs) -> AptSettings {
    let host_root = std::env::var_os("STELE_APT_ROOT")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from);
    AptSettings {
        host_root,
        mirrors: mirror_variables(),
        jobs: args.jobs.unwrap_or(4).max(1),
    }
}

pub fn fetcher(args: &PackageArgs) -> Result<Fetcher> {
    let dir = cache_dir(&args.cache_dir)?;
    let store =
        BlobStore::open(&dir).with_context(|| format!("opening the cache {}", dir.display()))?;
    Ok(Fetcher::new(store, args.offline))
}

/// The recipe's packages, ready for the pure build: the lock in force and
/// every locked .deb unpacked.
pub struct PreparedPackages {
    pub lock: Lock,
    pub lock_path: PathBuf,
    pub debs: BTreeMap<crate::oci::Digest, UnpackedDeb>,
}

/// The lock in force, and what fetching under it needs.
struct LockInForce {
    lock: Lock,
    lock_path: PathBuf,
    fetcher: Fetcher,
    settings: AptSettings,
}

/// Finds or makes the lock, then unpacks what it names (fetching only the
/// packages not unpacked before). Resolving (and so rewriting the
/// lockfile) happens only when the lock is missing or stale and `--locked`
/// was not given.
pub fn prepare(recipe: &Recipe, args: &PackageArgs) -> Result<Option<PreparedPackages>> {
    let (Some(apt), Some(l)) = (&recipe.apt, lock_in_force(recipe, args)?) else {
        return Ok(None);
    };
    let unpacked = packages::unpack_locked(
        apt,
        &l.lock,
        &l.lock_path,
        &recipe.platforms,
        &l.fetcher,
        &l.settings,
        args.work_jobs(),
    )?;
    eprintln!(
        "packages: {} unpacked before, {} unpacked now",
        unpacked.reused,
        unpacked.debs.len() - unpacked.reused
    );
    Ok(Some(PreparedPackages {
        lock: l.lock,
        lock_path: l.lock_path,
        debs: unpacked.debs,
    }))
}

fn lock_in_force(recipe: &Recipe, args: &PackageArgs) -> Result<Option<LockInForce>> {
    let Some(apt) = &recipe.apt else {
        return Ok(None);
    };
    let settings = apt_settings(args);
    let fetcher = fetcher(args)?;
    let lock_path = Lock::path_for(&recipe.path);
    let existing = if lock_path.exists() {
        Some(Lock::load(&lock_path)?)
    } else {
        None
    };
    let lock = match existing {
        Some(lock) if packages::is_fresh(recipe, &lock) => lock,
        other => {
            let why = if other.is_some() {
                "is stale (the recipe's [apt] or platforms changed)"
            } else {
                "does not exist"
            };
            if args.locked {
                bail!(
                    "--locked: the lockfile {} {why}; run `stele lock {}` and commit the result",
                    lock_path.display(),
                    recipe.path.display()
                );
            }
            if args.offline {
                bail!("--offline: the lockfile {} {why}, and resolving needs the network; run `stele lock` online first", lock_path.display());
            }
            eprintln!("lockfile {} {why}: resolving", lock_path.display());
            let lock = packages::resolve_lock(recipe, apt, &fetcher, &settings)?;
            super::write_atomic(&lock_path, lock.to_text().as_bytes())?;
            eprintln!("wrote {}", lock_path.display());
            lock
        }
    };
    if let Some(dir) = &args.vendor {
        let n = packages::import_vendored(&lock, dir, &fetcher)?;
        eprintln!("imported {n} package(s) from {}", dir.display());
    }
    Ok(Some(LockInForce {
        lock,
        lock_path,
        fetcher,
        settings,
    }))
}

pub fn cmd_lock(args: LockArgs, epoch: Option<u64>) -> Result<()> {
    let recipe = crate::recipe::load(&args.recipe, epoch)?;
    let Some(apt) = &recipe.apt else {
        bail!(
            "{} has no [apt] section: there is nothing to lock",
            args.recipe.display()
        );
    };
    if args.packages.offline {
        bail!("`stele lock` resolves against the mirrors' current indexes and needs the network; drop --offline");
    }
    let lock = packages::resolve_lock(
        &recipe,
        apt,
        &fetcher(&args.packages)?,
        &apt_settings(&args.packages),
    )?;
    let path = Lock::path_for(&args.recipe);
    super::write_atomic(&path, lock.to_text().as_bytes())?;
    for (platform, p) in &lock.platforms {
        eprintln!("{platform}: {} package(s)", p.packages.len());
    }
    println!("{}", path.display());
    Ok(())
}

pub fn cmd_vendor(args: VendorArgs, epoch: Option<u64>) -> Result<()> {
    let recipe = crate::recipe::load(&args.recipe, epoch)?;
    let mut opts = args.packages.clone();
    opts.locked = true;
    let (Some(apt), Some(l)) = (&recipe.apt, lock_in_force(&recipe, &opts)?) else {
        bail!(
            "{} has no [apt] section: there is nothing to vendor",
            args.recipe.display()
        );
    };
    let files = packages::fetch_locked(
        apt,
        &l.lock,
        &l.lock_path,
        &recipe.platforms,
        &l.fetcher,
        &l.settings,
    )?;
    let n = packages::vendor(&l.lock, &files, &args.dir)?;
    eprintln!("copied {n} package(s) into {}", args.dir.display());
    println!("{}", vendor_hint(&args.recipe, &args.dir));
    Ok(())
}

fn vendor_hint(recipe: &Path, dir: &Path) -> String {
    format!(
        "rebuild offline with: stele build {} --offline --vendor {}",
        recipe.display(),
        dir.display()
    )
}
