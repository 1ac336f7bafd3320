//! A real registry for tests: distribution's `docker-registry serve` on a
//! free 127.0.0.1 port, with filesystem storage in a temp folder, and
//! optionally htpasswd auth, TLS, and client-certificate auth. Killed on
//! drop; its log is kept for assertions.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{have_tool, skip, tempdir};

/// How the registry is set up.
#[derive(Default)]
pub struct RegistryOptions<'a> {
    /// Wants basic credentials from this htpasswd file.
    pub htpasswd: Option<&'a Path>,
    /// Serves TLS with this certificate and key (PEM).
    pub tls: Option<(&'a Path, &'a Path)>,
    /// With TLS: requires a client certificate signed by this CA.
    pub client_ca: Option<&'a Path>,
    /// Listens on this loopback address instead of 127.0.0.1 (e.g.
    /// 127.0.0.2: a host stele does not take for loopback, so plain HTTP
    /// to it must be asked for).
    pub ip: Option<&'a str>,
    /// Refuses deletes (405), as docker-registry does unless its storage
    /// says `delete: enabled: true`.
    pub no_delete: bool,
}

/// A `docker-registry serve` process, killed on drop.
pub struct DockerRegistry {
    child: Child,
    ip: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl DockerRegistry {
    /// Starts a plain-HTTP registry; with `htpasswd`, it wants basic
    /// credentials.
    pub fn start(htpasswd: Option<&Path>) -> DockerRegistry {
        DockerRegistry::start_with(&RegistryOptions {
            htpasswd,
            ..RegistryOptions::default()
        })
    }

    pub fn start_with(options: &RegistryOptions) -> DockerRegistry {
        let dir = tempdir();
        let ip = options.ip.unwrap_or("127.0.0.1").to_string();
        let port = TcpListener::bind((ip.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let auth = options.htpasswd.map_or(String::new(), |p| {
            format!(
                "auth:\n  htpasswd:\n    realm: stele-test\n    path: {}\n",
                p.display()
            )
        });
        let tls = options.tls.map_or(String::new(), |(cert, key)| {
            let client = options.client_ca.map_or(String::new(), |ca| {
                format!("    clientcas:\n      - {}\n", ca.display())
            });
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n{client}",
                cert.display(),
                key.display()
            )
        });
        let config = format!(
            // Deleting manifests is off by default; a test deletes
            // attestations to see verify notice. Info-level logging
            // records TLS handshake errors, which tests count.
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {}\nhttp:\n  addr: {ip}:{port}\n{tls}{auth}",
            dir.path().join("data").display(),
            !options.no_delete
        );
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let mut reg = DockerRegistry {
            child,
            ip: ip.clone(),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // A TLS registry is up when it accepts connections; a plain
            // one when it answers /v2/.
            let up = if options.tls.is_some() {
                TcpStream::connect((ip.as_str(), port)).is_ok()
            } else {
                match ureq::get(&format!("http://{ip}:{port}/v2/")).call() {
                    Ok(_) | Err(ureq::Error::Status(401, _)) => true,
                    Err(_) => false,
                }
            };
            if up {
                break;
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", reg.log());
            }
            if Instant::now() > deadline {
                panic!("docker-registry did not come up: {}", reg.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's folder: its config, log and `data/` storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The manifest (or index) skopeo reads back for `reference`
/// (`HOST/REPO:TAG`) from a plain-HTTP registry: a second reader of what
/// stele pushed.
pub fn skopeo_raw(reference: &str) -> Vec<u8> {
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    raw.stdout
}

pub fn have_registry() -> bool {
    have_tool("docker-registry")
}

/// An htpasswd file for `alice:s3cret`, bcrypt-hashed through the C
/// library's crypt(3) (libxcrypt), as `htpasswd -B` does; `None` (a skip)
/// where crypt(3) cannot make bcrypt and CI is not asking.
pub fn htpasswd_alice(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("perl")
        .args([
            "-e",
            r#"print crypt("s3cret", '$2y$05$abcdefghijklmnopqrstuu')"#,
        ])
        .output()
        .unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    if !hash.starts_with("$2y$") {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("perl's crypt() cannot make a bcrypt hash: {hash}");
        }
        skip("perl's crypt() cannot make a bcrypt hash here");
        return None;
    }
    let htpasswd = dir.join("htpasswd");
    fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    Some(htpasswd)
}
