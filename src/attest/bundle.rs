//! Sigstore bundles, v0.3 (protobuf-specs `dev.sigstore.bundle.v1.Bundle`
//! in its JSON form, field names as protobuf's JSON mapping spells them):
//! what cosign 3 attaches to an image as an OCI referrer and what
//! sigstore-go verifies. stele writes the DSSE form with a public key:
//!
//! ```text
//! {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//!  "verificationMaterial": {"publicKey": {"hint": BASE64(sha256(SPKI DER))}},
//!  "dsseEnvelope": {"payload": B64, "payloadType": "application/vnd.in-toto+json",
//!                   "signatures": [{"sig": B64}]}}
//! ```
//!
//! (`tlogEntries` is written as `[]`.) No transparency-log entry and no
//! timestamp: the bundle is verified
//! with the public key alone (`cosign verify --key K
//! --insecure-ignore-tlog`, sigstore-go's `WithKey` and
//! `WithNoObserverTimestamps`). The signature's key id is left empty, as
//! cosign writes it, because sigstore-go skips a signature naming any key
//! id but its own SSH-style fingerprint of the key.
//!
//! Keyless signing puts `"certificate": {"rawBytes": B64(DER)}` (the
//! Fulcio certificate) where `publicKey` is, and a Rekor entry in
//! `tlogEntries`; stele reads such a bundle's envelope but cannot check
//! it without a Fulcio root and a log, and says so.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::dsse::{Envelope, Signature};
use super::keys::PrivateKey;

/// The bundle's own media type, also the OCI layer's and the referrer's
/// `artifactType`.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The prefix every bundle media type starts with (cosign matches it).
pub(crate) const MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// The spelling v0.1 to v0.3 also had.
const MEDIA_TYPE_V03_PARAM: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

/// Manifest annotations cosign writes on a bundle referrer: what the
/// bundle holds, and the predicate type of its statement.
pub(crate) const ANNOTATION_CONTENT: &str = "dev.sigstore.bundle.content";
pub(crate) const ANNOTATION_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
pub(crate) const CONTENT_DSSE: &str = "dsse-envelope";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a Sigstore bundle: {message}")]
    Malformed { message: String },
}

fn malformed(message: impl Into<String>) -> BundleError {
    BundleError::Malformed {
        message: message.into(),
    }
}

/// What the bundle says the signer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Material {
    /// A key the verifier must already have; `hint` names it.
    PublicKey { hint: String },
    /// A keyless signer's certificate (DER).
    Certificate { der: Vec<u8> },
}

/// A bundle holding one DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub envelope: Envelope,
    pub material: Material,
    /// Whether the bundle carries transparency-log entries (stele never
    /// writes any, and does not check them).
    pub tlog_entries: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    media_type: String,
    verification_material: WireMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<WireEnvelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<WireHint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<WireCertificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<serde_json::Value>,
    // Written even when empty: protobuf's JSON reader takes `[]` as it
    // takes a missing field, and strict readers (sigstore-python's
    // pydantic models) want the field there.
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp_verification_data: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct WireHint {
    #[serde(default)]
    hint: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCertificate {
    raw_bytes: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEnvelope {
    payload: String,
    payload_type: String,
    signatures: Vec<WireSignature>,
}

#[derive(Serialize, Deserialize)]
struct WireSignature {
    sig: String,
    // protobuf's JSON leaves out empty strings; cosign writes none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    keyid: String,
}

fn decode_b64(what: &str, text: &str) -> Result<Vec<u8>, BundleError> {
    super::dsse::either_base64(text).map_err(|e| malformed(format!("{what} is not base64: {e}")))
}

impl Bundle {
    /// A bundle over `payload` (an in-toto statement) signed by `key`.
    pub fn sign(payload_type: &str, payload: Vec<u8>, key: &PrivateKey) -> Bundle {
        let mut envelope = Envelope::sign(payload_type, payload, key);
        for s in &mut envelope.signatures {
            s.keyid.clear();
        }
        Bundle {
            envelope,
            material: Material::PublicKey {
                hint: key.public().hint(),
            },
            tlog_entries: 0,
        }
    }

    /// Canonical JSON: keys sorted, which protobuf's JSON reader accepts
    /// in any order.
    pub fn to_json(&self) -> Vec<u8> {
        let material = match &self.material {
            Material::PublicKey { hint } => WireMaterial {
                public_key: Some(WireHint { hint: hint.clone() }),
                certificate: None,
                x509_certificate_chain: None,
                tlog_entries: Vec::new(),
                timestamp_verification_data: None,
            },
            Material::Certificate { der } => WireMaterial {
                public_key: None,
                certificate: Some(WireCertificate {
                    raw_bytes: STANDARD.encode(der),
                }),
                x509_certificate_chain: None,
                tlog_entries: Vec::new(),
                timestamp_verification_data: None,
            },
        };
        let wire = Wire {
            media_type: MEDIA_TYPE.into(),
            verification_material: material,
            dsse_envelope: Some(WireEnvelope {
                payload: STANDARD.encode(&self.envelope.payload),
                payload_type: self.envelope.payload_type.clone(),
                signatures: self
                    .envelope
                    .signatures
                    .iter()
                    .map(|s| WireSignature {
                        sig: STANDARD.encode(&s.sig),
                        keyid: s.keyid.clone(),
                    })
                    .collect(),
            }),
            message_signature: None,
        };
        crate::oci::json::to_canonical_vec(&wire)
    }

    /// Reads a bundle as sigstore-go accepts it for DSSE content: a v0.3
    /// media type (either spelling), verification material, and an
    /// envelope with exactly one signature.
    pub fn from_json(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if wire.media_type != MEDIA_TYPE && wire.media_type != MEDIA_TYPE_V03_PARAM {
            return Err(malformed(format!(
                "its mediaType is {}, not {MEDIA_TYPE}",
                wire.media_type
            )));
        }
        let Some(env) = wire.dsse_envelope else {
            return Err(malformed(if wire.message_signature.is_some() {
                "it holds a message signature, not a DSSE envelope: it signs a blob, not an attestation"
            } else {
                "it holds no dsseEnvelope"
            }));
        };
        let m = wire.verification_material;
        let material =
            match (m.public_key, m.certificate, m.x509_certificate_chain) {
                (Some(k), None, None) => Material::PublicKey { hint: k.hint },
                (None, Some(c), None) => Material::Certificate {
                    der: decode_b64("the certificate", &c.raw_bytes)?,
                },
                (None, None, Some(_)) => {
                    return Err(malformed(
                        "a v0.3 bundle cannot carry a certificate chain (sigstore-go refuses it)",
                    ))
                }
                _ => return Err(malformed(
                    "its verificationMaterial must hold exactly one of publicKey and certificate",
                )),
            };
        // A bundle's envelope carries exactly one signature (Sigstore's
        // bundle specification; sigstore-go refuses others).
        if env.signatures.len() != 1 {
            return Err(malformed(format!(
                "its envelope has {} signatures, not one",
                env.signatures.len()
            )));
        }
        let mut signatures = Vec::new();
        for s in env.signatures {
            signatures.push(Signature {
                sig: decode_b64("a signature", &s.sig)?,
                keyid: s.keyid,
            });
        }
        Ok(Bundle {
            envelope: Envelope {
                payload: decode_b64("the payload", &env.payload)?,
                payload_type: env.payload_type,
                signatures,
            },
            material,
            tlog_entries: m.tlog_entries.len(),
        })
    }

    /// How the bundle names its signer, for messages.
    pub fn signer(&self) -> String {
        match &self.material {
            Material::PublicKey { hint } => format!("the key with hint {hint}"),
            Material::Certificate { .. } => "a certificate (keyless)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_has_the_protobuf_json_names() {
        let key = PrivateKey::ecdsa_from_scalar(&[5; 32]).unwrap();
        let b = Bundle::sign(
            crate::oci::media::IN_TOTO,
            br#"{"_type":"x"}"#.to_vec(),
            &key,
        );
        let json: serde_json::Value = serde_json::from_slice(&b.to_json()).unwrap();
        assert_eq!(json["mediaType"], MEDIA_TYPE);
        assert_eq!(
            json["verificationMaterial"]["publicKey"]["hint"],
            key.public().hint()
        );
        assert_eq!(
            json["verificationMaterial"]["tlogEntries"],
            serde_json::json!([])
        );
        let sigs = json["dsseEnvelope"]["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 1);
        assert!(sigs[0].get("keyid").is_none(), "cosign writes no key id");
        assert_eq!(
            json["dsseEnvelope"]["payloadType"],
            "application/vnd.in-toto+json"
        );
        let back = Bundle::from_json(&b.to_json()).unwrap();
        assert_eq!(back, b);
        back.envelope.verify(key.public()).unwrap();
    }

    #[test]
    fn refuses_what_sigstore_go_refuses() {
        let key = PrivateKey::from_seed(&[1; 32]);
        let b = Bundle::sign("t", b"p".to_vec(), &key);
        let mut v: serde_json::Value = serde_json::from_slice(&b.to_json()).unwrap();
        let mut two = v.clone();
        let sig = two["dsseEnvelope"]["signatures"][0].clone();
        two["dsseEnvelope"]["signatures"]
            .as_array_mut()
            .unwrap()
            .push(sig);
        let e = Bundle::from_json(&serde_json::to_vec(&two).unwrap()).unwrap_err();
        assert!(e.to_string().contains("2 signatures"), "{e}");
        v["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json".into();
        assert!(Bundle::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
        assert!(Bundle::from_json(b"[]").is_err());
    }
}
