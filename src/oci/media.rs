//! Every media type stele reads or writes, OCI's and Docker's, and the one
//! place that says what a media type is (an index, a manifest, a config, a
//! layer). Sources, sinks, the registry client and `verify` all ask here,
//! so a type accepted by one is accepted by all.
//!
//! Also the one set of limits every source holds documents to (layouts,
//! archives and registries alike, with the same messages): how large a
//! manifest, index or config may be before anything parses it, how many
//! manifests an index and layers a manifest may list, and that an image's
//! index lists manifests, not further indexes. A registry's 10,000-entry
//! index is refused before its first entry is fetched.

use oci_spec::image::MediaType;

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
// Deprecated by image-spec 1.1 but still defined, and still met.
pub(crate) const OCI_LAYER_NONDISTRIBUTABLE: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub(crate) const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub(crate) const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub(crate) const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// Not in Docker's schema 2 text, but defined by containerd and written by
// Docker and BuildKit for uncompressed and zstd layers.
pub(crate) const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub(crate) const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker schema 1 manifests (`…manifest.v1+json`, `…v1+prettyjws`):
/// recognised only to be refused by name.
pub(crate) const DOCKER_SCHEMA1_PREFIX: &str = "application/vnd.docker.distribution.manifest.v1+";

/// DSSE envelopes and in-toto statements: the layers and payloads of
/// attestations.
pub(crate) const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub(crate) const IN_TOTO: &str = "application/vnd.in-toto+json";
pub(crate) const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

/// The `Accept` header of a manifest GET: every document kind stele reads.
pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

pub(crate) const INDEX_TYPES: &[&str] = &[OCI_INDEX, DOCKER_LIST];
pub(crate) const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST];
pub(crate) const CONFIG_TYPES: &[&str] = &[OCI_CONFIG, DOCKER_CONFIG];
pub(crate) const LAYER_TYPES: &[&str] = &[
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_LAYER_NONDISTRIBUTABLE,
    OCI_LAYER_NONDISTRIBUTABLE_GZIP,
    OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_FOREIGN_GZIP,
    DOCKER_LAYER,
    DOCKER_LAYER_ZSTD,
];

/// The largest manifest or index accepted (distribution-spec: registries
/// may refuse manifests over 4 MiB, so nothing larger is portable).
pub(crate) const MANIFEST_LIMIT: u64 = 4 << 20;
/// The largest image config accepted.
pub(crate) const CONFIG_LIMIT: u64 = 16 << 20;
/// The most manifests an index may list: real multi-platform images list
/// a few dozen at most.
pub(crate) const INDEX_ENTRIES_LIMIT: usize = 1000;
/// The most layers one image may have: overlay file systems stack a few
/// hundred at most, Docker 125.
pub(crate) const LAYERS_LIMIT: usize = 1000;

/// A document beyond one of the limits above. Every source reports these
/// alike, with the image (or reference) it read in front.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{what} {name} is {size} bytes, beyond the {limit}-byte limit for a {what}")]
    TooLarge {
        /// `manifest`, `index`, `config`, or `manifest or index` (read by
        /// tag, before it says which).
        what: &'static str,
        /// Its digest, or the tag it was read by.
        name: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "{index} lists {count} manifests, beyond the limit of {INDEX_ENTRIES_LIMIT} for an index"
    )]
    TooManyEntries {
        /// `index sha256:…`, or a layout's `index.json`.
        index: String,
        count: usize,
    },
    #[error(
        "manifest {digest} lists {count} layers, beyond the limit of {LAYERS_LIMIT} for an image"
    )]
    TooManyLayers { digest: String, count: usize },
    #[error("index {digest} nests another index ({child}); flatten it first, e.g. with `skopeo copy --all`")]
    Nested { digest: String, child: String },
}

/// `size` bytes of a `what` (`manifest`, `index`, `manifest or index`:
/// [`MANIFEST_LIMIT`]; `config`: [`CONFIG_LIMIT`]) named `name`, within
/// its limit.
pub(crate) fn check_document_size(
    what: &'static str,
    name: &str,
    size: u64,
) -> Result<(), LimitError> {
    let limit = if what == "config" {
        CONFIG_LIMIT
    } else {
        MANIFEST_LIMIT
    };
    if size > limit {
        return Err(LimitError::TooLarge {
            what,
            name: name.to_string(),
            size,
            limit,
        });
    }
    Ok(())
}

/// An image's index (named `index`): at most [`INDEX_ENTRIES_LIMIT`]
/// entries, none of them an index (by the media type its descriptor
/// gives; a reader that finds one by its content says the same).
pub(crate) fn check_index(
    index: &str,
    digest: &str,
    entries: &[oci_spec::image::Descriptor],
) -> Result<(), LimitError> {
    if entries.len() > INDEX_ENTRIES_LIMIT {
        return Err(LimitError::TooManyEntries {
            index: index.to_string(),
            count: entries.len(),
        });
    }
    if let Some(child) = entries.iter().find(|d| is_index(d.media_type().as_ref())) {
        return Err(LimitError::Nested {
            digest: digest.to_string(),
            child: child.digest().to_string(),
        });
    }
    Ok(())
}

/// A manifest (`digest`) lists at most [`LAYERS_LIMIT`] layers.
pub(crate) fn check_layers(digest: &str, count: usize) -> Result<(), LimitError> {
    if count > LAYERS_LIMIT {
        return Err(LimitError::TooManyLayers {
            digest: digest.to_string(),
            count,
        });
    }
    Ok(())
}

/// An OCI index or a Docker manifest list.
pub(crate) fn is_index(media_type: &str) -> bool {
    INDEX_TYPES.contains(&media_type)
}

/// An OCI image manifest or a Docker schema 2 manifest.
pub(crate) fn is_manifest(media_type: &str) -> bool {
    MANIFEST_TYPES.contains(&media_type)
}

/// An index or a manifest: a document a manifest GET may answer with.
pub(crate) fn is_document(media_type: &str) -> bool {
    is_index(media_type) || is_manifest(media_type)
}

/// Media type from the descriptor, or from the document's own `mediaType`
/// when the descriptor's is missing or generic.
pub(crate) fn sniff_media_type(given: &MediaType, bytes: &[u8]) -> MediaType {
    if is_document(given.as_ref()) {
        return given.clone();
    }
    MediaType::from(document_media_type(bytes).as_str())
}

/// A manifest or index's own `mediaType`, or what its shape says (an index
/// has `manifests`); an OCI manifest when neither tells.
pub(crate) fn document_media_type(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(m),
            ..
        }) => m,
        Ok(Probe {
            manifests: Some(_), ..
        }) => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    }
}

/// The OCI layer type naming the same bytes as `media_type`: Docker's
/// layer types are byte-compatible with OCI's (image-spec media-types.md,
/// "Compatibility Matrix"). Any other type is returned as it is.
pub(crate) fn oci_layer_type(media_type: &MediaType) -> MediaType {
    match media_type.to_string().as_str() {
        DOCKER_LAYER_GZIP => MediaType::ImageLayerGzip,
        DOCKER_LAYER_ZSTD => MediaType::ImageLayerZstd,
        DOCKER_LAYER => MediaType::ImageLayer,
        _ => media_type.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_spec_names_the_same_strings() {
        assert_eq!(MediaType::ImageIndex.to_string(), OCI_INDEX);
        assert_eq!(MediaType::ImageManifest.to_string(), OCI_MANIFEST);
        assert_eq!(MediaType::ImageConfig.to_string(), OCI_CONFIG);
        assert_eq!(MediaType::ImageLayerGzip.to_string(), OCI_LAYER_GZIP);
        assert_eq!(MediaType::ImageLayerZstd.to_string(), OCI_LAYER_ZSTD);
        assert_eq!(MediaType::ImageLayer.to_string(), OCI_LAYER);
    }

    #[test]
    fn classifies_documents_and_layers() {
        assert!(is_index(DOCKER_LIST) && is_index(OCI_INDEX));
        assert!(is_manifest(DOCKER_MANIFEST) && !is_manifest(OCI_INDEX));
        assert_eq!(document_media_type(br#"{"manifests":[]}"#), OCI_INDEX);
        assert_eq!(document_media_type(b"{}"), OCI_MANIFEST);
        assert_eq!(
            oci_layer_type(&MediaType::from(DOCKER_LAYER_GZIP)),
            MediaType::ImageLayerGzip
        );
        assert_eq!(
            oci_layer_type(&MediaType::from("text/plain")),
            MediaType::from("text/plain")
        );
        for accepted in ACCEPT_MANIFESTS.split(", ") {
            assert!(is_document(accepted), "{accepted}");
        }
    }
}
