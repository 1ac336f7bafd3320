//! Tests for the .deb reader, and the tiny in-test package builder the
//! installer's tests share. Archives are written header by header so the
//! tests can also make the hostile ones a real tool refuses to produce.

use std::io::Write;

use tar::{EntryType, Header};

use super::*;

pub(crate) const MTIME: u64 = 1_000;

/// A tar stream written header by header, names taken verbatim.
pub(crate) struct TarBuilder {
    out: tar::Builder<Vec<u8>>,
}

impl TarBuilder {
    pub(crate) fn new() -> TarBuilder {
        TarBuilder {
            out: tar::Builder::new(Vec::new()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn raw(
        &mut self,
        path: &[u8],
        kind: EntryType,
        data: &[u8],
        link: &[u8],
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.out.append(&h, data).unwrap();
        self
    }

    pub(crate) fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Directory,
            b"",
            b"",
            0o755,
            (0, 0),
            MTIME,
        )
    }

    pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Regular,
            data,
            b"",
            0o644,
            (0, 0),
            MTIME,
        )
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Symlink,
            b"",
            target.as_bytes(),
            0o777,
            (0, 0),
            MTIME,
        )
    }

    pub(crate) fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Link,
            b"",
            target.as_bytes(),
            0o644,
            (0, 0),
            MTIME,
        )
    }

    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.out
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        self.out.finish().unwrap();
        self.out.get_ref().clone()
    }
}

/// `data` compressed with `method` ("", "gz", "xz" or "zst").
pub(crate) fn compress(method: &str, data: &[u8]) -> Vec<u8> {
    match method {
        "" => data.to_vec(),
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(data, 1).unwrap(),
        other => panic!("no compressor {other}"),
    }
}

pub(crate) fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
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

/// A .deb whose control.tar.gz holds `control_files` and whose data member
/// is `data_tar` compressed with `method`.
pub(crate) fn deb(control_files: &[(&str, &[u8])], data_tar: &[u8], method: &str) -> Vec<u8> {
    let mut control = TarBuilder::new();
    control.dir("./");
    for (name, bytes) in control_files {
        control.file(&format!("./{name}"), bytes);
    }
    let control_tar = compress("gz", &control.finish());
    let data_name = if method.is_empty() {
        "data.tar".to_string()
    } else {
        format!("data.tar.{method}")
    };
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar),
        (&data_name, &compress(method, data_tar)),
    ])
}

pub(crate) fn control_text(name: &str, version: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Test <t@example.invalid>\nInstalled-Size: 3\nDescription: test package\n long description\n")
}

fn simple(data_tar: &[u8]) -> Vec<u8> {
    deb(
        &[("control", control_text("t", "1").as_bytes())],
        data_tar,
        "gz",
    )
}

fn read(bytes: &[u8], epoch: u64) -> Result<DebContents, DebError> {
    read_deb("t_1_amd64.deb", bytes, epoch)
}

fn find<'a>(c: &'a DebContents, path: &str) -> &'a Node {
    &c.data.iter().find(|e| e.path == path).unwrap().node
}

fn refusal(data_tar: &[u8]) -> String {
    let e = read(&simple(data_tar), u64::MAX).unwrap_err();
    assert!(matches!(e, DebError::Unsafe { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("t_1_amd64.deb"), "{msg}");
    msg
}

#[test]
fn reads_every_compression() {
    let mut t = TarBuilder::new();
    t.dir("./")
        .dir("./usr/")
        .dir("./usr/bin/")
        .raw(
            b"./usr/bin/su",
            EntryType::Regular,
            b"#!",
            b"",
            0o4755,
            (0, 0),
            MTIME,
        )
        .raw(
            b"usr/bin/mail",
            EntryType::Regular,
            b"m",
            b"",
            0o2755,
            (0, 8),
            MTIME,
        )
        .symlink("usr/bin/sh", "dash");
    let data_tar = t.finish();
    for method in ["", "gz", "xz", "zst"] {
        let md5 = b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/su\n";
        let bytes = deb(
            &[
                ("control", control_text("t", "1").as_bytes()),
                ("md5sums", md5),
            ],
            &data_tar,
            method,
        );
        let c = read(&bytes, u64::MAX).unwrap_or_else(|e| panic!("{method}: {e}"));
        let paths: Vec<_> = c.data.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["usr", "usr/bin", "usr/bin/su", "usr/bin/mail", "usr/bin/sh"]
        );
        let su = find(&c, "usr/bin/su");
        assert_eq!(su.kind, NodeKind::File(Content::bytes("#!")));
        assert_eq!(su.mode, 0o4755);
        let mail = find(&c, "usr/bin/mail");
        assert_eq!((mail.mode, mail.uid, mail.gid), (0o2755, 0, 8));
        assert_eq!(
            find(&c, "usr/bin/sh").kind,
            NodeKind::Symlink("dash".into())
        );
        assert_eq!(c.control["md5sums"], md5);
        assert_eq!(c.control_field("version").as_deref(), Some("1"));
        assert_eq!(
            c.control_field("Description").as_deref(),
            Some("test package\n long description")
        );
    }
}

#[test]
fn unsupported_compression_is_named() {
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        (
            "control.tar.gz",
            &compress("gz", &TarBuilder::new().finish()),
        ),
        ("data.tar.bz2", b"BZh9"),
    ]);
    let e = read(&bytes, 0).unwrap_err();
    assert!(
        e.to_string()
            .contains("data.tar.bz2 is compressed with bzip2"),
        "{e}"
    );
}

#[test]
fn traversal_is_refused() {
    let msg = refusal(
        &TarBuilder::new()
            .file("./usr/../../etc/passwd", b"x")
            .finish(),
    );
    assert!(
        msg.contains("`./usr/../../etc/passwd`") && msg.contains("`..`"),
        "{msg}"
    );
    let msg = refusal(&TarBuilder::new().hardlink("./a", "../etc/shadow").finish());
    assert!(msg.contains("`..`"), "{msg}");
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let msg = refusal(
        &TarBuilder::new()
            .symlink("./lib", "/etc")
            .file("./lib/cron.d/evil", b"x")
            .finish(),
    );
    assert!(msg.contains("through /lib, a symlink to `/etc`"), "{msg}");
    let msg = refusal(
        &TarBuilder::new()
            .file("./a", b"")
            .file("./a/b", b"")
            .finish(),
    );
    assert!(msg.contains("below /a"), "{msg}");
    let msg = refusal(
        &TarBuilder::new()
            .file("./a/b", b"")
            .symlink("./a", "/")
            .finish(),
    );
    assert!(msg.contains("already holds /a/b"), "{msg}");
}

#[test]
fn symlinks_may_not_climb_above_root() {
    let msg = refusal(&TarBuilder::new().symlink("./a/l", "../../etc").finish());
    assert!(msg.contains("climbs above"), "{msg}");
    refusal(&TarBuilder::new().symlink("./l", "/../etc").finish());
    let c = read(
        &simple(&TarBuilder::new().symlink("./a/b/l", "../../etc").finish()),
        0,
    )
    .unwrap();
    assert_eq!(
        find(&c, "a/b/l").kind,
        NodeKind::Symlink("../../etc".into())
    );
}

#[test]
fn hard_links_only_to_earlier_files() {
    let c = read(
        &simple(
            &TarBuilder::new()
                .file("./bin/a", b"x")
                .hardlink("./bin/b", "./bin/a")
                .finish(),
        ),
        0,
    )
    .unwrap();
    assert_eq!(find(&c, "bin/b").kind, NodeKind::Hardlink("bin/a".into()));
    let msg = refusal(
        &TarBuilder::new()
            .hardlink("./b", "./a")
            .file("./a", b"x")
            .finish(),
    );
    assert!(msg.contains("not an earlier regular file"), "{msg}");
    refusal(
        &TarBuilder::new()
            .symlink("./a", "x")
            .hardlink("./b", "./a")
            .finish(),
    );
    refusal(
        &TarBuilder::new()
            .dir("./d/")
            .hardlink("./b", "./d")
            .finish(),
    );
}

#[test]
fn duplicates() {
    let mut t = TarBuilder::new();
    t.dir("./d/").raw(
        b"./d/",
        EntryType::Directory,
        b"",
        b"",
        0o700,
        (0, 0),
        MTIME,
    );
    let c = read(&simple(&t.finish()), u64::MAX).unwrap();
    assert_eq!(c.data.len(), 1);
    assert_eq!(c.data[0].node.mode, 0o700);
    let msg = refusal(
        &TarBuilder::new()
            .file("./f", b"1")
            .file("./f", b"2")
            .finish(),
    );
    assert!(msg.contains("appears twice"), "{msg}");
}

#[test]
fn special_files_and_bad_names_are_refused() {
    let msg = refusal(
        &TarBuilder::new()
            .raw(
                b"./dev/null",
                EntryType::Char,
                b"",
                b"",
                0o666,
                (0, 0),
                MTIME,
            )
            .finish(),
    );
    assert!(msg.contains("character device"), "{msg}");
    let msg = refusal(
        &TarBuilder::new()
            .raw(b"./run/p", EntryType::Fifo, b"", b"", 0o644, (0, 0), MTIME)
            .finish(),
    );
    assert!(msg.contains("a fifo"), "{msg}");
    let msg = refusal(
        &TarBuilder::new()
            .raw(
                b"./caf\xe9",
                EntryType::Regular,
                b"",
                b"",
                0o644,
                (0, 0),
                MTIME,
            )
            .finish(),
    );
    assert!(msg.contains("not UTF-8"), "{msg}");
}

#[test]
fn mtimes_are_clamped_and_xattrs_kept() {
    let mut t = TarBuilder::new();
    t.raw(b"./old", EntryType::Regular, b"", b"", 0o644, (0, 0), 1_500)
        .raw(b"./new", EntryType::Regular, b"", b"", 0o644, (0, 0), 9_000)
        .pax(&[("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02")])
        .raw(
            b"./ping",
            EntryType::Regular,
            b"p",
            b"",
            0o755,
            (0, 0),
            1_000,
        );
    let c = read(&simple(&t.finish()), 2_000).unwrap();
    assert_eq!(find(&c, "old").mtime, 1_500);
    assert_eq!(find(&c, "new").mtime, 2_000);
    let ping = find(&c, "ping");
    assert_eq!(
        ping.xattrs.get("security.capability").map(Vec::as_slice),
        Some(&b"\x01\x00\x00\x02"[..])
    );
    assert!(find(&c, "old").xattrs.is_empty());
}

#[test]
fn truncated_or_corrupt_packages_are_errors() {
    let mut t = TarBuilder::new();
    for i in 0..40 {
        t.file(
            &format!("./f{i}"),
            format!("content {i}").repeat(50).as_bytes(),
        );
    }
    let data_tar = t.finish();
    for method in ["", "gz", "xz", "zst"] {
        let whole = deb(&[("control", b"Package: t\n")], &data_tar, method);
        for cut in [whole.len() - 1, whole.len() - 40, whole.len() / 2, 70, 3] {
            let e = read(&whole[..cut], 0).unwrap_err();
            assert!(
                matches!(e, DebError::Corrupt { .. } | DebError::Format { .. }),
                "{method} cut at {cut}: {e}"
            );
            assert!(e.to_string().contains("t_1_amd64.deb"), "{e}");
        }
    }
    // A flipped byte in the middle of a gzip member fails its CRC or inflate.
    let mut damaged = deb(&[("control", b"Package: t\n")], &data_tar, "gz");
    let n = damaged.len();
    damaged[n - 100] ^= 0x55;
    assert!(read(&damaged, 0).is_err());
    // A damaged checksum trailer is only seen when the member is read to its
    // end, past the tar's end-of-archive blocks.
    let mut gz = compress("gz", &data_tar);
    let n = gz.len();
    gz[n - 8] ^= 0x01;
    let control_tar = compress(
        "gz",
        &TarBuilder::new()
            .file("./control", b"Package: t\n")
            .finish(),
    );
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar),
        ("data.tar.gz", &gz),
    ]);
    let e = read(&bytes, 0).unwrap_err();
    assert!(matches!(e, DebError::Corrupt { .. }), "{e}");
    let e = read(b"not a deb at all", 0).unwrap_err();
    assert!(matches!(e, DebError::Format { .. }), "{e}");
}

#[test]
fn ignores_underscore_members() {
    let control_tar = compress(
        "gz",
        &TarBuilder::new()
            .file("./control", b"Package: t\n")
            .finish(),
    );
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("_gpgorigin", b"sig"),
        ("control.tar.gz", &control_tar),
        ("data.tar", &TarBuilder::new().file("./x", b"1").finish()),
    ]);
    let c = read(&bytes, 0).unwrap();
    assert_eq!(c.data.len(), 1);
    let bytes = ar(&[("debian-binary", b"3.0\n")]);
    assert!(read(&bytes, 0).unwrap_err().to_string().contains("3.0"));
}

#[test]
fn absolute_member_names_are_refused() {
    let msg = refusal(&TarBuilder::new().file("/etc/shadow", b"x").finish());
    assert!(
        msg.contains("`/etc/shadow`") && msg.contains("absolute"),
        "{msg}"
    );
}

#[test]
fn a_pax_record_claiming_a_gigabyte_is_refused_naming_the_limit() {
    let mut h = Header::new_ustar();
    h.set_path("PaxHeader").unwrap();
    h.set_entry_type(EntryType::XHeader);
    h.set_size(1 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut data = h.as_bytes().to_vec();
    data.extend_from_slice(&[b'9'; 4096]);
    let e = read(&simple(&data), 0).unwrap_err().to_string();
    assert!(
        e.contains("PAX record of 1073741824 bytes") && e.contains("1048576-byte limit"),
        "{e}"
    );
}
