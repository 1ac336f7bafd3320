//! The files `docker save` writes beside the blobs, for readers of the
//! classic format (`docker load`, `podman load`): `manifest.json`
//! (`[{"Config", "RepoTags", "Layers"}]`, paths into `blobs/`) and
//! `repositories`; and how the archive's `index.json` names the image
//! for containerd, Docker 25+ and podman.

use std::collections::BTreeMap;

use super::json::to_canonical_vec;
use super::layout::layout_index;
use super::{Digest, Image};

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

fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// `manifest.json`: `image` tagged `name:tag`.
pub(crate) fn manifest_json(image: &Image, name: &str, tag: &str) -> Vec<u8> {
    to_canonical_vec(&[ManifestItem {
        config: blob_path(&image.config.digest),
        repo_tags: vec![format!("{name}:{tag}")],
        layers: image.layers.iter().map(|l| blob_path(&l.digest)).collect(),
    }])
}

/// `repositories`: name and tag to the top layer's id, which Docker 25
/// writes as the top layer's DiffID; `None` for an image without layers.
pub(crate) fn repositories(image: &Image, name: &str, tag: &str) -> Option<Vec<u8>> {
    image.layers.last().map(|top| {
        let tags = BTreeMap::from([(tag.to_string(), top.diff_id.hex().to_string())]);
        to_canonical_vec(&BTreeMap::from([(name.to_string(), tags)]))
    })
}

/// The archive's `index.json`: `image`'s manifest named `tag`, and
/// `name:tag` for containerd. No referrers: `docker load` would not know
/// what to do with them.
pub(crate) fn archive_index(image: &Image, name: &str, tag: &str) -> Vec<u8> {
    let containerd = BTreeMap::from([(
        ANNOTATION_CONTAINERD_NAME.to_string(),
        format!("{name}:{tag}"),
    )]);
    layout_index(image.manifest_descriptor(), tag, &containerd, &[])
}
