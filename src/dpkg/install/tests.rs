use super::*;
use crate::dpkg::deb::read_deb;
use crate::dpkg::deb::tests::{control_text, deb, TarBuilder};
use crate::fstree::{Content, Node};

const EPOCH: u64 = 5_000;

fn pkg(name: &str, version: &str) -> Selected {
    Selected {
        name: name.into(),
        version: version.into(),
        architecture: "amd64".into(),
        source: name.into(),
        provides: String::new(),
        replaces: String::new(),
    }
}

/// A package whose data member is `data`, with extra control files.
fn with_control(
    p: Selected,
    data: &mut TarBuilder,
    extra: &[(&str, &[u8])],
) -> (Selected, DebContents) {
    let control = control_text(&p.name, &p.version);
    let mut files = vec![("control", control.as_bytes())];
    files.extend_from_slice(extra);
    let bytes = deb(&files, &data.finish(), "xz");
    let contents = read_deb(&deb_name(&p), &bytes[..], EPOCH).unwrap();
    (p, contents)
}

fn package(p: Selected, data: &mut TarBuilder) -> (Selected, DebContents) {
    with_control(p, data, &[])
}

fn run(packages: &[(Selected, DebContents)]) -> Result<Installed, InstallError> {
    install(packages, EPOCH, &InstallOptions::default())
}

fn kind<'a>(i: &'a Installed, j: usize, key: &str) -> Option<&'a NodeKind> {
    i.packages[j].tree.get(key).map(|n| &n.kind)
}

fn file(text: &str) -> NodeKind {
    NodeKind::File(Content::bytes(text.as_bytes()))
}

fn symlink(target: &str) -> NodeKind {
    NodeKind::Symlink(target.into())
}

#[test]
fn merged_usr_moves_paths_and_links_the_aliases() {
    let libc = package(
        pkg("libc6", "2.36"),
        TarBuilder::new()
            .dir("./")
            .dir("./bin/")
            .file("./bin/dash", b"elf")
            .symlink("./bin/sh", "dash")
            .hardlink("./sbin/dash", "./bin/dash")
            .dir("./lib/x86_64-linux-gnu/")
            .file("./lib/x86_64-linux-gnu/libc.so.6", b"libc")
            .symlink(
                "./lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld.so",
            )
            .file("./usr/bin/env", b"env"),
    );
    // A newer base-files ships the alias itself: consistent, not a conflict.
    let base = package(
        pkg("base-files", "13"),
        TarBuilder::new().symlink("./bin", "usr/bin"),
    );
    let i = run(&[libc.clone(), base]).unwrap();
    assert_eq!(kind(&i, 0, "usr/bin/dash"), Some(&file("elf")));
    assert_eq!(kind(&i, 0, "usr/bin/sh"), Some(&symlink("dash")));
    assert_eq!(
        kind(&i, 0, "usr/sbin/dash"),
        Some(&NodeKind::Hardlink("usr/bin/dash".into()))
    );
    assert_eq!(
        kind(&i, 0, "usr/lib/x86_64-linux-gnu/libc.so.6"),
        Some(&file("libc"))
    );
    assert_eq!(
        kind(&i, 0, "usr/lib64/ld-linux-x86-64.so.2"),
        Some(&symlink("/lib/x86_64-linux-gnu/ld.so"))
    );
    assert!(i.packages[0]
        .tree
        .iter()
        .all(|(k, _)| !k.starts_with("bin/") && !k.starts_with("lib/")));
    assert_eq!(kind(&i, 0, "bin"), None, "base-files ships it");
    assert_eq!(kind(&i, 1, "bin"), Some(&symlink("usr/bin")));
    for alias in ["lib", "lib64", "sbin"] {
        let node = i.packages[0].tree.get(alias).unwrap();
        assert_eq!(node.kind, symlink(&format!("usr/{alias}")));
        assert_eq!((node.uid, node.gid, node.mtime), (0, 0, EPOCH));
    }
    assert_eq!(kind(&i, 0, "lib32"), None);
    let mut merged = i.merged_tree();
    merged
        .complete_parents(&Node::dir(0o755, 0, 0, EPOCH))
        .unwrap();

    let plain = InstallOptions {
        merged_usr: false,
        ..InstallOptions::default()
    };
    let i = install(&[libc], EPOCH, &plain).unwrap();
    assert_eq!(kind(&i, 0, "bin/dash"), Some(&file("elf")));
    assert_eq!(kind(&i, 0, "bin"), Some(&NodeKind::Dir));
}

#[test]
fn merged_usr_refuses_what_it_cannot_merge() {
    let e = run(&[package(
        pkg("odd", "1"),
        TarBuilder::new().file("./lib", b"x"),
    )])
    .unwrap_err();
    assert!(e.to_string().contains("ships /lib as a file"), "{e}");
    let e = run(&[package(
        pkg("twice", "1"),
        TarBuilder::new()
            .file("./bin/x", b"1")
            .file("./usr/bin/x", b"2"),
    )])
    .unwrap_err();
    assert!(e.to_string().contains("both /bin/x and /usr/bin/x"), "{e}");
    // The same file shipped twice is fine.
    run(&[package(
        pkg("twice", "1"),
        TarBuilder::new()
            .file("./bin/x", b"1")
            .file("./usr/bin/x", b"1"),
    )])
    .unwrap();
}

#[test]
fn conflicts_unless_replaced() {
    let a = package(
        pkg("a", "1"),
        TarBuilder::new().dir("./usr/").file("./usr/x", b"one"),
    );
    let b = || {
        package(
            pkg("b", "1"),
            TarBuilder::new().dir("./usr/").file("./usr/x", b"two"),
        )
    };
    let e = run(&[a.clone(), b()]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("/usr/x is shipped by both a 1 (amd64) and b 1 (amd64)"),
        "{msg}"
    );

    let (mut pb, cb) = b();
    pb.replaces = "c, a (<< 2)".into();
    let i = run(&[a.clone(), (pb.clone(), cb.clone())]).unwrap();
    assert_eq!(kind(&i, 0, "usr/x"), None);
    assert_eq!(kind(&i, 0, "usr"), Some(&NodeKind::Dir));
    assert_eq!(kind(&i, 1, "usr/x"), Some(&file("two")));

    // Replaces naming a virtual package the earlier one provides.
    let (mut pa, ca) = a.clone();
    pa.provides = "x-virtual".into();
    pb.replaces = "x-virtual".into();
    run(&[(pa, ca), (pb, cb)]).unwrap();

    // Identical files (Multi-Arch: same) are shared.
    let twin = package(
        pkg("a-twin", "1"),
        TarBuilder::new().file("./usr/x", b"one"),
    );
    let i = run(&[a.clone(), twin]).unwrap();
    assert_eq!(kind(&i, 1, "usr/x"), Some(&file("one")));

    // Replaces cannot turn a directory into a file.
    let dir = package(pkg("d", "1"), TarBuilder::new().dir("./usr/x/"));
    let (mut pf, cf) = package(pkg("f", "1"), TarBuilder::new().file("./usr/x", b""));
    pf.replaces = "d".into();
    assert!(matches!(
        run(&[dir, (pf, cf)]),
        Err(InstallError::Conflict { .. })
    ));
}

#[test]
fn no_package_writes_through_another_ones_symlink() {
    let a = package(
        pkg("a", "1"),
        TarBuilder::new().symlink("./usr/share/doc/a", "b"),
    );
    let b = package(
        pkg("b", "1"),
        TarBuilder::new().file("./usr/share/doc/a/evil", b""),
    );
    let e = run(&[a.clone(), b.clone()]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("b 1 (amd64) installs /usr/share/doc/a/evil below /usr/share/doc/a, which a 1 (amd64) ships as a symlink"), "{msg}");
    let e = run(&[b, a]).unwrap_err();
    assert!(
        matches!(
            e,
            InstallError::Conflict { .. } | InstallError::BelowNonDirectory { .. }
        ),
        "{e}"
    );
}

#[test]
fn replacing_a_hard_link_target_keeps_the_links() {
    let a = package(
        pkg("a", "1"),
        TarBuilder::new()
            .file("./usr/bin/x", b"old")
            .hardlink("./usr/bin/y", "./usr/bin/x"),
    );
    let (mut pb, cb) = package(pkg("b", "1"), TarBuilder::new().file("./usr/bin/x", b"new"));
    pb.replaces = "a".into();
    let i = run(&[a, (pb, cb)]).unwrap();
    assert_eq!(kind(&i, 0, "usr/bin/x"), None);
    assert_eq!(kind(&i, 0, "usr/bin/y"), Some(&file("old")));
    let mut tree = i.packages[0].tree.clone();
    tree.complete_parents(&Node::dir(0o755, 0, 0, EPOCH))
        .unwrap();
}

#[test]
fn hard_links_follow_byte_order() {
    // Archive order put the file after the path that sorts first.
    let i = run(&[package(
        pkg("a", "1"),
        TarBuilder::new()
            .file("./usr/z", b"data")
            .hardlink("./usr/a", "./usr/z")
            .hardlink("./usr/m", "./usr/z"),
    )])
    .unwrap();
    assert_eq!(kind(&i, 0, "usr/a"), Some(&file("data")));
    assert_eq!(
        kind(&i, 0, "usr/m"),
        Some(&NodeKind::Hardlink("usr/a".into()))
    );
    assert_eq!(
        kind(&i, 0, "usr/z"),
        Some(&NodeKind::Hardlink("usr/a".into()))
    );
    let mut tree = i.packages[0].tree.clone();
    tree.complete_parents(&Node::dir(0o755, 0, 0, EPOCH))
        .unwrap();
}

#[test]
fn the_dpkg_database_as_dpkg_writes_it() {
    let md5 = b"5a105e8b9d40e1329780d62ea2265d8a  usr/bin/tool\n";
    let given = with_control(
        pkg("tool", "1.0-1"),
        TarBuilder::new().file("./usr/bin/tool", b"test1"),
        &[("md5sums", md5)],
    );
    let computed = with_control(
        pkg("conf", "2"),
        TarBuilder::new()
            .file("./etc/conf.cfg", b"setting")
            .file("./usr/bin/b", b"")
            .hardlink("./usr/bin/a", "./usr/bin/b"),
        &[("conffiles", b"/etc/conf.cfg\n")],
    );
    let i = run(&[given, computed]).unwrap();
    // One status for both, in dpkg's field order, sorted by name, apart
    // from every package's own files.
    let status = i.shared.get("var/lib/dpkg/status").unwrap();
    assert!(i
        .packages
        .iter()
        .all(|p| p.tree.get("var/lib/dpkg/status").is_none()));
    assert_eq!(
        status.kind,
        file("Package: conf\nStatus: install ok installed\nInstalled-Size: 3\nMaintainer: Test <t@example.invalid>\nArchitecture: amd64\nVersion: 2\nConffiles:\n /etc/conf.cfg 7dc22b2c6a992f0232345df41303f5ea\nDescription: test package\n long description\n\nPackage: tool\nStatus: install ok installed\nInstalled-Size: 3\nMaintainer: Test <t@example.invalid>\nArchitecture: amd64\nVersion: 1.0-1\nDescription: test package\n long description\n\n")
    );
    assert_eq!(
        (status.mode, status.uid, status.gid, status.mtime),
        (0o644, 0, 0, EPOCH)
    );
    let sums = kind(&i, 0, "var/lib/dpkg/info/tool.md5sums");
    assert_eq!(sums, Some(&NodeKind::File(Content::bytes(&md5[..]))));
    assert_eq!(
        kind(&i, 0, "var/lib/dpkg/info/tool.list"),
        Some(&file("/.\n/usr/bin/tool\n"))
    );
    assert_eq!(
        kind(&i, 1, "var/lib/dpkg/info/conf.md5sums"),
        Some(&file("d41d8cd98f00b204e9800998ecf8427e  usr/bin/a\nd41d8cd98f00b204e9800998ecf8427e  usr/bin/b\n"))
    );
    assert_eq!(
        kind(&i, 1, "var/lib/dpkg/info/conf.conffiles"),
        Some(&file("/etc/conf.cfg\n"))
    );
    assert_eq!(
        kind(&i, 1, "var/lib/dpkg/info/tool.list"),
        None,
        "each package owns its own"
    );
    let s = &i.packages[1].summary;
    assert_eq!(
        (s.name.as_str(), s.version.as_str(), s.installed_size_kib),
        ("conf", "2", 3)
    );
}

#[test]
fn ca_bundle_like_update_ca_certificates() {
    let ca = package(
        pkg("ca-certificates", "2025"),
        TarBuilder::new()
            .dir("./etc/ssl/certs/")
            .file("./usr/share/ca-certificates/mozilla/B.crt", b"bee")
            .file("./usr/share/ca-certificates/mozilla/A.crt", b"ay\n")
            .symlink("./usr/share/ca-certificates/mozilla/C.crt", "A.crt")
            .file("./usr/share/ca-certificates/mozilla/README", b"no"),
    );
    let extra = package(
        pkg("corp-ca", "1"),
        TarBuilder::new().file("./usr/share/ca-certificates/corp/Z.crt", b"zed\n"),
    );
    let i = run(&[ca, extra]).unwrap();
    let bundle = i.packages[0]
        .tree
        .get("etc/ssl/certs/ca-certificates.crt")
        .unwrap();
    assert_eq!(bundle.kind, file("zed\nay\nbee\n"));
    assert_eq!(
        (bundle.mode, bundle.uid, bundle.gid, bundle.mtime),
        (0o644, 0, 0, EPOCH)
    );
    assert_eq!(kind(&i, 1, "etc/ssl/certs/ca-certificates.crt"), None);

    let i = run(&[package(
        pkg("other", "1"),
        TarBuilder::new().file("./usr/share/ca-certificates/x.crt", b"x"),
    )])
    .unwrap();
    assert!(i
        .merged_tree()
        .get("etc/ssl/certs/ca-certificates.crt")
        .is_none());
}

#[test]
fn base_passwd_masters() {
    let bp = package(
        pkg("base-passwd", "3.6"),
        TarBuilder::new()
            .file(
                "./usr/share/base-passwd/passwd.master",
                b"root:*:0:0:root:/root:/bin/sh\n",
            )
            .file("./usr/share/base-passwd/group.master", b"root:*:0:\n"),
    );
    let i = run(&[bp]).unwrap();
    assert_eq!(
        i.passwd_masters,
        Some((
            "root:*:0:0:root:/root:/bin/sh\n".into(),
            "root:*:0:\n".into()
        ))
    );
    let other = package(pkg("tool", "1"), TarBuilder::new().file("./usr/bin/t", b""));
    assert_eq!(run(&[other]).unwrap().passwd_masters, None);
    let broken = package(
        pkg("base-passwd", "3.6"),
        TarBuilder::new().file("./usr/share/base-passwd/group.master", b""),
    );
    let e = run(&[broken]).unwrap_err();
    assert!(
        e.to_string()
            .contains("/usr/share/base-passwd/passwd.master is missing"),
        "{e}"
    );
}

#[test]
fn summaries_and_identity() {
    let a = package(
        pkg("liba1", "1"),
        TarBuilder::new().file("./usr/share/doc/liba1/copyright", b"(c)"),
    );
    let b = package(
        pkg("liba-dev", "1"),
        TarBuilder::new().symlink("./usr/share/doc/liba-dev", "liba1"),
    );
    let i = run(&[a, b]).unwrap();
    assert_eq!(
        i.packages[0].summary.copyright.as_deref(),
        Some("/usr/share/doc/liba1/copyright")
    );
    assert_eq!(
        i.packages[1].summary.copyright.as_deref(),
        Some("/usr/share/doc/liba1/copyright")
    );

    // Without Installed-Size, the file sizes rounded up to KiB.
    let control = "Package: big\nVersion: 1\nArchitecture: amd64\n";
    let data = TarBuilder::new()
        .file("./a", &[0; 1500])
        .file("./b", &[0; 600])
        .finish();
    let bytes = deb(&[("control", control.as_bytes())], &data, "zst");
    let contents = read_deb("big.deb", &bytes[..], EPOCH).unwrap();
    let i = run(&[(pkg("big", "1"), contents)]).unwrap();
    assert_eq!(i.packages[0].summary.installed_size_kib, 3);
    assert_eq!(i.packages[0].summary.copyright, None);

    let (mut p, c) = package(pkg("x", "1"), TarBuilder::new().file("./x", b""));
    p.version = "2".into();
    let e = run(&[(p, c)]).unwrap_err();
    assert!(
        e.to_string()
            .contains("says Version `1` but the package index says `2`"),
        "{e}"
    );
}

/// The pool file name a .deb of `p` has, as its label.
fn deb_name(p: &Selected) -> String {
    format!("{}_{}_{}.deb", p.name, p.version, p.architecture)
}
