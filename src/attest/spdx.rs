//! SPDX 2.3 JSON SBOM for one platform's image, made from what the build
//! installed (the lockfile's packages), not from scanning the result. Every
//! field is a function of the image, so the same build gives the same
//! bytes: the creation time is the build epoch and the namespace is
//! derived from the manifest digest.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::sbom::{oci_purl, Component, Distro};
use super::{AttestInput, BaseRef, DebPackage, URI_BASE};
use crate::oci::{Digest, Image, Platform};
use crate::timefmt::rfc3339;

pub(crate) const MEDIA_TYPE: &str = "application/spdx+json";
/// Predicate type when the document is wrapped in an in-toto statement:
/// the one `cosign attest --type spdxjson` writes and `cosign
/// verify-attestation --type spdxjson` looks for.
pub(crate) const PREDICATE_TYPE: &str = "https://spdx.dev/Document";

const IMAGE_ID: &str = "SPDXRef-Image";
const BASE_ID: &str = "SPDXRef-BaseImage";
const OS_ID: &str = "SPDXRef-OperatingSystem";
/// `sourceInfo` of a binary package: the words Trivy reads the source
/// package's name and version from (`built package from: NAME VERSION`).
const SOURCE_INFO_PREFIX: &str = "built package from:";
const NOASSERTION: &str = "NOASSERTION";
/// Prefix of the annotation saying which layer holds a package.
pub(crate) const LAYER_ANNOTATION_PREFIX: &str = "stele:layer=";

/// `documentNamespace`: unique per image, under a reserved domain.
pub fn namespace(image_name: &str, manifest: &Digest) -> String {
    format!("{URI_BASE}/spdx/{image_name}/{}", manifest.hex())
}

/// The SPDX document for `image` as canonical JSON bytes.
pub fn document(input: &AttestInput, image: &Image) -> Vec<u8> {
    crate::oci::json::to_canonical_vec(&document_value(input, image))
}

pub(crate) fn document_value(input: &AttestInput, image: &Image) -> Value {
    let name = &input.recipe.name;
    let digest = &image.manifest.digest;
    let created = rfc3339(input.recipe.epoch);
    let tool = format!("Tool: stele-{}", input.builder.stele_version);
    let purl_qualifiers = BTreeMap::from([
        ("arch", image.platform.architecture.clone()),
        ("tag", input.recipe.tag.clone()),
    ]);

    let mut packages = vec![json!({
        "SPDXID": IMAGE_ID,
        "name": name,
        "versionInfo": digest.to_string(),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [sha256_checksum(digest)],
        "externalRefs": [purl_ref(oci_purl(name, digest, &purl_qualifiers))],
        "comment": format!("OCI image manifest for {}", image.platform),
    })];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];

    if let Some(base) = &input.base {
        packages.push(base_entry(base));
        relationships.push(relationship(IMAGE_ID, "DESCENDANT_OF", BASE_ID));
    }

    let (distro, components) = input.components(image);
    let mut license_refs = BTreeSet::new();
    add_components(
        distro.as_ref(),
        &components,
        Some((&created, &tool)),
        &mut packages,
        &mut relationships,
        &mut license_refs,
    );

    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name} {}", image.platform),
        "documentNamespace": namespace(name, digest),
        "creationInfo": {
            "created": created,
            "creators": [tool],
        },
        "packages": packages,
        "relationships": relationships,
    });
    with_license_refs(doc, &license_refs)
}

/// What the SBOM embedded in an image is made from: only inputs of the
/// build, never the image's own digest or layers (the document is inside
/// them, so it cannot name them).
pub(crate) struct Embedded<'a> {
    pub image_name: &'a str,
    pub platform: &'a Platform,
    pub epoch: u64,
    pub base: Option<&'a BaseRef>,
    pub packages: &'a [DebPackage],
    /// The image's operating system, when known (see `sbom::Distro`).
    pub distro: Option<&'a Distro>,
}

/// `creators` of the embedded SBOM: no version, which would change the
/// image's bytes with every stele release that did not change them.
pub(crate) const EMBEDDED_TOOL: &str = "Tool: stele";

/// The SPDX document an image carries inside itself, as canonical JSON
/// bytes: the same inputs give the same bytes.
pub(crate) fn embedded_document(e: &Embedded) -> Vec<u8> {
    let platform = e.platform.to_string();
    let mut packages = vec![json!({
        "SPDXID": IMAGE_ID,
        "name": e.image_name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "comment": format!("the OCI image for {platform} that holds this document"),
    })];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    if let Some(base) = e.base {
        packages.push(base_entry(base));
        relationships.push(relationship(IMAGE_ID, "DESCENDANT_OF", BASE_ID));
    }
    let mut sorted = e.packages.to_vec();
    sorted.sort();
    sorted.dedup();
    let components: Vec<Component> = sorted.iter().map(|p| p.component(e.distro, None)).collect();
    let mut license_refs = BTreeSet::new();
    add_components(
        e.distro,
        &components,
        None,
        &mut packages,
        &mut relationships,
        &mut license_refs,
    );
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {platform}", e.image_name),
        "creationInfo": {
            "created": rfc3339(e.epoch),
            "creators": [EMBEDDED_TOOL],
        },
        "packages": packages,
        "relationships": relationships,
    });
    let mut doc = with_license_refs(doc, &license_refs);
    // Unique per content, as SPDX asks, yet a function of what the
    // document says only: the same packages give the same namespace
    // whatever else of the recipe (its compression, its files) changed.
    let content = Digest::of(&crate::oci::json::to_canonical_vec(&doc));
    doc["documentNamespace"] = Value::String(format!(
        "{URI_BASE}/spdx/{}/{platform}/{}",
        e.image_name,
        content.hex()
    ));
    crate::oci::json::to_canonical_vec(&doc)
}

/// Adds the operating system (when known) and `components` to the
/// document: the image CONTAINS the OS, the OS CONTAINS its packages (the
/// shape Trivy and Syft write and Trivy reads OS packages from), and the
/// image CONTAINS every other component. With `annotate` (the date and
/// annotator), each package with a layer says which.
fn add_components(
    distro: Option<&Distro>,
    components: &[Component],
    annotate: Option<(&str, &str)>,
    packages: &mut Vec<Value>,
    relationships: &mut Vec<Value>,
    license_refs: &mut BTreeSet<String>,
) {
    if let Some(d) = distro {
        packages.push(json!({
            "SPDXID": OS_ID,
            "name": d.id,
            "versionInfo": d.version_id,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        }));
        relationships.push(relationship(IMAGE_ID, "CONTAINS", OS_ID));
    }
    for c in components {
        let (id, mut entry) = component_entry(c, license_refs);
        if let (Some((date, annotator)), Some(layer)) = (annotate, &c.layer) {
            entry["annotations"] = json!([{
                "annotationDate": date,
                "annotationType": "OTHER",
                "annotator": annotator,
                "comment": format!("{LAYER_ANNOTATION_PREFIX}{layer}"),
            }]);
        }
        packages.push(entry);
        let parent = if c.os_package && distro.is_some() {
            OS_ID
        } else {
            IMAGE_ID
        };
        relationships.push(relationship(parent, "CONTAINS", &id));
    }
}

/// A component's SPDX entry and id; its `LicenseRef-`s are added to
/// `license_refs`.
fn component_entry(c: &Component, license_refs: &mut BTreeSet<String>) -> (String, Value) {
    let id = package_id(&c.name, &c.purl);
    let declared = c.license.clone().unwrap_or_else(|| NOASSERTION.into());
    license_refs.extend(
        declared
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|t| t.starts_with("LicenseRef-"))
            .map(str::to_string),
    );
    let mut entry = json!({
        "SPDXID": id,
        "name": c.name,
        "versionInfo": c.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        // Concluded is what an analysis of the files found; stele read
        // only what the package declares.
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": declared,
        "copyrightText": NOASSERTION,
        "externalRefs": [purl_ref(c.purl.clone())],
    });
    if let Some(d) = &c.sha256 {
        entry["checksums"] = json!([sha256_checksum(d)]);
    }
    match &c.source {
        Some((source, version)) => {
            entry["sourceInfo"] = json!(format!("{SOURCE_INFO_PREFIX} {source} {version}"));
        }
        None if !c.os_package => {
            entry["sourceInfo"] = json!(format!("installed from its lockfile as {}", c.purl));
        }
        None => {}
    }
    (id, entry)
}

fn base_entry(base: &BaseRef) -> Value {
    json!({
        "SPDXID": BASE_ID,
        "name": base.name,
        "versionInfo": base.digest.to_string(),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [sha256_checksum(&base.digest)],
        "externalRefs": [purl_ref(oci_purl(&base.name, &base.digest, &BTreeMap::new()))],
    })
}

fn with_license_refs(mut doc: Value, license_refs: &BTreeSet<String>) -> Value {
    if !license_refs.is_empty() {
        doc["hasExtractedLicensingInfos"] = Value::Array(
            license_refs
                .iter()
                .map(|r| {
                    json!({
                        "licenseId": r,
                        "name": r.trim_start_matches("LicenseRef-"),
                        "extractedText": "A license a Debian copyright file names that has no SPDX identifier; its text is in /usr/share/doc/<package>/copyright in the image.",
                    })
                })
                .collect(),
        );
    }
    doc
}

/// `SPDXRef-` ids allow only letters, digits, `.` and `-`; a hash of the
/// purl keeps two names that sanitize alike (`a+b`, `a-b`) and one
/// package's architectures apart.
fn package_id(name: &str, purl: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "SPDXRef-Package-{clean}-{}",
        &Digest::of(purl.as_bytes()).hex()[..12]
    )
}

fn sha256_checksum(d: &Digest) -> Value {
    json!({ "algorithm": "SHA256", "checksumValue": d.hex() })
}

fn purl_ref(purl: String) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}
