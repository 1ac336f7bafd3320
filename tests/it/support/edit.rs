//! Editing a layout the way an attacker or a careless tool would: a blob
//! replaced and every descriptor above it fixed up, so that only a deeper
//! check than "does each blob match its digest" can tell.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::{blob, json, sha256_digest};

/// Stores `bytes` as a blob of `layout`; returns its digest and size.
pub fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256_digest(bytes);
    let path = layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    fs::write(&path, bytes).unwrap();
    (digest, bytes.len() as u64)
}

pub fn index(layout: &Path) -> Value {
    json(&fs::read(layout.join("index.json")).unwrap())
}

pub fn write_index(layout: &Path, index: &Value) {
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(index).unwrap(),
    )
    .unwrap();
}

/// Rewrites the manifest index.json lists at `pos` with `edit`, stores it
/// and points index.json at it. Returns the new manifest digest.
pub fn edit_manifest(layout: &Path, pos: usize, edit: impl FnOnce(&mut Value)) -> String {
    let mut idx = index(layout);
    let digest = idx["manifests"][pos]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = json(&blob(layout, &digest));
    edit(&mut manifest);
    let (digest, size) = put_blob(layout, &serde_json::to_vec(&manifest).unwrap());
    idx["manifests"][pos]["digest"] = Value::String(digest.clone());
    idx["manifests"][pos]["size"] = Value::from(size);
    write_index(layout, &idx);
    digest
}

/// Where index.json lists the attestation of `kind` (`provenance`, …).
pub fn attestation_pos(layout: &Path, kind: &str) -> usize {
    let idx = index(layout);
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .position(|d| d["annotations"]["dev.stele.attestation"] == kind)
        .unwrap_or_else(|| panic!("no {kind} attestation in {idx}"))
}

/// The manifest index.json lists first: the image stele wrote.
pub fn top_manifest(layout: &Path) -> Value {
    let idx = index(layout);
    json(&blob(
        layout,
        idx["manifests"][0]["digest"].as_str().unwrap(),
    ))
}

/// Flips one byte in the middle of the blob `digest`, in place.
pub fn flip_byte(layout: &Path, digest: &str) {
    let path = layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&path, bytes).unwrap();
}
