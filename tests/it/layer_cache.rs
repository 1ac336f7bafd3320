//! Rebuilds through the `stele` binary: the unpacked-package cache and the
//! layer cache make a rebuild read no .deb and compress nothing that did
//! not change, and never change a byte of the image. Packages come from a
//! signed apt repository the tests make and serve on 127.0.0.1.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::*;

fn repo() -> AptRepo {
    let mut b = AptRepo::builder().suite("stable", &["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        b = b
            .deb(
                "stable",
                Deb::new("hello", "1.0-1", arch)
                    .field("Depends", "libgreet")
                    .entry(DebEntry::dir("usr/bin"))
                    .entry(DebEntry::exec(
                        "usr/bin/hello",
                        format!("#!/bin/sh\necho hello {arch}\n"),
                    ))
                    .entry(DebEntry::hardlink("usr/bin/hi", "usr/bin/hello")),
            )
            .deb(
                "stable",
                Deb::new("libgreet", "2.0-1", arch)
                    .entry(DebEntry::dir("usr/lib"))
                    .entry(DebEntry::file("usr/lib/libgreet.so.2", vec![b'g'; 70_000])),
            );
    }
    b.deb(
        "stable",
        Deb::new("data", "1", "all")
            .entry(DebEntry::dir("usr/share/data"))
            .entry(DebEntry::file("usr/share/data/table", "x y z\n")),
    )
    .build()
}

const RECIPE: &str = r#"
[image]
name = "cached"
epoch = 1700000000
platforms = PLATFORMS

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["hello", "data"]
layers = "per-package"

[[files]]
src = "app/"
dest = "/app"

[[files]]
src = "config.txt"
dest = "/etc/app.conf"

[config]
entrypoint = ["/usr/bin/hello"]
"#;

struct Project {
    dir: tempfile::TempDir,
    url: String,
}

impl Project {
    fn new(repo: &AptRepo, url: &str, platforms: &str) -> Project {
        let dir = tempdir();
        fs::copy(repo.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        fs::write(
            dir.path().join("recipe.toml"),
            RECIPE.replace("PLATFORMS", platforms),
        )
        .unwrap();
        write_file(&dir.path().join("app/main.sh"), "echo one\n", 0o755);
        write_file(&dir.path().join("app/lib/util.sh"), "util\n", 0o644);
        write_file(&dir.path().join("config.txt"), "level = 1\n", 0o644);
        let p = Project {
            dir,
            url: url.to_string(),
        };
        let mut cmd = stele();
        cmd.arg("lock")
            .arg(p.path("recipe.toml"))
            .arg("--cache-dir")
            .arg(p.cache())
            .env("STELE_MIRROR_LOCAL", &p.url);
        run(&mut cmd).expect_ok();
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// `stele build` into `out/NAME`, checked to succeed.
    fn build(&self, name: &str, extra: &[&str]) -> Run {
        let mut cmd = stele();
        cmd.arg("build")
            .arg(self.path("recipe.toml"))
            .arg("-o")
            .arg(self.path(&format!("out/{name}")))
            .arg("--cache-dir")
            .arg(self.cache())
            .args(extra)
            .env("STELE_MIRROR_LOCAL", &self.url);
        let r = run(&mut cmd);
        r.expect_ok();
        r
    }

    fn out(&self, name: &str) -> PathBuf {
        self.path(&format!("out/{name}"))
    }

    /// The sha256 of every package the lock names.
    fn locked_debs(&self) -> Vec<String> {
        let lock = fs::read_to_string(self.path("recipe.lock")).unwrap();
        lock.lines()
            .filter_map(|l| l.strip_prefix("sha256 = \"sha256:"))
            .map(|h| h.trim_end_matches('"').to_string())
            .collect()
    }
}

/// The numbers `stele build` reports for the layer cache.
fn layer_cache(r: &Run) -> (usize, usize) {
    let line = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("layer cache: hits "))
        .unwrap_or_else(|| panic!("no layer cache line:\n{}", r.stderr));
    let (hits, misses) = line.split_once(", misses ").expect("hits, misses");
    (hits.parse().unwrap(), misses.parse().unwrap())
}

fn unpacked(r: &Run) -> (usize, usize) {
    let line = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("packages: "))
        .unwrap_or_else(|| panic!("no packages line:\n{}", r.stderr));
    let (before, now) = line
        .trim_end_matches(" unpacked now")
        .split_once(" unpacked before, ")
        .expect("before, now");
    (before.parse().unwrap(), now.parse().unwrap())
}

fn layer_digests(layout: &Path) -> Vec<String> {
    check_layout(layout).manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_warm_rebuild_reads_no_package_and_writes_the_same_bytes() {
    let repo = repo();
    let (url, server) = repo.serve();
    let p = Project::new(&repo, &url, r#"["linux/amd64"]"#);
    let cold = p.build("cold", &[]);
    assert_eq!(unpacked(&cold), (0, 3), "{}", cold.stderr);
    // hello, libgreet and data, then the recipe's layer.
    assert_eq!(layer_cache(&cold), (0, 4), "{}", cold.stderr);

    // No server and no .deb left: only the unpacked packages and the
    // layer cache can make this build.
    drop(server);
    let debs = p.locked_debs();
    assert_eq!(debs.len(), 3);
    for hex in &debs {
        fs::remove_file(p.cache().join("blobs/sha256").join(hex)).unwrap();
    }
    let warm = p.build("warm", &["--offline"]);
    assert_eq!(unpacked(&warm), (3, 0), "{}", warm.stderr);
    assert_eq!(layer_cache(&warm), (4, 0), "{}", warm.stderr);
    assert_eq!(warm.last_line(), cold.last_line());
    assert_same_layout(&p.out("cold"), &p.out("warm"));

    // The layer cache off: every layer written anew, from the unpacked
    // packages, to the same bytes.
    let fresh = p.build("fresh", &["--offline", "--no-layer-cache"]);
    assert!(
        fresh.stderr.contains("layer cache: off, 4 layers written"),
        "{}",
        fresh.stderr
    );
    assert_same_layout(&p.out("cold"), &p.out("fresh"));
}

#[test]
fn changing_one_files_entry_rebuilds_only_the_recipe_layer() {
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, r#"["linux/amd64"]"#);
    p.build("before", &[]);
    let before = layer_digests(&p.out("before"));

    write_file(&p.path("app/main.sh"), "echo two\n", 0o755);
    let after = p.build("after", &[]);
    assert_eq!(layer_cache(&after), (3, 1), "{}", after.stderr);
    let layers = layer_digests(&p.out("after"));
    assert_eq!(layers.len(), before.len());
    assert_eq!(layers[..3], before[..3], "the package layers are reused");
    assert_ne!(layers[3], before[3], "the recipe layer is new");

    // What the cache gave is what a build without it writes.
    let check = p.build("check", &["--no-layer-cache"]);
    assert_eq!(check.last_line(), after.last_line());
    assert_same_layout(&p.out("after"), &p.out("check"));

    // Back to the first content: the first recipe layer is found again.
    write_file(&p.path("app/main.sh"), "echo one\n", 0o755);
    let again = p.build("again", &[]);
    assert_eq!(layer_cache(&again), (4, 0), "{}", again.stderr);
    assert_same_layout(&p.out("before"), &p.out("again"));
}

#[test]
fn thread_counts_and_cache_states_give_the_same_bytes() {
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, r#"["linux/amd64", "linux/arm64"]"#);
    let one = p.build("one", &["--no-layer-cache", "--jobs", "1"]);
    let four = p.build("four", &["--no-layer-cache", "--jobs", "4"]);
    // Each platform's hello; libgreet and data once each (their bytes
    // are the same on both: dpkg's status, which names the architecture,
    // is in the recipe layer), and each platform's recipe layer (it holds
    // that platform's SBOM and status).
    assert!(
        four.stderr.contains("layer cache: off, 6 layers written"),
        "{}",
        four.stderr
    );
    let cold = p.build("cold", &["--jobs", "4"]);
    assert_eq!(layer_cache(&cold), (0, 6), "{}", cold.stderr);
    let warm = p.build("warm", &["--jobs", "3"]);
    assert_eq!(layer_cache(&warm), (6, 0), "{}", warm.stderr);
    for run in [&four, &cold, &warm] {
        assert_eq!(run.last_line(), one.last_line());
    }
    for name in ["four", "cold", "warm"] {
        assert_same_layout(&p.out("one"), &p.out(name));
    }
}

#[test]
fn damaged_cache_entries_are_misses_and_rebuilt() {
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, r#"["linux/amd64"]"#);
    let first = p.build("first", &[]);
    let layers = layer_digests(&p.out("first"));

    // A cached layer blob rots in place: a miss, rebuilt. A layer a build
    // writes is one file in its output and the cache (a hard link), so
    // the earlier output's blob is that file, and rotten too: what a
    // check of it finds, as any check of the cache does.
    let victim = p.cache().join("blobs/sha256").join(&layers[1][7..]);
    let mut bytes = fs::read(&victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    fs::write(&victim, &bytes).unwrap();
    let r = p.build("rotten-blob", &[]);
    assert_eq!(layer_cache(&r), (3, 1), "{}", r.stderr);
    assert_eq!(r.last_line(), first.last_line());
    check_layout(&p.out("rotten-blob"));
    let first_blob = p.out("first").join("blobs/sha256").join(&layers[1][7..]);
    assert_eq!(fs::read(&first_blob).unwrap(), bytes);

    // An output blob changed in place changes the cache's too (the same
    // file): the next build finds it damaged, a miss, and rebuilds it.
    let output_blob = p.out("first").join("blobs/sha256").join(&layers[2][7..]);
    let mut bytes = fs::read(&output_blob).unwrap();
    bytes[0] ^= 0x55;
    fs::write(&output_blob, &bytes).unwrap();
    let r = p.build("after-output-edit", &[]);
    assert_eq!(layer_cache(&r), (3, 1), "{}", r.stderr);
    assert_eq!(r.last_line(), first.last_line());
    check_layout(&p.out("after-output-edit"));
    let r = p.build("healed", &[]);
    assert_eq!(
        layer_cache(&r),
        (4, 0),
        "the rebuilt layer was cached again"
    );

    // A record cut short: a miss, rebuilt.
    let records = p.cache().join("layers/v1");
    let record = fs::read_dir(&records)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_str().unwrap().starts_with('.'))
        .unwrap();
    fs::write(&record, "sha256:0123").unwrap();
    let r = p.build("cut-record", &[]);
    assert_eq!(layer_cache(&r), (3, 1), "{}", r.stderr);
    assert_eq!(r.last_line(), first.last_line());
    check_layout(&p.out("cut-record"));

    // A package's unpacked files damaged: the pack no longer hashes to
    // its name, so the package is a miss and is unpacked again from its
    // .deb; the damaged file is never used.
    let packs: Vec<PathBuf> = p
        .locked_debs()
        .iter()
        .map(|hex| p.cache().join("unpacked/v1").join(hex))
        .map(|record| {
            let index = fs::read_to_string(record).unwrap();
            let index = blob(&p.cache(), index.trim());
            let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
            let pack = index["pack"].as_str().unwrap();
            p.cache().join("blobs/sha256").join(&pack[7..])
        })
        .collect();
    let pack = packs
        .iter()
        .find(|p| fs::metadata(p).unwrap().len() > 1000)
        .unwrap();
    let mut bytes = fs::read(pack).unwrap();
    bytes[500] ^= 1;
    fs::write(pack, &bytes).unwrap();
    let r = p.build("unpacked-again", &["--no-layer-cache"]);
    assert_eq!(unpacked(&r), (2, 1), "{}", r.stderr);
    assert_eq!(r.last_line(), first.last_line());
}
