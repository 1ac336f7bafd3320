//! A recipe over a base layout: the base's blobs pass through untouched,
//! its config is inherited the way a Dockerfile's FROM image is, its
//! account files merge with the recipe's, and `absent` removes a path.

use std::fs;

use crate::support::*;

const BASE: &str = r#"
[image]
name = "base"
epoch = 1700000000

[[paths]]
path = "/etc/motd"
kind = "file"
content = "from the base\n"

[[paths]]
path = "/tmp"
kind = "dir"
mode = "1777"

[[accounts.users]]
name = "nonroot"
uid = 65532

[config]
entrypoint = ["/bin/app"]
cmd = ["--serve"]
env = { LANG = "C.UTF-8", PATH = "/app/bin:/usr/bin" }
labels = { "org.example.layer" = "base" }
exposed_ports = ["8080/tcp"]
"#;

const CHILD: &str = r#"
[image]
name = "child"
epoch = 1700000000

[base]
layout = "base-layout@DIGEST"

[[paths]]
path = "/tmp/x/y"
kind = "file"
content = "y\n"

[[paths]]
path = "/etc/motd"
kind = "absent"

[[accounts.users]]
name = "worker"
uid = 1000

[config]
cmd = ["--once"]
env = { MODE = "child" }
labels = { "org.example.child" = "yes" }
"#;

#[test]
fn child_inherits_and_shares_the_base_blobs() {
    let tmp = tempdir();
    let dir = tmp.path();
    fs::write(dir.join("base.toml"), BASE).unwrap();
    let base_digest = build(&dir.join("base.toml"), &dir.join("base-layout"));
    let base = check_layout(&dir.join("base-layout"));

    fs::write(
        dir.join("child.toml"),
        CHILD.replace("DIGEST", &base_digest),
    )
    .unwrap();
    let child_digest = build(&dir.join("child.toml"), &dir.join("child-layout"));
    let child = check_layout(&dir.join("child-layout"));
    assert_ne!(child_digest, base_digest);

    // The base layer passes through byte for byte, then one layer of ours.
    assert_eq!(child.layers.len(), 2);
    assert_eq!(child.layers[0], base.layers[0]);
    assert_eq!(
        child.manifest["layers"][0], base.manifest["layers"][0],
        "same descriptor"
    );
    assert_eq!(
        child.config["rootfs"]["diff_ids"][0],
        base.config["rootfs"]["diff_ids"][0]
    );
    let ann = &child.manifest["annotations"];
    assert_eq!(
        ann["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );

    // Config: CMD replaced, ENTRYPOINT kept, env and labels merged.
    let c = &child.config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/app"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--once"]));
    assert_eq!(
        c["Env"],
        serde_json::json!(["LANG=C.UTF-8", "PATH=/app/bin:/usr/bin", "MODE=child"])
    );
    assert_eq!(c["Labels"]["org.example.layer"], "base");
    assert_eq!(c["Labels"]["org.example.child"], "yes");
    assert!(c["ExposedPorts"].get("8080/tcp").is_some(), "{c}");
    assert_eq!(child.config["history"].as_array().unwrap().len(), 2);

    // Our layer: /tmp repeated with the base's 1777, accounts merged with
    // the base's, and a whiteout for the removed file.
    let entries = tar_entries(&decompress(&child.layers[1].0, &child.layers[1].1));
    let get = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p} not in {entries:?}"))
    };
    assert_eq!(get("tmp/").mode, 0o1777);
    assert_eq!(get("etc/.wh.motd").data, b"");
    let passwd = String::from_utf8(get("etc/passwd").data.clone()).unwrap();
    assert!(passwd.contains("nonroot:x:65532:"), "{passwd}");
    assert!(passwd.contains("worker:x:1000:"), "{passwd}");
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
}

#[test]
fn a_base_pin_that_does_not_match_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path();
    fs::write(dir.join("base.toml"), BASE).unwrap();
    build(&dir.join("base.toml"), &dir.join("base-layout"));
    let wrong = sha256_digest(b"not the base");
    fs::write(dir.join("child.toml"), CHILD.replace("DIGEST", &wrong)).unwrap();
    let r = run(stele()
        .arg("build")
        .arg(dir.join("child.toml"))
        .arg("-o")
        .arg(dir.join("child-layout")));
    r.expect_fail();
    assert!(r.stderr.contains("child.toml:7:10"), "{}", r.stderr);
    assert!(r.stderr.contains(&wrong), "{}", r.stderr);
    assert!(!dir.join("child-layout").exists());
}

/// A rebuild takes the base's layers from the views the first build
/// cached (no base layer decompressed), and makes the same image; a
/// damaged view is a miss, and a base blob changed since is still caught
/// when it is copied out.
#[test]
fn a_rebuild_reads_no_base_layer_and_the_view_cache_never_decides_the_image() {
    let tmp = tempdir();
    let dir = tmp.path();
    let cache = dir.join("cache");
    fs::write(dir.join("base.toml"), BASE).unwrap();
    let base_digest = build(&dir.join("base.toml"), &dir.join("base-layout"));
    fs::write(
        dir.join("child.toml"),
        CHILD.replace("DIGEST", &base_digest),
    )
    .unwrap();
    let child = |out: &str| {
        run(stele()
            .arg("build")
            .arg(dir.join("child.toml"))
            .arg("-o")
            .arg(dir.join(out))
            .arg("--cache-dir")
            .arg(&cache))
    };
    let first = child("one");
    first.expect_ok();
    assert!(
        first
            .stderr
            .contains("base layers: 0 known from the cache, 1 read"),
        "{}",
        first.stderr
    );
    let second = child("two");
    second.expect_ok();
    assert!(
        second
            .stderr
            .contains("base layers: 1 known from the cache, 0 read"),
        "{}",
        second.stderr
    );
    assert_eq!(first.last_line(), second.last_line());
    assert_same_layout(&dir.join("one"), &dir.join("two"));
    let counted = run(stele()
        .arg("build")
        .arg(dir.join("child.toml"))
        .arg("-o")
        .arg(dir.join("counted"))
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--json"));
    counted.expect_ok();
    let doc = json(counted.stdout.as_bytes());
    assert_eq!(
        doc["base_layers"],
        serde_json::json!({ "cached": 1, "read": 0 }),
        "{doc}"
    );

    // Damaged records: read again, same image.
    let views = cache.join("base-views/v1");
    let mut damaged = 0;
    for e in fs::read_dir(&views).unwrap() {
        let p = e.unwrap().path();
        // Pointers are named by the layer digest; `.stamp` files beside
        // them say when the base's blob file was last checked.
        if p.extension().is_some() {
            continue;
        }
        fs::write(&p, "sha256:0000\n").unwrap();
        damaged += 1;
    }
    assert_eq!(damaged, 1, "one view for the base's one layer");
    let third = child("three");
    third.expect_ok();
    assert!(
        third
            .stderr
            .contains("base layers: 0 known from the cache, 1 read"),
        "{}",
        third.stderr
    );
    assert_eq!(first.last_line(), third.last_line());

    // The base's layer blob replaced by other bytes of its size: the view
    // still answers, but the copy into the output checks the bytes.
    let layer = check_layout(&dir.join("base-layout")).manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = dir.join("base-layout/blobs/sha256").join(&layer);
    let len = fs::metadata(&blob).unwrap().len() as usize;
    fs::write(&blob, vec![0u8; len]).unwrap();
    let fourth = child("four");
    fourth.expect_fail();
    assert!(fourth.stderr.contains(&layer), "{}", fourth.stderr);
    assert!(!dir.join("four").exists());
}
