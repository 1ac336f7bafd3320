//! Our layouts read by other implementations: skopeo and umoci must see
//! what we wrote, oci-image-tool must accept it, and podman must run an
//! image whose entrypoint is a static binary compiled here.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::podman::{compile_hello, lowercase_tempdir, podman_run};
use crate::support::*;

const FILES_RECIPE: &str = r#"
[image]
name = "parts"
epoch = 1700000000
compression = "COMPRESSION"

[[files]]
src = "app"
dest = "/app"

[[paths]]
path = "/var/lib/parts"
kind = "dir"
mode = "0750"
owner = "65532:65532"

[[paths]]
path = "/etc/parts.conf"
kind = "file"
mode = "0640"
content = "answer = 42\n"

[[paths]]
path = "/usr/bin/parts"
kind = "symlink"
target = "/app/bin/run"

[config]
entrypoint = ["/usr/bin/parts"]
env = { GREETING = "hi" }
labels = { "org.example.kind" = "parts" }
user = "65532:65532"
"#;

/// A recipe folder with a small tree, built with `compression`.
fn build_files_image(tmp: &Path, compression: &str) -> (PathBuf, String) {
    let dir = tmp.join(format!("src-{compression}"));
    write_file(&dir.join("app/bin/run"), "#!/bin/sh\necho run\n", 0o755);
    write_file(&dir.join("app/share/msg.txt"), "message\n", 0o644);
    std::os::unix::fs::symlink("../share/msg.txt", dir.join("app/bin/msg")).unwrap();
    fs::hard_link(dir.join("app/share/msg.txt"), dir.join("app/msg-hard")).unwrap();
    fs::write(
        dir.join("recipe.toml"),
        FILES_RECIPE.replace("COMPRESSION", compression),
    )
    .unwrap();
    let out = tmp.join(format!("layout-{compression}"));
    let digest = build(&dir.join("recipe.toml"), &out);
    (out, digest)
}

#[test]
fn skopeo_reads_our_digest_and_config() {
    if !have_tool("skopeo") {
        return;
    }
    let tmp = tempdir();
    for compression in ["gzip", "zstd", "none"] {
        let (layout, digest) = build_files_image(tmp.path(), compression);
        let transport = format!("oci:{}:latest", layout.display());
        let r = run(Command::new("skopeo").arg("inspect").arg(&transport));
        r.expect_ok();
        let v = json(r.stdout.as_bytes());
        assert_eq!(v["Digest"], digest.as_str(), "{compression}");
        assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
        assert_eq!(v["Labels"]["org.example.kind"], "parts");
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Architecture"], "amd64");
        let l = check_layout(&layout);
        let layers: Vec<&str> = l.manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"].as_str().unwrap())
            .collect();
        assert_eq!(v["Layers"], serde_json::json!(layers), "{compression}");

        // --raw returns the manifest bytes as stored: skopeo hashes the same.
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(&transport)
            .output()
            .unwrap();
        assert!(raw.status.success());
        assert_eq!(sha256_digest(&raw.stdout), digest);

        let r = run(Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(&transport));
        r.expect_ok();
        let c = json(r.stdout.as_bytes());
        assert_eq!(c["config"]["User"], "65532:65532");
        assert_eq!(
            c["config"]["Entrypoint"],
            serde_json::json!(["/usr/bin/parts"])
        );
    }
}

#[test]
fn umoci_unpacks_the_files_we_wrote() {
    if !have_tool("umoci") {
        return;
    }
    let tmp = tempdir();
    // umoci 0.4.7 (Debian bookworm) refuses zstd layers by media type;
    // skopeo and podman cover zstd.
    for compression in ["gzip", "none"] {
        let (layout, digest) = build_files_image(tmp.path(), compression);
        let image = format!("{}:latest", layout.display());
        let bundle = tmp.path().join(format!("bundle-{compression}"));
        let r = run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(&image)
            .arg(&bundle));
        r.expect_ok();
        let root = bundle.join("rootfs");
        let mode = |p: &str| {
            fs::symlink_metadata(root.join(p))
                .unwrap_or_else(|e| panic!("{compression}: {p}: {e}"))
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(
            fs::read(root.join("app/bin/run")).unwrap(),
            b"#!/bin/sh\necho run\n"
        );
        assert_eq!(mode("app/bin/run"), 0o755);
        assert_eq!(mode("app/share/msg.txt"), 0o644);
        assert_eq!(mode("app"), 0o755);
        assert_eq!(mode("var/lib/parts"), 0o750);
        assert_eq!(mode("etc/parts.conf"), 0o640);
        assert_eq!(
            fs::read(root.join("etc/parts.conf")).unwrap(),
            b"answer = 42\n"
        );
        assert_eq!(
            fs::read_link(root.join("app/bin/msg")).unwrap(),
            Path::new("../share/msg.txt")
        );
        assert_eq!(
            fs::read_link(root.join("usr/bin/parts")).unwrap(),
            Path::new("/app/bin/run")
        );
        assert_eq!(fs::read(root.join("app/bin/msg")).unwrap(), b"message\n");
        let a = fs::metadata(root.join("app/msg-hard")).unwrap();
        let b = fs::metadata(root.join("app/share/msg.txt")).unwrap();
        assert_eq!(
            a.ino(),
            b.ino(),
            "{compression}: the hard link stays one inode"
        );
        // umoci keeps its own record of what it unpacked.
        let meta = json(&fs::read(bundle.join("umoci.json")).unwrap());
        assert_eq!(
            meta["from_descriptor_path"]["descriptor_walk"][0]["digest"],
            digest.as_str(),
            "{compression}: {meta}"
        );
        let runtime = json(&fs::read(bundle.join("config.json")).unwrap());
        assert!(runtime["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("GREETING=hi")));
        assert!(runtime["process"]["args"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("/usr/bin/parts")));

        let r = run(Command::new("umoci")
            .args(["stat", "--json", "--image"])
            .arg(&image));
        r.expect_ok();
        let stat = json(r.stdout.as_bytes());
        let l = check_layout(&layout);
        let history = stat["history"].as_array().unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["layer"], l.manifest["layers"][0]);
        assert_eq!(history[0]["diff_id"], l.config["rootfs"]["diff_ids"][0]);
    }
}

#[test]
fn oci_image_tool_validates_the_layout() {
    if !have_tool("oci-image-tool") {
        return;
    }
    let tmp = tempdir();
    // This oci-image-tool does not implement `--type imageLayout`; `image`
    // validates a layout folder (index, manifest, config, layer blobs).
    let (_, digest) = build_files_image(tmp.path(), "gzip");
    // This oci-image-tool (2017) predates OCI 1.1 artifacts: its ref filter
    // counts the attestations index.json lists beside the image as
    // matches. It validates the image, so the image is built alone.
    let layout = tmp.path().join("layout-unattested");
    let r = run(stele()
        .arg("build")
        .arg(tmp.path().join("src-gzip/recipe.toml"))
        .args(["--attest", "none", "-o"])
        .arg(&layout));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
    let r = run(Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=latest"])
        .arg(&layout));
    r.expect_ok();
    assert!(r.stdout.contains("Validation succeeded"), "{}", r.stdout);

    // And it notices damage, so the pass above means something.
    let l = check_layout(&layout);
    let config = l.manifest["config"]["digest"].as_str().unwrap();
    let path = layout.join("blobs/sha256").join(&config[7..]);
    let mut bytes = fs::read(&path).unwrap();
    bytes.push(b' ');
    fs::write(&path, bytes).unwrap();
    let r = run(Command::new("oci-image-tool")
        .args(["validate", "--type", "image"])
        .arg(&layout));
    r.expect_fail();
}

#[test]
fn podman_runs_a_static_entrypoint() {
    if !have_tool("podman") || !have_tool("runc") {
        return;
    }
    let tmp = lowercase_tempdir();
    let dir = tmp.path().join("src");
    let Some(_) = compile_hello(&dir) else { return };
    // The binary is copied without a mode: its executable bit gives 0755.
    assert_ne!(
        fs::metadata(dir.join("hello"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0
    );
    let recipe = |name: &str, compression: &str, user: &str| {
        format!(
            r#"
[image]
name = "{name}"
compression = "{compression}"

[[files]]
src = "hello"
dest = "/usr/local/bin/hello"

[[paths]]
path = "/etc/motd"
kind = "file"
content = "motd from the recipe\n"

[[paths]]
path = "/srv"
kind = "dir"

[[accounts.users]]
name = "nonroot"
uid = 65532

[[accounts.groups]]
name = "nonroot"
gid = 65532

[config]
entrypoint = ["/usr/local/bin/hello"]
cmd = ["first", "second arg"]
env = {{ GREETING = "bonjour" }}
workdir = "/srv"
{user}
"#
        )
    };
    fs::write(dir.join("root.toml"), recipe("as-root", "gzip", "")).unwrap();
    fs::write(
        dir.join("nonroot.toml"),
        recipe("as-nonroot", "zstd", "user = \"65532:65532\""),
    )
    .unwrap();
    let storage = tmp.path().join("p");
    for (file, uid) in [("root.toml", 0), ("nonroot.toml", 65532)] {
        let layout = tmp.path().join(file.replace(".toml", ""));
        build(&dir.join(file), &layout);
        let r = podman_run(&storage, &format!("oci:{}:latest", layout.display()));
        r.expect_ok();
        let want = format!(
            "hello from stele\nuid={uid} gid={uid}\ncwd=/srv\ngreeting=bonjour\narg=first\narg=second arg\nmotd=motd from the recipe\n"
        );
        assert_eq!(r.stdout, want, "{file}: stderr: {}", r.stderr);
    }
}
