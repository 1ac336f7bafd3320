//! `[apt]` end to end: resolving a recipe's packages into a lockfile, and
//! turning a lockfile back into installed trees. Only this module and the
//! registry client reach the network; everything after the .deb bytes are
//! verified is a pure function of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::apt::fetch::{join_url, FetchError, FetchItem, Fetcher};
use crate::apt::install::{install, InstallOptions, Installed};
use crate::apt::release::Keyring;
use crate::apt::{control, hostconf, resolver, Package};
use crate::deb::unpack::{UnpackCache, UnpackError, UnpackedDeb};
use crate::deb::DebContents;
use crate::layer::PROFILE_ID;
use crate::lock::{Lock, LockedPackage, LockedPlatform, LockedSource, LOCK_VERSION};
use crate::oci::{Digest, Platform};
use crate::recipe::{AptSource, AptSpec, Recipe};

/// Where mirrors and keys come from; filled by the CLI from the machine's
/// apt configuration root and `STELE_MIRROR_<NAME>` variables.
#[derive(Clone, Debug)]
pub struct AptSettings {
    /// Root under which `etc/apt` is read for `mirror = "host"` (normally `/`).
    pub host_root: PathBuf,
    /// `STELE_MIRROR_<NAME>` values by NAME.
    pub mirrors: BTreeMap<String, String>,
    /// Parallel downloads.
    pub jobs: usize,
}

impl Default for AptSettings {
    fn default() -> Self {
        AptSettings {
            host_root: PathBuf::from("/"),
            mirrors: BTreeMap::new(),
            jobs: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error("{loc}: mirror = \"host\" but the machine's apt configuration ({root}etc/apt) has no `deb` source for suite {suite}; add one, or set mirror to a URL")]
    NoHostSource {
        loc: String,
        root: String,
        suite: String,
    },
    #[error("{loc}: mirror = \"{name}\" but STELE_MIRROR_{name} is not set; export it as the mirror's base URL")]
    NoMirrorVariable { loc: String, name: String },
    #[error("{loc}: mirror {mirror} has no keyring: add `keyring = \"path/to/keyring.gpg\"` to this source (binary or armored OpenPGP keys)")]
    NoKeyring { loc: String, mirror: String },
    #[error("{loc}: reading keyring {path}: {source}")]
    KeyringRead {
        loc: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{loc}: {source}")]
    Keyring {
        loc: String,
        source: crate::apt::release::ReleaseError,
    },
    #[error("{loc}: {source}")]
    HostConf {
        loc: String,
        source: hostconf::HostConfError,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("resolving packages for {platform}: {source}")]
    Resolve {
        platform: Platform,
        source: Box<resolver::ResolveError>,
    },
    #[error("the lockfile {path} has no packages for {platform}; run `stele lock` again")]
    LockMissingPlatform { path: PathBuf, platform: Platform },
    #[error("the lockfile {path} names source {index}, but the recipe has {count} sources; run `stele lock` again")]
    LockBadSource {
        path: PathBuf,
        index: usize,
        count: usize,
    },
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("{package} was not unpacked before the build; this is a bug in stele")]
    NotUnpacked { package: String },
    #[error(transparent)]
    Install(#[from] crate::apt::install::InstallError),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A recipe source made concrete: base URL and the keys that must sign it.
struct Located {
    url: String,
    keyring: Keyring,
}

fn locate(src: &AptSource, settings: &AptSettings) -> Result<Located, PackagesError> {
    let loc = src.loc.0.clone();
    let recipe_keyring = || -> Result<Option<Keyring>, PackagesError> {
        let Some(path) = &src.keyring else {
            return Ok(None);
        };
        let bytes = std::fs::read(path).map_err(|e| PackagesError::KeyringRead {
            loc: loc.clone(),
            path: path.clone(),
            source: e,
        })?;
        let ring = Keyring::parse(&bytes, &path.display().to_string()).map_err(|e| {
            PackagesError::Keyring {
                loc: loc.clone(),
                source: e,
            }
        })?;
        Ok(Some(ring))
    };
    if src.mirror == "host" {
        let sources =
            hostconf::host_sources(&settings.host_root).map_err(|e| PackagesError::HostConf {
                loc: loc.clone(),
                source: e,
            })?;
        let host = hostconf::find_host_source(&sources, &src.suite).ok_or_else(|| {
            PackagesError::NoHostSource {
                loc: loc.clone(),
                root: settings
                    .host_root
                    .display()
                    .to_string()
                    .trim_end_matches('/')
                    .to_string()
                    + "/",
                suite: src.suite.clone(),
            }
        })?;
        let keyring = match recipe_keyring()? {
            Some(k) => k,
            None => hostconf::load_keyring(&settings.host_root, host).map_err(|e| {
                PackagesError::HostConf {
                    loc: loc.clone(),
                    source: e,
                }
            })?,
        };
        return Ok(Located {
            url: host.uri.clone(),
            keyring,
        });
    }
    let url = if src.mirror.contains("://") {
        src.mirror.clone()
    } else {
        settings.mirrors.get(&src.mirror).cloned().ok_or_else(|| {
            PackagesError::NoMirrorVariable {
                loc: loc.clone(),
                name: src.mirror.clone(),
            }
        })?
    };
    let keyring = recipe_keyring()?.ok_or_else(|| PackagesError::NoKeyring {
        loc: loc.clone(),
        mirror: url.clone(),
    })?;
    Ok(Located { url, keyring })
}

/// Resolves the recipe's packages against the signed indexes of its
/// sources, for every platform: the content of a new lockfile.
pub fn resolve_lock(
    recipe: &Recipe,
    apt: &AptSpec,
    fetcher: &Fetcher,
    settings: &AptSettings,
) -> Result<Lock, PackagesError> {
    let mut sources = Vec::new();
    let mut releases = Vec::new();
    for src in &apt.sources {
        let located = locate(src, settings)?;
        let verified = fetcher.fetch_release(&located.url, &src.suite, &located.keyring)?;
        sources.push(LockedSource {
            suite: src.suite.clone(),
            components: src.components.clone(),
            inrelease_sha256: verified.inrelease_sha256.clone(),
        });
        releases.push((located, verified));
    }
    let mut platforms = BTreeMap::new();
    for platform in &recipe.platforms {
        let arch = platform
            .debian_arch()
            .expect("checked when the recipe loaded");
        let mut all = Vec::new();
        for (i, (src, (located, verified))) in apt.sources.iter().zip(&releases).enumerate() {
            for component in &src.components {
                let text = fetcher.fetch_index(
                    &located.url,
                    &src.suite,
                    component,
                    arch,
                    &verified.release,
                )?;
                let text = String::from_utf8_lossy(&text);
                let name = format!("{} {}/binary-{arch}/Packages", src.suite, component);
                all.extend(control::parse_packages_index(&text, &name, i)?);
            }
        }
        let universe = resolver::Universe::new(all, arch).map_err(|e| PackagesError::Resolve {
            platform: platform.clone(),
            source: Box::new(e),
        })?;
        let chosen =
            resolver::resolve(&universe, &apt.packages).map_err(|e| PackagesError::Resolve {
                platform: platform.clone(),
                source: Box::new(e),
            })?;
        let packages = chosen
            .into_iter()
            .map(|p| LockedPackage {
                name: p.name,
                version: p.version,
                architecture: p.architecture,
                source: p.source_index,
                path: p.filename,
                size: p.size,
                sha256: p.sha256,
            })
            .collect();
        platforms.insert(platform.to_string(), LockedPlatform { packages });
    }
    Ok(Lock {
        version: LOCK_VERSION,
        recipe_digest: recipe.apt_digest(),
        encoding: PROFILE_ID.to_string(),
        sources,
        platforms,
    })
}

/// Whether `lock` still matches the recipe's apt inputs.
pub fn is_fresh(recipe: &Recipe, lock: &Lock) -> bool {
    lock.recipe_digest == recipe.apt_digest()
}

/// The locked packages of one platform, sorted by name.
pub fn locked_for<'a>(
    lock: &'a Lock,
    lock_path: &Path,
    platform: &Platform,
) -> Result<&'a [LockedPackage], PackagesError> {
    lock.platforms
        .get(&platform.to_string())
        .map(|p| p.packages.as_slice())
        .ok_or_else(|| PackagesError::LockMissingPlatform {
            path: lock_path.into(),
            platform: platform.clone(),
        })
}

/// The distinct packages `platforms` lock, by sha256, each checked to name
/// one of the recipe's sources.
fn wanted<'a>(
    apt: &AptSpec,
    lock: &'a Lock,
    lock_path: &Path,
    platforms: &[Platform],
) -> Result<BTreeMap<Digest, &'a LockedPackage>, PackagesError> {
    let mut wanted: BTreeMap<Digest, &LockedPackage> = BTreeMap::new();
    for platform in platforms {
        for p in locked_for(lock, lock_path, platform)? {
            if p.source >= apt.sources.len() {
                return Err(PackagesError::LockBadSource {
                    path: lock_path.into(),
                    index: p.source,
                    count: apt.sources.len(),
                });
            }
            wanted.entry(p.sha256.clone()).or_insert(p);
        }
    }
    Ok(wanted)
}

/// Downloads (or finds in the cache) every locked .deb of `platforms`,
/// verified against the lock. Returns the cache path of each by sha256.
pub fn fetch_locked(
    apt: &AptSpec,
    lock: &Lock,
    lock_path: &Path,
    platforms: &[Platform],
    fetcher: &Fetcher,
    settings: &AptSettings,
) -> Result<BTreeMap<Digest, PathBuf>, PackagesError> {
    let wanted = wanted(apt, lock, lock_path, platforms)?;
    fetch_missing(apt, wanted.values().copied(), fetcher, settings)?;
    Ok(wanted
        .keys()
        .map(|d| (d.clone(), fetcher.cache().path(d)))
        .collect())
}

/// Downloads those of `packages` the cache does not hold yet.
fn fetch_missing<'a>(
    apt: &AptSpec,
    packages: impl Iterator<Item = &'a LockedPackage>,
    fetcher: &Fetcher,
    settings: &AptSettings,
) -> Result<(), PackagesError> {
    let missing: Vec<&LockedPackage> = packages
        .filter(|p| !fetcher.cache().contains(&p.sha256))
        .collect();
    // Mirrors are only looked up when something must be downloaded, so a
    // warm cache (or a vendored folder) builds without apt configuration.
    let mut urls: BTreeMap<usize, String> = BTreeMap::new();
    if !missing.is_empty() && !fetcher.offline() {
        for p in &missing {
            if let std::collections::btree_map::Entry::Vacant(e) = urls.entry(p.source) {
                e.insert(locate(&apt.sources[p.source], settings)?.url);
            }
        }
    }
    let items: Vec<FetchItem> = missing
        .iter()
        .map(|p| FetchItem {
            url: urls
                .get(&p.source)
                .map(|u| join_url(u, &p.path))
                .unwrap_or_else(|| p.path.clone()),
            sha256: p.sha256.clone(),
            size: p.size,
            label: package_label(p),
        })
        .collect();
    fetcher.fetch_all(&items, settings.jobs)?;
    Ok(())
}

fn package_label(p: &LockedPackage) -> String {
    format!("{} {} ({})", p.name, p.version, p.architecture)
}

/// The locked packages of `platforms`, unpacked, and how many of them
/// had been unpacked by an earlier build.
pub struct UnpackedPackages {
    pub debs: BTreeMap<Digest, UnpackedDeb>,
    pub reused: usize,
}

/// Every locked .deb of `platforms`, unpacked. A package the cache has
/// unpacked before is taken from there and its .deb is neither fetched nor
/// read; the others are fetched if missing and unpacked into the cache,
/// `jobs` at a time.
pub fn unpack_locked(
    apt: &AptSpec,
    lock: &Lock,
    lock_path: &Path,
    platforms: &[Platform],
    fetcher: &Fetcher,
    settings: &AptSettings,
    jobs: usize,
) -> Result<UnpackedPackages, PackagesError> {
    let wanted = wanted(apt, lock, lock_path, platforms)?;
    let cache = UnpackCache::open(fetcher.cache()).map_err(FetchError::Store)?;
    let mut debs = BTreeMap::new();
    let mut todo: Vec<&LockedPackage> = Vec::new();
    for (digest, p) in &wanted {
        match cache.load(digest) {
            Some(u) => {
                debs.insert(digest.clone(), u);
            }
            None => todo.push(p),
        }
    }
    let reused = debs.len();
    fetch_missing(apt, todo.iter().copied(), fetcher, settings)?;
    let unpacked = crate::parallel::map(
        &todo,
        jobs,
        |p| p.size,
        |p| cache.unpack(&package_label(p), &p.sha256, p.size),
    )?;
    for (p, u) in todo.iter().zip(unpacked) {
        debs.insert(p.sha256.clone(), u);
    }
    Ok(UnpackedPackages { debs, reused })
}

/// Installs one platform's locked packages from their unpacked contents,
/// each after the packages it depends on (dpkg's unpack order, which is
/// what `Replaces` is judged by); ties in name order.
pub fn install_locked(
    locked: &[LockedPackage],
    debs: &BTreeMap<Digest, UnpackedDeb>,
    epoch: u64,
) -> Result<Installed, PackagesError> {
    let mut unpacked = Vec::with_capacity(locked.len());
    for p in locked {
        let contents = debs
            .get(&p.sha256)
            .ok_or_else(|| PackagesError::NotUnpacked {
                package: package_label(p),
            })?
            .contents(epoch);
        unpacked.push((package_record(p, &contents), contents));
    }
    let records: Vec<Package> = unpacked.iter().map(|(p, _)| p.clone()).collect();
    let mut slots: Vec<Option<(Package, DebContents)>> = unpacked.into_iter().map(Some).collect();
    let ordered: Vec<(Package, DebContents)> = resolver::install_order(&records)
        .into_iter()
        .map(|i| slots[i].take().expect("install_order is a permutation"))
        .collect();
    Ok(install(&ordered, epoch, &InstallOptions::default())?)
}

/// The package record `install` needs, from the lock and the .deb's own
/// control file (which is what dpkg trusts too).
fn package_record(p: &LockedPackage, deb: &DebContents) -> Package {
    let field = |n: &str| deb.control_field(n).unwrap_or_default();
    Package {
        name: p.name.clone(),
        version: p.version.clone(),
        architecture: p.architecture.clone(),
        multi_arch: field("Multi-Arch"),
        essential: field("Essential") == "yes",
        priority: field("Priority"),
        source: deb.control_field("Source").map_or_else(
            || p.name.clone(),
            |s| s.split_whitespace().next().unwrap_or_default().to_string(),
        ),
        depends: field("Depends"),
        pre_depends: field("Pre-Depends"),
        provides: field("Provides"),
        conflicts: field("Conflicts"),
        breaks: field("Breaks"),
        replaces: field("Replaces"),
        filename: p.path.clone(),
        size: p.size,
        sha256: p.sha256.clone(),
        stanza: String::new(),
        source_index: p.source,
    }
}

/// Copies every locked .deb into `dir` as `<name>_<version>_<arch>.deb`.
pub fn vendor(
    lock: &Lock,
    files: &BTreeMap<Digest, PathBuf>,
    dir: &Path,
) -> Result<usize, PackagesError> {
    std::fs::create_dir_all(dir).map_err(|e| PackagesError::Io {
        path: dir.into(),
        source: e,
    })?;
    let mut n = 0;
    for platform in lock.platforms.values() {
        for p in &platform.packages {
            let dest = dir.join(vendor_name(p));
            if dest.exists() {
                continue;
            }
            copy_fresh(&files[&p.sha256], dir, &dest)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Copies `src` to `dest` as a new file (temp, fsync, rename) whose mode
/// the umask decides: `fs::copy` would copy the cache file's mode, and a
/// cache filled under `umask 077` would make the vendor folder unreadable.
fn copy_fresh(src: &Path, dir: &Path, dest: &Path) -> Result<(), PackagesError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e| PackagesError::Io { path, source: e }
    };
    let mut from = std::fs::File::open(src).map_err(io_err(src))?;
    let mut temp = crate::store::temp_file_in(dir, ".stele-tmp-").map_err(io_err(dir))?;
    std::io::copy(&mut from, &mut temp).map_err(io_err(dest))?;
    temp.as_file().sync_all().map_err(io_err(dest))?;
    temp.persist(dest).map_err(|e| io_err(dest)(e.error))?;
    Ok(())
}

pub fn vendor_name(p: &LockedPackage) -> String {
    // dpkg's file naming drops the epoch's colon, which is not portable.
    let version = p.version.replace(':', "%3a");
    format!("{}_{}_{}.deb", p.name, version, p.architecture)
}

/// Imports .debs from a vendored folder into the cache, each verified
/// against the lock (a file with the right name but other bytes is refused).
pub fn import_vendored(lock: &Lock, dir: &Path, fetcher: &Fetcher) -> Result<usize, PackagesError> {
    let mut n = 0;
    for platform in lock.platforms.values() {
        for p in &platform.packages {
            let src = dir.join(vendor_name(p));
            if fetcher.cache().contains(&p.sha256) || !src.is_file() {
                continue;
            }
            let file = std::fs::File::open(&src).map_err(|e| PackagesError::Io {
                path: src.clone(),
                source: e,
            })?;
            fetcher
                .cache()
                .put_verified(std::io::BufReader::new(file), &p.sha256, p.size)
                .map_err(|e| PackagesError::Fetch(FetchError::Store(e)))?;
            n += 1;
        }
    }
    Ok(n)
}
