//! The network's limits, probed as someone in control of a registry, a
//! proxy, a credential helper or a certificate folder would probe them
//! (issue 28): a body trickled below the throughput floor or stalled, an
//! index of 10,000 manifests, a referrers tag holding something that is
//! not an index, helpers that flood, hang or shout, certificate "files"
//! that are devices or FIFOs, and a proxy that answers garbage. Deadlines
//! are set short through the environment, and timing only bounds how long
//! a failure may take, generously.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::registry::{Auth, FakeRegistry, Fault};
use crate::support::*;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A one-layer image of `len` bytes of noise, built into a layout (with
/// the default attestations when `attest`).
fn image(tmp: &Path, len: usize, attest: bool) -> PathBuf {
    let src = tmp.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("noise.bin"), crate::support::bytes::noise(len, 10)).unwrap();
    fs::write(
        src.join("recipe.toml"),
        "[image]\nname = \"limits\"\n\n[[files]]\nsrc = \"noise.bin\"\ndest = \"/noise.bin\"\n",
    )
    .unwrap();
    let layout = tmp.join("layout");
    run(stele()
        .arg("build")
        .arg(src.join("recipe.toml"))
        .args(["--attest", if attest { "all" } else { "none" }, "-o"])
        .arg(&layout)
        .arg("--cache-dir")
        .arg(tmp.join("cache-build")))
    .expect_ok();
    layout
}

/// `stele push LAYOUT REF`; returns the pushed `REF@sha256:…`.
fn push(tmp: &Path, layout: &Path, reference: &str) -> String {
    let r = run(stele()
        .arg("push")
        .arg(layout)
        .arg(reference)
        .arg("--cache-dir")
        .arg(tmp.join("cache-push")));
    r.expect_ok();
    r.last_line().to_string()
}

/// `stele pull REF -o OUT` with a cache of its own, configured by `env`.
fn pull(tmp: &Path, reference: &str, out: &str, env: &[(&str, &str)]) -> Run {
    let mut c = stele();
    c.arg("pull")
        .arg(reference)
        .arg("-o")
        .arg(tmp.join(out))
        .arg("--cache-dir")
        .arg(tmp.join(format!("cache-{out}")));
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c)
}

fn blob_gets(reg: &FakeRegistry) -> usize {
    reg.log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/blobs/sha256:"))
        .count()
}

#[test]
fn a_trickled_body_is_abandoned_below_the_floor_while_a_slow_honest_one_passes() {
    let tmp = tempdir();
    let reg = FakeRegistry::start(Auth::None);
    let layout = image(tmp.path(), 20_000, false);
    let reference = format!("{}/team/app:1", reg.host());
    push(tmp.path(), &layout, &reference);
    let floor = [
        ("STELE_SPEED_LIMIT", "1000"),
        ("STELE_SPEED_TIME", "1s"),
        ("STELE_MAX_TIME", "3s"),
    ];

    // Slow but honest: 2 kB every 0.1 s, well above 1000 bytes/s.
    reg.fault(
        "GET",
        "/blobs/sha256:",
        0,
        100,
        Fault::Trickle {
            chunk: 2000,
            every: Duration::from_millis(100),
        },
    );
    pull(tmp.path(), &reference, "honest", &floor).expect_ok();

    // 10 bytes every 50 ms: 200 bytes/s, abandoned once the window of
    // 1 s closes, tried again while the total of 3 s lasts, never after.
    let reg = FakeRegistry::start(Auth::None);
    let reference = format!("{}/team/app:1", reg.host());
    push(tmp.path(), &layout, &reference);
    reg.fault(
        "GET",
        "/blobs/sha256:",
        0,
        100,
        Fault::Trickle {
            chunk: 10,
            every: Duration::from_millis(50),
        },
    );
    let started = Instant::now();
    let r = pull(tmp.path(), &reference, "trickled", &floor);
    let took = started.elapsed();
    r.expect_fail();
    for want in [
        "below the floor of 1000 bytes/s",
        "the most one request may take",
    ] {
        assert!(r.stderr.contains(want), "missing `{want}`: {}", r.stderr);
    }
    // Without the floor, 20 kB at 200 bytes/s would take 100 s per blob.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(!tmp.path().join("trickled").exists());
}

#[test]
fn a_body_that_stalls_after_10_bytes_is_abandoned_after_the_window_and_retries_keep_to_the_total() {
    let tmp = tempdir();
    let reg = FakeRegistry::start(Auth::None);
    let layout = image(tmp.path(), 20_000, false);
    let reference = format!("{}/team/app:1", reg.host());
    push(tmp.path(), &layout, &reference);
    reg.fault("GET", "/blobs/sha256:", 0, 100, Fault::StallAfter(10));
    let started = Instant::now();
    let r = pull(
        tmp.path(),
        &reference,
        "stalled",
        &[
            ("STELE_SPEED_LIMIT", "1000"),
            ("STELE_SPEED_TIME", "1s"),
            ("STELE_MAX_TIME", "4s"),
        ],
    );
    let took = started.elapsed();
    r.expect_fail();
    assert!(
        r.stderr.contains("stalled") && r.stderr.contains("gave up after 4 s"),
        "{}",
        r.stderr
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Within 4 s, a 1 s window and the backoff leave room for a few
    // attempts per blob, not the idle timeout's two minutes each.
    let gets = blob_gets(&reg);
    assert!((2..=12).contains(&gets), "{gets} blob GETs");
}

/// The bytes of an index listing `count` made-up manifests.
fn index_of(count: usize) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = (0..count)
        .map(|i| json!({"mediaType": OCI_MANIFEST, "digest": format!("sha256:{i:064x}"), "size": 500}))
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
        .unwrap()
}

/// The message a limit gives, from `index sha256:` on: what every source
/// says alike.
fn limit_message(stderr: &str) -> String {
    let start = stderr.find("index sha256:").expect("the index named");
    stderr[start..].lines().next().unwrap().to_string()
}

#[test]
fn an_index_of_10000_manifests_is_refused_before_its_first_entry_is_fetched_as_in_a_layout() {
    let tmp = tempdir();
    let reg = FakeRegistry::start(Auth::None);
    let bytes = index_of(10_000);
    reg.put_manifest("team/many", "v1", OCI_INDEX, bytes.clone());
    let started = Instant::now();
    let r = pull(
        tmp.path(),
        &format!("{}/team/many:v1", reg.host()),
        "many",
        &[],
    );
    r.expect_fail();
    let from_registry = limit_message(&r.stderr);
    assert!(
        from_registry.contains("lists 10000 manifests, beyond the limit of 1000 for an index"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let manifest_gets = reg
        .log()
        .iter()
        .filter(|l| l.path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 1, "{:?}", reg.log());

    // The same index in a layout: the same limit, the same words.
    let layout = tmp.path().join("layout");
    let digest = sha256_hex(&bytes);
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(layout.join("blobs/sha256").join(&digest), &bytes).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_INDEX, "digest": format!("sha256:{digest}"), "size": bytes.len()}
        ]}))
        .unwrap(),
    )
    .unwrap();
    let r = run(stele().arg("inspect").arg(&layout));
    r.expect_fail();
    assert_eq!(limit_message(&r.stderr), from_registry);

    // An index that lists another index: refused alike, before fetching.
    let nested = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": format!("sha256:{digest}"), "size": bytes.len()}]}))
    .unwrap();
    reg.put_manifest("team/nested", "v1", OCI_INDEX, nested);
    let r = pull(
        tmp.path(),
        &format!("{}/team/nested:v1", reg.host()),
        "nested",
        &[],
    );
    r.expect_fail();
    assert!(r.stderr.contains("nests another index"), "{}", r.stderr);
}

#[test]
fn a_referrers_tag_holding_a_manifest_is_warned_about_by_pull_and_push_and_fails_verify() {
    let tmp = tempdir();
    let tmp = tmp.path();
    let reg = FakeRegistry::start(Auth::None);
    let layout = image(tmp, 2_000, true);
    let reference = format!("{}/team/app:1", reg.host());
    let pushed = push(tmp, &layout, &reference);
    let digest = pushed.rsplit_once('@').unwrap().1.to_string();
    let tag = format!("sha256-{}", &digest[7..]);
    // The fallback tag now holds the image's own manifest, not an index.
    let (media_type, manifest) = reg.manifest("team/app", &digest).unwrap();
    reg.put_manifest("team/app", &tag, &media_type, manifest);

    let r = pull(tmp, &reference, "pulled", &[]);
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("not an index"),
        "{}",
        r.stderr
    );

    // A copy to another repository takes the image, and says why it
    // carries no attestations.
    let r = run(stele()
        .arg("push")
        .arg(&reference)
        .arg(format!("{}/team/copy:1", reg.host()))
        .arg("--cache-dir")
        .arg(tmp.join("cache-copy")));
    r.expect_ok();
    assert!(r.stderr.contains("warning"), "{}", r.stderr);

    // Pushing the attestations again: the tag that cannot be read is
    // left alone, and said so.
    let r = run(stele()
        .arg("push")
        .arg(&layout)
        .arg(format!("{}/team/app:2", reg.host()))
        .arg("--cache-dir")
        .arg(tmp.join("cache-push")));
    r.expect_ok();
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("are not listed under"),
        "{}",
        r.stderr
    );
    assert_eq!(reg.manifest("team/app", &tag).unwrap().0, media_type);

    // verify stays strict: it cannot check what it cannot list.
    let r = run(stele()
        .arg("verify")
        .arg(format!("docker://{reference}"))
        .arg("--cache-dir")
        .arg(tmp.join("cache-verify")));
    r.expect_code(2);
    assert!(r.stderr.contains("not an index"), "{}", r.stderr);
}

/// A docker config naming `docker-credential-NAME` (written to `bin`) for
/// `host`; returns the PATH and DOCKER_CONFIG that find it.
fn helper(tmp: &Path, host: &str, name: &str, script: &str) -> (String, PathBuf) {
    let bin = tmp.join("bin");
    write_file(
        &bin.join(format!("docker-credential-{name}")),
        format!("#!/bin/sh\n{script}\n"),
        0o755,
    );
    let config = tmp.join(format!("docker-{name}"));
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"{name}"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path, config)
}

/// Processes whose command line has `marker`.
fn running_with(marker: &str) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(marker))
        .count()
}

#[test]
fn credential_helpers_that_flood_hang_or_shout_are_bounded() {
    let tmp = tempdir();
    let tmp = tmp.path();
    let reg = FakeRegistry::start(Auth::None);
    let host = reg.host().to_string();
    let reference = format!("{host}/team/app:1");

    // Prints without end: stopped at the answer's limit, memory bounded.
    let (path, config) = helper(
        tmp,
        &host,
        "flood",
        r#"exec yes '{"Username":"alice","Secret":"s3cret"}'"#,
    );
    let started = Instant::now();
    let (r, peak) = crate::hostile::run_measured(
        stele()
            .args(["pull", &reference, "-o"])
            .arg(tmp.join("flood"))
            .arg("--cache-dir")
            .arg(tmp.join("cache"))
            .env("PATH", &path)
            .env("DOCKER_CONFIG", &config),
        Duration::from_secs(60),
    );
    r.expect_fail();
    assert!(
        r.stderr.contains("docker-credential-flood")
            && r.stderr.contains("goes on past 65536 bytes"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    if let Some(bytes) = peak {
        assert!(bytes < 100 << 20, "peak RSS {bytes} bytes");
    }

    // Never answers, and started a child that would outlive it: both
    // are stopped when the deadline passes.
    let marker = "600.0419";
    let (path, config) = helper(tmp, &host, "hang", &format!("sleep {marker} &\nwait"));
    let started = Instant::now();
    let r = run(stele()
        .args(["pull", &reference, "-o"])
        .arg(tmp.join("hang"))
        .arg("--cache-dir")
        .arg(tmp.join("cache"))
        .env("PATH", &path)
        .env("DOCKER_CONFIG", &config)
        .env("STELE_CREDENTIAL_HELPER_TIMEOUT", "1"));
    r.expect_fail();
    assert!(
        r.stderr.contains("did not answer within 1 s"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(running_with(&format!("sleep {marker}")), 0);

    // Fails with 100 MB on stderr: only its start is quoted.
    let (path, config) = helper(
        tmp,
        &host,
        "shout",
        "head -c 100000000 /dev/zero | tr '\\0' e >&2\nexit 1",
    );
    let r = run(stele()
        .args(["pull", &reference, "-o"])
        .arg(tmp.join("shout"))
        .arg("--cache-dir")
        .arg(tmp.join("cache"))
        .env("PATH", &path)
        .env("DOCKER_CONFIG", &config));
    r.expect_fail();
    assert!(
        r.stderr.contains("docker-credential-shout") && r.stderr.contains("more bytes"),
        "{}",
        &r.stderr[..r.stderr.len().min(2000)]
    );
    assert!(
        r.stderr.len() < 10_000,
        "{} bytes of stderr",
        r.stderr.len()
    );
}

fn mkfifo(path: &Path) {
    let out = Command::new("mkfifo").arg(path).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn certificate_folders_and_files_are_read_as_untrusted_input() {
    let tmp = tempdir();
    let tmp = tmp.path();
    // The registry's TLS settings are made before anything is sent, so a
    // name that does not resolve is enough: a refused file fails first,
    // a skipped one lets the pull go on to fail on the name.
    let reference = "registry.invalid/team/app:1";
    let pull_with = |configure: &dyn Fn(&mut Command)| {
        let mut c = stele();
        c.args(["pull", reference, "-o"])
            .arg(tmp.join("out"))
            .arg("--cache-dir")
            .arg(tmp.join("cache"));
        configure(&mut c);
        let started = Instant::now();
        let r = run(&mut c);
        assert!(started.elapsed() < Duration::from_secs(20));
        r
    };

    // --cert-dir: a ca.crt that is a link to /dev/zero, then a FIFO.
    let certs = tmp.join("certs");
    fs::create_dir_all(&certs).unwrap();
    std::os::unix::fs::symlink("/dev/zero", certs.join("ca.crt")).unwrap();
    let r = pull_with(&|c| {
        c.arg("--cert-dir").arg(&certs);
    });
    r.expect_fail();
    assert!(
        r.stderr.contains("ca.crt") && r.stderr.contains("link out of"),
        "{}",
        r.stderr
    );
    fs::remove_file(certs.join("ca.crt")).unwrap();
    let host_dir = certs.join("registry.invalid");
    fs::create_dir_all(&host_dir).unwrap();
    mkfifo(&host_dir.join("ca.crt"));
    let r = pull_with(&|c| {
        c.arg("--cert-dir").arg(&certs);
    });
    r.expect_fail();
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);

    // SSL_CERT_FILE names a device or a FIFO: refused, named.
    for named in [PathBuf::from("/dev/zero"), host_dir.join("ca.crt")] {
        let r = pull_with(&|c| {
            c.env("SSL_CERT_FILE", &named);
        });
        r.expect_fail();
        assert!(
            r.stderr.contains("not a regular file") && r.stderr.contains(&*named.to_string_lossy()),
            "{}",
            r.stderr
        );
    }

    // SSL_CERT_DIR holds the same: skipped, as links into other folders
    // are (an OpenSSL hash folder); the pull goes on to the name.
    let dir = tmp.join("ssl-certs");
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.pem")).unwrap();
    mkfifo(&dir.join("fifo.pem"));
    let r = pull_with(&|c| {
        c.env("SSL_CERT_DIR", &dir);
    });
    r.expect_fail();
    assert!(r.stderr.contains("does not resolve"), "{}", r.stderr);
}

/// A listener on 127.0.0.1 that answers every connection with `answer`
/// and closes it; returns its `http://` URL.
fn answering(answer: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(answer);
        }
    });
    url
}

#[test]
fn a_proxy_that_answers_garbage_or_refuses_is_named_as_the_proxy() {
    let tmp = tempdir();
    let tmp = tmp.path();
    let garbage = answering(b"garbage, and no HTTP at all\r\n\r\n");
    let with_credentials = garbage.replacen("http://", "http://someone:secret@", 1);
    let pull_through = |proxy: &str, extra: &[&str]| {
        run(stele()
            .args(["pull", "registry.invalid:5000/team/app:1", "-o"])
            .arg(tmp.join("out"))
            .arg("--cache-dir")
            .arg(tmp.join("cache"))
            .args(extra)
            .env("HTTPS_PROXY", proxy)
            .env("HTTP_PROXY", proxy))
    };

    // HTTPS: the CONNECT answer is garbage.
    let r = pull_through(&with_credentials, &[]);
    r.expect_fail();
    assert!(
        r.stderr.contains(&format!("through the proxy {garbage}"))
            && r.stderr.contains("not HTTP")
            && r.stderr.contains("garbage"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("may not speak TLS"), "{}", r.stderr);
    assert!(!r.stderr.contains("secret"), "{}", r.stderr);

    // Plain HTTP through the proxy (absolute-form): the same.
    let r = pull_through(&garbage, &["--insecure"]);
    r.expect_fail();
    assert!(
        r.stderr.contains(&format!("through the proxy {garbage}")) && r.stderr.contains("not HTTP"),
        "{}",
        r.stderr
    );

    // A proxy that wants credentials says so.
    let wants =
        answering(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    let r = pull_through(&wants, &[]);
    r.expect_fail();
    assert!(
        r.stderr.contains(&format!("through the proxy {wants}"))
            && r.stderr.contains("wants credentials"),
        "{}",
        r.stderr
    );
}
