//! DSSE envelopes (Dead Simple Signing Envelope, the format in-toto, cosign
//! and slsa-verifier read). The signature covers the pre-authentication
//! encoding of payload type and payload, never the JSON around them, so the
//! envelope's own serialization does not matter to verification.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::keys::{PrivateKey, PublicKey};

/// `payloadType` of an in-toto statement.
pub(crate) const PAYLOAD_TYPE_IN_TOTO: &str = crate::oci::media::IN_TOTO;

#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    #[error("not a DSSE envelope: {message}")]
    Malformed { message: String },
    #[error("no signature in the envelope verifies with key {keyid} (it is signed by: {found}); verify with the public key that signed it")]
    NoSignature { keyid: String, found: String },
    #[error("the signature by key {keyid} does not match the payload: the attestation was altered after signing, or was signed by another key with the same id")]
    BadSignature { keyid: String },
}

/// A decoded envelope: payload bytes and raw signature bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    payload: String,
    payload_type: String,
    signatures: Vec<WireSignature>,
}

#[derive(Serialize, Deserialize)]
struct WireSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths as ASCII decimal byte counts (DSSE protocol, "Signature
/// definition").
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// Base64 in either alphabet: DSSE lets producers use either, and
/// protobuf's JSON mapping (Sigstore bundles) reads either.
pub(crate) fn either_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text))
}

fn decode_b64(what: &str, text: &str) -> Result<Vec<u8>, DsseError> {
    either_base64(text).map_err(|e| DsseError::Malformed {
        message: format!("{what} is not base64: {e}"),
    })
}

impl Envelope {
    /// An envelope over `payload` signed by `key`, the signature's key id
    /// the key's (securesystemslib's default, see `keys`). Both key kinds
    /// sign deterministically, so the same payload and key give the same
    /// bytes.
    pub fn sign(payload_type: &str, payload: Vec<u8>, key: &PrivateKey) -> Envelope {
        let sig = key.sign(&pae(payload_type, &payload));
        Envelope {
            payload_type: payload_type.to_string(),
            payload,
            signatures: vec![Signature {
                keyid: key.keyid().to_string(),
                sig,
            }],
        }
    }

    /// Checks that `key` signed this envelope. Every signature is tried:
    /// a key id is an unsigned hint (DSSE makes it optional, and cosign
    /// and stele's bundles leave it empty), so it only names signers in
    /// messages, never decides.
    pub fn verify(&self, key: &PublicKey) -> Result<(), DsseError> {
        let message = pae(&self.payload_type, &self.payload);
        if self
            .signatures
            .iter()
            .any(|s| key.verifies(&message, &s.sig))
        {
            return Ok(());
        }
        if self.signatures.iter().any(|s| s.keyid == key.keyid()) {
            return Err(DsseError::BadSignature {
                keyid: key.keyid().to_string(),
            });
        }
        Err(DsseError::NoSignature {
            keyid: key.keyid().to_string(),
            found: self.signers(),
        })
    }

    /// The signatures' key ids, for messages: `nobody`, or the ids with
    /// `(no key id)` for empty ones.
    pub fn signers(&self) -> String {
        if self.signatures.is_empty() {
            return "nobody".into();
        }
        self.signatures
            .iter()
            .map(|s| {
                if s.keyid.is_empty() {
                    "(no key id)"
                } else {
                    s.keyid.as_str()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Canonical JSON (`payload` and `sig` in standard base64 with padding).
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            payload: STANDARD.encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSignature {
                    keyid: s.keyid.clone(),
                    sig: STANDARD.encode(&s.sig),
                })
                .collect(),
        };
        crate::oci::json::to_canonical_vec(&wire)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DsseError> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| DsseError::Malformed {
            message: e.to_string(),
        })?;
        let mut signatures = Vec::new();
        for s in wire.signatures {
            signatures.push(Signature {
                sig: decode_b64("a signature", &s.sig)?,
                keyid: s.keyid,
            });
        }
        Ok(Envelope {
            payload: decode_b64("the payload", &wire.payload)?,
            payload_type: wire.payload_type,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // The worked example in the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn sign_verify_and_tamper() {
        let key = PrivateKey::from_seed(&[3; 32]);
        let env = Envelope::sign(PAYLOAD_TYPE_IN_TOTO, b"{\"a\":1}".to_vec(), &key);
        let back = Envelope::from_json(&env.to_json()).unwrap();
        assert_eq!(back, env);
        back.verify(key.public()).unwrap();

        let mut tampered = back.clone();
        tampered.payload[2] ^= 1;
        let e = tampered.verify(key.public()).unwrap_err();
        assert!(e.to_string().contains(key.keyid()), "{e}");
        assert!(matches!(e, DsseError::BadSignature { .. }));

        let mut retyped = back.clone();
        retyped.payload_type = "text/plain".into();
        assert!(retyped.verify(key.public()).is_err());

        let other = PrivateKey::from_seed(&[4; 32]);
        let e = back.verify(other.public()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(other.keyid()) && msg.contains(key.keyid()),
            "{msg}"
        );
    }

    #[test]
    fn malformed_is_refused() {
        assert!(Envelope::from_json(b"{}").is_err());
        let bad = br#"{"payload":"!!","payloadType":"x","signatures":[]}"#;
        assert!(matches!(
            Envelope::from_json(bad),
            Err(DsseError::Malformed { .. })
        ));
    }
}
