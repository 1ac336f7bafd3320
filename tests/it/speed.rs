//! Issue 24's behaviours through the `stele` binary, against real parts:
//! `[image] layers = { strategy = "source" }` built from a signed apt
//! repository served on 127.0.0.1 (and updated), and the cache's record
//! of checked layers on pushes and pulls through the real registry
//! (distribution's `docker-registry`), read back by skopeo.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::bytes::noise;
use crate::support::docker_registry::{have_registry, skopeo_raw, DockerRegistry};
use crate::support::tree::populate;
use crate::support::*;

/// An application on two binary packages of the `openssl` source (at
/// `openssl`'s version), one of `greet`, and small packages of their own
/// sources (`netbase` says none: it is its own).
fn repo(openssl: &str) -> AptRepo {
    let pkg = |name: &str, version: &str, source: Option<&str>| {
        let d = Deb::new(name, version, "amd64");
        match source {
            Some(s) => d.field("Source", s),
            None => d,
        }
    };
    let debs = [
        pkg("app", "1.0-1", Some("app"))
            .field("Depends", "openssl, libgreet1, tzdata, netbase")
            .entry(DebEntry::dir("usr/bin"))
            .entry(DebEntry::exec("usr/bin/app", "#!/bin/sh\necho app\n")),
        pkg("libssl3", openssl, Some("openssl"))
            .entry(DebEntry::dir("usr/lib"))
            .entry(DebEntry::file("usr/lib/libssl.so.3", noise(20_000, 1)))
            .entry(DebEntry::file("usr/lib/libssl.version", openssl)),
        pkg("openssl", openssl, Some("openssl"))
            .field("Depends", &format!("libssl3 (= {openssl})"))
            .entry(DebEntry::dir("usr/bin"))
            .entry(DebEntry::exec("usr/bin/openssl", noise(8_000, 2))),
        pkg("libgreet1", "2.0-1", Some("greet"))
            .entry(DebEntry::dir("usr/lib"))
            .entry(DebEntry::file("usr/lib/libgreet.so.1", noise(70_000, 3))),
        pkg("tzdata", "2024a-1", Some("tzdata"))
            .entry(DebEntry::dir("usr/share/zoneinfo"))
            .entry(DebEntry::file("usr/share/zoneinfo/UTC", "TZif2\n")),
        pkg("netbase", "6.4", None)
            .entry(DebEntry::dir("etc"))
            .entry(DebEntry::file("etc/protocols", "ip 0 IP\n")),
    ];
    let mut b = AptRepo::builder().suite("stable", &["amd64"]);
    for d in debs {
        b = b.deb("stable", d);
    }
    b.build()
}

const RECIPE: &str = r#"
[image]
name = "grouped"
epoch = 1700000000
platforms = ["linux/amd64"]
LAYERS

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["app"]

[config]
entrypoint = ["/usr/bin/app"]
"#;

/// A recipe folder (recipe, keyring, cache) whose image writes `layers`
/// into `[image]`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(repo: &AptRepo, layers: &str) -> Project {
        let dir = tempdir();
        fs::copy(repo.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        fs::write(
            dir.path().join("recipe.toml"),
            RECIPE.replace("LAYERS", layers),
        )
        .unwrap();
        Project { dir }
    }

    fn stele(&self, url: &str, args: &[&str]) -> Run {
        run(stele()
            .args(args)
            .arg(self.dir.path().join("recipe.toml"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .env("STELE_MIRROR_LOCAL", url))
    }

    /// Locks against `url` (resolving anew) and builds into `out/<name>`.
    fn lock_and_build(&self, url: &str, name: &str) -> PathBuf {
        self.stele(url, &["lock"]).expect_ok();
        let out = self.dir.path().join("out").join(name);
        let out_arg = out.to_str().unwrap();
        self.stele(url, &["build", "--attest", "none", "-o", out_arg])
            .expect_ok();
        out
    }
}

/// Each layer of the layout at `out`: its descriptor and its entries.
fn layers(out: &Path) -> Vec<(Value, Vec<TarEntry>)> {
    let l = check_layout(out);
    l.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let mt = d["mediaType"].as_str().unwrap();
            (
                d.clone(),
                tar_entries(&decompress(mt, &descriptor_blob(out, d))),
            )
        })
        .collect()
}

/// The file system the layers stack into: each path's last entry
/// (kind, mode, owner, bytes). No layer here whites anything out.
fn merged(layers: &[(Value, Vec<TarEntry>)]) -> BTreeMap<String, (char, u32, u64, Vec<u8>)> {
    let mut tree = BTreeMap::new();
    for (_, entries) in layers {
        for e in entries {
            let path = e.path.trim_end_matches('/').to_string();
            tree.insert(path, (e.kind, e.mode, e.uid, e.data.clone()));
        }
    }
    tree
}

/// The index of the one layer holding `path`.
fn holder(layers: &[(Value, Vec<TarEntry>)], path: &str) -> usize {
    let holding: Vec<usize> = (0..layers.len())
        .filter(|&i| layers[i].1.iter().any(|e| e.path == path))
        .collect();
    assert_eq!(holding.len(), 1, "{path} in layers {holding:?}");
    holding[0]
}

fn bytes_of(layers: &[(Value, Vec<TarEntry>)], changed: &[usize]) -> u64 {
    changed
        .iter()
        .map(|&i| layers[i].0["size"].as_u64().unwrap())
        .sum()
}

/// `source` groups each source package's binary packages into one layer,
/// under the budget (the lightest share one), with the same files as one
/// layer of everything; an update of one source's packages changes that
/// layer alone, where the single layer changes whole.
#[test]
fn packages_grouped_by_source_and_an_update_changes_one_layer() {
    let (before, after) = (repo("3.0.1-1"), repo("3.0.2-1"));
    let (url_before, _s1) = before.serve();
    let (url_after, _s2) = after.serve();
    let grouped = Project::new(&before, "layers = { strategy = \"source\", budget = 3 }");
    let single = Project::new(&before, "");

    let g1 = layers(&grouped.lock_and_build(&url_before, "before"));
    let s1 = layers(&single.lock_and_build(&url_before, "before"));
    assert_eq!(merged(&g1), merged(&s1), "the same files either way");

    // greet and openssl are the heaviest sources: a layer each; app,
    // tzdata and netbase share the budget's last.
    let ssl = holder(&g1, "usr/lib/libssl.so.3");
    assert_eq!(holder(&g1, "usr/bin/openssl"), ssl, "one source, one layer");
    let greet = holder(&g1, "usr/lib/libgreet.so.1");
    let shared = holder(&g1, "usr/bin/app");
    assert_eq!(holder(&g1, "usr/share/zoneinfo/UTC"), shared);
    assert_eq!(holder(&g1, "etc/protocols"), shared);
    let mut package_layers = vec![ssl, greet, shared];
    package_layers.sort();
    package_layers.dedup();
    assert_eq!(package_layers.len(), 3, "within the budget of 3");
    // Each package's dpkg file list travels with its files.
    assert_eq!(holder(&g1, "var/lib/dpkg/info/libssl3.list"), ssl);
    assert_eq!(holder(&g1, "var/lib/dpkg/info/openssl.list"), ssl);
    assert_eq!(holder(&g1, "var/lib/dpkg/info/netbase.list"), shared);

    // The history names each layer's sources.
    let l = check_layout(&grouped.dir.path().join("out/before"));
    let config = json(&descriptor_blob(
        &grouped.dir.path().join("out/before"),
        &l.manifest["config"],
    ));
    let history = serde_json::to_string(&config["history"]).unwrap();
    assert!(
        history.contains(
            "Debian source package openssl: libssl3 3.0.1-1 (amd64), openssl 3.0.1-1 (amd64)"
        ) || history.contains(
            "Debian source package openssl: openssl 3.0.1-1 (amd64), libssl3 3.0.1-1 (amd64)"
        ),
        "{history}"
    );
    assert!(
        history.contains("Debian source packages app, netbase, tzdata"),
        "{history}"
    );

    // openssl 3.0.2: both its binaries change, nothing else.
    let g2 = layers(&grouped.lock_and_build(&url_after, "after"));
    let s2 = layers(&single.lock_and_build(&url_after, "after"));
    assert_eq!(merged(&g2), merged(&s2));
    assert_eq!(g1.len(), g2.len());
    let changed = |a: &[(Value, Vec<TarEntry>)], b: &[(Value, Vec<TarEntry>)]| {
        (0..a.len())
            .filter(|&i| a[i].0["digest"] != b[i].0["digest"])
            .collect::<Vec<usize>>()
    };
    let grouped_changed = changed(&g1, &g2);
    // The image's own SBOM (its top layer) lists the new versions too.
    let sbom = holder(&g2, "usr/share/stele/sbom/image.spdx.json");
    assert!(!package_layers.contains(&sbom));
    assert_eq!(
        grouped_changed,
        [ssl, sbom],
        "of the packages' layers, only openssl's changed"
    );
    let single_changed = changed(&s1, &s2);
    let (grouped_pull, single_pull) = (
        bytes_of(&g2, &grouped_changed),
        bytes_of(&s2, &single_changed),
    );
    eprintln!(
        "after the update a node pulls {grouped_pull} bytes grouped, {single_pull} in one layer"
    );
    assert!(
        grouped_pull * 2 < single_pull,
        "a node holding the old image pulls {grouped_pull} bytes grouped, {single_pull} in one layer"
    );
}

/// `stele` with this test's cache folder.
fn stele_with(cache: &Path, args: &[&str]) -> Run {
    run(stele().args(args).arg("--cache-dir").arg(cache))
}

/// The report line of a push or pull's check of its layers.
fn checked_line(r: &Run) -> String {
    r.stderr
        .lines()
        .find(|l| l.contains("checked before,"))
        .unwrap_or_else(|| panic!("no check report: {}", r.stderr))
        .trim()
        .to_string()
}

fn report(known: usize, hashed: usize, read: usize) -> String {
    format!("layers: {known} checked before, {hashed} hashed, {read} uncompressed")
}

/// A push of a layout the build just wrote uncompresses none of its
/// layers; a copy of it (other files) is hashed once, then known; a cache
/// that never saw it uncompresses them; a blob changed in place (same
/// size) is read again and refused. A pull into an empty cache
/// uncompresses each layer once; a second pull, none. What the registry
/// holds is what skopeo reads back.
#[test]
fn pushes_and_pulls_skip_layers_checked_before() {
    if !have_registry() || !have_tool("skopeo") {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let t = tmp.path();
    let src = t.join("src");
    populate(&src, false);
    write_file(&src.join("app/share/noise.bin"), noise(100_000, 7), 0o644);
    let (cache, layout) = (t.join("cache"), t.join("layout"));
    let recipe = src.join("recipe.toml");
    let r = stele_with(
        &cache,
        &[
            "build",
            recipe.to_str().unwrap(),
            "--attest",
            "none",
            "-o",
            layout.to_str().unwrap(),
        ],
    );
    r.expect_ok();
    let digest = r.last_line().to_string();
    let n = check_layout(&layout).manifest["layers"]
        .as_array()
        .unwrap()
        .len();
    let reference = format!("{}/stele/checked:v1", reg.host());
    let push = |cache: &Path, from: &Path, reference: &str| {
        stele_with(cache, &["push", from.to_str().unwrap(), reference])
    };

    let r = push(&cache, &layout, &reference);
    r.expect_ok();
    assert_eq!(checked_line(&r), report(n, 0, 0));
    assert_eq!(r.last_line(), format!("{reference}@{digest}"));

    let copy = t.join("copy");
    let cp = Command::new("cp")
        .arg("-r")
        .arg(&layout)
        .arg(&copy)
        .status();
    assert!(cp.unwrap().success());
    assert_eq!(
        checked_line(&push(&cache, &copy, &reference)),
        report(0, n, 0)
    );
    assert_eq!(
        checked_line(&push(&cache, &copy, &reference)),
        report(n, 0, 0)
    );
    let fresh = t.join("fresh-cache");
    assert_eq!(
        checked_line(&push(&fresh, &copy, &reference)),
        report(0, 0, n)
    );

    // The largest layer's bytes changed in place, its size kept: the
    // record of its digest cannot vouch for them.
    let l = check_layout(&copy);
    let biggest = l.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|d| d["size"].as_u64().unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = copy
        .join("blobs/sha256")
        .join(biggest.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::remove_file(&path).unwrap();
    fs::write(&path, &bytes).unwrap();
    let tampered = format!("{}/stele/tampered:v1", reg.host());
    let r = push(&cache, &copy, &tampered);
    r.expect_fail();
    assert!(r.stderr.contains(&biggest), "{}", r.stderr);
    let inspect = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{tampered}"))
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "nothing pushed");

    // Pulled into an empty cache: each layer uncompressed once (beside
    // the download or after it), then known.
    let pull_cache = t.join("pull-cache");
    let pulled = t.join("pulled");
    let r = stele_with(
        &pull_cache,
        &["pull", &reference, "-o", pulled.to_str().unwrap()],
    );
    r.expect_ok();
    assert_eq!(checked_line(&r), report(0, 0, n));
    assert_eq!(r.last_line(), digest);
    assert_eq!(
        snapshot(&pulled.join("blobs")),
        snapshot(&layout.join("blobs"))
    );
    let again = t.join("again");
    let r = stele_with(
        &pull_cache,
        &["pull", &reference, "-o", again.to_str().unwrap()],
    );
    r.expect_ok();
    assert_eq!(checked_line(&r), report(n, 0, 0));
    assert_eq!(
        snapshot(&again.join("blobs")),
        snapshot(&layout.join("blobs"))
    );

    // skopeo reads back the image every push sent.
    assert_eq!(sha256_digest(&skopeo_raw(&reference)), digest);
    let copied = t.join("skopeo");
    let r = run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:v1", copied.display())));
    r.expect_ok();
    for d in l.manifest["layers"].as_array().unwrap() {
        let d = d["digest"].as_str().unwrap();
        assert_eq!(sha256_digest(&blob(&copied, d)), d);
    }
}
