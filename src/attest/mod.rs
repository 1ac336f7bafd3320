//! Attestations and signatures: SLSA provenance, SPDX and CycloneDX
//! SBOMs (signed as Sigstore bundles when a key is given, and always also
//! as plain SBOMs for scanners), and cosign-style image signatures, each
//! stored as an OCI artifact whose `subject` is the image it describes.
//! They live beside the image, never inside it: the image digest is the
//! same with or without them, so they may carry real times and builder
//! facts.
//!
//! Everything here is a function of [`AttestInput`]; the caller (the build)
//! collects the facts, nothing below reads the clock or the environment.

pub mod artifact;
pub mod bundle;
pub mod cosign;
pub mod cyclonedx;
pub mod dsse;
pub mod keys;
pub mod license;
pub mod sbom;
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
pub use keys::{Algorithm, PrivateKey, PublicKey};
pub use sbom::{Component, Distro};

/// `_type` of an in-toto Statement v1.
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// Where stele's documentation lives. stele has no public home yet, so
/// this is a placeholder under a reserved domain (RFC 6761 `.example`):
/// a user who publishes stele sets `--build-type` and `--builder-id` to
/// the URLs of their copy of the README. SPDX namespaces and CycloneDX
/// serial numbers are names under it, never fetched.
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
    #[error("attestation {digest}: {error}")]
    Bundle {
        digest: Digest,
        error: bundle::BundleError,
    },
    #[error("attestation {digest} is not a stele attestation: {message}")]
    Malformed { digest: Digest, message: String },
    #[error("attestation {digest} is about {found}, not {expected}: it belongs to another image")]
    WrongSubject {
        digest: Digest,
        expected: Digest,
        found: String,
    },
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
    /// The source package's version when `Source:` names one (a binNMU's
    /// or a renamed binary's), else `None`: the package's own version.
    pub source_version: Option<String>,
    /// sha256 of the .deb file (a wheel's, an npm tarball's).
    pub sha256: Digest,
    /// A package of another ecosystem (`[python]`, `[node]`) names its
    /// own purl (`pkg:pypi/…`, `pkg:npm/…`); `None` is a Debian package.
    pub purl: Option<String>,
}

/// Who built, as provenance names it: the CLI decides these from its
/// flags and environment.
#[derive(Clone, Debug)]
pub struct BuilderFacts {
    /// SLSA `builder.id`: a URI naming the build platform.
    pub id: String,
    /// SLSA `buildType`: a URI naming what the parameters mean.
    pub build_type: String,
    pub stele_version: String,
}

/// This build's run, as provenance's `runDetails.metadata` records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// The CI's name for this run (its job URL), when a CI said.
    pub invocation_id: Option<String>,
    /// RFC 3339 times the build started and finished.
    pub started_on: Option<String>,
    pub finished_on: Option<String>,
}

/// Everything attestations are made from. The build fills it.
pub struct AttestInput<'a> {
    pub built: &'a Built,
    pub recipe: &'a Recipe,
    pub lock: Option<&'a Lock>,
    /// Per platform (`linux/amd64`, as `Platform`'s Display writes it), the
    /// packages installed in that image.
    pub packages: BTreeMap<String, Vec<SbomPackage>>,
    /// Per platform, the image's operating system, when known.
    pub distros: BTreeMap<String, Distro>,
    pub base: Option<BaseRef>,
    /// Per platform, the maintainer-script effects and what became of
    /// them (provenance's byproducts).
    pub scripts: BTreeMap<String, crate::dpkg::install::ScriptReport>,
    pub builder: BuilderFacts,
    pub run: RunFacts,
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

    /// `image`'s operating system and the components its SBOMs list.
    pub(crate) fn components(&self, image: &Image) -> (Option<Distro>, Vec<Component>) {
        let distro = self.distros.get(&image.platform.to_string()).cloned();
        let components = self
            .packages_for(image)
            .iter()
            .map(|p| p.deb.component(distro.as_ref(), Some(&p.layer_digest)))
            .collect();
        (distro, components)
    }
}

/// What to sign, beyond the attestations: the image itself, in cosign's
/// simple-signing form, as the image at `identity` (a registry
/// repository, with the tag when pushed by one).
#[derive(Clone, Debug, Default)]
pub struct SignOptions<'a> {
    pub key: Option<&'a PrivateKey>,
    pub identity: Option<&'a str>,
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

/// Makes the selected attestations for `input` and writes every blob to
/// `store`, in a stable order: provenance, then per platform SPDX and
/// CycloneDX, then signatures. With a key, provenance and SBOMs are
/// Sigstore bundles, and each SBOM is also stored plain for scanners;
/// with a key and an identity, the index and every manifest get a
/// simple-signing signature. List their `index_descriptor()`s in the
/// layout's index.json.
pub fn attest(
    input: &AttestInput,
    selection: Selection,
    sign: &SignOptions,
    store: &BlobStore,
) -> Result<Vec<Attestation>, AttestError> {
    let mut out = Vec::new();
    let store_one = |kind: Kind,
                     platform: Option<&crate::oci::Platform>,
                     subject: oci_spec::image::Descriptor,
                     statement: &Statement,
                     out: &mut Vec<Attestation>|
     -> Result<(), AttestError> {
        match sign.key {
            Some(key) => {
                out.push(artifact::write_bundle(
                    store,
                    kind,
                    platform,
                    subject.clone(),
                    statement,
                    key,
                )?);
                // Scanners read SBOM referrers as plain documents.
                if kind != Kind::Provenance {
                    out.push(artifact::write_unsigned(
                        store, kind, platform, subject, statement,
                    )?);
                }
            }
            None => out.push(artifact::write_unsigned(
                store, kind, platform, subject, statement,
            )?),
        }
        Ok(())
    };
    if selection.provenance() {
        store_one(
            Kind::Provenance,
            None,
            input.built.top_descriptor(),
            &slsa::provenance(input),
            &mut out,
        )?;
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
                store_one(
                    kind,
                    Some(&image.platform),
                    image.manifest_descriptor(),
                    &statement,
                    &mut out,
                )?;
            }
        }
    }
    if let (Some(key), Some(identity)) = (sign.key, sign.identity) {
        let creator = format!("stele {}", input.builder.stele_version);
        let mut subjects = Vec::new();
        if input.built.index.is_some() {
            subjects.push(input.built.top_descriptor());
        }
        subjects.extend(input.built.images.iter().map(Image::manifest_descriptor));
        for subject in subjects {
            out.push(artifact::write_signature(
                store, subject, identity, &creator, key,
            )?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
