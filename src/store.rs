//! A content-addressed blob store: `ROOT/blobs/sha256/<hex>`, the layout an
//! OCI image layout uses, so the same code writes layouts and the cache.
//! Blobs are written to a temp file in the same directory, fsynced and
//! renamed: a crash leaves the old state or the new one, never half a blob.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use crate::oci::digest::{hash_reader, Digest};

/// Buffer for blob files: large enough that a layer's compressed stream
/// reaches the disk in few writes.
const WRITE_BUFFER: usize = 256 * 1024;

/// A temp file in `dir` for something a user reads: created with mode
/// 0666, which the kernel narrows by the process's umask, as for any file
/// a program creates (tempfile's default is 0600). Outputs are read and
/// served by other users' tools, so the umask decides, never a copied
/// source's mode.
pub(crate) fn temp_file_in(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("writing blob store {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("blob {digest} in {path} is damaged: expected {expected_size} bytes with that digest, found {found_size} bytes with {found}; delete the file and fetch or build again")]
    Mismatch {
        path: PathBuf,
        digest: Digest,
        expected_size: u64,
        found: Digest,
        found_size: u64,
    },
    // No path: the content came from a stream the caller names, and a
    // path here would make every `StoreError` a word larger.
    #[error("content given as blob {expected} does not match: expected {expected_size} bytes with that digest, got {found_size} bytes with {found}; nothing was stored")]
    DigestMismatch {
        expected: Digest,
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
            error: e,
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

    /// A writer for a new blob in this store; see [`BlobWriter`].
    pub(crate) fn begin(&self) -> Result<BlobWriter, StoreError> {
        let dir = self.dir();
        let temp = temp_file_in(&dir, ".tmp-").map_err(|e| StoreError::Io {
            path: dir,
            error: e,
        })?;
        Ok(BlobWriter {
            store: self.clone(),
            file: BufWriter::with_capacity(WRITE_BUFFER, temp),
            mirror: None,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut blob = self.begin()?;
        blob.write_all(bytes).map_err(|e| StoreError::Io {
            path: self.path(&digest),
            error: e,
        })?;
        blob.commit_verified_as(&digest, bytes.len() as u64)?;
        Ok(digest)
    }

    /// Copies a verified stream into the store: the content must hash to
    /// `digest` and be `size` bytes, or nothing is stored
    /// (`StoreError::DigestMismatch`).
    pub(crate) fn put_verified<R: Read>(
        &self,
        reader: R,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let mut blob = self.begin()?;
        // One byte past `size` is enough to tell an over-long stream.
        let mut limited = reader.take(size + 1);
        io::copy(&mut limited, &mut blob).map_err(|e| StoreError::Io {
            path: self.path(digest),
            error: e,
        })?;
        blob.commit_verified_as(digest, size)
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
                error: e,
            },
        })?;
        let len = file
            .metadata()
            .map_err(|e| StoreError::Io {
                path: path.clone(),
                error: e,
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
            error: e,
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
                error: e,
            },
        })?;
        let (found, found_size) =
            hash_reader(io::BufReader::new(file)).map_err(|e| StoreError::Io {
                path: path.clone(),
                error: e,
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
    /// that digest: `put_bytes`, `put_verified` and `copy_checked_from`
    /// take an existing blob as it is, which must not keep a damaged one
    /// forever.
    pub(crate) fn remove_if_damaged(&self, digest: &Digest, size: u64) {
        if self.contains(digest) && self.verify(digest, size).is_err() {
            self.remove(digest);
        }
    }

    /// Copies the blob `digest` of `size` bytes from `other`, checking the
    /// copy before it gets its name. Never a hard link nor a kernel copy:
    /// the two stores stay independent, so a blob changed in place in one
    /// (a layout someone edits) cannot damage the other, and the copy is a
    /// new file whose mode the umask decides, never the source's (a cache
    /// filled under `umask 077` must not make layouts unreadable).
    pub(crate) fn copy_checked_from(
        &self,
        other: &BlobStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let src = other.path(digest);
        let file = File::open(&src).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing {
                path: other.root.clone(),
                digest: digest.clone(),
            },
            _ => StoreError::Io {
                path: src.clone(),
                error: e,
            },
        })?;
        let mut blob = self.begin()?;
        // One byte past `size` is enough to tell a damaged, longer source.
        let mut reader = file.take(size + 1);
        let mut buf = vec![0u8; WRITE_BUFFER];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        path: src,
                        error: e,
                    })
                }
            };
            blob.write_all(&buf[..n]).map_err(|e| StoreError::Io {
                path: self.path(digest),
                error: e,
            })?;
        }
        match blob.commit_verified_as(digest, size) {
            Err(StoreError::DigestMismatch {
                expected,
                expected_size,
                found,
                found_size,
                ..
            }) => Err(StoreError::Mismatch {
                path: src,
                digest: expected,
                expected_size,
                found,
                found_size,
            }),
            r => r,
        }
    }

    /// `copy_checked_from` for a blob whose size only its file knows.
    pub(crate) fn copy_from(&self, other: &BlobStore, digest: &Digest) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let src = other.path(digest);
        let size = fs::metadata(&src)
            .map_err(|e| StoreError::Io {
                path: src.clone(),
                error: e,
            })?
            .len();
        self.copy_checked_from(other, digest, size)
    }
}

/// A blob being written into a store: everything written goes to a temp
/// file beside the blobs and is hashed and counted on the way, so a blob
/// can only be stored under the digest of its own bytes. Dropped without
/// `finish` or `commit_verified_as`, it leaves nothing behind.
pub(crate) struct BlobWriter {
    store: BlobStore,
    file: BufWriter<NamedTempFile>,
    /// A second store getting the same bytes (the layer cache): one hash
    /// for both, cheaper than copying and checking the blob afterwards.
    mirror: Option<(BlobStore, BufWriter<NamedTempFile>)>,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    /// Writes the same bytes into `other` too: `finish` and
    /// `commit_verified_as` then return `Ok` only when both stores hold it.
    pub(crate) fn mirror_into(mut self, other: &BlobStore) -> Result<BlobWriter, StoreError> {
        let dir = other.dir();
        let temp = temp_file_in(&dir, ".tmp-").map_err(|e| StoreError::Io {
            path: dir,
            error: e,
        })?;
        self.mirror = Some((other.clone(), BufWriter::with_capacity(WRITE_BUFFER, temp)));
        Ok(self)
    }

    /// The temp file being written, for messages.
    pub(crate) fn temp_path(&self) -> &Path {
        self.file.get_ref().path()
    }

    /// Stores the bytes written under their digest, returned with their
    /// size. An `Ok` means the blob is synced to disk under that digest.
    pub fn finish(mut self) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::from_hash(std::mem::take(&mut self.hasher).finalize().into());
        let size = self.size;
        self.persist(&digest)?;
        Ok((digest, size))
    }

    /// Stores the bytes written as `expected` if they are `expected_size`
    /// bytes with that digest; else stores nothing and returns
    /// `StoreError::DigestMismatch`.
    pub(crate) fn commit_verified_as(
        mut self,
        expected: &Digest,
        expected_size: u64,
    ) -> Result<(), StoreError> {
        let found = Digest::from_hash(std::mem::take(&mut self.hasher).finalize().into());
        if &found != expected || self.size != expected_size {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                expected_size,
                found,
                found_size: self.size,
            });
        }
        self.persist(expected)
    }

    fn persist(self, digest: &Digest) -> Result<(), StoreError> {
        let targets = std::iter::once((self.store, self.file)).chain(self.mirror);
        for (store, file) in targets {
            let dest = store.path(digest);
            let io_err = |e| StoreError::Io {
                path: dest.clone(),
                error: e,
            };
            let temp = file.into_inner().map_err(|e| io_err(e.into_error()))?;
            temp.as_file().sync_all().map_err(io_err)?;
            // Renamed over a blob already there: same digest, same bytes, or
            // a damaged file this verified one replaces.
            temp.persist(&dest).map_err(|e| io_err(e.error))?;
        }
        Ok(())
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some((_, mirror)) = &mut self.mirror {
            mirror.write_all(&buf[..n])?;
        }
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if let Some((_, mirror)) = &mut self.mirror {
            mirror.flush()?;
        }
        Ok(())
    }
}

/// Cache records: small JSON blobs in a `BlobStore`, found by a key through
/// a pointer file `DIR/<key hex>` that holds the record's digest. Records
/// are read back verified, so a damaged or half-written pointer or record
/// reads as absent (a cache miss), never as another answer.
#[derive(Clone, Debug)]
pub(crate) struct Records {
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
            error: e,
        })?;
        Ok(Records { dir })
    }

    pub(crate) fn pointer_path(&self, key: &Digest) -> PathBuf {
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
            error: e,
        };
        let mut temp = temp_file_in(&self.dir, ".tmp-").map_err(io_err)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's umask, read without changing it: umask(2) can only
    /// set it, which would race with other tests creating files.
    fn process_umask() -> u32 {
        let status = fs::read_to_string("/proc/self/status").expect("Linux has /proc");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).expect("an octal umask"))
            .expect("Linux reports the umask")
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_blob_is_stored_under_the_digest_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut blob = store.begin().unwrap();
        blob.write_all(b"hello").unwrap();
        let (digest, size) = blob.finish().unwrap();
        assert_eq!((digest.clone(), size), (Digest::of(b"hello"), 5));
        assert_eq!(fs::read(store.path(&digest)).unwrap(), b"hello");
    }

    #[test]
    fn a_blob_whose_bytes_differ_from_its_claim_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let claimed = Digest::of(b"hello");
        let mut blob = store.begin().unwrap();
        blob.write_all(b"hellO").unwrap();
        match blob.commit_verified_as(&claimed, 5) {
            Err(StoreError::DigestMismatch {
                expected, found, ..
            }) => {
                assert_eq!(expected, claimed);
                assert_eq!(found, Digest::of(b"hellO"));
            }
            other => panic!("expected a digest mismatch, got {other:?}"),
        }
        let mut blob = store.begin().unwrap();
        blob.write_all(b"hello").unwrap();
        assert!(matches!(
            blob.commit_verified_as(&claimed, 4),
            Err(StoreError::DigestMismatch { found_size: 5, .. })
        ));
        assert!(!store.contains(&claimed));
        // No temp file is left behind either.
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_mirrored_blob_lands_in_both_stores_and_heals_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = BlobStore::open(dir.path().join("a")).unwrap();
        let b = BlobStore::open(dir.path().join("b")).unwrap();
        let digest = Digest::of(b"layer");
        fs::write(b.path(&digest), b"damaged").unwrap();
        let mut blob = a.begin().unwrap().mirror_into(&b).unwrap();
        blob.write_all(b"layer").unwrap();
        assert_eq!(blob.finish().unwrap(), (digest.clone(), 5));
        a.verify(&digest, 5).unwrap();
        b.verify(&digest, 5).unwrap();
    }

    #[test]
    fn a_copied_blob_gets_its_mode_from_the_umask_not_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobStore::open(dir.path().join("cache")).unwrap();
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        let digest = cache.put_bytes(b"blob").unwrap();
        // As a cache filled under `umask 077` leaves it.
        fs::set_permissions(cache.path(&digest), Permissions::from_mode(0o600)).unwrap();
        out.copy_from(&cache, &digest).unwrap();
        let expected = 0o666 & !process_umask();
        assert_eq!(mode(&out.path(&digest)), expected);
        if process_umask() == 0o022 {
            assert_eq!(mode(&out.path(&digest)), 0o644);
        }
        // Blobs written directly and record pointers alike.
        let written = out.put_bytes(b"other").unwrap();
        assert_eq!(mode(&out.path(&written)), expected);
        let records = Records::open(dir.path().join("records")).unwrap();
        records.put(&out, &written, b"{}").unwrap();
        assert_eq!(mode(&records.pointer_path(&written)), expected);
    }

    #[test]
    fn a_damaged_source_is_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let a = BlobStore::open(dir.path().join("a")).unwrap();
        let b = BlobStore::open(dir.path().join("b")).unwrap();
        let digest = a.put_bytes(b"blob").unwrap();
        fs::write(a.path(&digest), b"blobby").unwrap();
        assert!(matches!(
            b.copy_checked_from(&a, &digest, 4),
            Err(StoreError::Mismatch { found_size: 5, .. })
        ));
        assert!(!b.contains(&digest));
    }
}
