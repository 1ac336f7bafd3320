//! A private CA for tests, made with openssl: a CA certificate and the
//! server (for 127.0.0.1) and client certificates it issues.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `openssl req` making a new P-256 key, unencrypted, into the file
/// that follows.
const NEW_EC_KEY: [&str; 7] = [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
];

/// A CA made for one test, and the certificates it issues.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        fs::create_dir_all(dir).unwrap();
        let mut args = NEW_EC_KEY.to_vec();
        args.push("ca.key");
        args.extend([
            "-x509",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=stele test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &args);
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// `NAME.crt` and `NAME.key`, signed by the CA: a server certificate
    /// for 127.0.0.1, or a client certificate.
    pub fn issue(&self, name: &str, server: bool) -> (PathBuf, PathBuf) {
        let usage = if server {
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        } else {
            "extendedKeyUsage=clientAuth\n"
        };
        fs::write(
            self.dir.join(format!("{name}.ext")),
            format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{usage}"),
        )
        .unwrap();
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        let subject = format!("/CN={name}");
        let mut args = NEW_EC_KEY.to_vec();
        args.extend([key.as_str(), "-out", &csr, "-subj", &subject]);
        openssl(&self.dir, &args);
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        (self.dir.join(crt), self.dir.join(key))
    }
}

#[track_caller]
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
