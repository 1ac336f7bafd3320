//! Reading an OCI image layout (image-spec `image-layout.md`) back.

use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::{read_built_with, read_doc, LayerCheck, Opened, SourceError};
use crate::oci::media::{self, MANIFEST_LIMIT};
use crate::oci::{model::ANNOTATION_REF_NAME, our_digest, Digest};
use crate::store::{open_untrusted, read_limited, BlobStore, OpenError};

/// Which of a layout's images to open: by digest, by
/// `org.opencontainers.image.ref.name`, or the only one there is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Only,
    Digest(Digest),
    RefName(String),
}

/// Opens the image `selector` names in the layout at `dir`. index.json
/// entries whose manifest has a `subject` are attestations: they are
/// returned as `referrers` of the image, never chosen as the image.
pub fn open_layout(dir: &Path, selector: &Selector) -> Result<Opened, SourceError> {
    open_layout_named(dir, selector, dir.display().to_string())
}

/// `open_layout`, naming the image `name` in messages: an unpacked
/// archive is named after the archive, not its temp folder.
pub(crate) fn open_layout_named(
    dir: &Path,
    selector: &Selector,
    name: String,
) -> Result<Opened, SourceError> {
    open_layout_checking(dir, selector, name, LayerCheck::Hash)
}

/// `open_layout` with layer blobs not hashed here: for a base image,
/// whose layers the build reads through their views (`source::view`),
/// made from hashed bytes, and copies into its output checked; and for an
/// image whose layers are checked as they are read (`Unchecked`).
pub(crate) fn open_layout_base(dir: &Path, selector: &Selector) -> Result<Opened, SourceError> {
    open_layout_checking(dir, selector, dir.display().to_string(), LayerCheck::Later)
}

fn open_layout_checking(
    dir: &Path,
    selector: &Selector,
    name: String,
    check: LayerCheck,
) -> Result<Opened, SourceError> {
    let (index, store) = read_index(dir, &name)?;
    let mut images = Vec::new();
    let mut referrers = Vec::new();
    for d in index.manifests() {
        if is_referrer(&store, d, &name)? {
            referrers.push(d.clone());
        } else {
            images.push(d.clone());
        }
    }
    let top = choose(&images, selector, &name)?;
    let built = read_built_with(&store, &top, &name, check)?;
    let subjects: Vec<Digest> = built
        .images
        .iter()
        .map(|i| i.manifest.digest.clone())
        .chain(built.index.iter().map(|i| i.digest.clone()))
        .collect();
    let mut mine = Vec::new();
    for r in referrers {
        if subject_of(&store, &r, &name)?.is_some_and(|s| subjects.contains(&s)) {
            mine.push(r);
        }
    }
    Ok(Opened {
        name,
        store,
        built,
        referrers: mine,
        temp: None,
        warnings: Vec::new(),
    })
}

/// A layout's index.json (size-limited, then parsed) and its blob store;
/// nothing beyond index.json is read.
pub(crate) fn read_index(dir: &Path, name: &str) -> Result<(ImageIndex, BlobStore), SourceError> {
    match open_untrusted(dir, "oci-layout") {
        Ok(_) => {}
        Err(OpenError::Missing) => return Err(SourceError::NotLayout { path: dir.into() }),
        Err(e) => {
            return Err(SourceError::Store {
                image: name.to_string(),
                error: e.at(dir.join("oci-layout")),
            })
        }
    }
    let index_bytes = read_small(dir, "index.json", name)?;
    let index: ImageIndex =
        serde_json::from_slice(&index_bytes).map_err(|e| SourceError::Unusable {
            image: name.to_string(),
            message: format!("index.json is not an OCI image index: {e}"),
        })?;
    if index.manifests().len() > super::MANIFESTS_LIMIT {
        return Err(SourceError::Limit {
            image: name.to_string(),
            error: crate::oci::media::LimitError::TooManyEntries {
                index: "index.json".into(),
                count: index.manifests().len(),
            },
        });
    }
    let store = BlobStore::open_read_only(dir).map_err(|e| SourceError::Store {
        image: name.to_string(),
        error: e,
    })?;
    Ok((index, store))
}

/// A layout's top-level document `unsafe_name`, not followed if a link,
/// read up to `MANIFEST_LIMIT` bytes.
fn read_small(dir: &Path, unsafe_name: &str, image: &str) -> Result<Vec<u8>, SourceError> {
    let path = dir.join(unsafe_name);
    let store_err = |error| SourceError::Store {
        image: image.to_string(),
        error,
    };
    let (file, _) = open_untrusted(dir, unsafe_name).map_err(|e| match e {
        OpenError::Missing => SourceError::Io {
            path: path.clone(),
            error: std::io::ErrorKind::NotFound.into(),
        },
        e => store_err(e.at(path.clone())),
    })?;
    read_limited(file, MANIFEST_LIMIT)
        .map_err(|e| SourceError::Io {
            path: path.clone(),
            error: e,
        })?
        .ok_or_else(|| SourceError::Unusable {
            image: path.display().to_string(),
            message: format!("it is beyond the {MANIFEST_LIMIT}-byte limit for an index"),
        })
}

fn is_referrer(store: &BlobStore, d: &Descriptor, name: &str) -> Result<bool, SourceError> {
    if d.artifact_type().is_some() {
        return Ok(true);
    }
    Ok(subject_of(store, d, name)?.is_some())
}

/// The `subject` of the manifest `d` names, if it is a manifest with one.
fn subject_of(
    store: &BlobStore,
    d: &Descriptor,
    name: &str,
) -> Result<Option<Digest>, SourceError> {
    if !media::is_manifest(d.media_type().as_ref()) {
        return Ok(None);
    }
    let digest = super::descriptor_digest(d, name, "manifest")?;
    let bytes = read_doc(store, &digest, d.size(), MANIFEST_LIMIT, name)?;
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&bytes) else {
        return Ok(None);
    };
    Ok(manifest
        .subject()
        .as_ref()
        .and_then(|s| our_digest(s.digest()).ok()))
}

fn describe(candidates: &[Descriptor]) -> String {
    candidates
        .iter()
        .map(|d| {
            let name = d
                .annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_REF_NAME).cloned());
            match name {
                Some(n) => format!("{} ({n})", d.digest()),
                None => d.digest().to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn choose(
    candidates: &[Descriptor],
    selector: &Selector,
    name: &str,
) -> Result<Descriptor, SourceError> {
    let matching: Vec<&Descriptor> = match selector {
        Selector::Only => candidates.iter().collect(),
        Selector::Digest(want) => candidates
            .iter()
            .filter(|d| our_digest(d.digest()).ok().as_ref() == Some(want))
            .collect(),
        Selector::RefName(want) => candidates
            .iter()
            .filter(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_REF_NAME))
                    == Some(want)
            })
            .collect(),
    };
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] if *selector == Selector::Only => Err(SourceError::Unusable {
            image: name.into(),
            message: "index.json lists no image".into(),
        }),
        [] => Err(SourceError::NoMatch {
            image: name.into(),
            selector: match selector {
                Selector::Digest(d) => d.to_string(),
                Selector::RefName(r) => format!("named {r}"),
                Selector::Only => unreachable!("handled above"),
            },
            candidates: describe(candidates),
        }),
        many => Err(SourceError::Ambiguous {
            image: name.into(),
            count: many.len(),
            candidates: describe(candidates),
        }),
    }
}
