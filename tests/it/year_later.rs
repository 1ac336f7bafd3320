//! A lock that keeps building after the mirror moves on (issue 25), with
//! the real parts: local signed repositories on 127.0.0.1, a mirror that
//! drops the locked versions, a snapshot service that answers any time
//! with the archive as it was, and a real docker-registry as the package
//! archive. Every route gives the image a build without any cache gives;
//! a poisoned .deb is refused and named; a route that is down costs that
//! route only; `lock --update PKG` moves PKG alone; `lock --check
//! --upgradable` says what the suites offer newer, security first.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::docker_registry::{have_registry, DockerRegistry};
use crate::support::http::HttpServer;
use crate::support::moving::*;
use crate::support::*;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(archive: &MovingArchive) -> Project {
        let p = Project {
            dir: archive.project(),
        };
        p.stele(archive, &["lock"], "lock-cache", None).expect_ok();
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn lock(&self) -> String {
        fs::read_to_string(self.path("recipe.lock")).unwrap()
    }

    /// `stele ARGS… RECIPE --cache-dir CACHE`, the mirror set, and the
    /// snapshot service `snapshot` (the archive's own: `SNAP`).
    fn stele(&self, a: &MovingArchive, args: &[&str], cache: &str, snapshot: Option<&str>) -> Run {
        let mut cmd = stele();
        cmd.args(args)
            .arg(self.path("recipe.toml"))
            .arg("--cache-dir")
            .arg(self.path(cache))
            .env("STELE_MIRROR_LOCAL", &a.mirror)
            .env_remove("STELE_MIRROR_SNAP");
        if let Some(url) = snapshot {
            cmd.env("STELE_MIRROR_SNAP", url);
        }
        run(&mut cmd)
    }

    /// `stele vendor RECIPE --to REF`: the locked .debs pushed, checked
    /// to succeed.
    fn vendor_to(&self, a: &MovingArchive, reference: &str) -> Run {
        let r = self.stele(a, &["vendor", "--to", reference], "push-cache", None);
        r.expect_ok();
        r
    }

    /// `stele build --json` into `out/<name>` with a cache of its own.
    fn build(&self, a: &MovingArchive, name: &str, args: &[&str], snapshot: Option<&str>) -> Run {
        let out = self.path(&format!("out/{name}"));
        let mut all = vec!["build", "--json", "--locked", "-o", out.to_str().unwrap()];
        all.extend_from_slice(args);
        self.stele(a, &all, &format!("cache-{name}"), snapshot)
    }
}

fn digest(r: &Run) -> String {
    r.expect_ok();
    let doc: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    doc["digest"].as_str().unwrap().to_string()
}

/// The sha256 hex of the locked .deb of `name`.
fn locked_sha(lock: &str, name: &str) -> String {
    let at = lock
        .find(&format!("name = \"{name}\""))
        .unwrap_or_else(|| panic!("{name} is not locked:\n{lock}"));
    locked_debs(&lock[at..])[0].clone()
}

#[test]
fn every_route_builds_the_image_of_a_build_without_cache_after_the_mirror_moved_on() {
    if !have_registry() {
        return;
    }
    let a = MovingArchive::new();
    let p = Project::new(&a);
    // The lock records when each suite's indexes were made.
    assert_eq!(
        p.lock()
            .matches(&format!("date = \"{RELEASE_DATE}\""))
            .count(),
        2,
        "{}",
        p.lock()
    );
    let want = digest(&p.build(&a, "plain", &[], None));

    // While the mirror has them: a vendored folder, and the registry as
    // package archive, filled without building.
    let vendor = p.path("vendor");
    let mut cmd = stele();
    cmd.arg("vendor")
        .arg(p.path("recipe.toml"))
        .arg(&vendor)
        .arg("--cache-dir")
        .arg(p.path("vendor-cache"))
        .env("STELE_MIRROR_LOCAL", &a.mirror);
    run(&mut cmd).expect_ok();
    let reg = DockerRegistry::start(None);
    let archive = format!("{}/team/debs", reg.host());
    let pushed = p.vendor_to(&a, &archive);
    assert!(
        pushed.stderr.contains("pushed 3 .deb(s)"),
        "{}",
        pushed.stderr
    );
    let debs = locked_debs(&p.lock());
    let mut expected: Vec<String> = debs.iter().map(|h| format!("deb-v1-{h}")).collect();
    expected.sort();
    assert_eq!(tags(&reg, "team/debs"), expected);

    a.move_on();

    // No route has them: a failure that names the package, its version
    // and platform, every place looked, and the ways out.
    let none = p.build(&a, "none", &[], None);
    none.expect_fail();
    for needle in [
        "hello 1.0-1 (amd64), locked for linux/amd64, is in none of the places stele looked",
        "/pool/main/h/hello/hello_1.0-1_amd64.deb: not there (HTTP 404)",
        "snapshot = \"SNAP\" but STELE_MIRROR_SNAP is not set",
        "--cache-from REF",
        "--vendor DIR",
        "`stele lock --update hello libgreet` instead locks what the mirror has now: that changes the image",
    ] {
        assert!(none.stderr.contains(needle), "{needle}:\n{}", none.stderr);
    }
    assert!(!p.path("out/none").exists());

    // The snapshot archive at the lock's time.
    let snap = p.build(&a, "snapshot", &[], Some(&a.snapshot));
    assert_eq!(digest(&snap), want, "{}", snap.stderr);
    assert!(
        snap.stderr
            .contains("1 from the mirror, 2 from the snapshot archive"),
        "{}",
        snap.stderr
    );
    let asked = a.snapshot_server.requests();
    assert!(
        asked.contains(&format!(
            "GET /{SNAPSHOT_TIME}/pool/main/h/hello/hello_1.0-1_amd64.deb"
        )),
        "{asked:?}"
    );

    // The registry, asked first: no mirror needed at all.
    let from_registry = p.build(&a, "registry", &["--cache-from", &archive], None);
    assert_eq!(digest(&from_registry), want, "{}", from_registry.stderr);
    let doc: Value = serde_json::from_str(&from_registry.stdout).unwrap();
    assert_eq!(
        doc["remote_cache"]["deb_hits"], 3,
        "{}",
        from_registry.stderr
    );

    // A vendored folder.
    let vendored = p.build(
        &a,
        "vendored",
        &["--vendor", vendor.to_str().unwrap()],
        None,
    );
    assert_eq!(digest(&vendored), want, "{}", vendored.stderr);
    for name in ["snapshot", "registry", "vendored"] {
        assert_same_layout(&p.path("out/plain"), &p.path(&format!("out/{name}")));
    }

    // `verify --rebuild` takes the registry's .debs too.
    let mut cmd = stele();
    cmd.arg("verify")
        .arg(p.path("out/plain"))
        .arg("--digest")
        .arg(&want)
        .arg("--rebuild")
        .arg(p.path("recipe.toml"))
        .arg("--cache-dir")
        .arg(p.path("cache-verify"))
        .arg("--cache-from")
        .arg(&archive)
        .env("STELE_MIRROR_LOCAL", &a.mirror);
    let verified = run(&mut cmd);
    verified.expect_ok();
    assert!(
        verified
            .stderr
            .contains(&format!("3 from remote cache {archive}")),
        "{}",
        verified.stderr
    );
}

#[test]
fn a_poisoned_deb_is_refused_named_and_never_changes_the_digest() {
    if !have_registry() {
        return;
    }
    let a = MovingArchive::new();
    let p = Project::new(&a);
    let want = digest(&p.build(&a, "plain", &[], None));
    let reg = DockerRegistry::start(None);
    let archive = format!("{}/team/debs", reg.host());
    p.vendor_to(&a, &archive);
    a.move_on();

    // The registry's copy of hello flipped on its disk: refused, named,
    // and the snapshot archive supplies it.
    let hello = locked_sha(&p.lock(), "hello");
    let data = blob_data(&reg, &hello);
    let mut bytes = fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&data, &bytes).unwrap();
    let r = p.build(
        &a,
        "poisoned-registry",
        &["--cache-from", &archive],
        Some(&a.snapshot),
    );
    assert_eq!(digest(&r), want, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "entry deb-v1-{hello} does not check out and is not used"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("1 from the snapshot archive"),
        "{}",
        r.stderr
    );

    // A snapshot service that serves other bytes under hello's name.
    let poisoned = tempdir();
    copy_tree(a.then.root(), poisoned.path());
    let pool = poisoned
        .path()
        .join("pool/main/h/hello/hello_1.0-1_amd64.deb");
    let mut bytes = fs::read(&pool).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad_sha = sha256_hex(&bytes);
    fs::write(&pool, &bytes).unwrap();
    let (url, _server) = HttpServer::serve_snapshots(poisoned.path());
    let r = p.build(&a, "poisoned-snapshot", &[], Some(&url));
    r.expect_fail();
    assert!(
        r.stderr
            .contains("hello_1.0-1_amd64.deb does not match its expected digest")
            && r.stderr.contains(&bad_sha),
        "{}",
        r.stderr
    );
    // Neither the other bytes nor anything under hello's name landed in
    // the cache, and nothing was written.
    let blobs = p.path("cache-poisoned-snapshot/blobs/sha256");
    assert!(!blobs.join(&bad_sha).exists());
    assert!(!blobs.join(&hello).exists());
    assert!(!p.path("out/poisoned-snapshot").exists());
}

#[test]
fn a_route_that_is_down_costs_that_route_only() {
    if !have_registry() {
        return;
    }
    let a = MovingArchive::new();
    let p = Project::new(&a);
    let want = digest(&p.build(&a, "plain", &[], None));
    a.move_on();
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // A registry that refuses: warned about once, and the mirror and the
    // snapshot archive go on.
    let down = format!("127.0.0.1:{refused}/team/debs");
    let r = p.build(
        &a,
        "registry-down",
        &["--cache-from", &down],
        Some(&a.snapshot),
    );
    assert_eq!(digest(&r), want, "{}", r.stderr);
    assert_eq!(r.stderr.matches(&down).count(), 1, "{}", r.stderr);

    // A snapshot service that is down, and no other route: the failure
    // says what the service said, beside every other place looked.
    let snapshot = format!("http://127.0.0.1:{refused}/archive");
    let r = p.build(&a, "snapshot-down", &[], Some(&snapshot));
    r.expect_fail();
    assert!(
        r.stderr.contains(&format!(
            "snapshot archive: http://127.0.0.1:{refused}/archive"
        )) && r.stderr.contains("Connection refused"),
        "{}",
        r.stderr
    );
}

#[test]
fn lock_update_moves_the_named_package_and_what_it_needs_only() {
    let a = MovingArchive::new();
    let p = Project::new(&a);
    let before = p.lock();
    let hello = locked_sha(&before, "hello");
    let data = locked_sha(&before, "data");
    a.move_on();

    // The security fix alone: hello stays 1.0-1 although the mirror now
    // has 1.1-1 and no longer 1.0-1 (its stanza comes from the snapshot
    // archive at the lock's time: this cache never saw the old indexes).
    let r = p.stele(
        &a,
        &["lock", "--update", "libgreet", "--json"],
        "update-cache",
        Some(&a.snapshot),
    );
    r.expect_ok();
    assert!(
        r.stderr
            .contains("libgreet 2.0-1 → 2.1-1 (stable-security)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hello"), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["changes"].as_array().unwrap().len(), 1, "{doc}");
    let after = p.lock();
    assert_eq!(locked_sha(&after, "hello"), hello);
    assert_eq!(locked_sha(&after, "data"), data);
    assert!(after.contains("version = \"2.1-1\""), "{after}");
    // It builds: hello from the snapshot archive, libgreet from the mirror.
    let r = p.build(&a, "updated", &[], Some(&a.snapshot));
    r.expect_ok();
    assert!(
        r.stderr
            .contains("2 from the mirror, 1 from the snapshot archive"),
        "{}",
        r.stderr
    );

    // An unknown name is refused before anything changes.
    let r = p.stele(
        &a,
        &["lock", "--update", "nosuch"],
        "update-cache",
        Some(&a.snapshot),
    );
    r.expect_fail();
    assert!(
        r.stderr.contains("the lock has no package nosuch"),
        "{}",
        r.stderr
    );
    assert_eq!(p.lock(), after);

    // Everything: hello moves too.
    let r = p.stele(&a, &["lock", "--update"], "update-cache", None);
    r.expect_ok();
    assert!(
        r.stderr.contains("hello 1.0-1 → 1.1-1 (stable)"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_upgradable_lists_what_the_suites_offer_newer_security_first() {
    let a = MovingArchive::new();
    let p = Project::new(&a);
    let r = p.stele(
        &a,
        &["lock", "--check", "--upgradable"],
        "check-cache",
        None,
    );
    r.expect_code(0);
    assert!(r.stderr.contains("offer nothing newer"), "{}", r.stderr);

    a.move_on();
    let r = p.stele(
        &a,
        &["lock", "--check", "--upgradable", "--json"],
        "check-cache",
        None,
    );
    r.expect_code(1);
    let security = r
        .stderr
        .find("security: libgreet 2.0-1 → 2.1-1 (stable-security)")
        .unwrap_or_else(|| panic!("{}", r.stderr));
    let plain = r
        .stderr
        .find("hello 1.0-1 → 1.1-1 (stable)")
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(security < plain, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let listed: Vec<(&str, bool)> = doc["upgradable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["security"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("libgreet", true), ("hello", false)]);
    assert_eq!(doc["status"], "fresh");

    // Stale says what changed.
    let recipe = p.path("recipe.toml");
    let text = fs::read_to_string(&recipe).unwrap();
    fs::write(
        &recipe,
        text.replace("[\"hello\", \"data\"]", "[\"hello\", \"data\", \"other\"]")
            .replace(
                "suite = \"stable-security\"",
                "suite = \"stable-security\", components = [\"main\", \"contrib\"]",
            ),
    )
    .unwrap();
    let r = p.stele(&a, &["lock", "--check"], "check-cache", None);
    r.expect_code(1);
    assert!(
        r.stderr.contains("is stale: source 2 (stable-security): components main → main contrib; `other` added (linux/amd64)"),
        "{}",
        r.stderr
    );
}
