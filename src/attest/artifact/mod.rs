//! Attestations and signatures as OCI artifacts (image-spec v1.1
//! "Guidelines for Artifact Usage"): an image manifest whose
//! `artifactType` says what it is, whose config is the empty descriptor,
//! whose one layer is the content, and whose `subject` is the image
//! manifest or index it is about. Registries list such manifests under the
//! subject's referrers; the image's own manifest and digest do not change.
//!
//! What the layer holds, by [`Form`]:
//! - signed: a Sigstore bundle (v0.3) with one DSSE envelope over an
//!   in-toto statement, what cosign 3 attaches and sigstore-go verifies;
//! - unsigned, and beside every signed SBOM: the SBOM document itself
//!   under its own media type (`application/spdx+json`,
//!   `application/vnd.cyclonedx+json`), which scanners (Trivy, Grype) take
//!   from the referrers as they are; unsigned provenance is the in-toto
//!   statement;
//! - an image signature: cosign's simple-signing payload, the signature in
//!   the layer's annotation (`attest::cosign`).
//!
//! Images stele built before bundles carry a bare DSSE envelope as the
//! layer (`Form::Dsse`); those are still read.

mod open;

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

pub use open::{open, Checked, Opened, Signer};

use super::bundle::{self, Bundle};
use super::dsse::PAYLOAD_TYPE_IN_TOTO;
use super::keys::PrivateKey;
use super::{cosign, cyclonedx, slsa, spdx, AttestError, Statement};
use crate::oci::artifact::{artifact_manifest, referrer_descriptor, EMPTY_JSON};
use crate::oci::cosign::SIGNATURE_ARTIFACT_TYPE;
use crate::oci::model::{annotate, descriptor, our_digest};
use crate::oci::{Digest, JsonBlob, Platform};
use crate::store::BlobStore;

/// Index and manifest annotation telling stele's artifacts apart:
/// `provenance`, `sbom-spdx`, `sbom-cyclonedx` or `signature`.
pub const ANNOTATION_ATTESTATION: &str = "dev.stele.attestation";
/// Index and manifest annotation: the platform an SBOM describes.
pub(crate) const ANNOTATION_PLATFORM: &str = "dev.stele.platform";
/// Manifest annotation: the signer's key id (securesystemslib's, see
/// `keys`), so `inspect` names the key without verifying anything. It is
/// a label, not a proof: only a signature checked with a key is.
pub const ANNOTATION_KEYID: &str = "dev.stele.keyid";
/// Layer annotation Docker's, in-toto's and Trivy's tooling read.
pub(crate) const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
pub const MEDIA_TYPE_DSSE: &str = crate::oci::media::DSSE_ENVELOPE;
pub(crate) const MEDIA_TYPE_IN_TOTO: &str = crate::oci::media::IN_TOTO;
pub const MEDIA_TYPE_BUNDLE: &str = bundle::MEDIA_TYPE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Provenance,
    Spdx,
    CycloneDx,
    /// A simple-signing signature of the image (cosign's `.sig`).
    Signature,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Provenance,
        Kind::Spdx,
        Kind::CycloneDx,
        Kind::Signature,
    ];

    /// The `dev.stele.attestation` annotation value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Provenance => "provenance",
            Kind::Spdx => "sbom-spdx",
            Kind::CycloneDx => "sbom-cyclonedx",
            Kind::Signature => "signature",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The media type of the kind's unsigned content: the in-toto
    /// statement, the SBOM document, the simple-signing payload.
    pub fn document_type(self) -> &'static str {
        match self {
            Kind::Provenance => MEDIA_TYPE_IN_TOTO,
            Kind::Spdx => spdx::MEDIA_TYPE,
            Kind::CycloneDx => cyclonedx::MEDIA_TYPE,
            Kind::Signature => cosign::SIMPLE_SIGNING,
        }
    }

    /// The predicate type stele writes (the ones `cosign
    /// verify-attestation --type slsaprovenance1|spdxjson|cyclonedx`
    /// names); `""` for signatures, which hold no statement.
    pub fn predicate_type(self) -> &'static str {
        match self {
            Kind::Provenance => slsa::PREDICATE_TYPE,
            Kind::Spdx => spdx::PREDICATE_TYPE,
            Kind::CycloneDx => cyclonedx::PREDICATE_TYPE,
            Kind::Signature => "",
        }
    }

    /// Whether `predicate_type` is this kind's: stele's own, or the
    /// versioned forms earlier stele versions and other tools write.
    pub(crate) fn accepts_predicate(self, predicate_type: &str) -> bool {
        let also: &[&str] = match self {
            Kind::Provenance => &[],
            Kind::Spdx => &["https://spdx.dev/Document/v2.3"],
            Kind::CycloneDx => &[
                "https://cyclonedx.org/bom/v1.5",
                "https://cyclonedx.org/bom/v1.6",
            ],
            Kind::Signature => &[],
        };
        predicate_type == self.predicate_type() || also.contains(&predicate_type)
    }

    /// The kind a predicate type names, for attestations other tools
    /// attached (no stele annotation).
    pub(crate) fn of_predicate(predicate_type: &str) -> Option<Kind> {
        [Kind::Provenance, Kind::Spdx, Kind::CycloneDx]
            .into_iter()
            .find(|k| k.accepts_predicate(predicate_type))
    }
}

/// How an artifact's layer holds its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A Sigstore bundle around a DSSE envelope (signed).
    Bundle,
    /// A bare DSSE envelope (signed; what stele wrote before bundles).
    Dsse,
    /// An in-toto statement (unsigned provenance).
    Statement,
    /// The SBOM document itself (unsigned).
    Document,
    /// A simple-signing payload, its signature in an annotation.
    SimpleSigning,
}

impl Form {
    /// The form a layer's media type says, for an artifact of `kind`.
    pub(crate) fn of_layer(kind: Kind, media_type: &str) -> Option<Form> {
        Some(match media_type {
            mt if mt.starts_with(bundle::MEDIA_TYPE_PREFIX) => Form::Bundle,
            MEDIA_TYPE_DSSE => Form::Dsse,
            mt if kind == Kind::Signature && mt == cosign::SIMPLE_SIGNING => Form::SimpleSigning,
            MEDIA_TYPE_IN_TOTO => Form::Statement,
            mt if mt == kind.document_type() => Form::Document,
            _ => return None,
        })
    }

    pub fn signed(self) -> bool {
        matches!(self, Form::Bundle | Form::Dsse | Form::SimpleSigning)
    }

    pub fn name(self) -> &'static str {
        match self {
            Form::Bundle => "sigstore-bundle",
            Form::Dsse => "dsse",
            Form::Statement => "in-toto-statement",
            Form::Document => "document",
            Form::SimpleSigning => "simple-signing",
        }
    }
}

/// One stored artifact.
#[derive(Clone, Debug)]
pub struct Attestation {
    pub kind: Kind,
    pub form: Form,
    /// The platform an SBOM describes; `None` for provenance and
    /// signatures.
    pub platform: Option<Platform>,
    /// The image manifest or index it is about.
    pub subject: Descriptor,
    pub manifest: JsonBlob<ImageManifest>,
    /// Key id of the signer, when signed.
    pub keyid: Option<String>,
}

impl Attestation {
    /// Digest of the manifest or index this attestation is about.
    pub fn subject_digest(&self) -> Digest {
        our_digest(self.subject.digest()).expect("stele's own descriptors are sha256")
    }

    /// Descriptor for the layout's index.json and for a referrers list:
    /// `artifactType` and the annotations, as the referrers API reports
    /// them.
    pub fn index_descriptor(&self) -> Descriptor {
        referrer_descriptor(
            &self.manifest.value,
            MediaType::ImageManifest,
            &self.manifest.digest,
            self.manifest.size(),
        )
    }
}

fn annotations(
    kind: Kind,
    platform: Option<&Platform>,
    key: Option<&PrivateKey>,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([(ANNOTATION_ATTESTATION.to_string(), kind.name().to_string())]);
    if let Some(p) = platform {
        a.insert(ANNOTATION_PLATFORM.into(), p.to_string());
    }
    if let Some(k) = key {
        a.insert(ANNOTATION_KEYID.into(), k.keyid().to_string());
    }
    a
}

/// What an artifact is about: the subject names only the object, not how
/// an index lists it.
fn subject_of(subject: &Descriptor) -> Descriptor {
    descriptor(
        subject.media_type().clone(),
        &our_digest(subject.digest()).expect("stele's own descriptors are sha256"),
        subject.size(),
    )
}

/// What one artifact is made of before it is stored.
struct Parts<'a> {
    kind: Kind,
    form: Form,
    platform: Option<&'a Platform>,
    subject: Descriptor,
    artifact_type: &'static str,
    content: Vec<u8>,
    layer_media_type: &'static str,
    layer_annotations: BTreeMap<String, String>,
    manifest_annotations: BTreeMap<String, String>,
    key: Option<&'a PrivateKey>,
}

fn store_parts(store: &BlobStore, p: Parts) -> Result<Attestation, AttestError> {
    store.put_bytes(EMPTY_JSON)?;
    let content_digest = store.put_bytes(&p.content)?;
    let layer = annotate(
        descriptor(
            MediaType::from(p.layer_media_type),
            &content_digest,
            p.content.len() as u64,
        ),
        &p.layer_annotations,
    );
    let subject = subject_of(&p.subject);
    let manifest = JsonBlob::canonical(artifact_manifest(
        p.artifact_type,
        layer,
        subject.clone(),
        &p.manifest_annotations,
    ));
    store.put_bytes(&manifest.bytes)?;
    Ok(Attestation {
        kind: p.kind,
        form: p.form,
        platform: p.platform.cloned(),
        subject,
        manifest,
        keyid: p.key.map(|k| k.keyid().to_string()),
    })
}

/// Stores `statement` as an unsigned `kind` attestation about `subject`:
/// provenance as the in-toto statement, an SBOM as the plain document.
/// Same inputs, same bytes: every document is canonical JSON.
pub fn write_unsigned(
    store: &BlobStore,
    kind: Kind,
    platform: Option<&Platform>,
    subject: Descriptor,
    statement: &Statement,
) -> Result<Attestation, AttestError> {
    let (form, content) = match kind {
        Kind::Provenance => (Form::Statement, statement.to_json()),
        _ => (
            Form::Document,
            crate::oci::json::to_canonical_vec(&statement.predicate),
        ),
    };
    store_parts(
        store,
        Parts {
            kind,
            form,
            platform,
            subject,
            artifact_type: kind.document_type(),
            content,
            layer_media_type: kind.document_type(),
            layer_annotations: BTreeMap::from([(
                ANNOTATION_PREDICATE_TYPE.to_string(),
                kind.predicate_type().to_string(),
            )]),
            manifest_annotations: annotations(kind, platform, None),
            key: None,
        },
    )
}

/// Stores `statement` signed by `key` as a Sigstore bundle referrer about
/// `subject`, annotated as cosign annotates the bundles it attaches.
/// Deterministic too: both key kinds sign deterministically.
pub fn write_bundle(
    store: &BlobStore,
    kind: Kind,
    platform: Option<&Platform>,
    subject: Descriptor,
    statement: &Statement,
    key: &PrivateKey,
) -> Result<Attestation, AttestError> {
    let content = Bundle::sign(PAYLOAD_TYPE_IN_TOTO, statement.to_json(), key).to_json();
    let mut manifest_annotations = annotations(kind, platform, Some(key));
    manifest_annotations.insert(
        bundle::ANNOTATION_CONTENT.into(),
        bundle::CONTENT_DSSE.into(),
    );
    manifest_annotations.insert(
        bundle::ANNOTATION_PREDICATE_TYPE.into(),
        kind.predicate_type().into(),
    );
    store_parts(
        store,
        Parts {
            kind,
            form: Form::Bundle,
            platform,
            subject,
            artifact_type: MEDIA_TYPE_BUNDLE,
            content,
            layer_media_type: MEDIA_TYPE_BUNDLE,
            layer_annotations: BTreeMap::from([(
                ANNOTATION_PREDICATE_TYPE.to_string(),
                kind.predicate_type().to_string(),
            )]),
            manifest_annotations,
            key: Some(key),
        },
    )
}

/// Stores a simple-signing signature of `subject` as the image at
/// `identity`, by `key`: cosign's referrer form of a `.sig`.
pub fn write_signature(
    store: &BlobStore,
    subject: Descriptor,
    identity: &str,
    creator: &str,
    key: &PrivateKey,
) -> Result<Attestation, AttestError> {
    let digest = our_digest(subject.digest()).expect("stele's own descriptors are sha256");
    let signed = cosign::sign(identity, &digest, creator, key);
    store_parts(
        store,
        Parts {
            kind: Kind::Signature,
            form: Form::SimpleSigning,
            platform: None,
            subject,
            artifact_type: SIGNATURE_ARTIFACT_TYPE,
            content: signed.payload,
            layer_media_type: cosign::SIMPLE_SIGNING,
            layer_annotations: signed.annotations,
            manifest_annotations: annotations(Kind::Signature, None, Some(key)),
            key: Some(key),
        },
    )
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
