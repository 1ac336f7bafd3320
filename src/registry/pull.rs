//! Pulling (distribution-spec "Pulling manifests", "Pulling blobs"): the
//! manifest or index by tag or digest, checked against the digest that
//! names it, then every manifest, config and layer it references into a
//! `BlobStore`, each verified by `put_verified` as it streams in. Blobs the
//! store already has are not fetched again, so a pinned image that is fully
//! cached needs no network at all.
//!
//! Referrers (attestations) are pulled the same way, manifest and blobs,
//! from wherever `referrers` lists them.

use std::collections::BTreeSet;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::client::{pull_scope, Client, Req};
use super::reference::Reference;
use super::referrers::{list_entry, list_referrers};
use super::{RegistryError, RegistrySettings, Transfer};
use crate::oci::media::{
    self, document_media_type, LimitError, ACCEPT_MANIFESTS, DOCKER_SCHEMA1_PREFIX, MANIFEST_LIMIT,
};
use crate::oci::model::{descriptor, our_digest};
use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};
use crate::transport::TransportError;

/// What a pull stored.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The manifest or index the reference names, as an index would list it.
    pub top: Descriptor,
    /// Every blob reachable from it (manifests included), each once, in
    /// the order they were reached. All are in the store.
    pub blobs: Vec<Digest>,
}

/// The referrers of an image, pulled.
#[derive(Debug, Default)]
pub(crate) struct PulledReferrers {
    /// Each referrer once, as a layout's index.json lists it, in the order
    /// found; those that could not be pulled whole are listed as the
    /// registry listed them, so whoever checks them finds them lacking.
    pub referrers: Vec<Descriptor>,
    /// Every blob of the referrers that is in the store (manifests,
    /// configs, layers), each once.
    pub blobs: Vec<Digest>,
    /// The listed referrers that are not in the store whole, and why: its
    /// manifest is gone, or it or a blob did not verify.
    pub incomplete: Vec<(Descriptor, RegistryError)>,
    /// Why the referrers of a subject could not be listed at all: the
    /// fallback tag holds something that is not an index, the list is
    /// beyond the limits, the registry refused. One error per subject.
    pub unlisted: Vec<RegistryError>,
}

/// Whether `e` says the registry could not be reached or would not let
/// us in (the caller fails), rather than that what it holds is unreadable
/// (the caller decides).
fn unreachable(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Network(_)
            | RegistryError::Auth { .. }
            | RegistryError::AuthFile { .. }
            | RegistryError::CredentialHelper { .. }
    )
}

/// Pulls `reference` into `store`.
pub fn pull(
    reference: &Reference,
    settings: &RegistrySettings,
    store: &BlobStore,
) -> Result<Pulled, RegistryError> {
    let client = Client::new(&reference.registry, settings)?;
    pull_with(&client, reference, store)
}

/// Like [`pull`], with a client already made (and its tokens).
pub(crate) fn pull_with(
    client: &Client,
    reference: &Reference,
    store: &BlobStore,
) -> Result<Pulled, RegistryError> {
    let mut walk = Walk::new(client, reference, store);
    let doc = walk.manifest(
        &reference.manifest_reference(),
        reference.digest.as_ref(),
        None,
    )?;
    walk.document(&doc, 0)?;
    walk.fetch_pending()?;
    let top = descriptor(
        MediaType::from(doc.media_type.as_str()),
        &doc.digest,
        doc.bytes.len() as u64,
    );
    Ok(Pulled {
        top,
        blobs: walk.blobs,
    })
}

/// Fetches the one blob `digest` (`size` bytes) of `reference`'s
/// repository into `store`, verified as it streams in, whatever (if any)
/// manifest names it: what a content-addressed archive (the remote
/// cache's .debs) asks for.
pub(crate) fn pull_blob(
    client: &Client,
    reference: &Reference,
    digest: &Digest,
    size: u64,
    store: &BlobStore,
) -> Result<(), RegistryError> {
    Walk::new(client, reference, store).fetch_blob(digest, size)
}

/// Pulls the referrers of each of `subjects` (manifests and indexes of
/// the image `reference` names) from its repository into `store`, found
/// by the referrers API or else the fallback tag. A referrer that cannot
/// be pulled whole is reported in `incomplete`, and a subject whose
/// referrers cannot be listed in `unlisted`, not as errors: the caller
/// decides whether an unreadable attestation stops it (`verify`) or is
/// warned about (`pull`, `push`). Failing to reach the registry is an
/// error.
pub(crate) fn pull_referrers(
    client: &Client,
    reference: &Reference,
    subjects: &[Digest],
    store: &BlobStore,
) -> Result<PulledReferrers, RegistryError> {
    let mut walk = Walk::new(client, reference, store);
    let mut out = PulledReferrers::default();
    let mut seen = BTreeSet::new();
    for subject in subjects {
        let listed = match list_referrers(client, &reference.repository, subject) {
            Ok(listed) => listed,
            Err(e) if unreachable(&e) => return Err(e),
            Err(e) => {
                out.unlisted.push(e);
                continue;
            }
        };
        for listed in listed {
            if !seen.insert(listed.digest().to_string()) {
                continue;
            }
            match walk.referrer(&listed) {
                Ok(entry) => out.referrers.push(entry),
                Err(e) if unreachable(&e) => return Err(e),
                Err(e) => {
                    out.referrers.push(listed.clone());
                    out.incomplete.push((listed, e));
                }
            }
        }
    }
    out.blobs = walk.blobs;
    Ok(out)
}

struct Doc {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: String,
}

struct Walk<'a> {
    client: &'a Client,
    reference: &'a Reference,
    name: String,
    store: &'a BlobStore,
    scopes: Vec<String>,
    blobs: Vec<Digest>,
    /// Blobs found but not yet fetched: fetched together, up to the
    /// settings' jobs at once, by [`Walk::fetch_pending`].
    pending: Vec<(Digest, u64)>,
    /// The index whose entries are being read, for messages.
    parent: Option<String>,
}

impl<'a> Walk<'a> {
    fn new(client: &'a Client, reference: &'a Reference, store: &'a BlobStore) -> Walk<'a> {
        Walk {
            client,
            reference,
            name: reference.to_string(),
            store,
            scopes: vec![pull_scope(&reference.repository)],
            blobs: Vec::new(),
            pending: Vec::new(),
            parent: None,
        }
    }

    fn store_err(&self, e: StoreError) -> RegistryError {
        RegistryError::Store {
            reference: self.name.clone(),
            error: e,
        }
    }

    fn note(&mut self, digest: &Digest) {
        if !self.blobs.contains(digest) {
            self.blobs.push(digest.clone());
        }
    }

    fn limit(&self, error: LimitError) -> RegistryError {
        RegistryError::Limit {
            reference: self.name.clone(),
            error,
        }
    }

    fn descriptor_digest(&self, what: &str, d: &Descriptor) -> Result<Digest, RegistryError> {
        our_digest(d.digest()).map_err(|e| RegistryError::Reference {
            input: self.name.clone(),
            reason: format!("{what} {}: {e}", d.digest()),
        })
    }

    /// A manifest's or config's descriptor, its size within the limit
    /// every source holds documents to.
    fn check_document(&self, what: &'static str, d: &Descriptor) -> Result<Digest, RegistryError> {
        let digest = self.descriptor_digest(what, d)?;
        let kind = if what.ends_with("config") {
            "config"
        } else {
            "manifest"
        };
        media::check_document_size(kind, &digest.to_string(), d.size())
            .map_err(|e| self.limit(e))?;
        Ok(digest)
    }

    /// A layer's descriptor, its size within the pull's blob limit.
    fn check_layer(&self, what: &'static str, d: &Descriptor) -> Result<Digest, RegistryError> {
        let digest = self.descriptor_digest(what, d)?;
        let limit = self.client.settings().blob_limit;
        if d.size() > limit {
            return Err(RegistryError::TooLarge {
                reference: self.name.clone(),
                what,
                digest,
                size: d.size(),
                limit,
            });
        }
        Ok(digest)
    }

    /// A manifest or index by tag or digest, from the store when `expected`
    /// names one it has, else from the registry. Its digest is checked
    /// against `expected` when given, else against the registry's
    /// `Docker-Content-Digest`.
    fn manifest(
        &mut self,
        tag_or_digest: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Doc, RegistryError> {
        if let Some(d) = expected.filter(|d| self.store.contains(d)) {
            let bytes = self
                .store
                .read_verified(d, size, MANIFEST_LIMIT)
                .map_err(|e| self.store_err(e))?;
            let media_type = document_media_type(&bytes);
            self.note(d);
            return Ok(Doc {
                bytes,
                digest: d.clone(),
                media_type,
            });
        }
        let url = self.client.url(&format!(
            "{}/manifests/{tag_or_digest}",
            self.reference.repository
        ));
        let answer = self
            .client
            .fetch_document(
                &Req::new("GET", url.clone(), self.scopes.clone())
                    .header("Accept", ACCEPT_MANIFESTS),
                MANIFEST_LIMIT,
            )
            .map_err(|e| match e {
                RegistryError::Limit { error, .. } => self.limit(match error {
                    LimitError::TooLarge {
                        what, size, limit, ..
                    } => LimitError::TooLarge {
                        what,
                        name: tag_or_digest.to_string(),
                        size,
                        limit,
                    },
                    other => other,
                }),
                other => other,
            })?;
        let (content_type, reported, bytes) = (answer.content_type, answer.digest, answer.bytes);
        let found = Digest::of(&bytes);
        let wanted = expected.map(|d| d.to_string()).or(reported);
        if let Some(w) = wanted {
            if w != found.to_string() {
                // The pin (or the registry's claim) is what was asked for;
                // what we hashed is what came.
                return Err(match w.parse::<Digest>() {
                    Ok(expected) => RegistryError::DigestMismatch {
                        url,
                        expected,
                        found: found.to_string(),
                    },
                    Err(_) => RegistryError::Protocol {
                        url,
                        message: format!("the registry reports digest `{w}`, which is not sha256"),
                    },
                });
            }
        }
        if let Some(s) = size.filter(|s| *s != bytes.len() as u64) {
            return Err(RegistryError::Protocol {
                url,
                message: format!(
                    "{found} is {} bytes, but its descriptor says {s}",
                    bytes.len()
                ),
            });
        }
        let media_type = match content_type {
            Some(c) if media::is_document(&c) => c,
            _ => document_media_type(&bytes),
        };
        self.store
            .put_verified(&bytes[..], &found, bytes.len() as u64)
            .map_err(|e| self.store_err(e))?;
        self.note(&found);
        Ok(Doc {
            bytes,
            digest: found,
            media_type,
        })
    }

    fn document(&mut self, doc: &Doc, depth: u32) -> Result<(), RegistryError> {
        let malformed = |what, message: String| RegistryError::Malformed {
            reference: self.name.clone(),
            what,
            digest: doc.digest.clone(),
            message,
        };
        if doc.media_type.starts_with(DOCKER_SCHEMA1_PREFIX) {
            return Err(malformed(
                "manifest",
                format!("{} (Docker schema 1) is not supported; convert the image to OCI or Docker schema 2, e.g. with `skopeo copy`", doc.media_type),
            ));
        }
        if media::is_index(&doc.media_type) {
            let index: ImageIndex = serde_json::from_slice(&doc.bytes)
                .map_err(|e| malformed("index", e.to_string()))?;
            if depth > 0 {
                return Err(self.limit(LimitError::Nested {
                    digest: self.parent.clone().unwrap_or_default(),
                    child: doc.digest.to_string(),
                }));
            }
            // Every entry is checked before the first is fetched: a
            // 10,000-entry index costs one request, not 10,001.
            media::check_index(
                &format!("index {}", doc.digest),
                &doc.digest.to_string(),
                index.manifests(),
            )
            .map_err(|e| self.limit(e))?;
            let mut children = Vec::with_capacity(index.manifests().len());
            for d in index.manifests() {
                children.push((self.check_document("manifest", d)?, d.size()));
            }
            for (digest, size) in children {
                self.parent = Some(doc.digest.to_string());
                let child = self.manifest(&digest.to_string(), Some(&digest), Some(size))?;
                self.document(&child, depth + 1)?;
            }
            return Ok(());
        }
        let manifest: ImageManifest =
            serde_json::from_slice(&doc.bytes).map_err(|e| malformed("manifest", e.to_string()))?;
        media::check_layers(&doc.digest.to_string(), manifest.layers().len())
            .map_err(|e| self.limit(e))?;
        // Every size is checked before the first byte is fetched.
        let config = manifest.config();
        let mut wanted = vec![(self.check_document("config", config)?, config.size())];
        for layer in manifest.layers() {
            wanted.push((self.check_layer("layer", layer)?, layer.size()));
        }
        for (digest, size) in wanted {
            self.blob(&digest, size);
        }
        Ok(())
    }

    /// One referrer manifest and its config and layers; returns it as a
    /// referrers list names it.
    fn referrer(&mut self, listed: &Descriptor) -> Result<Descriptor, RegistryError> {
        let digest = self.check_document("referrer manifest", listed)?;
        let doc = self.manifest(&digest.to_string(), Some(&digest), Some(listed.size()))?;
        let manifest: ImageManifest =
            serde_json::from_slice(&doc.bytes).map_err(|e| RegistryError::Malformed {
                reference: self.name.clone(),
                what: "referrer manifest",
                digest: digest.clone(),
                message: e.to_string(),
            })?;
        media::check_layers(&digest.to_string(), manifest.layers().len())
            .map_err(|e| self.limit(e))?;
        let config = manifest.config();
        let mut wanted = vec![(
            self.check_document("referrer config", config)?,
            config.size(),
        )];
        for layer in manifest.layers() {
            wanted.push((self.check_layer("referrer layer", layer)?, layer.size()));
        }
        for (blob, size) in wanted {
            self.blob(&blob, size);
        }
        self.fetch_pending()?;
        Ok(list_entry(
            &manifest,
            &doc.media_type,
            &digest,
            doc.bytes.len() as u64,
        ))
    }

    /// Queues one blob unless the store has it (then it is only noted).
    /// Blobs are noted in the order they are found, not the order their
    /// downloads finish, so what a pull lists is the same for any jobs.
    fn blob(&mut self, digest: &Digest, size: u64) {
        if self.store.contains(digest) {
            self.note(digest);
        } else if !self.pending.iter().any(|(d, _)| d == digest) {
            self.pending.push((digest.clone(), size));
        }
    }

    /// Fetches the queued blobs, up to the settings' jobs at once, largest
    /// first; after a failure no further blob starts, and the error of the
    /// first-queued blob that failed is returned.
    fn fetch_pending(&mut self) -> Result<(), RegistryError> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        let settings = self.client.settings();
        settings.progress.emit(Transfer::Started {
            blobs: pending.len(),
            bytes: pending.iter().map(|(_, size)| size).sum(),
        });
        let this = &*self;
        let result: Result<Vec<()>, RegistryError> = crate::parallel::map(
            &pending,
            settings.jobs,
            |(_, size)| *size,
            |(digest, size)| {
                this.fetch_blob(digest, *size)?;
                settings.progress.emit(Transfer::Blob {
                    bytes: *size,
                    moved: true,
                });
                Ok(())
            },
        );
        settings.progress.emit(Transfer::Finished);
        result?;
        for (digest, _) in &pending {
            self.note(digest);
        }
        Ok(())
    }

    /// Streams one blob into the store. One attempt is the GET (through
    /// every layer of the client) and the whole body into the store; a
    /// body that breaks off is picked up by `Range` where the registry
    /// serves ranges, else the attempt fails transiently and the retry
    /// layer starts the blob over. All of it draws on one budget.
    fn fetch_blob(&self, digest: &Digest, size: u64) -> Result<(), RegistryError> {
        let url = self
            .client
            .url(&format!("{}/blobs/{digest}", self.reference.repository));
        let (client, store, scopes) = (self.client, self.store, &self.scopes);
        let transport = client.transport();
        let budget = transport.budget(true);
        transport.retrying_within(&budget, || {
            let resp = client.exchange(&budget, &Req::new("GET", url.clone(), scopes.clone()))?;
            let status = resp.status();
            if !(200..300).contains(&status) {
                return Err(client.status_error("GET", &url, resp));
            }
            if let Some(n) = resp
                .header("Content-Length")
                .and_then(|l| l.trim().parse::<u64>().ok())
            {
                if n != size {
                    return Err(RegistryError::Protocol {
                        url: url.clone(),
                        message: format!("the registry sends {n} bytes for {digest}, whose descriptor says {size}"),
                    });
                }
            }
            // The rest of a body that broke off, asked for the same way
            // (authorization and redirects included).
            let reopen = |offset: u64| {
                let req = Req::new("GET", url.clone(), scopes.clone())
                    .header("Range", format!("bytes={offset}-"));
                client.exchange(&budget, &req).map_err(|e| match e {
                    RegistryError::Network(e) => *e,
                    e => TransportError::Protocol {
                        method: "GET",
                        url: url.clone(),
                        message: format!("asking for the rest: {e}"),
                    },
                })
            };
            let mut reader = transport.resuming(&budget, &url, resp, Box::new(reopen));
            store
                .put_verified(&mut reader, digest, size)
                .map_err(|e| match reader.failure() {
                    Some(t) => RegistryError::from(t),
                    None => RegistryError::Store {
                        reference: self.name.clone(),
                        error: e,
                    },
                })
        })
    }
}
