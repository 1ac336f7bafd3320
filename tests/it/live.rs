//! The example recipes against the machine's own Debian mirror, through
//! its apt configuration (`mirror = "host"`): what a user's first command
//! does. Skipped, with the reason printed, where the machine has no apt
//! source for the suite the recipes name (even under CI: a machine without
//! apt sources cannot run them).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use crate::support::podman::{lowercase_tempdir, podman_run_with};
use crate::support::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `mirror = "host"` can find a `deb` source for `suite`.
pub(crate) fn host_has_suite(suite: &str) -> bool {
    let sources = stele::apt::hostconf::host_sources(Path::new("/")).unwrap_or_default();
    let found = stele::apt::hostconf::find_host_source(&sources, suite).is_some();
    if !found {
        skip(&format!(
            "this machine's apt configuration has no `deb` source for {suite}; the live tests need one"
        ));
    }
    found
}

/// Copies an example recipe and its lock into a fresh folder, so the test
/// never writes into the checkout.
fn example(name: &str, into: &Path) -> PathBuf {
    for ext in ["toml", "lock"] {
        fs::copy(
            repo_root().join(format!("recipes/{name}.{ext}")),
            into.join(format!("{name}.{ext}")),
        )
        .unwrap_or_else(|e| panic!("recipes/{name}.{ext}: {e}"));
    }
    into.join(format!("{name}.toml"))
}

fn build_locked(recipe: &Path, out: &Path, cache: &Path) -> Run {
    let r = run(stele()
        .arg("build")
        .arg(recipe)
        .arg("--locked")
        .arg("--cache-dir")
        .arg(cache)
        .arg("-o")
        .arg(out));
    r.expect_ok();
    r
}

#[test]
fn hello_builds_from_the_host_mirror_and_runs() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let tmp = crate::support::podman::lowercase_tempdir();
    let recipe = example("hello", tmp.path());
    let out = tmp.path().join("hello");
    let cache = tmp.path().join("cache");
    let first = build_locked(&recipe, &out, &cache);
    let r = crate::support::podman::podman_run(
        &tmp.path().join("p"),
        &format!("oci:{}:latest", out.display()),
    );
    r.expect_ok();
    assert_eq!(r.stdout, "hello from stele\n", "{}", r.stderr);

    // The committed lock is what it says: the same digest again, offline.
    let again = run(stele()
        .arg("build")
        .arg(&recipe)
        .args(["--locked", "--offline", "--cache-dir"])
        .arg(&cache)
        .arg("-o")
        .arg(tmp.path().join("again")));
    again.expect_ok();
    assert_eq!(again.last_line(), first.last_line());
    assert_eq!(first.last_line(), readme_digest("recipes/hello.toml"));

    // What a release engineer runs before deploying: the digest pin, every
    // blob, and a rebuild from the recipe and lock, offline from the cache.
    verify_rebuild(&out, &recipe, first.last_line(), &cache);
}

/// `stele verify OUT --digest D --rebuild RECIPE --offline` passes.
fn verify_rebuild(out: &Path, recipe: &Path, digest: &str, cache: &Path) {
    let r = run(stele()
        .arg("verify")
        .arg(out)
        .args(["--digest", digest, "--rebuild"])
        .arg(recipe)
        .args(["--offline", "--cache-dir"])
        .arg(cache));
    r.expect_ok();
    assert!(r.stdout.contains("rebuild"), "{}", r.stdout);
}

#[test]
fn debian_base_builds_for_amd64_and_arm64() {
    if !host_has_suite("bookworm") {
        return;
    }
    let tmp = tempdir();
    let recipe = example("debian-base", tmp.path());
    let out = tmp.path().join("base");
    let cache = tmp.path().join("cache");
    let r = build_locked(&recipe, &out, &cache);
    let index = json(&fs::read(out.join("index.json")).unwrap());
    let top = &index["manifests"][0];
    assert_eq!(top["digest"], r.last_line());
    assert_eq!(r.last_line(), readme_digest("recipes/debian-base.toml"));
    let image_index = json(&descriptor_blob(&out, top));
    let manifests = image_index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (m, loader) in manifests
        .iter()
        .zip(["lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1"])
    {
        let manifest = json(&descriptor_blob(&out, m));
        let mut paths = Vec::new();
        for l in manifest["layers"].as_array().unwrap() {
            let mt = l["mediaType"].as_str().unwrap();
            for e in tar_entries(&decompress(mt, &descriptor_blob(&out, l))) {
                paths.push(e.path);
            }
        }
        // With merged /usr the loader lives under usr/ and lib* are links.
        let usr_loader = format!("usr/{loader}");
        for want in [
            usr_loader.as_str(),
            "etc/ssl/certs/ca-certificates.crt",
            "usr/share/zoneinfo/UTC",
            "etc/services",
            "etc/passwd",
            "var/lib/dpkg/status",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "{}: {want} missing",
                m["platform"]
            );
        }
    }
    sboms_are_valid_and_name_the_packages(&out, &index);
    verify_rebuild(&out, &recipe, r.last_line(), &cache);
}

/// The SBOMs of a real package build pass the independent validators and
/// list what the lock installed, with purls and the licenses the packages'
/// copyright files state.
fn sboms_are_valid_and_name_the_packages(out: &Path, index: &serde_json::Value) {
    if !attest::python_has(&["spdx_tools", "cyclonedx", "jsonschema", "packageurl"]) {
        return;
    }
    let dir = tempdir();
    let mut checked = 0;
    for (i, d) in index["manifests"].as_array().unwrap()[1..]
        .iter()
        .enumerate()
    {
        let manifest = json(&descriptor_blob(out, d));
        let content = descriptor_blob(out, &manifest["layers"][0]);
        let (script, ext) = match d["artifactType"].as_str().unwrap() {
            "application/spdx+json" => ("validate_spdx.py", "spdx.json"),
            "application/vnd.cyclonedx+json" => ("validate_cyclonedx.py", "cdx.json"),
            _ => continue,
        };
        let p = dir.path().join(format!("{i}.{ext}"));
        fs::write(&p, &content).unwrap();
        let (ok, text) = attest::tool(script, &[&p]);
        assert!(ok, "{script} rejected the SBOM of a real build:\n{text}");
        let doc = String::from_utf8(content).unwrap();
        assert!(doc.contains("pkg:deb/debian/libc6@"), "libc6 purl missing");

        checked += 1;
    }
    assert_eq!(checked, 4, "SPDX and CycloneDX for two platforms");
}

/// The digest README.md's "Example recipes" table states for `recipe`
/// (e.g. `recipes/java.toml`): what anyone building it with its committed
/// lock must get, so the tests read it from there and cannot drift from it.
fn readme_digest(recipe: &str) -> String {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with(&format!("| `{recipe}` |")))
        .unwrap_or_else(|| panic!("README.md's example table has no row for `{recipe}`"));
    let digest = row
        .split('`')
        .find(|cell| cell.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("README.md's row for `{recipe}` states no digest: {row}"));
    assert!(is_digest(digest), "{row}");
    digest.to_string()
}

/// Where the live tests keep what they share: emptied once per run of the
/// test binary (as the support layer does with HOME), so a run never reads
/// what an earlier one built.
pub(crate) fn live_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live");
        if root.exists() {
            fs::remove_dir_all(&root)
                .unwrap_or_else(|e| panic!("emptying {}: {e}", root.display()));
        }
        fs::create_dir_all(&root).unwrap();
        root
    })
}

/// .debs the live tests have downloaded, kept across runs as a `stele
/// vendor` folder: every build imports from it into a cache of its own
/// that starts cold, so only the first run downloads (OpenJDK alone is
/// 70 MB). Each file is checked against the lock's sha256 on import: a
/// damaged one fails the build naming it, it is never used; deleting
/// `target/tmp/live-debs` starts over.
fn shared_debs() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-debs")
}

/// An image the live tests built once per run and share: the JVM takes a
/// while to unpack and lay into layers, and several tests run it.
pub(crate) struct Shared {
    dir: PathBuf,
    recipe: PathBuf,
    out: PathBuf,
    cache: PathBuf,
    digest: String,
}

impl Shared {
    fn image(&self) -> String {
        format!("oci:{}:latest", self.out.display())
    }

    /// `podman run FLAGS IMAGE ARGS` in podman storage of the caller's own.
    pub(crate) fn run(&self, flags: &[&str], args: &[&str]) -> Run {
        let storage = lowercase_tempdir();
        podman_run_with(&storage.path().join("p"), flags, &self.image(), args)
    }

    /// The bytes of `path` in the image (its first platform), from the
    /// last layer holding it.
    pub(crate) fn file(&self, path: &str) -> Vec<u8> {
        let index = json(&fs::read(self.out.join("index.json")).unwrap());
        let mut manifest = json(&descriptor_blob(&self.out, &index["manifests"][0]));
        if manifest["manifests"].is_array() {
            manifest = json(&descriptor_blob(&self.out, &manifest["manifests"][0]));
        }
        let mut found = None;
        for l in manifest["layers"].as_array().unwrap() {
            let mt = l["mediaType"].as_str().unwrap();
            for e in tar_entries(&decompress(mt, &descriptor_blob(&self.out, l))) {
                if e.path == path {
                    found = Some(e.data);
                }
            }
        }
        found.unwrap_or_else(|| panic!("{path} is not in {}", self.out.display()))
    }
}

/// Writes `text` as `dir/NAME.toml` and locks it against the host's
/// mirror with `dir/cache`: the recipe a live example then builds.
pub(crate) fn locked_recipe(dir: &Path, name: &str, text: &str) -> PathBuf {
    let recipe = dir.join(format!("{name}.toml"));
    fs::write(&recipe, text).unwrap();
    run(stele()
        .arg("lock")
        .arg(&recipe)
        .arg("--cache-dir")
        .arg(dir.join("cache")))
    .expect_ok();
    recipe
}

/// `stele build RECIPE --locked` into `dir/out`, cold: its own empty cache,
/// .debs imported from [`shared_debs`] (downloaded from the host mirror
/// when missing there, then added to it). Prints how long it took, for
/// the report of what the live tests cost.
pub(crate) fn build_shared(name: &str, recipe: PathBuf, dir: PathBuf) -> Shared {
    let out = dir.join("out");
    let cache = dir.join("cache");
    let debs = shared_debs();
    let started = Instant::now();
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("--locked")
        .arg("--vendor")
        .arg(&debs)
        .arg("--cache-dir")
        .arg(&cache)
        .arg("-o")
        .arg(&out)
        .current_dir(&dir));
    r.expect_ok();
    // On the real stderr: the harness hides a passing test's output, and
    // this is what the live tests cost.
    let _ = writeln!(
        std::io::stderr(),
        "live: {name} built cold in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    run(stele()
        .arg("vendor")
        .arg(&recipe)
        .arg(&debs)
        .args(["--offline", "--cache-dir"])
        .arg(&cache))
    .expect_ok();
    Shared {
        digest: r.last_line().to_string(),
        dir,
        recipe,
        out,
        cache,
    }
}

/// An example recipe with its committed lock, built once per run.
fn shared_example(name: &'static str) -> &'static Shared {
    static JAVA: OnceLock<Shared> = OnceLock::new();
    static PYTHON: OnceLock<Shared> = OnceLock::new();
    let cell = match name {
        "java" => &JAVA,
        "python" => &PYTHON,
        other => panic!("no shared example {other}"),
    };
    cell.get_or_init(|| {
        let dir = live_root().join(name);
        fs::create_dir_all(&dir).unwrap();
        let recipe = example(name, &dir);
        build_shared(name, recipe, dir)
    })
}

/// Packages whose maintainer scripts make what users rely on (mawk's
/// `awk`, dbus's `messagebus` user), locked against the host mirror when
/// the test runs: what they install changes with the mirror, what the
/// tests assert does not.
const SCRIPT_EFFECTS: &str = r#"
[image]
name = "script-effects"
epoch = 1735689600

[apt]
sources = [{ mirror = "host", suite = "bookworm", components = ["main"] }]
packages = ["base-files", "base-passwd", "mawk", "dbus"]
"#;

fn shared_script_effects() -> &'static Shared {
    static CELL: OnceLock<Shared> = OnceLock::new();
    CELL.get_or_init(|| {
        let dir = live_root().join("script-effects");
        fs::create_dir_all(&dir).unwrap();
        let recipe = locked_recipe(&dir, "script-effects", SCRIPT_EFFECTS);
        build_shared("script-effects", recipe, dir)
    })
}

/// Builds `shared` again from the same recipe and lock in everything a
/// build must not depend on changed: the warm cache (layers written anew),
/// another umask, time zone, working directory and thread count, the
/// recipe named by a relative path. The digest must not move, and must be
/// the one README.md states.
fn rebuilds_to_the_readme_digest(shared: &Shared, readme_name: &str) {
    let elsewhere = shared.dir.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let relative = Path::new("..").join(shared.recipe.file_name().unwrap());
    let mut cmd = stele();
    cmd.arg("build")
        .arg(&relative)
        .args(["--locked", "--offline", "--no-layer-cache", "--jobs", "1"])
        .arg("--cache-dir")
        .arg(&shared.cache)
        .arg("-o")
        .arg(shared.dir.join("again"))
        .env("TZ", "Pacific/Chatham")
        .env("LC_ALL", "C")
        .current_dir(&elsewhere);
    let again = run(with_umask(&mut cmd, 0o077));
    again.expect_ok();
    assert_eq!(again.last_line(), shared.digest, "{}", again.stderr);
    assert_eq!(
        shared.digest,
        readme_digest(readme_name),
        "{readme_name} with its committed lock built another digest than README.md states: \
         if the change is on purpose, put the new digest in README.md's example table"
    );
}

#[test]
fn java_example_builds_the_same_digest_as_readme_states() {
    if !host_has_suite("bookworm") {
        return;
    }
    rebuilds_to_the_readme_digest(shared_example("java"), "recipes/java.toml");
}

#[test]
fn python_example_builds_the_same_digest_as_readme_states() {
    if !host_has_suite("bookworm") {
        return;
    }
    rebuilds_to_the_readme_digest(shared_example("python"), "recipes/python.toml");
}

/// The JVM itself runs from the packages as unpacked, as the recipe's
/// nonroot user, whatever maintainer scripts would have added.
#[test]
fn java_example_runs_the_jvm_by_its_full_path() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let java = shared_example("java");
    let r = java.run(
        &[
            "--entrypoint",
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
        ],
        &["-XshowSettings:properties", "-version"],
    );
    r.expect_ok();
    assert!(r.stderr.contains("openjdk version \"17."), "{}", r.stderr);
    assert!(r.stderr.contains("user.name = nonroot"), "{}", r.stderr);
    assert!(
        r.stderr.contains("user.home = /home/nonroot"),
        "{}",
        r.stderr
    );
}

/// `/usr/bin/java`, the recipe's entrypoint, is the link
/// `update-alternatives --install` would have made.
#[test]
fn java_example_runs_java_from_usr_bin() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let java = shared_example("java");
    let r = java.run(&[], &["-version"]);
    r.expect_ok();
    assert!(r.stderr.contains("openjdk version \"17."), "{}", r.stderr);
}

/// SHA-256 fingerprints, as keytool prints them (`AB:CD:…`), of every
/// certificate in a PEM bundle.
fn pem_fingerprints(pem: &str) -> BTreeSet<String> {
    use base64::Engine as _;
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|rest| {
            let body: String = rest
                .split("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            Sha256::digest(der)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .collect()
}

/// ISRG Root X1 (Let's Encrypt's root), which bookworm's ca-certificates
/// carries: one CA named by its certificate, however the trust store
/// names its entries.
const ISRG_ROOT_X1_SHA256: &str =
    "96:BC:EC:06:26:49:76:F3:74:60:77:9A:CF:28:C5:A7:CF:E8:A3:C0:AA:E1:1A:8F:FC:EE:05:C0:BD:DF:08:C6";

/// Java trusts what the system trusts: the trust store ca-certificates-java
/// would have made holds exactly the certificates of the system's CA
/// bundle, and keytool reads it with the default password. (keytool by
/// its full path: `/usr/bin/keytool` is the alternatives test's concern.)
#[test]
fn java_example_trusts_the_system_cas() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let java = shared_example("java");
    let bundle = pem_fingerprints(
        &String::from_utf8(java.file("etc/ssl/certs/ca-certificates.crt")).unwrap(),
    );
    assert!(bundle.len() > 100, "{} CAs in the bundle", bundle.len());
    assert!(bundle.contains(ISRG_ROOT_X1_SHA256));
    let r = java.run(
        &[
            "--entrypoint",
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/keytool",
        ],
        &["-list", "-cacerts", "-storepass", "changeit"],
    );
    r.expect_ok();
    assert!(
        r.stdout
            .contains(&format!("Your keystore contains {} entries", bundle.len())),
        "{}",
        r.stdout
    );
    let trusted: BTreeSet<String> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Certificate fingerprint (SHA-256): "))
        .map(|f| f.trim().to_string())
        .collect();
    assert_eq!(trusted, bundle, "{}", r.stdout);
}

/// Python's standard library loads its C modules, and `ssl` finds the
/// system CAs through OpenSSL's default paths (no environment needed).
#[test]
fn python_example_runs_its_standard_library() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let python = shared_example("python");
    let bundle = pem_fingerprints(
        &String::from_utf8(python.file("etc/ssl/certs/ca-certificates.crt")).unwrap(),
    );
    let program = "import json, os, sqlite3, ssl\n\
        paths = ssl.get_default_verify_paths()\n\
        cas = ssl.create_default_context().get_ca_certs()\n\
        answer = sqlite3.connect(':memory:').execute('select 6 * 7').fetchone()[0]\n\
        print(json.dumps({'uid': os.getuid(), 'cafile': paths.cafile, 'cas': len(cas), \
        'sqlite': answer, 'openssl': ssl.OPENSSL_VERSION.split()[0]}))";
    let r = python.run(&[], &["-c", program]);
    r.expect_ok();
    let facts = json(r.stdout.trim().as_bytes());
    assert_eq!(facts["uid"], 65532, "{facts}");
    assert_eq!(facts["cafile"], "/usr/lib/ssl/cert.pem", "{facts}");
    assert_eq!(facts["cas"], bundle.len(), "{facts}");
    assert_eq!(facts["sqlite"], 42, "{facts}");
    assert_eq!(facts["openssl"], "OpenSSL", "{facts}");
}

/// `awk` is mawk through the alternatives link its maintainer script
/// makes.
#[test]
fn mawk_answers_as_awk() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let image = shared_script_effects();
    let r = image.run(
        &["--entrypoint", "/usr/bin/awk"],
        &["BEGIN { print 6 * 7 }"],
    );
    r.expect_ok();
    assert_eq!(r.stdout, "42\n", "{}", r.stderr);
}

/// dbus's `messagebus` system user and group, which its sysusers.d file
/// declares, are in the image's account files.
#[test]
fn dbus_messagebus_user_exists() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let image = shared_script_effects();
    // mawk by its own path: this test is about the account, not the link.
    let r = image.run(
        &["--entrypoint", "/usr/bin/mawk"],
        &[
            "-F:",
            "$1 == \"messagebus\" { print FILENAME, $1, ($3 > 0 && $3 < 1000) }",
            "/etc/passwd",
            "/etc/group",
        ],
    );
    r.expect_ok();
    assert_eq!(
        r.stdout, "/etc/passwd messagebus 1\n/etc/group messagebus 1\n",
        "{}",
        r.stderr
    );
}
