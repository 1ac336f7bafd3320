//! `[apt]` end to end through the `stele` binary, against signed apt
//! repositories the tests make and serve on 127.0.0.1: resolve, lock,
//! build, rebuild offline from the cache and from a vendored folder, and
//! every broken link of the trust chain refused with nothing written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const EPOCH: u64 = 1_700_000_000;

pub(crate) fn passwd_masters() -> Deb {
    Deb::new("base-passwd", "3.6.1", "amd64")
        .field("Essential", "yes")
        .entry(DebEntry::dir("usr/share/base-passwd"))
        .entry(DebEntry::file(
            "usr/share/base-passwd/passwd.master",
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
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
pub(crate) struct Project {
    dir: tempfile::TempDir,
    url: String,
}

impl Project {
    pub(crate) fn new(
        repo: &AptRepo,
        url: &str,
        platforms: &str,
        packages: &str,
        layers: &str,
    ) -> Project {
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
    pub(crate) fn out(&self) -> PathBuf {
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

    pub(crate) fn build(&self, extra: &[&str]) -> Run {
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
        "var/lib/dpkg/info/hello.list",
        "var/lib/dpkg/info/libgreet.list",
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
    // dpkg's status describes every package: it is in the recipe layer.
    let status = entries_of(&p.out(), &l.manifest["layers"][1])
        .into_iter()
        .find(|e| e.path == "var/lib/dpkg/status")
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
                .any(|e| e.path == "var/lib/dpkg/info/data.list")
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

/// The paths of every layer of each platform's image in `layout`, by
/// platform (`linux/amd64`, …).
fn paths_by_platform(layout: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let index = json(&fs::read(layout.join("index.json")).unwrap());
    let image_index = json(&descriptor_blob(layout, &index["manifests"][0]));
    let mut by_platform = BTreeMap::new();
    for m in image_index["manifests"].as_array().unwrap() {
        let platform = format!(
            "{}/{}",
            m["platform"]["os"].as_str().unwrap(),
            m["platform"]["architecture"].as_str().unwrap()
        );
        let manifest = json(&descriptor_blob(layout, m));
        let paths = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| entries_of(layout, l))
            .map(|e| e.path)
            .collect();
        by_platform.insert(platform, paths);
    }
    by_platform
}

/// The package names the lock at `path` holds for each platform.
fn locked_names(path: &Path) -> BTreeMap<String, Vec<String>> {
    let lock: toml::Value = toml::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    lock["platforms"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(platform, section)| {
            let names = section["package"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            (platform.clone(), names)
        })
        .collect()
}

/// What the two-platform recipe of the test below builds to. (Moved in
/// this round by what images hold: the embedded SBOM's purls gained
/// `distro=` and `upstream=` and an operating-system package; a new lock
/// records its sources' dates, and the lock's digest is in the image;
/// the image holds dpkg's own database and what the postinsts' file
/// commands make.)
const GOLDEN_PER_PLATFORM: &str =
    "sha256:315c4c41dc67917e6025c3b032827b175098f9d74b179bf17cf6d8d79515c532";

/// `{ name, platforms }` entries: each platform is resolved from the
/// entries that name it (a package its architecture lacks is never asked
/// for there), locked in its own section and installed only there; which
/// platforms an entry names is part of the lock's staleness.
#[test]
fn packages_limited_to_platforms_are_locked_and_installed_only_there() {
    let repo = {
        let mut b = AptRepo::builder()
            .suite("stable", &["amd64", "arm64"])
            .deb("stable", data())
            .deb(
                "stable",
                Deb::new("amdtool", "1.0", "amd64")
                    .entry(DebEntry::dir("usr/bin"))
                    .entry(DebEntry::exec("usr/bin/amdtool", "#!/bin/sh\n")),
            );
        for arch in ["amd64", "arm64"] {
            for d in packages(arch) {
                b = b.deb("stable", d);
            }
        }
        b.build()
    };
    let (url, _server) = repo.serve();
    let p = Project::new(
        &repo,
        &url,
        "[\"linux/amd64\", \"linux/arm64\"]",
        "[\"data\",\n  { name = \"amdtool\", platforms = [\"linux/amd64\"] },\n  { name = \"hello\", platforms = [\"linux/arm64\"] }]",
        "single",
    );
    p.stele(&["lock"]).expect_ok();
    assert_eq!(
        locked_names(&p.lock()),
        BTreeMap::from([
            (
                "linux/amd64".to_string(),
                vec!["amdtool".to_string(), "data".to_string()]
            ),
            (
                "linux/arm64".to_string(),
                ["base-passwd", "data", "hello", "libgreet"]
                    .map(String::from)
                    .to_vec()
            ),
        ])
    );
    p.stele(&["lock", "--check"]).expect_code(0);

    let r = p.build(&["--locked"]);
    r.expect_ok();
    // The repository, its key and its .debs are made the same every run,
    // so this is a golden digest: a change to how packages are installed
    // or a lock is read shows here (update it only on purpose).
    assert_eq!(r.last_line(), GOLDEN_PER_PLATFORM, "{}", r.stderr);
    let paths = paths_by_platform(&p.out());
    assert!(paths["linux/amd64"].contains("usr/bin/amdtool"));
    assert!(!paths["linux/amd64"].contains("usr/bin/hello"));
    assert!(paths["linux/arm64"].contains("usr/bin/hello"));
    assert!(!paths["linux/arm64"].contains("usr/bin/amdtool"));
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            paths[platform].contains("var/lib/dpkg/info/data.list"),
            "{platform}"
        );
    }

    // hello for both platforms now: the lock no longer answers the recipe.
    let recipe = fs::read_to_string(p.recipe()).unwrap();
    let widened = recipe.replace(
        "{ name = \"hello\", platforms = [\"linux/arm64\"] }",
        "{ name = \"hello\", platforms = [\"linux/arm64\", \"linux/amd64\"] }",
    );
    assert_ne!(recipe, widened);
    fs::write(p.recipe(), &widened).unwrap();
    p.stele(&["lock", "--check"]).expect_code(1);
    let r = p.build(&["--locked"]);
    r.expect_fail();
    p.stele(&["lock"]).expect_ok();
    assert!(locked_names(&p.lock())["linux/amd64"].contains(&"hello".to_string()));

    // amdtool everywhere: arm64 has no such package, and the error says
    // for which platform it failed.
    let everywhere = widened.replace(
        "{ name = \"amdtool\", platforms = [\"linux/amd64\"] }",
        "\"amdtool\"",
    );
    fs::write(p.recipe(), everywhere).unwrap();
    let r = p.stele(&["lock"]);
    r.expect_fail();
    assert!(
        r.stderr.contains("linux/arm64") && r.stderr.contains("amdtool"),
        "{}",
        r.stderr
    );

    // A platform left with no package at all still has its (empty)
    // section, and its image only the recipe's layer.
    fs::write(
        p.recipe(),
        recipe.replace(
            "\"data\",\n  { name = \"amdtool\", platforms = [\"linux/amd64\"] },\n  { name = \"hello\", platforms = [\"linux/arm64\"] }",
            "{ name = \"amdtool\", platforms = [\"linux/amd64\"] }",
        ),
    )
    .unwrap();
    p.stele(&["lock"]).expect_ok();
    assert_eq!(locked_names(&p.lock())["linux/arm64"], Vec::<String>::new());
    p.build(&["--locked"]).expect_ok();
    let paths = paths_by_platform(&p.out());
    assert!(paths["linux/amd64"].contains("usr/bin/amdtool"));
    assert!(!paths["linux/arm64"]
        .iter()
        .any(|p| p.starts_with("var/lib/dpkg/info/")));

    // A platform the recipe does not build: refused where it is written.
    fs::write(
        p.recipe(),
        recipe.replace("[\"linux/arm64\"] }]", "[\"linux/s390x\"] }]"),
    )
    .unwrap();
    let r = p.stele(&["lock"]);
    r.expect_fail();
    assert!(
        r.stderr.contains("recipe.toml:11:34: package `hello` names platform linux/s390x, which the recipe does not build"),
        "{}",
        r.stderr
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
        r.stdout.contains("\r\x1b[2K  downloading: 3/3 package(s)")
            && r.stdout.contains("downloaded 3"),
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

/// Two packages offering `awk` through update-alternatives in their
/// postinst (the lower one with man page slaves, the way mawk's does),
/// and one declaring accounts in a sysusers.d file and with
/// `adduser --system` in its postinst, beside effects the reader reports
/// as not needed or skipped.
fn script_packages() -> Vec<Deb> {
    let postinst = |text: &str| vec![("postinst".to_string(), text.as_bytes().to_vec(), 0o755)];
    let mut tinyawk = Deb::new("tinyawk", "1.0-1", "amd64")
        .entry(DebEntry::dir("usr/bin"))
        .entry(DebEntry::exec("usr/bin/tinyawk", "#!/bin/sh\necho tiny\n"))
        .entry(DebEntry::dir("usr/share/man/man1"))
        .entry(DebEntry::file("usr/share/man/man1/tinyawk.1.gz", "man"));
    tinyawk.control_files = postinst(
        "#!/bin/sh\nset -e\n# Automatically added by dh_installalternatives/13.11.4\nif [ \"$1\" = \"configure\" ] || [ \"$1\" = \"abort-upgrade\" ]; then\n        update-alternatives --install /usr/bin/awk awk /usr/bin/tinyawk 5 \\\n            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/tinyawk.1.gz \\\n            --slave /usr/bin/nawk nawk /usr/bin/tinyawk\nfi\n# End automatically added section\n",
    );
    let mut bigawk = Deb::new("bigawk", "2.0-1", "amd64")
        .entry(DebEntry::dir("usr/bin"))
        .entry(DebEntry::exec("usr/bin/bigawk", "#!/bin/sh\necho big\n"));
    bigawk.control_files = postinst(
        "#!/bin/sh\nset -e\ncase \"$1\" in\n  configure)\n    for n in awk; do\n      update-alternatives --install /usr/bin/$n $n /usr/bin/big$n 10\n    done\n    ;;\nesac\nexit 0\n",
    );
    let mut busd = Deb::new("busd", "1.0-1", "amd64")
        .field("Depends", "base-passwd")
        .entry(DebEntry::dir("usr/lib/sysusers.d"))
        .entry(DebEntry::file(
            "usr/lib/sysusers.d/busd.conf",
            "# the bus\nu busd - \"Bus daemon\" /run/busd\ng bususers -\nm busd bususers\n",
        ));
    busd.control_files = postinst(
        "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n    adduser --system --quiet --home /var/lib/fetch --group _fetch\n    chown _fetch /var/lib/fetch\nfi\nif [ -d /run/systemd/system ]; then\n    systemctl --system daemon-reload >/dev/null || true\nfi\ndeb-systemd-helper enable busd.service >/dev/null || true\n",
    );
    vec![tinyawk, bigawk, busd, passwd_masters()]
}

/// The image's files, later layers over earlier ones.
pub(crate) fn image_files(layout: &Path) -> std::collections::BTreeMap<String, TarEntry> {
    let l = check_layout(layout);
    let mut files = std::collections::BTreeMap::new();
    for (mt, blob) in &l.layers {
        for e in tar_entries(&decompress(mt, blob)) {
            files.insert(e.path.trim_end_matches('/').to_string(), e);
        }
    }
    files
}

/// The local-repository golden: this recipe with this repository builds
/// to exactly this image (the repository's key and signatures are
/// deterministic, so the lock is too). Moved with `GOLDEN_PER_PLATFORM`,
/// for the same reasons, and again when sysusers.d accounts took
/// systemd-sysusers' ids from the top of the system range (busd 999).
const GOLDEN_SCRIPTS: &str =
    "sha256:cfd61f1f026ef95027d46545ba84c4f8d2e7a441897b612cb99629c95b4d8bb4";

#[test]
fn maintainer_script_effects_alternatives_and_accounts() {
    let mut b = AptRepo::builder().suite("stable", &["amd64"]);
    for d in script_packages() {
        b = b.deb("stable", d);
    }
    let repo = b.build();
    let (url, _server) = repo.serve();
    let p = Project::new(
        &repo,
        &url,
        "[\"linux/amd64\"]",
        "[\"tinyawk\", \"bigawk\", \"busd\"]",
        "single",
    );
    // The recipe's hello entrypoint is not installed here; `[config]`
    // does not check it.
    let r = p.build(&["--json"]);
    r.expect_ok();
    let doc = json(r.stdout.as_bytes());
    let digest = doc["digest"].as_str().unwrap().to_string();
    println!("golden scripts: {digest}");
    assert!(
        r.stderr.contains("scripts: 7 effects reproduced, 0 not needed in an image, 1 skipped (busd: deb-systemd-helper); see --json"),
        "{}",
        r.stderr
    );
    let report = &doc["scripts"]["linux/amd64"];
    assert_eq!(
        report["alternatives"],
        serde_json::json!({ "awk": "/usr/bin/bigawk" })
    );
    let effects = report["effects"].as_array().unwrap();
    // The chown is done (the home is the package's own); enabling a unit
    // the package does not ship is reported as skipped, with why.
    let chown = effects
        .iter()
        .find(|e| e["source"] == "postinst:5")
        .unwrap();
    assert_eq!(chown["package"], "busd");
    assert_eq!(chown["outcome"], "reproduced");
    assert_eq!(chown["effect"], "chown _fetch /var/lib/fetch");
    let skipped = effects.iter().find(|e| e["outcome"] == "skipped").unwrap();
    assert_eq!(skipped["effect"], "deb-systemd-helper enable busd.service");
    assert_eq!(skipped["detail"], "no unit file busd.service is installed");

    let files = image_files(&p.out());
    let link = |files: &std::collections::BTreeMap<String, TarEntry>, path: &str| {
        let e = files.get(path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(e.kind, 'l', "{path} is a symlink");
        e.link.clone().unwrap()
    };
    assert_eq!(link(&files, "usr/bin/awk"), "/etc/alternatives/awk");
    assert_eq!(link(&files, "etc/alternatives/awk"), "/usr/bin/bigawk");
    // bigawk has no nawk or man page slave: no links for them.
    assert!(!files.contains_key("usr/bin/nawk"));
    assert!(!files.contains_key("etc/alternatives/nawk"));
    assert_eq!(
        String::from_utf8_lossy(&files["var/lib/dpkg/alternatives/awk"].data),
        "auto\n/usr/bin/awk\nawk.1.gz\n/usr/share/man/man1/awk.1.gz\nnawk\n/usr/bin/nawk\n\n/usr/bin/bigawk\n10\n\n\n/usr/bin/tinyawk\n5\n/usr/share/man/man1/tinyawk.1.gz\n/usr/bin/tinyawk\n\n"
    );
    let passwd = String::from_utf8_lossy(&files["etc/passwd"].data).into_owned();
    let group = String::from_utf8_lossy(&files["etc/group"].data).into_owned();
    assert_eq!(
        passwd,
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n_fetch:x:100:100::/var/lib/fetch:/usr/sbin/nologin\nbusd:x:999:999:Bus daemon:/run/busd:/usr/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n",
    );
    assert_eq!(
        group,
        "root:x:0:\ndaemon:x:1:\n_fetch:x:100:\nbusd:x:999:\nbususers:x:998:busd\nnonroot:x:65532:\n"
    );
    // adduser makes the home it names; sysusers.d does not.
    let home = &files["var/lib/fetch"];
    assert_eq!((home.kind, home.uid, home.gid), ('d', 100, 100));
    assert!(!files.contains_key("run/busd"));
    // The provenance carries the report.
    let index = json(&fs::read(p.out().join("index.json")).unwrap());
    let mut found = false;
    for a in index["manifests"].as_array().unwrap()[1..].iter() {
        let am = json(&descriptor_blob(&p.out(), a));
        for l in am["layers"].as_array().unwrap() {
            let body = String::from_utf8_lossy(&descriptor_blob(&p.out(), l)).into_owned();
            found |= body.contains("maintainer-script-effects:linux/amd64");
        }
    }
    assert!(found, "the provenance lists the effects");

    // Reproducible: a second build from scratch gives the same image.
    let again = tempdir();
    let p2 = Project::new_in(
        again,
        &repo,
        &url,
        "[\"linux/amd64\"]",
        "[\"tinyawk\", \"bigawk\", \"busd\"]",
        "single",
    );
    let r2 = p2.build(&[]);
    r2.expect_ok();
    assert_eq!(r2.last_line(), digest);
    assert_eq!(
        digest, GOLDEN_SCRIPTS,
        "the local-repository golden changed"
    );

    // A manual choice: recorded in the lock, manual mode in the record.
    let recipe = fs::read_to_string(p.recipe()).unwrap().replace(
        "layers = \"single\"",
        "layers = \"single\"\nalternatives = { awk = \"/usr/bin/tinyawk\" }",
    );
    fs::write(p.recipe(), &recipe).unwrap();
    let r = p.build(&[]);
    r.expect_ok();
    let lock = fs::read_to_string(p.lock()).unwrap();
    assert!(
        lock.contains("[platforms.\"linux/amd64\".alternatives]\nawk = \"/usr/bin/tinyawk\"\n"),
        "{lock}"
    );
    let files = image_files(&p.out());
    assert_eq!(link(&files, "usr/bin/awk"), "/etc/alternatives/awk");
    assert_eq!(link(&files, "etc/alternatives/awk"), "/usr/bin/tinyawk");
    assert_eq!(link(&files, "etc/alternatives/nawk"), "/usr/bin/tinyawk");
    assert_eq!(link(&files, "usr/bin/nawk"), "/etc/alternatives/nawk");
    assert_eq!(
        link(&files, "usr/share/man/man1/awk.1.gz"),
        "/etc/alternatives/awk.1.gz"
    );
    assert!(
        String::from_utf8_lossy(&files["var/lib/dpkg/alternatives/awk"].data)
            .starts_with("manual\n")
    );

    // A path no package offers: refused, naming the recipe line.
    fs::write(
        p.recipe(),
        recipe.replace("/usr/bin/tinyawk\" }", "/usr/bin/gawk\" }"),
    )
    .unwrap();
    let r = p.build(&[]);
    r.expect_fail();
    assert!(
        r.stderr.contains("recipe.toml:11:")
            && r.stderr.contains("/usr/bin/bigawk, /usr/bin/tinyawk"),
        "{}",
        r.stderr
    );
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
