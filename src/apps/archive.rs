//! A downloaded package archive (a wheel, an npm tarball) unpacked once
//! into a *pack* (its files back to back, one blob named by its hash) and
//! an *index* (every entry's path, kind, mode and, for files, its range
//! and sha256 in the pack), as .debs are (`dpkg::unpack`): later builds
//! read the index, and layers stream file contents from the pack,
//! checked against each file's sha256 as they are read. Nothing from an
//! archive is held in memory but the small files a reader asks for.
//!
//! Archives are untrusted input: the archive must hash to the digest the
//! lock checked, every path is normalized and refused when it climbs
//! out, and sizes and member counts are bounded.

use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::zip::{self, Archive};
use crate::fstree::Content;
use crate::oci::digest::HashingWriter;
use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};

/// Bumped whenever what an index records or means changes.
pub(crate) const ARCHIVE_FORMAT: u32 = 1;
/// Bytes an npm tarball may unpack to (the largest packages, with their
/// native binaries, are a few hundred MB).
pub const MAX_UNPACKED: u64 = 8 << 30;
/// Entries an npm tarball may hold.
pub const MAX_ENTRIES: u64 = 1 << 20;

/// The two archive formats application packages come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    /// A wheel: a ZIP archive, paths as they are.
    Wheel,
    /// An npm package tarball: gzip'd tar, its first path part (`package/`)
    /// stripped, links skipped (as npm's extraction does).
    NpmTarball,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{label}: {path} is not a valid {kind}: {message}")]
    Invalid {
        label: String,
        path: std::path::PathBuf,
        kind: &'static str,
        message: String,
    },
    #[error("{label}: the cached file {path} is not the one the lock names (expected {expected}, found {found}); delete it and build again")]
    Damaged {
        label: String,
        path: std::path::PathBuf,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One entry of an unpacked archive.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    /// Normalized, relative, `/`-separated; never `..`.
    pub path: String,
    pub dir: bool,
    /// Mode bits as the archive gives them (permissions only).
    pub mode: u32,
    /// For files: offset, size and sha256 in the pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<(u64, u64, Digest)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    format: u32,
    kind: ArchiveKind,
    archive: Digest,
    archive_size: u64,
    pack: Digest,
    pack_size: u64,
    entries: Vec<IndexEntry>,
}

/// An archive as unpacked: its index, and where its pack is.
#[derive(Clone, Debug)]
pub struct Unpacked {
    index: Index,
    pack: Arc<Path>,
}

impl Unpacked {
    pub fn entries(&self) -> &[IndexEntry] {
        &self.index.entries
    }

    /// A file entry's content, read from the pack when a layer is written.
    pub fn content(&self, entry: &IndexEntry) -> Option<Content> {
        let (offset, size, digest) = entry.file.clone()?;
        Some(Content::Cached {
            pack: self.pack.clone(),
            offset,
            size,
            digest,
        })
    }

    /// The entry at `path`, if it is a file.
    pub fn file(&self, path: &str) -> Option<&IndexEntry> {
        self.index
            .entries
            .iter()
            .find(|e| e.path == path && e.file.is_some())
    }

    pub(crate) fn index_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.index).expect("an index serializes")
    }

    /// The archive this unpacks and its size.
    pub(crate) fn archive_size(&self) -> (&Digest, u64) {
        (&self.index.archive, self.index.archive_size)
    }

    pub(crate) fn pack(&self) -> (&Digest, u64) {
        (&self.index.pack, self.index.pack_size)
    }

    /// The archive `archive` as the index `bytes` describes it, its pack
    /// in `store`; `None` unless the index parses, is of this format and
    /// kind, names `archive`, and every file fits the pack.
    pub(crate) fn from_index(
        bytes: &[u8],
        archive: &Digest,
        kind: ArchiveKind,
        store: &BlobStore,
    ) -> Option<Unpacked> {
        let index: Index = serde_json::from_slice(bytes).ok()?;
        let sound = index.format == ARCHIVE_FORMAT
            && index.kind == kind
            && &index.archive == archive
            && index.entries.iter().all(|e| {
                clean_path(&e.path).as_deref() == Some(e.path.as_str())
                    && e.file.as_ref().map_or(true, |(o, s, _)| {
                        !e.dir && o.checked_add(*s).is_some_and(|end| end <= index.pack_size)
                    })
                    && (e.dir || e.file.is_some())
            });
        if !sound {
            return None;
        }
        let pack = store.path(&index.pack);
        Some(Unpacked {
            index,
            pack: Arc::from(pack.as_path()),
        })
    }
}

/// `unsafe_path` as a clean relative key, or `None` when it is absolute,
/// climbs with `..`, or holds what no package path should.
pub(crate) fn clean_path(unsafe_path: &str) -> Option<String> {
    if unsafe_path.starts_with('/') || unsafe_path.contains(['\\', '\0']) {
        return None;
    }
    let mut parts = Vec::new();
    for part in unsafe_path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Unpacks the archive `archive` (`size` bytes, in `store`) into a pack
/// in `store`, returning it with its index (which the caller records).
/// `label` names the package in errors.
pub(crate) fn unpack(
    store: &BlobStore,
    label: &str,
    archive: &Digest,
    size: u64,
    kind: ArchiveKind,
) -> Result<Unpacked, ArchiveError> {
    let path = store.path(archive);
    let (file, found_size) = store.open_blob(archive)?;
    // The archive must be the one the lock checked: hashed whole first
    // (a wheel is read at random, so it cannot be hashed as it is read).
    let (found, hashed) = crate::oci::digest::hash_reader(BufReader::new(&file)).map_err(|e| {
        ArchiveError::Invalid {
            label: label.into(),
            path: path.clone(),
            kind: kind.noun(),
            message: e.to_string(),
        }
    })?;
    if &found != archive || hashed != size || found_size != size {
        return Err(ArchiveError::Damaged {
            label: label.into(),
            path,
            expected: format!("{size} bytes, {archive}"),
            found: format!("{hashed} bytes, {found}"),
        });
    }
    let invalid = |message: String| ArchiveError::Invalid {
        label: label.into(),
        path: path.clone(),
        kind: kind.noun(),
        message,
    };
    let mut pack = HashingWriter::new(store.begin()?);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut add_file = |pack: &mut HashingWriter<crate::store::BlobWriter>,
                        entries: &mut Vec<IndexEntry>,
                        path: String,
                        mode: u32,
                        write: &mut dyn FnMut(&mut dyn io::Write) -> Result<(), String>|
     -> Result<(), String> {
        let mut file_hash = HashingWriter::new(&mut *pack);
        write(&mut file_hash)?;
        let (_, digest, n) = file_hash.finish();
        entries.push(IndexEntry {
            path,
            dir: false,
            mode,
            file: Some((offset, n, digest)),
        });
        offset += n;
        Ok(())
    };
    match kind {
        ArchiveKind::Wheel => {
            let archive = Archive::open(&file, size).map_err(|e| invalid(zip_message(e)))?;
            for m in &archive.members {
                let clean = clean_path(&m.name).ok_or_else(|| {
                    invalid(format!(
                        "member `{}` is not a relative path inside the wheel",
                        m.name
                    ))
                })?;
                let mode = m.unix_mode.map_or(0o644, |mode| mode & 0o777);
                if m.is_dir() {
                    entries.push(IndexEntry {
                        path: clean,
                        dir: true,
                        mode: 0o755,
                        file: None,
                    });
                    continue;
                }
                add_file(&mut pack, &mut entries, clean, mode, &mut |out| {
                    archive.extract(m, out).map_err(zip_message)
                })
                .map_err(invalid)?;
            }
        }
        ArchiveKind::NpmTarball => {
            // Hashing read the file to its end.
            io::Seek::seek(&mut &file, io::SeekFrom::Start(0))
                .map_err(|e| invalid(e.to_string()))?;
            let gz = flate2::read::GzDecoder::new(BufReader::new(&file));
            let mut tar = tar::Archive::new(gz.take(MAX_UNPACKED));
            let mut count = 0u64;
            for entry in tar.entries().map_err(|e| invalid(e.to_string()))? {
                let mut entry = entry.map_err(|e| invalid(e.to_string()))?;
                count += 1;
                if count > MAX_ENTRIES {
                    return Err(invalid(format!("more than {MAX_ENTRIES} entries")));
                }
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
                let kind = entry.header().entry_type();
                // npm strips the first part, whatever its name.
                let Some((_, rest)) = raw.trim_start_matches("./").split_once('/') else {
                    continue;
                };
                if rest.is_empty() {
                    continue;
                }
                let clean = clean_path(rest).ok_or_else(|| {
                    invalid(format!(
                        "entry `{raw}` is not a relative path inside the package"
                    ))
                })?;
                if kind.is_dir() {
                    entries.push(IndexEntry {
                        path: clean,
                        dir: true,
                        mode,
                        file: None,
                    });
                } else if kind.is_file() {
                    add_file(&mut pack, &mut entries, clean, mode, &mut |out| {
                        io::copy(&mut entry, out)
                            .map(|_| ())
                            .map_err(|e| format!("entry `{raw}`: {e}"))
                    })
                    .map_err(invalid)?;
                }
                // Links, devices and the rest: npm's extraction skips them.
            }
        }
    }
    let (writer, _, _) = pack.finish();
    let (pack_digest, pack_size) = writer.finish()?;
    // A later entry of the same path replaces an earlier one, as
    // extracting in order would leave it.
    let mut seen = std::collections::BTreeSet::new();
    let mut kept: Vec<IndexEntry> = entries
        .into_iter()
        .rev()
        .filter(|e| seen.insert(e.path.clone()))
        .collect();
    kept.reverse();
    let index = Index {
        format: ARCHIVE_FORMAT,
        kind,
        archive: archive.clone(),
        archive_size: size,
        pack: pack_digest,
        pack_size,
        entries: kept,
    };
    let pack = store.path(&index.pack);
    Ok(Unpacked {
        index,
        pack: Arc::from(pack.as_path()),
    })
}

/// A ZIP error in one line, its cause included.
fn zip_message(e: zip::ZipError) -> String {
    match e {
        zip::ZipError::Format(m) => m,
        zip::ZipError::Io(e) => format!("reading the archive: {e}"),
    }
}

impl ArchiveKind {
    fn noun(self) -> &'static str {
        match self {
            ArchiveKind::Wheel => "wheel",
            ArchiveKind::NpmTarball => "npm package tarball",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path("a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(clean_path("a/"), Some("a".into()));
        for bad in ["/etc/passwd", "a/../../b", "..", "", "a\\b"] {
            assert_eq!(clean_path(bad), None, "{bad}");
        }
    }

    /// An npm tarball: `package/` first, a file, an executable, a link.
    fn tarball() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data, mode) in [
            ("package/package.json", &b"{}"[..], 0o644),
            ("package/bin/cli.js", &b"#!/usr/bin/env node\n"[..], 0o755),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_cksum();
            b.append_data(&mut h, path, data).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, "package/link", "/etc/passwd")
            .unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn an_npm_tarball_loses_its_first_folder_and_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let tgz = tarball();
        let digest = store.put_bytes(&tgz).unwrap();
        let u = unpack(
            &store,
            "p@1",
            &digest,
            tgz.len() as u64,
            ArchiveKind::NpmTarball,
        )
        .unwrap();
        let paths: Vec<(&str, u32)> = u
            .entries()
            .iter()
            .map(|e| (e.path.as_str(), e.mode))
            .collect();
        assert_eq!(paths, [("package.json", 0o644), ("bin/cli.js", 0o755)]);
        let cli = u.file("bin/cli.js").unwrap();
        assert_eq!(
            u.content(cli).unwrap().read_all().unwrap(),
            b"#!/usr/bin/env node\n"
        );
    }

    #[test]
    fn a_wheel_unpacks_into_a_pack_and_reloads_from_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let zip = zip::tests::make(&[
            ("m/__init__.py", b"x = 1\n", 0o100644, true),
            ("m-1.dist-info/RECORD", b"", 0o100644, false),
        ]);
        let digest = store.put_bytes(&zip).unwrap();
        let u = unpack(&store, "m 1", &digest, zip.len() as u64, ArchiveKind::Wheel).unwrap();
        let e = u.file("m/__init__.py").unwrap();
        assert_eq!(u.content(e).unwrap().read_all().unwrap(), b"x = 1\n");
        let again =
            Unpacked::from_index(&u.index_bytes(), &digest, ArchiveKind::Wheel, &store).unwrap();
        assert_eq!(again.entries(), u.entries());
        assert!(
            Unpacked::from_index(&u.index_bytes(), &digest, ArchiveKind::NpmTarball, &store)
                .is_none()
        );
        let wrong = unpack(
            &store,
            "m 1",
            &digest,
            zip.len() as u64 + 1,
            ArchiveKind::Wheel,
        );
        assert!(matches!(wrong, Err(ArchiveError::Damaged { .. })));
        let evil = zip::tests::make(&[("../../etc/passwd", b"root", 0o100644, false)]);
        let evil_digest = store.put_bytes(&evil).unwrap();
        let e = unpack(
            &store,
            "evil 1",
            &evil_digest,
            evil.len() as u64,
            ArchiveKind::Wheel,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a relative path"), "{e}");
    }
}
