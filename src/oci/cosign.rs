//! The documents cosign 2.x keeps beside an image under tags derived from
//! its digest, built here as every document stele writes is:
//! `sha256-<hex>.sig` (image signatures, read by `cosign verify` and by
//! containers/image with `use-sigstore-attachments`) and
//! `sha256-<hex>.att` (DSSE attestations, read by `cosign
//! verify-attestation`, Kyverno and policy-controller). Each tag names an
//! OCI image whose layers are the payloads, their annotations carrying
//! what cosign reads, and whose config is an image config listing the
//! layers as its DiffIDs (the payloads are not compressed), as both cosign
//! and containers/image write it.

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::{json, Value};

use super::model::{descriptor, image_manifest};
use super::{our_digest, Digest, JsonBlob};

/// The media type of a simple-signing payload (cosign's
/// `SimpleSigningMediaType`); containers/image takes only layers of this
/// type as signatures.
pub(crate) const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature over the payload.
pub(crate) const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `artifactType` cosign gives a signature stored as an OCI 1.1
/// referrer (`--registry-referrers-mode oci-1-1`).
pub(crate) const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The `.att` layer annotation naming the statement's predicate type.
pub(crate) const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// Which of cosign's tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attached {
    /// `.sig`: simple-signing payloads.
    Signatures,
    /// `.att`: DSSE envelopes over in-toto statements.
    Attestations,
}

impl Attached {
    /// The tag for `subject`: `sha256-<hex>.sig` or `.att`.
    pub fn tag(self, subject: &Digest) -> String {
        let suffix = match self {
            Attached::Signatures => "sig",
            Attached::Attestations => "att",
        };
        format!("sha256-{}.{suffix}", subject.hex())
    }
}

/// One layer for one of cosign's tags: what it is about, which tag, its
/// descriptor (annotations included) and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub subject: Digest,
    pub which: Attached,
    pub layer: Descriptor,
    pub bytes: Vec<u8>,
}

/// The config of an attachment image: what containers/image writes (an
/// image config with empty platform fields), its DiffIDs the layers'
/// digests.
pub(crate) fn attachment_config(layers: &[Descriptor]) -> JsonBlob<Value> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest().to_string()).collect();
    JsonBlob::canonical(json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
}

/// The manifest an attachment tag names: `layers` in order (each with its
/// annotations), `config` made by [`attachment_config`] from them.
pub(crate) fn attachment_manifest(
    config: &JsonBlob<Value>,
    layers: Vec<Descriptor>,
) -> JsonBlob<ImageManifest> {
    let config = descriptor(MediaType::ImageConfig, &config.digest, config.size());
    JsonBlob::canonical(image_manifest(
        MediaType::ImageManifest,
        config,
        layers,
        &Default::default(),
    ))
}

/// `existing` (an attachment image's layers as found in a registry) with
/// each of `adding` that it lacks appended: a layer is already there when
/// the same payload carries the same annotations, as containers/image
/// decides it. Returns `None` when nothing is added.
pub(crate) fn merged_layers(
    existing: &[Descriptor],
    adding: &[Descriptor],
) -> Option<Vec<Descriptor>> {
    let same = |a: &Descriptor, b: &Descriptor| {
        our_digest(a.digest()).ok() == our_digest(b.digest()).ok()
            && a.media_type() == b.media_type()
            && a.annotations().clone().unwrap_or_default()
                == b.annotations().clone().unwrap_or_default()
    };
    let mut out = existing.to_vec();
    for d in adding {
        if !out.iter().any(|e| same(e, d)) {
            out.push(d.clone());
        }
    }
    (out.len() > existing.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::model::annotate;
    use std::collections::BTreeMap;

    #[test]
    fn tags_config_and_manifest_are_cosigns() {
        let subject = Digest::of(b"image");
        assert_eq!(
            Attached::Signatures.tag(&subject),
            format!("sha256-{}.sig", subject.hex())
        );
        assert!(Attached::Attestations.tag(&subject).ends_with(".att"));
        let payload = Digest::of(b"payload");
        let layer = annotate(
            descriptor(MediaType::from(SIMPLE_SIGNING), &payload, 7),
            &BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), "c2ln".to_string())]),
        );
        let config = attachment_config(std::slice::from_ref(&layer));
        assert_eq!(
            config.value["rootfs"]["diff_ids"][0],
            payload.to_string().as_str()
        );
        let manifest = attachment_manifest(&config, vec![layer.clone()]);
        let m: Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(m["layers"][0]["annotations"][SIGNATURE_ANNOTATION], "c2ln");
        assert!(m.get("subject").is_none() && m.get("artifactType").is_none());

        assert!(
            merged_layers(std::slice::from_ref(&layer), std::slice::from_ref(&layer)).is_none()
        );
        let other = annotate(layer.clone(), &BTreeMap::new());
        let merged = merged_layers(std::slice::from_ref(&layer), &[other]).unwrap();
        assert_eq!(merged.len(), 2);
    }
}
