//! Every media type stele reads or writes, OCI's and Docker's, and the one
//! place that says what a media type is (an index, a manifest, a config, a
//! layer). Sources, sinks, the registry client and `verify` all ask here,
//! so a type accepted by one is accepted by all.
//!
//! Also the size limits for documents: what a manifest or config may be
//! before anything parses it.

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
