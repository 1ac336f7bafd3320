//! Where images go: the sources' mirror. A [`Target`] is parsed from the
//! user's words (or made from a command's flags); [`Output::prepare`]
//! checks it before any work and, for a file, makes the staging folder
//! beside it; [`Output::write`] writes one image model, [`Stored`] (what
//! a build produced or a source opened, its blobs in a store), and
//! publishes it. `build`, `pull` and `push` all write through it.
//!
//! - `layout`: an OCI layout folder, staged beside its destination and
//!   exchanged with it atomically
//! - `archive`: the reproducible tar both archive formats are, written
//!   through a temp file and renamed; `oci_archive` and `docker_archive`
//!   fill it
//! - `registry`: a push, with the image's referrers
//!
//! The documents written (`index.json`, `manifest.json`, …) are made in
//! `oci`; a sink only puts them and the blobs in place.

pub mod archive;
mod blobs;
pub(crate) mod docker_archive;
pub mod layout;
pub(crate) mod oci_archive;
pub(crate) mod registry;
pub mod target;

use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;

use crate::oci::Built;
use crate::registry::{PushOptions, PushReport, Reference, RegistrySettings};
use crate::source::target::ArchiveKind;
use crate::source::Opened;
use crate::store::{BlobStore, StoreError};
use layout::LayoutStaging;
pub use target::{Target, TargetError};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("reading the signatures and attestations to push: {error}")]
    Attachments { error: crate::attest::AttestError },
    #[error("refusing to replace {path}: it exists and is not an OCI image layout stele could have written; choose another output with -o or remove it")]
    WouldClobber { path: PathBuf },
    #[error("refusing to replace {path}: it exists and is not {} stele could have written; choose another output with -o or remove it", archive_noun(*.kind))]
    WouldClobberArchive { path: PathBuf, kind: ArchiveKind },
    #[error("writing {path}: {error}")]
    Blob { path: PathBuf, error: StoreError },
    /// The folder an output goes in cannot be made or written: found
    /// before any work, with the fix.
    #[error("cannot write the output {path}: the folder {folder} {} ({reason}); fix its permissions, or pass -o with a path in a folder you can write", if *.exists { "is not writable" } else { "cannot be created" })]
    Unwritable {
        path: PathBuf,
        folder: PathBuf,
        exists: bool,
        reason: String,
    },
    #[error("{path}: a docker-archive holds one platform, and this image has {count}; choose one (--platform)")]
    OnePlatform { path: PathBuf, count: usize },
}

pub(crate) fn archive_noun(kind: ArchiveKind) -> &'static str {
    match kind {
        ArchiveKind::Oci => "an oci-archive",
        ArchiveKind::Docker => "a docker-archive",
    }
}

/// Blobs copied into a layout at once.
const COPY_JOBS: usize = 4;

/// What every sink writes: an image or index (`built`), the attestation
/// manifests that go with it (`referrers`), and the store holding every
/// blob of both. A build's output and an opened source are both one.
#[derive(Clone, Copy)]
pub struct Stored<'a> {
    pub built: &'a Built,
    pub store: &'a BlobStore,
    pub referrers: &'a [Descriptor],
}

impl<'a> From<&'a Opened> for Stored<'a> {
    fn from(opened: &'a Opened) -> Stored<'a> {
        Stored {
            built: &opened.built,
            store: &opened.store,
            referrers: &opened.referrers,
        }
    }
}

/// How a write goes, beyond where: what a target's words do not say.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// The image's name in a docker-archive (`RepoTags`: `name:tag`),
    /// kept as written: a loader adds its own default registry.
    pub name: String,
    /// Every archive member's mtime: the build's epoch, so the same build
    /// gives the same archive.
    pub mtime: u64,
    /// How a registry target is reached.
    pub registry: RegistrySettings,
    /// What a push may mount instead of uploading.
    pub push: PushOptions,
}

/// Where an image goes, and how: a target and what its words do not say.
#[derive(Clone, Debug)]
pub struct Destination {
    pub target: Target,
    pub options: WriteOptions,
}

/// What a write left: a file in place, or a push.
#[derive(Debug)]
pub enum Written {
    /// A layout folder or an archive, at `path`.
    File { path: PathBuf },
    /// The image and its referrers pushed: the reference pinned by the
    /// pushed digest, and what was sent.
    Pushed {
        pinned: Reference,
        report: PushReport,
    },
}

/// A target made ready before the work that fills it: a file output
/// checked to be one stele may replace, with its staging folder made
/// beside it, a registry checked to take the push (reachable, the
/// credentials accepted, push allowed), so a destination that cannot be
/// written fails at once, named, instead of after minutes of work.
/// Dropped unwritten, it removes what it made.
pub struct Output {
    target: Target,
    options: WriteOptions,
    /// A file output's staging folder; `None` for a registry.
    staging: Option<LayoutStaging>,
    /// A registry's client, its tokens kept from the check.
    client: Option<crate::registry::Client>,
}

impl Output {
    pub fn prepare(destination: Destination) -> Result<Output, SinkError> {
        let Destination { target, options } = destination;
        let staging = match &target {
            Target::Layout { path, .. } => {
                layout::check_replaceable(path)?;
                Some(staging_beside(path)?)
            }
            Target::Archive { path, kind, .. } => {
                archive::check_replaceable(path, *kind)?;
                Some(staging_beside(path)?)
            }
            Target::Registry { .. } => None,
        };
        let client = match &target {
            Target::Registry { reference } => Some(crate::registry::check_push_target(
                reference,
                &options.registry,
            )?),
            _ => None,
        };
        Ok(Output {
            target,
            options,
            staging,
            client,
        })
    }

    /// The store beside a file output's destination: blobs a build
    /// writes there are not copied again. `None` for a registry.
    pub fn store(&self) -> Option<&BlobStore> {
        self.staging.as_ref().map(LayoutStaging::store)
    }

    /// Copies the blobs of `image` into a layout's staging folder ahead
    /// of `write`, which then finds them there: for a caller with other
    /// work to do meanwhile (a pull checks layers while they are copied).
    /// Nothing is published; other targets copy nothing now.
    pub fn stage(&self, image: Stored<'_>) -> Result<(), SinkError> {
        match (&self.target, &self.staging) {
            (Target::Layout { path, .. }, Some(staging)) => copy_blobs(image, staging, path),
            _ => Ok(()),
        }
    }

    /// Writes `image` and puts it in place: a layout by one atomic
    /// exchange, an archive by one rename, a push by tagging last. On
    /// error the destination is as it was (a push may have sent blobs,
    /// never a manifest naming a missing one).
    pub fn write(self, image: Stored<'_>) -> Result<Written, SinkError> {
        let Output {
            target,
            options,
            staging,
            client,
        } = self;
        match target {
            Target::Layout { path, tag } => {
                let staging = staging.expect("a layout has a staging folder");
                copy_blobs(image, &staging, &path)?;
                staging.commit(image.built, tag_or_latest(&tag), image.referrers)?;
                Ok(Written::File { path })
            }
            Target::Archive { path, kind, tag } => {
                let tag = tag_or_latest(&tag);
                match kind {
                    ArchiveKind::Oci => {
                        oci_archive::write_oci_archive(&path, image, tag, options.mtime)?
                    }
                    ArchiveKind::Docker => docker_archive::write_docker_archive(
                        &path,
                        image,
                        &options.name,
                        tag,
                        options.mtime,
                    )?,
                }
                // The staging folder held the build's blobs; it goes now.
                drop(staging);
                Ok(Written::File { path })
            }
            Target::Registry { reference } => {
                let client = client.expect("a registry output has its client");
                registry::push(image, &reference, &client, &options.push)
            }
        }
    }
}

/// Every blob `image` reaches, copied into a layout's `staging` folder
/// (blobs there already are kept); `path` is the layout's, for messages.
fn copy_blobs(image: Stored<'_>, staging: &LayoutStaging, path: &Path) -> Result<(), SinkError> {
    let blobs: Vec<_> = blobs::reachable(image, path)?.into_iter().collect();
    // A few at once: each copy ends in an fsync, and waiting for the disk
    // need not be done one blob at a time.
    crate::parallel::map(
        &blobs,
        COPY_JOBS,
        |_| 0,
        |digest| staging.store().copy_from(image.store, digest),
    )
    .map_err(|error| SinkError::Blob {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(())
}

/// Writes `image` to `destination`: [`Output::prepare`] then
/// [`Output::write`], for a caller with nothing to do in between.
pub fn write(image: Stored<'_>, destination: Destination) -> Result<Written, SinkError> {
    Output::prepare(destination)?.write(image)
}

fn tag_or_latest(tag: &Option<String>) -> &str {
    tag.as_deref().unwrap_or("latest")
}

/// The staging folder beside `out`, its failure told as the output's
/// folder being unwritable, with the fix, rather than as a temp file's
/// `Permission denied`.
fn staging_beside(out: &Path) -> Result<LayoutStaging, SinkError> {
    LayoutStaging::beside(out).map_err(|e| {
        let folder = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let reason = match &e {
            SinkError::Io { error, .. } => error.kind().to_string(),
            other => other.to_string(),
        };
        SinkError::Unwritable {
            path: out.to_path_buf(),
            folder: folder.to_path_buf(),
            exists: folder.is_dir(),
            reason,
        }
    })
}
