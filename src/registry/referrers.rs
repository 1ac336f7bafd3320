//! Referrers (distribution-spec v1.1 "Listing Referrers"): attestation
//! manifests whose `subject` is an image. They are pushed by digest; a
//! registry with the referrers API indexes them itself, and for one without
//! it stele maintains the "Referrers Tag Schema" fallback: an index tagged
//! `sha256-<hex of the subject>` listing them, merged with what it held.
//! Listing reads the same two places, the API first.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::client::{pull_scope, push_scope, Client, Req};
use super::manifest::put_manifest;
use super::{PushReport, RegistryError};
use crate::oci::artifact::{referrer_descriptor, referrers_index};
use crate::oci::json::to_canonical_vec;
use crate::oci::media::{LimitError, INDEX_ENTRIES_LIMIT, MANIFEST_LIMIT, OCI_INDEX, OCI_MANIFEST};
use crate::oci::model::our_digest;
use crate::oci::Digest;
use crate::store::BlobStore;

/// The fallback tag for `subject`.
pub(crate) fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

fn sha256_of(d: &Descriptor, repository: &str) -> Result<Digest, RegistryError> {
    our_digest(d.digest()).map_err(|e| RegistryError::Reference {
        input: repository.to_string(),
        reason: e.to_string(),
    })
}

/// Referrer manifests to push (all in a store), read and checked before
/// anything is sent.
pub(crate) struct Referrers {
    manifests: Vec<ReadReferrer>,
}

struct ReadReferrer {
    digest: Digest,
    bytes: Vec<u8>,
    manifest: ImageManifest,
    subject: Digest,
}

impl Referrers {
    /// Reads each of `referrers` (manifests in `store` whose `subject` is
    /// an image being pushed to `repository`).
    pub(crate) fn read(
        repository: &str,
        store: &BlobStore,
        referrers: &[Descriptor],
    ) -> Result<Referrers, RegistryError> {
        let mut manifests = Vec::with_capacity(referrers.len());
        for d in referrers {
            let digest = sha256_of(d, repository)?;
            let bytes = store
                .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
                .map_err(|e| RegistryError::Store {
                    reference: repository.to_string(),
                    error: e,
                })?;
            let manifest: ImageManifest =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Malformed {
                    reference: repository.to_string(),
                    what: "referrer manifest",
                    digest: digest.clone(),
                    message: e.to_string(),
                })?;
            let Some(subject) = manifest.subject() else {
                return Err(RegistryError::Malformed {
                    reference: repository.to_string(),
                    what: "referrer manifest",
                    digest,
                    message: "it has no subject".into(),
                });
            };
            let subject = sha256_of(subject, repository)?;
            // Checked now, so a bad digest fails before any upload.
            for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
                sha256_of(blob, repository)?;
            }
            manifests.push(ReadReferrer {
                digest,
                bytes,
                manifest,
                subject,
            });
        }
        Ok(Referrers { manifests })
    }

    /// The config and layer blobs of every referrer, in order.
    pub(crate) fn blobs(&self) -> Vec<(Digest, u64)> {
        self.manifests
            .iter()
            .flat_map(|r| std::iter::once(r.manifest.config()).chain(r.manifest.layers()))
            .map(|b| {
                let digest = our_digest(b.digest()).expect("checked when read");
                (digest, b.size())
            })
            .collect()
    }

    /// Pushes each referrer manifest (its blobs must be in the registry
    /// already), then makes each subject's referrers findable.
    pub(crate) fn push(
        &self,
        client: &Client,
        repository: &str,
        report: &mut PushReport,
    ) -> Result<(), RegistryError> {
        let mut by_subject: BTreeMap<Digest, Vec<Descriptor>> = BTreeMap::new();
        let mut indexed_by_registry = BTreeSet::new();
        for r in &self.manifests {
            let media_type = r
                .manifest
                .media_type()
                .as_ref()
                .map_or(OCI_MANIFEST.to_string(), |t| t.to_string());
            let oci_subject = put_manifest(
                client,
                repository,
                &r.digest.to_string(),
                &media_type,
                &r.bytes,
                &r.digest,
                report,
            )?;
            report.referrers_pushed += 1;
            if oci_subject.is_some() {
                indexed_by_registry.insert(r.subject.clone());
            }
            by_subject
                .entry(r.subject.clone())
                .or_default()
                .push(list_entry(
                    &r.manifest,
                    &media_type,
                    &r.digest,
                    r.bytes.len() as u64,
                ));
        }
        for (subject, entries) in by_subject {
            if indexed_by_registry.contains(&subject)
                || has_referrers_api(client, repository, &subject)?
            {
                continue;
            }
            update_fallback_tag(client, repository, &subject, entries, report)?;
        }
        Ok(())
    }
}

/// A referrers-list entry for `manifest`, as distribution-spec says the
/// list carries it.
pub(super) fn list_entry(
    manifest: &ImageManifest,
    media_type: &str,
    digest: &Digest,
    size: u64,
) -> Descriptor {
    referrer_descriptor(manifest, MediaType::from(media_type), digest, size)
}

/// The manifests listed as referrers of `subject` in `repository`: the
/// referrers API's list when the registry has the API, else the fallback
/// tag's index; empty when neither lists any.
pub(super) fn list_referrers(
    client: &Client,
    repository: &str,
    subject: &Digest,
) -> Result<Vec<Descriptor>, RegistryError> {
    let scope = pull_scope(repository);
    let listed = match referrers_api(client, repository, subject, &scope)? {
        Some(index) => index.manifests().clone(),
        None => fallback_list(client, repository, subject, &scope)?.unwrap_or_default(),
    };
    // Each entry costs a request: the same bound as an image's index.
    if listed.len() > INDEX_ENTRIES_LIMIT {
        return Err(RegistryError::Limit {
            reference: repository.to_string(),
            error: LimitError::TooManyEntries {
                index: format!("the referrers list of {subject}"),
                count: listed.len(),
            },
        });
    }
    Ok(listed)
}

/// Whether `GET /v2/<name>/referrers/<subject>` works: 200 with an index.
fn has_referrers_api(
    client: &Client,
    repository: &str,
    subject: &Digest,
) -> Result<bool, RegistryError> {
    Ok(referrers_api(client, repository, subject, &push_scope(repository))?.is_some())
}

/// The referrers API's index for `subject`; `None` when the registry has
/// no such API (distribution-spec 1.1: a 404; older registries answer
/// with other refusals too).
fn referrers_api(
    client: &Client,
    repository: &str,
    subject: &Digest,
    scope: &str,
) -> Result<Option<ImageIndex>, RegistryError> {
    let url = client.url(&format!("{repository}/referrers/{subject}"));
    let answer = client.fetch_document(
        &Req::new("GET", url, vec![scope.to_string()])
            .header("Accept", OCI_INDEX)
            .allow(&[400, 401, 403, 404, 405, 406, 501]),
        MANIFEST_LIMIT,
    )?;
    if answer.status != 200 {
        return Ok(None);
    }
    Ok(serde_json::from_slice::<ImageIndex>(&answer.bytes).ok())
}

/// What the fallback tag of `subject` lists; `None` when there is no
/// such tag.
fn fallback_list(
    client: &Client,
    repository: &str,
    subject: &Digest,
    scope: &str,
) -> Result<Option<Vec<Descriptor>>, RegistryError> {
    let tag = fallback_tag(subject);
    let url = client.url(&format!("{repository}/manifests/{tag}"));
    let answer = client.fetch_document(
        &Req::new("GET", url.clone(), vec![scope.to_string()])
            .header("Accept", OCI_INDEX)
            .allow(&[404]),
        MANIFEST_LIMIT,
    )?;
    if answer.status == 404 {
        return Ok(None);
    }
    let index: ImageIndex = serde_json::from_slice(&answer.bytes).map_err(|e| RegistryError::Protocol {
        url: url.clone(),
        message: format!(
            "the referrers tag {tag} holds something that is not an index ({e}); delete that tag so stele can list the referrers there"
        ),
    })?;
    Ok(Some(index.manifests().clone()))
}

/// Adds `entries` to the index tagged `sha256-<subject hex>`, creating it
/// when missing. Entries are kept unique by digest and sorted by it, so the
/// same set of referrers gives the same index bytes whoever pushed them.
fn update_fallback_tag(
    client: &Client,
    repository: &str,
    subject: &Digest,
    entries: Vec<Descriptor>,
    report: &mut PushReport,
) -> Result<(), RegistryError> {
    let tag = fallback_tag(subject);
    let existing = match fallback_list(client, repository, subject, &push_scope(repository)) {
        Ok(listed) => listed.unwrap_or_default(),
        // What the tag holds cannot be read: replacing it could lose
        // someone's manifest, so it stays, and the push goes on.
        Err(e @ (RegistryError::Protocol { .. } | RegistryError::Limit { .. })) => {
            report.warnings.push(format!(
                "{e}; the attestations of {subject} were pushed, but are not listed under {tag}, so clients of registries without the referrers API will not find them"
            ));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut merged: BTreeMap<String, Descriptor> = existing
        .iter()
        .map(|d| (d.digest().to_string(), d.clone()))
        .collect();
    for e in entries {
        merged.insert(e.digest().to_string(), e);
    }
    let merged: Vec<Descriptor> = merged.into_values().collect();
    let mut sorted_existing = existing;
    sorted_existing.sort_by_key(|d| d.digest().to_string());
    if !sorted_existing.is_empty()
        && to_canonical_vec(&sorted_existing) == to_canonical_vec(&merged)
    {
        return Ok(());
    }
    let index = referrers_index(merged);
    put_manifest(
        client,
        repository,
        &tag,
        OCI_INDEX,
        &index.bytes,
        &index.digest,
        report,
    )?;
    Ok(())
}
