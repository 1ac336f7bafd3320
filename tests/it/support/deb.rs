//! Debian binary packages built in memory, byte for byte what `dpkg-deb
//! --root-owner-group -b` lays out (ar archive: `debian-binary`,
//! `control.tar.*`, `data.tar.*`), plus the ability to write entries dpkg
//! would never produce (`../escape`, `/etc/x`) for error tests.
//!
//! ```ignore
//! let deb = Deb::new("hello", "1.0-1", "amd64")
//!     .field("Depends", "libc6")
//!     .entry(DebEntry::dir("usr/bin"))
//!     .entry(DebEntry::exec("usr/bin/hello", b"#!/bin/sh\necho hi\n"))
//!     .build();
//! ```

use std::io::Write;

/// Fixed mtime for every member and tar entry, so fixtures are
/// deterministic (2001-09-09T01:46:40Z).
pub const FIXTURE_MTIME: u64 = 1_000_000_000;

/// Compression of a `control.tar` or `data.tar` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// The member name suffix (`""`, `".gz"`, `".xz"`, `".zst"`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
        }
    }

    pub fn compress(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => bytes.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(bytes, 3).unwrap(),
        }
    }
}

/// What a tar entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// A hard link to an earlier entry's path (as written in the archive).
    Hardlink(String),
}

/// One entry of `data.tar`.
///
/// Paths are written as dpkg-deb writes them, `./<path>`, unless they
/// start with `/` or `.`: those are written verbatim, so `"../escape"`
/// and `"/etc/x"` produce exactly the hostile archive a test wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebEntry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl DebEntry {
    fn new(path: &str, kind: EntryKind, mode: u32) -> DebEntry {
        DebEntry {
            path: path.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    /// A regular file, mode 0644.
    pub fn file(path: &str, content: impl Into<Vec<u8>>) -> DebEntry {
        DebEntry::new(path, EntryKind::File(content.into()), 0o644)
    }

    /// A regular file, mode 0755.
    pub fn exec(path: &str, content: impl Into<Vec<u8>>) -> DebEntry {
        DebEntry::new(path, EntryKind::File(content.into()), 0o755)
    }

    /// A directory, mode 0755.
    pub fn dir(path: &str) -> DebEntry {
        DebEntry::new(path, EntryKind::Dir, 0o755)
    }

    pub fn symlink(path: &str, target: &str) -> DebEntry {
        DebEntry::new(path, EntryKind::Symlink(target.to_string()), 0o777)
    }

    /// `target` as it will appear in the archive (`./usr/bin/a` style
    /// names get the same `./` treatment as paths).
    pub fn hardlink(path: &str, target: &str) -> DebEntry {
        DebEntry::new(path, EntryKind::Hardlink(archive_path(target)), 0o644)
    }

    /// Replaces the permission bits (including setuid/setgid/sticky).
    pub fn mode(mut self, mode: u32) -> DebEntry {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> DebEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

fn archive_path(path: &str) -> String {
    if path.starts_with('/') || path.starts_with('.') {
        path.to_string()
    } else {
        format!("./{path}")
    }
}

/// A package to build. Standard control fields (Package, Version,
/// Architecture, Maintainer, Installed-Size, Description) are filled in;
/// [`Deb::field`] adds or replaces any field.
#[derive(Clone, Debug)]
pub struct Deb {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub fields: Vec<(String, String)>,
    pub entries: Vec<DebEntry>,
    pub data_compression: Compression,
    pub control_compression: Compression,
    /// Extra `control.tar` members (`postinst`, `conffiles`, …): name,
    /// content, mode.
    pub control_files: Vec<(String, Vec<u8>, u32)>,
}

impl Deb {
    pub fn new(name: &str, version: &str, arch: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            fields: Vec::new(),
            entries: Vec::new(),
            data_compression: Compression::Xz,
            control_compression: Compression::Gzip,
            control_files: Vec::new(),
        }
    }

    /// Adds a control field, or replaces a standard or earlier one.
    pub fn field(mut self, name: &str, value: &str) -> Deb {
        self.fields.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.fields.push((name.into(), value.into()));
        self
    }

    pub fn entry(mut self, entry: DebEntry) -> Deb {
        self.entries.push(entry);
        self
    }

    pub fn entries(mut self, entries: impl IntoIterator<Item = DebEntry>) -> Deb {
        self.entries.extend(entries);
        self
    }

    pub fn data_compression(mut self, c: Compression) -> Deb {
        self.data_compression = c;
        self
    }

    pub fn control_compression(mut self, c: Compression) -> Deb {
        self.control_compression = c;
        self
    }

    /// The `control` file text (each field once, ending in a newline).
    pub fn control_text(&self) -> String {
        let file_bytes: u64 = self
            .entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::File(c) => c.len() as u64,
                _ => 0,
            })
            .sum();
        let standard = [
            ("Package", self.name.clone()),
            ("Version", self.version.clone()),
            ("Architecture", self.arch.clone()),
            (
                "Maintainer",
                "stele tests <tests@example.invalid>".to_string(),
            ),
            ("Installed-Size", file_bytes.div_ceil(1024).to_string()),
        ];
        let overridden = |k: &str| self.fields.iter().any(|(f, _)| f.eq_ignore_ascii_case(k));
        let mut text = String::new();
        for (k, v) in standard.iter().filter(|(k, _)| !overridden(k)) {
            text.push_str(&format!("{k}: {v}\n"));
        }
        for (k, v) in &self.fields {
            if !k.eq_ignore_ascii_case("Description") {
                text.push_str(&format!("{k}: {v}\n"));
            }
        }
        let description = self
            .fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Description"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("test package {}", self.name));
        text.push_str(&format!("Description: {description}\n"));
        text
    }

    /// The uncompressed `data.tar`.
    pub fn data_tar(&self) -> Vec<u8> {
        let mut tar = TarWriter::default();
        for e in &self.entries {
            let mut path = archive_path(&e.path);
            // dpkg-deb names directories `./usr/`; verbatim (hostile) paths
            // stay as given.
            if e.kind == EntryKind::Dir && path != e.path && !path.ends_with('/') {
                path.push('/');
            }
            tar.entry(
                &path,
                &e.kind,
                Meta {
                    mode: e.mode,
                    uid: e.uid,
                    gid: e.gid,
                },
            );
        }
        tar.finish()
    }

    /// The uncompressed `control.tar`: `./`, `./control`, `./md5sums` (for
    /// regular files), then any extra control files.
    pub fn control_tar(&self) -> Vec<u8> {
        let mut tar = TarWriter::default();
        tar.entry(
            "./",
            &EntryKind::Dir,
            Meta {
                mode: 0o755,
                ..ROOT_FILE
            },
        );
        let control = EntryKind::File(self.control_text().into_bytes());
        tar.entry("./control", &control, ROOT_FILE);
        let mut md5sums = String::new();
        for e in &self.entries {
            if let EntryKind::File(content) = &e.kind {
                let path = e.path.trim_start_matches("./").trim_start_matches('/');
                md5sums.push_str(&format!("{}  {path}\n", md5_hex(content)));
            }
        }
        if !md5sums.is_empty() {
            let md5 = EntryKind::File(md5sums.into_bytes());
            tar.entry("./md5sums", &md5, ROOT_FILE);
        }
        for (name, content, mode) in &self.control_files {
            let kind = EntryKind::File(content.clone());
            tar.entry(
                &format!("./{name}"),
                &kind,
                Meta {
                    mode: *mode,
                    ..ROOT_FILE
                },
            );
        }
        tar.finish()
    }

    /// The `.deb` bytes.
    pub fn build(&self) -> Vec<u8> {
        let control = self.control_compression.compress(&self.control_tar());
        let data = self.data_compression.compress(&self.data_tar());
        ar(&[
            ("debian-binary", b"2.0\n".as_slice()),
            (
                &format!("control.tar{}", self.control_compression.suffix()),
                &control,
            ),
            (
                &format!("data.tar{}", self.data_compression.suffix()),
                &data,
            ),
        ])
    }
}

/// A `.deb` with the given control fields and data entries, data.tar.xz
/// and control.tar.gz. See [`Deb`] for more knobs.
pub fn build_deb(
    name: &str,
    version: &str,
    arch: &str,
    control_extra: &[(&str, &str)],
    files: &[DebEntry],
) -> Vec<u8> {
    let mut deb = Deb::new(name, version, arch).entries(files.iter().cloned());
    for (k, v) in control_extra {
        deb = deb.field(k, v);
    }
    deb.build()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(bytes))
}

/// A System V / GNU `ar` archive as dpkg writes it: `!<arch>\n`, then per
/// member a 60-byte header (name without a trailing `/`) and the data,
/// padded to an even length with `\n`.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        assert!(name.len() <= 16, "ar member name {name} is over 16 bytes");
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            FIXTURE_MTIME,
            0,
            0,
            "100644",
            data.len()
        );
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// A GNU tar writer that writes names verbatim (the `tar` crate refuses
/// `..` and absolute paths, and rewrites `./x` to `x`).
#[derive(Default)]
struct TarWriter {
    out: Vec<u8>,
}

/// Permission bits and numeric owner of a tar entry.
#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
}

const ROOT_FILE: Meta = Meta {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

impl TarWriter {
    fn header(
        &mut self,
        name: &[u8],
        link: &[u8],
        typeflag: u8,
        Meta { mode, uid, gid }: Meta,
        size: u64,
    ) {
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, len: usize, bytes: &[u8]| {
            let n = bytes.len().min(len);
            h[at..at + n].copy_from_slice(&bytes[..n]);
        };
        let octal = |width: usize, value: u64| format!("{value:0w$o}\0", w = width - 1);
        put(&mut h, 0, 100, name);
        put(&mut h, 100, 8, octal(8, u64::from(mode)).as_bytes());
        put(&mut h, 108, 8, octal(8, uid).as_bytes());
        put(&mut h, 116, 8, octal(8, gid).as_bytes());
        put(&mut h, 124, 12, octal(12, size).as_bytes());
        put(&mut h, 136, 12, octal(12, FIXTURE_MTIME).as_bytes());
        h[156] = typeflag;
        put(&mut h, 157, 100, link);
        put(&mut h, 257, 8, b"ustar  \0");
        put(&mut h, 265, 32, if uid == 0 { b"root" } else { b"" });
        put(&mut h, 297, 32, if gid == 0 { b"root" } else { b"" });
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&h);
    }

    fn data(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        let pad = (512 - bytes.len() % 512) % 512;
        self.out.extend_from_slice(&vec![0u8; pad]);
    }

    /// GNU long name (`L`) / long link (`K`) records for fields over 100
    /// bytes.
    fn long(&mut self, typeflag: u8, value: &[u8]) {
        let mut content = value.to_vec();
        content.push(0);
        self.header(
            b"././@LongLink",
            b"",
            typeflag,
            ROOT_FILE,
            content.len() as u64,
        );
        self.data(&content);
    }

    fn entry(&mut self, path: &str, kind: &EntryKind, meta: Meta) {
        let (typeflag, link, content): (u8, &[u8], &[u8]) = match kind {
            EntryKind::File(c) => (b'0', b"", c),
            EntryKind::Dir => (b'5', b"", b""),
            EntryKind::Symlink(t) => (b'2', t.as_bytes(), b""),
            EntryKind::Hardlink(t) => (b'1', t.as_bytes(), b""),
        };
        if link.len() > 100 {
            self.long(b'K', link);
        }
        if path.len() > 100 {
            self.long(b'L', path.as_bytes());
        }
        self.header(path.as_bytes(), link, typeflag, meta, content.len() as u64);
        self.data(content);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }
}
