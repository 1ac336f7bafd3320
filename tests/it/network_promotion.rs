//! What a platform team meets promoting images between registries (issue
//! 26): a TLS registry with a private CA and a plain-HTTP one in one
//! `stele push` (skopeo's per-side flags), registries.conf entries
//! podman users already have (insecure, mirrors), the push target
//! checked before a build spends its minutes, and connections reused
//! through a real HTTPS proxy (tinyproxy). Registries are real
//! `docker-registry` processes, the second on 127.0.0.2 so that plain
//! HTTP to it has to be asked for.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::docker_registry::{DockerRegistry, RegistryOptions};
use crate::support::pki::Pki;
use crate::support::registry::{Auth, FakeRegistry, Fault};
use crate::support::tree::populate;
use crate::support::*;

use crate::network::have_tools;

/// The small image every test here moves, with its attestations.
fn image(tmp: &Path) -> PathBuf {
    crate::network::image_with(tmp, "all")
}

/// `stele push` with `args`, a cache of its own per call.
fn push(tmp: &Path, args: &[&str], cache: &str) -> Run {
    run(stele()
        .arg("push")
        .args(args)
        .arg("--cache-dir")
        .arg(tmp.join(cache)))
}

/// A registry A serving TLS with a private CA on 127.0.0.1, and B
/// serving plain HTTP on 127.0.0.2; `certs` holds A's CA as --cert-dir
/// wants it.
struct Pair {
    a: DockerRegistry,
    b: DockerRegistry,
    certs: PathBuf,
}

fn pair(tmp: &Path) -> Pair {
    let pki = Pki::new(&tmp.join("pki"));
    let (cert, key) = pki.issue("registry", true);
    let a = DockerRegistry::start_with(&RegistryOptions {
        tls: Some((&cert, &key)),
        ..RegistryOptions::default()
    });
    let b = DockerRegistry::start_with(&RegistryOptions {
        ip: Some("127.0.0.2"),
        ..RegistryOptions::default()
    });
    let certs = tmp.join("certs");
    fs::create_dir_all(certs.join(a.host())).unwrap();
    fs::copy(pki.ca(), certs.join(a.host()).join("ca.crt")).unwrap();
    Pair { a, b, certs }
}

#[test]
fn promotion_from_a_tls_registry_to_a_plain_one_is_one_command() {
    if !have_tools() {
        return;
    }
    let tmp = tempdir();
    let tmp = tmp.path();
    let Pair { a, b, certs } = pair(tmp);
    let certs_arg = certs.to_str().unwrap();
    let layout = image(tmp);
    let on_a = format!("{}/team/app:1", a.host());
    let on_b = format!("{}/team/app:1", b.host());

    // Into A, trusting its CA for the destination only.
    let r = push(
        tmp,
        &[
            layout.to_str().unwrap(),
            &on_a,
            "--dest-cert-dir",
            certs_arg,
        ],
        "c1",
    );
    r.expect_ok();
    let digest = r.last_line().rsplit_once('@').unwrap().1.to_string();

    // A to B: A's CA for the source side, plain HTTP for the
    // destination side.
    let r = push(
        tmp,
        &[&on_a, &on_b, "--src-cert-dir", certs_arg, "--dest-insecure"],
        "c2",
    );
    r.expect_ok();
    assert_eq!(r.last_line(), format!("{on_b}@{digest}"));
    assert!(r.stderr.contains("3 referrer(s)"), "{}", r.stderr);

    // Each side needs its own setting: without --dest-insecure B is asked
    // in TLS; without --src-cert-dir A's certificate is not trusted.
    let on_b2 = format!("{}/team/app:2", b.host());
    let r = push(tmp, &[&on_a, &on_b2, "--src-cert-dir", certs_arg], "c3");
    r.expect_fail();
    assert!(r.stderr.contains(&b.host()), "{}", r.stderr);
    let r = push(tmp, &[&on_a, &on_b2, "--dest-insecure"], "c4");
    r.expect_fail();
    assert!(
        r.stderr.contains("UnknownIssuer") && r.stderr.contains(&a.host()),
        "{}",
        r.stderr
    );
    // --src-tls-verify=false stands in for the CA (and says so).
    let r = push(
        tmp,
        &[&on_a, &on_b2, "--src-tls-verify=false", "--dest-insecure"],
        "c5",
    );
    r.expect_ok();
    assert!(r.stderr.contains("not checked"), "{}", r.stderr);

    // A URL is not a reference; the message names the per-side flag.
    let r = push(
        tmp,
        &[
            &on_a,
            &format!("http://{}/team/app:3", b.host()),
            "--src-cert-dir",
            certs_arg,
        ],
        "c6",
    );
    r.expect_fail();
    assert!(
        r.stderr.contains("not a URL") && r.stderr.contains("--dest-insecure"),
        "{}",
        r.stderr
    );

    // Source flags for a source that is not a registry are refused.
    let r = push(
        tmp,
        &[layout.to_str().unwrap(), &on_b2, "--src-insecure"],
        "c7",
    );
    r.expect_fail();
    assert!(r.stderr.contains("--src-tls-verify"), "{}", r.stderr);
}

#[test]
fn registries_conf_marks_a_registry_insecure_and_pulls_come_from_its_mirror_first() {
    if !have_tools() {
        return;
    }
    let tmp = tempdir();
    let tmp = tmp.path();
    let Pair { a, b, certs } = pair(tmp);
    let layout = image(tmp);
    let on_a = format!("{}/mirrored/app:1", a.host());
    let r = run(stele()
        .arg("push")
        .arg(&layout)
        .arg(&on_a)
        .arg("--cert-dir")
        .arg(&certs)
        .arg("--cache-dir")
        .arg(tmp.join("c1")));
    r.expect_ok();
    let digest = r.last_line().rsplit_once('@').unwrap().1.to_string();

    // B is insecure by the conf file: a push needs no flag.
    let conf = tmp.join("registries.conf");
    fs::write(
        &conf,
        format!(
            "unqualified-search-registries = []\n\n[[registry]]\nlocation = \"{b}\"\ninsecure = true\n\n[[registry]]\nprefix = \"{b}/mirrored\"\nlocation = \"{b}/mirrored\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"{a}/mirrored\"\n",
            a = a.host(),
            b = b.host()
        ),
    )
    .unwrap();
    let r = run(stele()
        .arg("push")
        .arg(&layout)
        .arg(format!("{}/team/app:1", b.host()))
        .arg("--cache-dir")
        .arg(tmp.join("c2"))
        .env("CONTAINERS_REGISTRIES_CONF", &conf));
    r.expect_ok();

    // A pull of B's name that B never had comes from the mirror (A),
    // checked against the digest it pins.
    let r = run(stele()
        .arg("pull")
        .arg(format!("{}/mirrored/app@{digest}", b.host()))
        .arg("-o")
        .arg(tmp.join("pulled"))
        .arg("--cert-dir")
        .arg(&certs)
        .arg("--registries-conf")
        .arg(&conf)
        .arg("--cache-dir")
        .arg(tmp.join("c3")));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);

    // A blocked registry is refused, naming the file.
    fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\nblocked = true\n",
            b.host()
        ),
    )
    .unwrap();
    let r = run(stele()
        .arg("push")
        .arg(&layout)
        .arg(format!("{}/team/app:2", b.host()))
        .arg("--registries-conf")
        .arg(&conf)
        .arg("--cache-dir")
        .arg(tmp.join("c4")));
    r.expect_fail();
    assert!(
        r.stderr.contains("blocked") && r.stderr.contains("registries.conf"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_push_target_is_checked_before_the_build() {
    let tmp = tempdir();
    let tmp = tmp.path();
    let src = tmp.join("src");
    populate(&src, false);
    let recipe = src.join("recipe.toml");
    let reg = FakeRegistry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let reference = format!("{}/team/app:1", reg.host());
    let out = tmp.join("out");

    // `stele build RECIPE -o OUT --push REF` with `extra` flags.
    let build_push = |extra: &[&std::ffi::OsStr]| {
        run(stele()
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(&out)
            .args(["--push", &reference])
            .args(extra)
            .arg("--cache-dir")
            .arg(tmp.join("cache")))
    };

    // No credentials: refused before a layer is written, and the output
    // folder is not made.
    let r = build_push(&[]);
    r.expect_fail();
    assert!(
        r.stderr.contains("before the build") && r.stderr.contains("401"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("building"), "{}", r.stderr);
    assert!(!out.exists());
    let r = run(stele()
        .arg("push")
        .arg(&recipe)
        .arg(&reference)
        .arg("--cache-dir")
        .arg(tmp.join("cache")));
    r.expect_fail();
    assert!(
        r.stderr.contains("before the build") && !r.stderr.contains("building"),
        "{}",
        r.stderr
    );

    // Credentials that may read but not push: the upload session is
    // refused, still before the build.
    let auth = tmp.join("auth.json");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    fs::write(
        &auth,
        format!(r#"{{"auths":{{"{}":{{"auth":"{basic}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    reg.fault("POST", "/blobs/uploads", 0, 1, Fault::Status(403, "DENIED"));
    let r = build_push(&["--authfile".as_ref(), auth.as_os_str()]);
    r.expect_fail();
    assert!(
        r.stderr.contains("DENIED") && !r.stderr.contains("building"),
        "{}",
        r.stderr
    );

    // With push rights the check passes, the session it opened is
    // cancelled, and the build pushes.
    let r = build_push(&["--authfile".as_ref(), auth.as_os_str()]);
    r.expect_ok();
    let log = reg.log();
    let first_upload = log
        .iter()
        .position(|l| l.method == "POST" && l.path.ends_with("/blobs/uploads/"))
        .unwrap();
    assert!(
        log[first_upload..]
            .iter()
            .any(|l| l.method == "DELETE" && l.path.contains("/blobs/uploads/")),
        "{log:?}"
    );
}

/// tinyproxy on 127.0.0.1, logging every connection; killed on drop.
struct Tinyproxy {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Tinyproxy {
    fn start(dir: &Path) -> Tinyproxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 600\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 100\nAllow 127.0.0.1\n",
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tinyproxy");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tinyproxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Client connections it accepted since the log was last emptied.
    fn connections(&self) -> usize {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Connect (file descriptor"))
            .count()
    }

    fn forget(&self) {
        fs::write(&self.log, "").unwrap();
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_pull_and_a_push_through_an_https_proxy_reuse_their_tunnels() {
    if !have_tools() {
        return;
    }
    if !have_tool("tinyproxy") {
        return;
    }
    let tmp = tempdir();
    let tmp = tmp.path();
    let Pair { a, certs, .. } = pair(tmp);
    let layout = image(tmp);
    let reference = format!("{}/team/app:1", a.host());
    let proxy = Tinyproxy::start(tmp);
    let through = |c: &mut Command| -> Run {
        run(c
            .arg("-j")
            .arg("4")
            .arg("--cert-dir")
            .arg(&certs)
            .env("HTTPS_PROXY", &proxy.url))
    };
    // The image and its three attestations: a dozen blobs and manifests.
    through(
        stele()
            .arg("push")
            .arg(&layout)
            .arg(&reference)
            .arg("--cache-dir")
            .arg(tmp.join("c1")),
    )
    .expect_ok();
    let pushed = proxy.connections();
    proxy.forget();
    through(
        stele()
            .args(["pull", &reference, "-o"])
            .arg(tmp.join("pulled"))
            .arg("--cache-dir")
            .arg(tmp.join("c2")),
    )
    .expect_ok();
    let pulled = proxy.connections();
    // Before, a tunnel per request: 30 for a pull of this size, more for
    // the push. Now about one per job: a request that starts while
    // another's connection is on its way back to the pool opens one more,
    // so the bound leaves room for that.
    assert!((1..=6).contains(&pushed), "{pushed} tunnels for the push");
    assert!((1..=6).contains(&pulled), "{pulled} tunnels for the pull");
    // With one job, one tunnel carries everything.
    proxy.forget();
    let r = run(stele()
        .args(["pull", &reference, "-o"])
        .arg(tmp.join("pulled-1"))
        .args(["-j", "1", "--cert-dir"])
        .arg(&certs)
        .arg("--cache-dir")
        .arg(tmp.join("c3"))
        .env("HTTPS_PROXY", &proxy.url));
    r.expect_ok();
    assert_eq!(proxy.connections(), 1);
}
