//! Classic docker-archives: what `docker save` wrote before Docker 25,
//! `podman save` and `skopeo copy … docker-archive:` write. They hold no
//! manifest, only `manifest.json` naming a config file and layer files
//! (uncompressed tars; older ones in `<id>/layer.tar` folders that
//! symlink to each other for shared layers). Such an image is converted
//! into the model: the config blob as it is, each layer blob as it is
//! stored (an uncompressed layer is a `media::DOCKER_LAYER` blob whose
//! digest is its DiffID), and a Docker v2 manifest made here over them.
//!
//! That manifest's digest is *not* the one the image had in its registry:
//! the registry's manifest named the compressed layers it served, which
//! `docker save` did not keep. Such an image is the same image by config
//! digest (its image ID) and DiffIDs, never by manifest digest.

use std::collections::BTreeMap;
use std::io::{self, Read};

use oci_spec::image::MediaType;

use super::layout::Selector;
use super::members::{clean_name, scratch_dir, Member, MemberKind, Members};
use super::tar_guard::layer_limits;
use super::{read_built, Opened, SourceError};
use crate::oci::digest::hash_reader;
use crate::oci::media::{
    CONFIG_LIMIT, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, MANIFEST_LIMIT,
    OCI_LAYER_ZSTD,
};
use crate::oci::model::image_manifest;
use crate::oci::{descriptor, Built, Digest, JsonBlob};
use crate::store::{BlobStore, StoreError};

/// How many links a `manifest.json` path may pass through.
const MAX_LINK_HOPS: usize = 8;

#[derive(serde::Deserialize)]
pub(super) struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

impl ManifestItem {
    pub(super) fn describe(&self) -> String {
        match self.repo_tags.as_deref() {
            Some(tags) if !tags.is_empty() => tags.join(" "),
            _ => format!("untagged image {}", self.config),
        }
    }

    /// `RepoTags` entries are `name:tag`; a ref name matches either.
    fn named(&self, want: &str) -> bool {
        self.repo_tags
            .iter()
            .flatten()
            .any(|t| t == want || t.rsplit_once(':').is_some_and(|(_, tag)| tag == want))
    }
}

/// Opens the image `selector` names in a classic docker-archive. A digest
/// selects by the converted manifest's digest or by config digest (the
/// image ID `docker images` shows); a ref name by `RepoTags` entry or tag.
pub(super) fn open_classic(members: &Members, selector: &Selector) -> Result<Opened, SourceError> {
    let name = members.path.display().to_string();
    let unusable = |message: String| SourceError::Unusable {
        image: name.clone(),
        message,
    };
    let m = members
        .get("manifest.json")
        .filter(|m| m.kind == MemberKind::File)
        .ok_or_else(|| unusable("it has no manifest.json file".into()))?;
    let bytes = members.read_small(m, MANIFEST_LIMIT)?;
    let items: Vec<ManifestItem> = serde_json::from_slice(&bytes).map_err(|e| {
        unusable(format!(
            "manifest.json is not a docker-archive manifest: {e}"
        ))
    })?;
    if items.is_empty() {
        return Err(unusable("manifest.json lists no image".into()));
    }
    let candidates = || {
        items
            .iter()
            .map(ManifestItem::describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let temp = scratch_dir(&members.path)?;
    let store = BlobStore::open(temp.path()).map_err(|e| SourceError::Store {
        image: name.clone(),
        error: e,
    })?;
    let built = match selector {
        Selector::Only if items.len() == 1 => convert(members, &items[0], &store)?,
        Selector::Only => {
            return Err(SourceError::Ambiguous {
                image: name,
                count: items.len(),
                candidates: candidates(),
            })
        }
        Selector::RefName(want) => {
            let matching: Vec<&ManifestItem> = items.iter().filter(|i| i.named(want)).collect();
            match matching.as_slice() {
                [one] => convert(members, one, &store)?,
                [] => {
                    return Err(SourceError::NoMatch {
                        image: name,
                        selector: format!("named {want}"),
                        candidates: candidates(),
                    })
                }
                many => {
                    return Err(SourceError::Ambiguous {
                        image: name,
                        count: many.len(),
                        candidates: candidates(),
                    })
                }
            }
        }
        Selector::Digest(want) => {
            let mut found = None;
            for item in &items {
                let built = convert(members, item, &store)?;
                let image = &built.images[0];
                if &image.manifest.digest == want || &image.config.digest == want {
                    found = Some(built);
                    break;
                }
            }
            found.ok_or_else(|| SourceError::NoMatch {
                image: name.clone(),
                selector: want.to_string(),
                candidates: candidates(),
            })?
        }
    };
    Ok(Opened {
        name,
        store,
        built,
        referrers: Vec::new(),
        temp: Some(temp),
        warnings: Vec::new(),
    })
}

/// Follows `manifest.json`'s path `wanted` to a regular file member,
/// through links that stay inside the archive.
pub(super) fn resolve<'a>(members: &'a Members, wanted: &str) -> Result<&'a Member, SourceError> {
    let refuse = |problem: String| SourceError::Unusable {
        image: members.path.display().to_string(),
        message: format!("manifest.json names `{wanted}`, which {problem}"),
    };
    let mut name =
        clean_name(&members.path, wanted)?.ok_or_else(|| refuse("is the archive's root".into()))?;
    for _ in 0..MAX_LINK_HOPS {
        let m = members
            .get(&name)
            .ok_or_else(|| refuse(format!("the archive does not hold (looked for {name})")))?;
        name = match &m.kind {
            MemberKind::File => return Ok(m),
            MemberKind::Symlink(target) => {
                let base = name.rsplit_once('/').map_or("", |(dir, _)| dir);
                follow(base, target).ok_or_else(|| {
                    refuse(format!(
                        "leads through the symlink {name} -> {target} out of the archive"
                    ))
                })?
            }
            // Hard link targets are archive paths, not relative ones.
            MemberKind::Hardlink(target) => follow("", target).ok_or_else(|| {
                refuse(format!(
                    "leads through the hard link {name} -> {target} out of the archive"
                ))
            })?,
            MemberKind::Dir | MemberKind::Other(_) => {
                return Err(refuse(format!("is not a file ({name})")))
            }
        };
    }
    Err(refuse(format!(
        "passes through more than {MAX_LINK_HOPS} links"
    )))
}

/// `target` resolved against folder `base` (both archive paths), or
/// `None` when it is absolute or climbs above the archive's root.
fn follow(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Streams member `m` into `store`, returning its digest and size.
fn store_member(
    members: &Members,
    m: &Member,
    store: &BlobStore,
) -> Result<(Digest, u64), SourceError> {
    let image = members.path.display().to_string();
    let store_err = |source| SourceError::Store {
        image: image.clone(),
        error: source,
    };
    let io_err = |e| {
        store_err(StoreError::Io {
            path: store.root().to_path_buf(),
            error: e,
        })
    };
    let mut blob = store.begin().map_err(store_err)?;
    let copied = io::copy(&mut members.open(m)?, &mut blob).map_err(io_err)?;
    members.check_length(m, copied)?;
    blob.finish().map_err(store_err)
}

/// A stored layer's media type by its first bytes, and its DiffID.
fn layer_kind(
    store: &BlobStore,
    digest: &Digest,
    size: u64,
    image: &str,
) -> Result<(&'static str, Digest), SourceError> {
    let io_err = |e| SourceError::Store {
        image: image.to_string(),
        error: StoreError::Io {
            path: store.path(digest),
            error: e,
        },
    };
    let open = || {
        store
            .open_blob(digest)
            .map(|(f, _)| f)
            .map_err(|e| SourceError::Store {
                image: image.to_string(),
                error: e,
            })
    };
    let mut magic = [0u8; 4];
    let n = open()?.read(&mut magic).map_err(io_err)?;
    let reader = io::BufReader::with_capacity(256 * 1024, open()?);
    // A bomb is cut off at the layer's decompressed-size limit.
    let limit = layer_limits(size).bytes;
    let bounded = |(diff_id, n): (Digest, u64)| {
        if n > limit {
            return Err(SourceError::Unusable {
                image: image.to_string(),
                message: format!(
                    "layer {digest} decompresses to more than {limit} bytes, the limit for a layer of {size} bytes"
                ),
            });
        }
        Ok(diff_id)
    };
    match &magic[..n] {
        [0x1f, 0x8b, ..] => {
            let decoder = flate2::read::MultiGzDecoder::new(reader).take(limit + 1);
            let diff_id = bounded(hash_reader(decoder).map_err(io_err)?)?;
            Ok((DOCKER_LAYER_GZIP, diff_id))
        }
        [0x28, 0xb5, 0x2f, 0xfd] => {
            let decoder = zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err)?;
            let diff_id = bounded(hash_reader(decoder.take(limit + 1)).map_err(io_err)?)?;
            // The OCI type is what containers/image and containerd write
            // for zstd in either manifest kind.
            Ok((OCI_LAYER_ZSTD, diff_id))
        }
        _ => Ok((DOCKER_LAYER, digest.clone())),
    }
}

/// Converts one `manifest.json` entry into a single-image `Built` whose
/// blobs are in `store`, checking each layer against the config's DiffID.
fn convert(
    members: &Members,
    item: &ManifestItem,
    store: &BlobStore,
) -> Result<Built, SourceError> {
    let image = members.path.display().to_string();
    let config_member = resolve(members, &item.config)?;
    if config_member.size > CONFIG_LIMIT {
        return Err(SourceError::Unusable {
            image,
            message: format!(
                "config {} is {} bytes, beyond the {CONFIG_LIMIT}-byte limit",
                item.config, config_member.size
            ),
        });
    }
    let (config_digest, config_size) = store_member(members, config_member, store)?;
    // `<hex>.json` and `blobs/sha256/<hex>` name the config by its digest.
    let named_hex = item
        .config
        .trim_end_matches(".json")
        .rsplit('/')
        .next()
        .filter(|h| Digest::from_hex(h).is_ok());
    if let Some(hex) = named_hex {
        if hex != config_digest.hex() {
            return Err(SourceError::Unusable {
                image,
                message: format!(
                    "config {} is named after sha256:{hex} but its content is {config_digest}; the archive is damaged",
                    item.config
                ),
            });
        }
    }
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    // A member named many times is stored and hashed once.
    let mut seen: BTreeMap<String, (Digest, u64, &'static str, Digest)> = BTreeMap::new();
    for path in &item.layers {
        let m = resolve(members, path)?;
        let (digest, size, media_type, diff_id) = match seen.get(&m.name) {
            Some(known) => known.clone(),
            None => {
                let (digest, size) = store_member(members, m, store)?;
                let (media_type, diff_id) = layer_kind(store, &digest, size, &image)?;
                let known = (digest, size, media_type, diff_id);
                seen.insert(m.name.clone(), known.clone());
                known
            }
        };
        layers.push(descriptor(MediaType::from(media_type), &digest, size));
        diff_ids.push((path, diff_id));
    }
    let manifest = image_manifest(
        MediaType::from(DOCKER_MANIFEST),
        descriptor(MediaType::from(DOCKER_CONFIG), &config_digest, config_size),
        layers,
        &BTreeMap::new(),
    );
    let manifest = JsonBlob::canonical(manifest);
    store
        .put_bytes(&manifest.bytes)
        .map_err(|e| SourceError::Store {
            image: image.clone(),
            error: e,
        })?;
    let top = descriptor(
        MediaType::from(DOCKER_MANIFEST),
        &manifest.digest,
        manifest.size(),
    );
    let built = read_built(store, &top, &image)?;
    for ((path, found), layer) in diff_ids.into_iter().zip(&built.images[0].layers) {
        if found != layer.diff_id {
            return Err(SourceError::Unusable {
                image,
                message: format!(
                    "layer {path} has DiffID {found} but the config lists {}; the archive is damaged",
                    layer.diff_id
                ),
            });
        }
    }
    Ok(built)
}

/// One image as a view of an archive names it: its config digest and its
/// layers' digests, in order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ViewImage {
    pub config: Digest,
    pub layers: Vec<Digest>,
}

/// The images `manifest.json` names, as docker and skopeo load them: each
/// config hashed, each layer named by the blob it is when it is a
/// `blobs/sha256/<hex>` member (the OCI view checks that blob's content),
/// else hashed. `None` when the archive has no `manifest.json`.
pub(super) fn docker_view(members: &Members) -> Result<Option<Vec<ViewImage>>, SourceError> {
    let Some(m) = members
        .get("manifest.json")
        .filter(|m| m.kind == MemberKind::File)
    else {
        return Ok(None);
    };
    let image = members.path.display().to_string();
    let bytes = members.read_small(m, MANIFEST_LIMIT)?;
    let items: Vec<ManifestItem> =
        serde_json::from_slice(&bytes).map_err(|e| SourceError::Unusable {
            image: image.clone(),
            message: format!("manifest.json is not a docker-archive manifest: {e}"),
        })?;
    let hash = |m: &Member| -> Result<Digest, SourceError> {
        let (digest, n) = hash_reader(members.open(m)?).map_err(|e| SourceError::Io {
            path: members.path.clone(),
            error: e,
        })?;
        members.check_length(m, n)?;
        Ok(digest)
    };
    let mut seen: BTreeMap<String, Digest> = BTreeMap::new();
    let mut view = Vec::new();
    for item in &items {
        let config = resolve(members, &item.config)?;
        if config.size > CONFIG_LIMIT {
            return Err(SourceError::Unusable {
                image,
                message: format!(
                    "config {} is {} bytes, beyond the {CONFIG_LIMIT}-byte limit",
                    item.config, config.size
                ),
            });
        }
        let config = hash(config)?;
        let mut layers = Vec::new();
        for path in &item.layers {
            let m = resolve(members, path)?;
            let digest = match seen.get(&m.name) {
                Some(d) => d.clone(),
                None => {
                    let named = m
                        .name
                        .strip_prefix("blobs/sha256/")
                        .and_then(|h| Digest::from_hex(h).ok());
                    let d = match named {
                        Some(d) => d,
                        None => hash(m)?,
                    };
                    seen.insert(m.name.clone(), d.clone());
                    d
                }
            };
            layers.push(digest);
        }
        view.push(ViewImage { config, layers });
    }
    Ok(Some(view))
}

#[cfg(test)]
mod tests {
    use super::follow;

    #[test]
    fn links_stay_inside_the_archive() {
        assert_eq!(
            follow("a", "../b/layer.tar").as_deref(),
            Some("b/layer.tar")
        );
        assert_eq!(follow("", "x/./y").as_deref(), Some("x/y"));
        assert_eq!(follow("a", "../../etc/passwd"), None);
        assert_eq!(follow("a", "/etc/passwd"), None);
    }
}
