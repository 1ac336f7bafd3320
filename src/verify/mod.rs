//! `stele verify` and `stele diff`: checking an image before a deployment
//! pins it, and explaining how two images differ.
//!
//! Verification does not stop at the first problem: every check that can
//! run does, each ending in a named result, so one run lists everything
//! that is wrong. An image with a damaged blob cannot be read into the
//! model (`source::layout::open_layout` refuses it at the first bad blob),
//! so the checks walk the blobs from the top descriptor themselves,
//! tolerating damage and naming it.

pub mod attestations;
pub mod diff;
pub mod embedded;
pub(crate) mod fsck;
pub mod policy;
pub mod rebuild;
pub mod report;

use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageManifest};
use serde::Serialize;

use crate::attest::{Kind, PublicKey};
use crate::oci::media::MANIFEST_LIMIT;
use crate::oci::model::ANNOTATION_REF_NAME;
use crate::oci::{our_digest, Digest};
use crate::source::layout::{open_layout, Selector};
use crate::source::target::TargetError;
use crate::source::{Opened, RegistryAccess, SourceError, Target};
use crate::store::BlobStore;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not run; the detail says why (nothing to check, or an earlier
    /// failure made it meaningless).
    Skipped,
}

/// One named check and what it found. Names are stable (`blob image
/// layer 1/2`, `diff_id linux/arm64 layer 1/1`, `pin`, `attestation
/// provenance signature`) so CI can match on them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Pass,
            detail: detail.into(),
        }
    }
    pub fn fail(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
        }
    }
    pub fn skipped(name: impl Into<String>, reason: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Skipped,
            detail: reason.into(),
        }
    }
}

/// Everything `verify` found about one image.
pub struct Report {
    /// The target as the user named it.
    pub target: String,
    /// The digest a deployment would pin.
    pub digest: Option<Digest>,
    pub checks: Vec<Check>,
    /// The epoch the image's provenance records (`SOURCE_DATE_EPOCH` or the
    /// recipe's), to explain a rebuild that differs only in time.
    pub provenance_epoch: Option<u64>,
    /// How a rebuild differs, when `--rebuild` found a different digest.
    pub rebuild_diff: Option<diff::Diff>,
    /// Every artifact found beside the image, and who signed it.
    pub attestations: Vec<attestations::Found>,
}

impl Report {
    /// Verified: no check failed.
    pub fn verified(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// What the checks need to be told.
#[derive(Default)]
pub struct Options {
    /// `--digest`: the digest the image must have.
    pub pin: Option<Digest>,
    /// `--key`: the required kinds must each have an attestation one of
    /// these signed.
    pub keys: Vec<PublicKey>,
    /// `--require`: the kinds a key must have signed; empty means what a
    /// default build makes (provenance and both SBOMs).
    pub require: Vec<Kind>,
    /// `--recipe`: what the image must say it was made from.
    pub recipe: Option<embedded::Expected>,
    /// `--policy`: its signers join `keys`, its kinds `require`, and what
    /// it asks of provenance is checked.
    pub policy: Option<policy::Policy>,
    /// `--jobs`: threads one layer's DiffID check may use (a layer of
    /// independent blocks); 0 counts as 1.
    pub jobs: usize,
}

/// What `--key` requires when nothing says otherwise: what `stele build
/// --sign-key` makes with its default `--attest all`.
pub const DEFAULT_REQUIRED: [Kind; 3] = [Kind::Provenance, Kind::Spdx, Kind::CycloneDx];

impl Options {
    /// Every key whose signature counts: `--key`s, then the policy's
    /// signers.
    pub fn all_keys(&self) -> Vec<PublicKey> {
        let mut keys = self.keys.clone();
        if let Some(p) = &self.policy {
            keys.extend(p.signers.iter().map(|(_, k)| k.clone()));
        }
        keys
    }

    /// The kinds that must be signed, in a stable order.
    pub fn required_kinds(&self) -> Vec<Kind> {
        let mut kinds: Vec<Kind> = self.require.clone();
        if let Some(p) = &self.policy {
            kinds.extend(p.kinds.iter().copied());
        }
        if kinds.is_empty() {
            kinds = DEFAULT_REQUIRED.to_vec();
        }
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// The image to verify, located but not yet read: the store holding its
/// blobs, its top descriptor, and the attestation manifests beside it.
pub struct Subject {
    pub name: String,
    pub store: BlobStore,
    pub top: Descriptor,
    /// Manifests found beside the image that are artifacts (they have an
    /// `artifactType` or a `subject`): attestations, the image's or others'.
    pub artifacts: Vec<Descriptor>,
    /// Whether the image is the only one there: then an attestation about
    /// anything else is stale (its image was replaced), not another
    /// image's.
    pub sole_image: bool,
    origin: Origin,
    /// The folder an archive was unpacked into, kept while the subject is.
    unpacked: Option<tempfile::TempDir>,
}

enum Origin {
    Layout(PathBuf),
    Opened(Box<Opened>),
}

impl Subject {
    /// A subject from an image some source already read (archives,
    /// registries): its blobs were verified while reading; the checks
    /// walk them again.
    pub(crate) fn from_opened(opened: Opened) -> Subject {
        Subject {
            name: opened.name.clone(),
            store: opened.store.clone(),
            top: opened.built.top_descriptor(),
            artifacts: opened.referrers.clone(),
            sole_image: true,
            origin: Origin::Opened(Box::new(opened)),
            unpacked: None,
        }
    }

    /// The digest of the top descriptor, as the target names it.
    pub fn digest(&self) -> Option<Digest> {
        our_digest(self.top.digest()).ok()
    }

    /// The image read into the model, for `diff` and `--rebuild`. Fails
    /// when a blob is damaged (the checks say which).
    pub(crate) fn into_opened(self) -> Result<Opened, SourceError> {
        match self.origin {
            Origin::Opened(o) => Ok(*o),
            Origin::Layout(dir) => {
                let digest = our_digest(self.top.digest()).map_err(|e| SourceError::Unusable {
                    image: self.name.clone(),
                    message: e.to_string(),
                })?;
                let mut opened = open_layout(&dir, &Selector::Digest(digest))?;
                opened.name = self.name.clone();
                opened.temp = self.unpacked;
                Ok(opened)
            }
        }
    }
}

/// Opens `target` into the model (what `diff` compares).
pub fn open(target: &Target, registry: Option<&RegistryAccess>) -> Result<Opened, VerifyError> {
    Ok(crate::source::open(target, registry)?)
}

/// Locates the image `target` names for `verify`, without requiring its
/// blobs to be intact where that can be helped: a layout, or the layout
/// inside an oci-archive, is read only as far as index.json, so a damaged
/// blob is left for the checks to name. A classic docker-archive and a
/// registry image are read (and verified) whole: what could not be read
/// cannot be checked.
pub(crate) fn locate(
    target: &Target,
    registry: Option<&RegistryAccess>,
) -> Result<Subject, VerifyError> {
    match target {
        Target::Layout { path, selector } => locate_in_layout(path, selector),
        Target::Archive {
            path,
            kind,
            selector,
        } => match crate::source::archive::unpack_layout_of(path, *kind)? {
            Some(temp) => {
                let mut subject = locate_in_layout(temp.path(), selector)?;
                subject.name = path.display().to_string();
                subject.unpacked = Some(temp);
                Ok(subject)
            }
            None => Ok(Subject::from_opened(crate::source::open_unchecked(
                target, registry,
            )?)),
        },
        Target::Registry { .. } => Ok(Subject::from_opened(crate::source::open_unchecked(
            target, registry,
        )?)),
    }
}

/// Reads a layout's index.json and picks the image `selector` names the
/// way `open_layout` does, but without reading further than needed to
/// tell images from attestations, so a damaged blob is left for the
/// checks to name instead of stopping here.
fn locate_in_layout(dir: &Path, selector: &Selector) -> Result<Subject, VerifyError> {
    let name = dir.display().to_string();
    if !dir.join("oci-layout").is_file() || !dir.join("blobs").is_dir() {
        return Err(SourceError::NotLayout { path: dir.into() }.into());
    }
    let (index, store) = crate::source::layout::read_index(dir, &name)?;
    let (artifacts, images): (Vec<Descriptor>, Vec<Descriptor>) = index
        .manifests()
        .iter()
        .cloned()
        .partition(|d| is_artifact(&store, d));
    let matching: Vec<&Descriptor> = images
        .iter()
        .filter(|d| match selector {
            Selector::Only => true,
            Selector::Digest(want) => our_digest(d.digest()).ok().as_ref() == Some(want),
            Selector::RefName(want) => {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_REF_NAME))
                    == Some(want)
            }
        })
        .collect();
    let describe = || {
        images
            .iter()
            .map(|d| d.digest().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let top = match matching.as_slice() {
        [one] => (*one).clone(),
        [] if images.is_empty() => {
            return Err(SourceError::Unusable {
                image: name,
                message: "index.json lists no image".into(),
            }
            .into())
        }
        [] => {
            return Err(SourceError::NoMatch {
                image: name,
                selector: match selector {
                    Selector::Digest(d) => d.to_string(),
                    Selector::RefName(r) => format!("named {r}"),
                    Selector::Only => "at all".into(),
                },
                candidates: describe(),
            }
            .into())
        }
        many => {
            return Err(SourceError::Ambiguous {
                image: name,
                count: many.len(),
                candidates: describe(),
            }
            .into())
        }
    };
    Ok(Subject {
        name,
        store,
        top,
        artifacts,
        sole_image: images.len() == 1,
        origin: Origin::Layout(dir.to_path_buf()),
        unpacked: None,
    })
}

/// An index.json entry is an artifact when it says so (`artifactType`),
/// or its manifest names a `subject`. A manifest that cannot be read is
/// taken for an image, so its damage is reported as the image's.
fn is_artifact(store: &BlobStore, d: &Descriptor) -> bool {
    if d.artifact_type().is_some() {
        return true;
    }
    let Ok(digest) = our_digest(d.digest()) else {
        return false;
    };
    store
        .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
        .ok()
        .and_then(|b| serde_json::from_slice::<ImageManifest>(&b).ok())
        .is_some_and(|m| m.subject().is_some())
}

/// Runs every check on `subject`: blobs, media types, DiffIDs, the pin,
/// attestations. `--rebuild` is the caller's (it builds, which the
/// library's checks never do); see `rebuild::compare`.
pub fn verify(subject: &Subject, options: &Options) -> Report {
    let walk = fsck::walk(&subject.store, &subject.top);
    let mut checks = walk.checks.clone();
    checks.extend(fsck::media_types(&walk));
    checks.extend(fsck::diff_ids(&subject.store, &walk, options.jobs));
    let digest = subject.digest();
    checks.push(pin_check(digest.as_ref(), options.pin.as_ref()));
    let keys = options.all_keys();
    let kinds = options.required_kinds();
    let attested = attestations::check(
        subject,
        &walk,
        &attestations::Required {
            keys: &keys,
            kinds: &kinds,
        },
    );
    checks.extend(attested.checks.iter().cloned());
    if let Some(p) = &options.policy {
        checks.extend(policy::check(p, &attested, &walk));
    }
    if let Some(expected) = &options.recipe {
        checks.extend(embedded::check(&subject.store, &walk, expected));
    }
    Report {
        target: subject.name.clone(),
        digest,
        checks,
        provenance_epoch: attested.provenance_epoch,
        rebuild_diff: None,
        attestations: attested.found,
    }
}

fn pin_check(found: Option<&Digest>, pin: Option<&Digest>) -> Check {
    match (pin, found) {
        (None, _) => Check::skipped("pin", "no --digest given"),
        (Some(p), Some(f)) if p == f => Check::pass("pin", format!("the image is {f}")),
        (Some(p), Some(f)) => Check::fail(
            "pin",
            format!(
                "the image is {f}, but --digest pins {p}: this is not the image that was pinned"
            ),
        ),
        (Some(p), None) => Check::fail(
            "pin",
            format!("--digest pins {p}, but the image's descriptor names no sha256 digest"),
        ),
    }
}
