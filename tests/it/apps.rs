//! `[python]` and `[node]`: application packages from a PEP 751
//! `pylock.toml` and npm's `package-lock.json`, installed without running
//! pip or npm. Hermetic tests build wheels in memory and name them as
//! files beside the lock; the live tests lock real applications with the
//! real uv and npm from the index and registry this machine is configured
//! with, build them on the machine's Debian mirror and run them in podman.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::apps::*;
use crate::support::podman::{lowercase_tempdir, podman_run_with};
use crate::support::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `stele build` of `dir/recipe.toml` expected to fail; returns stderr
/// after checking nothing was written.
#[track_caller]
fn refused(dir: &Path) -> String {
    let out = dir.join("out");
    let r = run(stele()
        .arg("build")
        .arg(dir.join("recipe.toml"))
        .arg("-o")
        .arg(&out));
    r.expect_fail();
    assert!(!out.exists(), "a refused build wrote {}", out.display());
    r.stderr
}

/// Writes a lock's packages (and their files) into a folder.
type LockBody = Box<dyn Fn(&Path) -> String>;

const AMD64: &str = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64";

#[test]
fn bad_python_locks_are_refused_by_name() {
    let lock_head =
        "lock-version = \"1.0\"\ncreated-by = \"stele-tests\"\nrequires-python = \">=3.9\"\n";
    let cases: Vec<(&str, &str, LockBody, Vec<&str>)> = vec![
        (
            "a wheel that is not the lock's sha256",
            "\"linux/amd64\"",
            Box::new(|d: &Path| {
                // A name no other test uses, so no cache holds the bytes
                // the lock names.
                let good = wheel("tampered", "1.0", "py3-none-any");
                let file = "tampered-1.0-py3-none-any.whl";
                let entry = wheel_entry(d, file, &good);
                // The file holds other bytes than the lock names.
                fs::write(d.join(file), wheel("tampered", "1.1", "py3-none-any")).unwrap();
                format!(
                    "[[packages]]\nname = \"tampered\"\nversion = \"1.0\"\nwheels = [{entry}]\n"
                )
            }),
            vec!["tampered 1.0", "is not what the lock says"],
        ),
        (
            "no wheel for arm64",
            "\"linux/amd64\", \"linux/arm64\"",
            Box::new(|d: &Path| {
                let file = format!("demo-1.0-{AMD64}.whl");
                let entry = wheel_entry(d, &file, &wheel("demo", "1.0", AMD64));
                format!("[[packages]]\nname = \"demo\"\nversion = \"1.0\"\nwheels = [{entry}]\n")
            }),
            vec![
                "demo 1.0",
                "no wheel for linux/arm64",
                "cp311-cp311-manylinux_2_36_aarch64",
                "pylock.toml:",
            ],
        ),
        (
            "an sdist-only package",
            "\"linux/amd64\"",
            Box::new(|_: &Path| {
                format!(
                    "[[packages]]\nname = \"legacy\"\nversion = \"0.1\"\nsdist = {{ name = \"legacy-0.1.tar.gz\", path = \"legacy-0.1.tar.gz\", hashes = {{ sha256 = \"{}\" }} }}\n",
                    "0".repeat(64)
                )
            }),
            vec![
                "legacy 0.1",
                "only a source distribution (sdist)",
                "pylock.toml:5:",
            ],
        ),
    ];
    for (what, platforms, packages, expected) in cases {
        let dir = tempdir();
        write(dir.path(), "recipe.toml", &python_recipe(platforms));
        let body = packages(dir.path());
        write(dir.path(), "pylock.toml", &format!("{lock_head}\n{body}"));
        let _ = std::fs::remove_dir_all("/tmp/keepcase");
        std::process::Command::new("cp")
            .arg("-r")
            .arg(dir.path())
            .arg("/tmp/keepcase")
            .status()
            .unwrap();
        let stderr = refused(dir.path());
        for e in expected {
            assert!(stderr.contains(e), "{what}: `{e}` missing from: {stderr}");
        }
    }
    // A lock from the future is refused before anything is fetched.
    let dir = tempdir();
    write(dir.path(), "recipe.toml", &python_recipe("\"linux/amd64\""));
    write(
        dir.path(),
        "pylock.toml",
        "lock-version = \"2.0\"\ncreated-by = \"tomorrow\"\n",
    );
    let stderr = refused(dir.path());
    assert!(
        stderr.contains("lock-version 2.0 is from the future"),
        "{stderr}"
    );
    assert!(stderr.contains("pylock.toml:1:"), "{stderr}");
}

#[test]
fn bad_npm_locks_are_refused_by_name() {
    let recipe =
        "[image]\nname = \"nodeapp\"\n\n[node]\nlock = \"package-lock.json\"\ndest = \"/app\"\n";
    let lock = |version: u32, scripts: bool| {
        format!(
            r#"{{"name": "app", "lockfileVersion": {version}, "requires": true, "packages": {{
  "": {{"name": "app", "dependencies": {{"native-thing": "^1.0.0"}}}},
  "node_modules/native-thing": {{"version": "1.2.3", "integrity": "sha512-AAAA", "hasInstallScript": {scripts}}}
}}}}"#
        )
    };
    let dir = tempdir();
    write(dir.path(), "recipe.toml", recipe);
    write(dir.path(), "package-lock.json", &lock(3, true));
    let stderr = refused(dir.path());
    assert!(stderr.contains("native-thing@1.2.3"), "{stderr}");
    assert!(stderr.contains("has install scripts"), "{stderr}");
    assert!(stderr.contains("skip-scripts"), "{stderr}");
    write(dir.path(), "package-lock.json", &lock(4, false));
    let stderr = refused(dir.path());
    assert!(
        stderr.contains("lockfileVersion 4 is from the future"),
        "{stderr}"
    );
    // Without a registry configured and no `resolved` in the lock, the
    // error says how to configure one.
    write(dir.path(), "package-lock.json", &lock(3, false));
    let stderr = refused(dir.path());
    assert!(stderr.contains("no npm registry is configured"), "{stderr}");
    assert!(stderr.contains("npm_config_registry"), "{stderr}");
}

/// A recipe and lock of `demo` `version`, built into `dir/name`.
fn demo_image(dir: &Path, name: &str, version: &str) -> (PathBuf, String) {
    let src = dir.join(format!("{name}-src"));
    fs::create_dir_all(&src).unwrap();
    write(&src, "recipe.toml", &python_recipe("\"linux/amd64\""));
    let file = format!("demo-{version}-py3-none-any.whl");
    let entry = wheel_entry(&src, &file, &wheel("demo", version, "py3-none-any"));
    write(
        &src,
        "pylock.toml",
        &format!("lock-version = \"1.0\"\ncreated-by = \"stele-tests\"\n\n[[packages]]\nname = \"demo\"\nversion = \"{version}\"\nwheels = [{entry}]\n"),
    );
    let out = dir.join(name);
    let digest = build(&src.join("recipe.toml"), &out);
    (out, digest)
}

#[test]
fn a_wheel_installs_and_diff_names_the_python_package_that_changed() {
    let dir = tempdir();
    let (a, _) = demo_image(dir.path(), "a", "1.0");
    let (b, _) = demo_image(dir.path(), "b", "1.1");
    let layout = check_layout(&a);
    let entries: Vec<TarEntry> = layout
        .layers
        .iter()
        .flat_map(|(m, blob)| tar_entries(&decompress(m, blob)))
        .collect();
    let site = "usr/local/lib/python3.11/dist-packages";
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.path.trim_end_matches('/') == p)
            .unwrap_or_else(|| panic!("{p} is not in the image"))
    };
    assert_eq!(
        find(&format!("{site}/demo-1.0.dist-info/INSTALLER")).data,
        b"stele\n"
    );
    let record = String::from_utf8(
        find(&format!("{site}/demo-1.0.dist-info/RECORD"))
            .data
            .clone(),
    )
    .unwrap();
    assert!(record.contains("../../../bin/demo,sha256="), "{record}");
    let launcher = find("usr/local/bin/demo");
    assert_eq!(launcher.mode & 0o777, 0o755);
    assert!(String::from_utf8_lossy(&launcher.data).starts_with("#!/usr/bin/python3\n"));
    // The lock's digest is part of the recipe the image records.
    let config = layout.config.to_string();
    assert!(
        config.contains("Python package"),
        "the layer's history names it: {config}"
    );

    // The SBOMs beside the image (SPDX, CycloneDX) and provenance name it
    // by its purl and the wheel's sha256.
    let sbom_blobs = fs::read_dir(a.join("blobs/sha256"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .filter(|b| String::from_utf8_lossy(b).contains("pkg:pypi/demo@1.0"))
        .count();
    assert!(
        sbom_blobs >= 3,
        "SPDX, CycloneDX and provenance name pkg:pypi/demo@1.0"
    );

    let r = run(stele().arg("diff").arg(&a).arg(&b));
    assert_eq!(r.status.code(), Some(1), "{}{}", r.stdout, r.stderr);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("Python package demo 1.0 → 1.1"),
        "{}",
        r.stdout
    );
}

/// The registry npm itself is configured with on this machine, for the
/// `stele` the test starts (whose HOME is empty).
fn npm_registry() -> String {
    // npm writes a log below its cache even for `config get`: keep it out
    // of the user's HOME.
    let cache = tempdir();
    let out = Command::new("npm")
        .args(["config", "get", "registry"])
        .env("npm_config_cache", cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "npm config get registry failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Whether this machine's apt configuration has bookworm, which the
/// example recipes name.
fn host_has_bookworm() -> bool {
    let sources = stele::apt::hostconf::host_sources(Path::new("/")).unwrap_or_default();
    let found = stele::apt::hostconf::find_host_source(&sources, "bookworm").is_some();
    if !found {
        skip("this machine's apt configuration has no `deb` source for bookworm; the live application tests need one");
    }
    found
}

fn copy_example(name: &str, files: &[&str], into: &Path) -> PathBuf {
    fs::create_dir_all(into.join(name)).unwrap();
    // The committed lock pins the Debian packages; the first build adds
    // the Python or npm section for the ecosystem lock written now.
    for ext in ["toml", "lock"] {
        fs::copy(
            repo_root().join(format!("recipes/{name}.{ext}")),
            into.join(format!("{name}.{ext}")),
        )
        .unwrap();
    }
    for f in files {
        fs::copy(
            repo_root().join(format!("recipes/{name}/{f}")),
            into.join(name).join(f),
        )
        .unwrap();
    }
    into.join(format!("{name}.toml"))
}

#[test]
fn flask_from_a_uv_lock_runs_in_podman_and_rebuilds_the_same_from_an_empty_cache() {
    if !host_has_bookworm() || !have_tool("uv") || !have_tool("podman") {
        return;
    }
    // podman wants a lowercase path in an `oci:` name.
    let dir = lowercase_tempdir();
    let recipe = copy_example("flask", &["app.py", "requirements.in"], dir.path());
    // The lock, written now from the index uv is configured with.
    let uv = run(Command::new("uv")
        .args([
            "pip",
            "compile",
            "--quiet",
            "--format",
            "pylock.toml",
            "--universal",
            "--python-version",
            "3.11",
        ])
        .arg(dir.path().join("flask/requirements.in"))
        .arg("-o")
        .arg(dir.path().join("flask/pylock.toml"))
        .env("UV_CACHE_DIR", dir.path().join("uv-cache")));
    uv.expect_ok();
    let out = dir.path().join("out");
    let digest = build(&recipe, &out);
    // The stele lock now records the pylock's digest and each platform's
    // wheels: the PyYAML wheel of each machine.
    let lock = fs::read_to_string(dir.path().join("flask.lock")).unwrap();
    assert!(
        lock.contains("[python]\nlockfile = \"flask/pylock.toml\""),
        "{lock}"
    );
    assert!(lock.contains("manylinux_2_17_aarch64"), "{lock}");
    assert!(lock.contains("manylinux_2_17_x86_64"), "{lock}");
    run(stele().arg("lock").arg("--check").arg(&recipe)).expect_ok();

    // PyYAML's C extension, for each platform's machine.
    for (arch, machine, triplet) in [("amd64", 0x3e, "x86_64"), ("arm64", 0xb7, "aarch64")] {
        let entries = platform_entries(&out, arch);
        let ext = entries
            .iter()
            .find(|e| e.path.contains("/dist-packages/yaml/_yaml.cpython-311-"))
            .unwrap_or_else(|| panic!("no PyYAML extension in the {arch} image"));
        assert!(
            ext.path.ends_with(&format!("-{triplet}-linux-gnu.so")),
            "{}",
            ext.path
        );
        assert_eq!(elf_machine(&ext.data), machine, "{}", ext.path);
        assert!(entries.iter().any(|e| e.path == "usr/local/bin/flask"));
    }

    let storage = lowercase_tempdir();
    let image = format!("oci:{}:latest", out.display());
    let r = podman_run_with(
        storage.path(),
        &["--platform", "linux/amd64"],
        &image,
        &["--check"],
    );
    r.expect_ok();
    assert!(
        r.stdout.contains("200 hello: from stele\nlibyaml: true"),
        "{}",
        r.stdout
    );
    let r = podman_run_with(
        storage.path(),
        &[
            "--platform",
            "linux/amd64",
            "--entrypoint",
            "/usr/local/bin/flask",
        ],
        &image,
        &["--version"],
    );
    r.expect_ok();
    assert!(r.stdout.contains("Flask 3."), "{}", r.stdout);

    // An empty cache: every .deb and wheel downloaded again, same bytes.
    let again = build_with(
        &recipe,
        &dir.path().join("again"),
        &[
            "--locked",
            "--cache-dir",
            dir.path().join("empty-cache").to_str().unwrap(),
        ],
    );
    assert_eq!(again, digest);
}

#[test]
fn express_from_an_npm_lock_serves_a_request_in_podman() {
    if !host_has_bookworm() || !have_tool("npm") || !have_tool("podman") {
        return;
    }
    let dir = lowercase_tempdir();
    let recipe = copy_example("express", &["app.js", "package.json"], dir.path());
    let npm = run(Command::new("npm")
        .args([
            "install",
            "--package-lock-only",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
        ])
        .current_dir(dir.path().join("express"))
        .env("npm_config_cache", dir.path().join("npm-cache")));
    npm.expect_ok();
    let out = dir.path().join("out");
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(&out)
        .env("npm_config_registry", npm_registry()));
    r.expect_ok();

    // esbuild's binary for each platform, and only that one.
    for (arch, machine, other) in [("amd64", 0x3e, "linux-arm64"), ("arm64", 0xb7, "linux-x64")] {
        let entries = platform_entries(&out, arch);
        let wanted = if arch == "amd64" {
            "linux-x64"
        } else {
            "linux-arm64"
        };
        let binary = entries
            .iter()
            .find(|e| e.path == format!("app/node_modules/@esbuild/{wanted}/bin/esbuild"))
            .unwrap_or_else(|| panic!("no esbuild binary in the {arch} image"));
        assert_eq!(elf_machine(&binary.data), machine);
        assert_eq!(binary.mode & 0o777, 0o755);
        assert!(!entries
            .iter()
            .any(|e| e.path.contains(&format!("@esbuild/{other}/"))));
        let link = entries
            .iter()
            .find(|e| e.path == "app/node_modules/.bin/esbuild")
            .unwrap();
        assert_eq!(link.link.as_deref(), Some("../esbuild/bin/esbuild"));
    }

    let storage = lowercase_tempdir();
    let image = format!("oci:{}:latest", out.display());
    let r = podman_run_with(
        storage.path(),
        &["--platform", "linux/amd64"],
        &image,
        &["--check"],
    );
    r.expect_ok();
    assert!(
        r.stdout.contains("200 hello from stele, esbuild 0.24."),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("let answer = 6 * 7;"), "{}", r.stdout);
    // `node -e` serves a request with express from the image's node_modules.
    let serve = "const app = require('/app/node_modules/express')(); app.get('/', (q, s) => s.send('pong')); const srv = app.listen(0, '127.0.0.1', () => require('http').get('http://127.0.0.1:' + srv.address().port + '/', r => { let b = ''; r.on('data', c => b += c); r.on('end', () => { console.log(r.statusCode, b); srv.close(); }); }));";
    let r = podman_run_with(
        storage.path(),
        &["--platform", "linux/amd64", "--entrypoint", "/usr/bin/node"],
        &image,
        &["-e", serve],
    );
    r.expect_ok();
    assert_eq!(r.stdout.trim(), "200 pong");
}

#[test]
fn a_second_runner_takes_the_wheel_from_the_remote_cache() {
    use crate::support::docker_registry::{have_registry, DockerRegistry};
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let cache = format!("{}/team/cache", reg.host());
    let dir = tempdir();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    write(&src, "recipe.toml", &python_recipe("\"linux/amd64\""));
    let file = "fleetdemo-2.0-py3-none-any.whl";
    let entry = wheel_entry(&src, file, &wheel("fleetdemo", "2.0", "py3-none-any"));
    write(
        &src,
        "pylock.toml",
        &format!("lock-version = \"1.0\"\n\n[[packages]]\nname = \"fleetdemo\"\nversion = \"2.0\"\nwheels = [{entry}]\n"),
    );
    let cache_dir = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let a = build_with(
        &src.join("recipe.toml"),
        &dir.path().join("a"),
        &["--cache-dir", &cache_dir("cache-a"), "--cache-to", &cache],
    );
    // Runner B has neither the wheel nor a cache: only the registry.
    fs::remove_file(src.join(file)).unwrap();
    let b = build_with(
        &src.join("recipe.toml"),
        &dir.path().join("b"),
        &["--cache-dir", &cache_dir("cache-b"), "--cache-from", &cache],
    );
    assert_eq!(a, b);
    // Without the registry, the wheel is nowhere: refused by name.
    let r = run(stele()
        .arg("build")
        .arg(src.join("recipe.toml"))
        .arg("-o")
        .arg(dir.path().join("c"))
        .args(["--cache-dir", &cache_dir("cache-c")]));
    r.expect_fail();
    assert!(r.stderr.contains("fleetdemo 2.0"), "{}", r.stderr);
}
