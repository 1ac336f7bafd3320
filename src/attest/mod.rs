//! Attestations: SLSA provenance, SPDX and CycloneDX SBOMs, optionally
//! signed as DSSE envelopes, each stored as an OCI artifact whose `subject`
//! is the image it describes. They live beside the image, never inside it:
//! the image digest is the same with or without them, so they may carry
//! real times and builder facts.
//!
//! Everything here is a function of [`AttestInput`]; the caller (the build)
//! collects the facts, nothing below reads the clock or the environment.

pub mod artifact;
pub mod cyclonedx;
pub mod dsse;
pub mod keys;
pub mod license;
pub mod slsa;
pub mod spdx;

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::lock::Lock;
use crate::oci::{Built, Digest, Image};
use crate::recipe::Recipe;
use crate::store::BlobStore;

pub use artifact::{Attestation, Kind};
pub use keys::{PrivateKey, PublicKey};

/// `_type` of an in-toto Statement v1.
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// Attestation URIs live under a reserved domain (RFC 6761 `.example`):
/// they are names, never fetched.
pub(crate) const URI_BASE: &str = "https://stele.example";

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("attestation {digest}: {error}")]
    Dsse {
        digest: Digest,
        error: dsse::DsseError,
    },
    #[error("attestation {digest} is not a stele attestation: {message}")]
    Malformed { digest: Digest, message: String },
    #[error("attestation {digest} is about {found}, not {expected}: it belongs to another image")]
    WrongSubject {
        digest: Digest,
        expected: Digest,
        found: String,
    },
    #[error("attestation {digest} is not signed, but key {keyid} was given: sign the build with `--sign-key`, or verify without `--key`")]
    Unsigned { digest: Digest, keyid: String },
    #[error("`{input}` is not an attestation choice: use none, provenance, sbom or all")]
    Selection { input: String },
}

/// The base image a build started from, as provenance and SBOMs name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseRef {
    /// The reference as the recipe wrote it, without the digest.
    pub name: String,
    /// Digest of the base's index or manifest that the recipe pins.
    pub digest: Digest,
}

/// One installed Debian package, as the SBOMs beside the image list it:
/// the package, and the image layer holding its files.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SbomPackage {
    pub deb: DebPackage,
    /// Digest of the image layer holding its files.
    pub layer_digest: Digest,
}

/// One installed Debian package, as every SBOM lists it; the SBOM inside
/// the image says no more (it cannot name its own layers).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    /// Debian architecture (`amd64`, …) or `all`.
    pub architecture: String,
    /// SPDX license expression from the package's copyright file (see
    /// [`license::from_debian_copyright`]); `None` when it states none
    /// stele can translate.
    pub license: Option<String>,
    /// Source package name (`Source:` without version).
    pub source_package: String,
    /// sha256 of the .deb file (a wheel's, an npm tarball's).
    pub sha256: Digest,
    /// A package of another ecosystem (`[python]`, `[node]`) names its
    /// own purl (`pkg:pypi/…`, `pkg:npm/…`); `None` is a Debian package.
    pub purl: Option<String>,
}

impl DebPackage {
    /// The package's purl: its own, else Debian's.
    pub fn purl(&self) -> String {
        self.purl
            .clone()
            .unwrap_or_else(|| deb_purl(&self.name, &self.version, &self.architecture))
    }
}

/// Everything attestations are made from. The build fills it.
pub struct AttestInput<'a> {
    pub built: &'a Built,
    pub recipe: &'a Recipe,
    pub lock: Option<&'a Lock>,
    /// Per platform (`linux/amd64`, as `Platform`'s Display writes it), the
    /// packages installed in that image.
    pub packages: BTreeMap<String, Vec<SbomPackage>>,
    pub base: Option<BaseRef>,
    /// Per platform, the maintainer-script effects and what became of
    /// them (provenance's byproducts).
    pub scripts: BTreeMap<String, crate::dpkg::install::ScriptReport>,
    /// Who built: a URI naming the build platform (SLSA `builder.id`).
    pub builder_id: String,
    pub stele_version: String,
    /// RFC 3339 times of the invocation, if the caller wants them recorded.
    pub invocation_started: Option<String>,
    pub invocation_finished: Option<String>,
}

impl AttestInput<'_> {
    /// The packages of `image`'s platform, sorted, duplicates removed.
    pub(crate) fn packages_for(&self, image: &Image) -> Vec<SbomPackage> {
        let mut list = self
            .packages
            .get(&image.platform.to_string())
            .cloned()
            .unwrap_or_default();
        list.sort();
        list.dedup();
        list
    }
}

/// `--attest none|provenance|sbom|all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    None,
    Provenance,
    Sbom,
    #[default]
    All,
}

impl Selection {
    pub fn provenance(self) -> bool {
        matches!(self, Selection::Provenance | Selection::All)
    }
    pub fn sbom(self) -> bool {
        matches!(self, Selection::Sbom | Selection::All)
    }
}

impl FromStr for Selection {
    type Err = AttestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => Selection::None,
            "provenance" => Selection::Provenance,
            "sbom" => Selection::Sbom,
            "all" => Selection::All,
            _ => {
                return Err(AttestError::Selection {
                    input: s.to_string(),
                })
            }
        })
    }
}

/// An in-toto Statement v1: what the predicate says, about which digests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

/// in-toto ResourceDescriptor v1 (the fields stele writes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, rename = "mediaType", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, serde_json::Value>,
}

impl ResourceDescriptor {
    pub fn sha256(digest: &Digest) -> BTreeMap<String, String> {
        BTreeMap::from([("sha256".to_string(), digest.hex().to_string())])
    }
}

impl Statement {
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.into(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        crate::oci::json::to_canonical_vec(self)
    }

    /// Whether `digest` is among the subjects.
    pub(crate) fn is_about(&self, digest: &Digest) -> bool {
        self.subject
            .iter()
            .any(|s| s.digest.get("sha256").map(String::as_str) == Some(digest.hex()))
    }
}

/// purl for a Debian binary package, as the issue and scanners spell it:
/// `pkg:deb/debian/NAME@VERSION?arch=ARCH`, percent-encoded the way the
/// reference purl implementation does (`+` → `%2B`, `:` and `~` kept).
pub(crate) fn deb_purl(name: &str, version: &str, arch: &str) -> String {
    format!(
        "pkg:deb/debian/{}@{}?arch={}",
        purl_encode(name),
        purl_encode(version),
        purl_encode(arch)
    )
}

/// purl for an OCI image by digest (purl-spec `oci` type); qualifiers in
/// key order as purl's canonical form requires.
pub(crate) fn oci_purl(name: &str, digest: &Digest, qualifiers: &BTreeMap<&str, String>) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let mut s = format!(
        "pkg:oci/{}@{}",
        purl_encode(&last.to_ascii_lowercase()),
        purl_encode(&digest.to_string())
    );
    let mut sep = '?';
    for (k, v) in qualifiers {
        s.push(sep);
        s.push_str(k);
        s.push('=');
        s.push_str(&purl_encode(v));
        sep = '&';
    }
    s
}

fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Makes the selected attestations for `input`, signs them with `key` when
/// given, writes every blob to `store`, and returns them in a stable order:
/// provenance, then per platform SPDX and CycloneDX. List their
/// `index_descriptor()`s in the layout's index.json.
pub fn attest(
    input: &AttestInput,
    selection: Selection,
    key: Option<&PrivateKey>,
    store: &BlobStore,
) -> Result<Vec<Attestation>, AttestError> {
    let mut out = Vec::new();
    if selection.provenance() {
        out.push(artifact::write(
            store,
            Kind::Provenance,
            None,
            input.built.top_descriptor(),
            &slsa::provenance(input),
            key,
        )?);
    }
    if selection.sbom() {
        for image in &input.built.images {
            let subject = vec![ResourceDescriptor {
                name: Some(input.recipe.name.clone()),
                digest: ResourceDescriptor::sha256(&image.manifest.digest),
                ..Default::default()
            }];
            let documents = [
                (Kind::Spdx, spdx::document_value(input, image)),
                (Kind::CycloneDx, cyclonedx::document_value(input, image)),
            ];
            for (kind, document) in documents {
                let statement = Statement::new(subject.clone(), kind.predicate_type(), document);
                out.push(artifact::write(
                    store,
                    kind,
                    Some(&image.platform),
                    image.manifest_descriptor(),
                    &statement,
                    key,
                )?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_match_the_reference_encoding() {
        assert_eq!(
            deb_purl("libstdc++6", "1:12.2.0+dfsg~x-14", "amd64"),
            "pkg:deb/debian/libstdc%2B%2B6@1:12.2.0%2Bdfsg~x-14?arch=amd64"
        );
        let d = Digest::of(b"");
        let q = BTreeMap::from([("tag", "latest".to_string()), ("arch", "amd64".into())]);
        assert_eq!(
            oci_purl("reg.example/team/Hello", &d, &q),
            format!("pkg:oci/hello@sha256:{}?arch=amd64&tag=latest", d.hex())
        );
    }

    #[test]
    fn selection_parses() {
        assert!("all".parse::<Selection>().unwrap().sbom());
        assert!(!"provenance".parse::<Selection>().unwrap().sbom());
        assert!(!"none".parse::<Selection>().unwrap().provenance());
        let e = "sboms".parse::<Selection>().unwrap_err().to_string();
        assert!(
            e.contains("sboms") && e.contains("none, provenance, sbom or all"),
            "{e}"
        );
    }
}
