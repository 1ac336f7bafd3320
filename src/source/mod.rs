//! Images that already exist: an OCI layout folder, an oci-archive, a
//! registry. Each opens into the model a build produces (`Built`, its blobs
//! in a `BlobStore`), so base images, `push`, `verify` and `diff` work the
//! same whatever the image came from.
//!
//! Everything read here is untrusted: every blob is checked against the
//! digest and size that names it, and documents are size-limited before they
//! are parsed.

pub mod archive;
pub(crate) mod docker_archive;
pub mod layout;
mod members;
pub mod registry;
pub(crate) mod tar_guard;
pub mod target;
pub mod unpack;
mod unpack_blocks;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::oci::media::{self, sniff_media_type, LimitError, CONFIG_LIMIT, MANIFEST_LIMIT};
use crate::oci::{our_digest, Built, Digest, Image, JsonBlob, Platform};
use crate::store::{BlobStore, StoreError};

pub use target::Target;

/// The most manifests an index may list (every source's limit).
pub(crate) use crate::oci::media::INDEX_ENTRIES_LIMIT as MANIFESTS_LIMIT;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not an OCI image layout (no oci-layout file); give the folder `stele build` wrote, or an archive")]
    NotLayout { path: PathBuf },
    #[error("{image}: {error}")]
    Store { image: String, error: StoreError },
    #[error("{image}: {what} {digest} is malformed: {message}")]
    Malformed {
        image: String,
        what: &'static str,
        digest: Digest,
        message: String,
    },
    #[error("{image}: {message}")]
    Unusable { image: String, message: String },
    /// A document beyond one of the limits every source shares.
    #[error("{image}: {error}")]
    Limit { image: String, error: LimitError },
    #[error("{image} holds {count} images ({candidates}); name one as {image}@sha256:…")]
    Ambiguous {
        image: String,
        count: usize,
        candidates: String,
    },
    #[error("{image} has no image {selector}; it holds {candidates}: name one of these")]
    NoMatch {
        image: String,
        selector: String,
        candidates: String,
    },
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("{image}: expected {expected} but it is {found}; the reference or the pin is wrong")]
    DigestMismatch {
        image: String,
        expected: Digest,
        found: Digest,
    },
    #[error("{path} is not an image archive: {message}")]
    NotArchive { path: PathBuf, message: String },
    #[error("{path}: its two views name different images: docker's manifest.json names {docker}, OCI's index.json names {oci}; docker and skopeo would load one, stele would check the other, so the archive is refused")]
    ViewsDisagree {
        path: PathBuf,
        docker: String,
        oci: String,
    },
    #[error("{path}: refusing archive member `{member}`: it {problem}")]
    UnsafeMember {
        path: PathBuf,
        member: String,
        problem: String,
    },
    #[error("{image}: the attestations the registry lists for it cannot be read; fix or delete that listing (the referrers tag) and push the image with its attestations again")]
    UnreadableReferrers {
        image: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("{image}: {}", mismatch)]
    DiffIdMismatch {
        image: String,
        mismatch: Box<DiffIdMismatch>,
    },
    #[error("{image}: {platform} layer {position} ({digest}) cannot be read to check its DiffID")]
    DiffIdUnreadable {
        image: String,
        platform: String,
        position: String,
        digest: Digest,
        #[source]
        source: Box<unpack::LayerReadError>,
    },
    #[error("{reference} is a registry image, and this command reads only local images; `stele pull` it into a layout first")]
    RegistryElsewhere { reference: String },
}

/// A layer whose uncompressed stream is not the DiffID its config lists.
#[derive(Debug, thiserror::Error)]
#[error("{platform} layer {position} ({digest}) uncompresses to {found}, but the config lists DiffID {claimed}: the config does not describe its layers; refusing the image")]
pub struct DiffIdMismatch {
    pub platform: String,
    /// `2/5`: which layer, of how many.
    pub position: String,
    pub digest: Digest,
    pub found: Digest,
    pub claimed: Digest,
}

/// Opens any image a user can name (`diff`, `push SOURCE`): a layout
/// folder, an archive file or a registry image. Ok means every blob
/// verified and every layer's DiffID is the one its config lists
/// (`Unchecked::check`).
pub fn open(target: &Target, registry: Option<&RegistryAccess>) -> Result<Opened, SourceError> {
    open_on(target, registry, 1)
}

/// [`open`], uncompressing up to `jobs` layers at once for the DiffID
/// check (and a registry's blobs moving as its settings say).
pub fn open_on(
    target: &Target,
    registry: Option<&RegistryAccess>,
    jobs: usize,
) -> Result<Opened, SourceError> {
    open_deferred(target, registry)?.check(jobs)
}

/// Opens an image a user names with its layers' bytes not yet read: a
/// layout's and a registry image's layer blobs are only checked to be
/// there and no longer than their descriptors say, for the DiffID check
/// to hash as it reads them (one pass, or none for layers checked before,
/// `cache::CheckedLayers`). An archive's are hashed as they are unpacked.
pub fn open_deferred(
    target: &Target,
    registry: Option<&RegistryAccess>,
) -> Result<Unchecked, SourceError> {
    let opened = match target {
        Target::Layout { path, selector } => layout::open_layout_base(path, selector)?,
        Target::Registry { reference } => match registry {
            Some(access) => {
                let reference = crate::registry::Reference::parse(reference)?;
                registry::open_registry_deferred(
                    &reference,
                    access.settings,
                    access.cache,
                    registry::Referrers::Lenient,
                )?
            }
            None => open_with(target, registry, registry::Referrers::Lenient)?,
        },
        Target::Archive { .. } => open_with(target, registry, registry::Referrers::Lenient)?,
    };
    Ok(Unchecked(opened))
}

/// An image taken in whose layers are still to be checked: read whole,
/// hashed against their digests and uncompressed to the DiffIDs their
/// configs list. Only a check makes it an `Opened` a command may use.
pub struct Unchecked(Opened);

impl Unchecked {
    /// The image as opened: its documents verified, its layers not yet.
    pub fn image(&self) -> &Opened {
        &self.0
    }

    /// Checks every layer in one pass each (`unpack::checked_diff_id_on`),
    /// up to `jobs` threads at once (a layer of independent blocks on
    /// several).
    pub fn check(self, jobs: usize) -> Result<Opened, SourceError> {
        let store = self.0.store.clone();
        let threads = unpack::Threads::new(jobs);
        self.check_with(jobs, |layer| {
            unpack::checked_diff_id_on(&store, layer, &threads).map(|(diff_id, _)| diff_id)
        })
    }

    /// Checks every layer with `diff_id`, whose Ok must mean that the
    /// layer's blob holds its digest's bytes (and size) and uncompresses
    /// to the DiffID returned; it is called once per distinct layer, up
    /// to `jobs` at once. The error is the first failing position's.
    pub(crate) fn check_with(
        self,
        jobs: usize,
        diff_id: impl Fn(&crate::oci::LayerBlob) -> Result<Digest, unpack::LayerReadError> + Sync,
    ) -> Result<Opened, SourceError> {
        check_diff_ids_with(&self.0, jobs, diff_id)?;
        Ok(self.0)
    }
}

/// `open` without the DiffID check, and strict about attestations a
/// registry lists but that cannot be read: for `verify`, which checks
/// DiffIDs itself and reports a mismatch as a failed check.
pub(crate) fn open_unchecked(
    target: &Target,
    registry: Option<&RegistryAccess>,
) -> Result<Opened, SourceError> {
    open_with(target, registry, registry::Referrers::Strict)
}

fn open_with(
    target: &Target,
    registry: Option<&RegistryAccess>,
    policy: registry::Referrers,
) -> Result<Opened, SourceError> {
    match target {
        Target::Layout { path, selector } => layout::open_layout(path, selector),
        Target::Archive {
            path,
            kind,
            selector,
        } => archive::open_archive(path, *kind, selector),
        Target::Registry { reference } => match registry {
            Some(access) => {
                let reference = crate::registry::Reference::parse(reference)?;
                registry::open_registry_with_referrers(
                    &reference,
                    access.settings,
                    access.cache,
                    policy,
                )
            }
            None => Err(SourceError::RegistryElsewhere {
                reference: reference.clone(),
            }),
        },
    }
}

/// What opening a registry target needs: how to talk to registries, and
/// the content-addressed cache the blobs go into.
pub struct RegistryAccess<'a> {
    pub settings: &'a crate::registry::RegistrySettings,
    pub cache: &'a BlobStore,
}

/// An image or index read back, with every blob it references in `store`
/// (verified when it was read). `referrers` are the other manifests stored
/// beside it whose `subject` is one of its manifests: attestations.
pub struct Opened {
    /// How the image was named, for messages.
    pub name: String,
    pub store: BlobStore,
    pub built: Built,
    pub referrers: Vec<Descriptor>,
    /// Keeps an unpacked archive's folder alive as long as the value.
    pub temp: Option<tempfile::TempDir>,
    /// What could not be read beside the image and was left out (a
    /// registry's attestations that cannot be listed or pulled whole),
    /// one message each, for the command to warn about.
    pub warnings: Vec<String>,
}

impl Opened {
    /// The digest a deployment would pin.
    pub fn digest(&self) -> &Digest {
        self.built.digest()
    }
}

/// Checks every layer of every image against the DiffID its config lists
/// at the same position, each distinct layer's DiffID found once by
/// `diff_id`, up to `jobs` layers at once. Ok means the configs describe the layers: an
/// image taken in (a pushed or pulled image) is the image its config says.
/// Every layer is read whatever the others give, so the error is the one
/// the first failing position gives, for any `jobs`.
fn check_diff_ids_with(
    opened: &Opened,
    jobs: usize,
    diff_id: impl Fn(&crate::oci::LayerBlob) -> Result<Digest, unpack::LayerReadError> + Sync,
) -> Result<(), SourceError> {
    let mut seen = BTreeSet::new();
    let distinct: Vec<&crate::oci::LayerBlob> = opened
        .built
        .images
        .iter()
        .flat_map(|image| &image.layers)
        .filter(|layer| seen.insert((layer.digest.clone(), layer.size)))
        .collect();
    let read = crate::parallel::map(
        &distinct,
        jobs,
        |layer| layer.size,
        |layer| Ok::<_, std::convert::Infallible>(diff_id(layer)),
    );
    let Ok(read) = read;
    let mut found: BTreeMap<(Digest, u64), Result<Digest, unpack::LayerReadError>> = distinct
        .iter()
        .map(|layer| (layer.digest.clone(), layer.size))
        .zip(read)
        .collect();
    for image in &opened.built.images {
        let count = image.layers.len();
        for (i, layer) in image.layers.iter().enumerate() {
            let position = format!("{}/{count}", i + 1);
            let key = (layer.digest.clone(), layer.size);
            let diff_id = match found.remove(&key) {
                Some(Ok(d)) => {
                    found.insert(key, Ok(d.clone()));
                    d
                }
                Some(Err(e)) => {
                    return Err(SourceError::DiffIdUnreadable {
                        image: opened.name.clone(),
                        platform: image.platform.to_string(),
                        position,
                        digest: layer.digest.clone(),
                        source: Box::new(e),
                    })
                }
                None => unreachable!("every layer was read"),
            };
            if diff_id != layer.diff_id {
                return Err(SourceError::DiffIdMismatch {
                    image: opened.name.clone(),
                    mismatch: Box::new(DiffIdMismatch {
                        platform: image.platform.to_string(),
                        position,
                        digest: layer.digest.clone(),
                        found: diff_id,
                        claimed: layer.diff_id.clone(),
                    }),
                });
            }
        }
    }
    Ok(())
}

/// Reads the manifest or index `top` from `store`, and what it references,
/// into a `Built`. Index entries for other operating systems than a
/// platform can run (`unknown/unknown` attestation manifests BuildKit
/// writes) are skipped; every blob is verified, layers by digest and size.
pub(crate) fn read_built(
    store: &BlobStore,
    top: &Descriptor,
    image: &str,
) -> Result<Built, SourceError> {
    read_built_with(store, top, image, LayerCheck::Hash)
}

/// How `read_built` checks layer blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LayerCheck {
    /// Each layer is hashed against its digest now.
    Hash,
    /// Each layer must be there and not longer than its descriptor says;
    /// its bytes are checked later, by whoever reads them (a base's
    /// layers: by the view read or the copy into the output).
    Later,
}

pub(crate) fn read_built_with(
    store: &BlobStore,
    top: &Descriptor,
    image: &str,
    check: LayerCheck,
) -> Result<Built, SourceError> {
    // A blob named many times is verified once: work follows the
    // distinct bytes, not the references.
    let mut verified = BTreeSet::new();
    let digest = descriptor_digest(top, image, "descriptor")?;
    let bytes = read_doc(store, &digest, top.size(), MANIFEST_LIMIT, image)?;
    let media_type = sniff_media_type(top.media_type(), &bytes);
    if media::is_index(media_type.as_ref()) {
        let index: JsonBlob<ImageIndex> =
            JsonBlob::parse(bytes).map_err(|e| SourceError::Malformed {
                image: image.into(),
                what: "index",
                digest: digest.clone(),
                message: e.to_string(),
            })?;
        media::check_index(
            &format!("index {digest}"),
            &digest.to_string(),
            index.value.manifests(),
        )
        .map_err(|error| SourceError::Limit {
            image: image.into(),
            error,
        })?;
        let mut images = Vec::new();
        for d in index.value.manifests() {
            if let Some(p) = d.platform() {
                if p.os().to_string() == "unknown" {
                    continue;
                }
            }
            let platform = d.platform().as_ref().map(|p| Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone(),
            });
            images.push(read_image(store, d, platform, image, &mut verified, check)?);
        }
        if images.is_empty() {
            return Err(SourceError::Unusable {
                image: image.into(),
                message: format!("index {digest} lists no runnable image"),
            });
        }
        Ok(Built {
            images,
            index: Some(index),
        })
    } else {
        let image = read_image_bytes(store, &digest, bytes, None, image, &mut verified, check)?;
        Ok(Built {
            images: vec![image],
            index: None,
        })
    }
}

fn descriptor_digest(d: &Descriptor, image: &str, what: &str) -> Result<Digest, SourceError> {
    our_digest(d.digest()).map_err(|e| SourceError::Unusable {
        image: image.into(),
        message: format!("{what} {}: {e}", d.digest()),
    })
}

fn read_doc(
    store: &BlobStore,
    digest: &Digest,
    size: u64,
    limit: u64,
    image: &str,
) -> Result<Vec<u8>, SourceError> {
    let what = if limit == CONFIG_LIMIT {
        "config"
    } else {
        "manifest"
    };
    media::check_document_size(what, &digest.to_string(), size).map_err(|error| {
        SourceError::Limit {
            image: image.into(),
            error,
        }
    })?;
    store
        .read_verified(digest, Some(size), limit)
        .map_err(|e| SourceError::Store {
            image: image.into(),
            error: e,
        })
}

fn read_image(
    store: &BlobStore,
    d: &Descriptor,
    platform: Option<Platform>,
    image: &str,
    verified: &mut BTreeSet<(Digest, u64)>,
    check: LayerCheck,
) -> Result<Image, SourceError> {
    let digest = descriptor_digest(d, image, "manifest")?;
    let bytes = read_doc(store, &digest, d.size(), MANIFEST_LIMIT, image)?;
    read_image_bytes(store, &digest, bytes, platform, image, verified, check)
}

fn read_image_bytes(
    store: &BlobStore,
    digest: &Digest,
    bytes: Vec<u8>,
    platform: Option<Platform>,
    image: &str,
    verified: &mut BTreeSet<(Digest, u64)>,
    check: LayerCheck,
) -> Result<Image, SourceError> {
    let malformed = |what: &'static str, digest: &Digest, message: String| SourceError::Malformed {
        image: image.into(),
        what,
        digest: digest.clone(),
        message,
    };
    let manifest: JsonBlob<ImageManifest> =
        JsonBlob::parse(bytes).map_err(|e| malformed("manifest", digest, e.to_string()))?;
    media::check_layers(&digest.to_string(), manifest.value.layers().len()).map_err(|error| {
        SourceError::Limit {
            image: image.into(),
            error,
        }
    })?;
    let cd = manifest.value.config();
    let config_digest = descriptor_digest(cd, image, "config")?;
    let config_bytes = read_doc(store, &config_digest, cd.size(), CONFIG_LIMIT, image)?;
    let config: JsonBlob<ImageConfiguration> = JsonBlob::parse(config_bytes)
        .map_err(|e| malformed("config", &config_digest, e.to_string()))?;
    for layer in manifest.value.layers() {
        let ld = descriptor_digest(layer, image, "layer")?;
        if !verified.insert((ld.clone(), layer.size())) {
            continue;
        }
        let checked = match check {
            LayerCheck::Hash => store.verify(&ld, layer.size()),
            LayerCheck::Later => store.check_present(&ld, layer.size()),
        };
        checked.map_err(|e| SourceError::Store {
            image: image.into(),
            error: e,
        })?;
    }
    let platform = platform.unwrap_or_else(|| Platform {
        os: config.value.os().to_string(),
        architecture: config.value.architecture().to_string(),
        variant: config.value.variant().clone(),
    });
    Image::from_stored(platform, config, manifest).ok_or_else(|| {
        malformed(
            "manifest",
            digest,
            "its layers and its config's rootfs.diff_ids differ in number or are not sha256".into(),
        )
    })
}
