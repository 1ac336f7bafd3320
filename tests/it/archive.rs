//! `stele build --format oci-archive | docker-archive`: the same image as
//! the layout (same digest line, same blobs), byte-reproducible archives
//! that replace only their own kind, read by skopeo, loaded and run by
//! podman.

use std::fs;
use std::process::Command;

use crate::support::archive::{build_three, by_name, members};
use crate::support::podman::{compile_hello, lowercase_tempdir, podman, podman_run};
use crate::support::tree::{populate, EPOCH};
use crate::support::*;
use stele::source::archive::open_archive;
use stele::source::layout::Selector;

#[test]
fn formats_share_the_digest_and_the_blobs() {
    let t = build_three();
    let l = check_layout(&t.layout);
    assert_eq!(l.manifest_digest, t.digest);

    // The oci-archive is the layout, file for file, in a fixed order.
    let oci = members(&t.oci);
    let names: Vec<&str> = oci.iter().map(|m| m.name.as_str()).collect();
    let mut blob_names: Vec<String> = fs::read_dir(t.layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("blobs/sha256/{}", e.unwrap().file_name().to_str().unwrap()))
        .collect();
    blob_names.sort();
    let mut want = vec!["oci-layout", "index.json", "blobs/", "blobs/sha256/"];
    want.extend(blob_names.iter().map(String::as_str));
    assert_eq!(names, want);
    assert_eq!(by_name(&oci), snapshot(&t.layout));
    for m in &oci {
        let mode = if m.kind == 'd' { 0o755 } else { 0o644 };
        assert_eq!(
            (m.mode, m.uid, m.gid, m.mtime),
            (mode, 0, 0, EPOCH),
            "{}",
            m.name
        );
        assert_eq!(m.owner_names, (vec![], vec![]), "{}", m.name);
    }

    // The docker-archive: manifest.json and repositories over the same
    // image blobs (no attestations), and an index naming the same manifest.
    let docker = members(&t.docker);
    let files = by_name(&docker);
    let layout_files = snapshot(&t.layout);
    let item = &json(&files["manifest.json"])[0];
    let config = l.manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(item["Config"], format!("blobs/sha256/{}", &config[7..]));
    assert_eq!(item["RepoTags"], serde_json::json!(["repro:latest"]));
    let layers: Vec<String> = l.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("blobs/sha256/{}", &d["digest"].as_str().unwrap()[7..]))
        .collect();
    assert_eq!(item["Layers"], serde_json::json!(layers));
    let top_diff_id = l.config["rootfs"]["diff_ids"][0].as_str().unwrap();
    assert_eq!(
        json(&files["repositories"]),
        serde_json::json!({"repro": {"latest": &top_diff_id[7..]}})
    );
    assert_eq!(files["oci-layout"], layout_files["oci-layout"]);
    let index = json(&files["index.json"]);
    let only = &index["manifests"].as_array().unwrap()[..];
    assert_eq!(only.len(), 1, "{index}");
    assert_eq!(only[0]["digest"], t.digest.as_str());
    assert_eq!(
        only[0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let mut image_blobs = vec![t.digest.clone(), config.to_string()];
    image_blobs.extend(
        l.manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"].as_str().unwrap().to_string()),
    );
    image_blobs.sort();
    let docker_blobs: Vec<String> = docker
        .iter()
        .filter_map(|m| m.name.strip_prefix("blobs/sha256/"))
        .filter(|h| !h.is_empty())
        .map(|h| format!("sha256:{h}"))
        .collect();
    assert_eq!(docker_blobs, image_blobs);
    for d in &docker_blobs {
        let name = format!("blobs/sha256/{}", &d[7..]);
        assert!(files[&name] == layout_files[&name], "{name} differs");
    }
}

#[test]
fn archives_are_byte_identical_across_builds_umask_and_tz() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let recipe = src.join("recipe.toml");
    for format in ["oci-archive", "docker-archive"] {
        let a = tmp.path().join(format!("a-{format}.tar"));
        let b = tmp.path().join(format!("b-{format}.tar"));
        let digest = build_with(&recipe, &a, &["--format", format]);
        // Built again over itself: an earlier archive of its kind is replaced.
        assert_eq!(build_with(&recipe, &a, &["--format", format]), digest);
        let r = run(with_umask(
            stele()
                .arg("build")
                .arg(&recipe)
                .args(["--format", format, "-o"])
                .arg(&b)
                .env("XDG_CACHE_HOME", tmp.path().join("cache-umask-077"))
                .env_remove("SOURCE_DATE_EPOCH")
                .env("TZ", "Pacific/Kiritimati")
                .env("LC_ALL", "C.UTF-8"),
            0o077,
        ));
        r.expect_ok();
        assert_eq!(r.last_line(), digest);
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "{format}: two builds differ"
        );
        assert!(leftovers(tmp.path(), ".stele-").is_empty());
    }
}

#[test]
fn outputs_that_are_not_ours_are_not_replaced() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let recipe = src.join("recipe.toml");
    let notes = tmp.path().join("notes.tar");
    fs::write(&notes, "precious").unwrap();
    let oci = tmp.path().join("oci.tar");
    build_with(&recipe, &oci, &["--format", "oci-archive"]);
    for (format, dest) in [
        ("oci-archive", &notes),
        ("docker-archive", &notes),
        ("docker-archive", &oci),
        ("oci-archive", &src),
    ] {
        let r = run(stele()
            .arg("build")
            .arg(&recipe)
            .args(["--format", format, "-o"])
            .arg(dest));
        r.expect_fail();
        assert!(
            r.stderr.contains("refusing to replace") && r.stderr.contains(format),
            "{format}: {}",
            r.stderr
        );
    }
    assert_eq!(fs::read(&notes).unwrap(), b"precious");
    assert!(leftovers(tmp.path(), ".stele-").is_empty());
}

#[test]
fn skopeo_reads_both_archives() {
    if !have_tool("skopeo") {
        return;
    }
    let t = build_three();
    let l = check_layout(&t.layout);
    let layers: Vec<&str> = l.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    // The attestations are images too, to skopeo: name ours by its tag.
    let transport = format!("oci-archive:{}:latest", t.oci.display());
    let r = run(Command::new("skopeo").arg("inspect").arg(&transport));
    r.expect_ok();
    let v = json(r.stdout.as_bytes());
    assert_eq!(v["Digest"], t.digest.as_str());
    assert_eq!(v["Layers"], serde_json::json!(layers));
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(&transport)
        .output()
        .unwrap();
    assert!(raw.status.success());
    assert_eq!(sha256_digest(&raw.stdout), t.digest);

    // Through manifest.json, skopeo makes its own manifest over the
    // decompressed layers: same config, layers named by DiffID.
    let transport = format!("docker-archive:{}", t.docker.display());
    let r = run(Command::new("skopeo").arg("inspect").arg(&transport));
    r.expect_ok();
    let v = json(r.stdout.as_bytes());
    assert_eq!(v["Layers"], l.config["rootfs"]["diff_ids"]);
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    let r = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(&transport));
    r.expect_ok();
    let m = json(r.stdout.as_bytes());
    assert_eq!(m["config"]["digest"], l.manifest["config"]["digest"]);
    let raw_config = Command::new("skopeo")
        .args(["inspect", "--raw", "--config"])
        .arg(&transport)
        .output()
        .unwrap();
    assert!(raw_config.status.success());
    assert_eq!(
        sha256_digest(&raw_config.stdout),
        l.manifest["config"]["digest"].as_str().unwrap()
    );
}

#[test]
fn podman_loads_and_runs_the_docker_archive() {
    if !have_tool("podman") || !have_tool("runc") {
        return;
    }
    let tmp = lowercase_tempdir();
    let dir = tmp.path().join("src");
    let Some(_) = compile_hello(&dir) else { return };
    let recipe = r#"
[image]
name = "team/hello"
tag = "v1"
compression = "COMPRESSION"

[[files]]
src = "hello"
dest = "/usr/local/bin/hello"

[config]
entrypoint = ["/usr/local/bin/hello"]
cmd = ["loaded"]
env = { GREETING = "salut" }
"#;
    let want = "hello from stele\nuid=0 gid=0\ncwd=/\ngreeting=salut\narg=loaded\n";
    for compression in ["gzip", "zstd"] {
        let file = dir.join(format!("{compression}.toml"));
        fs::write(&file, recipe.replace("COMPRESSION", compression)).unwrap();
        // The default output: out/<image name>.tar, folders made for the `/`.
        let r = run(stele()
            .arg("build")
            .arg(&file)
            .args(["--format", "docker-archive"]));
        r.expect_ok();
        let archive = dir.join("out/team/hello.tar");
        assert!(archive.is_file(), "{}", r.stderr);

        // `podman load` names it from the archive; without a registry
        // host in the name, podman's own `localhost/` comes first.
        let storage = tmp.path().join(format!("p-{compression}"));
        let r = run(podman(&storage).arg("load").arg("-i").arg(&archive));
        r.expect_ok();
        assert!(r.stdout.contains("localhost/team/hello:v1"), "{}", r.stdout);
        let r = podman_run(&storage, "localhost/team/hello:v1");
        r.expect_ok();
        assert_eq!(r.stdout, want, "{compression}: {}", r.stderr);

        // The manifest.json side on its own (what docker load reads):
        // compressed layer blobs are accepted and checked by DiffID.
        let storage = tmp.path().join(format!("q-{compression}"));
        let r = run(podman(&storage)
            .arg("pull")
            .arg(format!("docker-archive:{}", archive.display())));
        r.expect_ok();
        let r = podman_run(&storage, "localhost/team/hello:v1");
        r.expect_ok();
        assert_eq!(
            r.stdout, want,
            "{compression} via manifest.json: {}",
            r.stderr
        );
        fs::remove_file(&archive).unwrap();
    }
}

const MULTI: &str = r#"
[image]
name = "team/multi"
platforms = ["linux/amd64", "linux/arm64"]

[[paths]]
path = "/etc/motd"
kind = "file"
content = "hi\n"
"#;

#[test]
fn docker_archive_of_several_platforms_needs_one_named() {
    let tmp = tempdir();
    let recipe = tmp.path().join("multi.toml");
    fs::write(&recipe, MULTI).unwrap();
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .args(["--format", "docker-archive"]));
    r.expect_fail();
    assert!(
        r.stderr.contains("linux/amd64")
            && r.stderr.contains("linux/arm64")
            && r.stderr.contains("--platform"),
        "{}",
        r.stderr
    );
    assert!(
        !tmp.path().join("out").exists(),
        "nothing written on refusal"
    );
    let r = run(stele().arg("build").arg(&recipe).args([
        "--format",
        "docker-archive",
        "--platform",
        "linux/s390x",
    ]));
    r.expect_fail();
    assert!(r.stderr.contains("linux/arm64"), "{}", r.stderr);
    // For an OCI layout or oci-archive, --platform builds a subset
    // (tests/everyday.rs, platform_builds_a_subset_for_oci_outputs).

    let layout = tmp.path().join("layout");
    let digest = build(&recipe, &layout);
    let archive = tmp.path().join("arm64.tar");
    let line = build_with(
        &recipe,
        &archive,
        &["--format", "docker-archive", "--platform", "linux/arm64"],
    );
    assert_eq!(line, digest, "the digest line is the build's, any format");
    let index = json(&blob(&layout, &digest));
    let arm64 = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["platform"]["architecture"] == "arm64")
        .unwrap();
    let opened = open_archive(&archive, None, &Selector::Only).unwrap();
    assert_eq!(
        opened.digest().to_string(),
        arm64["digest"].as_str().unwrap()
    );
    assert_eq!(opened.built.images[0].platform.to_string(), "linux/arm64");
}
