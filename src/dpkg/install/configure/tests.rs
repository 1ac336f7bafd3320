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
