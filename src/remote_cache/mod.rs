//! The remote cache: layer-cache entries and unpacked packages kept as OCI
//! artifacts in a registry repository, so CI runners that share nothing
//! but a registry share their work (`--cache-from`, `--cache-to`).
//!
//! One artifact per entry, tagged by the key it answers (`layer-v1-<key>`,
//! `unpacked-v1.<unpack format>-<deb sha256>`): many runners push at once without a
//! shared index to race on, and a lookup is one manifest GET. The
//! manifest's config is a small record naming the key, the builder and
//! the encoding profile; its layers are the content (the layer blob; an
//! unpacked package's index and pack). See `entries` for the two kinds.
//!
//! A registry is somebody else's disk: everything read is checked before
//! use (the record must answer the exact key asked, every blob is hashed
//! as it streams in, a layer's blob must decompress to the very tar the
//! tree makes, a package's index and pack are checked as the local cache
//! checks its own). An entry that fails a check is a miss with a warning;
//! a registry that cannot be reached is warned about once and not asked
//! again in this run. Neither fails a build. What no check can prove
//! without doing the work is which compression of a checked tar a runner
//! pushed, or what a .deb never downloaded unpacks to: those are trusted
//! to whoever may push to the cache repository (README, "Shared cache").

mod entries;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use oci_spec::image::ImageManifest;
use serde::Serialize;

use crate::oci::media::{MANIFEST_LIMIT, OCI_MANIFEST};
use crate::oci::model::our_digest;
use crate::oci::Digest;
use crate::registry::client::{pull_scope, push_scope, read_limited, Req};
use crate::registry::{Client, Reference, RegistryError, RegistrySettings};
use crate::store::BlobStore;

/// Where the remote cache is read from and written to: registry
/// repositories (`HOST[:PORT]/REPO`, no tag), in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteCacheSettings {
    pub from: Vec<Reference>,
    pub to: Vec<Reference>,
}

impl RemoteCacheSettings {
    pub fn is_empty(&self) -> bool {
        self.from.is_empty() && self.to.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteCacheError {
    #[error("remote cache {reference}: cannot set up its registry client; fix the auth file or TLS setting the message names, or drop the --cache-from/--cache-to naming it")]
    Client {
        reference: String,
        // Boxed: a registry error carries URLs and messages.
        #[source]
        source: Box<RegistryError>,
    },
}

/// What the remote cache did in one run, counted as it happened.
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

/// One `--cache-from` or `--cache-to` repository and its client.
struct Endpoint {
    reference: Reference,
    client: Client,
    /// Failed once in this run: not asked again.
    down: AtomicBool,
}

/// The remote caches of one run. Shared by the threads that unpack
/// packages and write layers.
pub struct RemoteCache {
    from: Vec<Endpoint>,
    to: Vec<Endpoint>,
    /// Where downloaded entries land: the local cache folder's blobs.
    store: BlobStore,
    /// The builder identity the layer cache keys by.
    builder: String,
    report: Mutex<RemoteReport>,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |e: &[Endpoint]| {
            e.iter()
                .map(|e| e.reference.to_string())
                .collect::<Vec<_>>()
        };
        f.debug_struct("RemoteCache")
            .field("from", &names(&self.from))
            .field("to", &names(&self.to))
            .finish()
    }
}

/// An entry's manifest and record as a registry served them, both
/// checked against their digests.
struct Found {
    manifest_digest: Digest,
    manifest_bytes: Vec<u8>,
    manifest: ImageManifest,
    record: Vec<u8>,
}

enum Lookup {
    Miss,
    Found(Box<Found>),
    /// There is something under the tag, and it is not an entry.
    Bad(String),
}

/// Records are a few hundred bytes; anything near this is not one.
const RECORD_LIMIT: u64 = 64 << 10;

impl RemoteCache {
    /// Opens a client per repository (reading their credentials now, so a
    /// broken auth file is reported before the build). `store` is where
    /// downloaded entries land; `builder` the identity layer keys name.
    pub fn new(
        settings: &RemoteCacheSettings,
        registry: &RegistrySettings,
        store: &BlobStore,
        builder: &str,
    ) -> Result<RemoteCache, RemoteCacheError> {
        let open = |refs: &[Reference]| {
            refs.iter()
                .map(|r| {
                    let client = Client::new(&r.registry, registry).map_err(|source| {
                        RemoteCacheError::Client {
                            reference: r.to_string(),
                            source: Box::new(source),
                        }
                    })?;
                    Ok(Endpoint {
                        reference: r.clone(),
                        client,
                        down: AtomicBool::new(false),
                    })
                })
                .collect::<Result<Vec<_>, RemoteCacheError>>()
        };
        Ok(RemoteCache {
            from: open(&settings.from)?,
            to: open(&settings.to)?,
            store: store.clone(),
            builder: builder.to_string(),
            report: Mutex::new(RemoteReport::default()),
        })
    }

    /// What this run did so far.
    pub fn report(&self) -> RemoteReport {
        self.counts().clone()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, RemoteReport> {
        // A poisoned lock only means a count was lost.
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn warn(&self, message: String) {
        self.counts().warnings.push(message);
    }

    /// Marks `endpoint` down after `error`, warning the first time only.
    fn down(&self, endpoint: &Endpoint, doing: &str, error: &RegistryError) {
        if !endpoint.down.swap(true, Ordering::Relaxed) {
            self.warn(format!(
                "remote cache {}: {doing}: {error}; going on without it",
                endpoint.reference
            ));
        }
    }

    fn live(endpoints: &[Endpoint]) -> impl Iterator<Item = &Endpoint> {
        endpoints.iter().filter(|e| !e.down.load(Ordering::Relaxed))
    }

    /// The first entry under `tag` in the `--cache-from` repositories that
    /// `accept` takes and whose blobs then download whole into the local
    /// cache, with what `accept` made of it. Entries that fail either
    /// are warned about and the next repository is asked.
    /// Also returns the blobs this call fetched (each hashed as it
    /// streamed in), as opposed to those the local cache already had.
    fn find<T>(
        &self,
        tag: &str,
        accept: impl Fn(&Found) -> Result<T, String>,
    ) -> Option<(T, Vec<Digest>)> {
        for endpoint in Self::live(&self.from) {
            let found = match self.lookup(endpoint, tag) {
                Ok(Lookup::Miss) => continue,
                Ok(Lookup::Found(found)) => *found,
                Ok(Lookup::Bad(why)) => {
                    self.poisoned(endpoint, tag, &why);
                    continue;
                }
                Err(e) => {
                    self.down(endpoint, "looking up an entry", &e);
                    continue;
                }
            };
            let accepted = match accept(&found) {
                Ok(t) => t,
                Err(why) => {
                    self.poisoned(endpoint, tag, &why);
                    continue;
                }
            };
            match self.download(endpoint, &found) {
                Ok((bytes, fetched)) => {
                    self.counts().bytes_downloaded += bytes;
                    return Some((accepted, fetched));
                }
                Err(e) if entry_fault(&e) => self.poisoned(endpoint, tag, &e.to_string()),
                Err(e) => self.down(endpoint, "downloading an entry", &e),
            }
        }
        None
    }

    fn poisoned(&self, endpoint: &Endpoint, tag: &str, why: &str) {
        self.warn(format!(
            "remote cache {}: entry {tag} does not check out and is not used: {why}",
            endpoint.reference
        ));
    }

    /// The manifest under `tag` and its record.
    fn lookup(&self, endpoint: &Endpoint, tag: &str) -> Result<Lookup, RegistryError> {
        let client = &endpoint.client;
        let repository = &endpoint.reference.repository;
        let scopes = vec![pull_scope(repository)];
        let url = client.url(&format!("{repository}/manifests/{tag}"));
        let resp = client.send(
            &Req::new("GET", url.clone(), scopes.clone())
                .header("Accept", OCI_MANIFEST)
                .allow(&[404]),
        )?;
        if resp.status() == 404 {
            return Ok(Lookup::Miss);
        }
        let manifest_bytes = read_limited(resp, MANIFEST_LIMIT, &url)?;
        let manifest_digest = Digest::of(&manifest_bytes);
        let manifest: ImageManifest = match serde_json::from_slice(&manifest_bytes) {
            Ok(m) => m,
            Err(e) => return Ok(Lookup::Bad(format!("its manifest does not parse: {e}"))),
        };
        let config = manifest.config();
        let Ok(record_digest) = our_digest(config.digest()) else {
            return Ok(Lookup::Bad(format!(
                "its record's digest {} is not sha256",
                config.digest()
            )));
        };
        if config.size() > RECORD_LIMIT {
            return Ok(Lookup::Bad(format!(
                "its record claims {} bytes, beyond the {RECORD_LIMIT}-byte limit",
                config.size()
            )));
        }
        let url = client.url(&format!("{repository}/blobs/{record_digest}"));
        let resp = client.send(&Req::new("GET", url.clone(), scopes).allow(&[404]))?;
        if resp.status() == 404 {
            return Ok(Lookup::Bad(format!(
                "its record {record_digest} is missing"
            )));
        }
        let record = read_limited(resp, RECORD_LIMIT, &url)?;
        if Digest::of(&record) != record_digest || record.len() as u64 != config.size() {
            return Ok(Lookup::Bad(format!(
                "the registry's record is not {record_digest} ({} bytes)",
                config.size()
            )));
        }
        Ok(Lookup::Found(Box::new(Found {
            manifest_digest,
            manifest_bytes,
            manifest,
            record,
        })))
    }

    /// Every blob of `found` into the local cache, each verified as it
    /// streams in; returns the bytes and the blobs fetched.
    fn download(
        &self,
        endpoint: &Endpoint,
        found: &Found,
    ) -> Result<(u64, Vec<Digest>), RegistryError> {
        let store_err = |error| RegistryError::Store {
            reference: endpoint.reference.to_string(),
            error,
        };
        // The manifest and record are stored first, so the pull walks the
        // manifest from here and fetches only the content.
        self.store
            .put_verified(
                &found.manifest_bytes[..],
                &found.manifest_digest,
                found.manifest_bytes.len() as u64,
            )
            .map_err(store_err)?;
        let record_digest = Digest::of(&found.record);
        self.store
            .put_verified(&found.record[..], &record_digest, found.record.len() as u64)
            .map_err(store_err)?;
        let mut fetched = Vec::new();
        let mut bytes = 0;
        for d in found.manifest.layers() {
            match our_digest(d.digest()) {
                Ok(digest) if !self.store.contains(&digest) => {
                    fetched.push(digest);
                    bytes += d.size();
                }
                _ => {}
            }
        }
        let pinned = endpoint
            .reference
            .with_digest(found.manifest_digest.clone());
        crate::registry::pull::pull_with(&endpoint.client, &pinned, &self.store)?;
        Ok((bytes, fetched))
    }

    /// Pushes `entries` to every `--cache-to` repository, `jobs` at a
    /// time; an entry whose tag is there already costs one HEAD.
    fn push_entries(&self, entries: &[entries::Outgoing], jobs: usize) {
        for endpoint in &self.to {
            let _ = crate::parallel::map(
                entries,
                jobs,
                |e| e.size(),
                |entry| -> Result<(), std::convert::Infallible> {
                    if endpoint.down.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    match self.push_entry(endpoint, entry) {
                        Ok(None) => self.counts().entries_present += 1,
                        Ok(Some(bytes)) => {
                            let mut counts = self.counts();
                            counts.entries_pushed += 1;
                            counts.bytes_uploaded += bytes;
                        }
                        Err(e) => self.down(endpoint, "pushing an entry", &e),
                    }
                    Ok(())
                },
            );
        }
    }

    /// `None` when the tag was there; else the bytes uploaded.
    fn push_entry(
        &self,
        endpoint: &Endpoint,
        entry: &entries::Outgoing,
    ) -> Result<Option<u64>, RegistryError> {
        let client = &endpoint.client;
        let repository = &endpoint.reference.repository;
        let scopes = vec![push_scope(repository)];
        let url = client.url(&format!("{repository}/manifests/{}", entry.tag));
        let head = client.send(
            &Req::new("HEAD", url, scopes)
                .header("Accept", OCI_MANIFEST)
                .allow(&[404]),
        )?;
        if head.status() != 404 {
            return Ok(None);
        }
        let mut report = crate::registry::PushReport::default();
        for blob in &entry.blobs {
            crate::registry::upload::push_blob(
                client,
                repository,
                blob.store,
                &blob.digest,
                blob.size,
                &[],
                &mut report,
            )?;
        }
        crate::registry::manifest::put_manifest(
            client,
            repository,
            &entry.tag,
            OCI_MANIFEST,
            &entry.manifest,
            &Digest::of(&entry.manifest),
            &mut report,
        )?;
        Ok(Some(report.bytes_uploaded))
    }
}

/// Whether a failed download is the entry's fault (content that is not
/// what the manifest says), rather than the registry's or the network's.
fn entry_fault(e: &RegistryError) -> bool {
    match e {
        RegistryError::Store { .. }
        | RegistryError::DigestMismatch { .. }
        | RegistryError::Malformed { .. }
        | RegistryError::TooLarge { .. }
        | RegistryError::Protocol { .. } => true,
        RegistryError::Status { status, .. } => *status == 404,
        _ => false,
    }
}

pub use entries::{LAYER_ARTIFACT, UNPACKED_ARTIFACT};
