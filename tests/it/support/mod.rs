//! Everything the integration tests share: run the real `stele` binary
//! with a controlled environment, read back what it wrote and check a
//! layout the way an independent reader would ([`archive`], [`edit`],
//! [`tree`], [`podman`]); hermetic fixtures: Debian packages built in
//! memory ([`deb`]), signed apt repositories on disk ([`repo`]), a loopback
//! HTTP server with fault injection ([`http`]), an in-process OCI registry
//! that misbehaves on request ([`registry`]); and attestation fixtures with
//! the gates of their independent validators ([`attest`]). Nothing here
//! touches the network beyond 127.0.0.1.

pub mod apps;
pub mod archive;
pub mod attest;
pub mod bytes;
pub mod deb;
pub mod docker;
pub mod docker_registry;
pub mod edit;
pub mod http;
pub mod moving;
pub mod parity;
pub mod pki;
pub mod podman;
pub mod registry;
pub mod repo;
pub mod sigstore_tools;
pub mod trace;
pub mod tree;
pub mod wrap;

pub use deb::{build_deb, Compression, Deb, DebEntry};
pub use http::Fault;
pub use repo::{AptRepo, AptRepoBuilder, Signing, Tamper};

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub const STELE: &str = env!("CARGO_BIN_EXE_stele");

/// Variables that could reach a build or a push and that the test, not
/// the developer's shell, decides: the build's clock and locale, and where
/// the developer's registry credentials are.
const CONTROLLED_ENV: &[&str] = &[
    "SOURCE_DATE_EPOCH",
    "TZ",
    "LANG",
    "LC_ALL",
    "LANGUAGE",
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    // How requests go out: a developer's proxy or extra CAs must not
    // change a test; tests that want them set them.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "STELE_CERTS_D",
    // Deadlines and per-registry settings.
    "STELE_SPEED_LIMIT",
    "STELE_SPEED_TIME",
    "STELE_MAX_TIME",
    "STELE_CREDENTIAL_HELPER_TIMEOUT",
    "CONTAINERS_REGISTRIES_CONF",
    // What provenance says of the builder and the CI run, and a signing
    // key's password: a CI job's own variables must not reach a test.
    "STELE_BUILDER_ID",
    "STELE_BUILD_TYPE",
    "STELE_KEY_PASSWORD",
    "COSIGN_PASSWORD",
    "GITHUB_ACTIONS",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITLAB_CI",
    "CI_JOB_URL",
    "CI_JOB_STARTED_AT",
];

/// A `stele` command with the environment variables that matter removed, so
/// the developer's shell cannot change a test's outcome. Nothing it does
/// reaches the developer's home: HOME is an empty folder the tests own,
/// builds that name no `--cache-dir` use a cache under cargo's target
/// folder, and so do its temp files. A test that runs `stele` under another
/// umask gives it a cache of its own (`XDG_CACHE_HOME`): files that umask
/// makes would otherwise end in the cache the other tests share.
pub fn stele() -> Command {
    let dirs = test_dirs();
    let mut c = Command::new(STELE);
    for k in CONTROLLED_ENV {
        c.env_remove(k);
    }
    c.env("HOME", &dirs.home)
        .env("XDG_CACHE_HOME", env!("CARGO_TARGET_TMPDIR"))
        .env("TMPDIR", &dirs.tmp);
    c
}

/// The folders under cargo's target folder that [`stele`] points HOME and
/// TMPDIR at.
struct TestDirs {
    home: PathBuf,
    tmp: PathBuf,
}

/// Made once per run of the test binary; HOME starts empty every run and
/// is read-only, so (short of running as root) a `stele` that writes into
/// its home fails the test instead of leaving something the next run reads.
fn test_dirs() -> &'static TestDirs {
    static DIRS: OnceLock<TestDirs> = OnceLock::new();
    DIRS.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let home = target.join("home");
        let tmp = target.join("tmpdir");
        if home.exists() {
            fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
            fs::remove_dir_all(&home)
                .unwrap_or_else(|e| panic!("emptying {}: {e}", home.display()));
        }
        fs::create_dir_all(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o555)).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        TestDirs { home, tmp }
    })
}

/// `cmd`, started under umask `mask` (what `sh -c 'umask MASK && exec …'`
/// does, without a shell between the test and the command).
pub fn with_umask(cmd: &mut Command, mask: u32) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls may run between fork and exec;
    // umask(2) is one, and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask as libc::mode_t);
            Ok(())
        })
    }
}

/// The output of a finished command, with text accessors for assertions.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    /// The last non-empty stdout line: where `stele build` prints the digest.
    pub fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        assert!(
            self.ok(),
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Checks the exit status (`verify` and `diff` tell 1 from 2).
    #[track_caller]
    pub fn expect_code(&self, want: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(want),
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn expect_fail(&self) -> &Self {
        assert!(
            !self.ok(),
            "command succeeded but should have failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Run {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `stele build RECIPE -o OUT`, checked to succeed; returns the digest line.
#[track_caller]
pub fn build(recipe: &Path, out: &Path) -> String {
    let r = run(stele().arg("build").arg(recipe).arg("-o").arg(out));
    r.expect_ok();
    let digest = r.last_line().to_string();
    assert!(
        is_digest(&digest),
        "last stdout line is not a digest: {r_out:?}",
        r_out = r.stdout
    );
    digest
}

/// `stele build RECIPE -o OUT ARGS…`, checked to succeed; returns the
/// digest line.
#[track_caller]
pub fn build_with(recipe: &Path, out: &Path, args: &[&str]) -> String {
    let r = run(stele()
        .arg("build")
        .arg(recipe)
        .arg("-o")
        .arg(out)
        .args(args));
    r.expect_ok();
    let digest = r.last_line().to_string();
    assert!(
        is_digest(&digest),
        "last stdout line is not a digest: {:?}",
        r.stdout
    );
    digest
}

pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stele-test-")
        .tempdir()
        .expect("temp dir")
}

/// Writes `bytes` to `path` (creating parents) and sets its permission bits.
pub fn write_file(path: &Path, bytes: impl AsRef<[u8]>, mode: u32) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file below `dir` by relative path (`/`-separated) with its bytes;
/// symlinks are recorded as `-> target` and directories as empty entries
/// ending in `/`, so two trees compare equal only when everything matches.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut map = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let ft = entry.file_type();
        if ft.is_dir() {
            map.insert(format!("{rel}/"), Vec::new());
        } else if ft.is_symlink() {
            let t = fs::read_link(entry.path()).unwrap();
            map.insert(rel, format!("-> {}", t.display()).into_bytes());
        } else {
            map.insert(rel, fs::read(entry.path()).unwrap());
        }
    }
    map
}

/// Asserts two layout folders hold the same files with the same bytes,
/// naming the first difference.
#[track_caller]
pub fn assert_same_layout(a: &Path, b: &Path) {
    let sa = snapshot(a);
    let sb = snapshot(b);
    let names_a: Vec<_> = sa.keys().collect();
    let names_b: Vec<_> = sb.keys().collect();
    assert_eq!(
        names_a,
        names_b,
        "layouts {} and {} hold different files",
        a.display(),
        b.display()
    );
    for (name, bytes) in &sa {
        assert!(
            bytes == &sb[name],
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert!(!sa.is_empty(), "layout {} is empty", a.display());
}

/// Reads a blob, checking its bytes hash to its name.
#[track_caller]
pub fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    let path = layout.join("blobs/sha256").join(hex);
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(
        sha256_hex(&bytes),
        hex,
        "blob {} is damaged",
        path.display()
    );
    bytes
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// Reads the blob a descriptor names, checking digest and size.
#[track_caller]
pub fn descriptor_blob(layout: &Path, desc: &Value) -> Vec<u8> {
    let digest = desc["digest"].as_str().expect("descriptor digest");
    let bytes = blob(layout, digest);
    assert_eq!(
        Some(bytes.len() as u64),
        desc["size"].as_u64(),
        "size of {digest} does not match its descriptor"
    );
    bytes
}

/// What a single-image layout holds, after `check_layout` read it.
pub struct Layout {
    pub index: Value,
    pub manifest_digest: String,
    pub manifest: Value,
    pub config: Value,
    /// Each layer's media type and blob bytes.
    pub layers: Vec<(String, Vec<u8>)>,
}

/// Checks a layout the way a reader would (image-spec `image-layout.md`):
/// the version file, an index naming one manifest (then only attestations
/// about it), and every blob reachable from them present with the digest and size its descriptor claims, and
/// nothing else in `blobs/`.
#[track_caller]
pub fn check_layout(layout: &Path) -> Layout {
    let version = json(&fs::read(layout.join("oci-layout")).expect("oci-layout file"));
    assert_eq!(version["imageLayoutVersion"], "1.0.0");
    let index = json(&fs::read(layout.join("index.json")).expect("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().expect("index manifests");
    // The image first; then attestations (artifacts whose subject it is).
    let top = &manifests[0];
    assert!(top.get("artifactType").is_none(), "image first: {index}");
    assert_eq!(
        top["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let manifest_digest = top["digest"].as_str().unwrap().to_string();
    let manifest = json(&descriptor_blob(layout, top));
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config = json(&descriptor_blob(layout, &manifest["config"]));
    let mut reachable = vec![
        manifest_digest.clone(),
        manifest["config"]["digest"].as_str().unwrap().to_string(),
    ];
    let mut layers = Vec::new();
    for l in manifest["layers"].as_array().expect("manifest layers") {
        reachable.push(l["digest"].as_str().unwrap().to_string());
        layers.push((
            l["mediaType"].as_str().unwrap().to_string(),
            descriptor_blob(layout, l),
        ));
    }
    for a in &manifests[1..] {
        assert!(
            a.get("artifactType").is_some(),
            "only attestations follow the image: {index}"
        );
        let am = json(&descriptor_blob(layout, a));
        assert_eq!(am["subject"]["digest"], manifest_digest.as_str(), "{am}");
        reachable.push(a["digest"].as_str().unwrap().to_string());
        reachable.push(am["config"]["digest"].as_str().unwrap().to_string());
        for l in am["layers"].as_array().expect("artifact layers") {
            descriptor_blob(layout, l);
            reachable.push(l["digest"].as_str().unwrap().to_string());
        }
    }
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(diff_ids.len(), layers.len(), "one diff_id per layer");
    let mut on_disk: Vec<String> = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_str().unwrap()))
        .collect();
    on_disk.sort();
    reachable.sort();
    reachable.dedup();
    assert_eq!(
        on_disk, reachable,
        "blobs/ holds exactly the reachable blobs"
    );
    Layout {
        index,
        manifest_digest,
        manifest,
        config,
        layers,
    }
}

/// The uncompressed tar of a layer blob, by its media type.
pub fn decompress(media_type: &str, blob: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip" => {
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        "application/vnd.oci.image.layer.v1.tar+zstd" => {
            out = zstd::stream::decode_all(blob).expect("valid zstd");
        }
        "application/vnd.oci.image.layer.v1.tar" => out = blob.to_vec(),
        other => panic!("unexpected layer media type {other}"),
    }
    out
}

/// One tar entry as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub path: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// Reads every entry of an uncompressed tar, in stream order.
pub fn tar_entries(tar_bytes: &[u8]) -> Vec<TarEntry> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in archive.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => '-',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            other => panic!("unexpected entry type {other:?}"),
        };
        let path = e.path().unwrap().to_str().unwrap().to_string();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_str().unwrap().to_string());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(TarEntry {
            path,
            kind,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            link,
            data,
        });
    }
    out
}

/// Files in `dir` whose name starts with `prefix` (leftover staging folders).
pub fn leftovers(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Err(_) => Vec::new(),
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect(),
    }
}

/// Whether an external tool can be used. Missing under `CI=true` is a
/// failure (CI installs it); elsewhere the test is skipped with a reason.
#[track_caller]
pub fn have_tool(name: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(name);
            p.is_file() && fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
        })
    });
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is not installed, and CI=true requires every tool (install the Debian package)");
        }
        skip(&format!(
            "{name} is not installed; install it to run this test"
        ));
    }
    found
}

/// Says why a test did nothing. Written to the real stderr, not through
/// `eprintln!`, which the test harness captures and hides on success.
pub fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
}
