//! `stele diff` over real builds that differ in one input each: the first
//! line names the likely cause, the details name what differs, and the
//! exit status says identical (0), different (1) or unreadable (2).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::edit::*;
use crate::support::tree::{populate, RECIPE};
use crate::support::*;
use serde_json::Value;

fn diff(a: &Path, b: &Path, json_out: bool) -> Run {
    let mut c = stele();
    c.arg("diff").arg(a).arg(b);
    if json_out {
        c.arg("--json");
    }
    run(&mut c)
}

fn first_line(r: &Run) -> &str {
    r.stdout.lines().next().unwrap_or("")
}

/// Builds the tree recipe with `edit` applied to its text (and the source
/// tree) into `dir/name`.
fn variant(dir: &Path, name: &str, edit: impl FnOnce(&Path, String) -> String) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    populate(&src, false);
    let text = edit(&src, RECIPE.to_string());
    fs::write(src.join("recipe.toml"), text).unwrap();
    let out = dir.join(name);
    build(&src.join("recipe.toml"), &out);
    out
}

fn base(dir: &Path) -> PathBuf {
    variant(dir, "base", |_, t| t)
}

#[test]
fn an_image_is_identical_to_itself() {
    let tmp = tempdir();
    let a = base(tmp.path());
    let r = diff(&a, &a, false);
    r.expect_code(0);
    assert!(
        first_line(&r).starts_with("identical: both are sha256:"),
        "{}",
        r.stdout
    );
    // Another build of the same inputs is the same image.
    let again = variant(tmp.path(), "again", |_, t| t);
    diff(&a, &again, false).expect_code(0);
}

#[test]
fn compression_only() {
    let tmp = tempdir();
    let a = base(tmp.path());
    let b = variant(tmp.path(), "zstd", |_, t| {
        t.replace("compression = \"gzip\"", "compression = \"zstd\"")
    });
    let r = diff(&a, &b, false);
    r.expect_code(1);
    assert_eq!(
        first_line(&r),
        "differ: compression only (same DiffIDs, different digests)"
    );
    assert!(
        r.stdout
            .contains("tar+gzip → application/vnd.oci.image.layer.v1.tar+zstd"),
        "{}",
        r.stdout
    );

    let r = diff(&a, &b, true);
    r.expect_code(1);
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["identical"], false);
    assert_eq!(doc["causes"], serde_json::json!(["compression"]));
    // Besides the layer, only the recorded recipe digest differs (the
    // compression is part of the recipe), which is no cause of its own.
    assert!(doc["sections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["title"]
            .as_str()
            .unwrap()
            .starts_with("linux/amd64 layer 1/1")
            || s["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["cause"].is_null()
                    && i["what"]
                        .as_str()
                        .unwrap()
                        .ends_with("dev.stele.recipe.digest"))));
}

#[test]
fn timestamps_only() {
    let tmp = tempdir();
    let a = base(tmp.path());
    let src = tmp.path().join("epoch-src");
    populate(&src, false);
    let b = tmp.path().join("epoch");
    run(stele()
        .env("SOURCE_DATE_EPOCH", "1800000000")
        .arg("build")
        .arg(src.join("recipe.toml"))
        .arg("-o")
        .arg(&b))
    .expect_ok();
    let r = diff(&a, &b, false);
    r.expect_code(1);
    assert!(
        first_line(&r)
            .starts_with("differ: timestamps only (org.opencontainers.image.created, config created, label org.opencontainers.image.created"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("etc/app/config.txt: mtime 1700000000 → mtime 1800000000"),
        "{}",
        r.stdout
    );
    // Every entry's mtime moved: the file section is cut, with a count.
    assert!(r.stdout.contains("  … and "), "{}", r.stdout);
    let doc = json(diff(&a, &b, true).stdout.as_bytes());
    let files = doc["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"] == "linux/amd64 layer 1/1 files")
        .unwrap();
    let listed = files["items"].as_array().unwrap().len();
    assert!(
        listed > stele::verify::report::SECTION_CAP,
        "JSON lists all {listed}"
    );
}

#[test]
fn one_file_is_named() {
    let tmp = tempdir();
    let a = base(tmp.path());
    let b = variant(tmp.path(), "edited", |src, t| {
        write_file(&src.join("app/share/data.bin"), b"other bytes", 0o644);
        t
    });
    let r = diff(&a, &b, false);
    r.expect_code(1);
    assert_eq!(
        first_line(&r),
        "differ: content (1 file differs: opt/app/share/data.bin)"
    );
    assert!(
        r.stdout
            .contains(&format!("content {}", sha256_digest(b"other bytes"))),
        "{}",
        r.stdout
    );
}

#[test]
fn config_only_and_annotations_only() {
    let tmp = tempdir();
    let a = base(tmp.path());
    let cmd = variant(tmp.path(), "cmd", |_, t| {
        t.replace("cmd = [\"--serve\"]", "cmd = [\"--once\"]")
    });
    let r = diff(&a, &cmd, false);
    r.expect_code(1);
    assert_eq!(first_line(&r), "differ: config only (cmd)");
    assert!(
        r.stdout.contains("cmd: [\"--serve\"] → [\"--once\"]"),
        "{}",
        r.stdout
    );

    let note = variant(tmp.path(), "note", |_, t| {
        t.replace(
            "\"org.example.note\" = \"fixture\"",
            "\"org.example.note\" = \"changed\"",
        )
    });
    let r = diff(&a, &note, false);
    r.expect_code(1);
    assert_eq!(
        first_line(&r),
        "differ: annotations only (org.example.note)"
    );
}

#[test]
fn platforms_added_are_content() {
    let tmp = tempdir();
    let a = variant(tmp.path(), "two", |_, t| {
        t.replace(
            "[image]\n",
            "[image]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
        )
    });
    let b = variant(tmp.path(), "three", |_, t| {
        t.replace(
            "[image]\n",
            "[image]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/riscv64\"]\n",
        )
    });
    let r = diff(&a, &b, false);
    r.expect_code(1);
    assert!(
        first_line(&r).starts_with("differ: content (platform linux/riscv64)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("platform linux/riscv64"), "{}", r.stdout);
}

/// Rewrites the layer with the same entries in reverse order, and points
/// the config and manifest at it: only the order differs.
fn reorder_layer(layout: &Path) {
    let manifest = top_manifest(layout);
    let layer = blob(layout, manifest["layers"][0]["digest"].as_str().unwrap());
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        entries.push((header, data));
    }
    entries.reverse();
    let mut builder = tar::Builder::new(Vec::new());
    for (h, data) in &entries {
        builder.append(h, &data[..]).unwrap();
    }
    let new_tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&new_tar).unwrap();
    let (layer_digest, layer_size) = put_blob(layout, &gz.finish().unwrap());
    let mut config = json(&blob(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    config["rootfs"]["diff_ids"][0] = Value::String(sha256_digest(&new_tar));
    let (config_digest, config_size) = put_blob(layout, &serde_json::to_vec(&config).unwrap());
    edit_manifest(layout, 0, |m| {
        m["layers"][0]["digest"] = Value::String(layer_digest);
        m["layers"][0]["size"] = Value::from(layer_size);
        m["config"]["digest"] = Value::String(config_digest);
        m["config"]["size"] = Value::from(config_size);
    });
    // The attestations were about the image before; a tool rewriting it
    // would drop them.
    let mut idx = index(layout);
    idx["manifests"].as_array_mut().unwrap().truncate(1);
    write_index(layout, &idx);
}

#[test]
fn ordering() {
    let tmp = tempdir();
    let a = base(tmp.path());
    let b = variant(tmp.path(), "reordered", |_, t| t);
    reorder_layer(&b);
    let r = diff(&a, &b, false);
    r.expect_code(1);
    assert_eq!(
        first_line(&r),
        "differ: ordering (same entries, different tar order)"
    );
    // The reordered image is still a valid one.
    run(stele().arg("verify").arg(&b).arg("--json")).expect_code(0);
}

#[test]
fn an_unreadable_side_exits_2() {
    let tmp = tempdir();
    let a = base(tmp.path());
    let r = diff(&a, &tmp.path().join("missing"), false);
    r.expect_code(2);
    assert!(r.stderr.contains("missing does not exist"), "{}", r.stderr);
    let r = diff(tmp.path(), &a, true);
    r.expect_code(2);
    assert!(json(r.stdout.as_bytes())["error"]
        .as_str()
        .unwrap()
        .contains("not an OCI image layout"));
}

#[test]
fn a_skopeo_copy_in_docker_format_verifies_and_differs_in_encoding() {
    if !have_tool("skopeo") {
        return;
    }
    let tmp = tempdir();
    let a = base(tmp.path());
    let copy = tmp.path().join("copy");
    let r = run(Command::new("skopeo")
        .arg("copy")
        .arg("--format")
        .arg("v2s2")
        .arg(format!("oci:{}:latest", a.display()))
        .arg(format!("oci:{}:latest", copy.display())));
    r.expect_ok();
    let r = run(stele().arg("verify").arg(&copy));
    r.expect_code(0);
    assert!(
        r.stdout
            .contains("manifest application/vnd.docker.distribution.manifest.v2+json"),
        "{}",
        r.stdout
    );
    let r = diff(&a, &copy, false);
    r.expect_code(1);
    // skopeo keeps every blob but the manifest, which it rewrites in
    // Docker's types, which have no annotations.
    assert_eq!(
        first_line(&r),
        "differ: annotations (dev.stele.encoding, dev.stele.recipe.digest, dev.stele.sbom and 3 more); \
         encoding (media type, config media type, layer 1 media type)"
    );
}
