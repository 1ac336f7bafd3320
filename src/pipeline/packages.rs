//! The locked packages, unpacked: each from the caches when one has it
//! (`cache::Chain`: the local folder, then each `--cache-from`), else its
//! .deb fetched (`apt::debs`) and unpacked into the local folder.

use std::collections::BTreeMap;

use super::resolve::{download_event, ResolveError};
use super::{Event, Progress};
use crate::apt::debs::{fetch_missing, package_label, CheckedLock};
use crate::apt::fetch::Fetcher;
use crate::apt::sources::AptSettings;
use crate::cache::{Chain, Origin};
use crate::dpkg::unpack::UnpackedDeb;
use crate::lock::LockedPackage;
use crate::oci::Digest;

/// The locked packages, unpacked, and how many of them had been unpacked
/// by an earlier build.
pub(crate) struct UnpackedPackages {
    pub debs: BTreeMap<Digest, UnpackedDeb>,
    pub reused: usize,
    /// Taken unpacked from a remote cache: neither fetched nor unpacked.
    pub remote: usize,
    /// `name version (arch)` of each package unpacked by this call, in
    /// lock order: what `-v` shows as the cache's misses.
    pub unpacked_now: Vec<String>,
}

/// Every locked .deb, unpacked. A package a cache has is taken from there
/// and its .deb is neither fetched nor read; the others are fetched if
/// missing and unpacked into the local folder, `jobs` at a time.
pub(crate) fn unpack_locked(
    lock: &CheckedLock,
    fetcher: &Fetcher,
    caches: &Chain,
    settings: &AptSettings,
    jobs: usize,
    progress: Progress,
) -> Result<UnpackedPackages, ResolveError> {
    let wanted = lock.wanted();
    let listed: Vec<(&Digest, u64)> = wanted.iter().map(|(d, p)| (d, p.size)).collect();
    // Remote lookups are downloads, not CPU work: as many at once as
    // .deb downloads.
    let found = caches.packs(&listed, jobs, settings.jobs.max(jobs));
    let mut debs = BTreeMap::new();
    let (mut reused, mut remote) = (0, 0);
    let mut todo: Vec<&LockedPackage> = Vec::new();
    for ((digest, p), found) in wanted.iter().zip(found) {
        match found {
            Some((u, origin)) => {
                match origin {
                    Origin::Local => reused += 1,
                    Origin::Remote => remote += 1,
                }
                debs.insert((*digest).clone(), u);
            }
            None => todo.push(p),
        }
    }
    fetch_missing(
        &lock.sources,
        todo.iter().copied(),
        fetcher,
        settings,
        &|d| progress(download_event(d)),
    )?;
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
        remote,
        unpacked_now,
    })
}
