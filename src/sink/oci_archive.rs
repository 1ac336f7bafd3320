//! oci-archive: an OCI image layout in a tar file, as `skopeo copy …
//! oci-archive:FILE` reads and writes it. The members are the layout's
//! files with the same bytes, in a fixed order: `oci-layout`,
//! `index.json`, `blobs/`, `blobs/sha256/`, then the blobs by hex digest.
//! Same build, same archive, byte for byte.

use std::path::Path;

use super::archive::write_archive;
use super::{blobs, SinkError, Stored};
use crate::oci::layout::{layout_index, OCI_LAYOUT};
use crate::source::target::ArchiveKind;

/// Writes `image` (and its referrers) as an oci-archive at `dest`, its
/// index naming the image `tag`. Every member's mtime is `mtime` (the
/// build's epoch).
pub(crate) fn write_oci_archive(
    dest: &Path,
    image: Stored<'_>,
    tag: &str,
    mtime: u64,
) -> Result<(), SinkError> {
    let blobs = blobs::reachable(image, dest)?;
    let index = layout_index(
        image.built.top_descriptor(),
        tag,
        &Default::default(),
        image.referrers,
    );
    write_archive(dest, ArchiveKind::Oci, mtime, |w| {
        w.file("oci-layout", OCI_LAYOUT)?;
        w.file("index.json", &index)?;
        w.dir("blobs/")?;
        w.dir("blobs/sha256/")?;
        for digest in &blobs {
            w.blob(image.store, digest)?;
        }
        Ok(())
    })
}
