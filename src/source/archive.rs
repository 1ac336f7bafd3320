//! Archives read back: an oci-archive (a layout in a tar) or a
//! docker-archive (`docker save`, `podman save`), opened into the same
//! `Opened` a layout gives.
//!
//! An archive is untrusted. Member names are checked before anything is
//! written: absolute names, `..`, links and anything that is not part of
//! an OCI layout are refused, naming the member. Blobs are then verified
//! by `open_layout` as for any layout.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::layout::{open_layout_named, Selector};
use super::target::ArchiveKind;
use super::{Opened, SourceError};
use crate::oci::media::MANIFEST_LIMIT;

/// What a tar member is; links keep their target as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum MemberKind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
    Other(u8),
}

/// One member of an archive: its name (without `./` or a trailing `/`)
/// and where its data starts in the file.
#[derive(Clone, Debug)]
pub(super) struct Member {
    pub name: String,
    pub kind: MemberKind,
    pub offset: u64,
    pub size: u64,
}

/// An archive's members by name, read from the headers alone.
pub(super) struct Members {
    pub path: PathBuf,
    pub list: Vec<Member>,
    pub by_name: BTreeMap<String, usize>,
}

/// Which top-level files an archive has: what it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sniffed {
    pub oci_layout: bool,
    pub index_json: bool,
    pub manifest_json: bool,
}

impl Sniffed {
    /// An `oci-layout` member makes an oci-archive (Docker 25+ archives
    /// are both, and the OCI side keeps the image's own manifest);
    /// otherwise `manifest.json` makes a classic docker-archive.
    pub fn kind(&self) -> Option<ArchiveKind> {
        if self.oci_layout {
            Some(ArchiveKind::Oci)
        } else if self.manifest_json {
            Some(ArchiveKind::Docker)
        } else {
            None
        }
    }
}

/// Reads the member list of the archive at `path` and says what it holds.
pub fn sniff(path: &Path) -> Result<Sniffed, SourceError> {
    Ok(Members::read(path)?.sniffed())
}

fn unsafe_member(path: &Path, member: &str, problem: &str) -> SourceError {
    SourceError::UnsafeMember {
        path: path.to_path_buf(),
        member: member.to_string(),
        problem: problem.to_string(),
    }
}

/// Checks a member name and returns it without `./` and trailing `/`;
/// `None` for the archive's root folder itself.
pub(super) fn clean_name(path: &Path, unsafe_name: &str) -> Result<Option<String>, SourceError> {
    if unsafe_name.starts_with('/') {
        return Err(unsafe_member(path, unsafe_name, "is an absolute path"));
    }
    let mut name = unsafe_name;
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    let name = name.trim_end_matches('/');
    if name.is_empty() || name == "." {
        return Ok(None);
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(unsafe_member(
            path,
            unsafe_name,
            "has an empty, `.` or `..` path component",
        ));
    }
    Ok(Some(name.to_string()))
}

impl Members {
    pub fn read(path: &Path) -> Result<Members, SourceError> {
        let io_err = |e| SourceError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let file = File::open(path).map_err(io_err)?;
        let mut archive = tar::Archive::new(file);
        let mut list: Vec<Member> = Vec::new();
        let mut by_name = BTreeMap::new();
        for entry in archive.entries_with_seek().map_err(io_err)? {
            let entry = entry.map_err(|e| SourceError::NotArchive {
                path: path.to_path_buf(),
                message: format!("it is not a readable tar file: {e}"),
            })?;
            let raw = entry.path_bytes();
            let Ok(unsafe_name) = std::str::from_utf8(&raw) else {
                let shown = String::from_utf8_lossy(&raw).into_owned();
                return Err(unsafe_member(path, &shown, "is not UTF-8"));
            };
            let unsafe_name = unsafe_name.to_string();
            let header = entry.header();
            let link = || -> Result<String, SourceError> {
                let target = entry.link_name_bytes().unwrap_or_default();
                std::str::from_utf8(&target)
                    .map(str::to_string)
                    .map_err(|_| {
                        unsafe_member(path, &unsafe_name, "has a link target that is not UTF-8")
                    })
            };
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => MemberKind::File,
                tar::EntryType::Directory => MemberKind::Dir,
                tar::EntryType::Symlink => MemberKind::Symlink(link()?),
                tar::EntryType::Link => MemberKind::Hardlink(link()?),
                // A pax global header describes the archive, not a file.
                tar::EntryType::XGlobalHeader => continue,
                other => MemberKind::Other(other.as_byte()),
            };
            let Some(name) = clean_name(path, &unsafe_name)? else {
                if kind == MemberKind::Dir {
                    continue;
                }
                return Err(unsafe_member(
                    path,
                    &unsafe_name,
                    "names the archive's root",
                ));
            };
            if by_name.insert(name.clone(), list.len()).is_some() {
                // A second member of the same name would silently replace
                // the first one some reader checked.
                return Err(unsafe_member(path, &unsafe_name, "appears twice"));
            }
            list.push(Member {
                name,
                kind,
                offset: entry.raw_file_position(),
                size: entry.size(),
            });
        }
        Ok(Members {
            path: path.to_path_buf(),
            list,
            by_name,
        })
    }

    pub fn sniffed(&self) -> Sniffed {
        let is_file = |n: &str| self.get(n).is_some_and(|m| m.kind == MemberKind::File);
        Sniffed {
            oci_layout: is_file("oci-layout"),
            index_json: is_file("index.json"),
            manifest_json: is_file("manifest.json"),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Member> {
        self.by_name.get(name).map(|&i| &self.list[i])
    }

    /// The data of regular-file member `m`, as a reader of exactly its size.
    pub fn open(&self, m: &Member) -> Result<io::Take<File>, SourceError> {
        let io_err = |e| SourceError::Io {
            path: self.path.clone(),
            source: e,
        };
        let mut file = File::open(&self.path).map_err(io_err)?;
        file.seek(SeekFrom::Start(m.offset)).map_err(io_err)?;
        Ok(file.take(m.size))
    }

    /// A small member read whole, refused beyond `limit` bytes.
    pub fn read_small(&self, m: &Member, limit: u64) -> Result<Vec<u8>, SourceError> {
        if m.size > limit {
            return Err(SourceError::Unusable {
                image: self.path.display().to_string(),
                message: format!(
                    "member {} is {} bytes, beyond the {limit}-byte limit for it",
                    m.name, m.size
                ),
            });
        }
        let mut bytes = Vec::with_capacity(m.size as usize);
        self.open(m)?
            .read_to_end(&mut bytes)
            .map_err(|e| SourceError::Io {
                path: self.path.clone(),
                source: e,
            })?;
        self.check_length(m, bytes.len() as u64)?;
        Ok(bytes)
    }

    /// A member whose data ends before its header's size: a cut-off file.
    pub fn check_length(&self, m: &Member, read: u64) -> Result<(), SourceError> {
        if read == m.size {
            return Ok(());
        }
        Err(SourceError::NotArchive {
            path: self.path.clone(),
            message: format!(
                "member {} should hold {} bytes but the file ends after {read}; the archive is cut off",
                m.name, m.size
            ),
        })
    }
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
pub fn unpack_layout_of(
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
            Ok(Some(temp))
        }
    }
}

/// A scratch folder for an archive's content, removed when dropped.
pub(super) fn scratch_dir(archive: &Path) -> Result<tempfile::TempDir, SourceError> {
    tempfile::Builder::new()
        .prefix("stele-archive-")
        .tempdir()
        .map_err(|e| SourceError::Io {
            path: archive.to_path_buf(),
            source: io::Error::other(format!("creating a temp folder to unpack it: {e}")),
        })
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
        move |e| SourceError::Io { path: p, source: e }
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
