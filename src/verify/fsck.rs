//! The integrity checks: every blob against the digest and size that name
//! it, every media type against the ones the OCI image spec and Docker's
//! v2 formats define, and every config's `rootfs.diff_ids` against the
//! layers' uncompressed streams.
//!
//! The walk goes from the top descriptor down (index, manifests, configs,
//! layers) and keeps going past damage: a blob that does not verify is a
//! failed check naming it, and what it would have led to is skipped.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::Check;
use crate::oci::media::{
    self, CONFIG_LIMIT, CONFIG_TYPES, INDEX_TYPES, LAYER_TYPES, MANIFEST_LIMIT, MANIFEST_TYPES,
};
use crate::oci::{our_digest, Digest, LayerBlob};
use crate::source::unpack::{for_each_entry_on, Threads};
use crate::source::MANIFESTS_LIMIT;
use crate::store::BlobStore;

/// What the walk reached, for the checks that follow it.
#[derive(Clone, Debug, Default)]
pub struct Walk {
    /// One blob check per blob reached, in walk order.
    pub checks: Vec<Check>,
    pub indexes: Vec<WalkedIndex>,
    pub images: Vec<WalkedImage>,
    /// The top descriptor's digest and every index and manifest digest
    /// below it: what an attestation about this image may name.
    pub digests: Vec<Digest>,
    /// Each distinct layer blob's check, by digest and size: a layer
    /// named many times is read once.
    layer_results: BTreeMap<(Digest, u64), Result<(), String>>,
}

#[derive(Clone, Debug)]
pub struct WalkedIndex {
    pub label: String,
    pub descriptor_media_type: String,
    pub index: ImageIndex,
}

#[derive(Clone, Debug)]
pub struct WalkedImage {
    /// `image` for a single manifest, else its platform.
    pub label: String,
    /// The manifest's digest, as the descriptor that led here names it.
    pub digest: Option<Digest>,
    pub descriptor_media_type: String,
    pub manifest: ImageManifest,
    /// The config, when its blob verified and parsed.
    pub config: Option<ImageConfiguration>,
    /// Per layer, whether its blob verified.
    pub layers_intact: Vec<bool>,
    /// False for the `unknown/unknown` entries BuildKit puts in an index
    /// for its attestations: walked for their blobs, not checked as images.
    pub runnable: bool,
}

/// Indexes nested deeper than this are refused rather than followed: no
/// real image nests more than one, and a cycle must not loop forever.
const MAX_DEPTH: usize = 4;

pub(crate) fn walk(store: &BlobStore, top: &Descriptor) -> Walk {
    let mut w = Walk::default();
    let label = if media::is_index(top.media_type().as_ref()) {
        "index"
    } else {
        "image"
    };
    walk_node(store, top, label, true, 0, &mut w);
    w
}

/// The digest a descriptor names, or a failed check saying it is not one
/// stele can check.
fn digest_of(d: &Descriptor, name: &str) -> Result<Digest, Check> {
    our_digest(d.digest()).map_err(|e| {
        Check::fail(
            name,
            format!("{e} (stele checks sha256 digests; this blob cannot be verified)"),
        )
    })
}

/// Reads a JSON document blob, verified; records its blob check.
fn read_doc(
    store: &BlobStore,
    d: &Descriptor,
    name: &str,
    limit: u64,
    w: &mut Walk,
) -> Option<Vec<u8>> {
    let digest = match digest_of(d, name) {
        Ok(d) => d,
        Err(c) => {
            w.checks.push(c);
            return None;
        }
    };
    match store.read_verified(&digest, Some(d.size()), limit) {
        Ok(bytes) => {
            w.checks
                .push(Check::pass(name, format!("{digest} ({} bytes)", d.size())));
            Some(bytes)
        }
        Err(e) => {
            w.checks.push(Check::fail(name, e.to_string()));
            None
        }
    }
}

fn walk_node(
    store: &BlobStore,
    d: &Descriptor,
    label: &str,
    runnable: bool,
    depth: usize,
    w: &mut Walk,
) {
    if let Ok(digest) = our_digest(d.digest()) {
        if w.digests.contains(&digest) {
            return;
        }
        w.digests.push(digest);
    }
    let media_type = d.media_type().to_string();
    let is_index = media::is_index(&media_type) || sniff_index(store, d);
    if !is_index {
        walk_manifest(store, d, label, runnable, w);
        return;
    }
    let name = format!("blob {label}");
    let Some(bytes) = read_doc(store, d, &name, MANIFEST_LIMIT, w) else {
        return;
    };
    let index: ImageIndex = match serde_json::from_slice(&bytes) {
        Ok(i) => i,
        Err(e) => {
            w.checks.push(Check::fail(
                format!("document {label}"),
                format!("{} is not an image index: {e}", d.digest()),
            ));
            return;
        }
    };
    if index.manifests().len() > MANIFESTS_LIMIT {
        w.checks.push(Check::fail(
            format!("document {label}"),
            format!(
                "{} lists {} manifests, beyond the limit of {MANIFESTS_LIMIT} for an index",
                d.digest(),
                index.manifests().len()
            ),
        ));
        return;
    }
    if depth >= MAX_DEPTH {
        w.checks.push(Check::fail(
            format!("document {label}"),
            format!(
                "indexes nest deeper than {MAX_DEPTH} levels below {}",
                d.digest()
            ),
        ));
        return;
    }
    for (i, entry) in index.manifests().iter().enumerate() {
        let platform = entry.platform().as_ref();
        let attached = platform.is_some_and(|p| p.os().to_string() == "unknown");
        let sub = match platform {
            Some(_) if attached => {
                format!("attached {}", short(entry.digest().as_ref()))
            }
            Some(p) => {
                let mut s = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    s = format!("{s}/{v}");
                }
                s
            }
            None => format!("entry {}", i + 1),
        };
        let sub = if label == "index" {
            sub
        } else {
            format!("{label} {sub}")
        };
        walk_node(store, entry, &sub, runnable && !attached, depth + 1, w);
    }
    w.indexes.push(WalkedIndex {
        label: label.into(),
        descriptor_media_type: media_type,
        index,
    });
}

/// A descriptor with no useful media type may still be an index: look at
/// the document (quietly; its blob check comes with the walk).
fn sniff_index(store: &BlobStore, d: &Descriptor) -> bool {
    if media::is_manifest(d.media_type().as_ref()) {
        return false;
    }
    let Ok(digest) = our_digest(d.digest()) else {
        return false;
    };
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    store
        .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
        .ok()
        .and_then(|b| serde_json::from_slice::<Probe>(&b).ok())
        .is_some_and(|p| {
            p.media_type.as_deref().is_some_and(media::is_index)
                || (p.media_type.is_none() && p.manifests.is_some())
        })
}

/// `sha256:0123456789ab…`: enough to tell digests apart in a name.
pub fn short(digest: &str) -> String {
    match digest.get(..19) {
        Some(s) if digest.len() > 19 => format!("{s}…"),
        _ => digest.to_string(),
    }
}

fn walk_manifest(store: &BlobStore, d: &Descriptor, label: &str, runnable: bool, w: &mut Walk) {
    let Some(bytes) = read_doc(
        store,
        d,
        &format!("blob {label} manifest"),
        MANIFEST_LIMIT,
        w,
    ) else {
        return;
    };
    let manifest: ImageManifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            w.checks.push(Check::fail(
                format!("document {label} manifest"),
                format!("{} is not an image manifest: {e}", d.digest()),
            ));
            return;
        }
    };
    let config_name = format!("blob {label} config");
    let config =
        read_doc(store, manifest.config(), &config_name, CONFIG_LIMIT, w).and_then(|bytes| {
            if !runnable {
                return None;
            }
            match serde_json::from_slice::<ImageConfiguration>(&bytes) {
                Ok(c) => Some(c),
                Err(e) => {
                    w.checks.push(Check::fail(
                        format!("document {label} config"),
                        format!("{} is not an image config: {e}", manifest.config().digest()),
                    ));
                    None
                }
            }
        });
    let count = manifest.layers().len();
    let mut layers_intact = Vec::new();
    for (i, layer) in manifest.layers().iter().enumerate() {
        let name = format!("blob {label} layer {}/{count}", i + 1);
        layers_intact.push(check_layer_blob(store, layer, &name, w));
    }
    w.images.push(WalkedImage {
        label: label.into(),
        digest: our_digest(d.digest()).ok(),
        descriptor_media_type: d.media_type().to_string(),
        manifest,
        config,
        layers_intact,
        runnable,
    });
}

/// Layers are hashed as a stream, never loaded whole.
fn check_layer_blob(store: &BlobStore, layer: &Descriptor, name: &str, w: &mut Walk) -> bool {
    let digest = match digest_of(layer, name) {
        Ok(d) => d,
        Err(c) => {
            w.checks.push(c);
            return false;
        }
    };
    let foreign = layer.urls().as_ref().is_some_and(|u| !u.is_empty());
    if foreign && !store.contains(&digest) {
        // image-spec descriptor.md: a layer with `urls` may be fetched
        // from them; it need not be stored with the image.
        w.checks.push(Check::skipped(
            name,
            format!("{digest} is a foreign layer that is not stored here"),
        ));
        return false;
    }
    let result = w
        .layer_results
        .entry((digest.clone(), layer.size()))
        .or_insert_with(|| {
            store
                .verify(&digest, layer.size())
                .map_err(|e| e.to_string())
        })
        .clone();
    match result {
        Ok(()) => {
            w.checks.push(Check::pass(
                name,
                format!("{digest} ({} bytes)", layer.size()),
            ));
            true
        }
        Err(e) => {
            w.checks.push(Check::fail(name, e));
            false
        }
    }
}

/// One check per index and per image: every media type is one the spec
/// defines for its place, and a document's own `mediaType` agrees with
/// the descriptor that names it.
pub(crate) fn media_types(w: &Walk) -> Vec<Check> {
    let mut out = Vec::new();
    for index in &w.indexes {
        let mut problems = Vec::new();
        let own = index.index.media_type().as_ref().map(MediaType::to_string);
        check_document_type(
            "index",
            &index.descriptor_media_type,
            own.as_deref(),
            INDEX_TYPES,
            &mut problems,
        );
        for d in index.index.manifests() {
            let t = d.media_type().to_string();
            if !media::is_document(&t) {
                problems.push(format!(
                    "entry {} has media type {t}, which is no manifest or index type",
                    d.digest()
                ));
            }
        }
        out.push(result(
            format!("media types {}", index.label),
            problems,
            format!("index, {} entries", index.index.manifests().len()),
        ));
    }
    for image in w.images.iter().filter(|i| i.runnable) {
        let mut problems = Vec::new();
        let own = image
            .manifest
            .media_type()
            .as_ref()
            .map(MediaType::to_string);
        check_document_type(
            "manifest",
            &image.descriptor_media_type,
            own.as_deref(),
            MANIFEST_TYPES,
            &mut problems,
        );
        let config = image.manifest.config().media_type().to_string();
        if !CONFIG_TYPES.contains(&config.as_str()) {
            problems.push(format!(
                "config has media type {config}, which is no image config type"
            ));
        }
        let mut kinds: Vec<String> = Vec::new();
        for (i, layer) in image.manifest.layers().iter().enumerate() {
            let t = layer.media_type().to_string();
            if !LAYER_TYPES.contains(&t.as_str()) {
                problems.push(format!(
                    "layer {} has media type {t}, which is no layer type",
                    i + 1
                ));
            }
            if !kinds.contains(&t) {
                kinds.push(t);
            }
        }
        out.push(result(
            format!("media types {}", image.label),
            problems,
            format!(
                "manifest {}, config {config}, layers {}",
                own.as_deref().unwrap_or(&image.descriptor_media_type),
                if kinds.is_empty() {
                    "none".to_string()
                } else {
                    kinds.join(", ")
                }
            ),
        ));
    }
    out
}

fn check_document_type(
    what: &str,
    descriptor: &str,
    own: Option<&str>,
    allowed: &[&str],
    problems: &mut Vec<String>,
) {
    let effective = own.unwrap_or(descriptor);
    if !allowed.contains(&effective) {
        problems.push(format!(
            "the {what} has media type {effective}, which is no {what} type ({})",
            allowed.join(", ")
        ));
    }
    if let Some(own) = own {
        if own != descriptor && !descriptor.is_empty() {
            problems.push(format!(
                "the {what} says it is {own}, but the descriptor naming it says {descriptor}"
            ));
        }
    }
}

fn result(name: String, problems: Vec<String>, ok: String) -> Check {
    if problems.is_empty() {
        Check::pass(name, ok)
    } else {
        Check::fail(name, problems.join("; "))
    }
}

/// Per layer: the sha256 of its uncompressed stream is the DiffID its
/// config lists at the same position. This is what ties a config to its
/// layers: a config swapped for another image's passes every digest check
/// but fails here.
pub fn diff_ids(store: &BlobStore, w: &Walk, jobs: usize) -> Vec<Check> {
    let threads = Threads::new(jobs);
    let mut out = Vec::new();
    // Each distinct layer is uncompressed once, however often named.
    let mut found: BTreeMap<(String, String, u64), Result<Digest, String>> = BTreeMap::new();
    for image in w.images.iter().filter(|i| i.runnable) {
        let label = &image.label;
        let Some(config) = &image.config else {
            out.push(Check::skipped(
                format!("diff_ids {label}"),
                "the config could not be read (see its blob check)",
            ));
            continue;
        };
        let rootfs = config.rootfs();
        let claimed = rootfs.diff_ids();
        let layers = image.manifest.layers();
        if rootfs.typ() != "layers" || claimed.len() != layers.len() {
            out.push(Check::fail(
                format!("diff_ids {label}"),
                format!(
                    "the config's rootfs (type `{}`) lists {} DiffIDs for the manifest's {} layers: the config does not describe these layers",
                    rootfs.typ(),
                    claimed.len(),
                    layers.len()
                ),
            ));
            continue;
        }
        for (i, (layer, claimed)) in layers.iter().zip(claimed).enumerate() {
            let name = format!("diff_id {label} layer {}/{}", i + 1, layers.len());
            if !image.layers_intact[i] {
                out.push(Check::skipped(
                    name,
                    "the layer blob did not verify (see its blob check)",
                ));
                continue;
            }
            out.push(diff_id_check(
                store, layer, claimed, name, &mut found, &threads,
            ));
        }
    }
    out
}

fn diff_id_check(
    store: &BlobStore,
    layer: &Descriptor,
    claimed: &str,
    name: String,
    found: &mut BTreeMap<(String, String, u64), Result<Digest, String>>,
    threads: &Threads,
) -> Check {
    let claimed_digest: Digest = match claimed.parse() {
        Ok(d) => d,
        Err(e) => return Check::fail(name, format!("the config lists {e}")),
    };
    let digest = match our_digest(layer.digest()) {
        Ok(d) => d,
        Err(e) => return Check::fail(name, e.to_string()),
    };
    let blob = LayerBlob {
        media_type: layer.media_type().clone(),
        digest: digest.clone(),
        size: layer.size(),
        diff_id: claimed_digest.clone(),
    };
    let key = (
        digest.to_string(),
        layer.media_type().to_string(),
        layer.size(),
    );
    let result = found
        .entry(key)
        .or_insert_with(|| {
            for_each_entry_on(store, &blob, threads, &|_| false, &mut |_, _| {})
                .map_err(|e| e.to_string())
        })
        .clone();
    match result {
        Ok(found) if found == claimed_digest => Check::pass(name, format!("{found}")),
        Ok(found) => Check::fail(
            name,
            format!(
                "layer {digest} uncompresses to {found}, but the config lists {claimed_digest}: the config does not describe this layer"
            ),
        ),
        Err(e) => Check::fail(name, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::model::descriptor;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_missing_top_blob_is_a_named_failure() {
        let (_d, store) = store();
        let digest = Digest::of(b"nothing");
        let w = walk(&store, &descriptor(MediaType::ImageManifest, &digest, 7));
        assert_eq!(w.checks.len(), 1);
        assert_eq!(w.checks[0].name, "blob image manifest");
        assert_eq!(w.checks[0].status, super::super::Status::Fail);
        assert!(
            w.checks[0].detail.contains(&digest.to_string()),
            "{:?}",
            w.checks
        );
    }

    #[test]
    fn unknown_media_types_fail_and_name_the_place() {
        let manifest: ImageManifest = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/x-config", "digest": Digest::of(b"c").to_string(), "size": 1},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::of(b"l").to_string(), "size": 1},
                {"mediaType": "application/x-tarball", "digest": Digest::of(b"m").to_string(), "size": 1}
            ]
        }))
        .unwrap();
        let w = Walk {
            images: vec![WalkedImage {
                label: "image".into(),
                digest: None,
                descriptor_media_type: "application/vnd.docker.distribution.manifest.v2+json"
                    .into(),
                manifest,
                config: None,
                layers_intact: vec![true, true],
                runnable: true,
            }],
            ..Default::default()
        };
        let checks = media_types(&w);
        assert_eq!(checks.len(), 1);
        let d = &checks[0].detail;
        assert_eq!(checks[0].status, super::super::Status::Fail);
        assert!(d.contains("application/x-config"), "{d}");
        assert!(
            d.contains("layer 2 has media type application/x-tarball"),
            "{d}"
        );
        assert!(!d.contains("layer 1"), "{d}");
        assert!(
            d.contains("descriptor naming it says application/vnd.docker"),
            "{d}"
        );
    }

    #[test]
    fn short_digests() {
        let d = Digest::of(b"").to_string();
        assert_eq!(short(&d), "sha256:e3b0c44298fc…");
        assert_eq!(short("abc"), "abc");
    }
}
