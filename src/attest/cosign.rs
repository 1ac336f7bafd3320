//! Image signatures in cosign's "simple signing" form, the one the
//! containers policy (`sigstoreSigned` in policy.json, as podman, skopeo
//! and CRI-O enforce it), `cosign verify` 2.x and the admission
//! controllers built on cosign's library read: a small JSON payload naming
//! the image, and a signature over those bytes.
//!
//! ```text
//! {"critical": {"identity": {"docker-reference": "HOST/REPO[:TAG]"},
//!               "image": {"docker-manifest-digest": "sha256:…"},
//!               "type": "cosign container image signature"},
//!  "optional": {"creator": "stele VERSION"}}
//! ```
//!
//! The signature (ECDSA: DER over SHA-256 of the payload; Ed25519: over
//! the payload) travels base64-encoded in the layer annotation
//! `dev.cosignproject.cosign/signature`. stele stores each signature as an
//! OCI 1.1 referrer (`artifactType`
//! `application/vnd.dev.cosign.artifact.sig.v1+json`, cosign's referrers
//! form) and, when pushing, also adds it to the `sha256-<hex>.sig` tag
//! cosign 2.x and containers/image read (see `registry::cosign`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use oci_spec::image::{Descriptor, MediaType};

use super::artifact::{self, Form};
use super::bundle::{Bundle, Material};
use super::keys::{PrivateKey, PublicKey};
use super::{AttestError, Statement};
use crate::oci::cosign::{Attached, Attachment, PREDICATE_TYPE_ANNOTATION};
use crate::oci::model::{annotate, descriptor, our_digest};
use crate::oci::Digest;
use crate::store::BlobStore;

pub(crate) use crate::oci::cosign::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING};

/// `critical.type` of a container image signature.
pub(crate) const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The largest payload read: cosign's own limit for signature payloads is
/// far larger, but a simple-signing payload is a few hundred bytes.
pub(crate) const PAYLOAD_LIMIT: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum SimpleSigningError {
    #[error("not a cosign simple-signing payload: {message}")]
    Malformed { message: String },
}

fn malformed(message: impl Into<String>) -> SimpleSigningError {
    SimpleSigningError::Malformed {
        message: message.into(),
    }
}

/// The payload signing `digest` as the image at `identity` (a docker
/// reference, `HOST/REPO` or `HOST/REPO:TAG`), canonical JSON.
pub fn payload(identity: &str, digest: &Digest, creator: &str) -> Vec<u8> {
    crate::oci::json::to_canonical_vec(&json!({
        "critical": {
            "identity": { "docker-reference": identity },
            "image": { "docker-manifest-digest": digest.to_string() },
            "type": SIGNATURE_TYPE,
        },
        "optional": { "creator": creator },
    }))
}

/// A signed payload: its bytes and the annotations its layer carries.
pub struct Signed {
    pub payload: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// Signs `digest` as the image at `identity`.
pub fn sign(identity: &str, digest: &Digest, creator: &str, key: &PrivateKey) -> Signed {
    use base64::Engine;
    let payload = payload(identity, digest, creator);
    let sig = key.sign(&payload);
    Signed {
        annotations: BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        )]),
        payload,
    }
}

/// What a payload claims, read as strictly as containers/image reads it:
/// `critical` holds exactly `identity`, `image` and `type`, each exactly
/// its one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub identity: String,
    pub digest: String,
}

pub fn read_payload(bytes: &[u8]) -> Result<Claims, SimpleSigningError> {
    if bytes.len() > PAYLOAD_LIMIT {
        return Err(malformed(format!("larger than {PAYLOAD_LIMIT} bytes")));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let exact = |v: &Value, what: &str, keys: &[&str]| -> Result<(), SimpleSigningError> {
        let Some(o) = v.as_object() else {
            return Err(malformed(format!("{what} is not an object")));
        };
        let mut found: Vec<&str> = o.keys().map(String::as_str).collect();
        found.sort_unstable();
        let mut want = keys.to_vec();
        want.sort_unstable();
        if found != want {
            return Err(malformed(format!(
                "{what} has the fields [{}], not [{}]",
                found.join(", "),
                want.join(", ")
            )));
        }
        Ok(())
    };
    exact(&v, "the payload", &["critical", "optional"])?;
    let c = &v["critical"];
    exact(c, "critical", &["identity", "image", "type"])?;
    exact(&c["identity"], "critical.identity", &["docker-reference"])?;
    exact(&c["image"], "critical.image", &["docker-manifest-digest"])?;
    if c["type"] != SIGNATURE_TYPE {
        return Err(malformed(format!(
            "critical.type is {}, not {SIGNATURE_TYPE:?}",
            c["type"]
        )));
    }
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| malformed(format!("{what} is not a string")))
    };
    Ok(Claims {
        identity: text(&c["identity"]["docker-reference"], "docker-reference")?,
        digest: text(
            &c["image"]["docker-manifest-digest"],
            "docker-manifest-digest",
        )?,
    })
}

/// Whether `key` made the base64 `signature` over `payload`.
pub fn verifies(key: &PublicKey, payload: &[u8], signature: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(signature)
        .is_ok_and(|sig| key.verifies(payload, &sig))
}

/// What cosign 2.x keeps under an image's `.sig` and `.att` tags, made
/// from `referrers` (artifact manifests in `store`): each simple-signing
/// signature as a `.sig` layer, and the envelope of each Sigstore bundle
/// as a `.att` layer (`application/vnd.dsse.envelope.v1+json`, annotated
/// with its `predicateType` as `cosign attest` annotates it), its
/// signature's key id the signer's (from the referrer's annotation; the
/// bundle's own is empty, see `bundle`). Artifacts of other forms, keyless
/// bundles and bundles that do not read have no place there and are left
/// out.
pub fn attachments(
    store: &BlobStore,
    referrers: &[Descriptor],
) -> Result<Vec<Attachment>, AttestError> {
    let mut out = Vec::new();
    for d in referrers {
        let Ok(digest) = our_digest(d.digest()) else {
            continue;
        };
        let opened = match artifact::open(store, &digest, Some(d.size())) {
            Ok(o) => o,
            // Not something stele reads: not something it converts.
            Err(AttestError::Malformed { .. }) => continue,
            Err(e) => return Err(e),
        };
        let (which, bytes, media_type, annotations) = match opened.form {
            Form::SimpleSigning => (
                Attached::Signatures,
                opened.content.clone(),
                SIMPLE_SIGNING,
                opened.layer_annotations.clone(),
            ),
            Form::Bundle => {
                // Only a key's bundle has a .att form; a keyless one needs
                // its certificate and log entry, which only its own tags
                // carry. What does not read is left where it is.
                let Ok(bundle) = Bundle::from_json(&opened.content) else {
                    continue;
                };
                if !matches!(bundle.material, Material::PublicKey { .. }) {
                    continue;
                }
                let mut envelope = bundle.envelope;
                let Ok(statement) = serde_json::from_slice::<Statement>(&envelope.payload) else {
                    continue;
                };
                if let Some(id) = &opened.keyid_label {
                    for s in &mut envelope.signatures {
                        s.keyid.clone_from(id);
                    }
                }
                (
                    Attached::Attestations,
                    envelope.to_json(),
                    crate::oci::media::DSSE_ENVELOPE,
                    BTreeMap::from([
                        (
                            PREDICATE_TYPE_ANNOTATION.to_string(),
                            statement.predicate_type,
                        ),
                        // cosign's attestation layers carry an empty
                        // signature annotation: the signature is inside.
                        (SIGNATURE_ANNOTATION.to_string(), String::new()),
                    ]),
                )
            }
            _ => continue,
        };
        let layer = annotate(
            descriptor(
                MediaType::from(media_type),
                &Digest::of(&bytes),
                bytes.len() as u64,
            ),
            &annotations,
        );
        out.push(Attachment {
            subject: opened.subject,
            which,
            layer,
            bytes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns_shape_and_verifies() {
        let key = PrivateKey::ecdsa_from_scalar(&[3; 32]).unwrap();
        let d = Digest::of(b"manifest");
        let s = sign("127.0.0.1:5000/team/app:1", &d, "stele 0.1.0", &key);
        assert_eq!(
            String::from_utf8(s.payload.clone()).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/team/app:1\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":{{\"creator\":\"stele 0.1.0\"}}}}"
            )
        );
        let claims = read_payload(&s.payload).unwrap();
        assert_eq!(claims.digest, d.to_string());
        let sig = &s.annotations[SIGNATURE_ANNOTATION];
        assert!(verifies(key.public(), &s.payload, sig));
        let mut other = s.payload.clone();
        other[10] ^= 1;
        assert!(!verifies(key.public(), &other, sig));
        let ed = PrivateKey::from_seed(&[3; 32]);
        assert!(!verifies(ed.public(), &s.payload, sig));
    }

    #[test]
    fn extra_critical_fields_are_refused_as_containers_image_does() {
        let bad = br#"{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature","extra":1},"optional":null}"#;
        assert!(read_payload(bad).is_err());
        let other_type = br#"{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":null}"#;
        assert!(read_payload(other_type)
            .unwrap_err()
            .to_string()
            .contains("atomic"));
    }
}
