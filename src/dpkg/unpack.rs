//! A .deb unpacked once into a *pack* and an *index*, so later builds
//! never decompress it again and never hold its files in memory. Where
//! they are kept and found again is the cache's (`cache::packs`).
//!
//! Unpacking streams the data member's regular files, back to back, into
//! one pack blob named by its own hash, and describes everything else (the
//! control files, every entry's path, kind, mode, owner, mtime, xattrs,
//! link target, and each file's offset, size and sha256 in the pack) in
//! the index. One pack per package rather than one blob per file keeps a
//! first build to one fsync per package.
//!
//! Nothing unverified is trusted: the .deb is hashed while it is read and
//! must be the one the lock names; an index read back must describe the
//! package asked for and fit its pack (`UnpackedDeb::from_index`); each
//! file is checked against its own sha256 whenever it is read from the
//! pack.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::deb::{read_deb_with, DataEntry, DebContents, DebError, FileError};
use crate::fstree::{Content, Node, NodeKind};
use crate::oci::digest::HashingWriter;
use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};

/// Bumped whenever what an index records or means changes: the cache
/// keeps indexes of other versions in another folder and never reads
/// them.
pub(crate) const UNPACK_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("{label}: the cached file {path} is not the package the lock names (expected {expected}, found {found}); delete it and fetch again")]
    Damaged {
        label: String,
        path: std::path::PathBuf,
        expected: String,
        found: String,
    },
    #[error("{label}: reading {path}: {error}")]
    Read {
        label: String,
        path: std::path::PathBuf,
        error: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A package as unpacked: its index, and where its pack is.
#[derive(Clone, Debug)]
pub struct UnpackedDeb {
    index: Index,
    pack: Arc<Path>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    format: u32,
    deb: Digest,
    pack: Digest,
    pack_size: u64,
    /// Control member files, base64.
    control: BTreeMap<String, String>,
    entries: Vec<IndexEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexEntry {
    path: String,
    /// `dir`, `file`, `symlink` or `hardlink`.
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    /// As shipped; each build clamps it to its epoch.
    mtime: u64,
    /// Values base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    xattrs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    /// For files: where in the pack, how long, and their sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<(u64, u64, Digest)>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Unpacks the .deb `deb` in `store` (`size` bytes, as the lock says)
/// into a pack in `store`, and returns it with its index (which the
/// caller records). `label` names the package in errors.
pub(crate) fn unpack(
    store: &BlobStore,
    label: &str,
    deb: &Digest,
    size: u64,
) -> Result<UnpackedDeb, UnpackError> {
    let path = store.path(deb);
    let read_err = |e| UnpackError::Read {
        label: label.to_string(),
        path: path.clone(),
        error: e,
    };
    let (file, _) = store.open_blob(deb)?;
    let file = file.take(size.saturating_add(1));
    // Hashed as it is read: the .deb unpacked is the one the lock names.
    let mut reader = HashingReader::new(BufReader::with_capacity(256 * 1024, file));

    let mut pack = store.begin()?;
    let temp_path = pack.temp_path().to_path_buf();
    let mut files: Vec<(u64, u64, Digest)> = Vec::new();
    let mut offset = 0u64;
    let contents = read_deb_with(label, &mut reader, u64::MAX, &mut |entry, _| {
        let mut hw = HashingWriter::new(&mut pack);
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FileError::Read(e)),
            };
            hw.write_all(&buf[..n]).map_err(|e| FileError::Write {
                path: temp_path.clone(),
                source: e,
            })?;
        }
        let (_, digest, n) = hw.finish();
        files.push((offset, n, digest.clone()));
        offset += n;
        // A placeholder: the index keeps the range, and `contents`
        // makes the real content once the pack has its name.
        Ok(Content::bytes(Vec::new()))
    })?;
    io::copy(&mut reader, &mut io::sink()).map_err(read_err)?;
    let (found, found_size) = reader.finish();
    if &found != deb || found_size != size {
        return Err(UnpackError::Damaged {
            label: label.to_string(),
            path,
            expected: format!("{size} bytes, {deb}"),
            found: format!("{found_size} bytes, {found}"),
        });
    }
    let (pack_digest, pack_size) = pack.finish()?;

    let index = Index::new(deb, pack_digest, pack_size, &contents, &files);
    let pack = store.path(&index.pack);
    Ok(UnpackedDeb {
        index,
        pack: Arc::from(pack.as_path()),
    })
}

impl Index {
    /// Whether the index can be used for `deb`: its fields agree.
    fn sound(&self, deb: &Digest) -> bool {
        self.format == UNPACK_FORMAT
            && &self.deb == deb
            && self.entries.iter().all(|e| e.valid(self.pack_size))
            && self.control.values().all(|v| unb64(v).is_some())
    }

    /// `files[i]` is the range of the i-th regular file in archive order.
    fn new(
        deb: &Digest,
        pack: Digest,
        pack_size: u64,
        contents: &DebContents,
        files: &[(u64, u64, Digest)],
    ) -> Index {
        let mut next_file = files.iter();
        let entries = contents
            .data
            .iter()
            .map(|e| {
                let (kind, target, file) = match &e.node.kind {
                    NodeKind::Dir => ("dir", None, None),
                    NodeKind::File(_) => (
                        "file",
                        None,
                        Some(next_file.next().expect("one range per file").clone()),
                    ),
                    NodeKind::Symlink(t) => ("symlink", Some(t.clone()), None),
                    NodeKind::Hardlink(t) => ("hardlink", Some(t.clone()), None),
                    NodeKind::Whiteout => unreachable!("packages have no whiteouts"),
                };
                IndexEntry {
                    path: e.path.clone(),
                    kind: kind.to_string(),
                    mode: e.node.mode,
                    uid: e.node.uid,
                    gid: e.node.gid,
                    mtime: e.node.mtime,
                    xattrs: e
                        .node
                        .xattrs
                        .iter()
                        .map(|(k, v)| (k.clone(), b64(v)))
                        .collect(),
                    target,
                    file,
                }
            })
            .collect();
        Index {
            format: UNPACK_FORMAT,
            deb: deb.clone(),
            pack,
            pack_size,
            control: contents
                .control
                .iter()
                .map(|(k, v)| (k.clone(), b64(v)))
                .collect(),
            entries,
        }
    }
}

impl IndexEntry {
    fn valid(&self, pack_size: u64) -> bool {
        let shape = match self.kind.as_str() {
            "dir" => self.target.is_none() && self.file.is_none(),
            "file" => {
                self.target.is_none()
                    && self.file.as_ref().is_some_and(|(offset, size, _)| {
                        offset
                            .checked_add(*size)
                            .is_some_and(|end| end <= pack_size)
                    })
            }
            "symlink" | "hardlink" => self.target.is_some() && self.file.is_none(),
            _ => false,
        };
        shape && self.xattrs.values().all(|v| unb64(v).is_some())
    }
}

impl UnpackedDeb {
    /// The package `deb` as the index `bytes` describes it, its pack in
    /// `store`; `None` unless the index parses, is of this format, names
    /// `deb`, and every entry fits the pack. The pack itself is not read:
    /// whoever hands over the index checks that the pack hashes whole.
    pub(crate) fn from_index(bytes: &[u8], deb: &Digest, store: &BlobStore) -> Option<UnpackedDeb> {
        let index = serde_json::from_slice::<Index>(bytes)
            .ok()
            .filter(|index| index.sound(deb))?;
        let pack = store.path(&index.pack);
        Some(UnpackedDeb {
            index,
            pack: Arc::from(pack.as_path()),
        })
    }

    /// The index as it is recorded.
    pub(crate) fn index_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.index).expect("an index serializes")
    }

    /// The pack's digest and size.
    pub(crate) fn pack(&self) -> (&Digest, u64) {
        (&self.index.pack, self.index.pack_size)
    }

    /// The package's contents as `read_deb` gives them, for a build whose
    /// epoch is `epoch`; every file refers to its range of the pack.
    pub(crate) fn contents(&self, epoch: u64) -> DebContents {
        let data = self
            .index
            .entries
            .iter()
            .map(|e| {
                let kind = match (e.kind.as_str(), &e.target, &e.file) {
                    ("file", _, Some((offset, size, digest))) => NodeKind::File(Content::Cached {
                        pack: self.pack.clone(),
                        offset: *offset,
                        size: *size,
                        digest: digest.clone(),
                    }),
                    ("symlink", Some(t), _) => NodeKind::Symlink(t.clone()),
                    ("hardlink", Some(t), _) => NodeKind::Hardlink(t.clone()),
                    _ => NodeKind::Dir,
                };
                DataEntry {
                    path: e.path.clone(),
                    node: Node {
                        kind,
                        mode: e.mode,
                        uid: e.uid,
                        gid: e.gid,
                        mtime: e.mtime.min(epoch),
                        xattrs: e
                            .xattrs
                            .iter()
                            .map(|(k, v)| (k.clone(), unb64(v).expect("checked at load")))
                            .collect(),
                    },
                }
            })
            .collect();
        DebContents {
            control: self
                .index
                .control
                .iter()
                .map(|(k, v)| (k.clone(), unb64(v).expect("checked at load")))
                .collect(),
            data,
        }
    }

    #[cfg(test)]
    /// The sum of the package's file sizes: how much a layer of it writes.
    pub(crate) fn unpacked_size(&self) -> u64 {
        self.index.pack_size
    }
}

/// Hashes and counts what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: HashingWriter<io::Sink>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: HashingWriter::new(io::sink()),
        }
    }

    fn finish(self) -> (Digest, u64) {
        let (_, digest, size) = self.hasher.finish();
        (digest, size)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests;
