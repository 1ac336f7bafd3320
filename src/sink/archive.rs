//! The tar file both archive formats are: written reproducibly and
//! atomically. Every header field is set here, as for layers
//! (`layer::tar`): ustar, mode 0644 for files and 0755 for folders, owner
//! 0:0 with empty user and group names, mtime the build's epoch. Members
//! are written in the order the caller gives, which each format fixes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tar::EntryType;

use super::SinkError;
use crate::layer::tar::{base_header, pad, set_name_bytes, write_pax};
use crate::oci::Digest;
use crate::source::archive::sniff;
use crate::source::target::ArchiveKind;
use crate::store::{temp_file_in, BlobStore, StoreError};

/// The largest size a ustar header's 11 octal digits hold; larger members
/// carry their size in a pax record (POSIX.1-2001 `size`).
const MAX_USTAR_SIZE: u64 = 0o77777777777;

/// A tar stream being written; `path` is the archive, for messages.
pub(crate) struct ArchiveWriter<W: Write> {
    out: W,
    mtime: u64,
    path: PathBuf,
}

impl<W: Write> ArchiveWriter<W> {
    fn new(out: W, mtime: u64, path: &Path) -> Self {
        ArchiveWriter {
            out,
            mtime,
            path: path.to_path_buf(),
        }
    }

    fn io_err(&self) -> impl FnOnce(io::Error) -> SinkError + '_ {
        move |e| SinkError::Io {
            path: self.path.clone(),
            error: e,
        }
    }

    fn header(&mut self, name: &str, entry_type: EntryType, size: u64) -> io::Result<()> {
        // Every name this module writes (`blobs/sha256/<64 hex>` at most)
        // fits the 100-byte ustar name field.
        assert!(name.len() <= 100, "archive member name {name} too long");
        if size > MAX_USTAR_SIZE {
            let records = [("size".into(), size.to_string().into_bytes())];
            write_pax(&mut self.out, self.mtime, &records)?;
        }
        let mut h = base_header(self.mtime);
        set_name_bytes(&mut h, name.as_bytes());
        h.set_entry_type(entry_type);
        h.set_mode(if entry_type == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(if size > MAX_USTAR_SIZE { 0 } else { size });
        h.set_cksum();
        self.out.write_all(h.as_bytes())
    }

    /// A folder member; `name` ends in `/`.
    pub fn dir(&mut self, name: &str) -> Result<(), SinkError> {
        self.header(name, EntryType::Directory, 0)
            .map_err(self.io_err())
    }

    /// A small file held in memory (`index.json`, `manifest.json`, …).
    pub fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        let r = self
            .header(name, EntryType::Regular, bytes.len() as u64)
            .and_then(|()| self.out.write_all(bytes))
            .and_then(|()| pad(&mut self.out, bytes.len() as u64));
        r.map_err(self.io_err())
    }

    /// The blob `digest` of `store` as `blobs/sha256/<hex>`, streamed and
    /// checked against its digest on the way: a damaged blob fails the
    /// archive instead of being copied into it.
    pub fn blob(&mut self, store: &BlobStore, digest: &Digest) -> Result<(), SinkError> {
        let src = store.path(digest);
        let archive = self.path.clone();
        let blob_err = |source| SinkError::Blob {
            path: archive.clone(),
            error: source,
        };
        let (file, _) = store.open_blob(digest).map_err(blob_err)?;
        let read_err = |e| SinkError::Blob {
            path: archive.clone(),
            error: StoreError::Io {
                path: src.clone(),
                error: e,
            },
        };
        let size = file.metadata().map_err(read_err)?.len();
        self.header(
            &format!("blobs/sha256/{}", digest.hex()),
            EntryType::Regular,
            size,
        )
        .map_err(self.io_err())?;
        let mut reader = file.take(size);
        let mut hasher = Sha256::new();
        let mut copied = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            self.out.write_all(&buf[..n]).map_err(self.io_err())?;
            copied += n as u64;
        }
        let found = Digest::from_hash(hasher.finalize().into());
        if &found != digest || copied != size {
            return Err(blob_err(StoreError::Mismatch {
                path: src.clone(),
                digest: digest.clone(),
                expected_size: size,
                found,
                found_size: copied,
            }));
        }
        pad(&mut self.out, size).map_err(self.io_err())
    }

    /// Ends the archive (two zero blocks) and returns the writer.
    fn finish(mut self) -> Result<W, SinkError> {
        let r = self
            .out
            .write_all(&[0u8; 1024])
            .and_then(|()| self.out.flush());
        r.map_err(self.io_err())?;
        Ok(self.out)
    }
}

/// A destination may be replaced when it does not exist or is an archive
/// of the same kind (by its members): never a user's other data.
/// Our docker-archives also hold an OCI layout, so an oci-archive is one
/// with `oci-layout` and without `manifest.json`.
pub(crate) fn check_replaceable(dest: &Path, kind: ArchiveKind) -> Result<(), SinkError> {
    let clobber = || SinkError::WouldClobberArchive {
        path: dest.to_path_buf(),
        kind,
    };
    match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SinkError::Io {
            path: dest.to_path_buf(),
            error: e,
        }),
        Ok(m) if m.is_file() => {
            let Ok(found) = sniff(dest) else {
                return Err(clobber());
            };
            let same = match kind {
                ArchiveKind::Oci => found.oci_layout && !found.manifest_json,
                ArchiveKind::Docker => found.manifest_json,
            };
            if same {
                Ok(())
            } else {
                Err(clobber())
            }
        }
        Ok(_) => Err(clobber()),
    }
}

/// Writes an archive of `kind` at `dest` through a temp file beside it:
/// `members` writes the content, then the file is synced and renamed over
/// `dest`. On any error nothing is left behind and `dest` is untouched.
pub(crate) fn write_archive(
    dest: &Path,
    kind: ArchiveKind,
    mtime: u64,
    members: impl FnOnce(&mut ArchiveWriter<BufWriter<&File>>) -> Result<(), SinkError>,
) -> Result<(), SinkError> {
    check_replaceable(dest, kind)?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e| SinkError::Io { path, error: e }
    };
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    // An archive is handed to other users' tools like any file.
    let temp = temp_file_in(&parent, ".stele-tmp-").map_err(io_err(&parent))?;
    {
        let mut w = ArchiveWriter::new(
            BufWriter::with_capacity(256 * 1024, temp.as_file()),
            mtime,
            dest,
        );
        members(&mut w)?;
        w.finish()?
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_err(dest))?;
    }
    temp.as_file().sync_all().map_err(io_err(dest))?;
    check_replaceable(dest, kind)?;
    temp.persist(dest).map_err(|e| SinkError::Io {
        path: dest.to_path_buf(),
        error: e.error,
    })?;
    Ok(())
}
