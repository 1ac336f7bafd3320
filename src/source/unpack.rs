//! Reading layer blobs entry by entry, without unpacking anything onto the
//! host: the base image's file system view (for parent directories and
//! account files), `verify`'s DiffID check and `diff`'s file comparison.
//!
//! Entry paths are untrusted: they are normalized and anything that would
//! climb out of the root is refused.

use std::collections::BTreeMap;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::fstree::{normalize_rel, Content, FsTree, Node, NodeKind};
use crate::oci::{Digest, HashingWriter, LayerBlob};
use crate::store::{BlobStore, Stamp, StoreError};

use super::tar_guard::{layer_limits, TarGuard};
pub(crate) use super::unpack_blocks::Threads;
use super::unpack_blocks::{splittable, BlockDecoder};

/// The largest file content handed over in memory (`keep`).
const KEPT_LIMIT: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LayerReadError {
    #[error("layer {digest}: cannot read it: {error}")]
    Io { digest: Digest, error: io::Error },
    #[error("layer {digest}: {error}")]
    Store {
        digest: Digest,
        error: Box<crate::store::StoreError>,
    },
    #[error("layer {digest} has media type {media_type}, which stele cannot read (it reads tar, tar+gzip and tar+zstd layers)")]
    MediaType { digest: Digest, media_type: String },
    #[error("layer {digest}: entry `{entry}` is unsafe: {problem}")]
    Unsafe {
        digest: Digest,
        entry: String,
        problem: String,
    },
}

/// What a layer entry is, with a regular file's content named by digest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    Dir,
    File {
        size: u64,
        digest: Digest,
    },
    Symlink(String),
    Hardlink(String),
    /// `.wh.NAME`: removes NAME from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: the directory's lower contents are hidden.
    Opaque,
    /// Devices and fifos: kept as a name for diffs, never installed.
    Other(char),
}

/// One entry of a layer, path normalized (no leading `/`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LayerEntry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// The decompressed stream of `layer`, by its media type (OCI and Docker).
fn open(store: &BlobStore, layer: &LayerBlob) -> Result<Box<dyn Read>, LayerReadError> {
    let (file, _) = store
        .open_blob(&layer.digest)
        .map_err(|e| LayerReadError::Store {
            digest: layer.digest.clone(),
            error: Box::new(e),
        })?;
    // Never past the size the manifest names, however long the file.
    decoder(
        io::BufReader::with_capacity(256 * 1024, file.take(layer.size)),
        layer,
    )
}

/// How a layer's blob is compressed, as its media type says (OCI and
/// Docker types): what decides the stream its bytes uncompress to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Gzip,
    Zstd,
    Tar,
}

impl Codec {
    pub(crate) fn of(layer: &LayerBlob) -> Option<Codec> {
        let mt = layer.media_type.to_string();
        if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") {
            Some(Codec::Gzip)
        } else if mt.ends_with("+zstd") || mt.ends_with(".tar.zstd") {
            Some(Codec::Zstd)
        } else if mt.ends_with(".tar") || mt.ends_with("rootfs.diff.tar") {
            Some(Codec::Tar)
        } else {
            None
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Tar => "tar",
        }
    }
}

/// `compressed`, decompressed as `layer`'s media type says.
pub(crate) fn decoder<'a>(
    compressed: impl io::BufRead + 'a,
    layer: &LayerBlob,
) -> Result<Box<dyn Read + 'a>, LayerReadError> {
    let io_err = |e| LayerReadError::Io {
        digest: layer.digest.clone(),
        error: e,
    };
    let reader: Box<dyn Read + 'a> = match Codec::of(layer) {
        // Every member: a gzip layer may be several members back to back
        // (pigz, `cat a.gz b.gz`), and Go's reader, which containerd and
        // podman use, reads them all.
        Some(Codec::Gzip) => Box::new(flate2::bufread::MultiGzDecoder::new(compressed)),
        Some(Codec::Zstd) => {
            Box::new(zstd::stream::read::Decoder::with_buffer(compressed).map_err(io_err)?)
        }
        Some(Codec::Tar) => Box::new(compressed),
        None => {
            return Err(LayerReadError::MediaType {
                digest: layer.digest.clone(),
                media_type: layer.media_type.to_string(),
            })
        }
    };
    Ok(reader)
}

/// The sha256 of `stream`, `layer`'s uncompressed bytes, read within the
/// layer's limits: its DiffID.
pub(crate) fn diff_id_of(stream: impl Read, layer: &LayerBlob) -> Result<Digest, LayerReadError> {
    let io_err = |e| LayerReadError::Io {
        digest: layer.digest.clone(),
        error: e,
    };
    let limits = layer_limits(layer.size);
    let reader = stream.take(limits.bytes.saturating_add(1));
    let (diff_id, n) = crate::oci::digest::hash_reader(reader).map_err(io_err)?;
    if n > limits.bytes {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it decompresses to more than {} bytes, the limit for a layer of {} bytes",
                limits.bytes, layer.size
            ),
        )));
    }
    Ok(diff_id)
}

/// The DiffID of `layer`, in the one pass of `read_checked`: Ok means
/// the blob holds its digest's bytes and they uncompress to the DiffID.
pub(crate) fn checked_diff_id(
    store: &BlobStore,
    layer: &LayerBlob,
) -> Result<(Digest, Option<Stamp>), LayerReadError> {
    read_checked(store, layer, |stream| diff_id_of(stream, layer))
}

/// `checked_diff_id`, a layer of independent blocks (`stele-2026.2`)
/// uncompressed on several of `threads` (`read_checked_on`).
pub(crate) fn checked_diff_id_on(
    store: &BlobStore,
    layer: &LayerBlob,
    threads: &Threads,
) -> Result<(Digest, Option<Stamp>), LayerReadError> {
    read_checked_on(
        store,
        layer,
        threads,
        |stream| diff_id_of(stream, layer),
        |diff_id| diff_id == &layer.diff_id,
    )
}

/// `read_checked`, first trying `layer` as independent blocks on several
/// of `threads` (`unpack_blocks`). That answer is taken only when `read`
/// succeeds on it and `accept` takes it (its DiffID is the config's);
/// anything else (the blocks are not independent, the bytes are not the
/// digest's, the DiffID differs, any error) is decided by the sequential
/// `read_checked`, so both paths give the same answer for every input.
pub(crate) fn read_checked_on<T>(
    store: &BlobStore,
    layer: &LayerBlob,
    threads: &Threads,
    read: impl Fn(Box<dyn Read + '_>) -> Result<T, LayerReadError>,
    accept: impl Fn(&T) -> bool,
) -> Result<(T, Option<Stamp>), LayerReadError> {
    let _busy = threads.enter();
    if let Some(codec) = splittable(layer, threads) {
        let used = std::sync::atomic::AtomicUsize::new(0);
        let blocks = |raw: &mut dyn io::BufRead| {
            read(Box::new(BlockDecoder::new(raw, codec, threads, &used)))
        };
        if let Ok(Some((answer, stamp))) = read_once(store, layer, &blocks, true) {
            if accept(&answer) {
                threads.note(used.into_inner());
                return Ok((answer, stamp));
            }
        }
    }
    read_checked(store, layer, read)
}

/// Reads `layer`'s blob from `store` once: `read` gets the decompressed
/// stream while the compressed bytes are hashed on their way to it, and
/// checked against the layer's digest and size after (what the
/// decompressor leaves is read too). Ok means `read`'s answer is about
/// the digest's bytes. A file this process wrote or hashed itself
/// (`BlobStore::checked_stamp`) that keeps that stamp while read is not
/// hashed again. Also returns the file's `Stamp`, when it kept it while
/// read.
pub(crate) fn read_checked<T>(
    store: &BlobStore,
    layer: &LayerBlob,
    read: impl Fn(Box<dyn Read + '_>) -> Result<T, LayerReadError>,
) -> Result<(T, Option<Stamp>), LayerReadError> {
    let decoded = |raw: &mut dyn io::BufRead| read(decoder(raw, layer)?);
    match read_once(store, layer, &decoded, true)? {
        Some(found) => Ok(found),
        // Written while it was read: what was read is vouched for by
        // nothing, so it is read again, hashed.
        None => Ok(read_once(store, layer, &decoded, false)?.expect("a hashed read answers")),
    }
}

/// `read_checked`, trusting the store's record of the file only when
/// `trust`; `None` when it did and the file changed while read. `read`
/// gets the compressed bytes.
fn read_once<T>(
    store: &BlobStore,
    layer: &LayerBlob,
    read: &dyn Fn(&mut dyn io::BufRead) -> Result<T, LayerReadError>,
    trust: bool,
) -> Result<Option<(T, Option<Stamp>)>, LayerReadError> {
    let store_err = |e| LayerReadError::Store {
        digest: layer.digest.clone(),
        error: Box::new(e),
    };
    let (file, _) = store.open_blob(&layer.digest).map_err(store_err)?;
    let before = Stamp::of_file(&file);
    let vouched = trust && before.is_some() && before == store.checked_stamp(&layer.digest);
    let mut hashed = HashingReader {
        // One byte past the size is enough to tell a longer file.
        inner: (&file).take(layer.size.saturating_add(1)),
        hasher: (!vouched).then(Sha256::new),
        read: 0,
    };
    let answer = {
        let mut buffered = io::BufReader::with_capacity(256 * 1024, &mut hashed);
        read(&mut buffered)?
    };
    if vouched {
        let stamp = before.filter(|b| Stamp::of_file(&file).as_ref() == Some(b));
        return Ok(stamp.is_some().then_some((answer, stamp)));
    }
    io::copy(&mut hashed, &mut io::sink()).map_err(|e| LayerReadError::Io {
        digest: layer.digest.clone(),
        error: e,
    })?;
    let stamp = before.filter(|b| Stamp::of_file(&file).as_ref() == Some(b));
    let hasher = hashed.hasher.take().expect("hashing unless vouched");
    let found = Digest::from_hash(hasher.finalize().into());
    if found != layer.digest || hashed.read != layer.size {
        return Err(store_err(StoreError::Mismatch {
            path: store.path(&layer.digest),
            digest: layer.digest.clone(),
            expected_size: layer.size,
            found,
            found_size: hashed.read,
        }));
    }
    if let Some(s) = &stamp {
        store.note_checked(&layer.digest, s);
    }
    Ok(Some((answer, stamp)))
}

/// Counts what it reads, and hashes it when it has a hasher.
struct HashingReader<R> {
    inner: R,
    hasher: Option<Sha256>,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Calls `f` for every entry of `layer` in stream order. `keep` says whose
/// content to hand over in memory (the rest is hashed and dropped).
/// Returns the DiffID: the sha256 of the whole uncompressed stream.
pub(crate) fn for_each_entry(
    store: &BlobStore,
    layer: &LayerBlob,
    keep: &dyn Fn(&str) -> bool,
    f: &mut dyn FnMut(LayerEntry, Option<Vec<u8>>),
) -> Result<Digest, LayerReadError> {
    entries_of(open(store, layer)?, layer, keep, f)
}

/// `for_each_entry`, a layer of independent blocks uncompressed on
/// several of `threads` (`unpack_blocks`). `f` sees the entries only once
/// that read is taken (its DiffID is the config's), or else those of the
/// sequential read, which decides every other case.
pub(crate) fn for_each_entry_on(
    store: &BlobStore,
    layer: &LayerBlob,
    threads: &Threads,
    keep: &dyn Fn(&str) -> bool,
    f: &mut dyn FnMut(LayerEntry, Option<Vec<u8>>),
) -> Result<Digest, LayerReadError> {
    let _busy = threads.enter();
    if let (Some(codec), Ok((file, _))) =
        (splittable(layer, threads), store.open_blob(&layer.digest))
    {
        let raw = io::BufReader::with_capacity(256 * 1024, file.take(layer.size));
        let used = std::sync::atomic::AtomicUsize::new(0);
        let mut entries = Vec::new();
        let stream = BlockDecoder::new(raw, codec, threads, &used);
        let read = entries_of(stream, layer, keep, &mut |e, c| entries.push((e, c)));
        if read.as_ref().is_ok_and(|d| d == &layer.diff_id) {
            threads.note(used.into_inner());
            for (e, c) in entries {
                f(e, c);
            }
            return read;
        }
    }
    for_each_entry(store, layer, keep, f)
}

/// `for_each_entry` over `stream`, `layer`'s decompressed bytes.
pub(crate) fn entries_of(
    stream: impl Read,
    layer: &LayerBlob,
    keep: &dyn Fn(&str) -> bool,
    f: &mut dyn FnMut(LayerEntry, Option<Vec<u8>>),
) -> Result<Digest, LayerReadError> {
    let io_err = |e| LayerReadError::Io {
        digest: layer.digest.clone(),
        error: e,
    };
    // The tar reader may stop before the stream's end (after the two zero
    // blocks); the DiffID covers every byte, so hash through a tee.
    let mut tee = Tee {
        inner: TarGuard::new(stream, layer_limits(layer.size)),
        hasher: HashingWriter::new(io::sink()),
    };
    {
        let mut archive = tar::Archive::new(&mut tee);
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let raw_path = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
            let unsafe_err = |problem: String| LayerReadError::Unsafe {
                digest: layer.digest.clone(),
                entry: raw_path.clone(),
                problem,
            };
            let trimmed = raw_path.trim_start_matches("./").trim_start_matches('/');
            if trimmed.is_empty() || trimmed == "." {
                continue;
            }
            let path = normalize_rel(trimmed).map_err(|e| unsafe_err(e.to_string()))?;
            let h = entry.header().clone();
            let mut xattrs = BTreeMap::new();
            if let Some(exts) = entry.pax_extensions().map_err(io_err)? {
                for ext in exts {
                    let ext = ext.map_err(io_err)?;
                    if let Some(k) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                        xattrs.insert(k.to_string(), ext.value_bytes().to_vec());
                    }
                }
            }
            let link = || -> Result<String, LayerReadError> {
                Ok(entry
                    .link_name()
                    .map_err(io_err)?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default())
            };
            let (name_dir, base) = match path.rsplit_once('/') {
                Some((d, b)) => (Some(d), b),
                None => (None, path.as_str()),
            };
            let join = |b: &str| name_dir.map_or(b.to_string(), |d| format!("{d}/{b}"));
            let (path, kind, content) = if base == ".wh..wh..opq" {
                (name_dir.unwrap_or("").to_string(), EntryKind::Opaque, None)
            } else if let Some(hidden) = base.strip_prefix(".wh.") {
                (join(hidden), EntryKind::Whiteout, None)
            } else {
                match h.entry_type() {
                    tar::EntryType::Directory => (path, EntryKind::Dir, None),
                    tar::EntryType::Symlink => {
                        let l = link()?;
                        (path, EntryKind::Symlink(l), None)
                    }
                    tar::EntryType::Link => {
                        let l = link()?;
                        let target =
                            normalize_rel(l.trim_start_matches("./").trim_start_matches('/'))
                                .map_err(|e| unsafe_err(format!("hard link target: {e}")))?;
                        (path, EntryKind::Hardlink(target), None)
                    }
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        let wanted = keep(&path);
                        let mut hw = HashingWriter::new(Vec::new());
                        if wanted {
                            if entry.size() > KEPT_LIMIT {
                                return Err(unsafe_err(format!(
                                    "it is {} bytes, beyond the {KEPT_LIMIT}-byte limit for a file stele reads (account files)",
                                    entry.size()
                                )));
                            }
                            io::copy(&mut (&mut entry).take(KEPT_LIMIT), &mut hw)
                                .map_err(io_err)?;
                        } else {
                            let mut hs = HashingWriter::new(io::sink());
                            io::copy(&mut entry, &mut hs).map_err(io_err)?;
                            let (_, digest, size) = hs.finish();
                            f(
                                LayerEntry {
                                    path,
                                    kind: EntryKind::File { size, digest },
                                    mode: h.mode().unwrap_or(0),
                                    uid: h.uid().unwrap_or(0),
                                    gid: h.gid().unwrap_or(0),
                                    mtime: h.mtime().unwrap_or(0),
                                    xattrs,
                                },
                                None,
                            );
                            continue;
                        }
                        let (bytes, digest, size) = hw.finish();
                        (path, EntryKind::File { size, digest }, Some(bytes))
                    }
                    tar::EntryType::Char => (path, EntryKind::Other('c'), None),
                    tar::EntryType::Block => (path, EntryKind::Other('b'), None),
                    tar::EntryType::Fifo => (path, EntryKind::Other('p'), None),
                    _ => continue,
                }
            };
            f(
                LayerEntry {
                    path,
                    kind,
                    mode: h.mode().unwrap_or(0),
                    uid: h.uid().unwrap_or(0),
                    gid: h.gid().unwrap_or(0),
                    mtime: h.mtime().unwrap_or(0),
                    xattrs,
                },
                content,
            );
        }
    }
    io::copy(&mut tee, &mut io::sink()).map_err(io_err)?;
    Ok(tee.hasher.finish().1)
}

struct Tee<R> {
    inner: R,
    hasher: HashingWriter<io::Sink>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.hasher, &buf[..n])?;
        Ok(n)
    }
}

/// The file system the layers make when applied in order, whiteouts
/// honoured. Regular files for which `keep` is true hold their bytes;
/// the others hold nothing (their size and digest are lost): the view is
/// for metadata and for the few small files a build reads (account files).
pub(crate) fn merged_view(
    store: &BlobStore,
    layers: &[LayerBlob],
    keep: &dyn Fn(&str) -> bool,
) -> Result<FsTree, LayerReadError> {
    let mut tree = FsTree::new();
    for layer in layers {
        let mut entries = Vec::new();
        for_each_entry(store, layer, keep, &mut |e, c| entries.push((e, c)))?;
        apply_layer(&mut tree, entries);
    }
    Ok(tree)
}

/// Applies one layer's entries, in stream order, over `tree`.
pub(crate) fn apply_layer(tree: &mut FsTree, entries: Vec<(LayerEntry, Option<Vec<u8>>)>) {
    // Whiteouts apply to the layers below only, so they go first
    // (image-spec layer.md, "Whiteouts").
    for (e, _) in &entries {
        match e.kind {
            EntryKind::Whiteout => {
                tree.remove_subtree(&e.path);
            }
            EntryKind::Opaque => {
                let keep_dir = tree.get(&e.path).cloned();
                tree.remove_subtree(&e.path);
                if let Some(d) = keep_dir {
                    tree.replace(e.path.clone(), d);
                }
            }
            _ => {}
        }
    }
    for (e, content) in entries {
        let mode = e.mode & 0o7777;
        let (uid, gid) = (e.uid as u32, e.gid as u32);
        let node = match e.kind {
            EntryKind::Dir => Node::dir(mode, uid, gid, e.mtime),
            EntryKind::File { .. } => Node::file(
                Content::bytes(content.unwrap_or_default()),
                mode,
                uid,
                gid,
                e.mtime,
            ),
            EntryKind::Symlink(t) => Node::symlink(t, uid, gid, e.mtime),
            EntryKind::Hardlink(t) => Node {
                kind: NodeKind::Hardlink(t),
                ..Node::dir(mode, uid, gid, e.mtime)
            },
            EntryKind::Whiteout | EntryKind::Opaque | EntryKind::Other(_) => continue,
        };
        if node.kind != NodeKind::Dir {
            tree.remove_subtree(&e.path);
        }
        tree.replace(e.path, node);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use oci_spec::image::MediaType;

    use crate::oci::{Digest, LayerBlob};

    /// A layer of two gzip members (as pigz or `cat a.gz b.gz` make) reads
    /// to the end of the second, as Go's reader reads it.
    #[test]
    fn every_gzip_member_of_a_layer_is_read() {
        let member = |bytes: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(bytes).unwrap();
            gz.finish().unwrap()
        };
        let mut blob = member(b"first half, ");
        blob.extend(member(b"second half"));
        let layer = LayerBlob {
            media_type: MediaType::ImageLayerGzip,
            digest: Digest::of(&blob),
            size: blob.len() as u64,
            diff_id: Digest::of(b"first half, second half"),
        };
        let mut out = String::new();
        super::decoder(&blob[..], &layer)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "first half, second half");
    }
}
