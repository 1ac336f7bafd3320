//! Hostile packages (issue 28): what a package from a signed third-party
//! repository asks of stele through its postinst and sysusers.d files
//! (alternatives that leave their folder, accounts that forge
//! /etc/passwd lines or take a system folder, scripts that cost
//! unbounded work, includes and CA files too large to read) is refused
//! and reported, or fails the build naming the package, and is never
//! applied. Each test serves a signed repository it makes on 127.0.0.1,
//! builds with the `stele` binary and reads the image it wrote.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::packages::{image_files, passwd_masters, Project};
use crate::support::*;

fn with_postinst(mut deb: Deb, postinst: &str) -> Deb {
    deb.control_files = vec![("postinst".into(), postinst.as_bytes().to_vec(), 0o755)];
    deb
}

/// Builds `wanted` (with `--json`) from a signed repository holding
/// `debs` and base-passwd.
fn build(debs: Vec<Deb>, wanted: &str) -> (Project, Run) {
    let mut b = AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb("stable", passwd_masters());
    for d in debs {
        b = b.deb("stable", d);
    }
    let repo = b.build();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, "[\"linux/amd64\"]", wanted, "single");
    let r = p.build(&["--json"]);
    (p, r)
}

/// The script effects `--json` reported, keyed by where each was written.
fn effects_of(r: &Run) -> BTreeMap<String, Value> {
    let doc = json(r.stdout.as_bytes());
    doc["scripts"]["linux/amd64"]["effects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["source"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

#[track_caller]
fn assert_skipped(effects: &BTreeMap<String, Value>, source: &str, why: &str) {
    let e = effects
        .get(source)
        .unwrap_or_else(|| panic!("no effect from {source}: {effects:#?}"));
    assert_eq!(e["outcome"], "skipped", "{e:#}");
    let detail = e["detail"].as_str().unwrap();
    assert!(detail.contains(why), "{source}: {detail}");
}

/// Every entry of every layer, as written: no path may be absolute or
/// climb with `..`, nor may a hard link's target, so nothing lands
/// outside the root whatever unpacks the image.
fn assert_contained(p: &Project) {
    let layout = check_layout(&p.out());
    for (mt, blob) in &layout.layers {
        for e in tar_entries(&decompress(mt, blob)) {
            let mut paths = vec![e.path.clone()];
            if e.kind == 'h' {
                paths.extend(e.link.clone());
            }
            for path in paths {
                assert!(
                    !path.starts_with('/') && !path.split('/').any(|c| c == ".."),
                    "{path} leaves the root"
                );
            }
        }
    }
}

/// The image's /etc/passwd, checked: seven fields a line, one uid 0.
fn passwd_names(files: &BTreeMap<String, TarEntry>) -> Vec<String> {
    let text = String::from_utf8(files["etc/passwd"].data.clone()).unwrap();
    let mut names = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        assert_eq!(fields.len(), 7, "a forged line: {line:?}\n{text}");
        assert!(
            fields[2] != "0" || fields[0] == "root",
            "a second root: {text}"
        );
        names.push(fields[0].to_string());
    }
    names
}

#[test]
fn alternatives_that_leave_their_folder_are_refused_and_reported() {
    let deb = with_postinst(
        Deb::new("altevil", "1.0", "amd64")
            .entry(DebEntry::dir("usr/bin"))
            .entry(DebEntry::exec("usr/bin/real", "#!/bin/sh\n")),
        "#!/bin/sh\nset -e\n\
         update-alternatives --install /usr/bin/x ../../../../tmp/x /usr/bin/real 10\n\
         update-alternatives --install /usr/bin/y a/b /usr/bin/real 10\n\
         update-alternatives --install /usr/bin/z .. /usr/bin/real 10\n\
         update-alternatives --install /usr/bin/../../tmp/w w /usr/bin/real 10\n\
         update-alternatives --install /usr/bin/v v /usr/bin/real 10 --slave /usr/bin/s ../s /usr/bin/real\n\
         update-alternatives --install /usr/bin/good good /usr/bin/../../../etc/shadow 10\n\
         update-alternatives --install /usr/bin/good good /usr/bin/real 10\n",
    );
    let (p, r) = build(vec![deb], "[\"altevil\"]");
    r.expect_ok();
    assert!(
        r.stderr.contains(
            "scripts: 1 effect reproduced, 0 not needed in an image, 6 skipped (altevil: update-alternatives)"
        ),
        "{}",
        r.stderr
    );
    let effects = effects_of(&r);
    for (line, name) in [(3, "../../../../tmp/x"), (4, "a/b"), (5, ".."), (7, "../s")] {
        let why = format!("refused: the alternative name `{name}` is not a file name");
        assert_skipped(&effects, &format!("postinst:{line}"), &why);
    }
    assert_skipped(
        &effects,
        "postinst:6",
        "refused: the link `/usr/bin/../../tmp/w` contains `..`",
    );
    assert_skipped(
        &effects,
        "postinst:8",
        "refused: the path `/usr/bin/../../../etc/shadow`",
    );
    assert_eq!(effects["postinst:9"]["outcome"], "reproduced");

    assert_contained(&p);
    let files = image_files(&p.out());
    let alternatives: Vec<&String> = files
        .keys()
        .filter(|k| {
            k.starts_with("etc/alternatives/") || k.starts_with("var/lib/dpkg/alternatives/")
        })
        .collect();
    assert_eq!(
        alternatives,
        ["etc/alternatives/good", "var/lib/dpkg/alternatives/good"]
    );
    assert_eq!(
        files["etc/alternatives/good"].link.as_deref(),
        Some("/usr/bin/real")
    );
    assert!(
        !files.keys().any(|k| k.contains("tmp")),
        "{:?}",
        files.keys()
    );
}

#[test]
fn accounts_that_forge_lines_take_root_or_a_system_folder_are_refused() {
    // The package ships /etc, /root and /usr/bin, as base-files does in a
    // real image, so they exist when adduser is asked for them; /opt/esc
    // leads to /etc through a link.
    let deb = with_postinst(
        Deb::new("accevil", "1.0", "amd64")
            .field("Depends", "base-passwd")
            .entry(DebEntry::dir("etc"))
            .entry(DebEntry::file("etc/accevil.conf", "x\n"))
            .entry(DebEntry::dir("root").mode(0o700))
            .entry(DebEntry::dir("usr/bin"))
            .entry(DebEntry::dir("opt"))
            .entry(DebEntry::symlink("opt/esc", "/etc"))
            .entry(DebEntry::dir("usr/lib/sysusers.d"))
            .entry(DebEntry::file(
                "usr/lib/sysusers.d/accevil.conf",
                "u toor 0 \"root again\" /root\nu bad:name - \"x\" /x\nu sysok - \"a:b\" /srv/ok\n",
            )),
        "#!/bin/sh\nset -e\n\
         adduser --system --gecos 'x:0:0::/root:/bin/sh' colon1\n\
         adduser --system --gecos \"a\ntoor::0:0:x:/root:/bin/sh\" nl1\n\
         adduser --system 'ev:il'\n\
         adduser --system \"ev\nil\"\n\
         adduser --system --home /etc svc\n\
         adduser --system --home ../../tmp/x rel\n\
         adduser --system --home /usr/bin bin2\n\
         adduser --system --home /root rootish\n\
         adduser --system --home /opt/esc esc\n\
         adduser --system --home /var/lib/good good\n",
    );
    let (p, r) = build(vec![deb], "[\"accevil\"]");
    r.expect_ok();
    let effects = effects_of(&r);
    assert_skipped(
        &effects,
        "postinst:3",
        "refused: the comment `x:0:0::/root:/bin/sh` holds `:`",
    );
    assert_skipped(
        &effects,
        "postinst:4",
        "refused: the comment `a\\ntoor::0:0:x:/root:/bin/sh`",
    );
    assert_skipped(
        &effects,
        "postinst:6",
        "refused: `ev:il` is not a valid user name",
    );
    assert_skipped(
        &effects,
        "postinst:7",
        "refused: `ev\\nil` is not a valid user name",
    );
    assert_skipped(
        &effects,
        "postinst:10",
        "refused: the home `../../tmp/x` is not an absolute path",
    );
    let sysusers = "/usr/lib/sysusers.d/accevil.conf";
    assert_skipped(
        &effects,
        &format!("{sysusers}:1"),
        "refused: a package may not make an account with uid or gid 0",
    );
    assert_skipped(
        &effects,
        &format!("{sysusers}:2"),
        "refused: `bad:name` is not a valid user name",
    );
    assert_skipped(
        &effects,
        &format!("{sysusers}:3"),
        "refused: the comment `a:b` holds `:`",
    );
    for line in [9, 11, 12, 13] {
        let e = &effects[&format!("postinst:{line}")];
        assert_eq!(e["outcome"], "reproduced", "{e:#}");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .ends_with("exists and is left as it is"),
            "{e:#}"
        );
    }

    assert_contained(&p);
    let files = image_files(&p.out());
    assert_eq!(
        passwd_names(&files),
        ["root", "daemon", "svc", "bin2", "rootish", "esc", "good", "nonroot"]
    );
    for dir in ["etc", "root", "usr/bin", "opt"] {
        let e = &files[dir];
        assert_eq!((e.kind, e.uid, e.gid), ('d', 0, 0), "{dir} changed owner");
    }
    assert_eq!(files["root"].mode & 0o7777, 0o700);
    // adduser makes a home nothing holds, for its user.
    let home = &files["var/lib/good"];
    assert_eq!((home.kind, home.uid), ('d', 104));
}

/// Builds one package whose postinst is `script` and returns its effects.
fn costly(name: &str, script: &str) -> (Project, Run) {
    let deb = with_postinst(
        Deb::new(name, "1.0", "amd64").field("Depends", "base-passwd"),
        script,
    );
    build(vec![deb], &format!("[\"{name}\"]"))
}

#[test]
fn costly_scripts_are_bounded_and_named() {
    // Unbounded, each of these took gigabytes or minutes (issue 28).
    let nest = format!(
        "#!/bin/sh\nadduser --system before\nx={}a{}\n",
        "${a:-".repeat(5000),
        "}".repeat(5000)
    );
    let (p, r) = costly("nest", &nest);
    r.expect_ok();
    let effects = effects_of(&r);
    assert_skipped(
        &effects,
        "postinst:1",
        "cannot be read: expansions nested more than 32 deep",
    );
    assert_eq!(effects.len(), 1, "an unreadable script has no other effect");
    assert!(
        r.stderr
            .contains("1 skipped (nest: (the whole script)); see --json"),
        "{}",
        r.stderr
    );
    assert_eq!(
        passwd_names(&image_files(&p.out())),
        ["root", "daemon", "nonroot"]
    );

    let double = format!(
        "#!/bin/sh\nv=x\n{}adduser --system --gecos \"$v\" dbl\nadduser --system after\n",
        "v=$v$v\n".repeat(40)
    );
    let (p, r) = costly("double", &double);
    r.expect_ok();
    let effects = effects_of(&r);
    assert_skipped(
        &effects,
        "postinst:43",
        "cannot be expanded without running something",
    );
    assert_eq!(
        passwd_names(&image_files(&p.out())),
        ["root", "daemon", "after", "nonroot"]
    );

    // The first case is decided at once (the matcher does not
    // backtrack); the second costs more than the matcher's bound, so
    // its arm is reported and not followed.
    let case = format!(
        "#!/bin/sh\ncase {} in\n  {}b) adduser --system quick ;;\nesac\ncase {} in\n  {}) adduser --system huge ;;\nesac\nadduser --system after\n",
        "a".repeat(60),
        "*a".repeat(30),
        "a".repeat(5000),
        "*a".repeat(5000),
    );
    let (p, r) = costly("backtrack", &case);
    r.expect_ok();
    let effects = effects_of(&r);
    assert_skipped(&effects, "postinst:6", "too costly to match (line 5)");
    assert_eq!(
        passwd_names(&image_files(&p.out())),
        ["root", "daemon", "after", "nonroot"]
    );
}

#[test]
fn fanning_includes_and_a_huge_ca_file_fail_naming_the_package() {
    // Twelve files each including all twelve: 12^8 reads unbounded.
    let mut fan = Deb::new("fanout", "1.0", "amd64").entry(DebEntry::dir("etc/ld.so.conf.d"));
    for i in 0..12 {
        fan = fan.entry(DebEntry::file(
            &format!("etc/ld.so.conf.d/f{i:02}.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        ));
    }
    let libc_bin = Deb::new("libc-bin", "2.36-9", "amd64")
        .field("Depends", "fanout")
        .entry(DebEntry::dir("etc"))
        .entry(DebEntry::file(
            "etc/ld.so.conf",
            "include /etc/ld.so.conf.d/*.conf\n",
        ));
    let (p, r) = build(vec![fan, libc_bin], "[\"libc-bin\"]");
    r.expect_fail();
    assert!(
        r.stderr.contains("error: libc-bin 2.36-9 (amd64): the ld.so.conf includes name more than 512 files to read (at /etc/ld.so.conf.d/f")
            && r.stderr.contains("drop the package or ask its maintainer"),
        "{}",
        r.stderr
    );
    assert!(!p.out().exists(), "nothing half-written");

    let ca = Deb::new("ca-certificates", "20230311", "all")
        .entry(DebEntry::dir("usr/share/ca-certificates/evil"))
        .entry(DebEntry::file(
            "usr/share/ca-certificates/evil/huge.crt",
            vec![b'A'; 2 << 20],
        ));
    let (p, r) = build(vec![ca], "[\"ca-certificates\"]");
    r.expect_fail();
    assert!(
        r.stderr.contains("error: ca-certificates 20230311 (all): /usr/share/ca-certificates/evil/huge.crt is 2097152 bytes, more than a CA file may be (1048576 bytes)"),
        "{}",
        r.stderr
    );
    assert!(!p.out().exists(), "nothing half-written");
}
