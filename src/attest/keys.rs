//! Signing keys for attestations: ed25519, stored as PEM so other tools
//! (openssl, cosign's `import-key-pair`, securesystemslib) read them as they
//! are. The private key is PKCS#8, the public key SubjectPublicKeyInfo.
//!
//! A key's id is the lowercase hex sha256 of its public key's SPKI DER
//! encoding. It goes into every DSSE signature's `keyid`, so a verifier
//! holding several public keys picks the right one, and an error can name
//! the key a signature was (or was not) made with.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};

use crate::oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not an ed25519 {expected} PEM file ({message}); make one with `stele key generate`")]
    Parse {
        path: PathBuf,
        expected: &'static str,
        message: String,
    },
    #[error("refusing to overwrite {path}: it exists; remove it or choose another key path")]
    Exists { path: PathBuf },
    #[error("cannot write key {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// An ed25519 private key and the id of its public half.
pub struct PrivateKey {
    signing: SigningKey,
    public: PublicKey,
}

/// An ed25519 public key and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    verifying: VerifyingKey,
    keyid: String,
}

impl std::fmt::Debug for PrivateKey {
    // Never print secret material, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("keyid", &self.public.keyid)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A fresh key from `rng`; the CLI passes the operating system's
    /// generator, tests a seeded one.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> PrivateKey {
        PrivateKey::from_signing(SigningKey::generate(rng))
    }

    /// The key whose 32-byte seed is `seed` (RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> PrivateKey {
        PrivateKey::from_signing(SigningKey::from_bytes(seed))
    }

    fn from_signing(signing: SigningKey) -> PrivateKey {
        let public = PublicKey::from_verifying(signing.verifying_key());
        PrivateKey { signing, public }
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn keyid(&self) -> &str {
        &self.public.keyid
    }

    /// The ed25519 signature of `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// PKCS#8 v1 PEM text (RFC 8410: the seed only). Holds the secret:
    /// write it only with `write_pair`. Not the v2 form with the public key
    /// that ed25519-dalek writes by default: OpenSSL 3 and Python's
    /// `cryptography` refuse to load that one.
    fn to_pem(&self) -> String {
        KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an ed25519 key always encodes")
        .to_string()
    }

    pub(crate) fn from_pem(text: &str, path: &Path) -> Result<PrivateKey, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(text).map_err(|e| KeyError::Parse {
            path: path.to_path_buf(),
            expected: "private key (PKCS#8)",
            message: e.to_string(),
        })?;
        Ok(PrivateKey::from_signing(signing))
    }

    pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
        PrivateKey::from_pem(&read(path)?, path)
    }

    /// Writes the private key to `private_path`, created with mode 0600 so
    /// it is never readable by others, not even for an instant, and the
    /// public key to `public_path` (mode 0644). Existing files are never
    /// replaced: losing a signing key is not undoable.
    pub fn write_pair(&self, private_path: &Path, public_path: &Path) -> Result<(), KeyError> {
        for p in [private_path, public_path] {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(KeyError::Exists {
                    path: p.to_path_buf(),
                });
            }
        }
        write_new(private_path, self.to_pem().as_bytes(), 0o600)?;
        write_new(public_path, self.public.to_pem().as_bytes(), 0o644)
    }
}

impl PublicKey {
    fn from_verifying(verifying: VerifyingKey) -> PublicKey {
        let der = verifying
            .to_public_key_der()
            .expect("an ed25519 key always encodes");
        let keyid = Digest::of(der.as_bytes()).hex().to_string();
        PublicKey { verifying, keyid }
    }

    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    pub fn to_pem(&self) -> String {
        self.verifying
            .to_public_key_pem(LineEnding::LF)
            .expect("an ed25519 key always encodes")
    }

    pub(crate) fn from_pem(text: &str, path: &Path) -> Result<PublicKey, KeyError> {
        let verifying = VerifyingKey::from_public_key_pem(text).map_err(|e| KeyError::Parse {
            path: path.to_path_buf(),
            expected: "public key (SubjectPublicKeyInfo)",
            message: e.to_string(),
        })?;
        Ok(PublicKey::from_verifying(verifying))
    }

    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        PublicKey::from_pem(&read(path)?, path)
    }

    /// Whether `signature` is this key's ed25519 signature of `message`.
    /// Strict verification: refuses the malleable and small-order forms
    /// RFC 8032 permits lax verifiers to accept.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match ed25519_dalek::Signature::from_slice(signature) {
            Ok(sig) => self.verifying.verify_strict(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// Where the public key goes when only the private key's path is given:
/// beside it, with the extension `pub` (`stele.key` → `stele.pub`).
pub(crate) fn public_path_for(private: &Path) -> PathBuf {
    private.with_extension("pub")
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|e| KeyError::Read {
        path: path.to_path_buf(),
        error: e,
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let err = |e: std::io::Error| KeyError::Write {
        path: path.to_path_buf(),
        error: e,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                err(e)
            }
        })?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pair_round_trips_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        let key = PrivateKey::from_seed(&[7; 32]);
        key.write_pair(&sk, &pk).unwrap();
        let mode = std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = PrivateKey::load(&sk).unwrap();
        let public = PublicKey::load(&pk).unwrap();
        assert_eq!(back.keyid(), key.keyid());
        assert_eq!(public.keyid(), key.keyid());
        assert_eq!(key.keyid().len(), 64);
        let sig = back.sign(b"m");
        assert!(public.verifies(b"m", &sig));
        assert!(!public.verifies(b"n", &sig));
        assert!(!public.verifies(b"m", &sig[..63]));

        let e = key.write_pair(&sk, &dir.path().join("other.pub"));
        assert!(matches!(e, Err(KeyError::Exists { path }) if path == sk));
    }

    #[test]
    fn keyid_is_sha256_of_spki_der() {
        let key = PrivateKey::from_seed(&[1; 32]);
        let pem = key.public().to_pem();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        // 12-byte SPKI prefix for ed25519 (RFC 8410) then the 32-byte key.
        assert_eq!(der.len(), 44);
        assert_eq!(key.keyid(), Digest::of(&der).hex());
    }

    #[test]
    fn private_key_is_the_rfc8410_v1_form() {
        let pem = PrivateKey::from_seed(&[7; 32]).to_pem();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        // RFC 8410 section 10.3: version 0, the OID, the 32-byte seed.
        assert_eq!(der.len(), 48);
        assert_eq!(
            &der[..16],
            hex::decode("302e020100300506032b657004220420").unwrap()
        );
        assert_eq!(&der[16..], &[7; 32]);
    }

    #[test]
    fn wrong_kind_of_file_is_named() {
        let key = PrivateKey::from_seed(&[2; 32]);
        let e = PublicKey::from_pem(&key.to_pem(), Path::new("x.key")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("x.key") && msg.contains("public key"), "{msg}");
    }
}
