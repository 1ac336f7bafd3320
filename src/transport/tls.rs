//! TLS the way podman and skopeo users set it up: the system's CA bundle
//! plus `SSL_CERT_FILE`/`SSL_CERT_DIR` (the CLI finds these and hands in
//! paths), and per-host folders in the certs.d layout
//! (`ROOT/HOST[:PORT]/*.crt` are CAs, `*.cert` + `*.key` a client
//! certificate), searched in the order given.

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
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca_files: Vec::new(),
            optional_ca_files: Vec::new(),
            ca_dirs: Vec::new(),
            certs_d: Vec::new(),
            direct_cert_dir: None,
            verify: true,
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

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let bytes = std::fs::read(path).map_err(|e| cert_file_error(path, e.to_string()))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_file_error(path, format!("not PEM certificates: {e}")))
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
        roots.add_parsable_certificates(read_certs(file)?);
    }
    for dir in &settings.ca_dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| cert_file_error(dir, e.to_string()))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths.into_iter().filter(|p| p.is_file()) {
            // Hash links and non-PEM files live here too; only PEM counts.
            if let Ok(certs) = read_certs(&p) {
                roots.add_parsable_certificates(certs);
            }
        }
    }
    Ok(roots)
}

/// What one certs.d-style folder says about a host.
#[derive(Default)]
struct HostFiles {
    cas: Vec<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
}

fn scan(dir: &Path, into: &mut HostFiles) -> Result<(), TransportError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in &paths {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => into.cas.push(p.clone()),
            Some("cert") if into.client.is_none() => {
                let key = p.with_extension("key");
                if !key.is_file() {
                    return Err(cert_file_error(
                        p,
                        format!(
                            "a client certificate needs its key beside it as {}",
                            key.display()
                        ),
                    ));
                }
                into.client = Some((p.clone(), key));
            }
            Some("key") if !p.with_extension("cert").is_file() => {
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
    let mut files = HostFiles::default();
    if let Some(d) = &settings.direct_cert_dir {
        scan(d, &mut files)?;
    }
    for root in &settings.certs_d {
        for folder in &folders {
            scan(&root.join(folder), &mut files)?;
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_file_error(Path::new(&folders[0]), e.to_string()))?;
    let builder = if settings.verify {
        let mut roots = base.clone();
        for ca in &files.cas {
            let certs = read_certs(ca)?;
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
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
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

    #[test]
    fn certs_d_folders_are_named_as_references_name_the_host() {
        assert_eq!(folders("r.example", 443), ["r.example", "r.example:443"]);
        assert_eq!(folders("127.0.0.1", 5000), ["127.0.0.1:5000"]);
        assert_eq!(folders("::1", 5000), ["[::1]:5000"]);
    }
}
