//! The locked packages, unpacked: each from the local folder when an
//! earlier build unpacked it, else its .deb found along the routes (the
//! local folder and a vendored folder, each `--cache-from` registry, the
//! source's mirror, its snapshot archive at the lock's time), checked
//! against the lock, and unpacked into the local folder.
//!
//! A registry is asked before the mirror: it is the team's own store,
//! asked within the cache's short budget, and every .deb from it is
//! checked against the lock like any other, so a fleet of runners spares
//! the public mirror and keeps building when the mirror moves on.

use std::collections::BTreeMap;
use std::path::Path;

use super::resolve::{download_event, ResolveError};
use super::{Event, Progress};
use crate::apt::debs::{
    fetch_from_archives, package_label, vendor_name, CheckedLock, DebsError, Download,
    DownloadProgress, Looked, MissingDeb,
};
use crate::apt::fetch::Fetcher;
use crate::apt::sources::AptSettings;
use crate::cache::lookup::DebQuery;
use crate::cache::Chain;
use crate::dpkg::unpack::UnpackedDeb;
use crate::lock::LockedPackage;
use crate::oci::Digest;

/// The locked packages, unpacked, and how many of them had been unpacked
/// by an earlier build.
pub(crate) struct UnpackedPackages {
    pub debs: BTreeMap<Digest, UnpackedDeb>,
    pub reused: usize,
    /// `name version (arch)` of each package unpacked by this call, in
    /// lock order: what `-v` shows as the cache's misses.
    pub unpacked_now: Vec<String>,
}

/// Where packages come from besides the caches: the apt settings
/// (mirrors, snapshot names, downloads at once) and a vendored folder.
pub(crate) struct Routes<'a> {
    pub apt: &'a AptSettings,
    pub vendor: Option<&'a Path>,
}

/// Every locked .deb, unpacked. A package the local folder unpacked
/// before is taken from there and its .deb is neither fetched nor read;
/// the others are fetched if missing (`fetch_debs`) and unpacked into
/// the local folder, `jobs` at a time.
pub(crate) fn unpack_locked(
    lock: &CheckedLock,
    fetcher: &Fetcher,
    caches: &Chain,
    routes: &Routes,
    jobs: usize,
    progress: Progress,
) -> Result<UnpackedPackages, ResolveError> {
    let wanted = lock.wanted();
    let listed: Vec<(&Digest, u64)> = wanted.iter().map(|(d, p)| (d, p.size)).collect();
    let found = caches.packs(&listed, jobs);
    let mut debs = BTreeMap::new();
    let mut todo: Vec<&LockedPackage> = Vec::new();
    for ((digest, p), found) in wanted.iter().zip(found) {
        match found {
            Some(u) => {
                debs.insert((*digest).clone(), u);
            }
            None => todo.push(p),
        }
    }
    let reused = debs.len();
    let routes = fetch_debs(lock, &todo, fetcher, caches, routes, &|d| {
        progress(download_event(d))
    })?;
    // Said when the downloads end, before the unpacking's own lines.
    if !routes.is_empty() {
        progress(Event::DebRoutes { routes: &routes });
    }
    if !todo.is_empty() {
        progress(Event::Unpacking {
            packages: todo.len(),
            bytes: todo.iter().map(|p| p.size).sum(),
        });
    }
    let done = crate::parallel::map(
        &todo,
        jobs,
        |p| p.size,
        |p| {
            let unpacked = caches.unpack(&package_label(p), &p.sha256, p.size);
            if unpacked.is_ok() {
                progress(Event::UnpackedOne { bytes: p.size });
            }
            unpacked
        },
    )?;
    let unpacked_now = todo.iter().map(|p| package_label(p)).collect();
    for (p, u) in todo.iter().zip(done) {
        debs.insert(p.sha256.clone(), u);
    }
    Ok(UnpackedPackages {
        debs,
        reused,
        unpacked_now,
    })
}

/// Makes sure the local folder holds the .deb of each of `packages`:
/// from a `--cache-from` registry, else the source's mirror, else its
/// snapshot archive, each checked against the lock as it arrives. Returns
/// how many each route supplied; a .deb found nowhere is
/// `DebsError::Unavailable`, naming every place looked.
pub(crate) fn fetch_debs(
    lock: &CheckedLock,
    packages: &[&LockedPackage],
    fetcher: &Fetcher,
    caches: &Chain,
    routes: &Routes,
    progress: DownloadProgress,
) -> Result<Vec<(String, usize)>, ResolveError> {
    let cache = fetcher.cache();
    let missing: Vec<&LockedPackage> = packages
        .iter()
        .copied()
        .filter(|p| !cache.contains(&p.sha256))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    if !fetcher.offline() {
        progress(Download::Starting {
            packages: missing.len(),
            bytes: missing.iter().map(|p| p.size).sum(),
        });
    }
    let labels: Vec<String> = missing.iter().map(|p| package_label(p)).collect();
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut count = |route: String| match counts.iter_mut().find(|(r, _)| *r == route) {
        Some((_, n)) => *n += 1,
        None => counts.push((route, 1)),
    };
    if !fetcher.offline() {
        let queries: Vec<DebQuery> = missing
            .iter()
            .zip(&labels)
            .map(|(p, label)| DebQuery {
                sha256: &p.sha256,
                size: p.size,
                label,
            })
            .collect();
        let from = caches.debs(&queries, cache, routes.apt.jobs);
        for (p, place) in missing.iter().zip(from) {
            if let Some(place) = place {
                progress(Download::Fetched { bytes: p.size });
                count(place);
            }
        }
    }
    let archives = fetch_from_archives(lock, &missing, fetcher, routes.apt, progress)?;
    if archives.from_mirror > 0 {
        counts.push(("the mirror".into(), archives.from_mirror));
    }
    if archives.from_snapshot > 0 {
        counts.push(("the snapshot archive".into(), archives.from_snapshot));
    }
    if !archives.missing.is_empty() {
        let missing = archives
            .missing
            .into_iter()
            .map(|(p, looked)| unavailable(lock, p, caches, fetcher, routes, looked))
            .collect();
        return Err(DebsError::Unavailable { missing }.into());
    }
    let fetched: Vec<&&LockedPackage> = missing.iter().collect();
    progress(Download::Done {
        packages: fetched.len(),
        bytes: fetched.iter().map(|p| p.size).sum(),
    });
    Ok(counts)
}

/// A package no route had, with every place looked: the local folder and
/// the vendored one (which were looked in first), the registries, then
/// what the archive routes said (`archives`).
fn unavailable(
    lock: &CheckedLock,
    p: &LockedPackage,
    caches: &Chain,
    fetcher: &Fetcher,
    routes: &Routes,
    archives: Vec<Looked>,
) -> MissingDeb {
    let mut looked = vec![Looked {
        place: format!("the local cache {}", fetcher.cache().root().display()),
        found: "not there".into(),
    }];
    if let Some(dir) = routes.vendor {
        let file = dir.join(vendor_name(p));
        looked.push(Looked {
            place: format!("vendor folder {}", dir.display()),
            found: if file.is_file() {
                format!("{} is not the locked .deb", file.display())
            } else {
                format!("no {}", vendor_name(p))
            },
        });
    }
    if !fetcher.offline() {
        looked.extend(
            caches
                .lookup_places()
                .into_iter()
                .map(|(place, down)| Looked {
                    place,
                    found: if down {
                        "down in this run (see the warning)".into()
                    } else {
                        "not there".into()
                    },
                }),
        );
    }
    looked.extend(archives);
    MissingDeb {
        label: package_label(p),
        name: p.name.clone(),
        platforms: lock
            .per_platform
            .iter()
            .filter(|(_, packages)| packages.iter().any(|q| q.sha256 == p.sha256))
            .map(|(platform, _)| platform.clone())
            .collect(),
        looked,
    }
}
