//! The .debs a lock names: downloaded (or imported from a vendored folder)
//! into the content-addressed cache, each verified against its locked
//! sha256 and size. Unpacking them (and asking the caches first) is the
//! pipeline's (`pipeline::packages`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::apt::fetch::{FetchError, FetchItem, Fetcher};
use crate::apt::sources::{locate, package_url, AptSettings, SourcesError};
use crate::lock::{Lock, LockedPackage};
use crate::oci::{Digest, Platform};
use crate::recipe::{AptSource, AptSpec};

#[derive(Debug, thiserror::Error)]
pub enum DebsError {
    #[error("the lockfile {path} has no packages for {platform}; run `stele lock` again")]
    LockMissingPlatform { path: PathBuf, platform: Platform },
    #[error("the lockfile {path} names source {index}, but the recipe has {count} sources; run `stele lock` again")]
    LockBadSource {
        path: PathBuf,
        index: usize,
        count: usize,
    },
    #[error(transparent)]
    Sources(#[from] SourcesError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A lock checked against the recipe it is used with: it has packages
/// for every platform, and every package names one of the recipe's
/// sources. Everything after this reads the lock without failing.
#[derive(Clone, Debug)]
pub(crate) struct CheckedLock {
    pub lock: Lock,
    /// The recipe's sources the packages' indexes refer to.
    pub sources: Vec<AptSource>,
    /// The recipe's platforms' packages, by platform, sorted by name.
    pub per_platform: BTreeMap<String, Vec<LockedPackage>>,
}

impl CheckedLock {
    pub fn check(
        lock: Lock,
        path: &Path,
        apt: &AptSpec,
        platforms: &[Platform],
    ) -> Result<CheckedLock, DebsError> {
        let mut per_platform = BTreeMap::new();
        for platform in platforms {
            let packages = lock
                .platforms
                .get(&platform.to_string())
                .map(|p| p.packages.clone())
                .ok_or_else(|| DebsError::LockMissingPlatform {
                    path: path.into(),
                    platform: platform.clone(),
                })?;
            if let Some(p) = packages.iter().find(|p| p.source >= apt.sources.len()) {
                return Err(DebsError::LockBadSource {
                    path: path.into(),
                    index: p.source,
                    count: apt.sources.len(),
                });
            }
            per_platform.insert(platform.to_string(), packages);
        }
        Ok(CheckedLock {
            lock,
            sources: apt.sources.clone(),
            per_platform,
        })
    }

    /// The distinct packages of the checked platforms, by sha256.
    pub(crate) fn wanted(&self) -> BTreeMap<Digest, &LockedPackage> {
        let mut wanted = BTreeMap::new();
        for p in self.per_platform.values().flatten() {
            wanted.entry(p.sha256.clone()).or_insert(p);
        }
        wanted
    }
}

/// A download's progress: what must be downloaded (before), each .deb
/// as it arrives verified, and the whole (after).
#[derive(Clone, Copy, Debug)]
pub enum Download {
    Starting { packages: usize, bytes: u64 },
    Fetched { bytes: u64 },
    Done { packages: usize, bytes: u64 },
}

/// Called from the download threads.
pub(crate) type DownloadProgress<'a> = &'a (dyn Fn(Download) + Sync);

/// How a package is named in messages.
pub(crate) fn package_label(p: &LockedPackage) -> String {
    format!("{} {} ({})", p.name, p.version, p.architecture)
}

/// Downloads (or finds in the cache) every locked .deb, verified against
/// the lock. Returns the cache path of each by sha256.
pub(crate) fn fetch_locked(
    lock: &CheckedLock,
    fetcher: &Fetcher,
    settings: &AptSettings,
    progress: DownloadProgress,
) -> Result<BTreeMap<Digest, PathBuf>, DebsError> {
    let wanted = lock.wanted();
    fetch_missing(
        &lock.sources,
        wanted.values().copied(),
        fetcher,
        settings,
        progress,
    )?;
    Ok(wanted
        .keys()
        .map(|d| (d.clone(), fetcher.cache().path(d)))
        .collect())
}

/// Downloads those of `packages` the cache does not hold yet.
pub(crate) fn fetch_missing<'a>(
    sources: &[AptSource],
    packages: impl Iterator<Item = &'a LockedPackage>,
    fetcher: &Fetcher,
    settings: &AptSettings,
    progress: DownloadProgress,
) -> Result<(), DebsError> {
    let missing: Vec<&LockedPackage> = packages
        .filter(|p| !fetcher.cache().contains(&p.sha256))
        .collect();
    let (count, total) = (missing.len(), missing.iter().map(|p| p.size).sum());
    // Mirrors are only looked up when something must be downloaded, so a
    // warm cache (or a vendored folder) builds without apt configuration.
    let mut urls: BTreeMap<usize, String> = BTreeMap::new();
    if !missing.is_empty() && !fetcher.offline() {
        for p in &missing {
            if let std::collections::btree_map::Entry::Vacant(e) = urls.entry(p.source) {
                e.insert(locate(&sources[p.source], settings)?.url);
            }
        }
    }
    let items: Vec<FetchItem> = missing
        .iter()
        .map(|p| FetchItem {
            url: urls
                .get(&p.source)
                .map(|u| package_url(u, p))
                .unwrap_or_else(|| p.path.clone()),
            sha256: p.sha256.clone(),
            size: p.size,
            label: package_label(p),
        })
        .collect();
    if !missing.is_empty() {
        progress(Download::Starting {
            packages: count,
            bytes: total,
        });
    }
    fetcher.fetch_all_with(&items, settings.jobs, &|item| {
        progress(Download::Fetched { bytes: item.size })
    })?;
    if !missing.is_empty() {
        progress(Download::Done {
            packages: count,
            bytes: total,
        });
    }
    Ok(())
}

/// Copies every locked .deb into `dir` as `<name>_<version>_<arch>.deb`.
pub fn vendor(
    lock: &Lock,
    files: &BTreeMap<Digest, PathBuf>,
    dir: &Path,
) -> Result<usize, DebsError> {
    std::fs::create_dir_all(dir).map_err(|e| DebsError::Write {
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
            let Some(src) = files.get(&p.sha256) else {
                continue;
            };
            copy_fresh(src, dir, &dest)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Copies `src` to `dest` as a new file (temp, fsync, rename) whose mode
/// the umask decides: `fs::copy` would copy the cache file's mode, and a
/// cache filled under `umask 077` would make the vendor folder unreadable.
fn copy_fresh(src: &Path, dir: &Path, dest: &Path) -> Result<(), DebsError> {
    let write_err = |source| DebsError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let mut from = std::fs::File::open(src).map_err(|source| DebsError::Read {
        path: src.to_path_buf(),
        source,
    })?;
    let mut temp = crate::store::temp_file_in(dir, ".stele-tmp-").map_err(write_err)?;
    std::io::copy(&mut from, &mut temp).map_err(write_err)?;
    temp.as_file().sync_all().map_err(write_err)?;
    temp.persist(dest).map_err(|e| write_err(e.error))?;
    Ok(())
}

pub(crate) fn vendor_name(p: &LockedPackage) -> String {
    // dpkg's file naming drops the epoch's colon, which is not portable.
    let version = p.version.replace(':', "%3a");
    format!("{}_{}_{}.deb", p.name, version, p.architecture)
}

/// Imports .debs from a vendored folder into the cache, each verified
/// against the lock (a file with the right name but other bytes is refused).
pub(crate) fn import_vendored(
    lock: &Lock,
    dir: &Path,
    fetcher: &Fetcher,
) -> Result<usize, DebsError> {
    let mut n = 0;
    for platform in lock.platforms.values() {
        for p in &platform.packages {
            let src = dir.join(vendor_name(p));
            if fetcher.cache().contains(&p.sha256) || !src.is_file() {
                continue;
            }
            let file = std::fs::File::open(&src).map_err(|e| DebsError::Read {
                path: src.clone(),
                source: e,
            })?;
            fetcher
                .cache()
                .put_verified(std::io::BufReader::new(file), &p.sha256, p.size)
                .map_err(|e| DebsError::Fetch(FetchError::Store(e)))?;
            n += 1;
        }
    }
    Ok(n)
}
