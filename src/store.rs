//! A content-addressed blob store: `ROOT/blobs/sha256/<hex>`, the layout an
//! OCI image layout uses, so the same code writes layouts and the cache.
//! Blobs are written to a temp file in the same directory, fsynced and
//! renamed: a crash leaves the old state or the new one, never half a blob.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::oci::digest::{hash_reader, Digest};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("writing blob store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {digest} in {path} is damaged: expected {expected_size} bytes with that digest, found {found_size} bytes with {found}; delete the file and fetch or build again")]
    Mismatch {
        path: PathBuf,
        digest: Digest,
        expected_size: u64,
        found: Digest,
        found_size: u64,
    },
    #[error("blob {digest} is not in {path}")]
    Missing { path: PathBuf, digest: Digest },
    #[error("refusing blob {digest}: its size {size} is beyond the {limit}-byte limit for this kind of blob")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
}

#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, StoreError> {
        let root = root.into();
        let dir = root.join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(|e| StoreError::Io {
            path: dir,
            source: e,
        })?;
        Ok(BlobStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir().join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// A temp file beside the blobs, to be passed to `commit`.
    pub fn begin(&self) -> Result<NamedTempFile, StoreError> {
        // tempfile makes 0600 files; blobs are content anyone may read (a
        // layout is served and run by other users), so the umask decides.
        tempfile::Builder::new()
            .prefix(".tmp-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(self.dir())
            .map_err(|e| StoreError::Io {
                path: self.dir(),
                source: e,
            })
    }

    /// Makes a temp file from `begin` the blob `digest`. The caller vouches
    /// that the content has that digest (it hashed it while writing).
    pub fn commit(&self, temp: NamedTempFile, digest: &Digest) -> Result<(), StoreError> {
        let dest = self.path(digest);
        let io_err = |e| StoreError::Io {
            path: dest.clone(),
            source: e,
        };
        temp.as_file().sync_all().map_err(io_err)?;
        if dest.exists() {
            // Same digest, same bytes: another writer got there first.
            return Ok(());
        }
        temp.persist(&dest).map_err(|e| io_err(e.error))?;
        Ok(())
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut temp = self.begin()?;
        temp.write_all(bytes).map_err(|e| StoreError::Io {
            path: self.path(&digest),
            source: e,
        })?;
        self.commit(temp, &digest)?;
        Ok(digest)
    }

    /// Copies a verified stream into the store: the content must hash to
    /// `digest` and be `size` bytes, or nothing is stored.
    pub fn put_verified<R: Read>(
        &self,
        reader: R,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let temp = self.begin()?;
        let mut hw = crate::oci::HashingWriter::new(io::BufWriter::new(temp));
        let mut limited = reader.take(size + 1);
        io::copy(&mut limited, &mut hw).map_err(|e| StoreError::Io {
            path: self.path(digest),
            source: e,
        })?;
        let (buf, found, found_size) = hw.finish();
        if &found != digest || found_size != size {
            return Err(StoreError::Mismatch {
                path: self.path(digest),
                digest: digest.clone(),
                expected_size: size,
                found,
                found_size,
            });
        }
        let temp = buf.into_inner().map_err(|e| StoreError::Io {
            path: self.path(digest),
            source: e.into_error(),
        })?;
        self.commit(temp, digest)
    }

    /// Reads a whole blob after checking its size against `limit` and its
    /// content against its digest (and `size`, when known).
    pub fn read_verified(
        &self,
        digest: &Digest,
        size: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let path = self.path(digest);
        let mut file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing {
                path: self.root.clone(),
                digest: digest.clone(),
            },
            _ => StoreError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        let len = file
            .metadata()
            .map_err(|e| StoreError::Io {
                path: path.clone(),
                source: e,
            })?
            .len();
        if len > limit {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                size: len,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.read_to_end(&mut bytes).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e,
        })?;
        let found = Digest::of(&bytes);
        let found_size = bytes.len() as u64;
        if &found != digest || size.is_some_and(|s| s != found_size) {
            return Err(StoreError::Mismatch {
                path,
                digest: digest.clone(),
                expected_size: size.unwrap_or(found_size),
                found,
                found_size,
            });
        }
        Ok(bytes)
    }

    /// Checks a blob on disk without loading it whole.
    pub fn verify(&self, digest: &Digest, size: u64) -> Result<(), StoreError> {
        let path = self.path(digest);
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing {
                path: self.root.clone(),
                digest: digest.clone(),
            },
            _ => StoreError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        let (found, found_size) =
            hash_reader(io::BufReader::new(file)).map_err(|e| StoreError::Io {
                path: path.clone(),
                source: e,
            })?;
        if &found != digest || found_size != size {
            return Err(StoreError::Mismatch {
                path,
                digest: digest.clone(),
                expected_size: size,
                found,
                found_size,
            });
        }
        Ok(())
    }

    /// Deletes a blob found damaged, so the next writer can store it anew.
    pub fn remove(&self, digest: &Digest) {
        let _ = fs::remove_file(self.path(digest));
    }

    /// Deletes the blob `digest` if it is there but not `size` bytes with
    /// that digest: `commit` keeps an existing blob, which must not keep a
    /// damaged one forever.
    pub fn remove_if_damaged(&self, digest: &Digest, size: u64) {
        if self.contains(digest) && self.verify(digest, size).is_err() {
            self.remove(digest);
        }
    }

    /// Copies the blob `digest` of `size` bytes from `other`, checking the
    /// copy before it gets its name. Never a hard link: the two stores stay
    /// independent, so a blob changed in place in one (a layout someone
    /// edits) cannot damage the other.
    pub fn copy_checked_from(
        &self,
        other: &BlobStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let temp = self.begin()?;
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StoreError::Io { path, source: e }
        };
        // `fs::copy` lets the kernel copy (copy_file_range), sharing
        // extents where the file system can.
        fs::copy(other.path(digest), temp.path()).map_err(io_err(&other.path(digest)))?;
        let file = File::open(temp.path()).map_err(io_err(temp.path()))?;
        let (found, found_size) = hash_reader(io::BufReader::with_capacity(256 * 1024, file))
            .map_err(io_err(temp.path()))?;
        if &found != digest || found_size != size {
            return Err(StoreError::Mismatch {
                path: other.path(digest),
                digest: digest.clone(),
                expected_size: size,
                found,
                found_size,
            });
        }
        self.commit(temp, digest)
    }

    /// `copy_checked_from` for a blob whose size only its file knows.
    pub fn copy_from(&self, other: &BlobStore, digest: &Digest) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let src = other.path(digest);
        let size = fs::metadata(&src)
            .map_err(|e| StoreError::Io {
                path: src.clone(),
                source: e,
            })?
            .len();
        self.copy_checked_from(other, digest, size)
    }
}

/// Cache records: small JSON blobs in a `BlobStore`, found by a key through
/// a pointer file `DIR/<key hex>` that holds the record's digest. Records
/// are read back verified, so a damaged or half-written pointer or record
/// reads as absent (a cache miss), never as another answer.
#[derive(Clone, Debug)]
pub struct Records {
    dir: PathBuf,
}

/// Records are a few hundred kilobytes at most (a large package's index).
const RECORD_LIMIT: u64 = 64 << 20;

impl Records {
    /// Opens (creating if needed) the pointer folder `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Records, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StoreError::Io {
            path: dir.clone(),
            source: e,
        })?;
        Ok(Records { dir })
    }

    pub fn pointer_path(&self, key: &Digest) -> PathBuf {
        self.dir.join(key.hex())
    }

    /// The record stored under `key`, or `None` when there is none or it
    /// does not check out.
    pub fn get(&self, store: &BlobStore, key: &Digest) -> Option<Vec<u8>> {
        let pointer = fs::read(self.pointer_path(key)).ok()?;
        let text = std::str::from_utf8(&pointer).ok()?;
        let digest: Digest = text.trim_end().parse().ok()?;
        store.read_verified(&digest, None, RECORD_LIMIT).ok()
    }

    /// Stores `record` under `key`: the blob first, then the pointer, each
    /// complete before it gets its name.
    pub fn put(&self, store: &BlobStore, key: &Digest, record: &[u8]) -> Result<(), StoreError> {
        store.remove_if_damaged(&Digest::of(record), record.len() as u64);
        let digest = store.put_bytes(record)?;
        let dest = self.pointer_path(key);
        let io_err = |e| StoreError::Io {
            path: dest.clone(),
            source: e,
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(io_err)?;
        temp.write_all(format!("{digest}\n").as_bytes())
            .map_err(io_err)?;
        temp.as_file().sync_all().map_err(io_err)?;
        temp.persist(&dest).map_err(|e| io_err(e.error))?;
        Ok(())
    }

    /// Forgets `key` (a record found damaged or stale).
    pub fn remove(&self, key: &Digest) {
        let _ = fs::remove_file(self.pointer_path(key));
    }
}
