//! The registry as a package archive through the `stele` binary and a
//! real docker-registry: one runner pushes its locked .debs
//! (`--cache-to`), another with an empty cache folder and no mirror
//! builds the same image from them (`--cache-from`); what is there is
//! not sent again; credentials come from the auth file push uses; a
//! registry that hangs or refuses costs one short budget, once; entries
//! a registry could hold but stele cannot prove (re-compressed layers,
//! hostile unpacked packages) never reach the image or the disk; and a
//! registry cache is pruned through the registry's API.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::docker_registry::{
    have_registry, htpasswd_alice, DockerRegistry, RegistryOptions,
};
use crate::support::moving::*;
use crate::support::trace::{traced, written};
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
    fn command(&self, runner: &str, args: &[&str], env: &[(&str, &Path)]) -> std::process::Command {
        let mut cmd = stele();
        cmd.arg("build")
            .arg(self.path("recipe.toml"))
            .arg("-o")
            .arg(self.path(&format!("out/{runner}")))
            .arg("--cache-dir")
            .arg(self.path(&format!("cache-{runner}")))
            .arg("--json")
            .arg("--locked")
            .args(args)
            .env("STELE_MIRROR_LOCAL", &self.url);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn build(&self, runner: &str, args: &[&str], env: &[(&str, &Path)]) -> Run {
        run(&mut self.command(runner, args, env))
    }

    fn debs(&self) -> Vec<String> {
        locked_debs(&fs::read_to_string(self.path("recipe.lock")).unwrap())
    }
}

/// A registry cache, the repository served on 127.0.0.1 and a locked
/// project: what most tests here start from.
struct Fleet {
    reg: DockerRegistry,
    /// The cache repository on `reg`.
    cache: String,
    repo: AptRepo,
    server: crate::support::http::HttpServer,
    p: Project,
}

impl Fleet {
    fn start() -> Fleet {
        let reg = DockerRegistry::start(None);
        let cache = format!("{}/team/cache", reg.host());
        let repo = repo();
        let (url, server) = repo.serve();
        let p = Project::new(&repo, &url);
        Fleet {
            reg,
            cache,
            repo,
            server,
            p,
        }
    }
}

fn doc(r: &Run) -> Value {
    r.expect_ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn remote(r: &Run) -> Value {
    doc(r)["remote_cache"].clone()
}

#[test]
fn a_second_runner_builds_from_the_registrys_debs_without_a_mirror() {
    if !have_registry() {
        return;
    }
    let Fleet {
        reg,
        cache,
        repo,
        server,
        p,
    } = Fleet::start();

    let a = p.build("a", &["--cache-to", &cache], &[]);
    let pushed = remote(&a);
    // hello, libgreet and data: the .debs, and nothing else.
    assert_eq!(pushed["entries_pushed"], 3, "{}", a.stderr);
    assert_eq!(pushed["warnings"], Value::Array(vec![]), "{}", a.stderr);
    let debs = p.debs();
    let mut expected: Vec<String> = debs.iter().map(|h| format!("deb-v1-{h}")).collect();
    expected.sort();
    assert_eq!(tags(&reg, "team/cache"), expected);
    let deb_bytes: u64 = repo.debs.iter().map(|d| d.size).sum();
    // Each .deb, and the empty config the entries share: once, or again
    // by an entry that asked before another had sent it.
    let sent = pushed["bytes_uploaded"].as_u64().unwrap();
    assert!((deb_bytes + 2..=deb_bytes + 6).contains(&sent), "{sent}");

    // Runner B: an empty cache folder and no mirror at all.
    drop(server);
    let b = p.build("b", &["--cache-from", &cache], &[]);
    let got = doc(&b);
    assert_eq!(got["digest"], doc(&a)["digest"], "{}", b.stderr);
    let rc = &got["remote_cache"];
    assert_eq!(rc["deb_hits"], 3, "{}", b.stderr);
    assert_eq!(rc["deb_misses"], 0, "{}", b.stderr);
    assert_eq!(rc["bytes_downloaded"].as_u64(), Some(deb_bytes));
    assert_eq!(rc["warnings"], Value::Array(vec![]), "{}", b.stderr);
    // Each .deb checked and unpacked here, each layer written here: what
    // the registry supplies is what the lock proves.
    assert!(
        b.stderr
            .contains("packages: 0 unpacked before, 3 unpacked now"),
        "{}",
        b.stderr
    );
    assert_eq!(got["layer_cache"]["misses"], 4, "{}", b.stderr);
    assert_same_layout(&p.path("out/a"), &p.path("out/b"));

    // B's cache folder now answers by itself: no registry, no mirror.
    drop(reg);
    let again = p.build("b", &["--offline"], &[]);
    assert_eq!(doc(&again)["digest"], got["digest"]);
    assert_eq!(doc(&again)["layer_cache"]["hits"], 4, "{}", again.stderr);
}

#[test]
fn pushing_what_the_registry_has_sends_nothing() {
    if !have_registry() {
        return;
    }
    let Fleet {
        reg: _reg,
        cache,
        repo: _repo,
        server: _server,
        p,
    } = Fleet::start();
    assert_eq!(
        remote(&p.build("a", &["--cache-to", &cache], &[]))["entries_pushed"],
        3
    );
    // Another runner reading and writing the same repository, as CI jobs do.
    let b = remote(&p.build("b", &["--cache-from", &cache, "--cache-to", &cache], &[]));
    assert_eq!(b["entries_pushed"], 0, "{b}");
    assert_eq!(b["entries_present"], 3, "{b}");
    assert_eq!(b["bytes_uploaded"], 0, "{b}");
    assert_eq!(b["deb_hits"], 3, "{b}");
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
    let (url, server) = repo.serve();
    let p = Project::new(&repo, &url);

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
    assert_eq!(pushed["entries_pushed"], 3, "{}", a.stderr);
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

    // Without credentials the registry refuses: a warning, and the
    // mirror supplies the .debs.
    let c = p.build("c", &["--cache-from", &cache], &[]);
    let rc = remote(&c);
    assert_eq!(rc["deb_hits"], 0, "{}", c.stderr);
    assert!(
        c.stderr.contains("warning: remote cache") && c.stderr.contains("401"),
        "{}",
        c.stderr
    );
    assert_eq!(doc(&c)["digest"], doc(&a)["digest"]);

    drop(server);
    let b = p.build(
        "b",
        &[],
        &[
            ("STELE_CACHE_FROM", Path::new(&cache)),
            ("REGISTRY_AUTH_FILE", &auth),
        ],
    );
    assert_eq!(remote(&b)["deb_hits"], 3, "{}", b.stderr);
    assert_eq!(doc(&b)["digest"], doc(&a)["digest"]);

    // A tag is not a cache repository.
    let bad = p.build("d", &["--cache-from", &format!("{cache}:v1")], &[]);
    bad.expect_fail();
    assert!(
        bad.stderr.contains("names a tag or digest"),
        "{}",
        bad.stderr
    );
}

/// A listener that accepts connections and never answers, counting them.
struct Silent {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Silent {
    fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(conn);
            }
        });
        Silent { port, accepted }
    }
}

/// Runs `cmd`, killing it (and failing) if it is not done in `limit`: a
/// hang must fail the test, not stall CI.
fn run_within(cmd: &mut std::process::Command, limit: Duration) -> Run {
    let dir = tempdir();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!(
                "still running after {limit:?}:\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Run {
        status,
        stdout: fs::read_to_string(out).unwrap(),
        stderr: fs::read_to_string(err).unwrap(),
    }
}

#[test]
fn a_cache_registry_that_hangs_or_refuses_costs_one_short_budget_once() {
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url);
    let plain = doc(&p.build("plain", &[], &[]))["digest"].clone();

    // Accepts and never answers; named as the README's setup names one
    // cache: from and to alike. The build does not wait past the budget
    // (the bound below is far above it, and far below the retries and
    // idle timeouts of other requests), says so once, and builds the
    // same image from the mirror.
    let silent = Silent::start();
    let hanging = format!("127.0.0.1:{}/team/cache", silent.port);
    let r = run_within(
        &mut p.command(
            "hanging",
            &[
                "--cache-from",
                &hanging,
                "--cache-to",
                &hanging,
                "--cache-timeout",
                "1s",
            ],
            &[],
        ),
        Duration::from_secs(120),
    );
    let got = doc(&r);
    assert_eq!(got["digest"], plain, "{}", r.stderr);
    let warnings = got["remote_cache"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("going on without it"),
        "{}",
        r.stderr
    );
    // The lookups that were in flight when it failed, and nothing after:
    // no retry, no push.
    let accepted = silent.accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=4).contains(&accepted), "{accepted} connections");

    // A refused port, the same way: one warning, no retries.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let closed = format!("127.0.0.1:{refused}/team/cache");
    let r = p.build(
        "refused",
        &["--cache-from", &closed, "--cache-to", &closed],
        &[],
    );
    let got = doc(&r);
    assert_eq!(got["digest"], plain, "{}", r.stderr);
    assert_eq!(r.stderr.matches(&closed).count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("gave up after 5"), "{}", r.stderr);
}

/// What an earlier stele would have taken from a registry on the entry's
/// record alone, pushed under the tags it would have asked: for each of
/// the build's layers, the same tar compressed another way; for each
/// .deb, an unpacked package whose index escapes the root, makes a file
/// setuid, or puts a file below a symlink.
fn push_hostile_entries(reg: &DockerRegistry, repo: &str, p: &Project, runner: &str) -> usize {
    let cache = p.path(&format!("cache-{runner}"));
    let builder = format!(
        "stele {} {}",
        env!("CARGO_PKG_VERSION"),
        sha256_digest(&fs::read(STELE).unwrap())
    );
    let record = |v: &Value| -> Value {
        let pointer = fs::read_to_string(v.as_str().unwrap()).unwrap();
        let hex = pointer.trim().strip_prefix("sha256:").unwrap().to_string();
        serde_json::from_slice(&fs::read(cache.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let artifact = |kind: &str, record: &[u8], layers: Vec<Value>| -> Vec<u8> {
        let config = push_blob(reg, repo, record);
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": kind,
            "config": {"mediaType": kind, "digest": config, "size": record.len()},
            "layers": layers,
        }))
        .unwrap()
    };
    let mut pushed = 0;
    let layer_kind = "application/vnd.dev.stele.cache.layer.v1+json";
    for entry in fs::read_dir(cache.join("layers/v1")).unwrap() {
        let entry = entry.unwrap();
        let key = entry.file_name().to_str().unwrap().to_string();
        let r = record(&Value::from(entry.path().to_str().unwrap()));
        let blob = blob(&cache, r["digest"].as_str().unwrap());
        let tar = decompress(r["media_type"].as_str().unwrap(), &blob);
        let mut other = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut other, &tar).unwrap();
        let other = other.finish().unwrap();
        assert_ne!(other, blob);
        let digest = push_blob(reg, repo, &other);
        let rec = serde_json::to_vec(&serde_json::json!({
            "format": 1, "key": format!("sha256:{key}"), "builder": builder,
            "profile": "stele-2026.2", "media_type": r["media_type"], "digest": digest,
            "size": other.len(), "diff_id": r["diff_id"],
        }))
        .unwrap();
        let manifest = artifact(
            layer_kind,
            &rec,
            vec![
                serde_json::json!({"mediaType": r["media_type"], "digest": digest, "size": other.len()}),
            ],
        );
        put_manifest(reg, repo, &format!("layer-v1-{key}"), &manifest);
        pushed += 1;
    }
    let unpacked_kind = "application/vnd.dev.stele.cache.unpacked.v1+json";
    for entry in fs::read_dir(cache.join("unpacked/v1")).unwrap() {
        let entry = entry.unwrap();
        let deb = entry.file_name().to_str().unwrap().to_string();
        // Side files (`<deb hex>.stamp`: the pack's stamp) are no records.
        if deb.contains('.') {
            continue;
        }
        let mut index = record(&Value::from(entry.path().to_str().unwrap()));
        let entries = index["entries"].as_array_mut().unwrap();
        let file = entries
            .iter()
            .position(|e| e["kind"] == "file")
            .expect("a package with a file");
        let mut escaping = entries[file].clone();
        escaping["path"] = Value::from("../../../../tmp/stele-escaped");
        let mut setuid = entries[file].clone();
        setuid["mode"] = Value::from(0o4755);
        entries[file] = setuid;
        entries.push(escaping);
        entries.push(serde_json::json!({"path": "zz", "kind": "symlink", "mode": 0o777, "uid": 0, "gid": 0, "mtime": 0, "target": "/etc"}));
        let mut below = entries[file].clone();
        below["path"] = Value::from("zz/passwd");
        entries.push(below);
        let index_bytes = serde_json::to_vec(&index).unwrap();
        let index_digest = push_blob(reg, repo, &index_bytes);
        let pack_hex = index["pack"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let pack = fs::read(cache.join("blobs/sha256").join(pack_hex)).unwrap();
        let pack_digest = push_blob(reg, repo, &pack);
        let rec = serde_json::to_vec(&serde_json::json!({
            "format": 1, "unpack_format": 1, "deb": format!("sha256:{deb}"),
            "index": index_digest, "index_size": index_bytes.len(),
            "pack": pack_digest, "pack_size": pack.len(),
        }))
        .unwrap();
        let manifest = artifact(
            unpacked_kind,
            &rec,
            vec![
                serde_json::json!({"mediaType": "application/vnd.dev.stele.unpacked.index.v1+json", "digest": index_digest, "size": index_bytes.len()}),
                serde_json::json!({"mediaType": "application/vnd.dev.stele.unpacked.pack.v1", "digest": pack_digest, "size": pack.len()}),
            ],
        );
        put_manifest(reg, repo, &format!("unpacked-v1.1-{deb}"), &manifest);
        pushed += 1;
    }
    pushed
}

#[test]
fn hostile_entries_in_a_cache_registry_never_reach_the_image_or_the_disk() {
    if !have_registry() || !have_tool("strace") {
        return;
    }
    let Fleet {
        reg,
        cache,
        repo: _repo,
        server: _server,
        p,
    } = Fleet::start();
    // The image a build without any cache makes.
    let a = doc(&p.build("a", &["--cache-to", &cache], &[]));
    assert_eq!(push_hostile_entries(&reg, "team/cache", &p, "a"), 7);

    let t = tempdir();
    let logged = reg.log().len();
    let cmd = p.command("b", &["--cache-from", &cache], &[]);
    let b = traced(&cmd, t.path());
    let got = doc(&b);
    assert_eq!(got["digest"], a["digest"], "{}", b.stderr);
    assert_same_layout(&p.path("out/a"), &p.path("out/b"));
    assert_eq!(got["remote_cache"]["warnings"], Value::Array(vec![]));
    // Asked for nothing but .debs by their digests.
    let log = reg.log()[logged..].to_string();
    assert!(!log.contains("/manifests/"), "an entry was read: {log}");
    assert!(log.contains("/blobs/sha256:"), "{log}");
    // Written: the output (and its staging folder beside it) and the
    // cache folder, nothing else.
    let cwd = std::env::current_dir().unwrap();
    let allowed = [p.path("out"), p.path("cache-b"), PathBuf::from("/dev/null")];
    let all = written(t.path(), &cwd);
    for place in &allowed[..2] {
        assert!(
            all.iter().any(|w| w.starts_with(place)),
            "{place:?}: {all:?}"
        );
    }
    let outside: Vec<PathBuf> = all
        .into_iter()
        .filter(|w| !allowed.iter().any(|a| w.starts_with(a)))
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the output and the cache: {outside:?}"
    );
    assert!(!Path::new("/tmp/stele-escaped").exists());
}

#[test]
fn a_registry_cache_is_pruned_through_the_registrys_api() {
    if !have_registry() {
        return;
    }
    let Fleet {
        reg,
        cache,
        repo: _repo,
        server: _server,
        p,
    } = Fleet::start();
    doc(&p.build("a", &["--cache-to", &cache], &[]));
    // Entries of the kinds earlier versions pushed (no age), and a tag
    // that is not stele's at all.
    assert_eq!(push_hostile_entries(&reg, "team/cache", &p, "a"), 7);
    let empty = push_blob(&reg, "team/cache", b"{}");
    let foreign = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "annotations": {"team": "not stele's"},
    });
    put_manifest(
        &reg,
        "team/cache",
        "release-1",
        &serde_json::to_vec(&foreign).unwrap(),
    );
    let debs: Vec<String> = {
        let mut d: Vec<String> = p.debs().iter().map(|h| format!("deb-v1-{h}")).collect();
        d.sort();
        d
    };
    assert_eq!(tags(&reg, "team/cache").len(), 3 + 7 + 1);

    let prune = |args: &[&str]| {
        let mut cmd = stele();
        cmd.args(["cache", "prune", "--remote", &cache, "--json"])
            .args(args);
        run(&mut cmd)
    };
    // A dry run removes nothing, and names what it would.
    let r = prune(&["--older-than", "1d", "--dry-run"]);
    r.expect_ok();
    let dry: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(dry["entries_removed"], 7, "{dry}");
    assert_eq!(tags(&reg, "team/cache").len(), 11);

    // Past an age: the entries of unknown age (the old kinds) go, the
    // .debs pushed just now and the foreign tag stay.
    prune(&["--older-than", "1d"]).expect_ok();
    let mut left = debs.clone();
    left.push("release-1".into());
    left.sort();
    assert_eq!(tags(&reg, "team/cache"), left);

    // Over a size: the .debs a lock that must keep building names stay.
    let lock = p.path("recipe.lock");
    let r = prune(&["--max-size", "0", "--keep", lock.to_str().unwrap()]);
    r.expect_ok();
    assert_eq!(tags(&reg, "team/cache"), left, "{}", r.stderr);
    let r = prune(&["--max-size", "0"]);
    r.expect_ok();
    assert_eq!(tags(&reg, "team/cache"), ["release-1"], "{}", r.stderr);

    // A registry that refuses deletes is named, with the fix.
    let closed = DockerRegistry::start_with(&RegistryOptions {
        no_delete: true,
        ..RegistryOptions::default()
    });
    let other = format!("{}/team/cache", closed.host());
    doc(&p.build("c", &["--cache-to", &other], &[]));
    let mut cmd = stele();
    cmd.args(["cache", "prune", "--remote", &other, "--max-size", "0"]);
    let r = run(&mut cmd);
    r.expect_fail();
    assert!(r.stderr.contains("delete: enabled: true"), "{}", r.stderr);
}
