//! Artifacts and referrers (image-spec 1.1 "Guidelines for Artifact
//! Usage", distribution-spec 1.1 "Listing Referrers"): a manifest whose
//! `artifactType` says what it holds, whose config is the empty
//! descriptor and whose `subject` is the image it is about; the
//! descriptors and the index that list such manifests.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, ImageManifestBuilder, MediaType};

use super::model::{annotations_map, descriptor, image_index};
use super::{Digest, JsonBlob};

/// The empty config blob `{}` (image-spec "Guidance for an Empty
/// Descriptor").
pub(crate) const EMPTY_JSON: &[u8] = b"{}";

/// The descriptor of [`EMPTY_JSON`], its data inline.
pub(crate) fn empty_descriptor() -> Descriptor {
    let mut d = descriptor(MediaType::EmptyJSON, &Digest::of(EMPTY_JSON), 2);
    d.set_data(Some("e30=".into()));
    d
}

/// An artifact manifest of `artifact_type` holding the one `layer`, about
/// `subject`; `annotations` must not be empty (they tell artifacts apart).
pub(crate) fn artifact_manifest(
    artifact_type: &str,
    layer: Descriptor,
    subject: Descriptor,
    annotations: &BTreeMap<String, String>,
) -> ImageManifest {
    ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::from(artifact_type))
        .config(empty_descriptor())
        .layers(vec![layer])
        .subject(subject)
        .annotations(annotations_map(annotations).expect("artifact annotations are not empty"))
        .build()
        .expect("all manifest fields are set")
}

/// A referrers-list entry: `manifest`'s descriptor with its
/// `artifactType` (or, lacking one, its config's media type) and its
/// annotations, as distribution-spec says the list carries them, and as
/// a layout's `index.json` lists an image's attestations.
pub(crate) fn referrer_descriptor(
    manifest: &ImageManifest,
    media_type: MediaType,
    digest: &Digest,
    size: u64,
) -> Descriptor {
    let mut d = descriptor(media_type, digest, size);
    let artifact_type = manifest
        .artifact_type()
        .clone()
        .unwrap_or_else(|| manifest.config().media_type().clone());
    d.set_artifact_type(Some(artifact_type));
    d.set_annotations(manifest.annotations().clone());
    d
}

/// A referrers list: what the referrers API answers, and what the
/// `sha256-<hex>` fallback tag points at on registries without it.
pub(crate) fn referrers_index(manifests: Vec<Descriptor>) -> JsonBlob<ImageIndex> {
    JsonBlob::canonical(image_index(manifests, &BTreeMap::new()))
}
