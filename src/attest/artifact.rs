//! Attestations as OCI artifacts (image-spec v1.1 "Guidelines for Artifact
//! Usage"): an image manifest whose `artifactType` says what it is, whose
//! config is the empty descriptor, whose one layer is the attestation, and
//! whose `subject` is the image manifest or index it is about. Registries
//! list such manifests under the subject's referrers; the image's own
//! manifest and digest do not change.
//!
//! The layer is, unsigned: the in-toto statement (provenance) or the plain
//! SBOM document, which SBOM tools read as they are; signed: a DSSE
//! envelope over an in-toto statement, so the signature binds the SBOM to
//! the image digest and cosign-style verifiers can check it.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use super::keys::{PrivateKey, PublicKey};
use super::{cyclonedx, slsa, spdx, AttestError, Statement};
use crate::oci::artifact::{artifact_manifest, referrer_descriptor, EMPTY_JSON};
use crate::oci::model::{annotate, descriptor, our_digest};
use crate::oci::{Digest, JsonBlob, Platform};
use crate::store::BlobStore;

/// Index and manifest annotation telling stele's attestations apart:
/// `provenance`, `sbom-spdx` or `sbom-cyclonedx`.
pub const ANNOTATION_ATTESTATION: &str = "dev.stele.attestation";
/// Index and manifest annotation: the platform an SBOM describes.
pub(crate) const ANNOTATION_PLATFORM: &str = "dev.stele.platform";
/// Layer annotation Docker's and in-toto's tooling read.
pub(crate) const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
pub const MEDIA_TYPE_DSSE: &str = crate::oci::media::DSSE_ENVELOPE;
pub(crate) const MEDIA_TYPE_IN_TOTO: &str = crate::oci::media::IN_TOTO;

use crate::oci::media::MANIFEST_LIMIT;
const CONTENT_LIMIT: u64 = 256 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Provenance,
    Spdx,
    CycloneDx,
}

impl Kind {
    /// The `dev.stele.attestation` annotation value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Provenance => "provenance",
            Kind::Spdx => "sbom-spdx",
            Kind::CycloneDx => "sbom-cyclonedx",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        [Kind::Provenance, Kind::Spdx, Kind::CycloneDx]
            .into_iter()
            .find(|k| k.name() == name)
    }

    pub fn artifact_type(self) -> &'static str {
        match self {
            Kind::Provenance => MEDIA_TYPE_IN_TOTO,
            Kind::Spdx => spdx::MEDIA_TYPE,
            Kind::CycloneDx => cyclonedx::MEDIA_TYPE,
        }
    }

    pub fn predicate_type(self) -> &'static str {
        match self {
            Kind::Provenance => slsa::PREDICATE_TYPE,
            Kind::Spdx => spdx::PREDICATE_TYPE,
            Kind::CycloneDx => cyclonedx::PREDICATE_TYPE,
        }
    }
}

/// One stored attestation artifact.
#[derive(Clone, Debug)]
pub struct Attestation {
    pub kind: Kind,
    /// The platform an SBOM describes; `None` for provenance.
    pub platform: Option<Platform>,
    /// The image manifest or index it is about.
    pub subject: Descriptor,
    pub manifest: JsonBlob<ImageManifest>,
    /// Key id of the DSSE signature, when signed.
    pub keyid: Option<String>,
}

impl Attestation {
    /// Digest of the manifest or index this attestation is about.
    pub fn subject_digest(&self) -> Digest {
        our_digest(self.subject.digest()).expect("stele's own descriptors are sha256")
    }

    /// Descriptor for the layout's index.json and for a referrers list:
    /// `artifactType` and the stele annotations, as the referrers API
    /// reports them.
    pub fn index_descriptor(&self) -> Descriptor {
        referrer_descriptor(
            &self.manifest.value,
            MediaType::ImageManifest,
            &self.manifest.digest,
            self.manifest.size(),
        )
    }
}

fn annotations(kind: Kind, platform: Option<&Platform>) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([(ANNOTATION_ATTESTATION.to_string(), kind.name().to_string())]);
    if let Some(p) = platform {
        a.insert(ANNOTATION_PLATFORM.into(), p.to_string());
    }
    a
}

/// Stores `statement` as a `kind` attestation about `subject` (signed with
/// `key` when given) and returns it. Same inputs, same bytes: ed25519
/// signatures are deterministic and every document is canonical JSON.
pub fn write(
    store: &BlobStore,
    kind: Kind,
    platform: Option<&Platform>,
    subject: Descriptor,
    statement: &Statement,
    key: Option<&PrivateKey>,
) -> Result<Attestation, AttestError> {
    let (content, media_type) = match key {
        Some(k) => (
            Envelope::sign(PAYLOAD_TYPE_IN_TOTO, statement.to_json(), k).to_json(),
            MEDIA_TYPE_DSSE,
        ),
        None if kind == Kind::Provenance => (statement.to_json(), MEDIA_TYPE_IN_TOTO),
        None => (
            crate::oci::json::to_canonical_vec(&statement.predicate),
            kind.artifact_type(),
        ),
    };
    store.put_bytes(EMPTY_JSON)?;
    let content_digest = store.put_bytes(&content)?;
    let layer = annotate(
        descriptor(
            MediaType::from(media_type),
            &content_digest,
            content.len() as u64,
        ),
        &BTreeMap::from([(
            ANNOTATION_PREDICATE_TYPE.to_string(),
            kind.predicate_type().to_string(),
        )]),
    );
    // The subject names only the object, not how an index lists it.
    let subject = descriptor(
        subject.media_type().clone(),
        &our_digest(subject.digest()).expect("stele's own descriptors are sha256"),
        subject.size(),
    );
    let manifest = artifact_manifest(
        kind.artifact_type(),
        layer,
        subject.clone(),
        &annotations(kind, platform),
    );
    let manifest = JsonBlob::canonical(manifest);
    store.put_bytes(&manifest.bytes)?;
    Ok(Attestation {
        kind,
        platform: platform.cloned(),
        subject,
        manifest,
        keyid: key.map(|k| k.keyid().to_string()),
    })
}

/// The referrers list for `subject` (distribution-spec "Listing
/// Referrers"): what the referrers API returns, and what the
/// `sha256-<hex>` fallback tag points at on registries without it.
pub fn referrers_index(attestations: &[Attestation], subject: &Digest) -> JsonBlob<ImageIndex> {
    let manifests: Vec<Descriptor> = attestations
        .iter()
        .filter(|a| our_digest(a.subject.digest()).ok().as_ref() == Some(subject))
        .map(Attestation::index_descriptor)
        .collect();
    crate::oci::artifact::referrers_index(manifests)
}

/// An attestation read back from a store, not yet checked.
#[derive(Clone, Debug)]
pub struct Opened {
    /// Digest of the artifact manifest.
    pub digest: Digest,
    pub kind: Kind,
    pub platform: Option<String>,
    pub subject: Digest,
    pub layer_media_type: String,
    pub content: Vec<u8>,
}

/// What a checked attestation says.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The statement, for provenance and signed SBOMs.
    pub statement: Option<Statement>,
    /// The SBOM or provenance predicate.
    pub predicate: serde_json::Value,
    /// Key id of the verified signature.
    pub signed_by: Option<String>,
}

/// Reads the artifact manifest `digest` and its layer from `store`,
/// verifying both blobs' digests and sizes.
pub fn open(store: &BlobStore, digest: &Digest, size: Option<u64>) -> Result<Opened, AttestError> {
    let malformed = |message: String| AttestError::Malformed {
        digest: digest.clone(),
        message,
    };
    let bytes = store.read_verified(digest, size, MANIFEST_LIMIT)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| malformed(format!("manifest: {e}")))?;
    let annotations = manifest.annotations().clone().unwrap_or_default();
    let kind = annotations
        .get(ANNOTATION_ATTESTATION)
        .and_then(|n| Kind::from_name(n))
        .ok_or_else(|| malformed(format!("no known `{ANNOTATION_ATTESTATION}` annotation")))?;
    if manifest
        .artifact_type()
        .as_ref()
        .map(|t| t.to_string())
        .as_deref()
        != Some(kind.artifact_type())
    {
        return Err(malformed(format!(
            "artifactType is not {}",
            kind.artifact_type()
        )));
    }
    let subject = manifest
        .subject()
        .as_ref()
        .ok_or_else(|| malformed("it has no subject".into()))?;
    let subject = our_digest(subject.digest()).map_err(|e| malformed(e.to_string()))?;
    let [layer] = manifest.layers().as_slice() else {
        return Err(malformed(format!(
            "it has {} layers, not one",
            manifest.layers().len()
        )));
    };
    let layer_digest = our_digest(layer.digest()).map_err(|e| malformed(e.to_string()))?;
    let content = store.read_verified(&layer_digest, Some(layer.size()), CONTENT_LIMIT)?;
    Ok(Opened {
        digest: digest.clone(),
        kind,
        platform: annotations.get(ANNOTATION_PLATFORM).cloned(),
        subject,
        layer_media_type: layer.media_type().to_string(),
        content,
    })
}

impl Opened {
    /// Checks that this attestation is about `expected` (both the OCI
    /// subject and, where there is one, the statement's subjects) and,
    /// with `key`, that `key` signed it. Without `key` no signature is
    /// checked, signed or not: only a key makes a signature mean anything.
    pub fn check(
        &self,
        expected: &Digest,
        key: Option<&PublicKey>,
    ) -> Result<Checked, AttestError> {
        let malformed = |message: String| AttestError::Malformed {
            digest: self.digest.clone(),
            message,
        };
        let wrong = |found: String| AttestError::WrongSubject {
            digest: self.digest.clone(),
            expected: expected.clone(),
            found,
        };
        if &self.subject != expected {
            return Err(wrong(self.subject.to_string()));
        }
        let (statement_bytes, signed_by) = match (self.layer_media_type.as_str(), key) {
            (MEDIA_TYPE_DSSE, key) => {
                let env = Envelope::from_json(&self.content).map_err(|e| AttestError::Dsse {
                    digest: self.digest.clone(),
                    error: e,
                })?;
                if let Some(k) = key {
                    env.verify(k).map_err(|e| AttestError::Dsse {
                        digest: self.digest.clone(),
                        error: e,
                    })?;
                }
                if env.payload_type != PAYLOAD_TYPE_IN_TOTO {
                    return Err(malformed(format!(
                        "envelope payloadType is {}, not {PAYLOAD_TYPE_IN_TOTO}",
                        env.payload_type
                    )));
                }
                (Some(env.payload), key.map(|k| k.keyid().to_string()))
            }
            (_, Some(k)) => {
                return Err(AttestError::Unsigned {
                    digest: self.digest.clone(),
                    keyid: k.keyid().to_string(),
                })
            }
            (MEDIA_TYPE_IN_TOTO, None) => (Some(self.content.clone()), None),
            (mt, None) if mt == self.kind.artifact_type() => (None, None),
            (mt, None) => return Err(malformed(format!("unexpected layer media type {mt}"))),
        };
        match statement_bytes {
            Some(bytes) => {
                let statement: Statement = serde_json::from_slice(&bytes)
                    .map_err(|e| malformed(format!("statement: {e}")))?;
                if statement.predicate_type != self.kind.predicate_type() {
                    return Err(malformed(format!(
                        "predicateType is {}, not {}",
                        statement.predicate_type,
                        self.kind.predicate_type()
                    )));
                }
                if !statement.is_about(expected) {
                    let found: Vec<String> = statement
                        .subject
                        .iter()
                        .filter_map(|s| s.digest.get("sha256").map(|h| format!("sha256:{h}")))
                        .collect();
                    return Err(wrong(format!("statement subjects [{}]", found.join(", "))));
                }
                Ok(Checked {
                    predicate: statement.predicate.clone(),
                    statement: Some(statement),
                    signed_by,
                })
            }
            None => Ok(Checked {
                predicate: serde_json::from_slice(&self.content)
                    .map_err(|e| malformed(format!("document: {e}")))?,
                statement: None,
                signed_by: None,
            }),
        }
    }
}
