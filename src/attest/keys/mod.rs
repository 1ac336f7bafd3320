//! Signing keys for attestations and image signatures, in the two kinds
//! the verifiers a deploy side runs all accept: ECDSA P-256 with SHA-256
//! (what `cosign generate-key-pair`, cloud KMS keys and Fulcio use by
//! default) and Ed25519 (pure, RFC 8032). Keys are PEM files other tools
//! read as they are: private keys PKCS#8 (`PRIVATE KEY`), public keys
//! SubjectPublicKeyInfo (`PUBLIC KEY`). Private keys are also read as
//! SEC1 (`EC PRIVATE KEY`, what openssl's `ecparam -genkey` writes) and
//! as cosign writes them, encrypted with a password (`keys::encrypted`).
//!
//! A key has two names, both functions of its public half:
//! - its **key id**, securesystemslib's default: the sha256 of the
//!   canonical JSON of `{"keytype", "scheme", "keyval": {"public"}}`
//!   (`SSlibKey.from_crypto` and `from_pem` compute it). stele writes it
//!   into the `keyid` of the DSSE signatures it stores on their own, so
//!   securesystemslib verifies them with a key loaded the default way;
//!   cosign's own attestation verifier reads envelopes without matching
//!   key ids, so it accepts them too;
//! - its **hint**, sigstore's: base64 of the sha256 of its SPKI DER, the
//!   `verificationMaterial.publicKey.hint` of a Sigstore bundle. The DSSE
//!   signature inside a bundle has an empty key id, as cosign writes it:
//!   sigstore-go skips a signature whose key id is neither empty nor its
//!   own SSH-style fingerprint.

pub mod encrypted;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signer as _, Verifier as _};
use rand::{CryptoRng, RngCore};

use crate::oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not {expected} ({message}); make one with `stele key generate`, or use the key cosign or openssl wrote")]
    Parse {
        path: PathBuf,
        expected: &'static str,
        message: String,
    },
    #[error("{path} is an encrypted private key ({label}); set STELE_KEY_PASSWORD (or COSIGN_PASSWORD, as cosign reads it) to its password")]
    NoPassword { path: PathBuf, label: String },
    #[error("cannot decrypt {path}: {error}")]
    Decrypt {
        path: PathBuf,
        error: encrypted::EncryptedError,
    },
    #[error("refusing to overwrite {path}: it exists; remove it or choose another key path")]
    Exists { path: PathBuf },
    #[error("cannot write key {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("`{input}` is not a key type: use ecdsa-p256 (the default, as cosign's) or ed25519")]
    Algorithm { input: String },
}

/// The kinds of key stele signs with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256, DER-encoded signatures.
    #[default]
    EcdsaP256,
    /// Pure Ed25519 (RFC 8032).
    Ed25519,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Algorithm, KeyError> {
        match s {
            "ecdsa-p256" | "ecdsa" | "p256" => Ok(Algorithm::EcdsaP256),
            "ed25519" => Ok(Algorithm::Ed25519),
            _ => Err(KeyError::Algorithm { input: s.into() }),
        }
    }
}

enum Signing {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Verifying {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

/// A private key and its public half.
pub struct PrivateKey {
    signing: Signing,
    public: PublicKey,
}

/// A public key and its names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    verifying: Verifying,
    /// SubjectPublicKeyInfo, DER.
    spki: Vec<u8>,
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
    pub fn generate<R: RngCore + CryptoRng>(algorithm: Algorithm, rng: &mut R) -> PrivateKey {
        match algorithm {
            Algorithm::Ed25519 => {
                PrivateKey::from_signing(Signing::Ed25519(ed25519_dalek::SigningKey::generate(rng)))
            }
            Algorithm::EcdsaP256 => {
                PrivateKey::from_signing(Signing::EcdsaP256(p256::ecdsa::SigningKey::random(rng)))
            }
        }
    }

    /// The Ed25519 key whose 32-byte seed is `seed` (RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> PrivateKey {
        PrivateKey::from_signing(Signing::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            seed,
        )))
    }

    /// The P-256 key whose scalar is `scalar` (big-endian; 0 and values
    /// past the group order are refused), for tests that need a fixed key.
    pub fn ecdsa_from_scalar(scalar: &[u8; 32]) -> Option<PrivateKey> {
        let key = p256::ecdsa::SigningKey::from_bytes(scalar.into()).ok()?;
        Some(PrivateKey::from_signing(Signing::EcdsaP256(key)))
    }

    fn from_signing(signing: Signing) -> PrivateKey {
        let verifying = match &signing {
            Signing::Ed25519(k) => Verifying::Ed25519(k.verifying_key()),
            Signing::EcdsaP256(k) => Verifying::EcdsaP256(*k.verifying_key()),
        };
        PrivateKey {
            signing,
            public: PublicKey::from_verifying(verifying),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn keyid(&self) -> &str {
        &self.public.keyid
    }

    /// The signature of `message`: Ed25519's 64 bytes, or ECDSA's DER
    /// over SHA-256(`message`). Both are deterministic (RFC 8032, and RFC
    /// 6979 nonces), so the same message and key give the same bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.signing {
            Signing::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            Signing::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }

    /// PKCS#8 v1 DER (for Ed25519 RFC 8410's form with the seed only: not
    /// the v2 form with the public key that ed25519-dalek writes by
    /// default, which OpenSSL 3 and Python's `cryptography` refuse).
    fn to_pkcs8_der(&self) -> Vec<u8> {
        match &self.signing {
            Signing::Ed25519(k) => KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der()
            .expect("an ed25519 key always encodes")
            .as_bytes()
            .to_vec(),
            Signing::EcdsaP256(k) => p256::pkcs8::EncodePrivateKey::to_pkcs8_der(k)
                .expect("a P-256 key always encodes")
                .as_bytes()
                .to_vec(),
        }
    }

    /// The PEM text of the private key: PKCS#8, or with `password`
    /// encrypted the way cosign writes keys (`ENCRYPTED SIGSTORE PRIVATE
    /// KEY`). Holds the secret: write it only with `write_pair`.
    fn to_pem<R: RngCore + CryptoRng>(&self, password: Option<&[u8]>, rng: &mut R) -> String {
        let mut der = self.to_pkcs8_der();
        let (label, body) = match password {
            None => ("PRIVATE KEY", der.clone()),
            Some(p) => (
                encrypted::SIGSTORE_LABEL,
                encrypted::seal(&der, p, encrypted::Strength::Standard, rng),
            ),
        };
        der.fill(0);
        p256::pkcs8::der::pem::encode_string(label, LineEnding::LF, &body)
            .expect("PEM encoding of a short key cannot fail")
    }

    /// Reads a private key from PEM text: PKCS#8 or SEC1, or cosign's
    /// encrypted form (which needs `password`). `path` names the file in
    /// errors.
    pub(crate) fn from_pem(
        text: &str,
        path: &Path,
        password: Option<&[u8]>,
    ) -> Result<PrivateKey, KeyError> {
        let parse = |message: String| KeyError::Parse {
            path: path.to_path_buf(),
            expected: "an ECDSA P-256 or Ed25519 private key in PEM",
            message,
        };
        let (label, der) =
            p256::pkcs8::der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| {
                parse(format!(
                    "{e}; expected one PEM block such as -----BEGIN PRIVATE KEY-----"
                ))
            })?;
        match label {
            "PRIVATE KEY" => PrivateKey::from_pkcs8(&der).map_err(parse),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
                .map(|k| PrivateKey::from_signing(Signing::EcdsaP256(k.into())))
                .map_err(|e| parse(format!("not a P-256 SEC1 key: {e}"))),
            encrypted::SIGSTORE_LABEL | encrypted::COSIGN_LABEL => {
                let Some(password) = password else {
                    return Err(KeyError::NoPassword {
                        path: path.to_path_buf(),
                        label: label.to_string(),
                    });
                };
                let mut plain = encrypted::open(&der, password).map_err(|e| KeyError::Decrypt {
                    path: path.to_path_buf(),
                    error: e,
                })?;
                let key = PrivateKey::from_pkcs8(&plain).map_err(parse);
                plain.fill(0);
                key
            }
            "PUBLIC KEY" => Err(parse(
                "it is a public key; give the private key to sign with".into(),
            )),
            other => Err(parse(format!("its PEM label is {other}"))),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, String> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::from_signing(Signing::Ed25519(k)));
        }
        p256::ecdsa::SigningKey::from_pkcs8_der(der)
            .map(|k| PrivateKey::from_signing(Signing::EcdsaP256(k)))
            .map_err(|e| format!("PKCS#8 of neither Ed25519 nor ECDSA P-256 ({e}); RSA and other curves are not supported"))
    }

    /// Loads the private key at `path`; `password` opens an encrypted one.
    pub fn load(path: &Path, password: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        PrivateKey::from_pem(&read(path)?, path, password)
    }

    /// Writes the private key to `private_path`, created with mode 0600 so
    /// it is never readable by others, not even for an instant (encrypted
    /// with `password` when given), and the public key to `public_path`
    /// (mode 0644). Existing files are never replaced: losing a signing
    /// key is not undoable.
    pub fn write_pair<R: RngCore + CryptoRng>(
        &self,
        private_path: &Path,
        public_path: &Path,
        password: Option<&[u8]>,
        rng: &mut R,
    ) -> Result<(), KeyError> {
        for p in [private_path, public_path] {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(KeyError::Exists {
                    path: p.to_path_buf(),
                });
            }
        }
        let pem = self.to_pem(password, rng);
        write_new(private_path, pem.as_bytes(), 0o600)?;
        write_new(public_path, self.public.to_pem().as_bytes(), 0o644)
    }
}

impl PublicKey {
    fn from_verifying(verifying: Verifying) -> PublicKey {
        let spki = match &verifying {
            Verifying::Ed25519(k) => k.to_public_key_der(),
            Verifying::EcdsaP256(k) => k.to_public_key_der(),
        }
        .expect("a public key always encodes")
        .as_bytes()
        .to_vec();
        let mut key = PublicKey {
            verifying,
            spki,
            keyid: String::new(),
        };
        key.keyid = key.sslib_keyid();
        key
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.verifying {
            Verifying::Ed25519(_) => Algorithm::Ed25519,
            Verifying::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// securesystemslib's default key id (see the module's comment).
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// sigstore's public key hint: base64 of sha256(SPKI DER).
    pub fn hint(&self) -> String {
        use sha2::Digest as _;
        STANDARD.encode(sha2::Sha256::digest(&self.spki))
    }

    /// SubjectPublicKeyInfo PEM, 64-column lines, as openssl, Go and
    /// Python's `cryptography` write it.
    pub fn to_pem(&self) -> String {
        p256::pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.spki)
            .expect("PEM encoding of a public key cannot fail")
    }

    /// securesystemslib's `compute_default_keyid`: sha256 of the OLPC
    /// canonical JSON (keys sorted, no white space, only `"` and `\`
    /// escaped) of the key's type, scheme and value. The value is the
    /// raw key in hex for Ed25519, and the SPKI PEM text for ECDSA.
    fn sslib_keyid(&self) -> String {
        let (keytype, scheme, public) = match &self.verifying {
            Verifying::Ed25519(k) => ("ed25519", "ed25519", hex::encode(k.as_bytes())),
            Verifying::EcdsaP256(_) => ("ecdsa", "ecdsa-sha2-nistp256", self.to_pem()),
        };
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let canonical = format!(
            "{{\"keytype\":\"{}\",\"keyval\":{{\"public\":\"{}\"}},\"scheme\":\"{}\"}}",
            esc(keytype),
            esc(&public),
            esc(scheme)
        );
        Digest::of(canonical.as_bytes()).hex().to_string()
    }

    pub(crate) fn from_pem(text: &str, path: &Path) -> Result<PublicKey, KeyError> {
        let parse = |message: String| KeyError::Parse {
            path: path.to_path_buf(),
            expected: "an ECDSA P-256 or Ed25519 public key in PEM (SubjectPublicKeyInfo)",
            message,
        };
        let (label, der) = p256::pkcs8::der::pem::decode_vec(text.trim().as_bytes())
            .map_err(|e| parse(format!("{e}; expected -----BEGIN PUBLIC KEY-----")))?;
        if label != "PUBLIC KEY" {
            return Err(parse(if label.contains("PRIVATE") {
                format!("it is a private key ({label}); verify with the public key beside it")
            } else {
                format!("its PEM label is {label}")
            }));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(&der) {
            return Ok(PublicKey::from_verifying(Verifying::Ed25519(k)));
        }
        p256::ecdsa::VerifyingKey::from_public_key_der(&der)
            .map(|k| PublicKey::from_verifying(Verifying::EcdsaP256(k)))
            .map_err(|e| parse(format!("neither Ed25519 nor P-256 ({e})")))
    }

    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        PublicKey::from_pem(&read(path)?, path)
    }

    /// Whether `signature` is this key's signature of `message`. Ed25519
    /// is verified strictly (no malleable or small-order forms); ECDSA
    /// takes the DER form verifiers of cosign signatures take.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifying {
            Verifying::Ed25519(k) => match ed25519_dalek::Signature::from_slice(signature) {
                Ok(sig) => k.verify_strict(message, &sig).is_ok(),
                Err(_) => false,
            },
            Verifying::EcdsaP256(k) => match p256::ecdsa::Signature::from_der(signature) {
                Ok(sig) => k.verify(message, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }
}

/// Where the public key goes when only the private key's path is given:
/// beside it, with the extension `pub` (`stele.key` → `stele.pub`).
pub(crate) fn public_path_for(private: &Path) -> PathBuf {
    private.with_extension("pub")
}

/// The largest key file read: a PEM key is well under a kilobyte.
const KEY_FILE_LIMIT: u64 = 64 << 10;

fn read(path: &Path) -> Result<String, KeyError> {
    let err = |e: std::io::Error| KeyError::Read {
        path: path.to_path_buf(),
        error: e,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, KEY_FILE_LIMIT + 1),
        &mut text,
    )
    .map_err(err)?;
    if text.len() as u64 > KEY_FILE_LIMIT {
        return Err(err(std::io::Error::other(format!(
            "larger than {KEY_FILE_LIMIT} bytes: not a key"
        ))));
    }
    Ok(text)
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
mod tests;
