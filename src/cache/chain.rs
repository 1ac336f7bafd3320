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
use super::lookup::{Entry, EntryStore, LayerQuery, Stored, Trouble};
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

/// A remote place and whether it failed in this run.
struct Tier {
    store: Box<dyn EntryStore>,
    down: AtomicBool,
}

impl Tier {
    fn new(store: Box<dyn EntryStore>) -> Tier {
        Tier {
            store,
            down: AtomicBool::new(false),
        }
    }
}

/// The chain of one run. Shared by the threads that unpack packages and
/// write layers.
pub struct Chain {
    local: Local,
    from: Vec<Tier>,
    to: Vec<Tier>,
    /// The builder identity layer keys name (`layer::layer_key`).
    builder: String,
    report: Mutex<RemoteReport>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |t: &[Tier]| t.iter().map(|t| t.store.name()).collect::<Vec<_>>();
        f.debug_struct("Chain")
            .field("local", &self.local.name())
            .field("from", &names(&self.from))
            .field("to", &names(&self.to))
            .finish()
    }
}

impl Chain {
    /// `local`, then `from` in order; fills go to `local` and `to`.
    /// `builder` is the identity layer keys name.
    pub fn new(
        local: Local,
        from: Vec<Box<dyn EntryStore>>,
        to: Vec<Box<dyn EntryStore>>,
        builder: &str,
    ) -> Chain {
        Chain {
            local,
            from: from.into_iter().map(Tier::new).collect(),
            to: to.into_iter().map(Tier::new).collect(),
            builder: builder.to_string(),
            report: Mutex::new(RemoteReport::default()),
        }
    }

    /// Whether any remote cache takes part (and `report` means anything).
    pub fn has_remote(&self) -> bool {
        !self.from.is_empty() || !self.to.is_empty()
    }

    /// What the remote caches did so far.
    pub fn report(&self) -> RemoteReport {
        let mut report = self.counts().clone();
        report.bytes_downloaded = self.from.iter().map(|t| t.store.downloaded()).sum();
        report
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, RemoteReport> {
        // A poisoned lock only means a count was lost.
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Warns about `trouble` from `tier`; a tier that is down is marked
    /// so, and warned about the first time only.
    fn trouble(&self, tier: &Tier, trouble: Trouble) {
        let warning = match trouble {
            Trouble::Entry(message) => format!("{}: {message}", tier.store.name()),
            Trouble::Down(message) => {
                if tier.down.swap(true, Ordering::Relaxed) {
                    return;
                }
                format!("{}: {message}; going on without it", tier.store.name())
            }
        };
        self.counts().warnings.push(warning);
    }

    fn live(tiers: &[Tier]) -> impl Iterator<Item = &Tier> {
        tiers.iter().filter(|t| !t.down.load(Ordering::Relaxed))
    }

    /// The key of the layer `tree` makes with `encoding`, as every cache
    /// of this chain finds it.
    pub fn key(&self, tree: &FsTree, encoding: Encoding) -> Digest {
        layer_key(tree, encoding, &self.builder)
    }

    /// Whether layers are looked up and recorded at all (not with
    /// `--no-layer-cache`).
    pub fn layers(&self) -> bool {
        self.local.layers.is_some()
    }

    /// The layer `query` names, its blob in `out`, from the first cache
    /// that has one that checks out. A remote hit is recorded locally.
    pub fn layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Option<(LayerBlob, Origin)> {
        if !self.layers() {
            return None;
        }
        if let Ok(Some(blob)) = self.local.layer(query, out) {
            return Some((blob, Origin::Local));
        }
        if self.from.is_empty() {
            return None;
        }
        for tier in Self::live(&self.from) {
            match tier.store.layer(query, out) {
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
                Err(trouble) => self.trouble(tier, trouble),
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
        if self.from.is_empty() {
            return found;
        }
        let todo: Vec<usize> = (0..debs.len()).filter(|&i| found[i].is_none()).collect();
        let remote = crate::parallel::map(
            &todo,
            transfers,
            |&i| debs[i].1,
            |&i| Ok::<_, std::convert::Infallible>(self.remote_pack(debs[i].0)),
        )
        .unwrap_or_else(|never| match never {});
        for (i, unpacked) in todo.into_iter().zip(remote) {
            found[i] = unpacked.map(|u| (u, Origin::Remote));
        }
        found
    }

    fn remote_pack(&self, deb: &Digest) -> Option<UnpackedDeb> {
        for tier in Self::live(&self.from) {
            match tier.store.pack(deb) {
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
                Err(trouble) => self.trouble(tier, trouble),
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
        for tier in &self.to {
            let _ = crate::parallel::map(
                entries,
                jobs,
                |e| e.size(),
                |entry| -> Result<(), std::convert::Infallible> {
                    if tier.down.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    match tier.store.put(entry) {
                        Ok(Stored::Present) => self.counts().entries_present += 1,
                        Ok(Stored::Sent { bytes }) => {
                            let mut counts = self.counts();
                            counts.entries_pushed += 1;
                            counts.bytes_uploaded += bytes;
                        }
                        Err(trouble) => self.trouble(tier, trouble),
                    }
                    Ok(())
                },
            );
        }
    }
}
