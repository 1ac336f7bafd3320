//! Private keys encrypted with a password, in the form cosign writes
//! (`cosign generate-key-pair`, `cosign import-key-pair`) and reads
//! (go-securesystemslib's `encrypted` package): a PEM block labelled
//! `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign ≥ 2.0; `ENCRYPTED COSIGN
//! PRIVATE KEY` before) whose body is a JSON document:
//!
//! ```text
//! {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": B64},
//!  "cipher": {"name": "nacl/secretbox", "nonce": B64},
//!  "ciphertext": B64}
//! ```
//!
//! The key is scrypt(password, salt, N, r, p) to 32 bytes; the plaintext,
//! a PKCS#8 DER private key, is sealed with NaCl's secretbox
//! (XSalsa20-Poly1305, the 16-byte tag before the ciphertext) under a
//! 24-byte nonce. Base64 is standard with padding (Go's `[]byte` in JSON).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// The PEM label cosign writes since 2.0.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label of keys older cosign wrote; still read by cosign and here.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

const SALT_SIZE: usize = 32;
const NONCE_SIZE: usize = 24;
const KEY_SIZE: usize = 32;
/// The largest sealed document read: a sealed P-256 or Ed25519 key is
/// about 300 bytes.
const SEALED_LIMIT: usize = 16 << 10;

#[derive(Debug, thiserror::Error)]
pub enum EncryptedError {
    #[error("the encrypted key is not the JSON document cosign writes: {message}")]
    Malformed { message: String },
    #[error("its {what} is {found}, but only {expected} is known (the format cosign and go-securesystemslib write)")]
    Unsupported {
        what: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("its scrypt parameters N={n}, r={r}, p={p} are none of the three cosign uses (N 2^15, 2^16 or 2^17; r 8; p 1), refused so a key file cannot demand unbounded memory")]
    Params { n: u64, r: u32, p: u32 },
    #[error("the password is wrong, or the file was altered (secretbox authentication failed)")]
    Decryption,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: Params,
    salt: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
struct Params {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// scrypt's cost, as go-securesystemslib names the three settings it
/// writes and the only ones it (and stele) reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strength {
    /// N = 2^15 (what cosign wrote before 2.2).
    Legacy,
    /// N = 2^16 (cosign's default now).
    Standard,
    /// N = 2^17.
    Owasp,
}

impl Strength {
    fn params(self) -> Params {
        let n = match self {
            Strength::Legacy => 1 << 15,
            Strength::Standard => 1 << 16,
            Strength::Owasp => 1 << 17,
        };
        Params { n, r: 8, p: 1 }
    }

    fn of(params: Params) -> Option<Strength> {
        [Strength::Legacy, Strength::Standard, Strength::Owasp]
            .into_iter()
            .find(|s| s.params() == params)
    }
}

fn malformed(message: impl Into<String>) -> EncryptedError {
    EncryptedError::Malformed {
        message: message.into(),
    }
}

fn b64(what: &str, text: &str) -> Result<Vec<u8>, EncryptedError> {
    STANDARD
        .decode(text)
        .map_err(|e| malformed(format!("{what} is not base64: {e}")))
}

fn derive(password: &[u8], salt: &[u8], params: Params) -> [u8; KEY_SIZE] {
    let log_n = params.n.trailing_zeros() as u8;
    let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, KEY_SIZE)
        .expect("the three known parameter sets are valid");
    let mut key = [0u8; KEY_SIZE];
    scrypt::scrypt(password, salt, &scrypt_params, &mut key)
        .expect("a 32-byte output is a valid scrypt length");
    key
}

/// The plaintext (a PKCS#8 DER key) inside `sealed`, the PEM block's
/// body, opened with `password`.
pub fn open(sealed: &[u8], password: &[u8]) -> Result<Vec<u8>, EncryptedError> {
    if sealed.len() > SEALED_LIMIT {
        return Err(malformed(format!("larger than {SEALED_LIMIT} bytes")));
    }
    let doc: Sealed = serde_json::from_slice(sealed).map_err(|e| malformed(e.to_string()))?;
    if doc.kdf.name != "scrypt" {
        return Err(EncryptedError::Unsupported {
            what: "key derivation",
            found: doc.kdf.name,
            expected: "scrypt",
        });
    }
    if doc.cipher.name != "nacl/secretbox" {
        return Err(EncryptedError::Unsupported {
            what: "cipher",
            found: doc.cipher.name,
            expected: "nacl/secretbox",
        });
    }
    let params = doc.kdf.params;
    if Strength::of(params).is_none() {
        return Err(EncryptedError::Params {
            n: params.n,
            r: params.r,
            p: params.p,
        });
    }
    let salt = b64("the salt", &doc.kdf.salt)?;
    let nonce = b64("the nonce", &doc.cipher.nonce)?;
    if nonce.len() != NONCE_SIZE {
        return Err(malformed(format!(
            "the nonce has {} bytes, not {NONCE_SIZE}",
            nonce.len()
        )));
    }
    let ciphertext = b64("the ciphertext", &doc.ciphertext)?;
    let mut key = derive(password, &salt, params);
    let cipher = XSalsa20Poly1305::new((&key).into());
    key.fill(0);
    cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| EncryptedError::Decryption)
}

/// `plaintext` sealed with `password` under a fresh salt and nonce from
/// `rng`: the JSON document a PEM block labelled [`SIGSTORE_LABEL`] holds.
pub fn seal<R: RngCore + CryptoRng>(
    plaintext: &[u8],
    password: &[u8],
    strength: Strength,
    rng: &mut R,
) -> Vec<u8> {
    let mut salt = [0u8; SALT_SIZE];
    let mut nonce = [0u8; NONCE_SIZE];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    let params = strength.params();
    let mut key = derive(password, &salt, params);
    let cipher = XSalsa20Poly1305::new((&key).into());
    key.fill(0);
    let ciphertext = cipher
        .encrypt((&nonce).into(), plaintext)
        .expect("secretbox sealing of a short message cannot fail");
    serde_json::to_vec(&Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params,
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(ciphertext),
    })
    .expect("the sealed document serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn seal_then_open_and_a_wrong_password_fails() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let sealed = seal(b"secret der", b"pw", Strength::Legacy, &mut rng);
        let doc: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        assert_eq!(doc["kdf"]["params"]["N"], 32768);
        assert_eq!(doc["kdf"]["params"]["r"], 8);
        assert_eq!(doc["cipher"]["name"], "nacl/secretbox");
        assert_eq!(open(&sealed, b"pw").unwrap(), b"secret der");
        assert!(matches!(
            open(&sealed, b"other"),
            Err(EncryptedError::Decryption)
        ));
    }

    #[test]
    fn unknown_parameters_and_algorithms_are_refused() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let sealed = seal(b"x", b"", Strength::Legacy, &mut rng);
        let mut doc: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        doc["kdf"]["params"]["N"] = serde_json::json!(1u64 << 30);
        let e = open(&serde_json::to_vec(&doc).unwrap(), b"").unwrap_err();
        assert!(matches!(e, EncryptedError::Params { .. }), "{e}");
        doc["kdf"]["params"]["N"] = serde_json::json!(32768);
        doc["cipher"]["name"] = serde_json::json!("aes-gcm");
        let e = open(&serde_json::to_vec(&doc).unwrap(), b"").unwrap_err();
        assert!(e.to_string().contains("aes-gcm"), "{e}");
        assert!(matches!(
            open(b"not json", b""),
            Err(EncryptedError::Malformed { .. })
        ));
    }
}
