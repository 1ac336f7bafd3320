//! Archives read back: an oci-archive (a layout in a tar) or a
//! docker-archive (`docker save`, `podman save`), opened into the same
//! `Opened` a layout gives.
//!
//! An archive is untrusted. Member names are checked before anything is
//! written: absolute names, `..`, links and anything that is not part of
//! an OCI layout are refused, naming the member. Blobs are then verified
//! by `open_layout` as for any layout.

use std::fs::File;
use std::io;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::docker_archive::{docker_view, ViewImage};
use super::layout::{open_layout_named, read_index, Selector};
use super::members::{scratch_dir, unsafe_member, MemberKind, Members};
use super::target::ArchiveKind;
use super::{Opened, SourceError};
use crate::oci::media::MANIFEST_LIMIT;
use crate::oci::{our_digest, Digest};

pub use super::members::Sniffed;

/// Reads the member list of the archive at `path` and says what it holds.
pub(crate) fn sniff(path: &Path) -> Result<Sniffed, SourceError> {
    Ok(Members::read(path)?.sniffed())
}

/// Opens the image `selector` names in the archive at `path`. `kind`
/// `None` lets the content decide (see `Sniffed::kind`).
pub fn open_archive(
    path: &Path,
    kind: Option<ArchiveKind>,
    selector: &Selector,
) -> Result<Opened, SourceError> {
    let members = Members::read(path)?;
    let sniffed = members.sniffed();
    let not_archive = |message: &str| SourceError::NotArchive {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let kind = match kind.or(sniffed.kind()) {
        Some(k) => k,
        None => {
            return Err(not_archive(
                "it has neither an oci-layout member (oci-archive) nor a manifest.json member (docker-archive)",
            ))
        }
    };
    match kind {
        ArchiveKind::Oci if !sniffed.oci_layout => Err(not_archive(
            "it has no oci-layout member, so it is not an oci-archive; if `docker save` wrote it, name it docker-archive:PATH",
        )),
        ArchiveKind::Oci => open_as_layout(&members, selector),
        // Docker 25+ (and stele) archives carry the layout too: the image's
        // own manifest, where the classic side would need one made up.
        ArchiveKind::Docker if sniffed.oci_layout && sniffed.index_json => {
            open_as_layout(&members, selector)
        }
        ArchiveKind::Docker if sniffed.manifest_json => {
            super::docker_archive::open_classic(&members, selector)
        }
        ArchiveKind::Docker => Err(not_archive(
            "it has no manifest.json member, so it is not a docker-archive",
        )),
    }
}

/// Unpacks the OCI layout an archive carries (an oci-archive, or a
/// docker-archive stele or Docker 25+ wrote) into a temp folder, members
/// checked but blobs not verified: `verify` reads it to report damage blob
/// by blob. `None` for a classic docker-archive, which has no layout.
pub(crate) fn unpack_layout_of(
    path: &Path,
    kind: Option<ArchiveKind>,
) -> Result<Option<tempfile::TempDir>, SourceError> {
    let members = Members::read(path)?;
    let sniffed = members.sniffed();
    let has_layout = sniffed.oci_layout && sniffed.index_json;
    match kind.or(sniffed.kind()) {
        Some(ArchiveKind::Docker) if !has_layout => Ok(None),
        None => Err(SourceError::NotArchive {
            path: path.to_path_buf(),
            message: "it has neither an oci-layout member (oci-archive) nor a manifest.json member (docker-archive)".into(),
        }),
        Some(_) if !has_layout => Err(SourceError::NotArchive {
            path: path.to_path_buf(),
            message: "it has no oci-layout and index.json members, so it is not an oci-archive".into(),
        }),
        Some(_) => {
            let temp = scratch_dir(path)?;
            unpack_layout(&members, temp.path())?;
            check_views_agree(&members, temp.path())?;
            Ok(Some(temp))
        }
    }
}

/// The images the OCI view of a layout unpacked at `dir` lists: per
/// index.json entry that is not an attestation, its digest and its
/// images (one, or an index's runnable platforms).
type OciView = Vec<(Digest, Vec<ViewImage>)>;

fn oci_view(dir: &Path, image: &str) -> Result<OciView, SourceError> {
    let (index, store) = read_index(dir, image)?;
    let read = |d: &Descriptor| -> Result<(Digest, Vec<u8>), SourceError> {
        let digest = our_digest(d.digest()).map_err(|e| SourceError::Unusable {
            image: image.into(),
            message: format!("index entry {}: {e}", d.digest()),
        })?;
        let bytes = store
            .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
            .map_err(|e| SourceError::Store {
                image: image.into(),
                error: e,
            })?;
        Ok((digest, bytes))
    };
    let malformed = |digest: &Digest, e: serde_json::Error| SourceError::Malformed {
        image: image.into(),
        what: "manifest",
        digest: digest.clone(),
        message: e.to_string(),
    };
    let mut view = Vec::new();
    for d in index.manifests() {
        if d.artifact_type().is_some() {
            continue;
        }
        let (top, bytes) = read(d)?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| malformed(&top, e))?;
        let entries: Vec<Descriptor> = if value.get("manifests").is_some() {
            let index: ImageIndex =
                serde_json::from_value(value).map_err(|e| malformed(&top, e))?;
            index
                .manifests()
                .iter()
                .filter(|e| {
                    e.platform()
                        .as_ref()
                        .map_or(true, |p| p.os().to_string() != "unknown")
                })
                .cloned()
                .collect()
        } else {
            vec![d.clone()]
        };
        let mut images = Vec::new();
        for e in entries {
            let (digest, bytes) = read(&e)?;
            let manifest: ImageManifest =
                serde_json::from_slice(&bytes).map_err(|e| malformed(&digest, e))?;
            if manifest.subject().is_some() {
                continue;
            }
            let digest_of = |d: &Descriptor| {
                our_digest(d.digest()).map_err(|e| SourceError::Unusable {
                    image: image.into(),
                    message: format!("manifest {digest}: {e}"),
                })
            };
            let config = digest_of(manifest.config())?;
            let layers = manifest
                .layers()
                .iter()
                .map(digest_of)
                .collect::<Result<Vec<_>, _>>()?;
            images.push(ViewImage { config, layers });
        }
        if !images.is_empty() {
            view.push((top, images));
        }
    }
    Ok(view)
}

/// An archive with both views (docker's `manifest.json`, OCI's
/// `index.json`) must name the same images in both: docker and skopeo
/// load one view, stele reads the other, and an archive whose views
/// disagree would pass a check on an image nobody runs. Ok means every
/// image `manifest.json` names is one index.json lists, and the other
/// way round; an archive without `manifest.json` has one view only.
fn check_views_agree(members: &Members, dir: &Path) -> Result<(), SourceError> {
    let Some(docker) = docker_view(members)? else {
        return Ok(());
    };
    let image = members.path.display().to_string();
    let oci = oci_view(dir, &image)?;
    let disagree = |docker: String, oci: String| SourceError::ViewsDisagree {
        path: members.path.clone(),
        docker,
        oci,
    };
    let describe_docker = || {
        docker
            .iter()
            .map(|d| format!("the image with config {}", d.config))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let describe_oci = || {
        oci.iter()
            .map(|(top, images)| {
                let configs: Vec<String> = images.iter().map(|v| v.config.to_string()).collect();
                format!("{top} (config {})", configs.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matched = |images: &[ViewImage]| docker.iter().any(|d| images.contains(d));
    let agree = docker.len() == oci.len()
        && docker
            .iter()
            .all(|d| oci.iter().any(|(_, images)| images.contains(d)))
        && oci.iter().all(|(_, images)| matched(images));
    if agree {
        Ok(())
    } else {
        Err(disagree(describe_docker(), describe_oci()))
    }
}

/// Unpacks the layout members into a temp folder and opens it.
fn open_as_layout(members: &Members, selector: &Selector) -> Result<Opened, SourceError> {
    if !members.sniffed().index_json {
        return Err(SourceError::NotArchive {
            path: members.path.clone(),
            message: "it has an oci-layout member but no index.json, so it lists no image".into(),
        });
    }
    let temp = scratch_dir(&members.path)?;
    unpack_layout(members, temp.path())?;
    check_views_agree(members, temp.path())?;
    let mut opened = open_layout_named(temp.path(), selector, members.path.display().to_string())?;
    opened.temp = Some(temp);
    Ok(opened)
}

/// What a layout member is allowed to be.
enum LayoutPart {
    TopFile,
    BlobsDir,
    Blob {
        sha256: bool,
    },
    /// `manifest.json` and `repositories` of a Docker 25+ archive: the
    /// classic description of the same image, not needed here.
    DockerCompanion,
}

fn layout_part(name: &str) -> Option<LayoutPart> {
    let lower_alnum = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let hex = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match name.split('/').collect::<Vec<_>>().as_slice() {
        ["oci-layout"] | ["index.json"] => Some(LayoutPart::TopFile),
        ["manifest.json"] | ["repositories"] => Some(LayoutPart::DockerCompanion),
        ["blobs"] => Some(LayoutPart::BlobsDir),
        ["blobs", alg] if lower_alnum(alg) => Some(LayoutPart::BlobsDir),
        ["blobs", alg, h] if lower_alnum(alg) && hex(h) => Some(LayoutPart::Blob {
            sha256: *alg == "sha256" && h.len() == 64,
        }),
        _ => None,
    }
}

/// Writes the layout members of the archive into `dir`: `oci-layout`,
/// `index.json` (size-limited) and `blobs/sha256/<hex>` files, streamed.
/// Any other member, and any link or special file, is refused by name.
/// Blobs of other algorithms are skipped: stele reads sha256 only, and a
/// manifest that needs one is refused when it is read.
fn unpack_layout(members: &Members, dir: &Path) -> Result<(), SourceError> {
    let path = &members.path;
    let write_err = |p: &Path| {
        let p = p.to_path_buf();
        move |e| SourceError::Io { path: p, error: e }
    };
    for m in &members.list {
        let only_files = "; an oci-archive holds only files and folders";
        match m.kind {
            MemberKind::Symlink(_) | MemberKind::Hardlink(_) => {
                return Err(unsafe_member(
                    path,
                    &m.name,
                    &format!("is a link{only_files}"),
                ))
            }
            MemberKind::Other(t) => {
                return Err(unsafe_member(
                    path,
                    &m.name,
                    &format!(
                        "is a special file (tar type `{}`){only_files}",
                        char::from(t)
                    ),
                ))
            }
            MemberKind::File | MemberKind::Dir => {}
        }
        let part = layout_part(&m.name).ok_or_else(|| {
            unsafe_member(
                path,
                &m.name,
                "is not part of an OCI layout (oci-layout, index.json, blobs/ALG/HEX)",
            )
        })?;
        let is_dir = m.kind == MemberKind::Dir;
        match (is_dir, part) {
            (true, LayoutPart::BlobsDir) => {}
            (false, LayoutPart::DockerCompanion) => {}
            (false, LayoutPart::Blob { sha256: false }) => {}
            (false, LayoutPart::TopFile) => {
                let bytes = members.read_small(m, MANIFEST_LIMIT)?;
                let dest = dir.join(&m.name);
                std::fs::write(&dest, bytes).map_err(write_err(&dest))?;
            }
            (false, LayoutPart::Blob { sha256: true }) => {
                let blobs = dir.join("blobs/sha256");
                std::fs::create_dir_all(&blobs).map_err(write_err(&blobs))?;
                let dest = dir.join(&m.name);
                let mut out = File::create_new(&dest).map_err(write_err(&dest))?;
                let copied = io::copy(&mut members.open(m)?, &mut out).map_err(write_err(&dest))?;
                members.check_length(m, copied)?;
            }
            (true, _) => {
                return Err(unsafe_member(
                    path,
                    &m.name,
                    "is a folder where a file belongs",
                ))
            }
            (false, LayoutPart::BlobsDir) => {
                return Err(unsafe_member(
                    path,
                    &m.name,
                    "is a file where a folder belongs",
                ))
            }
        }
    }
    Ok(())
}
