//! `stele build` end to end: the same recipe gives the same bytes whatever
//! the host does around it (DESIGN.md, "The digest contract"), every
//! compression writes a valid layout, and the output folder is replaced
//! only when it is ours to replace.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::support::tree::{populate, EPOCH, RECIPE};
use crate::support::*;

/// A fresh recipe folder and a build of it into `<tmp>/layout`.
fn baseline() -> (tempfile::TempDir, String) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let digest = build(&src.join("recipe.toml"), &tmp.path().join("layout"));
    (tmp, digest)
}

#[track_caller]
fn assert_same_build(base: &(tempfile::TempDir, String), other: &Path, other_digest: &str) {
    assert_eq!(base.1, other_digest, "digest changed");
    assert_same_layout(&base.0.path().join("layout"), other);
}

fn layer_entries(layout: &Path) -> Vec<TarEntry> {
    let l = check_layout(layout);
    assert_eq!(l.layers.len(), 1);
    tar_entries(&decompress(&l.layers[0].0, &l.layers[0].1))
}

#[test]
fn layer_holds_what_the_recipe_says() {
    let base = baseline();
    let layout = base.0.path().join("layout");
    let l = check_layout(&layout);
    assert_eq!(l.manifest_digest, base.1);
    let entries = layer_entries(&layout);
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are in byte order");
    let get = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p} missing from {paths:?}"))
    };
    for e in &entries {
        assert_eq!(e.mtime, EPOCH, "{} mtime is not the epoch", e.path);
    }
    let tool = get("opt/app/bin/tool");
    assert_eq!(
        (tool.kind, tool.mode, tool.uid, tool.gid),
        ('-', 0o755, 1000, 1000)
    );
    assert_eq!(tool.data, b"#!/bin/sh\necho tool\n");
    assert_eq!(get("opt/app/share/doc/readme.txt").mode, 0o644);
    assert_eq!(get("opt/app/share/doc/").kind, 'd');
    assert_eq!(get("opt/app/empty/").kind, 'd');
    // The hard link's content sits on the name that sorts first.
    let hard = get("opt/app/share/hard-a.txt");
    assert_eq!(hard.kind, 'h');
    assert_eq!(hard.link.as_deref(), Some("opt/app/bin/hard-b.txt"));
    assert_eq!(get("opt/app/bin/hard-b.txt").data, b"shared inode\n");
    let link = get("opt/app/lib/data");
    assert_eq!(
        (link.kind, link.link.as_deref()),
        ('l', Some("../share/data.bin"))
    );
    assert_eq!(
        get("opt/app/hostname").link.as_deref(),
        Some("/etc/hostname")
    );
    let config = get("etc/app/config.txt");
    assert_eq!((config.mode, config.uid, config.gid), (0o600, 0, 0));
    assert_eq!(get("etc/app/motd").data, b"welcome\n");
    let cache = get("var/cache/app/");
    assert_eq!((cache.mode, cache.uid, cache.gid), (0o750, 1000, 1000));
    assert_eq!(
        get("usr/bin/tool").link.as_deref(),
        Some("/opt/app/bin/tool")
    );
    // Implied parents get fixed modes and root ownership.
    let usr = get("usr/");
    assert_eq!((usr.kind, usr.mode, usr.uid, usr.gid), ('d', 0o755, 0, 0));
    let passwd = String::from_utf8(get("etc/passwd").data.clone()).unwrap();
    let uids: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').nth(2).unwrap())
        .collect();
    assert!(
        uids.contains(&"1000") && uids.contains(&"65532"),
        "{passwd}"
    );
    let mut sorted_uids: Vec<u32> = uids.iter().map(|u| u.parse().unwrap()).collect();
    sorted_uids.sort();
    assert_eq!(
        uids.iter()
            .map(|u| u.parse::<u32>().unwrap())
            .collect::<Vec<_>>(),
        sorted_uids,
        "passwd is sorted by uid"
    );
    assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
    let group = String::from_utf8(get("etc/group").data.clone()).unwrap();
    assert!(group.contains("nonroot:x:65532:"), "{group}");
    assert_eq!(get("home/nonroot/").uid, 65532);

    let c = &l.config;
    assert_eq!(c["created"], "2023-11-14T22:13:20Z");
    assert_eq!(c["architecture"], "amd64");
    assert_eq!(c["os"], "linux");
    let cfg = &c["config"];
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/usr/bin/tool"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["--serve"]));
    assert_eq!(
        cfg["Env"],
        serde_json::json!(["A_FIRST=a", "PATH=/usr/bin:/bin", "Z_LAST=z"])
    );
    assert_eq!(cfg["WorkingDir"], "/opt/app");
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["StopSignal"], "SIGTERM");
    assert_eq!(cfg["Labels"]["org.example.a"], "1");
    assert_eq!(
        cfg["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(
        cfg["Volumes"],
        serde_json::json!({"/data": {}, "/var/cache/app": {}})
    );
    let ann = &l.manifest["annotations"];
    assert_eq!(ann["org.example.note"], "fixture");
    assert_eq!(ann["dev.stele.encoding"], "stele-2026.2");
}

#[test]
fn same_recipe_twice_is_byte_identical() {
    let base = baseline();
    let again = base.0.path().join("again");
    let d = build(&base.0.path().join("src/recipe.toml"), &again);
    assert_same_build(&base, &again, &d);
}

#[test]
fn umask_does_not_reach_the_bytes() {
    let base = baseline();
    // Source files made under umask 077 (copied without keeping modes), and
    // stele itself run under it.
    let other = tempdir();
    let src = other.path().join("src");
    let r = run(with_umask(
        std::process::Command::new("cp")
            .args(["-R", "--preserve=links"])
            .arg(base.0.path().join("src"))
            .arg(&src),
        0o077,
    ));
    r.expect_ok();
    let m = fs::metadata(src.join("app/share/doc/readme.txt")).unwrap();
    assert_eq!(
        m.permissions().mode() & 0o777,
        0o600,
        "the copy took the umask"
    );
    assert_eq!(
        fs::metadata(src.join("app/share")).unwrap().mode() & 0o777,
        0o700
    );
    assert_eq!(
        fs::metadata(src.join("app/bin/hard-b.txt"))
            .unwrap()
            .nlink(),
        2
    );
    let out = other.path().join("layout");
    let r = run(with_umask(
        stele()
            .env_remove("SOURCE_DATE_EPOCH")
            .env("XDG_CACHE_HOME", other.path().join("cache"))
            .arg("build")
            .arg(src.join("recipe.toml"))
            .arg("-o")
            .arg(&out),
        0o077,
    ));
    r.expect_ok();
    assert_same_build(&base, &out, r.last_line());
}

#[test]
fn timezone_and_locale_do_not_reach_the_bytes() {
    let base = baseline();
    let src = base.0.path().join("src/recipe.toml");
    for (i, envs) in [
        vec![("TZ", "Asia/Tokyo")],
        vec![("TZ", "America/St_Johns")],
        vec![("LANG", "tr_TR.UTF-8"), ("LC_ALL", "tr_TR.UTF-8")],
        vec![("LANG", "C"), ("LC_ALL", "POSIX")],
    ]
    .into_iter()
    .enumerate()
    {
        let out = base.0.path().join(format!("env-{i}"));
        let r = run(stele()
            .envs(envs.clone())
            .arg("build")
            .arg(&src)
            .arg("-o")
            .arg(&out));
        r.expect_ok();
        assert_same_build(&base, &out, r.last_line());
    }
}

#[test]
fn working_directory_does_not_reach_the_bytes() {
    let base = baseline();
    let src = base.0.path().join("src");
    // Relative recipe path from its own folder, from its parent, and an
    // absolute path from the file system root.
    for (i, (cwd, recipe)) in [
        (src.clone(), "recipe.toml".to_string()),
        (base.0.path().to_path_buf(), "src/recipe.toml".to_string()),
        ("/".into(), src.join("recipe.toml").display().to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        let out = base.0.path().join(format!("cwd-{i}"));
        let r = run(stele()
            .current_dir(&cwd)
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(&out));
        r.expect_ok();
        assert_same_build(&base, &out, r.last_line());
    }
}

#[test]
fn default_output_is_beside_the_recipe_not_the_working_directory() {
    let base = baseline();
    let src = base.0.path().join("src");
    let elsewhere = tempdir();
    let r = run(stele()
        .current_dir(elsewhere.path())
        .arg("build")
        .arg(src.join("recipe.toml")));
    r.expect_ok();
    assert!(!elsewhere.path().join("out").exists());
    assert_same_build(&base, &src.join("out/repro"), r.last_line());
}

#[test]
fn source_mtimes_do_not_reach_the_bytes() {
    let base = baseline();
    let src = base.0.path().join("src");
    let r = run(std::process::Command::new("find").arg(&src).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        "2001-02-03 04:05:06 UTC",
        "{}",
        "+",
    ]));
    r.expect_ok();
    let m = fs::symlink_metadata(src.join("app/lib/data")).unwrap();
    assert_eq!(
        m.mtime(),
        981_173_106,
        "touch changed the symlink's own mtime"
    );
    assert_eq!(
        fs::metadata(src.join("app/bin/tool")).unwrap().mtime(),
        981_173_106
    );
    let out = base.0.path().join("touched");
    let d = build(&src.join("recipe.toml"), &out);
    assert_same_build(&base, &out, &d);
}

#[test]
fn creation_order_does_not_reach_the_bytes() {
    let base = baseline();
    let other = tempdir();
    let src = other.path().join("src");
    populate(&src, true);
    let out = other.path().join("layout");
    let d = build(&src.join("recipe.toml"), &out);
    assert_same_build(&base, &out, &d);
}

#[test]
fn source_date_epoch_overrides_the_recipe_epoch() {
    let base = baseline();
    let recipe = base.0.path().join("src/recipe.toml");
    let out = base.0.path().join("sde");
    let r = run(stele()
        .env("SOURCE_DATE_EPOCH", "1234567890")
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(&out));
    r.expect_ok();
    assert_ne!(
        r.last_line(),
        base.1,
        "a different epoch gives a different image"
    );
    let l = check_layout(&out);
    assert_eq!(l.manifest_digest, r.last_line());
    assert_eq!(l.config["created"], "2009-02-13T23:31:30Z");
    for h in l.config["history"].as_array().unwrap() {
        assert_eq!(h["created"], "2009-02-13T23:31:30Z");
    }
    for e in layer_entries(&out) {
        assert_eq!(e.mtime, 1_234_567_890, "{}", e.path);
    }

    // The same value as the recipe's epoch gives the recipe's image.
    let same = base.0.path().join("sde-same");
    let r = run(stele()
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(&same));
    r.expect_ok();
    assert_same_build(&base, &same, r.last_line());
}

#[test]
fn invalid_source_date_epoch_is_refused() {
    let base = baseline();
    let recipe = base.0.path().join("src/recipe.toml");
    for bad in ["yesterday", "-5", "12.5", "0x10"] {
        let out = base.0.path().join("bad-sde");
        let r = run(stele()
            .env("SOURCE_DATE_EPOCH", bad)
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(&out));
        r.expect_fail();
        assert!(
            r.stderr.contains("SOURCE_DATE_EPOCH") && r.stderr.contains(bad),
            "{bad}: {}",
            r.stderr
        );
        assert!(!out.exists(), "{bad}: output written");
        assert!(r.stdout.trim().is_empty(), "{bad}: printed {}", r.stdout);
    }
}

#[test]
fn each_compression_writes_a_valid_layout() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let mut diff_ids = Vec::new();
    for (name, media_type) in [
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("none", "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let recipe = src.join(format!("{name}.toml"));
        let text = RECIPE.replace(
            "compression = \"gzip\"",
            &format!("compression = \"{name}\""),
        );
        assert!(text.contains(&format!("compression = \"{name}\"")));
        fs::write(&recipe, text).unwrap();
        let out = tmp.path().join(name);
        let digest = build(&recipe, &out);
        let l = check_layout(&out);
        assert_eq!(l.manifest_digest, digest);
        let (mt, bytes) = &l.layers[0];
        assert_eq!(mt, media_type, "{name}");
        let tar = decompress(mt, bytes);
        let diff_id = sha256_digest(&tar);
        assert_eq!(
            l.config["rootfs"]["diff_ids"][0],
            diff_id.as_str(),
            "{name}"
        );
        assert_eq!(l.config["rootfs"]["type"], "layers");
        match name {
            // RFC 1952: no FNAME/FCOMMENT flags, MTIME 0, OS 255 (unknown).
            "gzip" => {
                assert_eq!(&bytes[..3], &[0x1f, 0x8b, 8]);
                assert_eq!(bytes[3], 0, "gzip flags");
                assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip mtime");
                assert_eq!(bytes[9], 255, "gzip OS");
            }
            "zstd" => assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd]),
            _ => assert_eq!(&tar, bytes),
        }
        assert!(tar_entries(&tar)
            .iter()
            .any(|e| e.path == "opt/app/bin/tool"));
        diff_ids.push(diff_id);
    }
    assert!(
        diff_ids.windows(2).all(|w| w[0] == w[1]),
        "compression must not change the tar: {diff_ids:?}"
    );
}

#[test]
fn existing_layout_is_replaced() {
    let base = baseline();
    let layout = base.0.path().join("layout");
    // A different image built over the first one replaces it entirely.
    let other = base.0.path().join("src/other.toml");
    fs::write(
        &other,
        "[image]\nname = \"other\"\n[[paths]]\npath = \"/x\"\nkind = \"dir\"\n",
    )
    .unwrap();
    let d = build(&other, &layout);
    assert_ne!(d, base.1);
    let l = check_layout(&layout);
    assert_eq!(l.manifest_digest, d);
    assert!(leftovers(base.0.path(), ".stele-").is_empty());
    // And the first recipe again gives back its exact layout.
    let d = build(&base.0.path().join("src/recipe.toml"), &layout);
    assert_eq!(d, base.1);
    let fresh = base.0.path().join("fresh");
    build(&base.0.path().join("src/recipe.toml"), &fresh);
    assert_same_layout(&fresh, &layout);
    // An empty folder may be filled.
    let empty = base.0.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert_eq!(
        build(&base.0.path().join("src/recipe.toml"), &empty),
        base.1
    );
}

#[test]
fn foreign_output_is_left_untouched() {
    let base = baseline();
    let recipe = base.0.path().join("src/recipe.toml");
    let parent = tempdir();
    let dir = parent.path().join("mine");
    write_file(&dir.join("notes.txt"), "precious", 0o644);
    write_file(&dir.join("sub/more.txt"), "also precious", 0o644);
    let file = parent.path().join("a-file");
    write_file(&file, "a file", 0o644);
    let before = snapshot(parent.path());
    for target in [&dir, &file] {
        let r = run(stele().arg("build").arg(&recipe).arg("-o").arg(target));
        r.expect_fail();
        assert!(
            r.stderr.contains(target.to_str().unwrap()),
            "error names the output: {}",
            r.stderr
        );
        assert_eq!(snapshot(parent.path()), before, "output untouched");
        assert!(leftovers(parent.path(), ".stele-").is_empty());
    }
}

#[test]
fn digest_file_matches_stdout() {
    let base = baseline();
    let digest_file = base.0.path().join("digest.txt");
    let r = run(stele()
        .arg("build")
        .arg(base.0.path().join("src/recipe.toml"))
        .arg("-o")
        .arg(base.0.path().join("with-file"))
        .arg("--digest-file")
        .arg(&digest_file));
    r.expect_ok();
    let written = fs::read_to_string(&digest_file).unwrap();
    assert_eq!(written, format!("{}\n", r.last_line()));
    assert_eq!(r.last_line(), base.1);
    // Progress goes to stderr: stdout is the digest alone.
    assert_eq!(r.stdout, format!("{}\n", base.1));
}

#[test]
fn layout_is_readable_by_other_users() {
    // Registries and runtimes often run as another user; under the usual
    // umask 022 every file of the layout must be readable by them.
    let base = baseline();
    let layout = base.0.path().join("shared");
    let r = run(with_umask(
        stele()
            .env_remove("SOURCE_DATE_EPOCH")
            .env("XDG_CACHE_HOME", base.0.path().join("cache"))
            .arg("build")
            .arg(base.0.path().join("src/recipe.toml"))
            .arg("-o")
            .arg(&layout),
        0o022,
    ));
    r.expect_ok();
    for entry in walkdir::WalkDir::new(&layout) {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode();
        let want = if entry.file_type().is_dir() {
            0o055
        } else {
            0o044
        };
        assert_eq!(
            mode & want,
            want,
            "{} is {:o}, not readable by other users",
            entry.path().display(),
            mode & 0o7777
        );
    }
}
