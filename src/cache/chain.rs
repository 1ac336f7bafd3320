//! The caches of one run, chained: the local folder first, then each
//! `--cache-from` repository in the order given. A hit from a repository
//! is recorded in the local folder, so the next build is a warm local
//! one; after a successful build, its entries go to each `--cache-to`.
//!
//! Every answer was checked by whoever gave it (`lookup`); the chain
//! turns trouble into warnings (one per poisoned entry, one per place
//! that is down, which is then skipped for the rest of the run), and
//! counts what the registries did for `RemoteReport`. The pure build and
//! the package step ask the chain, never a registry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::local::Local;
use super::lookup::{ArchiveCheck, Entry, EntryStore, LayerQuery, Stored, Trouble};
use crate::dpkg::unpack::{UnpackError, UnpackedDeb};
use crate::fstree::FsTree;
use crate::layer::{layer_key, Encoding};
use crate::oci::{Digest, LayerBlob};
use crate::store::{BlobStore, StoreError};

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The local cache folder.
    Local,
    /// A `--cache-from` repository.
    Remote,
}

/// What the remote caches did in one run, counted as it happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemoteReport {
    /// Layers taken from a remote cache: neither compressed nor written.
    pub layer_hits: u64,
    pub layer_misses: u64,
    /// Packages taken unpacked from a remote cache: their .deb neither
    /// downloaded nor unpacked.
    pub package_hits: u64,
    pub package_misses: u64,
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

    /// The remotes to ask, in order, that have not failed.
    fn lookups(&self) -> impl Iterator<Item = &Remote> {
        self.remotes
            .iter()
            .filter(|r| r.roles.lookup && !r.down.load(Ordering::Relaxed))
    }

    fn looks_up(&self) -> bool {
        self.remotes.iter().any(|r| r.roles.lookup)
    }

    /// The key of the layer `tree` makes with `encoding`, as every cache
    /// of this chain finds it.
    pub fn key(&self, tree: &FsTree, encoding: Encoding) -> Digest {
        layer_key(tree, encoding, &self.builder)
    }

    /// Whether layers are looked up and recorded at all (not with
    /// `--no-layer-cache`).
    fn layers_on(&self) -> bool {
        self.local.layers.is_some()
    }

    /// The layer `query` names, its blob in `out`, from the first cache
    /// that has one that checks out. A remote hit is recorded locally.
    pub fn layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Option<(LayerBlob, Origin)> {
        if !self.layers_on() {
            return None;
        }
        if let Ok(Some(blob)) = self.local.layer(query, out) {
            return Some((blob, Origin::Local));
        }
        if !self.looks_up() {
            return None;
        }
        for remote in self.lookups() {
            match remote.store.layer(query, out) {
                Ok(Some(blob)) => {
                    // A record that cannot be written only costs the next
                    // build a lookup.
                    let _ = self.local.put(&Entry::Layer {
                        key: query.key,
                        layer: &blob,
                        profile: query.encoding.profile,
                        from: out,
                    });
                    self.counts().layer_hits += 1;
                    return Some((blob, Origin::Remote));
                }
                Ok(None) => {}
                Err(trouble) => self.trouble(remote, trouble),
            }
        }
        self.counts().layer_misses += 1;
        None
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

    /// Each of `debs` (sha256 and size) unpacked, from the first cache
    /// that has it checked: the local folder (hashing each pack whole,
    /// `jobs` at a time, largest first), then each `--cache-from`
    /// (`transfers` at a time), whose hits are recorded locally. `None`
    /// for those no cache has, in the order of `debs`.
    pub fn packs(
        &self,
        debs: &[(&Digest, u64)],
        jobs: usize,
        transfers: usize,
    ) -> Vec<Option<(UnpackedDeb, Origin)>> {
        let mut found: Vec<Option<(UnpackedDeb, Origin)>> = crate::parallel::map(
            debs,
            jobs,
            |(_, size)| *size,
            |(deb, _)| {
                let local = self.local.pack(deb).ok().flatten();
                Ok::<_, std::convert::Infallible>(local.map(|u| (u, Origin::Local)))
            },
        )
        .unwrap_or_else(|never| match never {});
        if !self.looks_up() {
            return found;
        }
        let todo: Vec<usize> = (0..debs.len()).filter(|&i| found[i].is_none()).collect();
        let answers = crate::parallel::map(
            &todo,
            transfers,
            |&i| debs[i].1,
            |&i| Ok::<_, std::convert::Infallible>(self.remote_pack(debs[i].0)),
        )
        .unwrap_or_else(|never| match never {});
        for (i, unpacked) in todo.into_iter().zip(answers) {
            found[i] = unpacked.map(|u| (u, Origin::Remote));
        }
        found
    }

    fn remote_pack(&self, deb: &Digest) -> Option<UnpackedDeb> {
        for remote in self.lookups() {
            match remote.store.pack(deb) {
                Ok(Some(unpacked)) => {
                    // Checked; not recorded costs the next build a lookup.
                    let _ = self.local.put(&Entry::Pack {
                        deb,
                        unpacked: &unpacked,
                    });
                    self.counts().package_hits += 1;
                    return Some(unpacked);
                }
                Ok(None) => {}
                Err(trouble) => self.trouble(remote, trouble),
            }
        }
        self.counts().package_misses += 1;
        None
    }

    /// The archive the lock's `key` names from the first `--cache-from`
    /// that has one passing `check`, downloaded into the local folder's
    /// blobs: its sha256 and size (the local folder is the caller's to
    /// look in first).
    pub fn archive(&self, key: &Digest, check: ArchiveCheck) -> Option<(Digest, u64)> {
        if !self.looks_up() {
            return None;
        }
        for remote in self.lookups() {
            match remote.store.archive(key, check) {
                Ok(Some(found)) => {
                    self.counts().package_hits += 1;
                    return Some(found);
                }
                Ok(None) => {}
                Err(trouble) => self.trouble(remote, trouble),
            }
        }
        self.counts().package_misses += 1;
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

    use super::*;
    use crate::cache::lookup::Answer;
    use crate::cache::{Cache, Local};
    use crate::layer::test_support::*;

    /// A place that answers every layer lookup the same way and counts
    /// what it is asked: the chain's own rules, apart from any registry.
    struct Scripted {
        name: &'static str,
        /// `None`: a miss; `Some(Ok(()))`: the query's layer, written
        /// into `out` as a registry hit lands it; `Some(Err(t))`: `t`.
        answer: Option<Result<(), Trouble>>,
        asked: AtomicUsize,
        puts: AtomicUsize,
        put: Result<Stored, Trouble>,
    }

    impl Scripted {
        fn new(name: &'static str, answer: Option<Result<(), Trouble>>) -> Scripted {
            Scripted {
                name,
                answer,
                asked: AtomicUsize::new(0),
                puts: AtomicUsize::new(0),
                put: Ok(Stored::Sent { bytes: 7 }),
            }
        }
    }

    impl EntryStore for std::sync::Arc<Scripted> {
        fn name(&self) -> String {
            self.name.to_string()
        }

        fn layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Answer<LayerBlob> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            match &self.answer {
                None => Ok(None),
                Some(Ok(())) => {
                    let blob = crate::layer::write_layer(query.tree, query.encoding, out, None)
                        .expect("a layer writes");
                    Ok(Some(blob))
                }
                Some(Err(trouble)) => Err(trouble.clone()),
            }
        }

        fn pack(&self, _deb: &Digest) -> Answer<UnpackedDeb> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }

        fn put(&self, _entry: &Entry<'_>) -> Result<Stored, Trouble> {
            self.puts.fetch_add(1, Ordering::Relaxed);
            self.put.clone()
        }
    }

    fn chain(dir: &std::path::Path, remotes: &[(&std::sync::Arc<Scripted>, Roles)]) -> Chain {
        let cache = Cache::open(&dir.join("cache"), std::time::SystemTime::now()).unwrap();
        let local = Local::new(&cache, Some(cache.layers().unwrap()));
        let remotes = remotes
            .iter()
            .map(|(s, roles)| (Box::new((*s).clone()) as Box<dyn EntryStore>, *roles))
            .collect();
        Chain::new(local, remotes, "test")
    }

    #[test]
    fn a_poisoned_entry_is_a_named_miss_and_the_next_cache_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let poisoned = std::sync::Arc::new(Scripted::new(
            "remote cache a",
            Some(Err(Trouble::refused("layer-x", "its blob is another tar"))),
        ));
        let good = std::sync::Arc::new(Scripted::new("remote cache b", Some(Ok(()))));
        let chain = chain(
            dir.path(),
            &[(&poisoned, Roles::FROM), (&good, Roles::FROM)],
        );
        let t = tree();
        let key = chain.key(&t, GZIP);
        let query = LayerQuery {
            key: &key,
            tree: &t,
            encoding: GZIP,
        };
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        let (blob, origin) = chain.layer(&query, &out).unwrap();
        assert_eq!(origin, Origin::Remote);
        out.verify(&blob.digest, blob.size).unwrap();
        let report = chain.report();
        assert_eq!((report.layer_hits, report.layer_misses), (1, 0));
        assert_eq!(
            report.warnings,
            ["remote cache a: entry layer-x does not check out and is not used: its blob is another tar"]
        );

        // The hit was recorded in the local folder: asked again, no
        // remote is.
        let again = BlobStore::open(dir.path().join("again")).unwrap();
        assert_eq!(chain.layer(&query, &again), Some((blob, Origin::Local)));
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
        let down = std::sync::Arc::new(Scripted::new(
            "remote cache a",
            Some(Err(Trouble::down(
                "looking up an entry",
                "connection refused",
            ))),
        ));
        let empty = std::sync::Arc::new(Scripted::new("remote cache b", None));
        let to = std::sync::Arc::new(Scripted::new("remote cache c", Some(Ok(()))));
        let chain = chain(
            dir.path(),
            &[(&down, both), (&empty, Roles::FROM), (&to, Roles::TO)],
        );
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        let trees = [tree(), {
            let mut t = tree();
            t.get_mut("etc/a").unwrap().mode = 0o600;
            t
        }];
        let mut written = Vec::new();
        for t in &trees {
            let key = chain.key(t, GZIP);
            let query = LayerQuery {
                key: &key,
                tree: t,
                encoding: GZIP,
            };
            assert_eq!(chain.layer(&query, &out), None);
            let blob = crate::layer::write_layer(t, GZIP, &out, None).unwrap();
            written.push((key, blob));
        }
        let debs = [(&Digest::of(b"deb"), 1)];
        assert!(chain.packs(&debs, 1, 1)[0].is_none());
        let entries: Vec<Entry> = written
            .iter()
            .map(|(key, layer)| Entry::Layer {
                key,
                layer,
                profile: GZIP.profile,
                from: &out,
            })
            .collect();
        chain.push(&entries, 1);

        let report = chain.report();
        assert_eq!(
            report.warnings,
            ["remote cache a: looking up an entry: connection refused; going on without it"]
        );
        assert_eq!((report.layer_hits, report.layer_misses), (0, 2));
        assert_eq!((report.package_hits, report.package_misses), (0, 1));
        // Down for lookups and pushes alike; the others asked in their
        // roles only.
        assert_eq!(down.asked.load(Ordering::Relaxed), 1);
        assert_eq!(down.puts.load(Ordering::Relaxed), 0);
        assert_eq!(empty.asked.load(Ordering::Relaxed), 3);
        assert_eq!(empty.puts.load(Ordering::Relaxed), 0);
        assert_eq!(to.asked.load(Ordering::Relaxed), 0);
        assert_eq!(to.puts.load(Ordering::Relaxed), 2);
        assert_eq!((report.entries_pushed, report.bytes_uploaded), (2, 14));
    }
}
