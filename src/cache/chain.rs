//! The caches of one run, chained: the local folder first, then each
//! `--cache-from` repository in the order given. Layers and unpacked
//! packages come from the local folder only (what stele wrote itself);
//! the repositories supply .debs, each checked against the lock, which
//! then land in the local folder. After a successful build, the locked
//! .debs go to each `--cache-to`.
//!
//! Every answer was checked by whoever gave it (`lookup`); the chain
//! turns trouble into warnings (one per poisoned entry, one per place
//! that is down, which is then skipped for the rest of the run, for
//! lookups and pushes alike), and counts what the registries did for
//! `RemoteReport`. The pure build and the package step ask the chain,
//! never a registry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::local::Local;
use super::lookup::{ArchiveCheck, DebQuery, Entry, EntryStore, LayerQuery, Stored, Trouble};
use crate::dpkg::unpack::{UnpackError, UnpackedDeb};
use crate::fstree::FsTree;
use crate::layer::{layer_key, Encoding};
use crate::oci::{Digest, LayerBlob};
use crate::store::{BlobStore, StoreError};

/// What the remote caches did in one run, counted as it happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemoteReport {
    /// Locked .debs taken from a remote cache (checked against the lock)
    /// instead of a mirror.
    pub deb_hits: u64,
    /// Locked .debs no remote cache had.
    pub deb_misses: u64,
    /// Application archives (wheels, npm tarballs) taken from a remote
    /// cache (checked against their lock), and those none had.
    pub archive_hits: u64,
    pub archive_misses: u64,
    /// Content bytes fetched from remote caches.
    pub bytes_downloaded: u64,
    /// Entries pushed to `--cache-to`, and those already there.
    pub entries_pushed: u64,
    pub entries_present: u64,
    pub bytes_uploaded: u64,
    /// Unreachable registries and entries that did not check out, in the
    /// order met.
    pub warnings: Vec<String>,
}

/// What a remote place is in a run for: lookups (`--cache-from`), fills
/// (`--cache-to`), or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub lookup: bool,
    pub fill: bool,
}

impl Roles {
    pub const FROM: Roles = Roles {
        lookup: true,
        fill: false,
    };
    pub const TO: Roles = Roles {
        lookup: false,
        fill: true,
    };
}

/// A remote place, its roles, and whether it failed in this run (then it
/// is asked nothing more, whatever the role).
struct Remote {
    store: Box<dyn EntryStore>,
    roles: Roles,
    down: AtomicBool,
}

/// The chain of one run. Shared by the threads that unpack packages and
/// write layers.
pub struct Chain {
    local: Local,
    /// Looked up in this order, after `local`.
    remotes: Vec<Remote>,
    /// The builder identity layer keys name (`layer::layer_key`).
    builder: String,
    report: Mutex<RemoteReport>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remotes: Vec<(String, Roles)> = self
            .remotes
            .iter()
            .map(|r| (r.store.name(), r.roles))
            .collect();
        f.debug_struct("Chain")
            .field("local", &self.local.name())
            .field("remotes", &remotes)
            .finish()
    }
}

impl Chain {
    /// `local`, then the `remotes` looked up in (`Roles::lookup`) in the
    /// order given; fills go to `local` and the remotes that take them.
    /// `builder` is the identity layer keys name.
    pub fn new(local: Local, remotes: Vec<(Box<dyn EntryStore>, Roles)>, builder: &str) -> Chain {
        Chain {
            local,
            remotes: remotes
                .into_iter()
                .map(|(store, roles)| Remote {
                    store,
                    roles,
                    down: AtomicBool::new(false),
                })
                .collect(),
            builder: builder.to_string(),
            report: Mutex::new(RemoteReport::default()),
        }
    }

    /// Whether any remote cache takes part (and `report` means anything).
    pub fn has_remote(&self) -> bool {
        !self.remotes.is_empty()
    }

    /// What the remote caches did so far.
    pub fn report(&self) -> RemoteReport {
        let mut report = self.counts().clone();
        report.bytes_downloaded = self.remotes.iter().map(|r| r.store.downloaded()).sum();
        report
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, RemoteReport> {
        // A poisoned lock only means a count was lost.
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Warns about `trouble` from `remote`; a remote that is down is
    /// marked so, and warned about the first time only.
    fn trouble(&self, remote: &Remote, trouble: Trouble) {
        let warning = match trouble {
            Trouble::Entry(message) => format!("{}: {message}", remote.store.name()),
            Trouble::Down(message) => {
                if remote.down.swap(true, Ordering::Relaxed) {
                    return;
                }
                format!("{}: {message}; going on without it", remote.store.name())
            }
        };
        self.counts().warnings.push(warning);
    }

    /// Whether any remote is asked at all.
    fn looks_up(&self) -> bool {
        self.remotes.iter().any(|r| r.roles.lookup)
    }

    /// The remotes to ask, in order, that have not failed.
    fn lookups(&self) -> impl Iterator<Item = &Remote> {
        self.remotes
            .iter()
            .filter(|r| r.roles.lookup && !r.down.load(Ordering::Relaxed))
    }

    /// The key of the layer `tree` makes with `encoding`, as every cache
    /// of this chain finds it.
    pub fn key(&self, tree: &FsTree, encoding: Encoding) -> Digest {
        layer_key(tree, encoding, &self.builder)
    }

    /// The layer `query` names, its blob in `out`, from the local folder
    /// (when the layer cache is on). No registry is asked: see
    /// `cache::lookup` for why a layer from one cannot be proven.
    pub fn layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Option<LayerBlob> {
        self.local.layer(query, out).ok().flatten()
    }

    /// Where a layer this build writes should be written too, in the
    /// same pass (`layer::write_layer_to`), to be recorded by `written`.
    pub fn layer_store(&self) -> Option<&BlobStore> {
        self.local.layers.as_ref().map(|l| l.store())
    }

    /// Records the layer this build wrote for `key`, its blob already in
    /// `layer_store()`.
    pub fn written(&self, key: &Digest, layer: &LayerBlob) -> Result<(), StoreError> {
        match &self.local.layers {
            Some(layers) => layers.record(key, layer),
            None => Ok(()),
        }
    }

    /// Each of `debs` (sha256 and size) as the local folder unpacked it
    /// before, hashing each pack whole, `jobs` at a time, largest first.
    /// `None` for those it has not, in the order of `debs`.
    pub fn packs(&self, debs: &[(&Digest, u64)], jobs: usize) -> Vec<Option<UnpackedDeb>> {
        crate::parallel::map(
            debs,
            jobs,
            |(_, size)| *size,
            |(deb, _)| Ok::<_, std::convert::Infallible>(self.local.pack(deb).ok().flatten()),
        )
        .unwrap_or_else(|never| match never {})
    }

    /// Each of `debs` that `into` lacks, from the first `--cache-from`
    /// that has it, `transfers` at a time: stored in `into` only once it
    /// is the locked bytes. For each, in order, the name of the place it
    /// came from, or `None` (already there, or no remote has it).
    pub fn debs(
        &self,
        debs: &[DebQuery<'_>],
        into: &BlobStore,
        transfers: usize,
    ) -> Vec<Option<String>> {
        if !self.remotes.iter().any(|r| r.roles.lookup) {
            return vec![None; debs.len()];
        }
        crate::parallel::map(
            debs,
            transfers,
            |_| 0,
            |query| {
                if into.contains(query.sha256) {
                    return Ok::<_, std::convert::Infallible>(None);
                }
                Ok(self.remote_deb(query, into))
            },
        )
        .unwrap_or_else(|never| match never {})
    }

    /// Every `--cache-from` by name, and whether it is down in this run:
    /// where a .deb was looked for, for the error that lists routes.
    pub fn lookup_places(&self) -> Vec<(String, bool)> {
        self.remotes
            .iter()
            .filter(|r| r.roles.lookup)
            .map(|r| (r.store.name(), r.down.load(Ordering::Relaxed)))
            .collect()
    }

    fn remote_deb(&self, query: &DebQuery<'_>, into: &BlobStore) -> Option<String> {
        for remote in self.lookups() {
            match remote.store.deb(query, into) {
                Ok(Some(())) => {
                    self.counts().deb_hits += 1;
                    return Some(remote.store.name());
                }
                Ok(None) => {}
                Err(trouble) => self.trouble(remote, trouble),
            }
        }
        self.counts().deb_misses += 1;
        None
    }

    /// The archive the lock's `key` names from the first `--cache-from`
    /// that has one passing `check`, downloaded into the local folder's
    /// blobs: its sha256 and size (the local folder is the caller's to
    /// look in first).
    pub fn archive(
        &self,
        key: &Digest,
        into: &BlobStore,
        check: ArchiveCheck,
    ) -> Option<(Digest, u64)> {
        if !self.looks_up() {
            return None;
        }
        for remote in self.lookups() {
            match remote.store.archive(key, into, check) {
                Ok(Some(found)) => {
                    self.counts().archive_hits += 1;
                    return Some(found);
                }
                Ok(None) => {}
                Err(trouble) => self.trouble(remote, trouble),
            }
        }
        self.counts().archive_misses += 1;
        None
    }

    /// Unpacks the .deb `deb` (in the local folder, `size` bytes as the
    /// lock says) and records it there. `label` names it in errors.
    pub fn unpack(&self, label: &str, deb: &Digest, size: u64) -> Result<UnpackedDeb, UnpackError> {
        self.local.packs.unpack(label, deb, size)
    }

    /// Stores `entries` in every `--cache-to`, `jobs` at a time; an entry
    /// there already costs one question. Failures are warnings (`report`).
    pub fn push(&self, entries: &[Entry<'_>], jobs: usize) {
        for remote in self.remotes.iter().filter(|r| r.roles.fill) {
            let _ = crate::parallel::map(
                entries,
                jobs,
                |e| e.size(),
                |entry| -> Result<(), std::convert::Infallible> {
                    if remote.down.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    match remote.store.put(entry) {
                        Ok(Stored::Present) => self.counts().entries_present += 1,
                        Ok(Stored::Sent { bytes }) => {
                            let mut counts = self.counts();
                            counts.entries_pushed += 1;
                            counts.bytes_uploaded += bytes;
                        }
                        Ok(Stored::NotKept) => {}
                        Err(trouble) => self.trouble(remote, trouble),
                    }
                    Ok(())
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;
    use crate::cache::lookup::Answer;
    use crate::cache::{Cache, Local};

    /// A place that answers every .deb lookup the same way and counts
    /// what it is asked: the chain's own rules, apart from any registry.
    struct Scripted {
        name: &'static str,
        /// `None`: a miss; `Some(Ok(()))`: the .deb (whose bytes it
        /// holds), stored as a registry hit stores it; `Some(Err(t))`: `t`.
        answer: Option<Result<(), Trouble>>,
        bytes: Vec<u8>,
        asked: AtomicUsize,
        puts: AtomicUsize,
        put: Result<Stored, Trouble>,
    }

    impl Scripted {
        fn new(name: &'static str, answer: Option<Result<(), Trouble>>) -> Arc<Scripted> {
            Arc::new(Scripted {
                name,
                answer,
                bytes: b"a .deb".to_vec(),
                asked: AtomicUsize::new(0),
                puts: AtomicUsize::new(0),
                put: Ok(Stored::Sent { bytes: 7 }),
            })
        }
    }

    impl EntryStore for Arc<Scripted> {
        fn name(&self) -> String {
            self.name.to_string()
        }

        fn deb(&self, query: &DebQuery<'_>, into: &BlobStore) -> Answer<()> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            match &self.answer {
                None => Ok(None),
                Some(Ok(())) => {
                    into.put_verified(&self.bytes[..], query.sha256, query.size)
                        .map_err(|e| Trouble::refused("deb-x", e))?;
                    Ok(Some(()))
                }
                Some(Err(trouble)) => Err(trouble.clone()),
            }
        }

        fn put(&self, _entry: &Entry<'_>) -> Result<Stored, Trouble> {
            self.puts.fetch_add(1, Ordering::Relaxed);
            self.put.clone()
        }
    }

    fn chain(dir: &std::path::Path, remotes: &[(&Arc<Scripted>, Roles)]) -> (Chain, Cache) {
        let cache = Cache::open(&dir.join("cache"), std::time::SystemTime::now()).unwrap();
        let local = Local::new(&cache, Some(cache.layers().unwrap()));
        let remotes = remotes
            .iter()
            .map(|(s, roles)| (Box::new((*s).clone()) as Box<dyn EntryStore>, *roles))
            .collect();
        (Chain::new(local, remotes, "test"), cache)
    }

    fn query(sha: &Digest) -> DebQuery<'_> {
        DebQuery {
            sha256: sha,
            size: 6,
            label: "hello 1.0 (amd64)",
        }
    }

    #[test]
    fn a_poisoned_deb_is_a_named_miss_and_the_next_cache_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let poisoned = Scripted::new(
            "remote cache a",
            Some(Err(Trouble::refused(
                "deb-v1-x",
                "its bytes are another .deb",
            ))),
        );
        let good = Scripted::new("remote cache b", Some(Ok(())));
        let (chain, cache) = chain(
            dir.path(),
            &[(&poisoned, Roles::FROM), (&good, Roles::FROM)],
        );
        let sha = Digest::of(b"a .deb");
        let from = chain.debs(&[query(&sha)], cache.blobs(), 1);
        assert_eq!(from, [Some("remote cache b".to_string())]);
        cache.blobs().verify(&sha, 6).unwrap();
        let report = chain.report();
        assert_eq!((report.deb_hits, report.deb_misses), (1, 0));
        assert_eq!(
            report.warnings,
            ["remote cache a: entry deb-v1-x does not check out and is not used: its bytes are another .deb"]
        );
        // Now in the local folder: asked again, no remote is.
        assert_eq!(chain.debs(&[query(&sha)], cache.blobs(), 1), [None]);
        assert_eq!(poisoned.asked.load(Ordering::Relaxed), 1);
        assert_eq!(good.asked.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_place_that_is_down_is_warned_about_once_and_asked_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let both = Roles {
            lookup: true,
            fill: true,
        };
        let down = Scripted::new(
            "remote cache a",
            Some(Err(Trouble::down("fetching a .deb", "connection refused"))),
        );
        let empty = Scripted::new("remote cache b", None);
        let to = Scripted::new("remote cache c", Some(Ok(())));
        let (chain, cache) = chain(
            dir.path(),
            &[(&down, both), (&empty, Roles::FROM), (&to, Roles::TO)],
        );
        let shas = [Digest::of(b"one"), Digest::of(b"two")];
        let queries: Vec<DebQuery> = shas.iter().map(query).collect();
        assert_eq!(chain.debs(&queries, cache.blobs(), 1), [None, None]);
        cache.blobs().put_bytes(b"one").unwrap();
        let entries: Vec<Entry> = queries
            .iter()
            .map(|deb| Entry::Deb {
                deb: *deb,
                from: cache.blobs(),
            })
            .collect();
        chain.push(&entries, 1);

        let report = chain.report();
        assert_eq!(
            report.warnings,
            ["remote cache a: fetching a .deb: connection refused; going on without it"]
        );
        assert_eq!((report.deb_hits, report.deb_misses), (0, 2));
        // Down for lookups and pushes alike; the others asked in their
        // roles only.
        assert_eq!(down.asked.load(Ordering::Relaxed), 1);
        assert_eq!(down.puts.load(Ordering::Relaxed), 0);
        assert_eq!(empty.asked.load(Ordering::Relaxed), 2);
        assert_eq!(empty.puts.load(Ordering::Relaxed), 0);
        assert_eq!(to.asked.load(Ordering::Relaxed), 0);
        assert_eq!(to.puts.load(Ordering::Relaxed), 2);
        assert_eq!((report.entries_pushed, report.bytes_uploaded), (2, 14));
    }

    #[test]
    fn layers_and_packs_come_from_the_local_folder_only() {
        use crate::layer::test_support::*;
        let dir = tempfile::tempdir().unwrap();
        let remote = Scripted::new("remote cache a", Some(Ok(())));
        let (chain, _cache) = chain(dir.path(), &[(&remote, Roles::FROM)]);
        let t = tree();
        let key = chain.key(&t, GZIP);
        let query = LayerQuery {
            key: &key,
            tree: &t,
            encoding: GZIP,
        };
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        assert_eq!(chain.layer(&query, &out), None);
        let blob = crate::layer::write_layer_to(&t, GZIP, &out, chain.layer_store(), None, &|_| {})
            .unwrap();
        chain.written(&key, &blob).unwrap();
        let again = BlobStore::open(dir.path().join("again")).unwrap();
        assert_eq!(chain.layer(&query, &again), Some(blob));
        assert!(chain.packs(&[(&Digest::of(b"deb"), 1)], 1)[0].is_none());
        assert_eq!(remote.asked.load(Ordering::Relaxed), 0);
    }
}
