//! A Debian binary package (deb(5)) read into memory: never unpacked on the
//! host, nothing in it ever run. The outer ar archive is read front to back
//! from any `Read`, so a package can stream from the cache.
//!
//! Entry paths are untrusted until checked here. Refused, with the package
//! and entry named: `..` components, names that are not UTF-8, relative
//! symlink targets that climb above `/`, an entry below a symlink or
//! non-directory defined earlier in the same package, hard links to anything
//! but an earlier regular file of the same package, a path given twice as
//! anything but a directory, and device nodes and fifos. Debian policy keeps
//! device nodes out of packages (they are made by maintainer scripts, which
//! stele does not run), so one in a package is refused rather than silently
//! dropped: an image missing a file its package ships would be a lie.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use tar::EntryType;

use crate::fstree::{self, Content, Node, NodeKind, PathError};

/// The control files and the file system entries of one package.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebContents {
    /// Regular files of the control member by normalized name: `control`,
    /// `md5sums`, `conffiles`, maintainer scripts (kept, never executed).
    pub control: BTreeMap<String, Vec<u8>>,
    /// The data member's entries in archive order, paths normalized and
    /// checked, mtimes clamped to the build epoch. The root entry is left out.
    pub data: Vec<DataEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataEntry {
    /// Normalized tree key (`usr/bin/busybox`).
    pub path: String,
    pub node: Node,
}

impl DebContents {
    /// The fields of the `control` file in order, continuation lines joined
    /// with `\n` as deb822 keeps them. `None` when it is missing or not UTF-8.
    pub(crate) fn control_fields(&self) -> Option<Vec<(String, String)>> {
        let text = std::str::from_utf8(self.control.get("control")?).ok()?;
        Some(parse_stanza(text))
    }

    /// One field of the `control` file, case-insensitively by name.
    pub(crate) fn control_field(&self, name: &str) -> Option<String> {
        self.control_fields()?
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// The fields of one deb822 paragraph; text after the first blank line is
/// ignored (a control file has exactly one paragraph).
pub(crate) fn parse_stanza(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(line.trim_end());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    fields
}

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{deb}: reading {context} failed: {error}; the file is truncated or corrupt: delete it from the cache and fetch it again")]
    Corrupt {
        deb: String,
        context: String,
        error: io::Error,
    },
    #[error("{deb}: not a Debian binary package: {reason}; check that the file is the .deb the lock names")]
    Format { deb: String, reason: String },
    #[error("{deb}: {member} is compressed with {compression}, which stele cannot read (it reads gzip, xz, zstd and uncompressed members); pick another version of the package")]
    Compression {
        deb: String,
        member: String,
        compression: String,
    },
    #[error("{deb}: writing its files to {path}: {error}; check the cache folder's free space and permissions")]
    Store {
        deb: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error("{deb}: refusing {member} entry `{entry}`: {problem}; the package is malformed or hostile, do not install it")]
    Unsafe {
        deb: String,
        member: &'static str,
        entry: String,
        problem: String,
    },
}

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER_LEN: usize = 60;

#[cfg(test)]
/// Reads a whole .deb from `reader` into memory. `label` names it in every
/// error (the pool path or cache file); `epoch` clamps every mtime
/// (`min(mtime, epoch)`) so a package built after the recipe's epoch
/// cannot leak its build time.
pub(crate) fn read_deb<R: Read>(
    label: &str,
    reader: R,
    epoch: u64,
) -> Result<DebContents, DebError> {
    read_deb_with(label, reader, epoch, &mut |entry, size| {
        let mut bytes = Vec::with_capacity(size.min(1 << 26) as usize);
        entry.read_to_end(&mut bytes).map_err(FileError::Read)?;
        Ok(Content::bytes(bytes))
    })
}

/// Why a regular file's bytes could not be kept: the package ended or was
/// corrupt (`Read`), or the place they go failed (`Write`).
#[derive(Debug)]
pub(crate) enum FileError {
    Read(io::Error),
    Write { path: PathBuf, source: io::Error },
}

/// Receives each regular file of the data member (its bytes as a reader,
/// its declared size) and returns the content that stands for them.
pub(crate) type FileSink<'a> = dyn FnMut(&mut dyn Read, u64) -> Result<Content, FileError> + 'a;

/// As `read_deb`, with each regular file's bytes handed to `store_file`
/// in archive order instead of being kept in memory.
pub(crate) fn read_deb_with<R: Read>(
    label: &str,
    mut reader: R,
    epoch: u64,
    store_file: &mut FileSink,
) -> Result<DebContents, DebError> {
    let corrupt = |context: &str, source: io::Error| DebError::Corrupt {
        deb: label.to_string(),
        context: context.to_string(),
        error: source,
    };
    let format = |reason: String| DebError::Format {
        deb: label.to_string(),
        reason,
    };
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(|e| corrupt("the ar header", e))?;
    if &magic != AR_MAGIC {
        return Err(format(
            "it does not start with the ar magic `!<arch>`".into(),
        ));
    }

    let mut contents = DebContents::default();
    // deb(5): debian-binary, control.tar*, data.tar* in this order; members
    // named `_*` may appear anywhere and are ignored, as is anything after
    // the data member.
    let mut stage = 0;
    while stage < 3 {
        let mut header = [0u8; AR_HEADER_LEN];
        if !read_full_or_eof(&mut reader, &mut header)
            .map_err(|e| corrupt("an ar member header", e))?
        {
            let missing = ["debian-binary", "control.tar", "data.tar"][stage];
            return Err(format(format!("it ends before its {missing} member")));
        }
        if &header[58..60] != b"`\n" {
            return Err(format("an ar member header is malformed".into()));
        }
        let name = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: u64 = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format(format!("ar member `{name}` has a malformed size")))?;
        let mut member = CountingReader {
            inner: (&mut reader).take(size),
            count: 0,
        };
        if name.starts_with('_') {
            // skipped below, with the rest of the member
        } else if stage == 0 {
            if name != "debian-binary" {
                return Err(format(format!(
                    "its first member is `{name}`, not debian-binary"
                )));
            }
            let mut version = String::new();
            (&mut member)
                .take(64)
                .read_to_string(&mut version)
                .map_err(|e| corrupt("debian-binary", e))?;
            if !version.starts_with("2.") {
                return Err(format(format!(
                    "its format version is `{}`, stele reads version 2.x",
                    version.trim()
                )));
            }
            stage = 1;
        } else {
            let (want, member_kind) = if stage == 1 {
                ("control.tar", "control")
            } else {
                ("data.tar", "data")
            };
            let Some(suffix) = name.strip_prefix(want) else {
                return Err(format(format!(
                    "member `{name}` found where {want} belongs"
                )));
            };
            let decoded = decompressor(label, &name, suffix, &mut member)?;
            // Bounded like a layer: PAX records, entries and decompressed
            // bytes (see `source::tar_guard`).
            let mut limits = crate::source::tar_guard::layer_limits(size);
            limits.what = "package member";
            let guarded = crate::source::tar_guard::TarGuard::new(decoded, limits);
            let mut archive = tar::Archive::new(guarded);
            if stage == 1 {
                read_control(label, &mut archive, &mut contents.control)?;
            } else {
                contents.data = read_data(label, &mut archive, epoch, store_file)?;
            }
            // The tar reader stops at the end-of-archive blocks; reading the
            // decompressor to its end is what checks gzip's CRC and xz's and
            // zstd's checksums, so a damaged tail is not silently accepted.
            io::copy(&mut archive.into_inner(), &mut io::sink())
                .map_err(|e| corrupt(&format!("the {member_kind} member `{name}`"), e))?;
            stage += 1;
        }
        io::copy(&mut member, &mut io::sink())
            .map_err(|e| corrupt(&format!("member `{name}`"), e))?;
        if member.count != size {
            return Err(corrupt(
                &format!("member `{name}`"),
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "it declares {size} bytes but the file ends after {}",
                        member.count
                    ),
                ),
            ));
        }
        if size % 2 == 1 && stage < 3 {
            let mut pad = [0u8; 1];
            reader
                .read_exact(&mut pad)
                .map_err(|e| corrupt("the ar padding", e))?;
        }
    }
    Ok(contents)
}

/// Fills `buf`, or returns `false` if the stream ends before its first byte.
fn read_full_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn decompressor<'a, R: Read + 'a>(
    label: &str,
    name: &str,
    suffix: &str,
    member: R,
) -> Result<Box<dyn Read + 'a>, DebError> {
    Ok(match suffix {
        "" => Box::new(member),
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(member)),
        ".xz" => Box::new(xz2::read::XzDecoder::new_multi_decoder(member)),
        ".zst" => {
            Box::new(
                zstd::stream::read::Decoder::new(member).map_err(|e| DebError::Corrupt {
                    deb: label.to_string(),
                    context: format!("member `{name}`"),
                    error: e,
                })?,
            )
        }
        other => {
            return Err(DebError::Compression {
                deb: label.to_string(),
                member: name.to_string(),
                compression: match other {
                    ".bz2" => "bzip2".to_string(),
                    ".lzma" => "lzma".to_string(),
                    _ => format!("an unknown method (`{other}`)"),
                },
            })
        }
    })
}

fn read_control<R: Read>(
    label: &str,
    archive: &mut tar::Archive<R>,
    control: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), DebError> {
    let corrupt = |source: io::Error| DebError::Corrupt {
        deb: label.to_string(),
        context: "the control member".into(),
        error: source,
    };
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let key = checked_key(label, "control", &raw)?;
        // Only regular files mean anything in control.tar; directories (the
        // `./` entry) and anything else are not installed, so not kept.
        if matches!(
            entry.header().entry_type(),
            EntryType::Regular | EntryType::Continuous
        ) && !key.is_empty()
        {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(corrupt)?;
            control.insert(key, bytes);
        }
    }
    Ok(())
}

/// A checked, normalized key from a raw archive path.
fn checked_key(label: &str, member: &'static str, raw: &[u8]) -> Result<String, DebError> {
    let unsafe_entry = |entry: String, problem: &str| DebError::Unsafe {
        deb: label.to_string(),
        member,
        entry,
        problem: problem.to_string(),
    };
    let path = std::str::from_utf8(raw).map_err(|_| {
        unsafe_entry(
            String::from_utf8_lossy(raw).into_owned(),
            "its name is not UTF-8, which an image path must be",
        )
    })?;
    // dpkg-deb names every member `./…`; an absolute name is never in a
    // package dpkg built, and refusing it keeps "where does this go"
    // answerable by reading the name.
    if path.starts_with('/') {
        return Err(unsafe_entry(
            path.to_string(),
            "its path is absolute; package members are named relative to `./`",
        ));
    }
    fstree::normalize_rel(path).map_err(|e| match e {
        PathError::ParentComponent { .. } => unsafe_entry(
            path.to_string(),
            "its path contains `..`, which could write outside the image",
        ),
        other => unsafe_entry(path.to_string(), &other.to_string()),
    })
}

fn read_data<R: Read>(
    label: &str,
    archive: &mut tar::Archive<R>,
    epoch: u64,
    store_file: &mut FileSink,
) -> Result<Vec<DataEntry>, DebError> {
    let corrupt = |source: io::Error| DebError::Corrupt {
        deb: label.to_string(),
        context: "the data member".into(),
        error: source,
    };
    let mut data: Vec<DataEntry> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw_path = entry.path_bytes().into_owned();
        let key = checked_key(label, "data", &raw_path)?;
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let refuse = |problem: String| DebError::Unsafe {
            deb: label.to_string(),
            member: "data",
            entry: shown.clone(),
            problem,
        };
        let raw_link = entry.link_name_bytes().map(|l| l.into_owned());
        let header = entry.header();
        let entry_type = header.entry_type();
        let mode = header.mode().map_err(corrupt)? & 0o7777;
        let id = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| refuse(format!("its {what} {v} does not fit 32 bits")))
        };
        let uid = id(header.uid().map_err(corrupt)?, "uid")?;
        let gid = id(header.gid().map_err(corrupt)?, "gid")?;
        let mut mtime = header.mtime().map_err(corrupt)?;
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = entry.pax_extensions().map_err(corrupt)? {
            for ext in pax {
                let ext = ext.map_err(corrupt)?;
                let Ok(k) = ext.key() else { continue };
                if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                } else if k == "mtime" {
                    // pax mtimes may carry a fraction; whole seconds is what
                    // the layer keeps.
                    if let Some(secs) = ext
                        .value()
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse().ok())
                    {
                        mtime = secs;
                    }
                }
            }
        }
        if key.is_empty() {
            if entry_type != EntryType::Directory {
                return Err(refuse(
                    "it names the root directory but is not a directory".into(),
                ));
            }
            continue;
        }
        let link = || -> Result<String, DebError> {
            let raw = raw_link
                .as_deref()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| refuse("it is a link without a target".into()))?;
            String::from_utf8(raw.to_vec())
                .map_err(|_| refuse("its link target is not UTF-8".into()))
        };
        let kind = match entry_type {
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.size();
                let content = store_file(&mut entry, size).map_err(|e| match e {
                    FileError::Read(e) => corrupt(e),
                    FileError::Write { path, source } => DebError::Store {
                        deb: label.to_string(),
                        path,
                        error: source,
                    },
                })?;
                NodeKind::File(content)
            }
            EntryType::Directory => NodeKind::Dir,
            EntryType::Symlink => {
                let target = link()?;
                if climbs_above_root(&key, &target) {
                    return Err(refuse(format!(
                        "its symlink target `{target}` climbs above `/`"
                    )));
                }
                NodeKind::Symlink(target)
            }
            EntryType::Link => {
                let target = link()?;
                let target_key = checked_key(label, "data", target.as_bytes())?;
                let ok = seen
                    .get(&target_key)
                    .is_some_and(|&i| matches!(data[i].node.kind, NodeKind::File(_)));
                if !ok || target_key == key {
                    return Err(refuse(format!(
                        "it is a hard link to `{target}`, which is not an earlier regular file of this package"
                    )));
                }
                NodeKind::Hardlink(target_key)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let what = match entry_type {
                    EntryType::Char => "a character device",
                    EntryType::Block => "a block device",
                    _ => "a fifo",
                };
                return Err(refuse(format!(
                    "it is {what}; Debian packages do not ship device nodes or fifos and stele does not create them"
                )));
            }
            other => {
                return Err(refuse(format!(
                    "its tar entry type {:?} is not one a package may use",
                    other.as_byte() as char
                )))
            }
        };
        let node = Node {
            kind,
            mode,
            uid,
            gid,
            mtime: mtime.min(epoch),
            xattrs,
        };
        check_placement(&key, &node, &data, &seen).map_err(refuse)?;
        match seen.get(&key) {
            // A directory given twice is the same directory; the later
            // header wins, as it would when extracting.
            Some(&i) => data[i].node = node,
            None => {
                seen.insert(key.clone(), data.len());
                data.push(DataEntry { path: key, node });
            }
        }
    }
    Ok(data)
}

/// Checks that `key` neither goes through an earlier symlink or file of the
/// package nor replaces something other than a directory with a directory.
fn check_placement(
    key: &str,
    node: &Node,
    data: &[DataEntry],
    seen: &BTreeMap<String, usize>,
) -> Result<(), String> {
    let mut cur = key;
    while let Some(p) = fstree::parent(cur) {
        if let Some(&i) = seen.get(p) {
            match &data[i].node.kind {
                NodeKind::Dir => {}
                NodeKind::Symlink(t) => {
                    return Err(format!(
                    "it would be written through /{p}, a symlink to `{t}` earlier in the package"
                ))
                }
                _ => {
                    return Err(format!(
                        "it lies below /{p}, which the package made a {}",
                        data[i].node.kind_name()
                    ))
                }
            }
        }
        cur = p;
    }
    if let Some(&i) = seen.get(key) {
        let old = &data[i].node;
        if !(old.kind == NodeKind::Dir && node.kind == NodeKind::Dir) {
            return Err(format!(
                "it appears twice in the archive (as a {} and as a {})",
                old.kind_name(),
                node.kind_name()
            ));
        }
    }
    if node.kind != NodeKind::Dir {
        let prefix = format!("{key}/");
        if let Some((child, _)) = seen.range(prefix.clone()..).next() {
            if child.starts_with(&prefix) {
                return Err(format!(
                    "it would replace a directory that already holds /{child}"
                ));
            }
        }
    }
    Ok(())
}

/// Whether a symlink at `key` pointing at `target` climbs above the root.
/// Absolute targets are resolved from the root, as the kernel does inside
/// the container.
pub(crate) fn climbs_above_root(key: &str, target: &str) -> bool {
    let mut depth = if target.starts_with('/') {
        0
    } else {
        fstree::parent(key).map_or(0, |p| p.split('/').count())
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
pub(crate) mod tests;
