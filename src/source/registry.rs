//! Opening an image from a registry: pulled into the user's
//! content-addressed cache with its referrers (attestations), then read
//! back like any other source.

use super::{read_built_with, LayerCheck, Opened, SourceError, Unchecked};
use crate::oci::Digest;
use crate::registry::pull::{pull_referrers, pull_with, PulledReferrers};
use crate::registry::{Client, Reference, RegistryError, RegistrySettings};
use crate::store::BlobStore;

/// Pulls `reference` into `cache` (blobs it already holds are not fetched
/// again) and opens it; the `Opened`'s store is `cache`. Referrers are not
/// fetched (`referrers` is empty): a base image needs none, and a pinned
/// base already in the cache then needs no network at all. Layers are not
/// hashed here: it opens base images, whose layers are read through
/// their views and copied out checked (`open_layout_base`).
pub(crate) fn open_registry(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
) -> Result<Opened, SourceError> {
    let client = Client::new(&reference.registry, settings)?;
    Ok(open_with(&client, reference, cache, LayerCheck::Later)?.0)
}

/// Like [`open_registry`], with the image's `referrers`: the attestations
/// the registry lists for the image or any of its manifests, pulled into
/// `cache`. One that could not be pulled whole is still listed, so
/// `verify` names it as damaged instead of overlooking it.
pub(crate) fn open_registry_with_referrers(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
) -> Result<Opened, SourceError> {
    Ok(fetch(reference, settings, cache, LayerCheck::Hash)?.0)
}

/// Like [`open_registry_with_referrers`], its layers not hashed here:
/// for a caller that checks them as it reads them (`Unchecked`).
pub(crate) fn open_registry_deferred(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
) -> Result<Opened, SourceError> {
    Ok(fetch(reference, settings, cache, LayerCheck::Later)?.0)
}

/// Like [`open_registry_with_referrers`], for an image that is written
/// out whole (`stele pull`): a referrer that cannot be pulled whole is an
/// error here, since a layout must not list what it lacks; its layers
/// are left for the caller to check (`Unchecked`). Every blob the image
/// reaches is in `cache`, the manifests of index entries `Built` leaves
/// out included.
pub(crate) fn pull_registry(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
) -> Result<Unchecked, SourceError> {
    let (opened, _, incomplete) = fetch(reference, settings, cache, LayerCheck::Later)?;
    if let Some(source) = incomplete.into_iter().next() {
        return Err(SourceError::IncompleteReferrer {
            image: opened.name,
            source: Box::new(source),
        });
    }
    Ok(Unchecked(opened))
}

fn fetch(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
    check: LayerCheck,
) -> Result<(Opened, Vec<Digest>, Vec<RegistryError>), SourceError> {
    let client = Client::new(&reference.registry, settings)?;
    let (mut opened, mut blobs) = open_with(&client, reference, cache, check)?;
    let built = &opened.built;
    // Attestations name the index or one platform's manifest as subject.
    let mut subjects: Vec<Digest> = vec![built.digest().clone()];
    for image in &built.images {
        if !subjects.contains(&image.manifest.digest) {
            subjects.push(image.manifest.digest.clone());
        }
    }
    let PulledReferrers {
        referrers,
        blobs: referrer_blobs,
        incomplete,
    } = pull_referrers(&client, reference, &subjects, cache)?;
    for digest in referrer_blobs {
        if !blobs.contains(&digest) {
            blobs.push(digest);
        }
    }
    opened.referrers = referrers;
    Ok((opened, blobs, incomplete))
}

/// The image alone, opened, and every blob it reaches.
fn open_with(
    client: &Client,
    reference: &Reference,
    cache: &BlobStore,
    check: LayerCheck,
) -> Result<(Opened, Vec<Digest>), SourceError> {
    let pulled = pull_with(client, reference, cache)?;
    let name = reference.to_string();
    let built = read_built_with(cache, &pulled.top, &name, check)?;
    let opened = Opened {
        name,
        store: cache.clone(),
        built,
        referrers: Vec::new(),
        temp: None,
    };
    Ok((opened, pulled.blobs))
}
