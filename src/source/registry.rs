//! Opening an image from a registry: pulled into the user's
//! content-addressed cache, then read back like any other source.

use super::{read_built, Opened, SourceError};
use crate::oci::Digest;
use crate::registry::{self, Reference, RegistrySettings};
use crate::store::BlobStore;

/// Pulls `reference` into `cache` (blobs it already holds are not fetched
/// again) and opens it; the `Opened`'s store is `cache`. Referrers are
/// not fetched: `referrers` is empty.
pub fn open_registry(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
) -> Result<Opened, SourceError> {
    Ok(pull_registry(reference, settings, cache)?.0)
}

/// Like [`open_registry`], also returning every blob the image reaches
/// (manifests of every index entry included, even those `Built` leaves
/// out), so a layout written from it is complete.
pub fn pull_registry(
    reference: &Reference,
    settings: &RegistrySettings,
    cache: &BlobStore,
) -> Result<(Opened, Vec<Digest>), SourceError> {
    let pulled = registry::pull(reference, settings, cache)?;
    let name = reference.to_string();
    let built = read_built(cache, &pulled.top, &name)?;
    Ok((
        Opened {
            name,
            store: cache.clone(),
            built,
            referrers: Vec::new(),
            temp: None,
        },
        pulled.blobs,
    ))
}
