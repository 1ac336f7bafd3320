use super::*;
use crate::fstree::{Content, FsTree};

const AMD64: Machine = Machine {
    triplet: "x86_64-linux-gnu",
    elf_machine: 62,
    flags: 0x0303,
};

/// A minimal 64-bit little-endian ELF shared object: one PT_LOAD at
/// vaddr 0x1000 for the whole file, a PT_DYNAMIC with DT_STRTAB and,
/// if given, DT_SONAME and DT_NEEDED.
pub(crate) fn elf(machine: u16, soname: Option<&str>, needed: &[&str]) -> Vec<u8> {
    let mut strtab = vec![0u8];
    let mut add = |s: &str| {
        let off = strtab.len() as u64;
        strtab.extend_from_slice(s.as_bytes());
        strtab.push(0);
        off
    };
    let soname_off = soname.map(&mut add);
    let needed_offs: Vec<u64> = needed.iter().map(|n| add(n)).collect();
    let phoff = 64u64;
    let dyn_off = phoff + 2 * 56;
    let mut dynamic: Vec<(u64, u64)> = vec![];
    let strtab_off = dyn_off + 16 * (needed.len() as u64 + 3);
    dynamic.push((5, 0x1000 + strtab_off));
    if let Some(o) = soname_off {
        dynamic.push((14, o));
    }
    for o in needed_offs {
        dynamic.push((1, o));
    }
    dynamic.push((0, 0));
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&3u16.to_le_bytes());
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[32..40].copy_from_slice(&phoff.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&2u16.to_le_bytes());
    let total = strtab_off + strtab.len() as u64;
    for (p_type, off, vaddr, size) in [
        (1u32, 0u64, 0x1000u64, total),
        (2, dyn_off, 0x1000 + dyn_off, 16 * dynamic.len() as u64),
    ] {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&p_type.to_le_bytes());
        ph[8..16].copy_from_slice(&off.to_le_bytes());
        ph[16..24].copy_from_slice(&vaddr.to_le_bytes());
        ph[32..40].copy_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&ph);
    }
    for (tag, val) in &dynamic {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&val.to_le_bytes());
    }
    b.resize(strtab_off as usize, 0);
    b.extend_from_slice(&strtab);
    b
}

fn tree(entries: &[(&str, NodeKind)]) -> FsTree {
    let mut t = FsTree::new();
    for (k, kind) in entries {
        let node = match kind {
            NodeKind::Dir => Node::dir(0o755, 0, 0, 0),
            NodeKind::Symlink(s) => Node::symlink(s.clone(), 0, 0, 0),
            NodeKind::File(c) => Node::file(c.clone(), 0o644, 0, 0, 0),
            other => Node {
                kind: other.clone(),
                ..Node::file(Content::bytes(Vec::new()), 0o644, 0, 0, 0)
            },
        };
        t.replace(k.to_string(), node);
    }
    t
}

fn file(b: Vec<u8>) -> NodeKind {
    NodeKind::File(Content::bytes(b))
}

fn link(t: &str) -> NodeKind {
    NodeKind::Symlink(t.into())
}

const CONF: &str = "include /etc/ld.so.conf.d/*.conf\n";
const MULTIARCH: &str = "# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n";

fn merged_image(extra: &[(&str, NodeKind)]) -> FsTree {
    let lib = "usr/lib/x86_64-linux-gnu";
    let mut entries = vec![
        ("lib", link("usr/lib")),
        ("usr/lib", NodeKind::Dir),
        ("etc/ld.so.conf", file(CONF.into())),
        (
            "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
            file(MULTIARCH.into()),
        ),
    ];
    let libc = format!("{lib}/libc.so.6");
    let libz = format!("{lib}/libz.so.1.2.13");
    let libz1 = format!("{lib}/libz.so.1");
    let script = format!("{lib}/libc.so");
    let files = [
        (libc.as_str(), file(elf(62, Some("libc.so.6"), &[]))),
        (
            libz.as_str(),
            file(elf(62, Some("libz.so.1"), &["libc.so.6"])),
        ),
        (libz1.as_str(), link("libz.so.1.2.13")),
        (script.as_str(), file(b"/* GNU ld script */".to_vec())),
    ];
    let mut t = tree(&entries.drain(..).chain(files).collect::<Vec<_>>());
    t.overlay(tree(extra));
    t
}

fn entries_of(t: &FsTree) -> Vec<(i32, String, String)> {
    let view = ImageView::new([t]);
    let cache = ld_cache(&view, AMD64, "gen").unwrap();
    let (entries, generator) = parse(&cache).unwrap();
    assert_eq!(generator, "gen");
    entries
        .into_iter()
        .map(|e| (e.flags, e.soname, e.path))
        .collect()
}

#[test]
fn merged_usr_directories_are_scanned_once_under_their_first_name() {
    let t = merged_image(&[]);
    assert_eq!(
        entries_of(&t),
        vec![
            (
                0x303,
                "libz.so.1".into(),
                "/lib/x86_64-linux-gnu/libz.so.1".into()
            ),
            (
                0x303,
                "libc.so.6".into(),
                "/lib/x86_64-linux-gnu/libc.so.6".into()
            ),
        ]
    );
}

#[test]
fn conf_d_directories_are_found_and_sorted_by_library_order() {
    let t = merged_image(&[
        (
            "etc/ld.so.conf.d/zz-opt.conf",
            file(b"/opt/x/lib/ # why\n".to_vec()),
        ),
        (
            "opt/x/lib/libfoo.so.10",
            file(elf(62, Some("libfoo.so.10"), &[])),
        ),
        (
            "opt/x/lib/libfoo.so.9",
            file(elf(62, Some("libfoo.so.9"), &[])),
        ),
        ("opt/x/lib/libc.so.6", file(elf(62, None, &[]))),
        ("opt/x/lib/notalib.so", file(elf(62, None, &[]))),
        ("opt/x/lib/libdir.so", NodeKind::Dir),
        ("opt/x/lib/libloop.so", link("libloop.so")),
    ]);
    let got = entries_of(&t);
    let names: Vec<(&str, &str)> = got
        .iter()
        .map(|(_, s, p)| (s.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"),
            ("libfoo.so.10", "/opt/x/lib/libfoo.so.10"),
            ("libfoo.so.9", "/opt/x/lib/libfoo.so.9"),
            // Same name in two directories: the one scanned first
            // (x86_64-linux-gnu.conf before zz-opt.conf) first.
            ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
            ("libc.so.6", "/opt/x/lib/libc.so.6"),
        ]
    );
}

#[test]
fn foreign_libraries_keep_the_generic_flags() {
    let t = merged_image(&[(
        "usr/lib/x86_64-linux-gnu/libarm.so.1",
        file(elf(183, Some("libarm.so.1"), &["libc.so.6"])),
    )]);
    let got = entries_of(&t);
    assert!(got.contains(&(
        3,
        "libarm.so.1".into(),
        "/lib/x86_64-linux-gnu/libarm.so.1".into()
    )));
}

#[test]
fn without_merged_usr_both_lib_directories_are_scanned() {
    let t = tree(&[
        ("etc/ld.so.conf", file(CONF.into())),
        (
            "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
            file(MULTIARCH.into()),
        ),
        (
            "lib/x86_64-linux-gnu/libc.so.6",
            file(elf(62, Some("libc.so.6"), &[])),
        ),
        (
            "usr/lib/x86_64-linux-gnu/libz.so.1",
            file(elf(62, Some("libz.so.1"), &[])),
        ),
    ]);
    let got = entries_of(&t);
    assert_eq!(got[0].2, "/usr/lib/x86_64-linux-gnu/libz.so.1");
    assert_eq!(got[1].2, "/lib/x86_64-linux-gnu/libc.so.6");
}

#[test]
fn the_cache_is_the_same_for_the_same_tree() {
    let t = merged_image(&[]);
    let view = ImageView::new([&t]);
    let a = ld_cache(&view, AMD64, "g").unwrap();
    let b = ld_cache(&ImageView::new([&merged_image(&[])]), AMD64, "g").unwrap();
    assert_eq!(a, b);
    assert_eq!(&a[..20], b"glibc-ld.so.cache1.1");
}

/// The bytes for a fixed tree, pinned: a change to the format or the
/// order is a change to every image with libc-bin.
#[test]
fn golden_cache() {
    let t = merged_image(&[(
        "usr/lib/x86_64-linux-gnu/libz.so",
        link("/lib/x86_64-linux-gnu/libz.so.1.2.13"),
    )]);
    let cache = ld_cache(&ImageView::new([&t]), AMD64, &generator("2.36-9+deb12u14")).unwrap();
    assert_eq!(
        crate::oci::Digest::of(&cache).to_string(),
        "sha256:63a9cc2958ac4070336ede1a5b990282aa370858022c6dfeb38b7f6c00c3e033"
    );
}

#[test]
fn libcmp_compares_numbers_as_numbers() {
    assert_eq!(libcmp("libfoo.so.10", "libfoo.so.9"), Ordering::Greater);
    assert_eq!(libcmp("libfoo.so.9", "libfoo.so.9"), Ordering::Equal);
    assert_eq!(libcmp("libfoo.so", "libfoo.so.1"), Ordering::Less);
    assert_eq!(libcmp("lib1", "liba"), Ordering::Greater);
    assert_eq!(libcmp("liba", "libb"), Ordering::Less);
}

#[test]
fn string_table_shares_tails() {
    let strings = ["/lib/libc.so.6", "c.so.6", "libc.so.6", "libm.so.6"];
    let (table, offsets) = string_table(&strings);
    for (s, off) in strings.iter().zip(&offsets) {
        let rest = &table[*off..];
        assert_eq!(
            &rest[..rest.iter().position(|&c| c == 0).unwrap()],
            s.as_bytes()
        );
    }
    // Only the two strings that end no other are stored.
    assert_eq!(
        table.len(),
        "/lib/libc.so.6".len() + 1 + "libm.so.6".len() + 1
    );
}

#[test]
fn the_generator_names_debians_glibc() {
    assert_eq!(
        generator("2.36-9+deb12u14"),
        "ldconfig (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36"
    );
}

/// The same tree, on disk, through the host's ldconfig: the files must
/// be byte-identical. Runs where the host is a Debian amd64 system.
#[test]
fn matches_the_hosts_ldconfig() {
    let Some(ldconfig) = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("skipped: no ldconfig on this host");
        return;
    };
    let host_lib = std::path::Path::new("/usr/lib/x86_64-linux-gnu");
    let version = std::process::Command::new(ldconfig)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let Some(libc_bin_version) = version
        .lines()
        .next()
        .and_then(|l| l.split_once("(Debian GLIBC "))
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(v, _)| v.to_string())
    else {
        eprintln!("skipped: the host's ldconfig is not Debian's glibc");
        return;
    };
    if !host_lib.join("libc.so.6").exists() {
        eprintln!("skipped: the host is not x86_64 Debian");
        return;
    }
    let real =
        |name: &str| -> Option<NodeKind> { std::fs::read(host_lib.join(name)).ok().map(file) };
    let lib = "usr/lib/x86_64-linux-gnu";
    let mut entries: Vec<(String, NodeKind)> = vec![
        ("bin".into(), link("usr/bin")),
        ("lib".into(), link("usr/lib")),
        ("lib64".into(), link("usr/lib64")),
        ("usr/bin".into(), NodeKind::Dir),
        (
            "usr/lib64/ld-linux-x86-64.so.2".into(),
            link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        ),
        ("etc/ld.so.conf".into(), file(CONF.into())),
        (
            "etc/ld.so.conf.d/x86_64-linux-gnu.conf".into(),
            file(MULTIARCH.into()),
        ),
        (
            "etc/ld.so.conf.d/libc.conf".into(),
            file(b"# libc default configuration\n/usr/local/lib\n".to_vec()),
        ),
        (
            "etc/ld.so.conf.d/zz-opt.conf".into(),
            file(b"/opt/x/lib\n/opt/missing\n".to_vec()),
        ),
        (
            format!("{lib}/libc.so"),
            file(b"/* GNU ld script */\nGROUP ( libc.so.6 )\n".to_vec()),
        ),
        (
            format!("{lib}/libjunk.so.1"),
            file(b"not an ELF file".to_vec()),
        ),
        (format!("{lib}/libz.so.1"), link("libz.so.1.2.13")),
        (
            format!("{lib}/libz.so"),
            link("/lib/x86_64-linux-gnu/libz.so.1.2.13"),
        ),
        (format!("{lib}/libtinfo.so.6"), link("libtinfo.so.6.4")),
        (
            "usr/local/lib/libdangling.so.1".into(),
            link("nowhere.so.1"),
        ),
    ];
    for name in [
        "libc.so.6",
        "ld-linux-x86-64.so.2",
        "libm.so.6",
        "libz.so.1.2.13",
        "libtinfo.so.6.4",
    ] {
        if let Some(f) = real(name) {
            entries.push((format!("{lib}/{name}"), f));
        }
    }
    for (name, from) in [
        ("libtinfo.so.6", "libtinfo.so.6.4"),
        ("libfoo.so", "libz.so.1.2.13"),
        ("libm.so.6", "libm.so.6"),
    ] {
        if let Some(f) = real(from) {
            entries.push((format!("opt/x/lib/{name}"), f));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for (key, kind) in &entries {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match kind {
            NodeKind::Dir => std::fs::create_dir_all(&path).unwrap(),
            NodeKind::Symlink(t) => std::os::unix::fs::symlink(t, &path).unwrap(),
            NodeKind::File(c) => std::fs::write(&path, c.read_all().unwrap()).unwrap(),
            _ => unreachable!("only the kinds above are listed"),
        }
    }
    let status = std::process::Command::new(ldconfig)
        .arg("-X")
        .arg("-r")
        .arg(dir.path())
        .args(["-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ldconfig failed: {status}");
    let theirs = std::fs::read(dir.path().join("etc/ld.so.cache")).unwrap();
    let borrowed: Vec<(&str, NodeKind)> = entries
        .iter()
        .map(|(k, n)| (k.as_str(), n.clone()))
        .collect();
    let t = tree(&borrowed);
    let ours = ld_cache(&ImageView::new([&t]), AMD64, &generator(&libc_bin_version)).unwrap();
    if ours != theirs {
        panic!(
            "differs from ldconfig's cache:\nours:   {:?}\ntheirs: {:?}",
            parse(&ours),
            parse(&theirs)
        );
    }
}
