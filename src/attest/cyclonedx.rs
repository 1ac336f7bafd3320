//! CycloneDX 1.5 JSON SBOM for one platform's image, from what the build
//! installed. Reproducible like the SPDX one: the timestamp is the build
//! epoch and the serial number a name-based UUID of the manifest digest.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};

use super::{oci_purl, AttestInput, URI_BASE};
use crate::oci::{Digest, Image};
use crate::timefmt::rfc3339;

pub(crate) const MEDIA_TYPE: &str = crate::oci::media::CYCLONEDX;
/// Predicate type when the BOM is wrapped in an in-toto statement.
pub(crate) const PREDICATE_TYPE: &str = "https://cyclonedx.org/bom/v1.5";
/// Property naming the digest of the layer that holds a component.
pub(crate) const LAYER_PROPERTY: &str = "stele:layer";

const IMAGE_REF: &str = "image";
const BASE_REF: &str = "base-image";

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
    for sbom in input.packages_for(image) {
        let p = &sbom.deb;
        let purl = p.purl();
        let mut c = json!({
            "type": "library",
            "bom-ref": purl,
            "name": p.name,
            "version": p.version,
            "purl": purl,
            "hashes": [sha256_hash(&p.sha256)],
            "properties": [
                { "name": LAYER_PROPERTY, "value": sbom.layer_digest.to_string() },
                { "name": "stele:source_package", "value": p.source_package },
                { "name": "stele:architecture", "value": p.architecture },
            ],
        });
        if let Some(l) = &p.license {
            // An expression is valid for a single id too, and is not
            // checked against the schema's license-id list, which may lag
            // behind the SPDX list the license came from.
            c["licenses"] = json!([{ "expression": l }]);
        }
        components.push(c);
        depends_on.push(purl);
    }

    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(name, digest),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(input.recipe.epoch),
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "stele",
                    "version": input.stele_version,
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
        "dependencies": [{ "ref": IMAGE_REF, "dependsOn": depends_on }],
    })
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
