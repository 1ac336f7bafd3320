//! `[apt]` end to end through the `stele` binary, against signed apt
//! repositories the tests make and serve on 127.0.0.1: resolve, lock,
//! build, rebuild offline from the cache and from a vendored folder, and
//! every broken link of the trust chain refused with nothing written.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const EPOCH: u64 = 1_700_000_000;

fn passwd_masters() -> Deb {
    Deb::new("base-passwd", "3.6.1", "amd64")
        .field("Essential", "yes")
        .entry(DebEntry::dir("usr/share/base-passwd"))
        .entry(DebEntry::file(
            "usr/share/base-passwd/passwd.master",
            "root:*:0:0:root:/root:/bin/sh\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        ))
        .entry(DebEntry::file(
            "usr/share/base-passwd/group.master",
            "root:*:0:\ndaemon:*:1:\n",
        ))
}

/// hello depends on libgreet (two versions published: the newer wins),
/// and on base-passwd; `data` is architecture-independent.
fn packages(arch: &str) -> Vec<Deb> {
    vec![
        Deb::new("hello", "1.0-1", arch)
            .field("Depends", "libgreet (>= 1.5) | libother, base-passwd")
            .entry(DebEntry::dir("bin"))
            .entry(DebEntry::exec("bin/hello", format!("#!/bin/sh\necho hello {arch}\n")))
            .entry(DebEntry::dir("usr/share/doc/hello"))
            .entry(DebEntry::file(
                "usr/share/doc/hello/copyright",
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2024 Someone\nLicense: MIT\n",
            )),
        Deb::new("libgreet", "1.0-1", arch)
            .entry(DebEntry::dir("usr/lib"))
            .entry(DebEntry::file("usr/lib/libgreet.so.1", "old")),
        Deb::new("libgreet", "2.0-1", arch)
            .entry(DebEntry::dir("usr/lib"))
            .entry(DebEntry::file("usr/lib/libgreet.so.2", "new")),
        Deb::new("broken", "1.0", arch).field("Depends", "libgreet (>= 9)"),
        Deb::new("base-passwd", "3.6.1", arch).entries(passwd_masters().entries),
    ]
}

fn data() -> Deb {
    Deb::new("data", "2:0.5", "all")
        .entry(DebEntry::dir("usr/share/data"))
        .entry(DebEntry::file("usr/share/data/table", "x y z\n"))
}

fn repo(builder: AptRepoBuilder) -> AptRepo {
    let mut b = builder
        .suite("stable", &["amd64", "arm64"])
        .deb("stable", data());
    for arch in ["amd64", "arm64"] {
        for d in packages(arch) {
            b = b.deb("stable", d);
        }
    }
    b.build()
}

const RECIPE: &str = r#"
[image]
name = "pkgs"
epoch = 1700000000
platforms = PLATFORMS

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = PACKAGES
layers = "LAYERS"

[[accounts.users]]
name = "nonroot"
uid = 65532

[[paths]]
path = "/usr/share/data/table"
kind = "absent"

[config]
entrypoint = ["/bin/hello"]
"#;

/// A recipe folder for `repo`, with its keyring beside the recipe.
struct Project {
    dir: tempfile::TempDir,
    url: String,
}

impl Project {
    fn new(repo: &AptRepo, url: &str, platforms: &str, packages: &str, layers: &str) -> Project {
        Project::new_in(tempdir(), repo, url, platforms, packages, layers)
    }

    fn new_in(
        dir: tempfile::TempDir,
        repo: &AptRepo,
        url: &str,
        platforms: &str,
        packages: &str,
        layers: &str,
    ) -> Project {
        fs::copy(repo.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        fs::write(
            dir.path().join("recipe.toml"),
            RECIPE
                .replace("PLATFORMS", platforms)
                .replace("PACKAGES", packages)
                .replace("LAYERS", layers),
        )
        .unwrap();
        Project {
            dir,
            url: url.to_string(),
        }
    }

    fn recipe(&self) -> PathBuf {
        self.dir.path().join("recipe.toml")
    }
    fn lock(&self) -> PathBuf {
        self.dir.path().join("recipe.lock")
    }
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `stele ARGS… RECIPE` with the mirror variable and cache set.
    fn stele(&self, args: &[&str]) -> Run {
        let mut cmd = stele();
        cmd.args(args)
            .arg(self.recipe())
            .arg("--cache-dir")
            .arg(self.cache())
            .env("STELE_MIRROR_LOCAL", &self.url);
        run(&mut cmd)
    }

    fn build(&self, extra: &[&str]) -> Run {
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        let mut cmd = stele();
        cmd.args(&args)
            .arg(self.recipe())
            .arg("-o")
            .arg(self.out())
            .arg("--cache-dir")
            .arg(self.cache())
            .env("STELE_MIRROR_LOCAL", &self.url);
        run(&mut cmd)
    }
}

fn entries_of(layout: &Path, desc: &serde_json::Value) -> Vec<TarEntry> {
    let mt = desc["mediaType"].as_str().unwrap();
    tar_entries(&decompress(mt, &descriptor_blob(layout, desc)))
}

#[test]
fn lock_build_and_rebuild_offline_from_cache_and_vendor() {
    let repo = repo(AptRepo::builder());
    let (url, server) = repo.serve();
    let p = Project::new(
        &repo,
        &url,
        "[\"linux/amd64\"]",
        "[\"hello\", \"data\"]",
        "single",
    );

    let r = p.stele(&["lock"]);
    r.expect_ok();
    let lock = fs::read_to_string(p.lock()).unwrap();
    assert!(
        !lock.contains("127.0.0.1"),
        "the lock names no mirror:\n{lock}"
    );
    for (name, version) in [
        ("hello", "1.0-1"),
        ("libgreet", "2.0-1"),
        ("base-passwd", "3.6.1"),
        ("data", "2:0.5"),
    ] {
        let published = repo
            .debs
            .iter()
            .find(|d| {
                d.name == name && d.version == version && (d.arch == "amd64" || d.arch == "all")
            })
            .unwrap();
        assert!(
            lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"")),
            "{name} {version} missing:\n{lock}"
        );
        assert!(
            lock.contains(&published.sha256.to_string()),
            "{name} hash:\n{lock}"
        );
        assert!(lock.contains(&published.pool_path), "{name} path:\n{lock}");
    }
    assert!(
        !lock.contains("\"libgreet\"\nversion = \"1.0-1\""),
        "{lock}"
    );
    assert!(!lock.contains("broken"), "{lock}");

    let r = p.build(&["--locked"]);
    r.expect_ok();
    let digest = r.last_line().to_string();
    let l = check_layout(&p.out());
    assert_eq!(l.manifest_digest, digest);
    assert_eq!(l.layers.len(), 2, "packages, then the recipe's layer");
    let pkgs = entries_of(&p.out(), &l.manifest["layers"][0]);
    let names: Vec<&str> = pkgs.iter().map(|e| e.path.as_str()).collect();
    for want in [
        "bin",
        "usr/bin/hello",
        "usr/lib/libgreet.so.2",
        "var/lib/dpkg/status.d/hello",
        "var/lib/dpkg/status.d/libgreet",
        "usr/share/base-passwd/passwd.master",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    assert!(
        !names.contains(&"usr/share/data/table"),
        "absent removes it from the package"
    );
    assert!(names.contains(&"usr/share/data/"), "{names:?}");
    let bin = pkgs.iter().find(|e| e.path == "bin").unwrap();
    assert_eq!((bin.kind, bin.link.as_deref()), ('l', Some("usr/bin")));
    for e in &pkgs {
        assert!(
            e.mtime <= EPOCH,
            "{} mtime {} after the epoch",
            e.path,
            e.mtime
        );
    }
    let status = pkgs
        .iter()
        .find(|e| e.path == "var/lib/dpkg/status.d/hello")
        .unwrap();
    let status = String::from_utf8(status.data.clone()).unwrap();
    assert!(
        status.contains("Package: hello\n") && status.contains("Status: install ok installed\n"),
        "{status}"
    );
    let recipe_layer = entries_of(&p.out(), &l.manifest["layers"][1]);
    let passwd = recipe_layer
        .iter()
        .find(|e| e.path == "etc/passwd")
        .unwrap();
    let passwd = String::from_utf8(passwd.data.clone()).unwrap();
    assert!(
        passwd.contains("daemon:x:1:1:") || passwd.contains("daemon:*:1:1:"),
        "masters merged: {passwd}"
    );
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    assert!(
        !recipe_layer.iter().any(|e| e.path.contains(".wh.")),
        "nothing below to white out"
    );

    // The server goes away: the cache alone rebuilds the same bytes.
    drop(server);
    let before = snapshot(&p.out());
    let r = p.build(&["--offline", "--locked"]);
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
    assert_eq!(
        snapshot(&p.out()),
        before,
        "offline rebuild is byte-identical"
    );

    // A vendored folder fills a cold cache offline.
    let vendor = p.dir.path().join("vendor");
    let mut cmd = stele();
    cmd.arg("vendor")
        .arg(p.recipe())
        .arg(&vendor)
        .arg("--cache-dir")
        .arg(p.cache());
    run(&mut cmd).expect_ok();
    fs::remove_dir_all(p.cache()).unwrap();
    let r = p.build(&["--offline", "--locked"]);
    r.expect_fail();
    assert!(
        r.stderr.contains("not in the cache") && r.stderr.contains("--offline"),
        "{}",
        r.stderr
    );
    let vendor_arg = vendor.to_str().unwrap().to_string();
    let r = p.build(&["--offline", "--locked", "--vendor", &vendor_arg]);
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
}

#[test]
fn a_stale_or_missing_lock_under_locked_is_refused() {
    let repo = repo(AptRepo::builder());
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, "[\"linux/amd64\"]", "[\"hello\"]", "single");
    let r = p.build(&["--locked"]);
    r.expect_fail();
    assert!(
        r.stderr.contains("--locked") && r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );
    assert!(!p.lock().exists() && !p.out().exists());

    p.stele(&["lock"]).expect_ok();
    let text = fs::read_to_string(p.recipe()).unwrap();
    fs::write(
        p.recipe(),
        text.replace("[\"hello\"]", "[\"hello\", \"data\"]"),
    )
    .unwrap();
    let r = p.build(&["--locked"]);
    r.expect_fail();
    assert!(r.stderr.contains("stale"), "{}", r.stderr);
    // Without --locked the lock is brought up to date and the build runs.
    let r = p.build(&[]);
    r.expect_ok();
    assert!(fs::read_to_string(p.lock())
        .unwrap()
        .contains("name = \"data\""));
    // Formatting and comments do not make a lock stale.
    let text = fs::read_to_string(p.recipe()).unwrap();
    fs::write(
        p.recipe(),
        format!("# a comment\n{}", text.replace(" = ", "=")),
    )
    .unwrap();
    p.build(&["--locked"]).expect_ok();
}

#[test]
fn platforms_make_an_index_and_per_package_layers() {
    let repo = repo(AptRepo::builder());
    let (url, _server) = repo.serve();
    let p = Project::new(
        &repo,
        &url,
        "[\"linux/arm64\", \"linux/amd64\"]",
        "[\"hello\", \"data\"]",
        "per-package",
    );
    let r = p.build(&[]);
    r.expect_ok();
    let index = json(&fs::read(p.out().join("index.json")).unwrap());
    let top = &index["manifests"][0];
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(top["digest"], r.last_line());
    let image_index = json(&descriptor_blob(&p.out(), top));
    let platforms: Vec<String> = image_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64"],
        "sorted by platform"
    );
    let mut data_layers = Vec::new();
    for (m, arch) in image_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["amd64", "arm64"])
    {
        let manifest = json(&descriptor_blob(&p.out(), m));
        let layers = manifest["layers"].as_array().unwrap();
        // base-passwd, data, hello, libgreet: one layer each, then ours.
        assert_eq!(layers.len(), 5, "{manifest}");
        let mut found_hello = false;
        for l in &layers[..4] {
            let entries = entries_of(&p.out(), l);
            if let Some(h) = entries.iter().find(|e| e.path == "usr/bin/hello") {
                assert_eq!(h.data, format!("#!/bin/sh\necho hello {arch}\n").as_bytes());
                found_hello = true;
            }
            if entries
                .iter()
                .any(|e| e.path == "var/lib/dpkg/status.d/data")
            {
                data_layers.push(l["digest"].clone());
            }
        }
        assert!(found_hello, "{arch}");
    }
    assert_eq!(data_layers.len(), 2);
    assert_eq!(
        data_layers[0], data_layers[1],
        "an arch-all package is the same layer on every platform"
    );
}

/// Each broken input: a clear error naming it, a non-zero exit, no output,
/// no lockfile, and nothing unverified in the cache.
#[test]
fn broken_repositories_and_requests_are_refused_with_nothing_written() {
    let bad_entry =
        |name: &str, path: &str| Deb::new(name, "1.0", "amd64").entry(DebEntry::file(path, "x"));
    let cases: Vec<(&str, AptRepoBuilder, &str, Vec<&str>)> = vec![
        (
            "unknown key",
            AptRepo::builder().signing(Signing::UnknownKey),
            "[\"hello\"]",
            vec!["InRelease", "no valid signature"],
        ),
        (
            "unsigned",
            AptRepo::builder().signing(Signing::Unsigned),
            "[\"hello\"]",
            vec!["InRelease", "not signed"],
        ),
        (
            "Packages hash",
            AptRepo::builder().tamper(Tamper::PackagesHashMismatch),
            "[\"hello\"]",
            vec!["Packages", "does not match the signed Release"],
        ),
        (
            "deb hash",
            AptRepo::builder().tamper(Tamper::DebHashMismatch("hello".into())),
            "[\"hello\"]",
            vec!["hello", "does not match its expected digest"],
        ),
        (
            "missing package",
            AptRepo::builder(),
            "[\"nosuch\"]",
            vec!["nosuch"],
        ),
        (
            "unsatisfiable",
            AptRepo::builder(),
            "[\"broken\"]",
            vec!["broken", "libgreet (>= 9)"],
        ),
        (
            "corrupt deb",
            AptRepo::builder().tamper(Tamper::CorruptDeb("hello".into())),
            "[\"hello\"]",
            vec!["hello"],
        ),
        (
            "traversal",
            AptRepo::builder().deb("stable", bad_entry("evil", "../../etc/x")),
            "[\"evil\"]",
            vec!["evil", "refusing", ".."],
        ),
        (
            "absolute",
            AptRepo::builder().deb("stable", bad_entry("abs", "/etc/x")),
            "[\"abs\"]",
            vec!["abs", "refusing", "absolute"],
        ),
    ];
    for (what, builder, packages, needles) in cases {
        let repo = repo(builder);
        let (url, _server) = repo.serve();
        let p = Project::new(&repo, &url, "[\"linux/amd64\"]", packages, "single");
        let r = p.build(&[]);
        r.expect_fail();
        for n in needles {
            assert!(r.stderr.contains(n), "{what}: `{n}` not in:\n{}", r.stderr);
        }
        assert!(!p.out().exists(), "{what}: output written");
        assert!(
            leftovers(p.dir.path(), ".stele-").is_empty(),
            "{what}: staging left"
        );
        let lock_should_exist =
            matches!(what, "deb hash" | "corrupt deb" | "traversal" | "absolute");
        assert_eq!(
            p.lock().exists(),
            lock_should_exist,
            "{what}: the lock is written once resolving succeeded, never before"
        );
        // The cache holds only files whose hash was checked.
        if let Ok(rd) = fs::read_dir(p.cache().join("blobs/sha256")) {
            for e in rd {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                assert!(
                    !name.starts_with(".tmp"),
                    "{what}: temp file {name} left in the cache"
                );
                let bytes = fs::read(e.path()).unwrap();
                assert_eq!(sha256_hex(&bytes), name, "{what}: unverified cache entry");
            }
        }
    }
}

/// A package's static binary runs under podman: the package path all the
/// way from a signed repository to a running container.
#[test]
fn podman_runs_a_binary_from_a_package() {
    if !have_tool("podman") || !have_tool("gcc") {
        return;
    }
    let work = tempdir();
    let Some(bin) = crate::support::podman::compile_hello(work.path()) else {
        return;
    };
    let repo = AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb(
            "stable",
            Deb::new("hello", "1.0-1", "amd64")
                .entry(DebEntry::dir("usr/bin"))
                .entry(DebEntry::exec("usr/bin/hello", fs::read(&bin).unwrap())),
        )
        .build();
    let (url, _server) = repo.serve();
    // podman names an oci: image after its path, which must be lowercase.
    let p = Project::new_in(
        crate::support::podman::lowercase_tempdir(),
        &repo,
        &url,
        "[\"linux/amd64\"]",
        "[\"hello\"]",
        "single",
    );
    let text = fs::read_to_string(p.recipe()).unwrap();
    fs::write(
        p.recipe(),
        text.replace(
            "entrypoint = [\"/bin/hello\"]",
            "entrypoint = [\"/usr/bin/hello\"]",
        )
        .replace(
            "[[paths]]\npath = \"/usr/share/data/table\"\nkind = \"absent\"\n",
            "",
        ),
    )
    .unwrap();
    p.build(&[]).expect_ok();
    let storage = crate::support::podman::lowercase_tempdir();
    let r = crate::support::podman::podman_run(
        storage.path(),
        &format!("oci:{}:latest", p.out().display()),
    );
    r.expect_ok();
    assert_eq!(
        r.stdout, "hello from stele\nuid=0 gid=0\ncwd=/\ngreeting=(none)\n",
        "{}",
        r.stderr
    );
}

#[test]
fn lock_check_answers_ci_and_mirrors_or_keyrings_never_make_a_lock_stale() {
    let repo = repo(AptRepo::builder());
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, "[\"linux/amd64\"]", "[\"hello\"]", "single");
    // Missing: exit 1, nothing written.
    let r = p.stele(&["lock", "--check"]);
    r.expect_code(1);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
    assert!(!p.lock().exists());
    p.stele(&["lock"]).expect_ok();
    p.stele(&["lock", "--check"]).expect_code(0);
    let first = p.build(&["--locked"]);
    first.expect_ok();
    // hello, libgreet 2.0 and base-passwd: downloaded once, with a rate.
    assert!(
        first.stderr.contains("downloading 3 package(s)")
            && first.stderr.contains("downloaded 3 package(s)")
            && first.stderr.contains("/s"),
        "{}",
        first.stderr
    );
    let digest = first.last_line().to_string();
    let lock_bytes = fs::read(p.lock()).unwrap();

    // The same archive under another name, by URL, and with its keyring
    // elsewhere: the lock still answers and the image is the same.
    fs::copy(
        p.dir.path().join("keyring.gpg"),
        p.dir.path().join("other.gpg"),
    )
    .unwrap();
    let text = fs::read_to_string(p.recipe()).unwrap();
    for edited in [
        text.replace("mirror = \"LOCAL\"", &format!("mirror = \"{url}\"")),
        text.replace("keyring.gpg", "other.gpg"),
        text.replace("layers = \"single\"", "layers = \"single\" # again"),
    ] {
        fs::write(p.recipe(), &edited).unwrap();
        p.stele(&["lock", "--check"]).expect_code(0);
        let r = p.build(&["--locked"]);
        r.expect_ok();
        assert_eq!(r.last_line(), digest, "{edited}");
    }
    assert_eq!(fs::read(p.lock()).unwrap(), lock_bytes);

    // Another package list: stale, reported, and left as it was.
    fs::write(
        p.recipe(),
        text.replace("[\"hello\"]", "[\"hello\", \"data\"]"),
    )
    .unwrap();
    let r = p.stele(&["lock", "--check", "--json"]);
    r.expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["status"], "stale");
    assert_eq!(fs::read(p.lock()).unwrap(), lock_bytes);

    // `lock` takes no flag it would ignore.
    for flag in ["--locked", "--offline", "--vendor"] {
        let r = p.stele(&["lock", flag]);
        r.expect_code(2);
        assert!(r.stderr.contains(flag), "{}", r.stderr);
    }
}

/// On a terminal, a download shows a status line that updates in place
/// (packages and bytes done, rate); in a log it shows whole lines only.
#[test]
fn downloads_show_progress_on_a_terminal() {
    if !have_tool("script") {
        return;
    }
    let repo = repo(AptRepo::builder());
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, "[\"linux/amd64\"]", "[\"hello\"]", "single");
    p.stele(&["lock"]).expect_ok();
    // script(1) gives the command a pseudo-terminal; the environment is the
    // test helper's, so the run keeps its own HOME, TMPDIR and cache.
    let helper = stele();
    let mut cmd = Command::new("script");
    for (k, v) in helper.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let line = format!(
        "{} build {} -o {} --cache-dir {}",
        STELE,
        p.recipe().display(),
        p.out().display(),
        p.cache().display()
    );
    let r = run(cmd
        .env("STELE_MIRROR_LOCAL", &url)
        .args(["-qec", &line, "/dev/null"]));
    r.expect_ok();
    assert!(
        r.stdout.contains("\r\x1b[2K  3/3 package(s)") && r.stdout.contains("downloaded 3"),
        "{:?}",
        r.stdout
    );
    // Not a terminal: no status line at all.
    let plain = Project::new(&repo, &url, "[\"linux/amd64\"]", "[\"hello\"]", "single");
    plain.stele(&["lock"]).expect_ok();
    let r = plain.build(&[]);
    r.expect_ok();
    assert!(!r.stderr.contains('\r'), "{:?}", r.stderr);
}

#[test]
fn a_lock_keeps_the_encoding_profile_its_builds_use() {
    let repo = repo(AptRepo::builder());
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url, "[\"linux/amd64\"]", "[\"hello\"]", "single");
    let encoding_of = |p: &Project| {
        let l = check_layout(&p.out());
        l.manifest["annotations"]["dev.stele.encoding"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // A new lock gets the newest profile.
    p.stele(&["lock"]).expect_ok();
    let lock = fs::read_to_string(p.lock()).unwrap();
    assert!(lock.contains("encoding = \"stele-2026.2\""), "{lock}");
    let new = p.build(&["--locked"]);
    new.expect_ok();
    assert_eq!(encoding_of(&p), "stele-2026.2");

    // A lock made before 2026.2 keeps building with 2026.1, to the same
    // digest every time.
    fs::write(
        p.lock(),
        lock.replace("\"stele-2026.2\"", "\"stele-2026.1\""),
    )
    .unwrap();
    let old = p.build(&["--locked"]);
    old.expect_ok();
    assert_eq!(encoding_of(&p), "stele-2026.1");
    assert_ne!(old.last_line(), new.last_line());
    let again = p.build(&["--locked"]);
    again.expect_ok();
    assert_eq!(again.last_line(), old.last_line());

    // A recipe naming another profile than its lock makes the lock stale.
    let text = fs::read_to_string(p.recipe()).unwrap();
    fs::write(
        p.recipe(),
        text.replacen("[image]\n", "[image]\nencoding = \"stele-2026.2\"\n", 1),
    )
    .unwrap();
    let r = p.build(&["--locked"]);
    r.expect_fail();
    assert!(r.stderr.contains("stale"), "{}", r.stderr);
    p.build(&[]).expect_ok();
    assert_eq!(encoding_of(&p), "stele-2026.2");
    assert!(fs::read_to_string(p.lock())
        .unwrap()
        .contains("encoding = \"stele-2026.2\""));

    // A profile this stele does not know is refused, naming the lock.
    fs::write(p.recipe(), &text).unwrap();
    fs::write(
        p.lock(),
        lock.replace("\"stele-2026.2\"", "\"stele-2099.1\""),
    )
    .unwrap();
    let r = p.build(&[]);
    r.expect_fail();
    assert!(
        r.stderr.contains("recipe.lock") && r.stderr.contains("stele-2099.1"),
        "{}",
        r.stderr
    );
}
