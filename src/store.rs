//! A content-addressed blob store: `ROOT/blobs/sha256/<hex>`, the layout an
//! OCI image layout uses, so the same code writes layouts and the cache.
//! Blobs are written to a temp file in the same directory, fsynced and
//! renamed: a crash leaves the old state or the new one, never half a blob.

use std::ffi::CString;
use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use crate::oci::digest::{hash_reader, Digest};

mod link;
mod stamp;
use stamp::Checked;
pub(crate) use stamp::Stamp;

/// Buffer for blob files: large enough that a layer's compressed stream
/// reaches the disk in few writes.
const WRITE_BUFFER: usize = 256 * 1024;

/// A temp file in `dir` for something a user reads: created with mode
/// 0666, which the kernel narrows by the process's umask, as for any file
/// a program creates (tempfile's default is 0600). Outputs are read and
/// served by other users' tools, so the umask decides, never a copied
/// source's mode.
///
/// The file is locked (`flock`) for as long as it is open: a temp file
/// whose lock can be taken belongs to no live process, and
/// `sweep_stale` removes it. The lock is taken before the file is used,
/// and a file swept between its creation and its lock is noticed (its
/// name no longer leads to it) and made anew.
pub(crate) fn temp_file_in(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    loop {
        let temp = tempfile::Builder::new()
            .prefix(prefix)
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(dir)?;
        if lock_if_ours(temp.as_file(), temp.path())? {
            return Ok(temp);
        }
    }
}

/// A temp folder in `dir`, locked like `temp_file_in`'s files; the lock
/// lives as long as the returned handle.
pub(crate) fn temp_dir_in(dir: &Path, prefix: &str) -> io::Result<(tempfile::TempDir, File)> {
    loop {
        let temp = tempfile::Builder::new()
            .prefix(prefix)
            .permissions(Permissions::from_mode(0o777))
            .tempdir_in(dir)?;
        // Another build's sweep may remove the folder before it is
        // locked: then it is made anew.
        let handle = match File::open(temp.path()) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if lock_if_ours(&handle, temp.path())? {
            return Ok((temp, handle));
        }
    }
}

/// Sets `file`'s modification time to now: when a cache entry was last
/// used, which `stele cache prune` removes the least recent of. The
/// access time would say the same without a write, but `noatime` and
/// `relatime` mounts keep it from saying it. Best effort: a file the
/// process may not change keeps its time.
fn touch(file: &File) {
    use std::os::fd::AsRawFd;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
    ];
    // SAFETY: a valid descriptor and a two-element array, as futimens wants.
    unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) };
}

/// Locks `file` without waiting; true when the lock is held and `path`
/// still names the locked file (no sweep removed it first).
fn lock_if_ours(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    // SAFETY: a valid descriptor for the call's duration.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(false);
    }
    let held = file.metadata()?;
    Ok(fs::symlink_metadata(path).is_ok_and(|m| m.ino() == held.ino() && m.dev() == held.dev()))
}

/// Removes what a killed process left in `dir`: entries named
/// `prefix…` whose lock (see `temp_file_in`) can be taken. A live
/// process's temp files hold their lock and are left alone. Best effort:
/// what cannot be removed is left for the next sweep.
pub(crate) fn sweep_stale(dir: &Path, prefix: &str) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        // SAFETY: a valid descriptor for the call's duration.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        match file.metadata() {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir_all(&path);
            }
            Ok(_) => {
                let _ = fs::remove_file(&path);
            }
            Err(_) => {}
        }
    }
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
    /// Found from the file's size alone: its bytes are not read past the
    /// size expected, so no digest of the whole is known.
    #[error("blob {digest} in {path} is damaged: expected {expected_size} bytes, the file holds {found_size}; delete the file and fetch or build again")]
    Longer {
        path: PathBuf,
        digest: Digest,
        expected_size: u64,
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
    #[error("refusing {path}: {problem}")]
    Refused { path: PathBuf, problem: Refusal },
    #[error("{path} was opened to be read only; nothing is written into an image stele reads")]
    ReadOnly { path: PathBuf },
}

/// Why an untrusted file was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it, or a folder on the way to it, is a symbolic link; stele follows no links inside an image it reads")]
    Link,
    #[error("a folder on the way to it is not a folder")]
    NotFolder,
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("its name is not a plain relative path")]
    BadName,
}

/// An untrusted file that failed to open.
#[derive(Debug)]
pub(crate) enum OpenError {
    Missing,
    Refused(Refusal),
    Io(io::Error),
}

impl OpenError {
    /// As a `StoreError` about `path` (`Missing` needs the caller's words).
    pub(crate) fn at(self, path: PathBuf) -> StoreError {
        match self {
            OpenError::Missing => StoreError::Io {
                path,
                error: io::ErrorKind::NotFound.into(),
            },
            OpenError::Refused(problem) => StoreError::Refused { path, problem },
            OpenError::Io(error) => StoreError::Io { path, error },
        }
    }
}

fn kind_name(t: fs::FileType) -> &'static str {
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

/// Opens `unsafe_rel` (`a/b/c`, no `.`, `..` or empty components) below
/// the folder `root` without following any link on the way: each
/// component is opened with `openat(O_NOFOLLOW)` relative to the one
/// before, so a link anywhere below `root` is refused, not followed, and
/// no other process can swap one in between a check and the open. `root`
/// itself is followed: the user named it.
///
/// Ok means the file is a regular file (checked with `fstat` on the open
/// descriptor, before any byte is read: a FIFO or device is never read),
/// returned with its size at open time. Readers still bound what they read
/// by the size they expect: a file may grow after the `fstat`.
pub(crate) fn open_untrusted(root: &Path, unsafe_rel: &str) -> Result<(File, u64), OpenError> {
    let c = |bytes: &[u8]| CString::new(bytes).map_err(|_| OpenError::Refused(Refusal::BadName));
    let last_error = |last: bool| {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) => OpenError::Missing,
            Some(libc::ELOOP) => OpenError::Refused(Refusal::Link),
            Some(libc::ENOTDIR) if !last => OpenError::Refused(Refusal::NotFolder),
            Some(libc::ENOTDIR) => OpenError::Refused(Refusal::Link),
            _ => OpenError::Io(e),
        }
    };
    let root_c = c(root.as_os_str().as_bytes())?;
    // SAFETY: a valid C string; the descriptor is owned at once.
    let fd = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_error(false));
    }
    // SAFETY: `fd` is a fresh descriptor no one else owns.
    let mut current = unsafe { OwnedFd::from_raw_fd(fd) };
    let parts: Vec<&str> = unsafe_rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err(OpenError::Refused(Refusal::BadName));
        }
        let last = i + 1 == parts.len();
        // O_NONBLOCK: opening a FIFO must not wait for a writer; the
        // fstat below refuses it before any read.
        let flags = libc::O_RDONLY
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | if last {
                libc::O_NONBLOCK | libc::O_NOCTTY
            } else {
                libc::O_DIRECTORY
            };
        let name = c(part.as_bytes())?;
        use std::os::fd::AsRawFd;
        // SAFETY: a valid directory descriptor and C string.
        let fd = unsafe { libc::openat(current.as_raw_fd(), name.as_ptr(), flags) };
        if fd < 0 {
            return Err(last_error(last));
        }
        // SAFETY: as above.
        current = unsafe { OwnedFd::from_raw_fd(fd) };
    }
    let file = File::from(current);
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.file_type().is_file() {
        return Err(OpenError::Refused(Refusal::NotRegular(kind_name(
            meta.file_type(),
        ))));
    }
    Ok((file, meta.len()))
}

/// Opens a file a user named on the command line (an archive): followed
/// if it is a link, but refused unless it is a regular file, checked on
/// the open descriptor before any read, so a FIFO or device never hangs
/// or floods a reader.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| StoreError::Io {
            path: path.into(),
            error: e,
        })?;
    let meta = file.metadata().map_err(|e| StoreError::Io {
        path: path.into(),
        error: e,
    })?;
    if !meta.file_type().is_file() {
        return Err(StoreError::Refused {
            path: path.into(),
            problem: Refusal::NotRegular(kind_name(meta.file_type())),
        });
    }
    Ok((file, meta.len()))
}

/// Reads at most `limit` bytes of `reader`, refusing (`None`) a stream
/// longer than that: one byte past the limit proves it.
pub(crate) fn read_limited(reader: impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// A blob store. Every read opens its blob without following links
/// (`open_untrusted`; see `open_blob`), whoever made the store: layouts
/// and archives are untrusted, and a cache is only as trustworthy as the
/// last process that wrote into it.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    /// Opened with `open_read_only`: never written, never created into.
    read_only: bool,
    /// A cache's store: a blob opened whose modification time is before
    /// this (seconds since the epoch) gets it set to now: when it was last
    /// used, which `stele cache prune` orders by (see `touching`).
    touch: Option<i64>,
    /// The blob files this process wrote or hashed whole, by stamp: the
    /// ones a copy out of this store need not hash again.
    checked: Checked,
}

impl BlobStore {
    /// Opens (creating if needed) a store rooted at `root`: stele's own
    /// outputs and its cache.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, StoreError> {
        let root = root.into();
        let dir = root.join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(|e| StoreError::Io {
            path: dir.clone(),
            error: e,
        })?;
        sweep_stale(&dir, ".tmp-");
        Ok(BlobStore {
            root,
            read_only: false,
            touch: None,
            checked: Checked::default(),
        })
    }

    /// Opens the store of an image someone else made (a layout) to read
    /// it: nothing is created or written below `root`, whatever is called
    /// on the result (writes fail with `StoreError::ReadOnly`). `blobs`
    /// and `blobs/sha256`, where present, must be real folders, not links
    /// (a link would make reads, and any mistaken write, land elsewhere).
    /// A missing folder reads as a store holding no blob.
    pub(crate) fn open_read_only(root: impl Into<PathBuf>) -> Result<BlobStore, StoreError> {
        let root = root.into();
        for rel in ["blobs", "blobs/sha256"] {
            let path = root.join(rel);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(StoreError::Refused {
                        path,
                        problem: Refusal::Link,
                    })
                }
                Ok(m) => {
                    return Err(StoreError::Refused {
                        path,
                        problem: Refusal::NotRegular(kind_name(m.file_type())),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(StoreError::Io { path, error: e }),
            }
        }
        Ok(BlobStore {
            root,
            read_only: true,
            touch: None,
            checked: Checked::default(),
        })
    }

    /// A file longer than its descriptor says is damaged, told without
    /// reading it.
    fn not_longer(&self, digest: &Digest, len: u64, size: u64) -> Result<(), StoreError> {
        if len > size {
            return Err(StoreError::Longer {
                path: self.path(digest),
                digest: digest.clone(),
                expected_size: size,
                found_size: len,
            });
        }
        Ok(())
    }

    fn rel(digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }

    /// Opens the blob `digest` to read it (see `open_untrusted`), with its
    /// size at open time. Readers bound what they read by the size the
    /// descriptor names.
    ///
    /// In a read-only store (someone else's layout) no component below the
    /// root may be a link. In stele's own stores (the cache, outputs) the
    /// `blobs/sha256` folders may be (a user may move a cache's blobs to
    /// another disk); the blob file itself never is.
    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<(File, u64), StoreError> {
        let opened = if self.read_only {
            open_untrusted(&self.root, &Self::rel(digest))
        } else {
            open_untrusted(&self.dir(), digest.hex())
        };
        let opened = opened.map_err(|e| match e {
            OpenError::Missing => StoreError::Missing {
                path: self.root.clone(),
                digest: digest.clone(),
            },
            e => e.at(self.path(digest)),
        })?;
        self.mark_used(&opened.0);
        Ok(opened)
    }

    /// This store, marking each blob it opens as used now when it was
    /// last marked before `since` (a cache's; the CLI passes the time an
    /// hour ago). Not on every use: marking changes the file's ctime,
    /// which `Stamp`s rest on, and once an hour is as fine as pruning by
    /// age needs.
    pub(crate) fn touching(mut self, since: std::time::SystemTime) -> BlobStore {
        let secs = since
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.touch = Some(secs);
        self
    }

    /// Marks a cache file this store's reader opened as used (`touching`).
    pub(crate) fn mark_used(&self, file: &File) {
        use std::os::unix::fs::MetadataExt;
        let Some(since) = self.touch else {
            return;
        };
        if file.metadata().is_ok_and(|m| m.mtime() < since) {
            touch(file);
        }
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

    /// Whether a regular file (not a link) is stored under `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.open_blob(digest).is_ok()
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.root.clone(),
            });
        }
        Ok(())
    }

    /// A writer for a new blob in this store; see [`BlobWriter`].
    pub(crate) fn begin(&self) -> Result<BlobWriter, StoreError> {
        self.writable()?;
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
            sync: true,
        })
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        self.put_bytes_syncing(bytes, true)
    }

    /// `put_bytes` without waiting for the disk: for a cache's small
    /// records, which are only ever read verified, so a crash can leave
    /// one torn (a miss, written again), never wrong. An fsync each would
    /// cost a build or pull more than the work the record spares.
    pub(crate) fn put_bytes_unsynced(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        self.put_bytes_syncing(bytes, false)
    }

    fn put_bytes_syncing(&self, bytes: &[u8], sync: bool) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut blob = self.begin()?;
        blob.sync = sync;
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
        let mut limited = reader.take(size.saturating_add(1));
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
        let (file, len) = self.open_blob(digest)?;
        if let Some(size) = size.filter(|s| *s <= limit) {
            self.not_longer(digest, len, size)?;
        }
        if len > limit {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                size: len,
                limit,
            });
        }
        // Never more than the limit, nor than the size the caller expects
        // plus the one byte that proves the file longer.
        let bound = size.map_or(limit, |s| s.min(limit));
        let bytes = read_limited(file, bound)
            .map_err(|e| StoreError::Io {
                path: path.clone(),
                error: e,
            })?
            .ok_or_else(|| StoreError::TooLarge {
                digest: digest.clone(),
                size: bound + 1,
                limit: bound,
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
        self.verify_stamped(digest, size).map(|_| ())
    }

    /// Checks that a blob is there, a regular file no longer than `size`,
    /// without reading it: for blobs whose bytes are checked when read.
    pub(crate) fn check_present(&self, digest: &Digest, size: u64) -> Result<(), StoreError> {
        let (_, len) = self.open_blob(digest)?;
        self.not_longer(digest, len, size)
    }

    /// Deletes a blob found damaged, so the next writer can store it anew.
    pub fn remove(&self, digest: &Digest) {
        if self.read_only {
            return;
        }
        let _ = fs::remove_file(self.path(digest));
    }

    /// Deletes the blob `digest` if it is there but not `size` bytes with
    /// that digest: `put_bytes`, `put_verified` and `copy_checked_from`
    /// take an existing blob as it is, which must not keep a damaged one
    /// forever.
    pub(crate) fn remove_if_damaged(&self, digest: &Digest, size: u64) {
        // A link or special file under the name is damage too.
        let there = fs::symlink_metadata(self.path(digest)).is_ok();
        if there && self.verify(digest, size).is_err() {
            self.remove(digest);
        }
    }

    /// Copies the blob `digest` of `size` bytes from `other`, checking the
    /// copy before it gets its name: hashed, unless this process wrote or
    /// hashed the source file and it still has that stamp
    /// (`copy_stamped_from`). Never a hard link:
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
        match other.checked_stamp(digest) {
            Some(stamp) => self.copy_stamped_from(other, digest, size, Some(&stamp)),
            None => self.copy_hashed_from(other, digest, size),
        }
    }

    /// `copy_checked_from`, hashing every byte copied.
    fn copy_hashed_from(
        &self,
        other: &BlobStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let src = other.path(digest);
        let (file, len) = other.open_blob(digest)?;
        other.not_longer(digest, len, size)?;
        let mut blob = self.begin()?;
        // One byte past `size` is enough to tell a damaged, longer source.
        let mut reader = file.take(size.saturating_add(1));
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

    /// Checks a blob against its digest and size, like `verify`, and
    /// returns its `Stamp` when the file did not change while it was read.
    pub(crate) fn verify_stamped(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<Stamp>, StoreError> {
        let path = self.path(digest);
        let (file, len) = self.open_blob(digest)?;
        self.not_longer(digest, len, size)?;
        let before = Stamp::of_file(&file);
        let (found, found_size) =
            hash_reader(io::BufReader::new((&file).take(size.saturating_add(1)))).map_err(|e| {
                StoreError::Io {
                    path: path.clone(),
                    error: e,
                }
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
        let stamp = before.filter(|b| Stamp::of_file(&file).as_ref() == Some(b));
        if let Some(s) = &stamp {
            self.checked.note_stamp(digest, s.clone());
        }
        Ok(stamp)
    }

    /// The stamp `digest`'s file had when this process wrote it or found
    /// it to hold the digest's bytes; whoever relies on it compares it
    /// with the file's own, before and after reading.
    pub(crate) fn checked_stamp(&self, digest: &Digest) -> Option<Stamp> {
        self.checked.stamp(digest)
    }

    /// The blobs this process wrote or hashed in this store after the
    /// first `seen` of them, in that order, waiting up to `wait` for one:
    /// for work that follows a download blob by blob.
    pub(crate) fn checked_after(&self, seen: usize, wait: std::time::Duration) -> Vec<Digest> {
        self.checked.noted_after(seen, wait)
    }

    /// The file of `digest` was found, while it had `stamp`, to hold the
    /// digest's bytes (hashed by a reader of this store).
    pub(crate) fn note_checked(&self, digest: &Digest, stamp: &Stamp) {
        self.checked.note_stamp(digest, stamp.clone());
    }

    /// `copy_checked_from`, without hashing when the source file still
    /// has `stamp`, the one it had when its bytes were last found to be
    /// `digest` (`verify_stamped`, `source::view`), before and after the
    /// copy: a file written since has another ctime, which no one but the
    /// kernel sets. Otherwise the copy is checked as `copy_checked_from`
    /// does. The copy is a new file either way (never a link), so the two
    /// stores stay independent.
    pub(crate) fn copy_stamped_from(
        &self,
        other: &BlobStore,
        digest: &Digest,
        size: u64,
        stamp: Option<&Stamp>,
    ) -> Result<(), StoreError> {
        let Some(stamp) = stamp else {
            return self.copy_hashed_from(other, digest, size);
        };
        if self.contains(digest) {
            return Ok(());
        }
        self.writable()?;
        let (file, _) = other.open_blob(digest)?;
        let unchanged = |f: &File| Stamp::of_file(f).as_ref() == Some(stamp);
        if !unchanged(&file) {
            return self.copy_hashed_from(other, digest, size);
        }
        let dest = self.path(digest);
        let io_err = |e| StoreError::Io {
            path: dest.clone(),
            error: e,
        };
        let dir = self.dir();
        let temp = temp_file_in(&dir, ".tmp-").map_err(io_err)?;
        // File to file: the kernel copies (copy_file_range), no bytes
        // pass through this process.
        let copied = io::copy(&mut (&file).take(size), &mut temp.as_file()).map_err(io_err)?;
        if copied != size || !unchanged(&file) {
            drop(temp);
            return self.copy_hashed_from(other, digest, size);
        }
        temp.as_file().sync_all().map_err(io_err)?;
        let copy = temp.persist(&dest).map_err(|e| io_err(e.error))?;
        self.checked.note(digest, &copy);
        Ok(())
    }

    /// `copy_checked_from` for a blob whose size only its file knows.
    pub(crate) fn copy_from(&self, other: &BlobStore, digest: &Digest) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let (_, size) = other.open_blob(digest)?;
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
    /// A second store getting the same blob (the layer cache): one hash
    /// for both, and one file written (`persist` links it there).
    mirror: Option<BlobStore>,
    hasher: Sha256,
    size: u64,
    /// Whether `persist` waits for the disk (see `put_bytes_unsynced`).
    sync: bool,
}

impl BlobWriter {
    /// Writes the same bytes into `other` too: `finish` and
    /// `commit_verified_as` then return `Ok` only when both stores hold it.
    pub(crate) fn mirror_into(mut self, other: &BlobStore) -> Result<BlobWriter, StoreError> {
        other.writable()?;
        self.mirror = Some(other.clone());
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
        let store = self.store;
        let dest = store.path(digest);
        let io_err = |e| StoreError::Io {
            path: dest.clone(),
            error: e,
        };
        let temp = self.file.into_inner().map_err(|e| io_err(e.into_error()))?;
        if self.sync {
            temp.as_file().sync_all().map_err(io_err)?;
        }
        // Renamed over a blob already there: same digest, same bytes, or
        // a damaged file this verified one replaces.
        let file = temp.persist(&dest).map_err(|e| io_err(e.error))?;
        store.checked.note(digest, &file);
        if let Some(mirror) = self.mirror {
            mirror.link_from(&store, digest, self.size, &file)?;
        }
        Ok(())
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
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
        // Blobs written directly alike (record pointers: `cache::records`).
        let written = out.put_bytes(b"other").unwrap();
        assert_eq!(mode(&out.path(&written)), expected);
    }

    #[test]
    fn a_stamped_copy_trusts_only_an_unchanged_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = BlobStore::open(dir.path().join("src")).unwrap();
        let digest = src.put_bytes(b"base layer bytes").unwrap();
        let stamp = src.verify_stamped(&digest, 16).unwrap().unwrap();
        let out = BlobStore::open(dir.path().join("out")).unwrap();
        out.copy_stamped_from(&src, &digest, 16, Some(&stamp))
            .unwrap();
        assert_eq!(fs::read(out.path(&digest)).unwrap(), b"base layer bytes");

        // Rewritten in place, same length: the stamp no longer matches, so
        // the copy is hashed and refused.
        fs::write(src.path(&digest), b"BASE LAYER BYTES").unwrap();
        let again = BlobStore::open(dir.path().join("again")).unwrap();
        let err = again
            .copy_stamped_from(&src, &digest, 16, Some(&stamp))
            .unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err:?}");
        assert!(!again.contains(&digest));
        assert!(src.verify_stamped(&digest, 16).is_err());
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
            Err(StoreError::Longer { found_size: 6, .. })
        ));
        fs::write(a.path(&digest), b"blub").unwrap();
        assert!(matches!(
            b.copy_checked_from(&a, &digest, 4),
            Err(StoreError::Mismatch { found_size: 4, .. })
        ));
        assert!(!b.contains(&digest));
    }

    #[test]
    fn links_fifos_and_longer_files_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("s")).unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"hello").unwrap();
        let digest = Digest::of(b"hello");
        std::os::unix::fs::symlink(&outside, store.path(&digest)).unwrap();
        assert!(matches!(
            store.verify(&digest, 5),
            Err(StoreError::Refused {
                problem: Refusal::Link,
                ..
            })
        ));
        assert!(!store.contains(&digest));
        fs::remove_file(store.path(&digest)).unwrap();
        let c = CString::new(store.path(&digest).as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = store.read_verified(&digest, Some(5), 100).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        fs::remove_file(store.path(&digest)).unwrap();
        fs::write(store.path(&digest), b"hello, and more").unwrap();
        assert!(matches!(
            store.verify(&digest, 5),
            Err(StoreError::Longer { found_size: 15, .. })
        ));
    }

    #[test]
    fn a_read_only_store_creates_nothing_and_refuses_linked_folders() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        fs::create_dir(&layout).unwrap();
        let store = BlobStore::open_read_only(&layout).unwrap();
        assert!(matches!(
            store.put_bytes(b"x"),
            Err(StoreError::ReadOnly { .. })
        ));
        assert_eq!(fs::read_dir(&layout).unwrap().count(), 0);
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, layout.join("blobs")).unwrap();
        assert!(matches!(
            BlobStore::open_read_only(&layout),
            Err(StoreError::Refused {
                problem: Refusal::Link,
                ..
            })
        ));
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        // stele's own store may have its blobs folder moved by a link.
        let cache = dir.path().join("cache");
        fs::create_dir_all(elsewhere.join("sha256")).unwrap();
        fs::create_dir(&cache).unwrap();
        std::os::unix::fs::symlink(&elsewhere, cache.join("blobs")).unwrap();
        let store = BlobStore::open(&cache).unwrap();
        let digest = store.put_bytes(b"blob").unwrap();
        store.verify(&digest, 4).unwrap();
    }
}
