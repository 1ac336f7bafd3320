//! An archive that moves on, as Debian's does between point releases:
//! two signed repositories ("then", what a lock is made from, and "now",
//! where the old versions are gone and newer ones, one from a security
//! suite, took their place), one mirror on 127.0.0.1 that serves "then"
//! until [`MovingArchive::move_on`] and "now" after, and snapshot
//! services that answer any time with "then". And the registry helpers
//! the archive tests read a docker-registry with.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::docker_registry::DockerRegistry;
use super::http::HttpServer;
use super::{tempdir, AptRepo, Deb, DebEntry};

/// `Date` of every test repository's Release, as a lock records it.
pub const RELEASE_DATE: &str = "2001-09-09T01:46:40Z";
/// The same moment as snapshot archives name it.
pub const SNAPSHOT_TIME: &str = "20010909T014640Z";

fn hello(version: &str) -> Deb {
    Deb::new("hello", version, "amd64")
        .field("Depends", "libgreet (>= 2.0)")
        .entry(DebEntry::dir("usr/bin"))
        .entry(DebEntry::exec(
            "usr/bin/hello",
            format!("#!/bin/sh\necho hello {version}\n"),
        ))
}

fn libgreet(version: &str) -> Deb {
    Deb::new("libgreet", version, "amd64")
        .entry(DebEntry::dir("usr/lib"))
        .entry(DebEntry::file(
            "usr/lib/libgreet.so.2",
            format!("greetings {version}\n").repeat(2000),
        ))
}

fn data() -> Deb {
    Deb::new("data", "1", "all")
        .entry(DebEntry::dir("usr/share/data"))
        .entry(DebEntry::file("usr/share/data/table", "x y z\n"))
}

/// Then: hello 1.0-1, libgreet 2.0-1, data 1 in `stable`; `other` in
/// `stable-security`. Now: hello 1.1-1 and data 1 in `stable` (hello
/// 1.0-1 and libgreet 2.0-1 removed), libgreet 2.1-1 in
/// `stable-security`.
fn repo(now: bool) -> AptRepo {
    let other = Deb::new("other", "1", "all");
    let b = AptRepo::builder()
        .suite("stable", &["amd64"])
        .suite("stable-security", &["amd64"])
        .deb("stable", data())
        .deb("stable-security", other);
    if now {
        b.deb("stable", hello("1.1-1"))
            .deb("stable-security", libgreet("2.1-1"))
            .build()
    } else {
        b.deb("stable", hello("1.0-1"))
            .deb("stable", libgreet("2.0-1"))
            .build()
    }
}

/// The archive, its mirror and a snapshot service of it.
pub struct MovingArchive {
    pub then: AptRepo,
    pub now: AptRepo,
    /// What the mirror serves.
    mirror_dir: tempfile::TempDir,
    pub mirror: String,
    _mirror_server: HttpServer,
    /// A snapshot service answering every time with "then".
    pub snapshot: String,
    pub snapshot_server: HttpServer,
}

impl MovingArchive {
    pub fn new() -> MovingArchive {
        let then = repo(false);
        let now = repo(true);
        let mirror_dir = tempdir();
        copy_tree(then.root(), mirror_dir.path());
        let (mirror, mirror_server) = HttpServer::serve(mirror_dir.path());
        let (snapshot, snapshot_server) = HttpServer::serve_snapshots(then.root());
        MovingArchive {
            then,
            now,
            mirror_dir,
            mirror,
            _mirror_server: mirror_server,
            snapshot,
            snapshot_server,
        }
    }

    /// The mirror now serves "now": the old versions are gone.
    pub fn move_on(&self) {
        for entry in fs::read_dir(self.mirror_dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                fs::remove_dir_all(&path).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
        }
        copy_tree(self.now.root(), self.mirror_dir.path());
    }

    /// A recipe folder for the archive: the keyring, a recipe with both
    /// suites (each naming the snapshot service as `SNAP`), `[[files]]`
    /// of its own.
    pub fn project(&self) -> tempfile::TempDir {
        let dir = tempdir();
        fs::copy(self.then.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        fs::write(dir.path().join("recipe.toml"), RECIPE).unwrap();
        fs::create_dir_all(dir.path().join("app")).unwrap();
        fs::write(dir.path().join("app/run.sh"), "exec hello\n").unwrap();
        dir
    }
}

const RECIPE: &str = r#"
[image]
name = "later"
epoch = 1700000000

[apt]
sources = [
  { mirror = "LOCAL", suite = "stable", keyring = "keyring.gpg", snapshot = "SNAP" },
  { mirror = "LOCAL", suite = "stable-security", keyring = "keyring.gpg", snapshot = "SNAP" },
]
packages = ["hello", "data"]
layers = "per-package"

[[files]]
src = "app/"
dest = "/app"

[config]
entrypoint = ["/usr/bin/hello"]
"#;

/// Copies the files below `from` into `to`, folders made as needed.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The tags of `repo` on `reg`, sorted.
pub fn tags(reg: &DockerRegistry, repo: &str) -> Vec<String> {
    let url = format!("http://{}/v2/{repo}/tags/list", reg.host());
    let body = ureq::get(&url).call().unwrap().into_string().unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

/// The file docker-registry keeps the blob `hex` in.
pub fn blob_data(reg: &DockerRegistry, hex: &str) -> PathBuf {
    reg.dir()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// The sha256 hex of every .deb `lock` (a lockfile's text) names.
pub fn locked_debs(lock: &str) -> Vec<String> {
    lock.lines()
        .filter_map(|l| l.strip_prefix("sha256 = \"sha256:"))
        .map(|h| h.trim_end_matches('"').to_string())
        .collect()
}

/// Pushes `bytes` as a blob of `repo` (one monolithic upload); its digest.
pub fn push_blob(reg: &DockerRegistry, repo: &str, bytes: &[u8]) -> String {
    let digest = super::sha256_digest(bytes);
    let url = format!("http://{}/v2/{repo}/blobs/uploads/", reg.host());
    let resp = ureq::post(&url).send_bytes(&[]).unwrap();
    let location = resp.header("Location").unwrap().to_string();
    let location = if location.starts_with('/') {
        format!("http://{}{location}", reg.host())
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    ureq::put(&format!("{location}{sep}digest={digest}"))
        .set("Content-Type", "application/octet-stream")
        .send_bytes(bytes)
        .unwrap();
    digest
}

/// PUTs `bytes` as the OCI manifest `tag` of `repo`.
pub fn put_manifest(reg: &DockerRegistry, repo: &str, tag: &str, bytes: &[u8]) {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", reg.host());
    ureq::put(&url)
        .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send_bytes(bytes)
        .unwrap();
}
