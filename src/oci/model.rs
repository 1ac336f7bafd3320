//! Images and indexes as plain values: the oci-spec document, its canonical
//! bytes and their digest, computed once when the value is made.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest,
    ImageManifestBuilder, MediaType,
};

use super::json::to_canonical_vec;
use super::{Digest, Platform};

pub(crate) const ANNOTATION_ENCODING: &str = "dev.stele.encoding";
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub(crate) const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
pub(crate) const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// `[annotations]` keys stele also writes as labels, so they survive
/// `docker save`/`load` too.
pub(crate) const COPIED_ANNOTATIONS: [&str; 3] = [
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.version",
];

/// Why `key` cannot come from a recipe's `[annotations]` or `[config]
/// labels`, when stele sets it itself: a recipe value would either be
/// overwritten silently or contradict the fact the image records.
pub(crate) fn set_by_stele(key: &str) -> Option<&'static str> {
    match key {
        ANNOTATION_CREATED => Some("from the epoch"),
        ANNOTATION_BASE_NAME | ANNOTATION_BASE_DIGEST => Some("from [base]"),
        k if k.starts_with("dev.stele.") => Some("the dev.stele. keys are stele's provenance"),
        _ => None,
    }
}

/// Converts our digest to oci-spec's; ours is always a valid sha256.
pub(crate) fn spec_digest(d: &Digest) -> oci_spec::image::Digest {
    oci_spec::image::Digest::from_str(&d.to_string()).expect("sha256 digests are valid")
}

/// Converts oci-spec's digest to ours; refuses algorithms other than sha256.
pub(crate) fn our_digest(
    d: &oci_spec::image::Digest,
) -> Result<Digest, super::digest::DigestParseError> {
    d.to_string().parse()
}

pub fn descriptor(media_type: MediaType, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(media_type, size, spec_digest(digest))
}

pub(crate) fn annotations_map(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    if map.is_empty() {
        None
    } else {
        Some(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// `d` with `annotations` in place of its own (none when the map is
/// empty): how a layout's `index.json` names an image, or what an
/// attestation's layer says it holds.
pub(crate) fn annotate(mut d: Descriptor, annotations: &BTreeMap<String, String>) -> Descriptor {
    d.set_annotations(annotations_map(annotations));
    d
}

/// An image manifest (image-spec `manifest.md`) of `media_type`: OCI's,
/// or Docker's schema 2 for the image a docker-archive describes.
pub(crate) fn image_manifest(
    media_type: MediaType,
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: &BTreeMap<String, String>,
) -> ImageManifest {
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(media_type)
        .config(config)
        .layers(layers);
    if let Some(a) = annotations_map(annotations) {
        builder = builder.annotations(a);
    }
    builder
        .build()
        .expect("all required manifest fields are set")
}

/// An image index (image-spec `image-index.md`) listing `manifests` in
/// the order given: a build's platforms, a layout's `index.json`, a
/// referrers list.
pub(crate) fn image_index(
    manifests: Vec<Descriptor>,
    annotations: &BTreeMap<String, String>,
) -> ImageIndex {
    let mut builder = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests);
    if let Some(a) = annotations_map(annotations) {
        builder = builder.annotations(a);
    }
    builder.build().expect("index fields are set")
}

/// One layer as a manifest references it, with the DiffID its config lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

impl LayerBlob {
    pub fn descriptor(&self) -> Descriptor {
        descriptor(self.media_type.clone(), &self.digest, self.size)
    }
}

/// A JSON document stored as a blob: the parsed value, the exact bytes, their digest.
#[derive(Clone, Debug)]
pub struct JsonBlob<T> {
    pub value: T,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

impl<T: serde::Serialize> JsonBlob<T> {
    pub fn canonical(value: T) -> Self {
        let bytes = to_canonical_vec(&value);
        let digest = Digest::of(&bytes);
        JsonBlob {
            value,
            bytes,
            digest,
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

impl<T: serde::de::DeserializeOwned> JsonBlob<T> {
    /// A document read back from a store or registry: its bytes are kept
    /// exactly as found, since re-serializing a foreign document would
    /// change its digest.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, serde_json::Error> {
        let value = serde_json::from_slice(&bytes)?;
        let digest = Digest::of(&bytes);
        Ok(JsonBlob {
            value,
            bytes,
            digest,
        })
    }
}

/// A single-platform image: config and manifest with their bytes.
#[derive(Clone, Debug)]
pub struct Image {
    pub platform: Platform,
    pub config: JsonBlob<ImageConfiguration>,
    pub manifest: JsonBlob<ImageManifest>,
    pub layers: Vec<LayerBlob>,
}

impl Image {
    pub fn new(
        platform: Platform,
        config: ImageConfiguration,
        layers: Vec<LayerBlob>,
        annotations: &BTreeMap<String, String>,
    ) -> Image {
        let config = JsonBlob::canonical(config);
        let manifest = image_manifest(
            MediaType::ImageManifest,
            descriptor(MediaType::ImageConfig, &config.digest, config.size()),
            layers.iter().map(LayerBlob::descriptor).collect(),
            annotations,
        );
        Image {
            platform,
            config,
            manifest: JsonBlob::canonical(manifest),
            layers,
        }
    }

    /// An image read back: its layers are the manifest's, each paired
    /// with the DiffID at the same position in the config's rootfs. `None`
    /// when the two lists differ in length (the image is malformed).
    pub(crate) fn from_stored(
        platform: Platform,
        config: JsonBlob<ImageConfiguration>,
        manifest: JsonBlob<ImageManifest>,
    ) -> Option<Image> {
        let diff_ids = config.value.rootfs().diff_ids();
        if diff_ids.len() != manifest.value.layers().len() {
            return None;
        }
        let mut layers = Vec::new();
        for (d, diff_id) in manifest.value.layers().iter().zip(diff_ids) {
            layers.push(LayerBlob {
                media_type: d.media_type().clone(),
                digest: our_digest(d.digest()).ok()?,
                size: d.size(),
                diff_id: diff_id.parse().ok()?,
            });
        }
        Some(Image {
            platform,
            config,
            manifest,
            layers,
        })
    }

    pub(crate) fn manifest_descriptor(&self) -> Descriptor {
        // A pulled Docker v2 manifest keeps its own media type.
        let media_type = self
            .manifest
            .value
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest);
        let mut d = descriptor(media_type, &self.manifest.digest, self.manifest.size());
        d.set_platform(Some(spec_platform(&self.platform)));
        d
    }
}

pub(crate) fn spec_platform(p: &Platform) -> oci_spec::image::Platform {
    let mut sp = oci_spec::image::PlatformBuilder::default()
        .os(oci_spec::image::Os::from(p.os.as_str()))
        .architecture(oci_spec::image::Arch::from(p.architecture.as_str()))
        .build()
        .expect("os and architecture are set");
    sp.set_variant(p.variant.clone());
    sp
}

/// What a build produces: one image per platform, and an index over them
/// when there is more than one.
#[derive(Clone, Debug)]
pub struct Built {
    pub images: Vec<Image>,
    pub index: Option<JsonBlob<ImageIndex>>,
}

impl Built {
    /// Images must already be sorted by platform so the index is canonical.
    pub fn new(images: Vec<Image>, annotations: &BTreeMap<String, String>) -> Built {
        let index = if images.len() > 1 {
            let manifests = images.iter().map(Image::manifest_descriptor).collect();
            Some(JsonBlob::canonical(image_index(manifests, annotations)))
        } else {
            None
        };
        Built { images, index }
    }

    /// The image of `platform` alone, as a build of that one platform
    /// makes it (no index); `None` when there is none.
    pub fn only(&self, platform: &Platform) -> Option<Built> {
        let image = self.images.iter().find(|i| &i.platform == platform)?;
        Some(Built {
            images: vec![image.clone()],
            index: None,
        })
    }

    /// The digest a deployment pins: the index for multi-platform builds,
    /// otherwise the single image manifest.
    pub fn digest(&self) -> &Digest {
        match &self.index {
            Some(i) => &i.digest,
            None => &self.images[0].manifest.digest,
        }
    }

    /// Descriptor of the top-level object, as index.json lists it.
    pub fn top_descriptor(&self) -> Descriptor {
        match &self.index {
            Some(i) => descriptor(
                i.value
                    .media_type()
                    .clone()
                    .unwrap_or(MediaType::ImageIndex),
                &i.digest,
                i.size(),
            ),
            None => self.images[0].manifest_descriptor(),
        }
    }
}
