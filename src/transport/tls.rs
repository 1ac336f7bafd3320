//! TLS the way podman and skopeo users set it up: the system's CA bundle
//! plus `SSL_CERT_FILE`/`SSL_CERT_DIR` (the CLI finds these and hands in
//! paths), and per-host folders in the certs.d layout
//! (`ROOT/HOST[:PORT]/*.crt` are CAs, `*.cert` + `*.key` a client
//! certificate), searched in the order given; per registry, whether its
//! certificate is checked and a folder of its own (skopeo's
//! `--src-cert-dir`/`--dest-cert-dir`, registries.conf's `insecure`).
//!
//! Certificate files are untrusted input like any other: only regular
//! files are read (a FIFO or a device is refused before a byte is read),
//! at most [`CERT_FILE_LIMIT`] bytes, and a link found in a folder is
//! followed only to a file inside that folder. A file the user names
//! itself (`SSL_CERT_FILE`, the system bundle) may be a link.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::TransportError;

/// Where trust comes from. Paths only: nothing is read until a transport
/// is made.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// PEM bundles of CAs trusted for every host. A listed file that does
    /// not exist is skipped when `optional_ca_files` holds it (the system
    /// bundle may be absent); any other unreadable one is an error.
    pub ca_files: Vec<PathBuf>,
    /// The subset of `ca_files` whose absence is fine.
    pub optional_ca_files: Vec<PathBuf>,
    /// Folders whose PEM files are all trusted CAs (`SSL_CERT_DIR`).
    pub ca_dirs: Vec<PathBuf>,
    /// certs.d roots, searched in order for `HOST[:PORT]/`; the first
    /// root may also hold files directly (podman's `--cert-dir`), see
    /// `direct_cert_dir`.
    pub certs_d: Vec<PathBuf>,
    /// A folder whose own `*.crt`, `*.cert` and `*.key` apply to every
    /// host (podman's `--cert-dir DIR` with the files in DIR).
    pub direct_cert_dir: Option<PathBuf>,
    /// Check server certificates. Off only on the user's explicit word.
    pub verify: bool,
    /// Per registry, as references name it (`host:port`, or `host` for
    /// port 443): what differs from the rest.
    pub hosts: BTreeMap<String, HostTls>,
}

/// What one registry's TLS does differently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTls {
    /// Check its certificate (`None`: as for every host).
    pub verify: Option<bool>,
    /// A folder of its own, searched first, as `--cert-dir` is: its own
    /// `*.crt`, `*.cert` + `*.key`, and `HOST[:PORT]/` below it.
    pub cert_dir: Option<PathBuf>,
}

/// The most a certificate, bundle or key file may be: a distribution's
/// whole CA bundle is a few hundred kB.
pub const CERT_FILE_LIMIT: u64 = 8 << 20;

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca_files: Vec::new(),
            optional_ca_files: Vec::new(),
            ca_dirs: Vec::new(),
            certs_d: Vec::new(),
            direct_cert_dir: None,
            verify: true,
            hosts: BTreeMap::new(),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn cert_file_error(path: &Path, message: impl Into<String>) -> TransportError {
    TransportError::CertFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Why a file in a folder is not read.
enum Unread {
    /// A link that leads out of the folder, or not to a regular file:
    /// skipped in a CA folder (`SSL_CERT_DIR`), refused in certs.d.
    Refused(String),
    Failed(TransportError),
}

/// The bytes of `path` as untrusted input. With `within`, `path` was
/// found in that folder: a link is followed only to a file inside it.
fn read_file(path: &Path, within: Option<&Path>) -> Result<Vec<u8>, Unread> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |m: String| Unread::Failed(cert_file_error(path, m));
    let mut target = path.to_path_buf();
    if let Some(root) = within {
        let meta = std::fs::symlink_metadata(path).map_err(|e| fail(e.to_string()))?;
        if meta.file_type().is_symlink() {
            let resolved = std::fs::canonicalize(path).map_err(|e| fail(e.to_string()))?;
            let root = std::fs::canonicalize(root).map_err(|e| fail(e.to_string()))?;
            if !resolved.starts_with(&root) {
                return Err(Unread::Refused(format!(
                    "it is a link out of {} (to {}); copy the file into the folder",
                    root.display(),
                    resolved.display()
                )));
            }
            target = resolved;
        }
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat
    // below refuses it before any read. Inside a folder, the last step is
    // not followed (a link was resolved above, within the folder).
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if within.is_some() {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&target)
        .map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(Unread::Refused(format!(
            "it is not a regular file ({})",
            if meta.file_type().is_dir() {
                "a folder"
            } else {
                "a device, FIFO or socket"
            }
        )));
    }
    if meta.len() > CERT_FILE_LIMIT {
        return Err(fail(format!(
            "{} bytes is beyond the {CERT_FILE_LIMIT}-byte limit for a certificate file",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(CERT_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > CERT_FILE_LIMIT {
        return Err(fail(format!(
            "it grew beyond the {CERT_FILE_LIMIT}-byte limit for a certificate file while it was read"
        )));
    }
    Ok(bytes)
}

/// `read_file`, where a refusal is an error too.
fn read_strict(path: &Path, within: Option<&Path>) -> Result<Vec<u8>, TransportError> {
    read_file(path, within).map_err(|u| match u {
        Unread::Refused(m) => cert_file_error(path, m),
        Unread::Failed(e) => e,
    })
}

fn parse_certs(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_file_error(path, format!("not PEM certificates: {e}")))
}

fn read_certs(
    path: &Path,
    within: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    parse_certs(path, &read_strict(path, within)?)
}

/// The CAs every host is checked against, loaded once per transport.
pub(super) fn base_roots(settings: &TlsSettings) -> Result<RootCertStore, TransportError> {
    let mut roots = RootCertStore::empty();
    for file in &settings.ca_files {
        if !file.exists() && settings.optional_ca_files.contains(file) {
            continue;
        }
        // A system bundle may hold a certificate webpki cannot use; that
        // one is skipped, the rest still count.
        roots.add_parsable_certificates(read_certs(file, None)?);
    }
    for dir in &settings.ca_dirs {
        for p in listed(dir)? {
            // Hash links into other folders, and non-PEM files, live here
            // too; only PEM files of the folder count.
            match read_file(&p, Some(dir)) {
                Ok(bytes) => {
                    if let Ok(certs) = parse_certs(&p, &bytes) {
                        roots.add_parsable_certificates(certs);
                    }
                }
                Err(Unread::Refused(_)) => {}
                Err(Unread::Failed(e)) => return Err(e),
            }
        }
    }
    Ok(roots)
}

/// The entries of `dir`, sorted; a folder that is not there has none.
fn listed(dir: &Path) -> Result<Vec<PathBuf>, TransportError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(cert_file_error(dir, e.to_string())),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

/// What one certs.d-style folder says about a host: each file with the
/// folder it was found in (what a link may not lead out of).
#[derive(Default)]
struct HostFiles {
    cas: Vec<(PathBuf, PathBuf)>,
    client: Option<(PathBuf, PathBuf, PathBuf)>,
}

/// The files of `dir` (found under `root`, which links may not leave).
fn scan(dir: &Path, root: &Path, into: &mut HostFiles) -> Result<(), TransportError> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        let resolved =
            std::fs::canonicalize(dir).map_err(|e| cert_file_error(dir, e.to_string()))?;
        let root_c =
            std::fs::canonicalize(root).map_err(|e| cert_file_error(root, e.to_string()))?;
        if !resolved.starts_with(&root_c) {
            return Err(cert_file_error(
                dir,
                format!(
                    "it is a link out of {} (to {}); make it a folder",
                    root_c.display(),
                    resolved.display()
                ),
            ));
        }
    }
    let paths = match std::fs::read_dir(dir) {
        Ok(_) => listed(dir)?,
        Err(_) => return Ok(()),
    };
    for p in &paths {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => into.cas.push((p.clone(), root.to_path_buf())),
            Some("cert") if into.client.is_none() => {
                let key = p.with_extension("key");
                if std::fs::symlink_metadata(&key).is_err() {
                    return Err(cert_file_error(
                        p,
                        format!(
                            "a client certificate needs its key beside it as {}",
                            key.display()
                        ),
                    ));
                }
                into.client = Some((p.clone(), key, root.to_path_buf()));
            }
            Some("key") if std::fs::symlink_metadata(p.with_extension("cert")).is_err() => {
                return Err(cert_file_error(
                    p,
                    format!(
                        "a client key needs its certificate beside it as {}",
                        p.with_extension("cert").display()
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The certs.d folders of `host` (lower case, no brackets) on `port`,
/// named as references write the registry: `host:port`, and for port 443
/// `host` first (or `host:443`).
fn folders(host: &str, port: u16) -> Vec<String> {
    let named = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let mut folders = vec![format!("{named}:{port}")];
    if port == 443 {
        folders.insert(0, named);
    }
    folders
}

/// The client configuration for `host` on `port`: the base roots plus the
/// CAs in its certs.d folders, and its client certificate (the first pair
/// found). Whatever is decided per host (trust, client certificate, and
/// whether to check at all) is decided here.
pub(super) fn client_config(
    settings: &TlsSettings,
    base: &RootCertStore,
    host: &str,
    port: u16,
) -> Result<Arc<ClientConfig>, TransportError> {
    let folders = folders(host, port);
    let own = folders.iter().find_map(|f| settings.hosts.get(f));
    let mut files = HostFiles::default();
    if let Some(d) = own.and_then(|h| h.cert_dir.as_ref()) {
        scan(d, d, &mut files)?;
        for folder in &folders {
            scan(&d.join(folder), d, &mut files)?;
        }
    }
    if let Some(d) = &settings.direct_cert_dir {
        scan(d, d, &mut files)?;
    }
    for root in &settings.certs_d {
        for folder in &folders {
            scan(&root.join(folder), root, &mut files)?;
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_file_error(Path::new(&folders[0]), e.to_string()))?;
    let verify = own.and_then(|h| h.verify).unwrap_or(settings.verify);
    let builder = if verify {
        let mut roots = base.clone();
        for (ca, root) in &files.cas {
            let certs = read_certs(ca, Some(root))?;
            if certs.is_empty() {
                return Err(cert_file_error(ca, "holds no PEM certificate"));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| cert_file_error(ca, format!("not a usable CA: {e}")))?;
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    };
    let config = match &files.client {
        None => builder.with_no_client_auth(),
        Some((cert, key, root)) => {
            let chain = read_certs(cert, Some(root))?;
            let key_bytes = read_strict(key, Some(root))?;
            let key = PrivateKeyDer::from_pem_slice(&key_bytes)
                .map_err(|e| cert_file_error(key, format!("not a PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| cert_file_error(cert, e.to_string()))?
        }
    };
    Ok(Arc::new(config))
}

/// `--tls-verify=false`: any certificate is accepted, signatures are
/// still checked so the handshake itself stays sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_for(dir: &Path) -> Result<Arc<ClientConfig>, TransportError> {
        let settings = TlsSettings {
            direct_cert_dir: Some(dir.to_path_buf()),
            certs_d: vec![dir.to_path_buf()],
            ..TlsSettings::default()
        };
        client_config(&settings, &RootCertStore::empty(), "127.0.0.1", 5000)
    }

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn certificate_files_are_read_as_untrusted_input() {
        let started = std::time::Instant::now();
        // A link to /dev/zero, in the folder itself and in a host folder.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("ca.crt")).unwrap();
        let e = config_for(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ca.crt") && e.contains("link out of"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("127.0.0.1:5000");
        std::fs::create_dir(&host).unwrap();
        std::os::unix::fs::symlink("/dev/zero", host.join("client.key")).unwrap();
        std::fs::write(host.join("client.cert"), "").unwrap();
        let e = config_for(dir.path()).unwrap_err().to_string();
        assert!(e.contains("client.key") && e.contains("link out of"), "{e}");
        // A FIFO: refused without waiting for a writer.
        let dir = tempfile::tempdir().unwrap();
        mkfifo(&dir.path().join("ca.crt"));
        let e = config_for(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // Too large.
        let dir = tempfile::tempdir().unwrap();
        let big = std::fs::File::create(dir.path().join("ca.crt")).unwrap();
        big.set_len(CERT_FILE_LIMIT + 1).unwrap();
        let e = config_for(dir.path()).unwrap_err().to_string();
        assert!(e.contains("beyond the"), "{e}");
        // SSL_CERT_DIR (a folder of CAs): what is not a file of its own
        // is skipped, as OpenSSL's hash links into other folders are.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.pem")).unwrap();
        mkfifo(&dir.path().join("fifo.pem"));
        let roots = base_roots(&TlsSettings {
            ca_dirs: vec![dir.path().to_path_buf()],
            ..TlsSettings::default()
        })
        .unwrap();
        assert!(roots.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_link_inside_the_folder_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("127.0.0.1:5000");
        std::fs::create_dir(&host).unwrap();
        // Not a certificate, so reading it is what fails, by name.
        std::fs::write(dir.path().join("shared.pem"), "no PEM here").unwrap();
        std::os::unix::fs::symlink("../shared.pem", host.join("ca.crt")).unwrap();
        let e = config_for(dir.path()).unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn certs_d_folders_are_named_as_references_name_the_host() {
        assert_eq!(folders("r.example", 443), ["r.example", "r.example:443"]);
        assert_eq!(folders("127.0.0.1", 5000), ["127.0.0.1:5000"]);
        assert_eq!(folders("::1", 5000), ["[::1]:5000"]);
    }
}
