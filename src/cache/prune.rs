//! `stele cache prune`: the local cache made smaller, least recently used
//! entries first, without ever breaking a command that uses it.
//!
//! What is in a cache (`folder`): blobs (`blobs/sha256/<hex>`) and pointer
//! files (`<kind>/v<N>/<key hex>`, one line naming a record blob; see
//! `records`). Every blob's modification time is when a command last used
//! it (`BlobStore::touching`).
//!
//! Pruning chooses blobs (older than a age, then the least recently used
//! until the rest fits a size), then removes every pointer whose record
//! is chosen or names a chosen blob, and only then the blobs: a prune
//! stopped half-way leaves no record naming a missing blob (and such a
//! record is a miss anyway). Records left without a pointer go with them,
//! and so do files beside a pointer named after its key (`<key>.stamp`).
//!
//! Commands hold a shared lock on `lock` for as long as they have the
//! cache open (`Cache::open`); prune holds it exclusively (`folder::lock`),
//! so it runs only while no command uses the cache.
//!
//! The cache is walked through directory descriptors opened without
//! following links, and entries are removed relative to them: a link
//! planted in the cache is never followed, so nothing outside it is read
//! or removed. Only regular files with the names stele gives entries are
//! considered; anything else is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::memo::MEMO_DIR;
use super::records::RECORD_LIMIT;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("cache {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("{path} is not a stele cache (it has no blobs folder); check --cache-dir")]
    NotCache { path: PathBuf },
}

/// What to remove.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Keep the blobs' total at most this many bytes.
    pub max_size: Option<u64>,
    /// Remove what was last used longer ago than this.
    pub older_than: Option<Duration>,
    /// The time ages are measured from (the CLI reads the clock).
    pub now: SystemTime,
    /// Decide, report, remove nothing.
    pub dry_run: bool,
}

/// What a prune removed (or, dry, would remove) and what is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub blobs_removed: usize,
    pub bytes_removed: u64,
    pub records_removed: usize,
    pub blobs_kept: usize,
    pub bytes_kept: u64,
    /// Links found in the cache, left alone and not followed.
    pub links_skipped: usize,
}

struct Blob {
    size: u64,
    /// Last used, nanoseconds since the epoch.
    used: i128,
}

struct Pointer {
    dir: usize,
    name: String,
    /// The record blob it names, when it names one.
    record: Option<String>,
}

/// Prunes the cache at `root`. The caller holds its exclusive lock.
pub fn prune(root: &Path, options: &PruneOptions) -> Result<PruneReport, PruneError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| PruneError::Io {
            path: path.clone(),
            error,
        }
    };
    let top = Dir::open_root(root).map_err(io_err(root))?;
    let mut report = PruneReport::default();
    let blobs_dir = match top.sub("blobs").map_err(io_err(root))? {
        Sub::Dir(d) => d.sub("sha256").map_err(io_err(root))?,
        Sub::Link => {
            report.links_skipped += 1;
            Sub::Missing
        }
        Sub::Missing => {
            return Err(PruneError::NotCache {
                path: root.to_path_buf(),
            })
        }
    };
    let blobs_dir = match blobs_dir {
        Sub::Dir(d) => Some(d),
        Sub::Link => {
            report.links_skipped += 1;
            None
        }
        Sub::Missing => None,
    };

    let mut blobs: BTreeMap<String, Blob> = BTreeMap::new();
    if let Some(dir) = &blobs_dir {
        for (name, st) in dir.entries().map_err(io_err(&dir.path))? {
            match kind(&st) {
                Kind::Link => report.links_skipped += 1,
                Kind::File if is_hex(&name) => {
                    blobs.insert(
                        name,
                        Blob {
                            size: st.st_size as u64,
                            used: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
                        },
                    );
                }
                _ => {}
            }
        }
    }

    // Pointer folders: every folder of the cache but the blobs and the
    // executable-digest memo (`memo`: named by no record and pointing at
    // no blob), a few levels down (`layers/v1/`).
    let mut dirs: Vec<Dir> = Vec::new();
    let mut pointers: Vec<Pointer> = Vec::new();
    // `<key hex>.<what>` beside a pointer (a base view's `.stamp`): it
    // goes with its pointer.
    let mut beside: Vec<(usize, String, String)> = Vec::new();
    let mut pending: Vec<(Dir, usize)> = vec![(top, 0)];
    while let Some((dir, depth)) = pending.pop() {
        let index = dirs.len();
        for (name, st) in dir.entries().map_err(io_err(&dir.path))? {
            match kind(&st) {
                Kind::Link => report.links_skipped += 1,
                Kind::Dir
                    if depth < 3 && !(depth == 0 && (name == "blobs" || name == MEMO_DIR)) =>
                {
                    match dir.sub(&name).map_err(io_err(&dir.path))? {
                        Sub::Dir(d) => pending.push((d, depth + 1)),
                        Sub::Link => report.links_skipped += 1,
                        Sub::Missing => {}
                    }
                }
                Kind::File if depth > 0 && is_hex(&name) => {
                    let record = dir
                        .read_small(&name, 128)
                        .and_then(|b| String::from_utf8(b).ok())
                        .and_then(|t| {
                            t.trim_end()
                                .strip_prefix("sha256:")
                                .filter(|h| is_hex(h))
                                .map(str::to_string)
                        });
                    pointers.push(Pointer {
                        dir: index,
                        name,
                        record,
                    });
                }
                Kind::File if depth > 0 => {
                    if let Some((key, _)) = name.split_once('.').filter(|(k, _)| is_hex(k)) {
                        beside.push((index, key.to_string(), name.clone()));
                    }
                }
                _ => {}
            }
        }
        dirs.push(dir);
    }

    // Chosen: by age, then the least recently used until the rest fits.
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    if let Some(age) = options.older_than {
        let since = options
            .now
            .checked_sub(age)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(i128::MIN, |d| d.as_nanos() as i128);
        chosen.extend(
            blobs
                .iter()
                .filter(|(_, b)| b.used < since)
                .map(|(h, _)| h.clone()),
        );
    }
    if let Some(max) = options.max_size {
        let mut total: u64 = blobs
            .iter()
            .filter(|(h, _)| !chosen.contains(*h))
            .map(|(_, b)| b.size)
            .sum();
        let mut by_use: Vec<(&String, &Blob)> =
            blobs.iter().filter(|(h, _)| !chosen.contains(*h)).collect();
        by_use.sort_by_key(|(h, b)| (b.used, (*h).clone()));
        for (h, b) in by_use {
            if total <= max {
                break;
            }
            total -= b.size;
            chosen.insert(h.clone());
        }
    }

    // Pointers go with their records and with the blobs their records
    // name; records no pointer is left to name go too.
    let mut names_cache: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut doomed = vec![false; pointers.len()];
    for (i, p) in pointers.iter().enumerate() {
        let Some(record) = &p.record else {
            doomed[i] = true;
            continue;
        };
        if !blobs.contains_key(record) || chosen.contains(record) {
            doomed[i] = true;
            continue;
        }
        let names = names_cache.entry(record.clone()).or_insert_with(|| {
            blobs_dir
                .as_ref()
                .and_then(|d| d.read_small(record, RECORD_LIMIT))
                .map(|bytes| digests_in(&bytes))
                .unwrap_or_default()
        });
        doomed[i] = names.iter().any(|n| chosen.contains(n));
    }
    let kept_records: BTreeSet<&String> = pointers
        .iter()
        .zip(&doomed)
        .filter(|(_, d)| !**d)
        .filter_map(|(p, _)| p.record.as_ref())
        .collect();
    let orphans: Vec<String> = pointers
        .iter()
        .zip(&doomed)
        .filter(|(_, d)| **d)
        .filter_map(|(p, _)| p.record.clone())
        .filter(|r| blobs.contains_key(r) && !kept_records.contains(r))
        .collect();
    chosen.extend(orphans);

    let kept_keys: BTreeSet<(usize, &str)> = pointers
        .iter()
        .zip(&doomed)
        .filter(|(_, d)| !**d)
        .map(|(p, _)| (p.dir, p.name.as_str()))
        .collect();
    for (dir, key, name) in &beside {
        if !kept_keys.contains(&(*dir, key.as_str())) && !options.dry_run {
            let dir = &dirs[*dir];
            dir.unlink(name).map_err(io_err(&dir.path.join(name)))?;
        }
    }
    for (p, _) in pointers.iter().zip(&doomed).filter(|(_, d)| **d) {
        let dir = &dirs[p.dir];
        if !options.dry_run {
            dir.unlink(&p.name)
                .map_err(io_err(&dir.path.join(&p.name)))?;
        }
        report.records_removed += 1;
    }
    for (hex, blob) in &blobs {
        if !chosen.contains(hex) {
            report.blobs_kept += 1;
            report.bytes_kept += blob.size;
            continue;
        }
        if !options.dry_run {
            if let Some(dir) = &blobs_dir {
                dir.unlink(hex).map_err(io_err(&dir.path.join(hex)))?;
            }
        }
        report.blobs_removed += 1;
        report.bytes_removed += blob.size;
    }
    Ok(report)
}

/// Every `sha256:<hex>` in a record: the blobs it names.
fn digests_in(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let needle = b"sha256:";
    let mut i = 0;
    while i + needle.len() + 64 <= bytes.len() {
        if &bytes[i..i + needle.len()] == needle {
            let hex = &bytes[i + needle.len()..i + needle.len() + 64];
            if let Ok(h) = std::str::from_utf8(hex) {
                if is_hex(h) {
                    found.push(h.to_string());
                    i += needle.len() + 64;
                    continue;
                }
            }
        }
        i += 1;
    }
    found
}

fn is_hex(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

enum Kind {
    File,
    Dir,
    Link,
    Other,
}

fn kind(st: &libc::stat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Link,
        _ => Kind::Other,
    }
}

/// A folder of the cache, opened without following a link, its entries
/// read and removed relative to the descriptor: a folder swapped for a
/// link after it was opened changes nothing.
struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

enum Sub {
    Dir(Dir),
    Link,
    Missing,
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

impl Dir {
    /// The cache's root, as the user named it (a link there is the user's
    /// choice, like any path they pass).
    fn open_root(path: &Path) -> io::Result<Dir> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Dir {
            fd: OwnedFd::from(file),
            path: path.to_path_buf(),
        })
    }

    fn sub(&self, name: &str) -> io::Result<Sub> {
        let c = c_name(name)?;
        // SAFETY: a valid directory descriptor and C string.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(Sub::Missing),
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => Ok(Sub::Link),
                _ => Err(e),
            };
        }
        Ok(Sub::Dir(Dir {
            // SAFETY: a fresh descriptor no one else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: self.path.join(name),
        }))
    }

    /// Names and `lstat`s of the entries, sorted by name.
    fn entries(&self) -> io::Result<Vec<(String, libc::stat)>> {
        let listing = std::fs::read_dir(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))?;
        let mut out = Vec::new();
        for entry in listing {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let c = c_name(&name)?;
            // SAFETY: zeroed is a valid `stat`; fstatat fills it.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: valid descriptor, C string and out pointer.
            let r = unsafe {
                libc::fstatat(
                    self.fd.as_raw_fd(),
                    c.as_ptr(),
                    &mut st,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if r == 0 {
                out.push((name, st));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A regular file's bytes, when it has at most `limit`.
    fn read_small(&self, name: &str, limit: u64) -> Option<Vec<u8>> {
        let c = c_name(name).ok()?;
        // SAFETY: a valid directory descriptor and C string.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor no one else owns.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > limit {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: a valid directory descriptor and C string.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Gone already (a sweep, another prune): what was wanted.
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::records::Records;
    use crate::oci::Digest;
    use crate::store::BlobStore;

    fn age(store: &BlobStore, digest: &Digest, secs_ago: u64) {
        let f = File::options()
            .write(true)
            .open(store.path(digest))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
            .unwrap();
    }

    fn options() -> PruneOptions {
        PruneOptions {
            max_size: None,
            older_than: None,
            now: SystemTime::now(),
            dry_run: false,
        }
    }

    /// A cache with three blobs, the oldest named by a record.
    fn cache() -> (tempfile::TempDir, BlobStore, [Digest; 3], Records, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put_bytes(&[b'a'; 1000]).unwrap();
        let b = store.put_bytes(&[b'b'; 1000]).unwrap();
        let c = store.put_bytes(&[b'c'; 1000]).unwrap();
        let records = Records::open(dir.path().join("layers/v1")).unwrap();
        let key = Digest::of(b"key");
        let record = format!("{{\"digest\":\"{a}\"}}");
        records.put(&store, &key, record.as_bytes()).unwrap();
        let stamp = dir.path().join(format!("layers/v1/{}.stamp", key.hex()));
        std::fs::write(stamp, b"{}").unwrap();
        age(&store, &Digest::of(record.as_bytes()), 50);
        age(&store, &a, 300);
        age(&store, &b, 200);
        age(&store, &c, 100);
        (dir, store, [a, b, c], records, key)
    }

    #[test]
    fn by_size_the_least_recently_used_go_with_the_records_naming_them() {
        let (dir, store, [a, b, c], records, key) = cache();
        let report = prune(
            dir.path(),
            &PruneOptions {
                max_size: Some(2100),
                ..options()
            },
        )
        .unwrap();
        assert!(!store.contains(&a));
        assert!(store.contains(&b) && store.contains(&c));
        assert!(!records.pointer_path(&key).exists());
        assert!(records.get(&store, &key).is_none());
        assert!(!dir
            .path()
            .join(format!("layers/v1/{}.stamp", key.hex()))
            .exists());
        // a, and the record nothing names any more.
        assert_eq!(report.blobs_removed, 2);
        assert_eq!(report.records_removed, 1);
        assert_eq!(report.blobs_kept, 2);
        assert_eq!(report.bytes_kept, 2000);
    }

    #[test]
    fn by_age_and_dry() {
        let (dir, store, [a, b, c], _, _) = cache();
        let aged = PruneOptions {
            older_than: Some(Duration::from_secs(150)),
            ..options()
        };
        let dry = prune(
            dir.path(),
            &PruneOptions {
                dry_run: true,
                ..aged.clone()
            },
        )
        .unwrap();
        assert!(store.contains(&a) && store.contains(&b));
        let real = prune(dir.path(), &aged).unwrap();
        assert_eq!(dry, real);
        assert!(!store.contains(&a) && !store.contains(&b) && store.contains(&c));
        assert_eq!(real.records_removed, 1);
    }

    #[test]
    fn a_record_of_blobs_in_use_stays() {
        let (dir, store, [a, ..], records, key) = cache();
        let report = prune(
            dir.path(),
            &PruneOptions {
                max_size: Some(1 << 20),
                ..options()
            },
        )
        .unwrap();
        assert_eq!(report.blobs_removed, 0);
        assert!(store.contains(&a));
        assert!(dir
            .path()
            .join(format!("layers/v1/{}.stamp", key.hex()))
            .exists());
        assert!(records.get(&store, &key).is_some());
    }

    #[test]
    fn links_in_the_cache_are_never_followed() {
        let (dir, store, [a, ..], _, _) = cache();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join(a.hex());
        std::fs::write(&victim, b"not the cache's").unwrap();
        std::fs::create_dir(outside.path().join("v1")).unwrap();
        std::fs::write(outside.path().join("v1").join(a.hex()), b"sha256:x").unwrap();
        let other = Digest::of(b"other");
        std::os::unix::fs::symlink(&victim, store.path(&other)).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("unpacked")).unwrap();
        let report = prune(
            dir.path(),
            &PruneOptions {
                max_size: Some(0),
                ..options()
            },
        )
        .unwrap();
        assert_eq!(report.links_skipped, 2);
        assert_eq!(report.blobs_kept, 0);
        assert_eq!(std::fs::read(&victim).unwrap(), b"not the cache's");
        assert!(outside.path().join("v1").join(a.hex()).exists());
        assert!(std::fs::symlink_metadata(store.path(&other)).is_ok());
    }
}
