//! docker-archive: the `docker save` format `docker load` and `podman
//! load` read, as Docker 25 and later write it. One tar holds both
//! descriptions of the image:
//!
//! - `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`, paths into
//!   `blobs/`) and `repositories`, for readers of the classic format;
//! - `oci-layout` and `index.json`, so the same file is an oci-archive
//!   whose manifest is the one the build made, digest and all.
//!
//! The blobs are the build's own: layers stay compressed (`docker load`
//! and containers/image decompress a layer and check it against the
//! config's DiffID). One platform only, because `manifest.json` has no
//! notion of platforms. Attestations are left out: `docker load` would
//! not know what to do with them.

use std::collections::BTreeMap;
use std::path::Path;

use super::archive::write_archive;
use super::layout::OCI_LAYOUT;
use super::oci_archive::add_image_blobs;
use super::SinkError;
use crate::oci::json::to_canonical_vec;
use crate::oci::model::{annotations_map, ANNOTATION_REF_NAME};
use crate::oci::Image;
use crate::source::target::ArchiveKind;
use crate::store::BlobStore;

/// The annotation containerd, Docker 25+ and podman read an image's full
/// name from in an archive's `index.json`.
pub(crate) const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(serde::Serialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn blob_path(digest: &crate::oci::Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Writes `image` (its blobs in `store`) as a docker-archive at `dest`,
/// tagged `name:tag`. `name` is kept as written: a loader without a
/// registry host in the name adds its own default (podman: `localhost/`).
/// Every member's mtime is `mtime` (the build's epoch).
pub(crate) fn write_docker_archive(
    dest: &Path,
    store: &BlobStore,
    image: &Image,
    name: &str,
    tag: &str,
    mtime: u64,
) -> Result<(), SinkError> {
    let repo_tag = format!("{name}:{tag}");
    let manifest_json = to_canonical_vec(&[ManifestItem {
        config: blob_path(&image.config.digest),
        repo_tags: vec![repo_tag.clone()],
        layers: image.layers.iter().map(|l| blob_path(&l.digest)).collect(),
    }]);
    // The classic `repositories` file maps name and tag to the top
    // layer's id; Docker 25 writes the top layer's DiffID there.
    let repositories = image.layers.last().map(|top| {
        let tags = BTreeMap::from([(tag.to_string(), top.diff_id.hex().to_string())]);
        to_canonical_vec(&BTreeMap::from([(name.to_string(), tags)]))
    });

    let mut top = image.manifest_descriptor();
    let ann = BTreeMap::from([
        (ANNOTATION_CONTAINERD_NAME.to_string(), repo_tag),
        (ANNOTATION_REF_NAME.to_string(), tag.to_string()),
    ]);
    top.set_annotations(annotations_map(&ann));
    let index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(oci_spec::image::MediaType::ImageIndex)
        .manifests(vec![top])
        .build()
        .expect("index fields are set");
    let index_json = to_canonical_vec(&index);

    let mut blobs = std::collections::BTreeSet::new();
    add_image_blobs(&mut blobs, image);

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
            w.blob(store, digest)?;
        }
        Ok(())
    })
}
