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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use oci_spec::image::MediaType;

    use super::*;
    use crate::oci::model::{image_index, image_manifest};
    use crate::oci::{descriptor, json::to_canonical_vec};

    /// An index entry `Built` leaves out (BuildKit's `unknown/unknown`
    /// attestation manifest) is still listed by the index, so its blobs
    /// are written too.
    #[test]
    fn entries_built_leaves_out_are_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let put = |bytes: &[u8]| store.put_bytes(bytes).unwrap();
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = put(config);
        let config_d = descriptor(MediaType::ImageConfig, &config_digest, config.len() as u64);
        let run = to_canonical_vec(&image_manifest(
            MediaType::ImageManifest,
            config_d.clone(),
            Vec::new(),
            &BTreeMap::new(),
        ));
        let run_digest = put(&run);
        let extra_layer = put(b"an attestation");
        let extra = to_canonical_vec(&image_manifest(
            MediaType::ImageManifest,
            config_d,
            vec![descriptor(
                MediaType::from("application/vnd.in-toto+json"),
                &extra_layer,
                14,
            )],
            &BTreeMap::new(),
        ));
        let extra_digest = put(&extra);
        let mut run_d = descriptor(MediaType::ImageManifest, &run_digest, run.len() as u64);
        run_d.set_platform(Some(crate::oci::spec_platform(
            &"linux/amd64".parse().unwrap(),
        )));
        let mut extra_d = descriptor(MediaType::ImageManifest, &extra_digest, extra.len() as u64);
        extra_d.set_platform(Some(crate::oci::spec_platform(&crate::oci::Platform {
            os: "unknown".into(),
            architecture: "unknown".into(),
            variant: None,
        })));
        let index = to_canonical_vec(&image_index(vec![run_d, extra_d], &BTreeMap::new()));
        let index_digest = put(&index);
        let top = descriptor(MediaType::ImageIndex, &index_digest, index.len() as u64);
        let built = crate::source::read_built(&store, &top, "test").unwrap();
        assert_eq!(built.images.len(), 1, "Built leaves the unknown entry out");
        let image = Stored {
            built: &built,
            store: &store,
            referrers: &[],
        };
        let found = reachable(image, dir.path()).unwrap();
        let want = BTreeSet::from([
            index_digest,
            run_digest,
            config_digest,
            extra_digest,
            extra_layer,
        ]);
        assert_eq!(found, want);
    }
}
