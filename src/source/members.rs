//! An archive's members, read from the tar headers alone and checked
//! before anything is written: what the oci-archive and docker-archive
//! readers both stand on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::tar_guard::{TarGuard, ARCHIVE_LIMITS};
use super::target::ArchiveKind;
use super::SourceError;

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

pub(super) fn unsafe_member(path: &Path, member: &str, problem: &str) -> SourceError {
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
            error: e,
        };
        let (file, _) = crate::store::open_regular(path).map_err(|e| SourceError::Store {
            image: path.display().to_string(),
            error: e,
        })?;
        let mut archive = tar::Archive::new(TarGuard::new(file, ARCHIVE_LIMITS));
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

    pub(crate) fn sniffed(&self) -> Sniffed {
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
            error: e,
        };
        let (mut file, _) =
            crate::store::open_regular(&self.path).map_err(|e| SourceError::Store {
                image: self.path.display().to_string(),
                error: e,
            })?;
        file.seek(SeekFrom::Start(m.offset)).map_err(io_err)?;
        Ok(file.take(m.size))
    }

    /// A small member read whole, refused beyond `limit` bytes.
    pub(crate) fn read_small(&self, m: &Member, limit: u64) -> Result<Vec<u8>, SourceError> {
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
                error: e,
            })?;
        self.check_length(m, bytes.len() as u64)?;
        Ok(bytes)
    }

    /// A member whose data ends before its header's size: a cut-off file.
    pub(crate) fn check_length(&self, m: &Member, read: u64) -> Result<(), SourceError> {
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

/// A scratch folder for an archive's content, removed when dropped.
pub(super) fn scratch_dir(archive: &Path) -> Result<tempfile::TempDir, SourceError> {
    tempfile::Builder::new()
        .prefix("stele-archive-")
        .tempdir()
        .map_err(|e| SourceError::Io {
            path: archive.to_path_buf(),
            error: io::Error::other(format!("creating a temp folder to unpack it: {e}")),
        })
}
