//! docker-archive: the `docker save` format `docker load` and `podman
//! load` read, as Docker 25 and later write it. One tar holds both
//! descriptions of the image:
//!
//! - `manifest.json` and `repositories`, for readers of the classic
//!   format;
//! - `oci-layout` and `index.json`, so the same file is an oci-archive
//!   whose manifest is the one the build made, digest and all.
//!
//! The blobs are the build's own: layers stay compressed (`docker load`
//! and containers/image decompress a layer and check it against the
//! config's DiffID). One platform only, because `manifest.json` has no
//! notion of platforms. Attestations are left out: `docker load` would
//! not know what to do with them.

use std::collections::BTreeSet;
use std::path::Path;

use super::archive::write_archive;
use super::blobs::add_image_blobs;
use super::{SinkError, Stored};
use crate::oci::docker::{archive_index, manifest_json, repositories};
use crate::oci::layout::OCI_LAYOUT;
use crate::source::target::ArchiveKind;

/// Writes `image`, which must hold one platform, as a docker-archive at
/// `dest`, tagged `name:tag`. `name` is kept as written: a loader without
/// a registry host in the name adds its own default (podman:
/// `localhost/`). Every member's mtime is `mtime` (the build's epoch).
pub(crate) fn write_docker_archive(
    dest: &Path,
    image: Stored<'_>,
    name: &str,
    tag: &str,
    mtime: u64,
) -> Result<(), SinkError> {
    let [one] = image.built.images.as_slice() else {
        return Err(SinkError::OnePlatform {
            path: dest.to_path_buf(),
            count: image.built.images.len(),
        });
    };
    let manifest_json = manifest_json(one, name, tag);
    let repositories = repositories(one, name, tag);
    let index_json = archive_index(one, name, tag);
    let mut blobs = BTreeSet::new();
    add_image_blobs(&mut blobs, one);
    write_archive(dest, ArchiveKind::Docker, mtime, |w| {
        w.file("manifest.json", &manifest_json)?;
        if let Some(r) = &repositories {
            w.file("repositories", r)?;
        }
        w.file("oci-layout", OCI_LAYOUT)?;
        w.file("index.json", &index_json)?;
        w.dir("blobs/")?;
        w.dir("blobs/sha256/")?;
        for digest in &blobs {
            w.blob(image.store, digest)?;
        }
        Ok(())
    })
}
