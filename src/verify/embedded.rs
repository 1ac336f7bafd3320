//! `verify --recipe`: is this image the one a recipe and its lock
//! describe? Answered from what the image carries inside itself (the
//! recipe and lock digests in its annotations and labels, the SBOM in its
//! layers), without building anything: a fast check for deploy jobs,
//! where `--rebuild` is the thorough one.

use std::collections::BTreeSet;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use serde_json::Value;

use super::fsck::{Walk, WalkedImage};
use super::Check;
use crate::image::provenance::{KEY_LOCK_DIGEST, KEY_RECIPE_DIGEST, SBOM_PATH};
use crate::lock::Lock;
use crate::oci::{our_digest, Digest, LayerBlob};
use crate::recipe::Recipe;
use crate::source::unpack::merged_view;
use crate::store::BlobStore;

/// Largest embedded SBOM read: a document per image of a few thousand
/// packages is well below it.
const SBOM_LIMIT: usize = 64 * 1024 * 1024;

/// A package as the lock pins it and the embedded SBOM must list it.
type PackageKey = (String, String, String, String);

/// What the recipe (and its lock) say the image must carry.
pub struct Expected {
    /// The recipe as the user named it.
    pub recipe_shown: String,
    pub recipe_digest: Digest,
    /// The lockfile, when the recipe has `[apt]`.
    pub lock: Option<ExpectedLock>,
    /// `[image] sbom`.
    pub sbom: bool,
}

pub struct ExpectedLock {
    pub shown: String,
    /// sha256 of the lockfile's bytes as they are on disk.
    pub digest: Digest,
    pub lock: Lock,
}

impl Expected {
    /// What `recipe` and its lockfile (read by the caller: `lock_bytes`
    /// exactly as on disk, `lock` parsed from them) say.
    pub fn new(recipe: &Recipe, lock: Option<(String, &[u8], Lock)>) -> Expected {
        Expected {
            recipe_shown: recipe.path.display().to_string(),
            recipe_digest: recipe.input_digest(),
            lock: lock.map(|(shown, bytes, lock)| ExpectedLock {
                shown,
                digest: Digest::of(bytes),
                lock,
            }),
            sbom: recipe.sbom,
        }
    }
}

/// The checks: `recipe digest`, `lock digest`, and `sbom PLATFORM` per
/// image.
pub fn check(store: &BlobStore, walk: &Walk, expected: &Expected) -> Vec<Check> {
    let images: Vec<&WalkedImage> = walk.images.iter().filter(|i| i.runnable).collect();
    let mut out = vec![digest_check(
        "recipe digest",
        KEY_RECIPE_DIGEST,
        &images,
        Some((&expected.recipe_shown, &expected.recipe_digest)),
    )];
    out.push(match &expected.lock {
        Some(l) => digest_check(
            "lock digest",
            KEY_LOCK_DIGEST,
            &images,
            Some((&l.shown, &l.digest)),
        ),
        None => digest_check("lock digest", KEY_LOCK_DIGEST, &images, None),
    });
    for image in images {
        out.push(sbom_check(store, image, expected));
    }
    out
}

/// The value of `key` in the manifest's annotations and the config's
/// labels of `image`. Either may be missing (a manifest rewritten from a
/// `docker save` archive has no annotations; the config keeps its
/// labels), but where both are there they must agree.
fn recorded(image: &WalkedImage, key: &str) -> Result<Option<String>, String> {
    let annotation = image
        .manifest
        .annotations()
        .as_ref()
        .and_then(|a| a.get(key).cloned());
    let label = image
        .config
        .as_ref()
        .and_then(|c| c.config().as_ref())
        .and_then(|c| c.labels().as_ref())
        .and_then(|l| l.get(key).cloned());
    match (annotation, label) {
        (Some(a), Some(l)) if a != l => Err(format!(
            "the {} manifest annotation {key} is {a} but its config label is {l}: one of them was changed",
            image.label,
        )),
        (a, l) => Ok(l.or(a)),
    }
}

/// `want`: the file that should have made the image and its digest;
/// `None` when there is no such file (a recipe without `[apt]` has no
/// lock), so the image must record none.
fn digest_check(
    name: &str,
    key: &str,
    images: &[&WalkedImage],
    want: Option<(&String, &Digest)>,
) -> Check {
    let mut found = BTreeSet::new();
    for image in images {
        match recorded(image, key) {
            Ok(v) => {
                found.insert(v);
            }
            Err(e) => return Check::fail(name, e),
        }
    }
    let found: Vec<Option<String>> = found.into_iter().collect();
    match (want, found.as_slice()) {
        (_, []) => Check::skipped(name, "the target has no image to check"),
        (Some((file, d)), [Some(v)]) if *v == d.to_string() => {
            Check::pass(name, format!("{key} is {d}, the digest of {file}"))
        }
        (Some((file, d)), [Some(v)]) => Check::fail(
            name,
            format!("the image was built from {v}, but {file} is {d}: it changed since the image was built, or the image is another one"),
        ),
        (Some((file, _)), [None]) => Check::fail(
            name,
            format!("the image records no {key}, so it cannot be matched to {file} (built by a stele that does not embed provenance, or by another tool)"),
        ),
        (None, [None]) => Check::skipped(name, "the recipe has no [apt], and the image records no lock"),
        (None, [Some(v)]) => Check::fail(
            name,
            format!("the image was built with a lock ({v}), but the recipe has no [apt]"),
        ),
        (_, many) => Check::fail(
            name,
            format!("the images disagree: {}", many.iter().map(|v| v.as_deref().unwrap_or("none")).collect::<Vec<_>>().join(", ")),
        ),
    }
}

fn platform_of(config: &ImageConfiguration) -> String {
    let mut p = format!("{}/{}", config.os(), config.architecture());
    if let Some(v) = config.variant() {
        p.push('/');
        p.push_str(v);
    }
    p
}

fn sbom_check(store: &BlobStore, image: &WalkedImage, expected: &Expected) -> Check {
    let Some(config) = &image.config else {
        return Check::skipped(
            format!("sbom {}", image.label),
            "the config could not be read (see its blob check)",
        );
    };
    let platform = platform_of(config);
    let name = format!("sbom {platform}");
    if !expected.sbom {
        return Check::skipped(
            name,
            format!("{} sets [image] sbom = false", expected.recipe_shown),
        );
    }
    if image.layers_intact.contains(&false) {
        return Check::skipped(name, "a layer blob did not verify (see its blob check)");
    }
    let layers = match layer_blobs(&image.manifest, config) {
        Ok(l) => l,
        Err(e) => return Check::fail(name, e),
    };
    let key = SBOM_PATH.trim_start_matches('/');
    let view = match merged_view(store, &layers, &|p| p == key) {
        Ok(v) => v,
        Err(e) => return Check::fail(name, format!("the layers cannot be read: {e}")),
    };
    let bytes = match view.get(key).map(|n| &n.kind) {
        Some(crate::fstree::NodeKind::File(c)) if c.size() <= SBOM_LIMIT as u64 => {
            match c.read_all() {
                Ok(b) => b,
                Err(e) => return Check::fail(name, format!("{SBOM_PATH}: {e}")),
            }
        }
        Some(crate::fstree::NodeKind::File(_)) => {
            return Check::fail(
                name,
                format!("{SBOM_PATH} is larger than {SBOM_LIMIT} bytes"),
            )
        }
        Some(_) => return Check::fail(name, format!("{SBOM_PATH} is not a file")),
        None => {
            return Check::fail(
                name,
                format!("the image has no {SBOM_PATH}, but the recipe embeds one"),
            )
        }
    };
    let listed = match sbom_packages(&bytes) {
        Ok(l) => l,
        Err(e) => return Check::fail(name, format!("{SBOM_PATH}: {e}")),
    };
    let locked: BTreeSet<PackageKey> = expected
        .lock
        .as_ref()
        .and_then(|l| l.lock.platforms.get(&platform))
        .map(|p| {
            p.packages
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        p.version.clone(),
                        p.architecture.clone(),
                        p.sha256.hex().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let show = |set: Vec<&PackageKey>| {
        let mut s: Vec<String> = set
            .iter()
            .take(5)
            .map(|(n, v, a, _)| format!("{n} {v} ({a})"))
            .collect();
        if set.len() > 5 {
            s.push(format!("and {} more", set.len() - 5));
        }
        s.join(", ")
    };
    let missing: Vec<&PackageKey> = locked.difference(&listed).collect();
    let extra: Vec<&PackageKey> = listed.difference(&locked).collect();
    let from = expected
        .lock
        .as_ref()
        .map_or("the recipe (no [apt])".to_string(), |l| l.shown.clone());
    match (missing.is_empty(), extra.is_empty()) {
        (true, true) => Check::pass(
            name,
            format!(
                "{SBOM_PATH} lists the {} package{} of {from}",
                listed.len(),
                if listed.len() == 1 { "" } else { "s" }
            ),
        ),
        _ => {
            let mut detail = format!("{SBOM_PATH} does not list the packages of {from}:");
            if !missing.is_empty() {
                detail.push_str(&format!(" missing {}", show(missing)));
            }
            if !extra.is_empty() {
                detail.push_str(&format!(" not locked {}", show(extra)));
            }
            Check::fail(name, detail)
        }
    }
}

/// The image's layers as the model reads them, each with its DiffID.
fn layer_blobs(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<Vec<LayerBlob>, String> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(
            "the config's DiffIDs do not match the manifest's layers (see diff_ids)".into(),
        );
    }
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id): (&Descriptor, &String)| {
            Ok(LayerBlob {
                media_type: d.media_type().clone(),
                digest: our_digest(d.digest()).map_err(|e| e.to_string())?,
                size: d.size(),
                diff_id: diff_id
                    .parse()
                    .map_err(|e: crate::oci::digest::DigestParseError| e.to_string())?,
            })
        })
        .collect()
}

/// The Debian packages an SPDX document lists (those with a `pkg:deb/`
/// purl): name, version, architecture and the .deb's sha256.
fn sbom_packages(bytes: &[u8]) -> Result<BTreeSet<PackageKey>, String> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON document: {e}"))?;
    let packages = doc["packages"]
        .as_array()
        .ok_or("not an SPDX document: it has no packages")?;
    let mut out = BTreeSet::new();
    for p in packages {
        let Some(purl) = p["externalRefs"].as_array().and_then(|refs| {
            refs.iter()
                .filter_map(|r| r["referenceLocator"].as_str())
                .find(|l| l.starts_with("pkg:deb/"))
        }) else {
            continue;
        };
        let arch = purl
            .split_once("?arch=")
            .map(|(_, a)| a.split('&').next().unwrap_or(a).to_string())
            .ok_or_else(|| format!("package purl {purl} names no arch"))?;
        let sha256 = p["checksums"]
            .as_array()
            .and_then(|c| {
                c.iter()
                    .find(|c| c["algorithm"] == "SHA256")
                    .and_then(|c| c["checksumValue"].as_str())
            })
            .ok_or_else(|| format!("package {purl} has no SHA256 checksum"))?;
        let field = |k: &str| {
            p[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("package {purl} has no {k}"))
        };
        out.insert((
            field("name")?,
            field("versionInfo")?,
            arch,
            sha256.to_string(),
        ));
    }
    Ok(out)
}
