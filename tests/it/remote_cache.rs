//! The remote cache through the `stele` binary and a real registry: one
//! runner pushes (`--cache-to`), another with an empty cache folder and no
//! package mirror builds the same image from it (`--cache-from`) without a
//! .deb and without compressing a layer; a poisoned cache costs time, never
//! the digest; credentials come from the auth file push uses; a registry
//! that is down is a warning.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::docker_registry::{have_registry, htpasswd_alice, DockerRegistry};
use crate::support::*;

fn repo() -> AptRepo {
    AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb(
            "stable",
            Deb::new("hello", "1.0-1", "amd64")
                .field("Depends", "libgreet")
                .entry(DebEntry::dir("usr/bin"))
                .entry(DebEntry::exec("usr/bin/hello", "#!/bin/sh\necho hello\n")),
        )
        .deb(
            "stable",
            Deb::new("libgreet", "2.0-1", "amd64")
                .entry(DebEntry::dir("usr/lib"))
                .entry(DebEntry::file("usr/lib/libgreet.so.2", vec![b'g'; 70_000])),
        )
        .deb(
            "stable",
            Deb::new("data", "1", "all")
                .entry(DebEntry::dir("usr/share/data"))
                .entry(DebEntry::file("usr/share/data/table", "x y z\n")),
        )
        .build()
}

const RECIPE: &str = r#"
[image]
name = "shared"
epoch = 1700000000
platforms = ["linux/amd64"]

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["hello", "data"]
layers = "per-package"

[[files]]
src = "app/"
dest = "/app"

[config]
entrypoint = ["/usr/bin/hello"]
"#;

/// A locked recipe; each runner is a cache folder of its own.
struct Project {
    dir: tempfile::TempDir,
    url: String,
}

impl Project {
    fn new(repo: &AptRepo, url: &str) -> Project {
        let dir = tempdir();
        fs::copy(repo.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        fs::write(dir.path().join("recipe.toml"), RECIPE).unwrap();
        write_file(&dir.path().join("app/main.sh"), "echo one\n", 0o755);
        let p = Project {
            dir,
            url: url.to_string(),
        };
        let mut cmd = stele();
        cmd.arg("lock")
            .arg(p.path("recipe.toml"))
            .arg("--cache-dir")
            .arg(p.path("lock-cache"))
            .env("STELE_MIRROR_LOCAL", &p.url);
        run(&mut cmd).expect_ok();
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `stele build --json` as runner `runner` (its own cache folder),
    /// into `out/<runner>`.
    fn build(&self, runner: &str, args: &[&str], env: &[(&str, &Path)]) -> Run {
        let mut cmd = stele();
        cmd.arg("build")
            .arg(self.path("recipe.toml"))
            .arg("-o")
            .arg(self.path(&format!("out/{runner}")))
            .arg("--cache-dir")
            .arg(self.path(&format!("cache-{runner}")))
            .arg("--json")
            .args(args)
            .env("STELE_MIRROR_LOCAL", &self.url);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    }

    fn locked_debs(&self) -> Vec<String> {
        let lock = fs::read_to_string(self.path("recipe.lock")).unwrap();
        lock.lines()
            .filter_map(|l| l.strip_prefix("sha256 = \"sha256:"))
            .map(|h| h.trim_end_matches('"').to_string())
            .collect()
    }
}

fn doc(r: &Run) -> Value {
    r.expect_ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn remote(r: &Run) -> Value {
    doc(r)["remote_cache"].clone()
}

/// The tags of `repo` on `reg`, sorted.
fn tags(reg: &DockerRegistry, repo: &str) -> Vec<String> {
    let url = format!("http://{}/v2/{repo}/tags/list", reg.host());
    let body = ureq::get(&url).call().unwrap().into_string().unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

fn manifest(reg: &DockerRegistry, repo: &str, tag: &str) -> Vec<u8> {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", reg.host());
    let resp = ureq::get(&url)
        .set("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).unwrap();
    bytes
}

fn put_manifest(reg: &DockerRegistry, repo: &str, tag: &str, bytes: &[u8]) {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", reg.host());
    ureq::put(&url)
        .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send_bytes(bytes)
        .unwrap();
}

#[test]
fn a_second_runner_builds_from_the_remote_cache_without_debs_or_compression() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let cache = format!("{}/team/cache", reg.host());
    let repo = repo();
    let (url, server) = repo.serve();
    let p = Project::new(&repo, &url);

    let a = p.build("a", &["--cache-to", &cache], &[]);
    let pushed = remote(&a);
    // hello, libgreet and data unpacked; their three layers and the
    // recipe's.
    assert_eq!(pushed["entries_pushed"], 7, "{}", a.stderr);
    assert_eq!(pushed["warnings"], Value::Array(vec![]), "{}", a.stderr);
    assert!(pushed["bytes_uploaded"].as_u64().unwrap() > 70_000);
    assert_eq!(tags(&reg, "team/cache").len(), 7);

    // Runner B: an empty cache folder and no mirror at all.
    drop(server);
    let b = p.build("b", &["--cache-from", &cache], &[]);
    let got = doc(&b);
    assert_eq!(got["digest"], doc(&a)["digest"], "{}", b.stderr);
    let rc = &got["remote_cache"];
    assert_eq!(rc["package_hits"], 3, "{}", b.stderr);
    assert_eq!(rc["package_misses"], 0, "{}", b.stderr);
    assert_eq!(rc["layer_hits"], 4, "{}", b.stderr);
    assert_eq!(rc["warnings"], Value::Array(vec![]), "{}", b.stderr);
    // Nothing compressed, nothing unpacked, no .deb in the cache.
    assert_eq!(got["layer_cache"]["misses"], 0, "{}", b.stderr);
    assert!(
        b.stderr
            .contains("packages: 0 unpacked before, 3 from the remote cache, 0 unpacked now"),
        "{}",
        b.stderr
    );
    for hex in p.locked_debs() {
        assert!(!p.path("cache-b/blobs/sha256").join(&hex).exists());
    }
    assert_same_layout(&p.path("out/a"), &p.path("out/b"));

    // B's cache folder now answers by itself: no registry, no mirror.
    drop(reg);
    let again = p.build("b", &["--offline"], &[]);
    assert_eq!(doc(&again)["digest"], got["digest"]);
    assert_eq!(doc(&again)["layer_cache"]["hits"], 4, "{}", again.stderr);
}

#[test]
fn pushing_what_the_remote_cache_has_sends_nothing() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let cache = format!("{}/team/cache", reg.host());
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url);
    assert_eq!(
        remote(&p.build("a", &["--cache-to", &cache], &[]))["entries_pushed"],
        7
    );
    // Another runner reading and writing the same repository, as CI jobs do.
    let b = remote(&p.build("b", &["--cache-from", &cache, "--cache-to", &cache], &[]));
    assert_eq!(b["entries_pushed"], 0, "{b}");
    assert_eq!(b["entries_present"], 7, "{b}");
    assert_eq!(b["bytes_uploaded"], 0, "{b}");
}

#[test]
fn a_poisoned_remote_cache_costs_time_but_never_the_digest() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let cache = format!("{}/team/cache", reg.host());
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url);
    let a = p.build("a", &["--cache-to", &cache], &[]);
    let digest = doc(&a)["digest"].clone();

    let all = tags(&reg, "team/cache");
    let layers: Vec<&String> = all.iter().filter(|t| t.starts_with("layer-")).collect();
    let packages: Vec<&String> = all.iter().filter(|t| t.starts_with("unpacked-")).collect();
    assert_eq!((layers.len(), packages.len()), (4, 3), "{all:?}");
    // A record that answers another key, under this key's tag.
    let other = manifest(&reg, "team/cache", layers[0]);
    put_manifest(&reg, "team/cache", layers[1], &other);
    let other = manifest(&reg, "team/cache", packages[0]);
    put_manifest(&reg, "team/cache", packages[1], &other);
    // A layer blob whose bytes the registry's disk changed.
    let m: Value = serde_json::from_slice(&manifest(&reg, "team/cache", layers[2])).unwrap();
    let blob = m["layers"][0]["digest"].as_str().unwrap();
    let hex = blob.strip_prefix("sha256:").unwrap();
    let data = reg
        .dir()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&data, bytes).unwrap();

    let b = p.build("b", &["--cache-from", &cache], &[]);
    let got = doc(&b);
    assert_eq!(got["digest"], digest, "{}", b.stderr);
    assert_same_layout(&p.path("out/a"), &p.path("out/b"));
    let rc = &got["remote_cache"];
    assert_eq!(rc["package_hits"], 2, "{}", b.stderr);
    assert_eq!(rc["layer_hits"], 2, "{}", b.stderr);
    assert_eq!(got["layer_cache"]["misses"], 2, "{}", b.stderr);
    for tag in [layers[1], packages[1], layers[2]] {
        assert!(
            b.stderr
                .contains(&format!("entry {tag} does not check out")),
            "{tag}:\n{}",
            b.stderr
        );
    }
    assert_eq!(rc["warnings"].as_array().unwrap().len(), 3, "{rc}");
}

#[test]
fn the_environment_names_the_caches_and_the_auth_file_opens_them() {
    if !have_registry() || !have_tool("perl") {
        return;
    }
    let tmp = tempdir();
    let Some(htpasswd) = htpasswd_alice(tmp.path()) else {
        return;
    };
    let reg = DockerRegistry::start(Some(&htpasswd));
    let cache = format!("{}/team/cache", reg.host());
    let auth = tmp.path().join("auth.json");
    {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        fs::write(
            &auth,
            format!(r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.host()),
        )
        .unwrap();
    }
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url);
    let names = tmp.path().join("names");
    fs::write(&names, "").unwrap();

    let to = format!("127.0.0.1:1/nowhere, {cache}");
    let a = p.build(
        "a",
        &[],
        &[
            ("STELE_CACHE_TO", Path::new(&to)),
            ("REGISTRY_AUTH_FILE", &auth),
        ],
    );
    let pushed = remote(&a);
    assert_eq!(pushed["entries_pushed"], 7, "{}", a.stderr);
    // The dead one is warned about once, and the build goes on.
    let warnings = pushed["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{pushed}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1/nowhere"),
        "{pushed}"
    );

    let b = p.build(
        "b",
        &[],
        &[
            ("STELE_CACHE_FROM", Path::new(&cache)),
            ("REGISTRY_AUTH_FILE", &auth),
        ],
    );
    assert_eq!(remote(&b)["layer_hits"], 4, "{}", b.stderr);
    assert_eq!(doc(&b)["digest"], doc(&a)["digest"]);

    // Without credentials the registry refuses: a warning, and the build
    // does the work itself.
    let c = p.build("c", &["--cache-from", &cache], &[]);
    let rc = remote(&c);
    assert_eq!(rc["layer_hits"], 0, "{}", c.stderr);
    assert!(
        c.stderr.contains("warning: remote cache") && c.stderr.contains("401"),
        "{}",
        c.stderr
    );
    assert_eq!(doc(&c)["digest"], doc(&a)["digest"]);

    // A tag is not a cache repository.
    let bad = p.build("d", &["--cache-from", &format!("{cache}:v1")], &[]);
    bad.expect_fail();
    assert!(
        bad.stderr.contains("names a tag or digest"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_rebuild_takes_packages_from_the_remote_cache_but_writes_every_layer() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let cache = format!("{}/team/cache", reg.host());
    let repo = repo();
    let (url, server) = repo.serve();
    let p = Project::new(&repo, &url);
    let a = p.build("a", &["--cache-to", &cache], &[]);
    let digest = doc(&a)["digest"].as_str().unwrap().to_string();

    drop(server);
    let mut cmd = stele();
    cmd.arg("verify")
        .arg(p.path("out/a"))
        .arg("--digest")
        .arg(&digest)
        .arg("--rebuild")
        .arg(p.path("recipe.toml"))
        .arg("--cache-dir")
        .arg(p.path("cache-v"))
        .arg("--cache-from")
        .arg(&cache)
        .env("STELE_MIRROR_LOCAL", &p.url);
    let r = run(&mut cmd);
    r.expect_ok();
    assert!(
        r.stderr.contains("3 from the remote cache, 0 unpacked now"),
        "{}",
        r.stderr
    );
    // A rebuild compares a build with the image: no layer is taken.
    assert!(r.stderr.contains("layers 0 hits, 0 misses"), "{}", r.stderr);
}
