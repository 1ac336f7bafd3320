//! oci-archive: an OCI image layout in a tar file, as `skopeo copy …
//! oci-archive:FILE` reads and writes it. The members are the layout's
//! files with the same bytes, in a fixed order: `oci-layout`,
//! `index.json`, `blobs/`, `blobs/sha256/`, then the blobs by hex digest.
//! Same build, same archive, byte for byte.

use std::collections::BTreeSet;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageManifest};

use super::archive::write_archive;
use super::layout::{index_json, OCI_LAYOUT};
use super::SinkError;
use crate::oci::media::MANIFEST_LIMIT;
use crate::oci::{our_digest, Built, Digest, Image};
use crate::source::target::ArchiveKind;
use crate::store::BlobStore;

/// Writes `built` (and the attestation manifests `referrers`, all blobs
/// in `store`) as an oci-archive at `dest`, its index naming the image
/// `tag`. Every member's mtime is `mtime` (the build's epoch).
pub(crate) fn write_oci_archive(
    dest: &Path,
    store: &BlobStore,
    built: &Built,
    tag: &str,
    referrers: &[Descriptor],
    mtime: u64,
) -> Result<(), SinkError> {
    let mut blobs = image_blobs(built);
    for r in referrers {
        blobs.extend(artifact_blobs(store, r, dest)?);
    }
    let index = index_json(built, tag, referrers);
    write_archive(dest, ArchiveKind::Oci, mtime, |w| {
        w.file("oci-layout", OCI_LAYOUT)?;
        w.file("index.json", &index)?;
        w.dir("blobs/")?;
        w.dir("blobs/sha256/")?;
        for digest in &blobs {
            w.blob(store, digest)?;
        }
        Ok(())
    })
}

/// Every blob `built` references: index, manifests, configs, layers.
/// A `BTreeSet` orders them by hex digest.
pub fn image_blobs(built: &Built) -> BTreeSet<Digest> {
    let mut blobs = BTreeSet::new();
    if let Some(index) = &built.index {
        blobs.insert(index.digest.clone());
    }
    for image in &built.images {
        add_image_blobs(&mut blobs, image);
    }
    blobs
}

/// Adds one image's manifest, config and layers to `blobs`.
pub(crate) fn add_image_blobs(blobs: &mut BTreeSet<Digest>, image: &Image) {
    blobs.insert(image.manifest.digest.clone());
    blobs.insert(image.config.digest.clone());
    blobs.extend(image.layers.iter().map(|l| l.digest.clone()));
}

/// An attestation manifest's own blobs: itself, its config, its layers
/// (its `subject` is the image, already counted).
fn artifact_blobs(
    store: &BlobStore,
    d: &Descriptor,
    archive: &Path,
) -> Result<Vec<Digest>, SinkError> {
    let blob_err = |source| SinkError::Blob {
        path: archive.to_path_buf(),
        error: source,
    };
    let digest = spec_to_ours(d.digest(), archive)?;
    let bytes = store
        .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
        .map_err(blob_err)?;
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| SinkError::Io {
        path: archive.to_path_buf(),
        error: std::io::Error::other(format!("attestation manifest {digest}: {e}")),
    })?;
    let mut out = vec![digest, spec_to_ours(manifest.config().digest(), archive)?];
    for l in manifest.layers() {
        out.push(spec_to_ours(l.digest(), archive)?);
    }
    Ok(out)
}

fn spec_to_ours(d: &oci_spec::image::Digest, archive: &Path) -> Result<Digest, SinkError> {
    our_digest(d).map_err(|e| SinkError::Io {
        path: archive.to_path_buf(),
        error: std::io::Error::other(e.to_string()),
    })
}
