//! Where a file's bytes are: in memory, in a host file beside the recipe,
//! or in a pack of the package cache. Only generated files are held in
//! memory; the others are streamed when a layer is written and checked
//! against the digest taken when they were collected, so a file that
//! changed, or a cache file that was damaged, fails the build instead of
//! producing an image whose digest names other bytes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::oci::digest::HashingWriter;
use crate::oci::Digest;
use crate::store::Stamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Bytes held in memory (generated files: dpkg status, CA bundle, …).
    Bytes(Arc<[u8]>),
    /// A host file streamed when the layer is written. Its digest and size
    /// were taken when it was collected and are checked again on read, so a
    /// file changed mid-build fails instead of producing an unlabelled layer.
    Host {
        path: PathBuf,
        size: u64,
        digest: Digest,
    },
    /// `size` bytes at `offset` of a pack in the package cache (an unpacked
    /// .deb's regular files, back to back), checked against `digest` when
    /// read. The pack is named by its own hash, so any change to it is
    /// damage, never a newer version.
    Cached {
        pack: Arc<Path>,
        offset: u64,
        size: u64,
        digest: Digest,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("reading {path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("{path} changed while the image was being built (expected {expected}, read {found}); build again once it is stable")]
    HostChanged {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("the package cache file {path} is damaged at offset {offset} (expected {expected}, read {found}); delete it and build again, which unpacks the package anew")]
    CacheDamaged {
        path: PathBuf,
        offset: u64,
        expected: String,
        found: String,
    },
    #[error("writing the layer: {0}")]
    Write(io::Error),
}

impl Content {
    pub fn bytes(data: impl Into<Vec<u8>>) -> Content {
        Content::Bytes(Arc::from(data.into().into_boxed_slice()))
    }

    pub fn size(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Host { size, .. } | Content::Cached { size, .. } => *size,
        }
    }

    pub fn digest(&self) -> Digest {
        match self {
            Content::Bytes(b) => Digest::of(b),
            Content::Host { digest, .. } | Content::Cached { digest, .. } => digest.clone(),
        }
    }

    /// Same bytes, wherever they are held.
    pub(crate) fn same_bytes(&self, other: &Content) -> bool {
        match (self, other) {
            (Content::Bytes(a), Content::Bytes(b)) => a == b,
            _ => self.size() == other.size() && self.digest() == other.digest(),
        }
    }

    /// The whole content, checked; for the few files a build reads (CA
    /// certificates, account masters, copyright files).
    pub(crate) fn read_all(&self) -> Result<Vec<u8>, ContentError> {
        let mut out = Vec::with_capacity(self.size().min(1 << 20) as usize);
        ContentReader::default().copy(self, &mut out)?;
        Ok(out)
    }
}

/// Packs found whole in this process (hashed whole, or written here
/// hashing every byte: `cache::packs`), each with the stamp its file had
/// then. A file read while it keeps that stamp holds those bytes, so its
/// files are not hashed again one by one (SECURITY.md: stamps).
static WHOLE_PACKS: std::sync::Mutex<std::collections::BTreeMap<PathBuf, Stamp>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The pack file at `path` had `stamp` when it was found whole.
pub(crate) fn pack_found_whole(path: &Path, stamp: &Stamp) {
    WHOLE_PACKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.to_path_buf(), stamp.clone());
}

fn whole_pack_stamp(path: &Path) -> Option<Stamp> {
    WHOLE_PACKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(path)
        .cloned()
}

/// Copies contents into a writer, keeping the last pack open: a layer's
/// files mostly come from one package, so one open file serves them all.
#[derive(Default)]
pub struct ContentReader {
    /// The pack, and the stamp it was found whole with when it has it
    /// now: its files are then copied unhashed while it keeps it.
    open: Option<(Arc<Path>, File, Option<Stamp>)>,
    buf: Vec<u8>,
}

const READ_CHUNK: usize = 128 * 1024;

impl ContentReader {
    /// Writes `content` to `out`, failing if what was read is not the
    /// bytes the content's digest names.
    pub fn copy<W: Write>(&mut self, content: &Content, out: &mut W) -> Result<(), ContentError> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; READ_CHUNK];
        }
        match content {
            Content::Bytes(b) => out.write_all(b).map_err(ContentError::Write),
            Content::Host { path, size, digest } => {
                let read = |e| ContentError::Read {
                    path: path.clone(),
                    error: e,
                };
                // One byte past `size` is read, so growth is noticed too.
                let mut reader = File::open(path).map_err(read)?.take(size + 1);
                let mut hw = HashingWriter::new(out);
                loop {
                    let n = match reader.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(read(e)),
                    };
                    hw.write_all(&self.buf[..n]).map_err(ContentError::Write)?;
                }
                let (_, found, n) = hw.finish();
                if n != *size || &found != digest {
                    return Err(ContentError::HostChanged {
                        path: path.clone(),
                        expected: format!("{size} bytes, {digest}"),
                        found: format!("{n} bytes, {found}"),
                    });
                }
                Ok(())
            }
            Content::Cached {
                pack,
                offset,
                size,
                digest,
            } => {
                let read = |e| ContentError::Read {
                    path: pack.to_path_buf(),
                    error: e,
                };
                if !matches!(&self.open, Some((p, _, _)) if p == pack) {
                    let file = File::open(pack).map_err(read)?;
                    let whole = whole_pack_stamp(pack)
                        .filter(|w| Stamp::of_file(&file).as_ref() == Some(w));
                    self.open = Some((pack.clone(), file, whole));
                }
                let (_, file, whole) = self.open.as_ref().expect("opened above");
                if let Some(whole) = whole.clone() {
                    let (sound, kept) = copy_whole(
                        file,
                        &whole,
                        &mut self.buf,
                        *offset,
                        *size,
                        digest,
                        out,
                        &read,
                    )?;
                    if !kept {
                        // Later entries of this pack are hashed.
                        if let Some(open) = self.open.as_mut() {
                            open.2 = None;
                        }
                    }
                    return match sound {
                        Ok(()) => Ok(()),
                        Err(found) => Err(ContentError::CacheDamaged {
                            path: pack.to_path_buf(),
                            offset: *offset,
                            expected: format!("{size} bytes, {digest}"),
                            found,
                        }),
                    };
                }
                let mut hw = HashingWriter::new(out);
                copy_range(file, &mut self.buf, *offset, *size, &mut hw, &read)?;
                let (_, found, n) = hw.finish();
                if n != *size || &found != digest {
                    return Err(ContentError::CacheDamaged {
                        path: pack.to_path_buf(),
                        offset: *offset,
                        expected: format!("{size} bytes, {digest}"),
                        found: format!("{n} bytes, {found}"),
                    });
                }
                Ok(())
            }
        }
    }
}

/// Copies an entry of a pack found whole with `whole`, unhashed: each
/// chunk is written only once the file is seen to keep that stamp after
/// the chunk was read, so no write to the file can have overlapped the
/// read. When the stamp has moved (another build marked the pack used,
/// which moves its ctime, or a real write), the entry is read again from
/// its start, hashed whole, and what was not yet written is written from
/// that pass: the build fails only if the bytes are not the digest's.
/// Returns whether the digest held (else what was found) and whether the
/// pack kept its stamp.
#[allow(clippy::too_many_arguments)]
fn copy_whole<W: Write>(
    file: &File,
    whole: &Stamp,
    buf: &mut [u8],
    offset: u64,
    size: u64,
    digest: &Digest,
    out: &mut W,
    read: &dyn Fn(io::Error) -> ContentError,
) -> Result<(Result<(), String>, bool), ContentError> {
    let mut done = 0u64;
    while done < size {
        let n = read_chunk(file, buf, offset + done, size - done, read)?;
        if n == 0 {
            break;
        }
        if Stamp::of_file(file).as_ref() != Some(whole) {
            let mut hw = HashingWriter::new(SkipWriter {
                skip: done,
                out: &mut *out,
            });
            let n = copy_range(file, buf, offset, size, &mut hw, read)?;
            let (_, found, _) = hw.finish();
            let sound = if n == size && &found == digest {
                Ok(())
            } else {
                Err(format!("{n} bytes, {found}"))
            };
            return Ok((sound, false));
        }
        out.write_all(&buf[..n]).map_err(ContentError::Write)?;
        done += n as u64;
    }
    let sound = if done == size {
        Ok(())
    } else {
        Err(format!("{done} bytes, the pack ends first"))
    };
    Ok((sound, true))
}

/// Passes on what is written after its first `skip` bytes: the bytes
/// already written once, hashed again but not written twice.
struct SkipWriter<'a, W: Write> {
    skip: u64,
    out: &'a mut W,
}

impl<W: Write> Write for SkipWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let drop = (self.skip.min(data.len() as u64)) as usize;
        self.skip -= drop as u64;
        self.out.write_all(&data[drop..])?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Copies the `size` bytes at `offset` of `file` into `out` through
/// `buf`; how many there were (fewer when the file ends first).
fn copy_range<W: Write>(
    file: &File,
    buf: &mut [u8],
    offset: u64,
    size: u64,
    out: &mut W,
    read: &dyn Fn(io::Error) -> ContentError,
) -> Result<u64, ContentError> {
    let mut done = 0u64;
    while done < size {
        let n = read_chunk(file, buf, offset + done, size - done, read)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(ContentError::Write)?;
        done += n as u64;
    }
    Ok(done)
}

/// Reads up to a chunk (at most `left` bytes) at `at` into `buf`: how
/// many, 0 when the file ends there.
fn read_chunk(
    file: &File,
    buf: &mut [u8],
    at: u64,
    left: u64,
    read: &dyn Fn(io::Error) -> ContentError,
) -> Result<usize, ContentError> {
    let want = left.min(READ_CHUNK as u64) as usize;
    loop {
        match file.read_at(&mut buf[..want], at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read(e)),
            Ok(n) => return Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack holding `aaaahello world` in `dir`, and its `hello`.
    fn hello_pack(dir: &Path) -> (Arc<Path>, Content) {
        let pack: Arc<Path> = Arc::from(dir.join("pack").as_path());
        std::fs::write(&pack, b"aaaahello world").unwrap();
        let hello = Content::Cached {
            pack: pack.clone(),
            offset: 4,
            size: 5,
            digest: Digest::of(b"hello"),
        };
        (pack, hello)
    }

    #[test]
    fn cached_ranges_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (pack, good) = hello_pack(dir.path());
        assert_eq!(good.read_all().unwrap(), b"hello");
        let bad = Content::Cached {
            pack: pack.clone(),
            offset: 5,
            size: 5,
            digest: Digest::of(b"hello"),
        };
        let e = bad.read_all().unwrap_err();
        assert!(matches!(e, ContentError::CacheDamaged { .. }), "{e}");
        let short = Content::Cached {
            pack,
            offset: 12,
            size: 5,
            digest: Digest::of(b"rld\0\0"),
        };
        assert!(short.read_all().is_err());
    }

    /// A pack found whole is read unhashed while it keeps its stamp; one
    /// written since (in place) is hashed file by file again, and its
    /// damage found.
    #[test]
    fn a_pack_found_whole_is_trusted_only_while_it_keeps_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let (pack, good) = hello_pack(dir.path());
        let stamp = Stamp::of_file(&File::open(&pack).unwrap()).unwrap();
        pack_found_whole(&pack, &stamp);
        assert_eq!(good.read_all().unwrap(), b"hello");
        // Its stamp moved, its bytes did not (another build marked the
        // pack used while this one read it): the bytes are hashed, and
        // the copy goes on.
        let file = File::options().write(true).open(&pack).unwrap();
        file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
        assert_ne!(Stamp::of_file(&file).unwrap(), stamp);
        assert_eq!(good.read_all().unwrap(), b"hello");
        std::fs::write(&pack, b"aaaaHELLO world").unwrap();
        let e = good.read_all().unwrap_err();
        assert!(matches!(e, ContentError::CacheDamaged { .. }), "{e}");
    }

    /// An entry longer than a chunk, whose pack's stamp moves after its
    /// first chunk was written: the rest comes from a hashed pass, each
    /// byte written once; a rest that is not the digest's bytes fails.
    #[test]
    fn a_stamp_moved_mid_entry_hashes_the_entry_and_writes_each_byte_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pack");
        let body: Vec<u8> = (0..READ_CHUNK * 2 + 77).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &body).unwrap();
        /// Moves the pack's stamp (and, with `damage`, its bytes past
        /// the first chunk) on the first write it sees.
        struct Marking {
            path: PathBuf,
            damage: bool,
            seen: Vec<u8>,
            first: usize,
        }
        impl Write for Marking {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                if self.seen.is_empty() {
                    self.first = data.len();
                    let f = File::options().write(true).open(&self.path)?;
                    f.set_modified(
                        std::time::SystemTime::now() + std::time::Duration::from_secs(60),
                    )?;
                    if self.damage {
                        f.write_all_at(b"X", READ_CHUNK as u64 + 5)?;
                    }
                }
                self.seen.extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let read = |e| ContentError::Read {
            path: path.clone(),
            error: e,
        };
        let size = body.len() as u64;
        let mut buf = vec![0u8; READ_CHUNK];
        for damage in [false, true] {
            std::fs::write(&path, &body).unwrap();
            let stamp = Stamp::of_file(&File::open(&path).unwrap()).unwrap();
            let file = File::open(&path).unwrap();
            let mut out = Marking {
                path: path.clone(),
                damage,
                seen: Vec::new(),
                first: 0,
            };
            let (sound, kept) = copy_whole(
                &file,
                &stamp,
                &mut buf,
                0,
                size,
                &Digest::of(&body),
                &mut out,
                &read,
            )
            .unwrap();
            assert!(!kept, "the marker moved the stamp");
            assert!(
                out.seen.len() > READ_CHUNK || damage,
                "the first chunk came unhashed"
            );
            assert_eq!(out.seen.len(), body.len(), "each byte written once");
            if damage {
                assert!(sound.is_err());
            } else {
                sound.unwrap();
                assert_eq!(out.seen, body);
            }
        }
    }

    #[test]
    fn host_files_that_grew_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let c = Content::Host {
            path: path.clone(),
            size: 3,
            digest: Digest::of(b"abc"),
        };
        assert_eq!(c.read_all().unwrap(), b"abc");
        std::fs::write(&path, b"abcd").unwrap();
        assert!(matches!(
            c.read_all(),
            Err(ContentError::HostChanged { .. })
        ));
    }
}
