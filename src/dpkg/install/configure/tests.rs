use crate::dpkg::deb::read_deb;
use crate::dpkg::deb::tests::{control_text, deb, TarBuilder};
use crate::dpkg::deb::DebContents;
use crate::dpkg::install::*;
use crate::fstree::NodeKind;

fn package(name: &str, data: &mut TarBuilder, postinst: &str) -> (Selected, DebContents) {
    let p = Selected {
        name: name.into(),
        version: "1.0".into(),
        architecture: "amd64".into(),
        source: name.into(),
        provides: String::new(),
        replaces: String::new(),
    };
    let control = control_text(name, "1.0");
    let mut files: Vec<(&str, &[u8])> = vec![("control", control.as_bytes())];
    if !postinst.is_empty() {
        files.push(("postinst", postinst.as_bytes()));
    }
    let bytes = deb(&files, &data.finish(), "xz");
    let contents = read_deb(&deb_name(&p), &bytes[..], 5).unwrap();
    (p, contents)
}

#[test]
fn links_replace_shipped_symlinks_under_merged_usr_and_accounts_keep_order() {
    let packages = vec![
        package(
            "oldpager",
            TarBuilder::new()
                .dir("./")
                .dir("./bin/")
                .file("./bin/more", b"elf")
                .symlink("./bin/pager", "more"),
            "#!/bin/sh\nadduser --system --group first\n",
        ),
        package(
            "newpager",
            TarBuilder::new()
                .dir("./")
                .dir("./usr/lib/sysusers.d/")
                .file("./usr/lib/sysusers.d/x.conf", b"u second -\n"),
            "#!/bin/sh\nset -e\nupdate-alternatives --install /bin/pager pager /bin/more 50\nsystemctl daemon-reload\n",
        ),
    ];
    let installed = install(&packages, 5, &InstallOptions::default()).unwrap();
    let old = &installed.packages[0].tree;
    let new = &installed.packages[1].tree;
    assert!(
        old.get("usr/bin/pager").is_none(),
        "the shipped link is replaced"
    );
    assert_eq!(
        new.get("usr/bin/pager").map(|n| &n.kind),
        Some(&NodeKind::Symlink("/etc/alternatives/pager".into()))
    );
    assert_eq!(
        new.get("etc/alternatives/pager").map(|n| &n.kind),
        Some(&NodeKind::Symlink("/bin/more".into()))
    );
    let names: Vec<&str> = installed
        .accounts
        .iter()
        .map(|a| match a {
            Declared::User(u) => u.name.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(names, ["first", "second"]);
    let outcomes: Vec<(&str, &str, Outcome)> = installed
        .report
        .effects
        .iter()
        .map(|e| (e.package.as_str(), e.source.as_str(), e.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("oldpager", "postinst:2", Outcome::Reproduced),
            ("newpager", "postinst:3", Outcome::Reproduced),
            ("newpager", "postinst:4", Outcome::NotNeeded),
            (
                "newpager",
                "/usr/lib/sysusers.d/x.conf:1",
                Outcome::Reproduced
            ),
        ]
    );
    // Without script reading, nothing of it happens.
    let plain = InstallOptions {
        scripts: false,
        ..InstallOptions::default()
    };
    let installed = install(&packages, 5, &plain).unwrap();
    assert!(installed.report.effects.is_empty() && installed.accounts.is_empty());
    assert_eq!(
        installed.packages[0]
            .tree
            .get("usr/bin/pager")
            .map(|n| &n.kind),
        Some(&NodeKind::Symlink("more".into()))
    );
}

/// The pool file name a .deb of `p` has, as its label.
fn deb_name(p: &Selected) -> String {
    format!("{}_{}_{}.deb", p.name, p.version, p.architecture)
}

#[test]
fn ucf_installs_records_and_backs_up_as_ucf_does_and_phpenmod_links_modules() {
    let packages = vec![
        package(
            "ucf",
            TarBuilder::new()
                .dir("./")
                .dir("./var/")
                .dir("./var/lib/")
                .dir("./var/lib/ucf/"),
            "#!/bin/sh\nset -e\ntouch /var/lib/ucf/hashfile\ntouch /var/lib/ucf/registry\n",
        ),
        package(
            "php-common",
            TarBuilder::new()
                .dir("./")
                .dir("./usr/")
                .dir("./usr/sbin/")
                .file("./usr/sbin/phpenmod", b"#!/bin/sh\n")
                .file("./usr/sbin/phpquery", b"#!/bin/sh\n")
                .dir("./usr/lib/")
                .dir("./usr/lib/php/")
                .file(
                    "./usr/lib/php/php-maintscript-helper",
                    b"php_invoke() { :; }\n",
                ),
            "",
        ),
        package(
            "php-mods",
            TarBuilder::new()
                .dir("./")
                .dir("./etc/")
                .dir("./etc/php/")
                .dir("./etc/php/8.2/")
                .dir("./etc/php/8.2/mods-available/")
                .dir("./etc/php/8.2/cli/")
                .dir("./etc/php/8.2/cli/conf.d/")
                .dir("./usr/")
                .dir("./usr/lib/")
                .dir("./usr/lib/php/")
                .dir("./usr/lib/php/8.2/")
                .file("./usr/lib/php/8.2/php.ini-production", b"[PHP]\n")
                .dir("./usr/lib/php/8.2/sapi/")
                .file("./usr/lib/php/8.2/sapi/cli", b"")
                .dir("./usr/share/")
                .dir("./usr/share/php8.2-common/")
                .file(
                    "./usr/share/php8.2-common/a.ini",
                    b"; priority=10\nextension=a.so\n",
                )
                .file("./usr/share/php8.2-common/b.ini", b"extension=b.so\n"),
            "#!/bin/sh\nset -e\n\
             ucf /usr/lib/php/8.2/php.ini-production /etc/php/8.2/cli/php.ini\n\
             ucfr php-mods /etc/php/8.2/cli/php.ini\n\
             if [ -e /usr/lib/php/php-maintscript-helper ]; then\n\
             . /usr/lib/php/php-maintscript-helper\n\
             for m in a b; do\n\
             ucf /usr/share/php8.2-common/$m.ini /etc/php/8.2/mods-available/$m.ini\n\
             ucfr --force php-mods /etc/php/8.2/mods-available/$m.ini\n\
             ucfr php-mods /etc/php/8.2/mods-available/$m.ini\n\
             php_invoke enmod 8.2 ALL $m\n\
             done\n\
             fi\n",
        ),
        // phpquery -M lists the modules registered by earlier packages.
        package(
            "php-cli",
            TarBuilder::new().dir("./"),
            "#!/bin/sh\nset -e\n. /usr/lib/php/php-maintscript-helper\n\
             mods=$(phpquery -M -v 8.2)\n\
             for m in $mods; do php_invoke enmod 8.2 cli $m; done\n",
        ),
    ];
    let installed = install(&packages, 5, &InstallOptions::default()).unwrap();
    let skipped: Vec<String> = installed
        .report
        .effects
        .iter()
        .filter(|e| e.outcome == Outcome::Skipped)
        .map(|e| format!("{} {}: {}", e.source, e.effect, e.detail))
        .collect();
    assert!(skipped.is_empty(), "{skipped:?}");
    let cli: Vec<&str> = installed
        .report
        .effects
        .iter()
        .filter(|e| e.package == "php-cli")
        .map(|e| e.effect.as_str())
        .collect();
    assert_eq!(
        cli,
        ["phpenmod -v 8.2 -s cli -m a", "phpenmod -v 8.2 -s cli -m b"]
    );
    let mods = &installed.packages[2].tree;
    let text = |tree: &crate::fstree::FsTree, key: &str| match tree.get(key).map(|n| &n.kind) {
        Some(NodeKind::File(c)) => String::from_utf8(c.read_all().unwrap()).unwrap(),
        other => panic!("/{key}: {other:?}"),
    };
    assert_eq!(text(mods, "etc/php/8.2/cli/php.ini"), "[PHP]\n");
    assert_eq!(
        text(mods, "etc/php/8.2/mods-available/a.ini"),
        "; priority=10\nextension=a.so\n"
    );
    for (link, module) in [("10-a.ini", "a"), ("20-b.ini", "b")] {
        assert_eq!(
            mods.get(&format!("etc/php/8.2/cli/conf.d/{link}"))
                .map(|n| &n.kind),
            Some(&NodeKind::Symlink(format!(
                "/etc/php/8.2/mods-available/{module}.ini"
            )))
        );
        for state in ["cli/enabled_by_maint", "registry"] {
            let key = format!("var/lib/php/modules/8.2/{state}/{module}");
            assert_eq!(text(mods, &key), "", "/{key}");
        }
    }
    // ucf's state is in no package's tree; the hashfile lists the files
    // in the order ucf met them, each earlier state kept, newest first.
    assert!(installed.packages[0]
        .tree
        .get("var/lib/ucf/hashfile")
        .is_none());
    let shared = &installed.shared;
    let md5 = |b: &[u8]| format!("{:x}", <md5::Md5 as md5::Digest>::digest(b));
    let ini = format!("{}  /etc/php/8.2/cli/php.ini\n", md5(b"[PHP]\n"));
    let a = format!(
        "{}  /etc/php/8.2/mods-available/a.ini\n",
        md5(b"; priority=10\nextension=a.so\n")
    );
    let b = format!(
        "{}  /etc/php/8.2/mods-available/b.ini\n",
        md5(b"extension=b.so\n")
    );
    assert_eq!(text(shared, "var/lib/ucf/hashfile"), format!("{ini}{a}{b}"));
    assert_eq!(text(shared, "var/lib/ucf/hashfile.0"), format!("{ini}{a}"));
    assert_eq!(text(shared, "var/lib/ucf/hashfile.1"), ini);
    assert_eq!(
        text(shared, "var/lib/ucf/hashfile.2"),
        "",
        "ucf's own postinst touched it"
    );
    assert!(shared.get("var/lib/ucf/hashfile.3").is_none());
    assert_eq!(
        text(shared, "var/lib/ucf/registry"),
        "php-mods \t /etc/php/8.2/cli/php.ini\n\
         php-mods \t /etc/php/8.2/mods-available/a.ini\n\
         php-mods \t /etc/php/8.2/mods-available/b.ini\n",
        "a second ucfr of the same file changes nothing"
    );
    assert_eq!(text(shared, "var/lib/ucf/registry.2"), "");
    assert!(shared.get("var/lib/ucf/registry.3").is_none());
    assert_eq!(
        text(
            shared,
            "var/lib/ucf/cache/:etc:php:8.2:mods-available:b.ini"
        ),
        "extension=b.so\n"
    );
}

/// ca-certificates' real postinst: the lines that make
/// /usr/local/share/ca-certificates and build /etc/ca-certificates.conf
/// (a `$(stat …)`, a `read` loop over debconf's answer) are reported as
/// reproduced by the files stele writes, so the summary names nothing
/// of the package; the calls of the tool stay its own effect.
#[test]
fn ca_certificates_postinst_is_reproduced_by_the_generated_files() {
    let postinst = include_str!("../../fixtures/ca-certificates.postinst");
    let packages = vec![package(
        "ca-certificates",
        TarBuilder::new().file(
            "./usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
            b"-----BEGIN CERTIFICATE-----\n",
        ),
        postinst,
    )];
    let installed = install(&packages, 5, &InstallOptions::default()).unwrap();
    let effects = &installed.report.effects;
    let skipped: Vec<String> = effects
        .iter()
        .filter(|e| e.outcome == Outcome::Skipped)
        .map(|e| format!("{} {}: {}", e.source, e.effect, e.detail))
        .collect();
    assert!(skipped.is_empty(), "{skipped:?}");
    let detail = |source: &str| {
        effects
            .iter()
            .find(|e| e.source == source)
            .map(|e| (e.outcome, e.detail.split(',').next().unwrap_or("")))
    };
    assert_eq!(
        detail("postinst:45"),
        Some((Outcome::Reproduced, "/usr/local/share/ca-certificates"))
    );
    assert_eq!(
        detail("postinst:66"),
        Some((Outcome::Reproduced, "/etc/ca-certificates.conf"))
    );
    assert!(!installed.report.summary().contains("ca-certificates"));
}

/// systemd's postinst as a first install runs it: its tmpfiles.d lines
/// after its sysusers.d group (the journal folder given to it), links
/// made, what belongs to the runtime left out; a template enabled as an
/// instance; then another package's here-document and its edit of a
/// file a script made, and the marker it removes.
#[test]
fn tmpfiles_templates_here_documents_and_edits_on_the_tree() {
    let mut tmpfiles_bin = TarBuilder::new();
    tmpfiles_bin.dir("./").dir("./bin/").raw(
        b"./bin/systemd-tmpfiles",
        tar::EntryType::Regular,
        b"elf",
        b"",
        0o755,
        (0, 0),
        5,
    );
    let packages = vec![
        package(
            "systemd",
            tmpfiles_bin
                .dir("./etc/")
                .dir("./lib/")
                .dir("./lib/systemd/")
                .dir("./lib/systemd/system/")
                .file(
                    "./lib/systemd/system/getty@.service",
                    b"[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
                )
                .dir("./usr/")
                .dir("./usr/lib/")
                .dir("./usr/lib/sysusers.d/")
                .file("./usr/lib/sysusers.d/j.conf", b"g systemd-journal -\n")
                .dir("./usr/lib/tmpfiles.d/")
                .file(
                    "./usr/lib/tmpfiles.d/s.conf",
                    b"z /var/log/journal 2755 root systemd-journal - -\n\
                      d /var/lib/private 0700 root root -\n\
                      L /var/log/README - - - - ../../usr/share/doc/systemd/README.logs\n\
                      d /run/user 0755 root root -\n\
                      f /etc/issue.d/x 0600 - - - hello\n\
                      a+ /var/log/journal - - - - group:adm:r-x\n",
                )
                .dir("./var/")
                .dir("./var/log/"),
            "#!/bin/sh\nset -e\nsystemctl enable getty@.service\nmkdir -p /var/log/journal\n\
             if [ -x \"$(command -v systemd-tmpfiles)\" ]; then\n\
             systemd-tmpfiles --create s.conf >/dev/null || true\nfi\n\
             cp /lib/systemd/system/getty@.service /etc/nss.conf\n",
        ),
        package(
            "wrap",
            TarBuilder::new().dir("./"),
            "#!/bin/sh\nset -e\nif [ ! -e /etc/hosts.allow ]; then\n\
             cat > /etc/hosts.allow <<EOF\n# made by $DPKG_MAINTSCRIPT_PACKAGE\nEOF\nfi\n\
             touch /etc/marker\nsed -i 's/^WantedBy=\\(.*\\)$/WantedBy=\\1 x/' /etc/nss.conf\n\
             rm /etc/marker\n",
        ),
    ];
    let installed = install(&packages, 5, &InstallOptions::default()).unwrap();
    let tree = &installed.packages[0].tree;
    let node = |t: &crate::fstree::FsTree, k: &str| {
        t.get(k)
            .map(|n| (n.kind.clone(), n.mode & 0o7777, n.uid, n.gid))
    };
    assert_eq!(
        node(tree, "var/log/journal"),
        Some((NodeKind::Dir, 0o2755, 0, 999)),
        "the sysusers group, from the top of the range: {:?}",
        installed.report.effects
    );
    assert_eq!(
        node(tree, "var/lib/private"),
        Some((NodeKind::Dir, 0o700, 0, 0))
    );
    assert_eq!(
        tree.get("var/log/README").map(|n| &n.kind),
        Some(&NodeKind::Symlink(
            "../../usr/share/doc/systemd/README.logs".into()
        ))
    );
    assert!(tree.get("run/user").is_none());
    assert_eq!(
        tree.get("etc/systemd/system/getty.target.wants/getty@tty1.service")
            .map(|n| &n.kind),
        Some(&NodeKind::Symlink(
            "/lib/systemd/system/getty@.service".into()
        ))
    );
    assert!(
        !tree
            .iter()
            .any(|(k, _)| k.starts_with("var/lib/systemd/deb-systemd-helper-enabled")),
        "systemctl keeps no deb-systemd-helper state"
    );
    let outcome = |line: &str| {
        installed
            .report
            .effects
            .iter()
            .find(|e| e.source == format!("/usr/lib/tmpfiles.d/s.conf:{line}"))
            .map(|e| e.outcome)
    };
    assert_eq!(outcome("4"), Some(Outcome::NotNeeded));
    assert_eq!(outcome("6"), Some(Outcome::Skipped));
    // A file with its argument, its missing folder made as tmpfiles makes it.
    assert_eq!(node(tree, "etc/issue.d").map(|n| n.1), Some(0o755));
    assert_eq!(node(tree, "etc/issue.d/x").map(|n| n.1), Some(0o600));
    let wrap = &installed.packages[1].tree;
    let text = |t: &crate::fstree::FsTree, k: &str| match t.get(k).map(|n| &n.kind) {
        Some(NodeKind::File(c)) => String::from_utf8(c.read_all().unwrap()).unwrap(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(text(wrap, "etc/hosts.allow"), "# made by wrap\n");
    assert_eq!(
        text(tree, "etc/nss.conf"),
        "[Install]\nWantedBy=getty.target x\nDefaultInstance=tty1\n",
        "edited where the file that systemd's script made is"
    );
    assert!(wrap.get("etc/marker").is_none() && tree.get("etc/marker").is_none());
    assert_eq!(text(tree, "etc/issue.d/x"), "hello");
}
