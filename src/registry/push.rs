//! Pushing an image or index (distribution-spec "Pushing manifests"):
//! every blob first, then each manifest by digest, the index by digest,
//! the top object by tag, then the referrers (attestations).

use std::collections::BTreeSet;

use oci_spec::image::Descriptor;

use super::client::{drain, push_scope, Client, Req};
use super::manifest::put_manifest;
use super::reference::Reference;
use super::referrers::Referrers;
use super::upload::{push_blobs, upload_location};
use super::{PushReport, RegistryError, RegistrySettings};
use crate::oci::media::{OCI_INDEX, OCI_MANIFEST};
use crate::oci::{Built, Digest};
use crate::store::BlobStore;

#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// Repositories of the same registry that may already hold some of the
    /// blobs: each missing blob is first offered as a cross-repository
    /// mount from these, in order, before it is uploaded.
    pub mount_from: Vec<String>,
    /// What to add to cosign's `.sig` and `.att` tags of the pushed
    /// digests, after the referrers (`registry::cosign`).
    pub attachments: Vec<crate::oci::cosign::Attachment>,
}

/// Checks, before any work, that `reference` may be pushed to, as the
/// output folder of a build is checked: the registry is not blocked
/// (registries.conf), answers `/v2/` (its TLS, certificates and proxy
/// work), accepts the credentials and lets them push to the repository.
/// That last is asked the way crane and buildah ask it: an upload session
/// is started, then cancelled. Ok means nothing was left in the registry
/// (a registry that cannot cancel lets the session expire), and returns
/// the client, its tokens kept for the push.
pub fn check_push_target(
    reference: &Reference,
    settings: &RegistrySettings,
) -> Result<Client, RegistryError> {
    settings.registries.check_push(reference)?;
    let client = Client::new(&reference.registry, settings)?;
    drain(client.send(&Req::new("GET", client.url(""), Vec::new()).allow(&[401]))?);
    let scopes = vec![push_scope(&reference.repository)];
    let url = client.url(&format!("{}/blobs/uploads/", reference.repository));
    let resp = client.send(&Req::new("POST", url.clone(), scopes.clone()).body(&[]))?;
    let session = upload_location(&resp, &url)?;
    let _ =
        client.send(&Req::new("DELETE", session, scopes).allow(&[400, 401, 403, 404, 405, 501]));
    Ok(client)
}

/// Pushes `built` (its blobs in `store`) and its `referrers` (manifests in
/// `store` whose `subject` is one of its manifests) to the repository
/// `reference` names. The top object is tagged when the reference has a
/// tag; a reference with a digest must name `built`'s digest. Returns the
/// pushed digest and what was sent.
pub fn push_built(
    built: &Built,
    store: &BlobStore,
    referrers: &[Descriptor],
    reference: &Reference,
    settings: &RegistrySettings,
    options: &PushOptions,
) -> Result<(Digest, PushReport), RegistryError> {
    let client = Client::new(&reference.registry, settings)?;
    push_built_with(&client, built, store, referrers, reference, options)
}

/// [`push_built`] through a client already made (and its tokens), e.g.
/// the one [`check_push_target`] returned.
pub fn push_built_with(
    client: &Client,
    built: &Built,
    store: &BlobStore,
    referrers: &[Descriptor],
    reference: &Reference,
    options: &PushOptions,
) -> Result<(Digest, PushReport), RegistryError> {
    if let Some(d) = &reference.digest {
        if d != built.digest() {
            return Err(RegistryError::Reference {
                input: reference.to_string(),
                reason: format!(
                    "it pins {d}, but the image being pushed is {}; drop the @digest or push the image it names",
                    built.digest()
                ),
            });
        }
    }
    let repository = &reference.repository;
    let mut report = PushReport::default();
    // Every blob, the image's and its referrers', is sent before the first
    // manifest, so a failed blob leaves nothing in the registry that names
    // it, and all of them share the jobs.
    let referrers = Referrers::read(repository, store, referrers)?;
    let mut seen = BTreeSet::new();
    let mut blobs = Vec::new();
    for image in &built.images {
        let config = (&image.config.digest, image.config.size());
        let layers = image.layers.iter().map(|l| (&l.digest, l.size));
        for (digest, size) in std::iter::once(config).chain(layers) {
            if seen.insert(digest.clone()) {
                blobs.push((digest.clone(), size));
            }
        }
    }
    for (digest, size) in referrers.blobs() {
        if seen.insert(digest.clone()) {
            blobs.push((digest, size));
        }
    }
    push_blobs(
        client,
        repository,
        store,
        &blobs,
        &options.mount_from,
        &mut report,
    )?;
    // Each manifest, then the index, by digest (a registry refuses an index
    // whose manifests it lacks); the last is the top document, which the
    // tag names.
    let media_type = |given: &Option<oci_spec::image::MediaType>, default: &str| {
        given
            .as_ref()
            .map_or(default.to_string(), |t| t.to_string())
    };
    let mut documents: Vec<(&[u8], &Digest, String)> = built
        .images
        .iter()
        .map(|i| {
            let m = &i.manifest;
            let mt = media_type(m.value.media_type(), OCI_MANIFEST);
            (m.bytes.as_slice(), &m.digest, mt)
        })
        .collect();
    if let Some(index) = &built.index {
        let mt = media_type(index.value.media_type(), OCI_INDEX);
        documents.push((index.bytes.as_slice(), &index.digest, mt));
    }
    for (bytes, digest, mt) in &documents {
        let by_digest = digest.to_string();
        put_manifest(
            client,
            repository,
            &by_digest,
            mt,
            bytes,
            digest,
            &mut report,
        )?;
    }
    if let (Some(tag), Some((bytes, digest, mt))) = (&reference.tag, documents.last()) {
        put_manifest(client, repository, tag, mt, bytes, digest, &mut report)?;
    }
    referrers.push(client, repository, &mut report)?;
    super::cosign::push_attachments(client, repository, &options.attachments, &mut report)?;
    report.retries = client.retries();
    Ok((built.digest().clone(), report))
}
