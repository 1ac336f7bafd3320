//! Company networks, with real parts on 127.0.0.1: a `docker-registry`
//! serving TLS with a certificate from a CA the test makes with openssl
//! (trusted through SSL_CERT_FILE or --cert-dir, refused at once without),
//! one that wants a client certificate, a forward proxy that apt fetching
//! and the registry client go through (CONNECT for https) unless NO_PROXY
//! names the host, and a docker credential helper on PATH.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::docker_registry::{
    have_registry, htpasswd_alice, DockerRegistry, RegistryOptions,
};
use crate::support::pki::Pki;
use crate::support::tree::populate;
use crate::support::*;

pub(crate) fn have_tools() -> bool {
    have_registry() && have_tool("openssl")
}

/// A small image layout to push.
fn image(tmp: &Path) -> PathBuf {
    image_with(tmp, "none")
}

/// The populate() image built into `tmp/layout` with `--attest ATTEST`.
pub(crate) fn image_with(tmp: &Path, attest: &str) -> PathBuf {
    let src = tmp.join("src");
    populate(&src, false);
    let layout = tmp.join("layout");
    run(stele()
        .arg("build")
        .arg(src.join("recipe.toml"))
        .args(["--attest", attest, "-o"])
        .arg(&layout)
        .arg("--cache-dir")
        .arg(tmp.join("cache-build")))
    .expect_ok();
    layout
}

fn push(layout: &Path, reference: &str, configure: impl FnOnce(&mut Command)) -> Run {
    let mut cmd = stele();
    cmd.arg("push").arg(layout).arg(reference);
    configure(&mut cmd);
    run(&mut cmd)
}

/// Handshakes the registry logged as refused by a client that did not
/// trust its certificate (the readiness probe's bare connection logs
/// `EOF`, which is not counted).
fn refused_handshakes(reg: &DockerRegistry) -> usize {
    reg.log()
        .lines()
        .filter(|l| {
            l.contains("TLS handshake error") && l.contains("unknown certificate authority")
        })
        .count()
}

#[test]
fn a_private_ca_is_trusted_through_ssl_cert_file_and_cert_dir_and_refused_at_once_without() {
    if !have_tools() {
        return;
    }
    let tmp = tempdir();
    let pki = Pki::new(&tmp.path().join("pki"));
    let (cert, key) = pki.issue("registry", true);
    let reg = DockerRegistry::start_with(&RegistryOptions {
        tls: Some((&cert, &key)),
        ..RegistryOptions::default()
    });
    let layout = image(tmp.path());
    let reference = format!("{}/team/app:1", reg.host());

    // Untrusted: refused on the first handshake, naming the host, the
    // problem and how to trust a private CA; no retries.
    let started = Instant::now();
    let r = push(&layout, &reference, |_| {});
    let took = started.elapsed();
    r.expect_fail();
    for want in [
        reg.host().as_str(),
        "not trusted",
        "UnknownIssuer",
        "SSL_CERT_FILE",
        "--cert-dir",
        "certs.d",
    ] {
        assert!(r.stderr.contains(want), "missing `{want}`: {}", r.stderr);
    }
    assert!(!r.stderr.contains("gave up after"), "{}", r.stderr);
    // The default backoff would have waited 0.5 + 1 + 2 + 4 seconds.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(refused_handshakes(&reg), 1, "{}", reg.log());

    // Trusted through SSL_CERT_FILE (the loopback registry is found to
    // speak TLS and reached over https).
    let r = push(&layout, &reference, |c| {
        c.env("SSL_CERT_FILE", pki.ca());
    });
    r.expect_ok();
    let pushed = r.last_line().to_string();
    let digest = pushed.rsplit_once('@').unwrap().1.to_string();

    // Trusted through --cert-dir DIR/HOST:PORT/ca.crt, for a pull.
    let certs = tmp.path().join("certs");
    fs::create_dir_all(certs.join(reg.host())).unwrap();
    fs::copy(pki.ca(), certs.join(reg.host()).join("ca.crt")).unwrap();
    let out = tmp.path().join("pulled");
    let r = run(stele()
        .arg("pull")
        .arg(&reference)
        .arg("-o")
        .arg(&out)
        .arg("--cert-dir")
        .arg(&certs));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);

    // The certs.d roots can be moved (as a test must): same layout.
    let r = run(stele()
        .arg("pull")
        .arg(&reference)
        .arg("-o")
        .arg(tmp.path().join("pulled2"))
        .env("STELE_CERTS_D", &certs));
    r.expect_ok();

    // --tls-verify=false accepts the certificate and says so once.
    let r = push(&layout, &format!("{}/team/app:2", reg.host()), |c| {
        c.arg("--tls-verify=false");
    });
    r.expect_ok();
    assert_eq!(
        r.stderr.matches("--tls-verify=false").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn a_client_certificate_registry_takes_the_pair_from_cert_dir() {
    if !have_tools() {
        return;
    }
    let tmp = tempdir();
    let pki = Pki::new(&tmp.path().join("pki"));
    let (cert, key) = pki.issue("registry", true);
    let (client_cert, client_key) = pki.issue("client", false);
    let reg = DockerRegistry::start_with(&RegistryOptions {
        tls: Some((&cert, &key)),
        client_ca: Some(&pki.ca()),
        ..RegistryOptions::default()
    });
    let layout = image(tmp.path());
    let reference = format!("{}/team/app:1", reg.host());

    // The CA alone: the registry ends the handshake.
    let certs = tmp.path().join("certs");
    let host_dir = certs.join(reg.host());
    fs::create_dir_all(&host_dir).unwrap();
    fs::copy(pki.ca(), host_dir.join("ca.crt")).unwrap();
    let r = push(&layout, &reference, |c| {
        c.arg("--cert-dir").arg(&certs);
    });
    r.expect_fail();
    assert!(
        r.stderr.contains(&reg.host()) && r.stderr.contains("client certificate"),
        "{}",
        r.stderr
    );

    // With client.cert + client.key beside it.
    fs::copy(&client_cert, host_dir.join("client.cert")).unwrap();
    fs::copy(&client_key, host_dir.join("client.key")).unwrap();
    let r = push(&layout, &reference, |c| {
        c.arg("--cert-dir").arg(&certs);
    });
    r.expect_ok();

    // A key without its certificate is named.
    fs::remove_file(host_dir.join("client.cert")).unwrap();
    let r = push(&layout, &reference, |c| {
        c.arg("--cert-dir").arg(&certs);
    });
    r.expect_fail();
    assert!(r.stderr.contains("client.key"), "{}", r.stderr);
}

/// A forward proxy on 127.0.0.1: CONNECT tunnels (https), and
/// absolute-form requests (plain http) forwarded one per connection. It
/// records each request line and whether any carried credentials.
struct Proxy {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = shared.clone();
                std::thread::spawn(move || {
                    let _ = proxy_one(conn, &log);
                });
            }
        });
        Proxy { url, log }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn proxy_one(client: TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        headers.push(h);
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let credentials = headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("authorization:"));
    log.lock().unwrap().push(format!(
        "{method} {target}{}",
        if credentials { " WITH-CREDENTIALS" } else { "" }
    ));
    let mut client_w = client.try_clone()?;
    if method == "CONNECT" {
        let upstream = TcpStream::connect(&target)?;
        client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        let (mut up_r, mut up_w) = (upstream.try_clone()?, upstream);
        let t = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_r, &mut client_w);
            let _ = client_w.shutdown(Shutdown::Both);
        });
        let _ = std::io::copy(&mut reader, &mut up_w);
        let _ = up_w.shutdown(Shutdown::Write);
        let _ = t.join();
        return Ok(());
    }
    let rest = target.strip_prefix("http://").unwrap_or(&target);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut upstream = TcpStream::connect(authority)?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\n",
        if path.is_empty() { "/" } else { path }
    );
    let mut length = 0usize;
    for h in &headers {
        let lower = h.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("proxy-") {
            continue;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(h);
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    upstream.write_all(&body)?;
    std::io::copy(&mut upstream, &mut client_w)?;
    client_w.shutdown(Shutdown::Both)
}

const APT_RECIPE: &str = r#"
[image]
name = "proxied"
epoch = 1700000000
platforms = ["linux/amd64"]

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["hello"]
"#;

#[test]
fn apt_and_registry_requests_go_through_the_proxy_unless_no_proxy_names_the_host() {
    if !have_tools() {
        return;
    }
    let tmp = tempdir();
    let proxy = Proxy::start();

    // apt: a signed repository on 127.0.0.1, reached through HTTP_PROXY.
    let repo = AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb(
            "stable",
            Deb::new("hello", "1.0", "amd64")
                .entry(DebEntry::dir("bin"))
                .entry(DebEntry::exec("bin/hello", "#!/bin/sh\necho hello\n")),
        )
        .build();
    let (mirror, _server) = repo.serve();
    let project = tmp.path().join("project");
    fs::create_dir_all(&project).unwrap();
    fs::copy(repo.keyring_path(), project.join("keyring.gpg")).unwrap();
    fs::write(project.join("recipe.toml"), APT_RECIPE).unwrap();
    let build = |cache: &str, no_proxy: Option<&str>| {
        let mut cmd = stele();
        cmd.arg("build")
            .arg(project.join("recipe.toml"))
            .args(["--attest", "none", "-o"])
            .arg(tmp.path().join(format!("out-{cache}")))
            .arg("--cache-dir")
            .arg(tmp.path().join(cache))
            .env("STELE_MIRROR_LOCAL", &mirror)
            .env("HTTP_PROXY", &proxy.url);
        if let Some(n) = no_proxy {
            cmd.env("NO_PROXY", n);
        }
        run(&mut cmd)
    };
    build("cache1", None).expect_ok();
    let apt_requests: Vec<String> = proxy
        .log()
        .into_iter()
        .filter(|l| l.starts_with(&format!("GET {mirror}/")))
        .collect();
    assert!(
        apt_requests
            .iter()
            .any(|l| l.ends_with("/dists/stable/InRelease"))
            && apt_requests.iter().any(|l| l.contains(".deb")),
        "{:?}",
        proxy.log()
    );
    let before = proxy.log().len();
    build("cache2", Some("127.0.0.1")).expect_ok();
    assert_eq!(proxy.log().len(), before, "NO_PROXY: {:?}", proxy.log());

    // The registry client: a TLS registry through HTTPS_PROXY (CONNECT).
    let pki = Pki::new(&tmp.path().join("pki"));
    let (cert, key) = pki.issue("registry", true);
    let reg = DockerRegistry::start_with(&RegistryOptions {
        tls: Some((&cert, &key)),
        ..RegistryOptions::default()
    });
    let layout = image(tmp.path());
    let reference = format!("{}/team/app:1", reg.host());
    let r = push(&layout, &reference, |c| {
        c.env("SSL_CERT_FILE", pki.ca())
            .env("HTTPS_PROXY", &proxy.url)
            .env("HTTP_PROXY", &proxy.url);
    });
    r.expect_ok();
    let connects = proxy
        .log()
        .iter()
        .filter(|l| **l == format!("CONNECT {}", reg.host()))
        .count();
    assert!(connects >= 1, "{:?}", proxy.log());
    assert!(
        !proxy.log().iter().any(|l| l.contains("WITH-CREDENTIALS")),
        "{:?}",
        proxy.log()
    );
    let before = proxy.log().len();
    let r = push(&layout, &format!("{}/team/app:2", reg.host()), |c| {
        c.env("SSL_CERT_FILE", pki.ca())
            .env("HTTPS_PROXY", &proxy.url)
            .env("HTTP_PROXY", &proxy.url)
            .env("no_proxy", format!("localhost,{}", reg.host()));
    });
    r.expect_ok();
    assert_eq!(proxy.log().len(), before, "NO_PROXY: {:?}", proxy.log());
}

#[test]
fn a_credential_helper_named_in_docker_config_answers_for_the_registry() {
    if !have_registry() || !have_tool("perl") {
        return;
    }
    let tmp = tempdir();
    let Some(htpasswd) = htpasswd_alice(tmp.path()) else {
        return;
    };
    let reg = DockerRegistry::start(Some(&htpasswd));
    let layout = image(tmp.path());
    let reference = format!("{}/private/app:1", reg.host());

    // docker-credential-test: answers alice for the registry's host and
    // "credentials not found" for anything else; records what it was asked.
    let bin = tmp.path().join("bin");
    let asked = tmp.path().join("asked");
    write_file(
        &bin.join("docker-credential-test"),
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r host\necho \"$host\" >> {asked}\nif [ \"$host\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}' \"$host\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
            asked = asked.display(),
            host = reg.host()
        ),
        0o755,
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let docker_config = tmp.path().join("docker");
    fs::create_dir_all(&docker_config).unwrap();
    let with_config = |config: String| {
        fs::write(docker_config.join("config.json"), config).unwrap();
    };

    // credHelpers for this host.
    with_config(format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, reg.host()));
    let r = push(&layout, &reference, |c| {
        c.env("PATH", &path).env("DOCKER_CONFIG", &docker_config);
    });
    r.expect_ok();
    assert_eq!(fs::read_to_string(&asked).unwrap().trim(), reg.host());

    // credsStore, with docker's empty auths entry beside it.
    with_config(format!(
        r#"{{"auths":{{"{}":{{}}}},"credsStore":"test"}}"#,
        reg.host()
    ));
    let r = push(&layout, &format!("{}/private/app:2", reg.host()), |c| {
        c.env("PATH", &path).env("DOCKER_CONFIG", &docker_config);
    });
    r.expect_ok();

    // A helper that has nothing for the host: no credentials, and the
    // message says helpers were asked.
    with_config(r#"{"credsStore":"test"}"#.to_string());
    let other = format!("localhost:{}/private/app:3", reg.port());
    let r = push(&layout, &other, |c| {
        c.env("PATH", &path).env("DOCKER_CONFIG", &docker_config);
    });
    r.expect_fail();
    assert!(r.stderr.contains("credential helpers"), "{}", r.stderr);

    // A helper that is not installed is named.
    with_config(format!(
        r#"{{"credHelpers":{{"{}":"absent"}}}}"#,
        reg.host()
    ));
    let r = push(&layout, &reference, |c| {
        c.env("PATH", &path).env("DOCKER_CONFIG", &docker_config);
    });
    r.expect_fail();
    assert!(
        r.stderr.contains("docker-credential-absent") && r.stderr.contains("not on PATH"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_stalled_or_broken_download_goes_on_from_its_offset_where_ranges_are_served() {
    use crate::support::http::HttpServer;
    use stele::apt::fetch::Fetcher;
    use stele::oci::Digest;
    use stele::store::BlobStore;
    use stele::transport::{NetworkSettings, Transport};

    let dir = tempdir();
    let bytes = crate::support::bytes::noise(300_000, 10);
    fs::write(dir.path().join("blob"), &bytes).unwrap();
    let digest: Digest = sha256_digest(&bytes).parse().unwrap();
    let transport = Transport::new(NetworkSettings {
        idle_timeout: Duration::from_secs(1),
        retries: 2,
        backoff: Duration::from_millis(1),
        ..NetworkSettings::default()
    });
    let fetcher =
        |cache: &Path| Fetcher::new(BlobStore::open(cache).unwrap(), false, transport.clone());

    // Stalls past the idle timeout: abandoned, then the rest by Range.
    let (url, server) = HttpServer::serve(dir.path());
    server.accept_ranges();
    server.fail_first("/blob", 1, Fault::Stall);
    let cache = tempdir();
    let started = Instant::now();
    let path = fetcher(cache.path())
        .fetch_verified(&format!("{url}/blob"), &digest, bytes.len() as u64)
        .unwrap();
    assert_eq!(fs::read(path).unwrap(), bytes);
    assert_eq!(server.hits("/blob"), 2);
    assert_eq!(server.range_requests("/blob"), vec![bytes.len() as u64 / 2]);
    // Abandoned at the 1-second idle timeout, not when the server hangs up.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // Broken off, and the server serves no ranges: started over.
    let (url, server) = HttpServer::serve(dir.path());
    server.fail_first("/blob", 1, Fault::Truncate);
    let cache = tempdir();
    fetcher(cache.path())
        .fetch_verified(&format!("{url}/blob"), &digest, bytes.len() as u64)
        .unwrap();
    assert_eq!(server.hits("/blob"), 2);
    assert!(server.range_requests("/blob").is_empty());

    // Broken off every time: the operation's budget (3 attempts, resumes
    // included) bounds the requests.
    let (url, server) = HttpServer::serve(dir.path());
    server.accept_ranges();
    server.fail_first("/blob", 100, Fault::Truncate);
    let cache = tempdir();
    let e = fetcher(cache.path())
        .fetch_verified(&format!("{url}/blob"), &digest, bytes.len() as u64)
        .unwrap_err();
    assert!(e.to_string().contains("gave up after 3 attempt(s)"), "{e}");
    assert_eq!(server.hits("/blob"), 3);
}

#[test]
fn an_identity_token_is_exchanged_at_the_token_service_and_never_sent_as_a_password() {
    use crate::support::registry::{Auth, FakeRegistry};

    let tmp = tempdir();
    let reg = FakeRegistry::start(Auth::Bearer {
        user: "alice".into(),
        password: "refresh-secret".into(),
    });
    let layout = image(tmp.path());
    let docker_config = tmp.path().join("docker");
    fs::create_dir_all(&docker_config).unwrap();
    fs::write(
        docker_config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"refresh-secret"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let r = push(&layout, &format!("{}/team/app:1", reg.host()), |c| {
        c.env("DOCKER_CONFIG", &docker_config);
    });
    r.expect_ok();
    let log = reg.log();
    let token_requests: Vec<_> = log.iter().filter(|l| l.path == "/token").collect();
    assert!(!token_requests.is_empty(), "{log:?}");
    assert!(
        token_requests
            .iter()
            .all(|l| l.method == "POST" && l.authorization.is_none()),
        "{token_requests:?}"
    );
    assert!(
        log.iter()
            .filter_map(|l| l.authorization.as_deref())
            .all(|a| a.starts_with("Bearer token-")),
        "{log:?}"
    );
}

/// `openssl s_server -WWW`: the files below a folder over HTTPS, one
/// connection at a time. Killed on drop.
struct TlsFileServer(std::process::Child);

impl TlsFileServer {
    fn start(root: &Path, cert: &Path, key: &Path) -> (String, TlsFileServer) {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .current_dir(root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        (format!("https://127.0.0.1:{port}"), TlsFileServer(child))
    }
}

impl Drop for TlsFileServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_apt_mirror_over_https_with_a_private_ca_goes_through_the_same_transport() {
    if !have_tool("openssl") {
        return;
    }
    let tmp = tempdir();
    let pki = Pki::new(&tmp.path().join("pki"));
    let (cert, key) = pki.issue("mirror", true);
    let repo = AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb(
            "stable",
            Deb::new("hello", "1.0", "amd64")
                .entry(DebEntry::dir("bin"))
                .entry(DebEntry::exec("bin/hello", "#!/bin/sh\necho hello\n")),
        )
        .build();
    let (mirror, _server) = TlsFileServer::start(repo.root(), &cert, &key);
    let project = tmp.path().join("project");
    fs::create_dir_all(&project).unwrap();
    fs::copy(repo.keyring_path(), project.join("keyring.gpg")).unwrap();
    fs::write(project.join("recipe.toml"), APT_RECIPE).unwrap();
    let lock = |trust: Option<&Path>| {
        let mut cmd = stele();
        cmd.arg("lock")
            .arg(project.join("recipe.toml"))
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .env("STELE_MIRROR_LOCAL", &mirror);
        if let Some(ca) = trust {
            cmd.env("SSL_CERT_FILE", ca);
        }
        run(&mut cmd)
    };

    let started = Instant::now();
    let r = lock(None);
    r.expect_fail();
    let host = mirror.trim_start_matches("https://");
    assert!(
        r.stderr.contains(host)
            && r.stderr.contains("UnknownIssuer")
            && r.stderr.contains("SSL_CERT_FILE"),
        "{}",
        r.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    lock(Some(&pki.ca())).expect_ok();
    let text = fs::read_to_string(project.join("recipe.lock")).unwrap();
    assert!(text.contains("hello"), "{text}");
}
