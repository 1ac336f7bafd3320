//! Opening an image from a registry: pulled into the user's
//! content-addressed cache with its referrers (attestations), then read
//! back like any other source. Where registries.conf gives the name
//! mirrors, they are tried first, in order, then its location; what any
//! of them serves is checked like any registry's answer.

use super::{read_built_with, LayerCheck, Opened, SourceError, Unchecked};
use crate::oci::Digest;
use crate::registry::pull::{pull_referrers, pull_with, PulledReferrers};
use crate::registry::{Client, Reference, RegistrySettings};
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
    let (opened, _) = from_endpoints(reference, settings, |at| {
        let client = Client::new(&at.registry, settings)?;
        Ok(open_with(&client, at, cache, LayerCheck::Later)?.0)
    })?;
    Ok(Opened {
        name: reference.to_string(),
        ..opened
    })
}

/// What `open` makes of `reference` at the first place it may come from:
/// its mirrors in the order registries.conf lists them, then its location
/// (or the reference itself). A mirror that fails is passed over, and
/// said in the messages returned; the last place's failure is the error.
fn from_endpoints<T>(
    reference: &Reference,
    settings: &RegistrySettings,
    mut open: impl FnMut(&Reference) -> Result<T, SourceError>,
) -> Result<(T, Vec<String>), SourceError> {
    let endpoints = settings.registries.pull_endpoints(reference)?;
    let mut passed = Vec::new();
    let last = endpoints.len() - 1;
    for (i, at) in endpoints.iter().enumerate() {
        match open(&at.reference) {
            Ok(v) => return Ok((v, passed)),
            Err(e) if i < last => passed.push(format!(
                "{reference}: the mirror {} failed, so the next place was asked: {e}",
                at.reference
            )),
            Err(e) => return Err(e),
        }
    }
    unreachable!("pull_endpoints lists the location last")
}

/// What is done with attestations that cannot be read beside an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Referrers {
    /// `verify`: a list that cannot be read is an error, and a referrer
    /// that could not be pulled whole is still listed, so the checks name
    /// it as damaged instead of overlooking it.
    Strict,
    /// `pull`, `push`, `inspect`, `diff`: attestations are secondary to
    /// the image. What cannot be read is left out, and said in the
    /// `Opened`'s warnings.
    Lenient,
}

/// Like [`open_registry`], with the image's `referrers`: the attestations
/// the registry lists for the image or any of its manifests, pulled into
/// `cache`, those that cannot be read taken as `policy` says.
pub(crate) fn open_registry_with_referrers(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
    policy: Referrers,
) -> Result<Opened, SourceError> {
    Ok(fetch(reference, settings, cache, policy, LayerCheck::Hash)?.0)
}

/// Like [`open_registry_with_referrers`], its layers not hashed here:
/// for a caller that checks them as it reads them (`Unchecked`).
pub(crate) fn open_registry_deferred(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
    policy: Referrers,
) -> Result<Opened, SourceError> {
    Ok(fetch(reference, settings, cache, policy, LayerCheck::Later)?.0)
}

/// Like [`open_registry_with_referrers`], leniently, for an image that is
/// written out whole (`stele pull`): a referrer that cannot be pulled
/// whole is left out of what the layout lists (a layout must not list
/// what it lacks), with a warning; its layers are left for the caller to
/// check (`Unchecked`). Every blob the image reaches is in `cache`, the
/// manifests of index entries `Built` leaves out included.
pub(crate) fn pull_registry(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
) -> Result<Unchecked, SourceError> {
    let (opened, _) = fetch(
        reference,
        settings,
        cache,
        Referrers::Lenient,
        LayerCheck::Later,
    )?;
    Ok(Unchecked(opened))
}

fn fetch(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
    policy: Referrers,
    check: LayerCheck,
) -> Result<(Opened, Vec<Digest>), SourceError> {
    let ((client, at, mut opened, mut blobs), passed) =
        from_endpoints(reference, settings, |at| {
            let client = Client::new(&at.registry, settings)?;
            let (opened, blobs) = open_with(&client, at, cache, check)?;
            Ok((client, at.clone(), opened, blobs))
        })?;
    opened.name = reference.to_string();
    opened.warnings.extend(passed);
    let built = &opened.built;
    // Attestations name the index or one platform's manifest as subject.
    let mut subjects: Vec<Digest> = vec![built.digest().clone()];
    for image in &built.images {
        if !subjects.contains(&image.manifest.digest) {
            subjects.push(image.manifest.digest.clone());
        }
    }
    let PulledReferrers {
        mut referrers,
        blobs: referrer_blobs,
        incomplete,
        unlisted,
    } = pull_referrers(&client, &at, &subjects, cache)?;
    for digest in referrer_blobs {
        if !blobs.contains(&digest) {
            blobs.push(digest);
        }
    }
    match policy {
        Referrers::Strict => {
            if let Some(e) = unlisted.into_iter().next() {
                return Err(SourceError::UnreadableReferrers {
                    image: opened.name,
                    source: Box::new(e),
                });
            }
        }
        Referrers::Lenient => {
            for e in &unlisted {
                opened.warnings.push(format!(
                    "{}: its attestations cannot be listed, so none are carried: {e}",
                    opened.name
                ));
            }
            for (listed, e) in &incomplete {
                opened.warnings.push(format!(
                    "{}: the attestation {} it lists is left out, since it cannot be pulled whole: {e}",
                    opened.name,
                    listed.digest()
                ));
                referrers.retain(|d| d.digest() != listed.digest());
            }
        }
    }
    opened.referrers = referrers;
    Ok((opened, blobs))
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
        warnings: Vec::new(),
    };
    Ok((opened, pulled.blobs))
}
