//! A registry repository as a cache: layer entries and unpacked
//! packages kept as OCI artifacts, so CI runners that share nothing but a
//! registry share their work (`--cache-from`, `--cache-to`). One
//! `Repository` per repository named, behind the lookup interface
//! (`cache::lookup`), asked and filled by the run's `Chain`.
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
//! checks its own). An entry that fails a check is `Trouble::Entry` (a
//! miss with a warning); a registry that cannot be reached is
//! `Trouble::Down` (warned about once, then not asked again in this run).
//! Neither fails a build. What is downloaded lands in the local folder's
//! blob store, where only the chain records what passed every check. What
//! no check can prove without doing the work is which compression of a
//! checked tar a runner pushed, or what a .deb never downloaded unpacks
//! to: those are trusted to whoever may push to the cache repository
//! (README, "Shared cache").

mod archives;
mod entries;

use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::ImageManifest;

use super::folder::Cache;
use super::lookup::{Answer, ArchiveCheck, Entry, EntryStore, LayerQuery, Stored, Trouble};
use super::packs::PackCache;
use crate::dpkg::unpack::UnpackedDeb;
use crate::oci::media::{MANIFEST_LIMIT, OCI_MANIFEST};
use crate::oci::model::our_digest;
use crate::oci::{Digest, LayerBlob};
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

/// One `--cache-from` or `--cache-to` repository and its client.
pub struct Repository {
    reference: Reference,
    client: Client,
    /// Where downloaded entries land: the local cache folder's blobs.
    store: BlobStore,
    /// How a package's index is checked: as the local folder checks its
    /// own records.
    packs: PackCache,
    /// The builder identity the layer cache keys by.
    builder: String,
    /// Content bytes fetched so far.
    downloaded: AtomicU64,
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

impl Repository {
    /// Opens a client for `reference` (reading its credentials now, so a
    /// broken auth file is reported before the build). What it downloads
    /// lands in `local`'s blobs; `builder` is the identity layer keys
    /// name.
    pub fn open(
        reference: &Reference,
        registry: &RegistrySettings,
        local: &Cache,
        builder: &str,
    ) -> Result<Repository, RemoteCacheError> {
        let client = Client::new(&reference.registry, registry).map_err(|source| {
            RemoteCacheError::Client {
                reference: reference.to_string(),
                source: Box::new(source),
            }
        })?;
        Ok(Repository {
            reference: reference.clone(),
            client,
            store: local.blobs().clone(),
            packs: local.packs().clone(),
            builder: builder.to_string(),
            downloaded: AtomicU64::new(0),
        })
    }

    /// The entry under `tag` that `accept` takes and whose blobs then
    /// download whole into the local folder's store, with what `accept`
    /// made of it and the blobs this call fetched (each hashed as it
    /// streamed in), as opposed to those the store already had.
    fn find<T>(
        &self,
        tag: &str,
        accept: impl Fn(&Found) -> Result<T, String>,
    ) -> Answer<(T, Vec<Digest>)> {
        let found = match self.lookup(tag) {
            Ok(Lookup::Miss) => return Ok(None),
            Ok(Lookup::Found(found)) => *found,
            Ok(Lookup::Bad(why)) => return Err(Trouble::refused(tag, why)),
            Err(e) => return Err(Trouble::down("looking up an entry", e)),
        };
        let accepted = accept(&found).map_err(|why| Trouble::refused(tag, why))?;
        match self.download(&found) {
            Ok((bytes, fetched)) => {
                self.downloaded.fetch_add(bytes, Ordering::Relaxed);
                Ok(Some((accepted, fetched)))
            }
            Err(e) if entry_fault(&e) => Err(Trouble::refused(tag, e)),
            Err(e) => Err(Trouble::down("downloading an entry", e)),
        }
    }

    /// The manifest under `tag` and its record.
    fn lookup(&self, tag: &str) -> Result<Lookup, RegistryError> {
        let client = &self.client;
        let repository = &self.reference.repository;
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
    fn download(&self, found: &Found) -> Result<(u64, Vec<Digest>), RegistryError> {
        let store_err = |error| RegistryError::Store {
            reference: self.reference.to_string(),
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
        let pinned = self.reference.with_digest(found.manifest_digest.clone());
        crate::registry::pull::pull_with(&self.client, &pinned, &self.store)?;
        Ok((bytes, fetched))
    }

    /// `None` when the tag was there; else the bytes uploaded.
    fn push_entry(&self, entry: &entries::Outgoing) -> Result<Option<u64>, RegistryError> {
        let client = &self.client;
        let repository = &self.reference.repository;
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

impl EntryStore for Repository {
    fn name(&self) -> String {
        format!("remote cache {}", self.reference)
    }

    fn layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Answer<LayerBlob> {
        self.find_layer(query, out)
    }

    fn pack(&self, deb: &Digest) -> Answer<UnpackedDeb> {
        self.find_pack(deb)
    }

    fn archive(&self, key: &Digest, check: ArchiveCheck) -> Answer<(Digest, u64)> {
        self.find_archive(key, check)
    }

    fn put(&self, entry: &Entry<'_>) -> Result<Stored, Trouble> {
        let outgoing = self.outgoing(entry)?;
        match self.push_entry(&outgoing) {
            Ok(None) => Ok(Stored::Present),
            Ok(Some(bytes)) => Ok(Stored::Sent { bytes }),
            Err(e) => Err(Trouble::down("pushing an entry", e)),
        }
    }

    fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }
}

pub use archives::ARCHIVE_ARTIFACT;
pub use entries::{LAYER_ARTIFACT, UNPACKED_ARTIFACT};
