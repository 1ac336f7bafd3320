//! Which blobs an output must hold: every blob the image's top document
//! reaches, and its referrers'. `Built` leaves out index entries no
//! platform runs (BuildKit's `unknown/unknown` attestation manifests);
//! the index still lists them, so they are read from the store and
//! counted too, and a layout or archive never lists what it lacks.

use std::collections::BTreeSet;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::{SinkError, Stored};
use crate::oci::media::{self, sniff_media_type, MANIFEST_LIMIT};
use crate::oci::{our_digest, Digest, Image};
use crate::store::BlobStore;

/// Indexes inside indexes are followed this deep, as a pull follows them.
const MAX_DEPTH: u32 = 2;

/// Every blob `image` and its referrers reach, ordered by digest.
/// `dest` names the output, for messages.
pub(super) fn reachable(image: Stored<'_>, dest: &Path) -> Result<BTreeSet<Digest>, SinkError> {
    let mut blobs = BTreeSet::new();
    match &image.built.index {
        Some(index) => {
            blobs.insert(index.digest.clone());
            for d in index.value.manifests() {
                let digest = spec_to_ours(d.digest(), dest)?;
                match image
                    .built
                    .images
                    .iter()
                    .find(|i| i.manifest.digest == digest)
                {
                    Some(known) => add_image_blobs(&mut blobs, known),
                    None => add_document(&mut blobs, image.store, d, 1, dest)?,
                }
            }
        }
        None => {
            for known in &image.built.images {
                add_image_blobs(&mut blobs, known);
            }
        }
    }
    for r in image.referrers {
        add_document(&mut blobs, image.store, r, 1, dest)?;
    }
    Ok(blobs)
}

/// Adds one image's manifest, config and layers to `blobs`.
pub(super) fn add_image_blobs(blobs: &mut BTreeSet<Digest>, image: &Image) {
    blobs.insert(image.manifest.digest.clone());
    blobs.insert(image.config.digest.clone());
    blobs.extend(image.layers.iter().map(|l| l.digest.clone()));
}

/// Adds the manifest or index `d` names (read from `store`, verified) and
/// what it references. A manifest's `subject` is not followed: it is the
/// image, already counted.
fn add_document(
    blobs: &mut BTreeSet<Digest>,
    store: &BlobStore,
    d: &Descriptor,
    depth: u32,
    dest: &Path,
) -> Result<(), SinkError> {
    let digest = spec_to_ours(d.digest(), dest)?;
    let bytes = store
        .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
        .map_err(|error| SinkError::Blob {
            path: dest.to_path_buf(),
            error,
        })?;
    let malformed = |e: serde_json::Error| SinkError::Io {
        path: dest.to_path_buf(),
        error: std::io::Error::other(format!("document {digest}: {e}")),
    };
    if media::is_index(sniff_media_type(d.media_type(), &bytes).as_ref()) {
        if depth >= MAX_DEPTH {
            return Err(SinkError::Io {
                path: dest.to_path_buf(),
                error: std::io::Error::other(format!(
                    "index {digest}: indexes nest deeper than {MAX_DEPTH}"
                )),
            });
        }
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(malformed)?;
        blobs.insert(digest);
        for child in index.manifests() {
            add_document(blobs, store, child, depth + 1, dest)?;
        }
        return Ok(());
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(malformed)?;
    blobs.insert(digest);
    blobs.insert(spec_to_ours(manifest.config().digest(), dest)?);
    for l in manifest.layers() {
        blobs.insert(spec_to_ours(l.digest(), dest)?);
    }
    Ok(())
}

fn spec_to_ours(d: &oci_spec::image::Digest, dest: &Path) -> Result<Digest, SinkError> {
    our_digest(d).map_err(|e| SinkError::Io {
        path: dest.to_path_buf(),
        error: std::io::Error::other(e.to_string()),
    })
}
