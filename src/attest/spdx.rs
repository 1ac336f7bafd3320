//! SPDX 2.3 JSON SBOM for one platform's image, made from what the build
//! installed (the lockfile's packages), not from scanning the result. Every
//! field is a function of the image, so the same build gives the same
//! bytes: the creation time is the build epoch and the namespace is
//! derived from the manifest digest.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{deb_purl, oci_purl, AttestInput, SbomPackage, URI_BASE};
use crate::oci::{Digest, Image};
use crate::timefmt::rfc3339;

pub const MEDIA_TYPE: &str = "application/spdx+json";
/// Predicate type when the document is wrapped in an in-toto statement
/// (the value cosign and in-toto attestation tooling use).
pub const PREDICATE_TYPE: &str = "https://spdx.dev/Document/v2.3";

const IMAGE_ID: &str = "SPDXRef-Image";
const BASE_ID: &str = "SPDXRef-BaseImage";
const NOASSERTION: &str = "NOASSERTION";
/// Prefix of the annotation saying which layer holds a package.
pub const LAYER_ANNOTATION_PREFIX: &str = "stele:layer=";

/// `documentNamespace`: unique per image, under a reserved domain.
pub fn namespace(image_name: &str, manifest: &Digest) -> String {
    format!("{URI_BASE}/spdx/{image_name}/{}", manifest.hex())
}

/// The SPDX document for `image` as canonical JSON bytes.
pub fn document(input: &AttestInput, image: &Image) -> Vec<u8> {
    crate::oci::json::to_canonical_vec(&document_value(input, image))
}

pub fn document_value(input: &AttestInput, image: &Image) -> Value {
    let name = &input.recipe.name;
    let digest = &image.manifest.digest;
    let created = rfc3339(input.recipe.epoch);
    let tool = format!("Tool: stele-{}", input.stele_version);
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
        packages.push(json!({
            "SPDXID": BASE_ID,
            "name": base.name,
            "versionInfo": base.digest.to_string(),
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
            "checksums": [sha256_checksum(&base.digest)],
            "externalRefs": [purl_ref(oci_purl(&base.name, &base.digest, &BTreeMap::new()))],
        }));
        relationships.push(relationship(IMAGE_ID, "DESCENDANT_OF", BASE_ID));
    }

    let mut license_refs = BTreeSet::new();
    for p in input.packages_for(image) {
        let id = package_id(&p);
        let declared = p.license.clone().unwrap_or_else(|| NOASSERTION.into());
        license_refs.extend(
            declared
                .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                .filter(|t| t.starts_with("LicenseRef-"))
                .map(str::to_string),
        );
        packages.push(json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            // Concluded is what an analysis of the files found; stele read
            // only the copyright file, which is what the package declares.
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": declared,
            "copyrightText": NOASSERTION,
            "sourceInfo": format!("built from Debian source package {}", p.source_package),
            "checksums": [sha256_checksum(&p.sha256)],
            "externalRefs": [purl_ref(deb_purl(&p.name, &p.version, &p.architecture))],
            "annotations": [{
                "annotationDate": created,
                "annotationType": "OTHER",
                "annotator": tool,
                "comment": format!("{LAYER_ANNOTATION_PREFIX}{}", p.layer_digest),
            }],
        }));
        relationships.push(relationship(IMAGE_ID, "CONTAINS", &id));
    }

    let mut doc = json!({
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

/// `SPDXRef-` ids allow only letters, digits, `.` and `-`; the .deb's hash
/// keeps two names that sanitize alike (`a+b`, `a-b`) apart.
fn package_id(p: &SbomPackage) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "SPDXRef-deb-{}-{}-{}",
        clean(&p.name),
        clean(&p.architecture),
        &p.sha256.hex()[..12]
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
