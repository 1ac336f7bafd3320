//! Reading an artifact back: its manifest and layer from a store, both
//! verified by digest and size, then what it says (`check`) and who
//! signed it (`signer`), kept apart so a verifier can tell "about another
//! image" from "signed by someone else".

use std::collections::BTreeMap;

use oci_spec::image::ImageManifest;

use super::{Form, Kind, ANNOTATION_ATTESTATION, ANNOTATION_KEYID, ANNOTATION_PLATFORM};
use crate::attest::bundle::{self, Bundle, Material};
use crate::attest::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use crate::attest::keys::PublicKey;
use crate::attest::{cosign, AttestError, Statement};
use crate::oci::cosign::{SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT_TYPE};
use crate::oci::media::MANIFEST_LIMIT;
use crate::oci::model::our_digest;
use crate::oci::Digest;
use crate::store::BlobStore;

const CONTENT_LIMIT: u64 = 256 << 20;

/// An artifact read back from a store, not yet checked.
#[derive(Clone, Debug)]
pub struct Opened {
    /// Digest of the artifact manifest.
    pub digest: Digest,
    pub kind: Kind,
    pub form: Form,
    pub platform: Option<String>,
    pub subject: Digest,
    pub layer_media_type: String,
    pub layer_annotations: BTreeMap<String, String>,
    /// The key id the manifest's annotation names (a label only).
    pub keyid_label: Option<String>,
    pub content: Vec<u8>,
}

/// What a checked artifact says.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The statement, for provenance and signed SBOMs.
    pub statement: Option<Statement>,
    /// The SBOM or provenance predicate (`null` for a signature).
    pub predicate: serde_json::Value,
    /// A signature's claims.
    pub claims: Option<cosign::Claims>,
}

/// Who signed an artifact, as far as the given keys can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    /// Not signed at all (a plain SBOM, an unsigned statement).
    Unsigned,
    /// Signed by `keys[index]`, whose key id is `keyid`.
    Key { index: usize, keyid: String },
    /// Signed, but by none of the keys; `who` names the signer as the
    /// artifact does (key ids, a bundle's key hint, a certificate).
    Other { who: String },
    /// It names one of the keys as its signer (by key id or hint), but
    /// that key's signature does not verify: altered after signing, or
    /// forged.
    Altered { keyid: String },
    /// Its signature cannot be read or checked; `why` says.
    Unverifiable { why: String },
}

/// Reads the artifact manifest `digest` and its layer from `store`,
/// verifying both blobs' digests and sizes. What it is comes from stele's
/// annotation, else from what cosign writes (a bundle's predicate type
/// annotation, a signature's `artifactType`) or the SBOM media types.
pub fn open(store: &BlobStore, digest: &Digest, size: Option<u64>) -> Result<Opened, AttestError> {
    let malformed = |message: String| AttestError::Malformed {
        digest: digest.clone(),
        message,
    };
    let bytes = store.read_verified(digest, size, MANIFEST_LIMIT)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| malformed(format!("manifest: {e}")))?;
    let annotations = manifest.annotations().clone().unwrap_or_default();
    let artifact_type = manifest
        .artifact_type()
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let kind = annotations
        .get(ANNOTATION_ATTESTATION)
        .and_then(|n| Kind::from_name(n))
        .or_else(|| {
            annotations
                .get(bundle::ANNOTATION_PREDICATE_TYPE)
                .and_then(|p| Kind::of_predicate(p))
        })
        .or_else(|| {
            [Kind::Spdx, Kind::CycloneDx]
                .into_iter()
                .find(|k| k.document_type() == artifact_type)
        })
        .or((artifact_type == SIGNATURE_ARTIFACT_TYPE).then_some(Kind::Signature))
        .ok_or_else(|| {
            malformed(format!(
                "no known `{ANNOTATION_ATTESTATION}` annotation, and its artifactType `{artifact_type}` is none stele reads"
            ))
        })?;
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
    let layer_media_type = layer.media_type().to_string();
    let form = Form::of_layer(kind, &layer_media_type).ok_or_else(|| {
        malformed(format!(
            "its layer's media type {layer_media_type} is not what a {} holds",
            kind.name()
        ))
    })?;
    let layer_digest = our_digest(layer.digest()).map_err(|e| malformed(e.to_string()))?;
    let content = store.read_verified(&layer_digest, Some(layer.size()), CONTENT_LIMIT)?;
    Ok(Opened {
        digest: digest.clone(),
        kind,
        form,
        platform: annotations.get(ANNOTATION_PLATFORM).cloned(),
        subject,
        layer_media_type,
        layer_annotations: layer
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        keyid_label: annotations.get(ANNOTATION_KEYID).cloned(),
        content,
    })
}

impl Opened {
    fn malformed(&self, message: String) -> AttestError {
        AttestError::Malformed {
            digest: self.digest.clone(),
            message,
        }
    }

    fn envelope(&self) -> Result<Envelope, AttestError> {
        let dsse = |e| AttestError::Dsse {
            digest: self.digest.clone(),
            error: e,
        };
        match self.form {
            Form::Bundle => Bundle::from_json(&self.content)
                .map(|b| b.envelope)
                .map_err(|e| AttestError::Bundle {
                    digest: self.digest.clone(),
                    error: e,
                }),
            Form::Dsse => Envelope::from_json(&self.content).map_err(dsse),
            _ => Err(self.malformed("it holds no envelope".into())),
        }
    }

    /// Checks that this artifact is about `expected`: its OCI subject,
    /// and where it has one its statement's subjects or its signature's
    /// claimed digest; that a statement's predicate type is the kind's.
    /// Signatures are not checked here (see [`Opened::signer`]).
    pub fn check(&self, expected: &Digest) -> Result<Checked, AttestError> {
        let wrong = |found: String| AttestError::WrongSubject {
            digest: self.digest.clone(),
            expected: expected.clone(),
            found,
        };
        if &self.subject != expected {
            return Err(wrong(self.subject.to_string()));
        }
        let statement_bytes = match self.form {
            Form::Bundle | Form::Dsse => {
                let env = self.envelope()?;
                if env.payload_type != PAYLOAD_TYPE_IN_TOTO {
                    return Err(self.malformed(format!(
                        "envelope payloadType is {}, not {PAYLOAD_TYPE_IN_TOTO}",
                        env.payload_type
                    )));
                }
                env.payload
            }
            Form::Statement => self.content.clone(),
            Form::Document => {
                return Ok(Checked {
                    predicate: serde_json::from_slice(&self.content)
                        .map_err(|e| self.malformed(format!("document: {e}")))?,
                    statement: None,
                    claims: None,
                })
            }
            Form::SimpleSigning => {
                let claims = cosign::read_payload(&self.content)
                    .map_err(|e| self.malformed(e.to_string()))?;
                if claims.digest != expected.to_string() {
                    return Err(wrong(format!("a signature of {}", claims.digest)));
                }
                return Ok(Checked {
                    statement: None,
                    predicate: serde_json::Value::Null,
                    claims: Some(claims),
                });
            }
        };
        let statement: Statement = serde_json::from_slice(&statement_bytes)
            .map_err(|e| self.malformed(format!("statement: {e}")))?;
        if !self.kind.accepts_predicate(&statement.predicate_type) {
            return Err(self.malformed(format!(
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
            claims: None,
        })
    }

    /// Which of `keys`, if any, signed this artifact.
    pub fn signer(&self, keys: &[PublicKey]) -> Signer {
        match self.form {
            Form::Statement | Form::Document => Signer::Unsigned,
            Form::SimpleSigning => {
                let Some(sig) = self.layer_annotations.get(SIGNATURE_ANNOTATION) else {
                    return Signer::Unverifiable {
                        why: format!("its layer has no {SIGNATURE_ANNOTATION} annotation"),
                    };
                };
                match keys
                    .iter()
                    .position(|k| cosign::verifies(k, &self.content, sig))
                {
                    Some(index) => Signer::Key {
                        index,
                        keyid: keys[index].keyid().to_string(),
                    },
                    None => self.unverified(keys, &[], "an unknown key".into()),
                }
            }
            Form::Bundle | Form::Dsse => {
                let (envelope, names, who) = if self.form == Form::Bundle {
                    match Bundle::from_json(&self.content) {
                        Ok(b) => {
                            let hint = match &b.material {
                                Material::PublicKey { hint } => hint.clone(),
                                Material::Certificate { .. } => {
                                    return Signer::Unverifiable {
                                        why: "it is signed keylessly (a Fulcio certificate); stele checks key signatures only: use cosign verify with --certificate-identity for it".into(),
                                    }
                                }
                            };
                            let who = b.signer();
                            (b.envelope, vec![hint], who)
                        }
                        Err(e) => return Signer::Unverifiable { why: e.to_string() },
                    }
                } else {
                    match Envelope::from_json(&self.content) {
                        Ok(e) => {
                            let ids = e.signatures.iter().map(|s| s.keyid.clone()).collect();
                            let who = format!("key {}", e.signers());
                            (e, ids, who)
                        }
                        Err(e) => return Signer::Unverifiable { why: e.to_string() },
                    }
                };
                match keys.iter().position(|k| envelope.verify(k).is_ok()) {
                    Some(index) => Signer::Key {
                        index,
                        keyid: keys[index].keyid().to_string(),
                    },
                    None => self.unverified(keys, &names, who),
                }
            }
        }
    }

    /// None of `keys` verified the signature: `Altered` when the artifact
    /// names one of them as its signer (its key id annotation, or `names`:
    /// the envelope's key ids or the bundle's hint), else `Other`.
    fn unverified(&self, keys: &[PublicKey], names: &[String], fallback: String) -> Signer {
        let named = keys.iter().find(|k| {
            self.keyid_label.as_deref() == Some(k.keyid())
                || names
                    .iter()
                    .any(|n| !n.is_empty() && (n == k.keyid() || *n == k.hint()))
        });
        match named {
            Some(k) => Signer::Altered {
                keyid: k.keyid().to_string(),
            },
            None => Signer::Other {
                who: self.labelled_signer(fallback),
            },
        }
    }

    /// `fallback`, with the key id the manifest's annotation names first
    /// when it has one.
    fn labelled_signer(&self, fallback: String) -> String {
        match &self.keyid_label {
            Some(id) => format!("key {id}"),
            None => fallback,
        }
    }
}
