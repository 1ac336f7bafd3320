//! The .debs a lock names: downloaded from the archives (a source's
//! mirror, then its snapshot archive at the lock's time) or imported from
//! a vendored folder into the content-addressed cache, each verified
//! against its locked sha256 and size. Every route leads to the same
//! bytes, so none changes the image. Asking the caches first (a registry
//! that keeps .debs) and unpacking is the pipeline's
//! (`pipeline::packages`), which also reports .debs found nowhere
//! (`DebsError::Unavailable`, with every place looked).

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
    #[error("{}", unavailable(.missing))]
    Unavailable { missing: Vec<MissingDeb> },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The message for .debs found nowhere: each package (the first few in
/// full) with every place looked, then the ways out, the one that
/// changes the image last and said so.
fn unavailable(missing: &[MissingDeb]) -> String {
    const SHOWN: usize = 3;
    let mut text = String::new();
    for m in missing.iter().take(SHOWN) {
        text.push_str(&format!(
            "{}, locked for {}, is in none of the places stele looked:\n",
            m.label,
            m.platforms.join(", ")
        ));
        for l in &m.looked {
            text.push_str(&format!("  - {}: {}\n", l.place, l.found));
        }
    }
    if missing.len() > SHOWN {
        let rest: Vec<&str> = missing[SHOWN..].iter().map(|m| m.label.as_str()).collect();
        text.push_str(&format!(
            "and {} more, looked for in the same places: {}\n",
            rest.len(),
            rest.join(", ")
        ));
    }
    let names: std::collections::BTreeSet<&str> = missing.iter().map(|m| m.name.as_str()).collect();
    let names: Vec<&str> = names.into_iter().collect();
    text.push_str(&format!(
        "Ways out that build the same image: add `snapshot = \"URL\"` to the source (a snapshot archive keeps every version; the lock records when its indexes were made), \
build with `--cache-from REF` of a registry that `stele vendor RECIPE --to REF` or `--cache-to REF` filled while the mirror had them, \
or with `--vendor DIR` of a `stele vendor` folder, or point the source at a mirror that still carries them. \
`stele lock --update {}` instead locks what the mirror has now: that changes the image.",
        names.join(" ")
    ));
    text
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
/// as it arrives verified (from whichever route), and the whole (after).
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

/// One place a .deb was looked for, and what was found there: what a
/// failure to find it lists, so the user sees every route tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Looked {
    pub place: String,
    pub found: String,
}

/// A locked .deb found nowhere: the package, the platforms it is locked
/// for, and every place looked.
#[derive(Clone, Debug)]
pub struct MissingDeb {
    pub label: String,
    pub name: String,
    pub platforms: Vec<String>,
    pub looked: Vec<Looked>,
}

/// What the archive routes (mirror, then snapshot) did for the .debs they
/// were given: how many each supplied, and those neither had.
pub(crate) struct ArchiveFetch<'a> {
    pub from_mirror: usize,
    pub from_snapshot: usize,
    pub missing: Vec<(&'a LockedPackage, Vec<Looked>)>,
}

/// What a failed download says, short: the route is named beside it.
fn found(e: &FetchError) -> String {
    match e {
        FetchError::NotFound { .. } => "not there (HTTP 404)".to_string(),
        other => other.to_string(),
    }
}

/// A failure that is this machine's, not the route's: no other route
/// would do better, so it ends the fetch.
fn local_failure(e: &FetchError) -> bool {
    matches!(e, FetchError::Store(_))
}

/// Downloads each of `items` into the cache with `fetcher`, `jobs` at a
/// time, telling `progress` of each that arrives; the outcome of each, in
/// order. A failure of the cache itself is the error.
fn fetch_each(
    fetcher: &Fetcher,
    items: &[FetchItem],
    jobs: usize,
    progress: DownloadProgress,
) -> Result<Vec<Result<(), FetchError>>, DebsError> {
    let mut outcomes = crate::parallel::map(
        items,
        jobs,
        |_| 0,
        |item| {
            let outcome = fetcher.fetch_item(item).map(|_| {
                progress(Download::Fetched { bytes: item.size });
            });
            Ok::<_, std::convert::Infallible>(outcome)
        },
    )
    .unwrap_or_else(|never| match never {});
    if let Some(i) = outcomes
        .iter()
        .position(|o| o.as_ref().is_err_and(local_failure))
    {
        if let Err(e) = outcomes.swap_remove(i) {
            return Err(DebsError::Fetch(e));
        }
    }
    Ok(outcomes)
}

/// Fetches those of `packages` the cache lacks from their sources'
/// mirrors, then what a mirror no longer has from the source's snapshot
/// archive at the time of the indexes the lock read. Every .deb is
/// checked against its locked sha256 and size as it arrives, so which
/// route supplied it never changes the image. With an offline fetcher
/// neither is asked. What neither had is returned with where it was
/// looked for.
pub(crate) fn fetch_from_archives<'a>(
    lock: &CheckedLock,
    packages: &[&'a LockedPackage],
    fetcher: &Fetcher,
    settings: &AptSettings,
    progress: DownloadProgress,
) -> Result<ArchiveFetch<'a>, DebsError> {
    let mut missing: Vec<(&LockedPackage, Vec<Looked>)> = packages
        .iter()
        .filter(|p| !fetcher.cache().contains(&p.sha256))
        .map(|p| (*p, Vec::new()))
        .collect();
    let mut done = ArchiveFetch {
        from_mirror: 0,
        from_snapshot: 0,
        missing: Vec::new(),
    };
    if missing.is_empty() {
        return Ok(done);
    }
    if fetcher.offline() {
        for (_, looked) in &mut missing {
            looked.push(Looked {
                place: "registries, mirrors and snapshot archives".into(),
                found: "not asked: --offline forbids the network, so what is not in the cache must come from --vendor DIR (`stele vendor` writes one while online)".into(),
            });
        }
        done.missing = missing;
        return Ok(done);
    }
    // The mirrors: located only now that something must be downloaded,
    // so a warm cache (or a vendored folder) builds without apt
    // configuration.
    let mut mirrors: BTreeMap<usize, Result<String, String>> = BTreeMap::new();
    for (p, _) in &missing {
        mirrors.entry(p.source).or_insert_with(|| {
            locate(&lock.sources[p.source], settings)
                .map(|l| l.url)
                .map_err(|e| e.to_string())
        });
    }
    let mut items = Vec::new();
    let mut routed = Vec::new();
    for (p, looked) in &mut missing {
        match &mirrors[&p.source] {
            Ok(url) => items.push(item(p, package_url(url, p))),
            Err(why) => looked.push(Looked {
                place: format!("the mirror of source {}", lock.sources[p.source].loc),
                found: why.clone(),
            }),
        }
        routed.push(mirrors[&p.source].is_ok());
    }
    let route = Route {
        name: "mirror",
        items: &items,
        routed: &routed,
        jobs: settings.jobs,
    };
    done.from_mirror = route.fetch(fetcher, &mut missing, progress)?;
    missing.retain(|(p, _)| !fetcher.cache().contains(&p.sha256));

    // The snapshot archives, for what the mirrors lack: each package at
    // the time its source's indexes were read (or its own, for one kept
    // from older indexes), one root per source and time.
    let mut roots: BTreeMap<(usize, Option<u64>), Result<String, String>> = BTreeMap::new();
    let mut keys = Vec::new();
    for (p, _) in &missing {
        let source = &lock.sources[p.source];
        let locked = &lock.lock.sources[p.source];
        let time = super::snapshot::package_time(p, locked, fetcher.cache());
        let key = (p.source, time.map(|(t, _)| t));
        keys.push(key);
        if roots.contains_key(&key) {
            continue;
        }
        let root = match (super::snapshot::base_url(source, settings), time) {
            (None, _) => Err(super::snapshot::why_not(source)),
            (Some(_), None) => Err(format!(
                "the lock records no date for source {} and the cache has not its InRelease {}; run `stele lock` once to record it",
                source.loc, locked.inrelease_sha256
            )),
            (Some(base), Some((time, inrelease))) => {
                super::snapshot::find_root(fetcher, &base, &source.suite, time, inrelease)
                    .map_err(|e| format!("{base}: {}", found(&e)))
            }
        };
        roots.insert(key, root);
    }
    let mut items = Vec::new();
    let mut routed = Vec::new();
    for ((p, looked), key) in missing.iter_mut().zip(&keys) {
        match &roots[key] {
            Ok(root) => items.push(item(p, package_url(root, p))),
            Err(why) => looked.push(Looked {
                place: "snapshot archive".into(),
                found: why.clone(),
            }),
        }
        routed.push(roots[key].is_ok());
    }
    let route = Route {
        name: "snapshot",
        items: &items,
        routed: &routed,
        jobs: settings.jobs.min(super::snapshot::JOBS),
    };
    done.from_snapshot = route.fetch(fetcher, &mut missing, progress)?;
    missing.retain(|(p, _)| !fetcher.cache().contains(&p.sha256));
    done.missing = missing;
    Ok(done)
}

/// One route's downloads: an item for each package of `missing` that
/// `routed` marks, in order.
struct Route<'a> {
    name: &'static str,
    items: &'a [FetchItem],
    routed: &'a [bool],
    jobs: usize,
}

impl Route<'_> {
    /// Downloads the items; each that fails says where and why in its
    /// package's places looked. How many arrived.
    fn fetch(
        &self,
        fetcher: &Fetcher,
        missing: &mut [(&LockedPackage, Vec<Looked>)],
        progress: DownloadProgress,
    ) -> Result<usize, DebsError> {
        let outcomes = fetch_each(fetcher, self.items, self.jobs, progress)?;
        let mut outcomes = self.items.iter().zip(outcomes);
        let mut arrived = 0;
        for ((_, looked), _) in missing.iter_mut().zip(self.routed).filter(|(_, r)| **r) {
            let (item, outcome) = outcomes.next().expect("one outcome per routed package");
            match outcome {
                Ok(()) => arrived += 1,
                Err(e) => looked.push(Looked {
                    place: format!("{} {}", self.name, item.url),
                    found: found(&e),
                }),
            }
        }
        Ok(arrived)
    }
}

fn item(p: &LockedPackage, url: String) -> FetchItem {
    FetchItem {
        url,
        sha256: p.sha256.clone(),
        size: p.size,
        label: package_label(p),
    }
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
