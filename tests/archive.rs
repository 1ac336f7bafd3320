//! `stele build --format oci-archive | docker-archive`: the same image as
//! the layout (same digest line, same blobs), byte-reproducible archives,
//! read by skopeo, loaded and run by podman, and read back by stele —
//! hostile archives refused by member name.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::podman::{compile_hello, lowercase_tempdir, podman, podman_run};
use common::tree::{populate, EPOCH};
use common::*;
use stele::source::archive::open_archive;
use stele::source::layout::{open_layout, Selector};
use stele::source::target::ArchiveKind;

/// One archive member with every header field the tests check.
#[derive(Debug)]
struct Member {
    name: String,
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    owner_names: (Vec<u8>, Vec<u8>),
    data: Vec<u8>,
}

fn members(archive: &Path) -> Vec<Member> {
    let mut ar = tar::Archive::new(fs::File::open(archive).unwrap());
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Member {
            name: e.path().unwrap().to_str().unwrap().to_string(),
            kind: match h.entry_type() {
                tar::EntryType::Regular => '-',
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                _ => '?',
            },
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            owner_names: (
                h.username_bytes().unwrap_or_default().to_vec(),
                h.groupname_bytes().unwrap_or_default().to_vec(),
            ),
            data,
        });
    }
    out
}

fn by_name(members: &[Member]) -> BTreeMap<String, Vec<u8>> {
    members
        .iter()
        .map(|m| (m.name.clone(), m.data.clone()))
        .collect()
}

/// The tree recipe built as a layout and as both archives.
struct Three {
    _tmp: tempfile::TempDir,
    layout: std::path::PathBuf,
    oci: std::path::PathBuf,
    docker: std::path::PathBuf,
    digest: String,
}

fn build_three() -> Three {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let recipe = src.join("recipe.toml");
    let layout = tmp.path().join("layout");
    let oci = tmp.path().join("image.oci.tar");
    let docker = tmp.path().join("image.docker.tar");
    let digest = build(&recipe, &layout);
    assert_eq!(
        build_with(&recipe, &oci, &["--format", "oci-archive"]),
        digest
    );
    assert_eq!(
        build_with(&recipe, &docker, &["--format", "docker-archive"]),
        digest
    );
    Three {
        _tmp: tmp,
        layout,
        oci,
        docker,
        digest,
    }
}

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
        let r = run(Command::new("sh")
            .arg("-c")
            .arg("umask 077 && exec \"$@\"")
            .arg("sh")
            .arg(STELE)
            .arg("build")
            .arg(&recipe)
            .args(["--format", format, "-o"])
            .arg(&b)
            .env_remove("SOURCE_DATE_EPOCH")
            .env("TZ", "Pacific/Kiritimati")
            .env("LC_ALL", "C.UTF-8"));
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
fn archives_read_back_to_the_same_image() {
    let t = build_three();
    let layout = open_layout(&t.layout, &Selector::Only).unwrap();
    for (path, kind) in [
        (&t.oci, None),
        (&t.oci, Some(ArchiveKind::Oci)),
        (&t.docker, None),
        (&t.docker, Some(ArchiveKind::Docker)),
    ] {
        let opened = open_archive(path, kind, &Selector::Only).unwrap();
        assert_eq!(opened.digest().to_string(), t.digest, "{path:?} {kind:?}");
        assert_eq!(opened.name, path.display().to_string());
        let image = &opened.built.images[0];
        assert_eq!(image.config.bytes, layout.built.images[0].config.bytes);
        assert_eq!(image.layers, layout.built.images[0].layers);
        let attested = path == &t.oci;
        assert_eq!(
            opened.referrers.len(),
            if attested { layout.referrers.len() } else { 0 }
        );
        // The unpacked copy lives as long as the value, then is removed.
        let temp = opened.temp.as_ref().unwrap().path().to_path_buf();
        assert!(temp.is_dir());
        drop(opened);
        assert!(!temp.exists());
    }
    assert!(!layout.referrers.is_empty(), "the tree recipe is attested");
    let by_tag = open_archive(&t.oci, None, &Selector::RefName("latest".into())).unwrap();
    assert_eq!(by_tag.digest().to_string(), t.digest);
    // The dispatcher the commands use opens either kind of local target.
    for path in [&t.layout, &t.oci, &t.docker] {
        let target = stele::source::Target::parse(path.to_str().unwrap()).unwrap();
        let opened = stele::source::open(&target).unwrap();
        assert_eq!(opened.digest().to_string(), t.digest);
    }
}

#[test]
fn classic_docker_archives_convert_with_their_config_and_diff_ids() {
    if !have_tool("skopeo") {
        return;
    }
    let t = build_three();
    let l = check_layout(&t.layout);
    // containers/image writes the classic format: uncompressed layers,
    // no index.json, no oci-layout.
    let classic = t.layout.with_file_name("classic.tar");
    let r = run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:latest", t.layout.display()))
        .arg(format!(
            "docker-archive:{}:team/repro:v1",
            classic.display()
        )));
    r.expect_ok();
    let names: Vec<String> = members(&classic).into_iter().map(|m| m.name).collect();
    assert!(!names.iter().any(|n| n == "index.json"), "{names:?}");

    let opened = open_archive(&classic, None, &Selector::Only).unwrap();
    let image = &opened.built.images[0];
    let config = l.manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(image.config.digest.to_string(), config);
    assert_eq!(
        image
            .manifest
            .value
            .media_type()
            .as_ref()
            .unwrap()
            .to_string(),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let diff_ids: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
    assert_eq!(serde_json::json!(diff_ids), l.config["rootfs"]["diff_ids"]);
    for layer in &image.layers {
        assert_eq!(
            layer.media_type.to_string(),
            "application/vnd.docker.image.rootfs.diff.tar"
        );
        assert_eq!(layer.digest, layer.diff_id);
    }
    // A made-up manifest: not the one the image was built with.
    assert_ne!(opened.digest().to_string(), t.digest);

    for selector in [
        Selector::RefName("v1".into()),
        Selector::Digest(config.parse().unwrap()),
        Selector::Digest(opened.digest().clone()),
    ] {
        let again = open_archive(&classic, Some(ArchiveKind::Docker), &selector).unwrap();
        assert_eq!(again.digest(), opened.digest(), "{selector:?}");
    }
    let e = open_archive(&classic, None, &Selector::RefName("v2".into()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("team/repro:v1"), "{e}");
    let e = open_archive(&classic, Some(ArchiveKind::Oci), &Selector::Only)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("docker-archive:"), "{e}");

    // Docker before 25 names layers `<id>/layer.tar`, shared ones through
    // symlinks: followed inside the archive, refused when they leave it.
    let original = members(&classic);
    let symlink = original
        .iter()
        .find(|m| m.kind == 'l' && m.name.ends_with("/layer.tar"))
        .expect("containers/image writes the legacy layer.tar links");
    let item = &json(&by_name(&original)["manifest.json"])[0];
    let relinked = |layer: &str, link: &str, file: &Path| {
        let mut manifest = item.clone();
        manifest["Layers"] = serde_json::json!([layer]);
        let manifest = serde_json::to_vec(&[manifest]).unwrap();
        let mut list: Vec<(&str, tar::EntryType, &[u8], &str)> = original
            .iter()
            .filter(|m| m.kind == '-' && m.name != "manifest.json")
            .map(|m| {
                (
                    m.name.as_str(),
                    tar::EntryType::Regular,
                    m.data.as_slice(),
                    "",
                )
            })
            .collect();
        list.push((layer, tar::EntryType::Symlink, b"", link));
        list.push(("manifest.json", tar::EntryType::Regular, &manifest, ""));
        raw_tar(file, &list);
    };
    let linked = classic.with_file_name("linked.tar");
    let real = original
        .iter()
        .find(|m| m.kind == '-' && m.name.ends_with(".tar"))
        .unwrap();
    relinked("legacy/layer.tar", &format!("../{}", real.name), &linked);
    let again = open_archive(&linked, None, &Selector::Only).unwrap();
    assert_eq!(again.digest(), opened.digest(), "via {}", symlink.name);
    let escaping = classic.with_file_name("escaping.tar");
    relinked("legacy/layer.tar", "../../etc/passwd", &escaping);
    let e = open_archive(&escaping, None, &Selector::Only)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("legacy/layer.tar") && e.contains("out of the archive"),
        "{e}"
    );
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
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .args(["--platform", "linux/arm64"]));
    r.expect_fail();
    assert!(r.stderr.contains("docker-archive"), "{}", r.stderr);

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

/// Writes a tar of `members` (name, type, data, link target) with names
/// put into the header as given: the tar crate's own setters refuse `..`.
fn raw_tar(path: &Path, members: &[(&str, tar::EntryType, &[u8], &str)]) {
    let mut out = Vec::new();
    for (name, kind, data, link) in members {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    fs::write(path, out).unwrap();
}

#[test]
fn hostile_oci_archives_are_refused_by_member_name() {
    let t = build_three();
    let layout = snapshot(&t.layout);
    let blob_name = layout
        .keys()
        .find(|k| k.starts_with("blobs/sha256/") && k.len() > 20)
        .unwrap()
        .clone();
    let file = tar::EntryType::Regular;
    let cases: [(&str, tar::EntryType, &str, &str); 6] = [
        ("../x", file, "", ".."),
        ("blobs/../../x", file, "", ".."),
        ("/etc/cron.d/x", file, "", "absolute"),
        (
            blob_name.as_str(),
            tar::EntryType::Symlink,
            "/etc/passwd",
            "link",
        ),
        ("index2.json", tar::EntryType::Link, "index.json", "link"),
        ("etc/passwd", file, "", "not part of an OCI layout"),
    ];
    for (i, (name, kind, link, problem)) in cases.into_iter().enumerate() {
        let path = t.layout.with_file_name(format!("hostile-{i}.tar"));
        let mut list: Vec<(&str, tar::EntryType, &[u8], &str)> = vec![
            ("oci-layout", file, &layout["oci-layout"], ""),
            ("index.json", file, &layout["index.json"], ""),
        ];
        list.push((name, kind, b"pwned\n", link));
        raw_tar(&path, &list);
        for kind in [None, Some(ArchiveKind::Oci)] {
            let e = open_archive(&path, kind, &Selector::Only)
                .err()
                .unwrap_or_else(|| panic!("{name} was accepted"))
                .to_string();
            assert!(e.contains(&format!("`{name}`")), "{name}: {e}");
            assert!(e.contains(problem), "{name}: {e}");
        }
    }
    assert!(!t.layout.with_file_name("x").exists());

    // A member twice: the second could replace what was checked.
    let path = t.layout.with_file_name("twice.tar");
    raw_tar(
        &path,
        &[
            ("oci-layout", file, &layout["oci-layout"], ""),
            ("index.json", file, &layout["index.json"], ""),
            ("./index.json", file, b"{}", ""),
        ],
    );
    let e = open_archive(&path, None, &Selector::Only)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`./index.json`") && e.contains("twice"), "{e}");

    // A damaged blob in an otherwise sound archive is named too.
    let path = t.layout.with_file_name("damaged.tar");
    let mut list: Vec<(String, tar::EntryType, Vec<u8>)> = layout
        .iter()
        .filter(|(k, _)| !k.ends_with('/'))
        .map(|(k, v)| (k.clone(), file, v.clone()))
        .collect();
    let manifest = json(&layout["index.json"])["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    for (name, _, data) in &mut list {
        if name.ends_with(&manifest[7..]) {
            data.push(b' ');
        }
    }
    let list: Vec<(&str, tar::EntryType, &[u8], &str)> = list
        .iter()
        .map(|(n, k, d)| (n.as_str(), *k, d.as_slice(), ""))
        .collect();
    raw_tar(&path, &list);
    let e = open_archive(&path, None, &Selector::Only)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&manifest[7..]) && e.contains("damaged"), "{e}");
}
