//! CycloneDX 1.6 JSON SBOM for one platform's image, from what the build
//! installed. Reproducible like the SPDX one: the timestamp is the build
//! epoch and the serial number a name-based UUID of the manifest digest.
//!
//! Shaped as scanners read an image's BOM: the image is
//! `metadata.component`, the operating system a component of type
//! `operating-system`, and the OS packages depend on it (the image
//! `dependsOn` the OS, the OS `dependsOn` its packages: the graph Trivy
//! walks to find OS packages).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};

use super::sbom::{oci_purl, Component};
use super::{AttestInput, URI_BASE};
use crate::oci::{Digest, Image};
use crate::timefmt::rfc3339;

pub(crate) const MEDIA_TYPE: &str = crate::oci::media::CYCLONEDX;
/// Predicate type when the BOM is wrapped in an in-toto statement: the
/// one `cosign attest --type cyclonedx` writes and `cosign
/// verify-attestation --type cyclonedx` looks for.
pub(crate) const PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";
pub(crate) const SPEC_VERSION: &str = "1.6";
/// Property naming the digest of the layer that holds a component.
pub(crate) const LAYER_PROPERTY: &str = "stele:layer";

const IMAGE_REF: &str = "image";
const BASE_REF: &str = "base-image";
const OS_REF: &str = "operating-system";
/// The properties Trivy reads a package's source from (its own
/// namespace in CycloneDX's property taxonomy): Trivy does not read the
/// purl's `upstream`, and matches Debian's advisories by source.
const TRIVY_SOURCE_NAME: &str = "aquasecurity:trivy:SrcName";
const TRIVY_SOURCE_VERSION: &str = "aquasecurity:trivy:SrcVersion";

/// RFC 4122 namespace for URL names (appendix C).
const NAMESPACE_URL: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];

/// `urn:uuid:` serial number: a version 5 (SHA-1, name-based) UUID of a
/// URL naming this image's BOM. Name-based because a random one would make
/// every build's BOM differ; version 5 because the CycloneDX schema's
/// pattern admits only versions 1 to 5.
pub(crate) fn serial_number(image_name: &str, manifest: &Digest) -> String {
    let name = format!("{URI_BASE}/cyclonedx/{image_name}/{}", manifest.hex());
    let mut h = Sha1::new();
    h.update(NAMESPACE_URL);
    h.update(name.as_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("sha1 has 20 bytes");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// The BOM for `image` as canonical JSON bytes.
pub fn document(input: &AttestInput, image: &Image) -> Vec<u8> {
    crate::oci::json::to_canonical_vec(&document_value(input, image))
}

pub(crate) fn document_value(input: &AttestInput, image: &Image) -> Value {
    let name = &input.recipe.name;
    let digest = &image.manifest.digest;
    let qualifiers = BTreeMap::from([
        ("arch", image.platform.architecture.clone()),
        ("tag", input.recipe.tag.clone()),
    ]);

    let mut components = Vec::new();
    let mut depends_on = Vec::new();
    if let Some(base) = &input.base {
        components.push(json!({
            "type": "container",
            "bom-ref": BASE_REF,
            "name": base.name,
            "version": base.digest.to_string(),
            "purl": oci_purl(&base.name, &base.digest, &BTreeMap::new()),
            "hashes": [sha256_hash(&base.digest)],
        }));
        depends_on.push(BASE_REF.to_string());
    }
    let (distro, packages) = input.components(image);
    let mut os_depends = Vec::new();
    if let Some(d) = &distro {
        components.push(json!({
            "type": "operating-system",
            "bom-ref": OS_REF,
            "name": d.id,
            "version": d.version_id,
        }));
        depends_on.push(OS_REF.to_string());
    }
    for c in &packages {
        components.push(component(c));
        if c.os_package && distro.is_some() {
            os_depends.push(c.purl.clone());
        } else {
            depends_on.push(c.purl.clone());
        }
    }
    let mut dependencies = vec![json!({ "ref": IMAGE_REF, "dependsOn": depends_on })];
    if distro.is_some() {
        dependencies.push(json!({ "ref": OS_REF, "dependsOn": os_depends }));
    }

    json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial_number(name, digest),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(input.recipe.epoch),
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "stele",
                    "version": input.builder.stele_version,
                }],
            },
            "component": {
                "type": "container",
                "bom-ref": IMAGE_REF,
                "name": name,
                "version": digest.to_string(),
                "purl": oci_purl(name, digest, &qualifiers),
                "hashes": [sha256_hash(digest)],
                "properties": [{ "name": "stele:platform", "value": image.platform.to_string() }],
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}

/// A package's entry: its purl as its `bom-ref`, the file it came from
/// by hash, its declared license, and where it came from.
fn component(c: &Component) -> Value {
    let mut properties = Vec::new();
    if let Some(layer) = &c.layer {
        properties.push(json!({ "name": LAYER_PROPERTY, "value": layer.to_string() }));
    }
    for (name, value) in &c.properties {
        properties.push(json!({ "name": name, "value": value }));
    }
    if let Some((source, version)) = &c.source {
        properties.push(json!({ "name": TRIVY_SOURCE_NAME, "value": source }));
        properties.push(json!({ "name": TRIVY_SOURCE_VERSION, "value": version }));
    }
    let mut entry = json!({
        "type": "library",
        "bom-ref": c.purl,
        "name": c.name,
        "version": c.version,
        "purl": c.purl,
        "properties": properties,
    });
    if let Some(d) = &c.sha256 {
        entry["hashes"] = json!([sha256_hash(d)]);
    }
    if let Some(l) = &c.license {
        // An expression is valid for a single id too, and is not checked
        // against the schema's license-id list, which may lag behind the
        // SPDX list the license came from.
        entry["licenses"] = json!([{ "expression": l }]);
    }
    entry
}

fn sha256_hash(d: &Digest) -> Value {
    json!({ "alg": "SHA-256", "content": d.hex() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn serial_is_the_rfc4122_v5_uuid() {
        // Python: uuid.uuid5(uuid.NAMESPACE_URL, "https://stele.example/cyclonedx/hello/" + hex)
        let d = crate::oci::Digest::of(b"");
        assert_eq!(
            super::serial_number("hello", &d),
            "urn:uuid:bf528c0a-1170-532b-b757-5ee5a2f40342"
        );
    }
}
