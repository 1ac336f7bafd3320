//! Archives read back (`open_archive`, `source::open`): ours open into the
//! image the build made, a classic `docker save` archive converts with
//! its config and DiffIDs, hostile archives are refused by member name.

use std::path::Path;
use std::process::Command;

use crate::support::archive::{build_three, by_name, members, raw_tar};
use crate::support::*;
use stele::source::archive::open_archive;
use stele::source::layout::{open_layout, Selector};
use stele::source::target::ArchiveKind;

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
        let opened = stele::source::open(&target, None).unwrap();
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
