//! The files `install` generates for ca-certificates-java, tzdata and
//! libc-bin, through `install` itself.

use super::*;
use crate::dpkg::deb::read_deb;
use crate::dpkg::deb::tests::{control_text, deb, TarBuilder};
use crate::dpkg::install::{install, InstallOptions, Installed};

const EPOCH: u64 = 1_735_689_600;

fn pkg(name: &str, arch: &str) -> Selected {
    Selected {
        name: name.into(),
        version: "1".into(),
        architecture: arch.into(),
        source: name.into(),
        provides: String::new(),
        replaces: String::new(),
    }
}

fn package(name: &str, arch: &str, data: &mut TarBuilder) -> (Selected, DebContents) {
    let p = pkg(name, arch);
    let control = control_text(&p.name, &p.version)
        .replace("Architecture: amd64", &format!("Architecture: {arch}"));
    let bytes = deb(&[("control", control.as_bytes())], &data.finish(), "xz");
    let contents = read_deb(&deb_name(&p), &bytes[..], EPOCH).unwrap();
    (p, contents)
}

fn generated<'a>(i: &'a Installed, key: &str) -> Option<(usize, &'a Node)> {
    i.packages
        .iter()
        .enumerate()
        .find_map(|(j, p)| p.tree.get(key).map(|n| (j, n)))
}

fn bytes(node: &Node) -> Vec<u8> {
    match &node.kind {
        NodeKind::File(c) => c.read_all().unwrap(),
        other => panic!("not a file: {other:?}"),
    }
}

fn ca_certificates() -> (Selected, DebContents) {
    package(
        "ca-certificates",
        "all",
        TarBuilder::new()
            .file(
                "./usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
                java_trust::tests::ISRG.as_bytes(),
            )
            .file(
                "./usr/share/ca-certificates/mozilla/Not a cert.crt",
                b"nothing",
            ),
    )
}

#[test]
fn java_trust_store_when_ca_certificates_java_is_installed() {
    let java = package(
        "ca-certificates-java",
        "all",
        TarBuilder::new().file("./etc/default/cacerts", b"cacerts_updates=yes\n"),
    );
    let i = install(
        &[ca_certificates(), java.clone()],
        EPOCH,
        &InstallOptions::default(),
    )
    .unwrap();
    let (owner, node) = generated(&i, JAVA_CACERTS).unwrap();
    assert_eq!(owner, 1, "ca-certificates-java owns its keystore");
    assert_eq!(
        (node.mode, node.uid, node.gid, node.mtime),
        (0o644, 0, 0, EPOCH)
    );
    let entries = java_trust::parse(&bytes(node)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "debian:isrg_root_x1.pem");
    assert_eq!(entries[0].1, EPOCH * 1000);

    let again = install(
        &[ca_certificates(), java.clone()],
        EPOCH,
        &InstallOptions::default(),
    )
    .unwrap();
    assert_eq!(
        bytes(generated(&again, JAVA_CACERTS).unwrap().1),
        bytes(node)
    );

    let i = install(&[ca_certificates()], EPOCH, &InstallOptions::default()).unwrap();
    assert!(generated(&i, JAVA_CACERTS).is_none());
    let off = InstallOptions {
        java_cacerts: false,
        ..InstallOptions::default()
    };
    let i = install(&[ca_certificates(), java], EPOCH, &off).unwrap();
    assert!(generated(&i, JAVA_CACERTS).is_none());
}

#[test]
fn tzdata_defaults_to_utc() {
    let tz = package(
        "tzdata",
        "all",
        TarBuilder::new().file("./usr/share/zoneinfo/Etc/UTC", b"TZif"),
    );
    let i = install(std::slice::from_ref(&tz), EPOCH, &InstallOptions::default()).unwrap();
    let (_, link) = generated(&i, "etc/localtime").unwrap();
    assert_eq!(
        link.kind,
        NodeKind::Symlink("/usr/share/zoneinfo/Etc/UTC".into())
    );
    let (_, name) = generated(&i, "etc/timezone").unwrap();
    assert_eq!(bytes(name), b"Etc/UTC\n");
    // A zone a package sets is kept, as the postinst keeps it.
    let zone = package(
        "zone",
        "all",
        TarBuilder::new().symlink("./etc/localtime", "/usr/share/zoneinfo/Europe/Berlin"),
    );
    let i = install(&[zone, tz.clone()], EPOCH, &InstallOptions::default()).unwrap();
    let (owner, link) = generated(&i, "etc/localtime").unwrap();
    assert_eq!(owner, 0);
    assert_eq!(
        link.kind,
        NodeKind::Symlink("/usr/share/zoneinfo/Europe/Berlin".into())
    );
    assert_eq!(
        bytes(generated(&i, "etc/timezone").unwrap().1),
        b"Europe/Berlin\n"
    );
    let off = InstallOptions {
        timezone: false,
        ..InstallOptions::default()
    };
    let i = install(&[tz], EPOCH, &off).unwrap();
    assert!(generated(&i, "etc/localtime").is_none());
}

fn libc(arch: &str, triplet: &str, machine: u16) -> (Selected, DebContents) {
    package(
        "libc6",
        arch,
        TarBuilder::new()
            .dir("./lib/")
            .file(
                &format!("./lib/{triplet}/libc.so.6"),
                &ld_cache::tests::elf(machine, Some("libc.so.6"), &[]),
            )
            .file(
                &format!("./etc/ld.so.conf.d/{triplet}.conf"),
                format!("/usr/local/lib/{triplet}\n/lib/{triplet}\n/usr/lib/{triplet}\n")
                    .as_bytes(),
            ),
    )
}

fn libc_bin(arch: &str) -> (Selected, DebContents) {
    package(
        "libc-bin",
        arch,
        TarBuilder::new()
            .file("./etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n")
            .file("./etc/ld.so.conf.d/libc.conf", b"/usr/local/lib\n"),
    )
}

#[test]
fn ld_so_cache_when_libc_bin_is_installed() {
    let extra = package(
        "libextra1",
        "amd64",
        TarBuilder::new()
            .file(
                "./opt/extra/lib/libextra.so.1",
                &ld_cache::tests::elf(62, Some("libextra.so.1"), &["libc.so.6"]),
            )
            .file("./etc/ld.so.conf.d/extra.conf", b"/opt/extra/lib\n"),
    );
    let packages = [
        libc("amd64", "x86_64-linux-gnu", 62),
        libc_bin("amd64"),
        extra,
    ];
    let i = install(&packages, EPOCH, &InstallOptions::default()).unwrap();
    let (owner, node) = generated(&i, LD_CACHE).unwrap();
    assert_eq!(owner, 1, "libc-bin's trigger writes it");
    assert_eq!((node.mode, node.mtime), (0o644, EPOCH));
    let (entries, generator) = ld_cache::parse(&bytes(node)).unwrap();
    assert_eq!(
        generator,
        "ldconfig (Debian GLIBC 1) stable release version 1"
    );
    let found: Vec<(i32, &str, &str)> = entries
        .iter()
        .map(|e| (e.flags, e.soname.as_str(), e.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (0x303, "libextra.so.1", "/opt/extra/lib/libextra.so.1"),
            (0x303, "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ]
    );

    let arm = install(
        &[libc("arm64", "aarch64-linux-gnu", 183), libc_bin("arm64")],
        EPOCH,
        &InstallOptions::default(),
    )
    .unwrap();
    let (entries, _) = ld_cache::parse(&bytes(generated(&arm, LD_CACHE).unwrap().1)).unwrap();
    assert_eq!(entries[0].flags, 0x0a03);
    assert_eq!(entries[0].path, "/lib/aarch64-linux-gnu/libc.so.6");

    // Without libc-bin nothing runs ldconfig; on an architecture whose
    // cache flags are not known the loader's default paths serve.
    let i = install(&packages[..1], EPOCH, &InstallOptions::default()).unwrap();
    assert!(generated(&i, LD_CACHE).is_none());
    let i = install(
        &[libc("s390x", "s390x-linux-gnu", 22), libc_bin("s390x")],
        EPOCH,
        &InstallOptions::default(),
    )
    .unwrap();
    assert!(generated(&i, LD_CACHE).is_none());
}

fn kind_at<'a>(i: &'a Installed, key: &str) -> Option<&'a NodeKind> {
    generated(i, key).map(|(_, n)| &n.kind)
}

#[test]
fn postinst_defaults_where_nothing_is_installed() {
    let base_files = package(
        "base-files",
        "amd64",
        TarBuilder::new()
            .dir("./etc/dpkg/origins/")
            .file("./etc/dpkg/origins/debian", b"Vendor: Debian\n")
            .dir("./run/")
            .dir("./usr/share/info/")
            .file("./usr/share/base-files/profile", b"PATH=/usr/bin\n")
            .file("./usr/share/base-files/dot.profile", b"mesg n\n")
            .file("./usr/share/base-files/dot.bashrc", b"# bashrc\n")
            .file("./usr/share/base-files/motd", b"motd\n")
            .file("./usr/share/base-files/info.dir", b"info\n")
            .dir("./var/run/")
            .dir("./var/lock/"),
    );
    // Another package's own /etc/motd and a file below /var/lock win over
    // what the postinst would make.
    let other = package(
        "other",
        "amd64",
        TarBuilder::new()
            .file("./etc/motd", b"mine\n")
            .file("./var/lock/held", b""),
    );
    let libc_bin = package(
        "libc-bin",
        "amd64",
        TarBuilder::new().file("./usr/share/libc-bin/nsswitch.conf", b"hosts: files dns\n"),
    );
    let i = install(
        &[base_files, other, libc_bin],
        EPOCH,
        &InstallOptions::default(),
    )
    .unwrap();
    assert_eq!(
        kind_at(&i, "etc/profile"),
        Some(&NodeKind::File(Content::bytes(b"PATH=/usr/bin\n".to_vec())))
    );
    assert_eq!(
        kind_at(&i, "root/.profile"),
        Some(&NodeKind::File(Content::bytes(b"mesg n\n".to_vec())))
    );
    let (owner, motd) = generated(&i, "etc/motd").unwrap();
    assert_eq!((owner, bytes(motd)), (1, b"mine\n".to_vec()));
    assert_eq!(
        kind_at(&i, "var/run"),
        Some(&NodeKind::Symlink("/run".into()))
    );
    assert_eq!(
        kind_at(&i, "var/lock"),
        Some(&NodeKind::Dir),
        "a file is below it"
    );
    assert_eq!(
        kind_at(&i, "etc/dpkg/origins/default"),
        Some(&NodeKind::Symlink("debian".into()))
    );
    let (_, mail) = generated(&i, "var/mail").unwrap();
    assert_eq!((mail.mode, mail.gid), (0o2775, 8));
    let (_, wtmp) = generated(&i, "var/log/wtmp").unwrap();
    assert_eq!((wtmp.mode, wtmp.gid, bytes(wtmp)), (0o664, 43, Vec::new()));
    assert_eq!(
        kind_at(&i, "usr/local/man"),
        Some(&NodeKind::Symlink("share/man".into()))
    );
    assert_eq!(kind_at(&i, "usr/local/bin"), Some(&NodeKind::Dir));
    assert!(kind_at(&i, "usr/share/info/dir").is_some());

    let (owner, nss) = generated(&i, "etc/nsswitch.conf").unwrap();
    let shipped = i.packages[2]
        .tree
        .get("usr/share/libc-bin/nsswitch.conf")
        .unwrap();
    assert_eq!(owner, 2);
    assert_eq!(
        (nss.mode, nss.mtime, &nss.kind),
        (shipped.mode, shipped.mtime, &shipped.kind)
    );

    let off = InstallOptions {
        postinst_defaults: false,
        ..InstallOptions::default()
    };
    let libc_bin = package(
        "libc-bin",
        "amd64",
        TarBuilder::new().file("./usr/share/libc-bin/nsswitch.conf", b"hosts: files dns\n"),
    );
    let i = install(&[libc_bin], EPOCH, &off).unwrap();
    assert!(generated(&i, "etc/nsswitch.conf").is_none());
}

#[test]
fn python_and_java_postinst_defaults() {
    let packages = [
        package(
            "python3.11-minimal",
            "amd64",
            TarBuilder::new().file("./usr/bin/python3.11", b"py"),
        ),
        package(
            "python3",
            "amd64",
            TarBuilder::new().file("./usr/bin/pydoc3", b"py"),
        ),
        package(
            "openjdk-17-jre-headless",
            "amd64",
            TarBuilder::new().file("./usr/lib/jvm/x", b"j"),
        ),
    ];
    let i = install(&packages, EPOCH, &InstallOptions::default()).unwrap();
    assert_eq!(
        kind_at(&i, "usr/local/lib/python3.11/dist-packages"),
        Some(&NodeKind::Dir)
    );
    let (owner, config) = generated(&i, "etc/python3/debian_config").unwrap();
    assert_eq!(
        (owner, bytes(config)),
        (1, b"[DEFAULT]\nbyte-compile = standard\n".to_vec())
    );
    let (owner, lock) = generated(&i, "etc/.java/.systemPrefs/.system.lock").unwrap();
    assert_eq!((owner, lock.mode, bytes(lock)), (2, 0o644, Vec::new()));
    assert!(kind_at(&i, "etc/.java/.systemPrefs/.systemRootModFile").is_some());
}

#[test]
fn ca_links_by_name_and_subject_hash() {
    let ca = package(
        "ca-certificates",
        "all",
        TarBuilder::new()
            .dir("./etc/ssl/certs/")
            .file(
                "./usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
                java_trust::tests::ISRG.as_bytes(),
            )
            .file(
                "./usr/share/ca-certificates/mozilla/ISRG (copy).crt",
                java_trust::tests::ISRG.as_bytes(),
            )
            .file(
                "./usr/share/ca-certificates/mozilla/Not a cert.crt",
                b"nothing",
            ),
    );
    let i = install(std::slice::from_ref(&ca), EPOCH, &InstallOptions::default()).unwrap();
    let links: Vec<(&str, &NodeKind)> = i.packages[0]
        .tree
        .iter()
        .filter(|(k, n)| k.starts_with("etc/ssl/certs/") && matches!(n.kind, NodeKind::Symlink(_)))
        .map(|(k, n)| (k.as_str(), &n.kind))
        .collect();
    let link = |t: &str| NodeKind::Symlink(t.into());
    assert_eq!(
        links,
        [
            // The copy sorts first and takes the hash; the original is a
            // duplicate of it.
            ("etc/ssl/certs/4042bcee.0", &link("ISRG_=copy=.pem")),
            (
                "etc/ssl/certs/ISRG_=copy=.pem",
                &link("/usr/share/ca-certificates/mozilla/ISRG (copy).crt")
            ),
            (
                "etc/ssl/certs/ISRG_Root_X1.pem",
                &link("/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt")
            ),
            (
                "etc/ssl/certs/Not_a_cert.pem",
                &link("/usr/share/ca-certificates/mozilla/Not a cert.crt")
            ),
        ]
    );
    let off = InstallOptions {
        ca_links: false,
        ..InstallOptions::default()
    };
    let i = install(&[ca], EPOCH, &off).unwrap();
    assert!(generated(&i, "etc/ssl/certs/4042bcee.0").is_none());
}

/// The pool file name a .deb of `p` has, as its label.
fn deb_name(p: &Selected) -> String {
    format!("{}_{}_{}.deb", p.name, p.version, p.architecture)
}

/// ca-certificates' postinst on a first install: the configuration
/// trusting every certificate (so `update-ca-certificates` run later
/// keeps the bundle), and the folder for local CAs with /usr/local's
/// mode and group; neither without ca-certificates.
#[test]
fn ca_certificates_conf_and_local_folder_as_the_postinst_writes_them() {
    let base = package(
        "base-files",
        "amd64",
        TarBuilder::new()
            .dir("./usr/")
            .raw(
                b"./usr/local/",
                tar::EntryType::Directory,
                b"",
                b"",
                0o2775,
                (0, 50),
                0,
            )
            .dir("./usr/local/share/"),
    );
    let i = install(
        &[base.clone(), ca_certificates()],
        EPOCH,
        &InstallOptions::default(),
    )
    .unwrap();
    let (j, conf) = generated(&i, "etc/ca-certificates.conf").unwrap();
    assert_eq!(j, 1, "owned by ca-certificates");
    let conf = String::from_utf8(bytes(conf)).unwrap();
    assert!(conf.starts_with("# This file lists certificates"), "{conf}");
    let listed: Vec<&str> = conf.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        listed,
        ["mozilla/ISRG_Root_X1.crt", "mozilla/Not a cert.crt"]
    );
    let (_, local) = generated(&i, "usr/local/share/ca-certificates").unwrap();
    assert_eq!(
        (&local.kind, local.mode, local.uid, local.gid),
        (&NodeKind::Dir, 0o2775, 0, 50)
    );

    let i = install(&[base], EPOCH, &InstallOptions::default()).unwrap();
    assert!(generated(&i, "etc/ca-certificates.conf").is_none());
    assert!(generated(&i, "usr/local/share/ca-certificates").is_none());
}
