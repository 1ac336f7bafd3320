//! The root of apt's trust chain: an InRelease file, clear-signed by a key
//! from a keyring the user trusts, lists the sha256 of every index file in
//! the suite. Everything fetched later is checked against a digest that
//! descends from this signature.

use std::collections::BTreeMap;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;

use crate::oci::Digest;

/// What a verified Release says about its suite. Built only from the signed
/// part of an InRelease: text outside the signature never reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub suite: String,
    pub codename: String,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `Date` as written (RFC 2822); kept for provenance, never compared
    /// with the clock.
    pub date: Option<String>,
    /// `Valid-Until` as written. Deliberately not enforced: library code
    /// never reads the clock, and a lockfile must rebuild offline years
    /// later from its cached, digest-pinned InRelease. Freshness matters
    /// only when resolving anew, and that is the caller's decision.
    pub valid_until: Option<String>,
    /// The `SHA256` list: index path relative to `dists/<suite>/` →
    /// (digest, size).
    pub sha256: BTreeMap<String, (Digest, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("{name} is not signed (no `-----BEGIN PGP SIGNED MESSAGE-----` line); stele only trusts clear-signed InRelease files, check that the mirror URL points at an apt repository")]
    Unsigned { name: String },
    #[error("{name} is not a readable OpenPGP clear-signed message: {message}; the download may be damaged or the mirror may serve an error page, fetch it again")]
    Malformed { name: String, message: String },
    #[error("{name} has no valid signature from the keyring (signed by {}; keyring holds {}); point the source's keyring (Signed-By) at the key that signs this repository", list_or_none(.issuers), list_or_none(.tried))]
    BadSignature {
        name: String,
        /// Key ids or fingerprints the signatures claim as their issuers.
        issuers: Vec<String>,
        /// Fingerprints of every primary key and subkey tried.
        tried: Vec<String>,
    },
    #[error("keyring {name}: {message}; it must hold OpenPGP public keys, binary (.gpg) or ASCII-armored (.asc)")]
    Keyring { name: String, message: String },
    #[error("{name} line {line}: {message}; the Release file is malformed, fetch it again or report it to the repository's maintainers")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    #[error("{name} has no SHA256 list; stele verifies index files only by sha256, so this repository cannot be used")]
    NoSha256 { name: String },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// A set of OpenPGP public keys trusted to sign Release files.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Parses a keyring file: binary (several transferable public keys one
    /// after another, like the Debian archive keyring) or ASCII-armored
    /// (one or more `PUBLIC KEY BLOCK`s). `name` appears in errors.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Keyring, ReleaseError> {
        let err = |message: String| ReleaseError::Keyring {
            name: name.to_string(),
            message,
        };
        let first = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .ok_or_else(|| err("the file is empty".into()))?;
        let mut keys = Vec::new();
        // OpenPGP packet headers always have the high bit set; armor is text.
        if first & 0x80 != 0 {
            for key in SignedPublicKey::from_bytes_many(bytes).map_err(|e| err(e.to_string()))? {
                keys.push(key.map_err(|e| err(e.to_string()))?);
            }
        } else {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| err("it is neither binary OpenPGP nor ASCII text".into()))?;
            const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
            // pgp's armor reader takes one block; files like `*.asc` in
            // trusted.gpg.d may hold several.
            let starts: Vec<usize> = text.match_indices(BEGIN).map(|(i, _)| i).collect();
            if starts.is_empty() {
                return Err(err(format!("no `{BEGIN}` line found")));
            }
            for (n, start) in starts.iter().enumerate() {
                let end = starts.get(n + 1).copied().unwrap_or(text.len());
                let (block, _) = SignedPublicKey::from_armor_many(&bytes[*start..end])
                    .map_err(|e| err(e.to_string()))?;
                for key in block {
                    keys.push(key.map_err(|e| err(e.to_string()))?);
                }
            }
        }
        if keys.is_empty() {
            return Err(err("it holds no public keys".into()));
        }
        Ok(Keyring { keys })
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: Keyring) {
        self.keys.extend(other.keys);
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verifies an InRelease file against a keyring (binary or armored bytes)
/// and parses its signed text. `inrelease_name` (a URL or path) names the
/// file in errors.
pub fn verify_inrelease(
    inrelease: &[u8],
    keyring: &[u8],
    inrelease_name: &str,
) -> Result<Release, ReleaseError> {
    let keyring = Keyring::parse(keyring, &format!("for {inrelease_name}"))?;
    verify_inrelease_with(inrelease, &keyring, inrelease_name)
}

/// As [`verify_inrelease`], with an already parsed keyring.
pub(crate) fn verify_inrelease_with(
    inrelease: &[u8],
    keyring: &Keyring,
    inrelease_name: &str,
) -> Result<Release, ReleaseError> {
    let name = inrelease_name.to_string();
    let start = inrelease
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(inrelease.len());
    if !inrelease[start..].starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(ReleaseError::Unsigned { name });
    }
    let (msg, _) = CleartextSignedMessage::from_armor(&inrelease[start..]).map_err(|e| {
        ReleaseError::Malformed {
            name: name.clone(),
            message: e.to_string(),
        }
    })?;
    if !signed_by_keyring(&msg, keyring) {
        let issuers = msg
            .signatures()
            .iter()
            .flat_map(|s| {
                let fprs = s.issuer_fingerprint();
                if fprs.is_empty() {
                    s.issuer_key_id()
                        .iter()
                        .map(|k| k.to_string().to_uppercase())
                        .collect::<Vec<_>>()
                } else {
                    fprs.iter().map(|f| format!("{f:X}")).collect()
                }
            })
            .collect();
        let tried = keyring
            .keys
            .iter()
            .flat_map(|k| {
                std::iter::once(format!("{:X}", k.fingerprint())).chain(
                    k.public_subkeys
                        .iter()
                        .map(|s| format!("{:X}", s.fingerprint())),
                )
            })
            .collect();
        return Err(ReleaseError::BadSignature {
            name,
            issuers,
            tried,
        });
    }
    Release::parse(&msg.signed_text(), inrelease_name)
}

/// Debian's archive keys sign with subkeys, so every primary key and every
/// subkey is a candidate. A subkey counts only when its binding signature
/// from the primary verifies: otherwise anyone could graft a subkey onto a
/// trusted key. One good signature suffices (as with gpgv, which apt uses):
/// InRelease files are sometimes signed by an old and a new key during a
/// key rotation, and the keyring may hold only one of them.
fn signed_by_keyring(msg: &CleartextSignedMessage, keyring: &Keyring) -> bool {
    keyring.keys.iter().any(|key| {
        msg.verify(&key.primary_key).is_ok()
            || key
                .public_subkeys
                .iter()
                .any(|sub| sub.verify_bindings(&key.primary_key).is_ok() && msg.verify(sub).is_ok())
    })
}

impl Release {
    /// Parses Release text (the first deb822 paragraph). `name` appears in
    /// errors.
    pub fn parse(text: &str, name: &str) -> Result<Release, ReleaseError> {
        let mut fields: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut current: Option<String> = None;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() {
                if fields.is_empty() {
                    continue;
                }
                break;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                let Some(key) = &current else {
                    return Err(ReleaseError::Parse {
                        name: name.into(),
                        line: line_no,
                        message: "continuation line before any field".into(),
                    });
                };
                let entry = fields.get_mut(key).expect("current field exists");
                entry.1.push('\n');
                entry.1.push_str(line.trim());
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(ReleaseError::Parse {
                    name: name.into(),
                    line: line_no,
                    message: format!("`{line}` is not a `Field: value` line"),
                });
            };
            let key = key.trim().to_string();
            fields.insert(key.clone(), (line_no, value.trim().to_string()));
            current = Some(key);
        }
        let get = |k: &str| fields.get(k).map(|(_, v)| v.clone());
        let words = |k: &str| {
            get(k)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let Some((sha_line, sha_text)) = fields.get("SHA256") else {
            return Err(ReleaseError::NoSha256 { name: name.into() });
        };
        let mut sha256 = BTreeMap::new();
        for (offset, entry) in sha_text.lines().enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let line = sha_line + offset;
            let bad = |message: String| ReleaseError::Parse {
                name: name.into(),
                line,
                message,
            };
            let parts: Vec<&str> = entry.split_whitespace().collect();
            let [hex_digits, size, path] = parts[..] else {
                return Err(bad(format!(
                    "SHA256 entry `{entry}` is not `<sha256> <size> <path>`"
                )));
            };
            let digest = Digest::from_hex(&hex_digits.to_ascii_lowercase())
                .map_err(|_| bad(format!("`{hex_digits}` is not a sha256 hex digest")))?;
            let size: u64 = size
                .parse()
                .map_err(|_| bad(format!("size `{size}` is not a number")))?;
            sha256.insert(path.to_string(), (digest, size));
        }
        Ok(Release {
            suite: get("Suite").unwrap_or_default(),
            codename: get("Codename").unwrap_or_default(),
            architectures: words("Architectures"),
            components: words("Components"),
            date: get("Date"),
            valid_until: get("Valid-Until"),
            sha256,
        })
    }

    /// The digest and size the Release lists for `path` (relative to
    /// `dists/<suite>/`, e.g. `main/binary-amd64/Packages.xz`).
    pub fn sha256_of(&self, path: &str) -> Option<(Digest, u64)> {
        self.sha256.get(path).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Origin: Test\nSuite: stable\nCodename: testy\nDate: Sat, 01 Jan 2000 00:00:00 UTC\nValid-Until: Sat, 08 Jan 2000 00:00:00 UTC\nArchitectures: amd64 arm64\nComponents: main contrib\nMD5Sum:\n 00000000000000000000000000000000 1 main/binary-amd64/Packages\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 main/binary-amd64/Packages\n E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855 20 main/binary-amd64/Packages.xz\n";

    #[test]
    fn parses_fields_and_sha256_list() {
        let r = Release::parse(TEXT, "t").unwrap();
        assert_eq!(r.suite, "stable");
        assert_eq!(r.codename, "testy");
        assert_eq!(r.architectures, ["amd64", "arm64"]);
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(
            r.valid_until.as_deref(),
            Some("Sat, 08 Jan 2000 00:00:00 UTC")
        );
        assert_eq!(
            r.sha256_of("main/binary-amd64/Packages"),
            Some((Digest::of(b""), 0))
        );
        assert_eq!(
            r.sha256_of("main/binary-amd64/Packages.xz"),
            Some((Digest::of(b""), 20))
        );
        assert_eq!(r.sha256_of("main/binary-arm64/Packages"), None);
    }

    #[test]
    fn refuses_bad_sha256_entries_with_line() {
        let text = "Suite: s\nSHA256:\n abc 1 main/x\n";
        let e = Release::parse(text, "R").unwrap_err().to_string();
        assert!(e.contains("R line 3"), "{e}");
        assert!(matches!(
            Release::parse("Suite: s\n", "R"),
            Err(ReleaseError::NoSha256 { .. })
        ));
    }

    #[test]
    fn unsigned_is_its_own_error() {
        let e = verify_inrelease_with(TEXT.as_bytes(), &Keyring::new(), "x/InRelease");
        assert!(matches!(e, Err(ReleaseError::Unsigned { ref name }) if name == "x/InRelease"));
    }

    #[test]
    fn keyring_errors_name_the_file() {
        let e = Keyring::parse(b"", "k.gpg").unwrap_err().to_string();
        assert!(e.contains("k.gpg") && e.contains("empty"), "{e}");
        let e = Keyring::parse(b"hello", "k.asc").unwrap_err().to_string();
        assert!(e.contains("k.asc"), "{e}");
    }

    /// Against the machine's own Debian keyring and apt lists, when present:
    /// the real thing signs with subkeys and carries several signatures.
    #[test]
    fn verifies_the_hosts_real_inrelease() {
        let keyring_path = std::path::Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
        let Ok(keyring) = std::fs::read(keyring_path) else {
            eprintln!("skipped: {} is not present", keyring_path.display());
            return;
        };
        let lists = match std::fs::read_dir("/var/lib/apt/lists") {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipped: /var/lib/apt/lists: {e}");
                return;
            }
        };
        let mut files: Vec<_> = lists
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("_InRelease"))
            .collect();
        files.sort();
        if files.is_empty() {
            eprintln!("skipped: no *_InRelease in /var/lib/apt/lists");
            return;
        }
        let ring = Keyring::parse(&keyring, "debian-archive-keyring.gpg").unwrap();
        let mut verified = 0;
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let name = file.display().to_string();
            match verify_inrelease_with(&bytes, &ring, &name) {
                Ok(release) => {
                    assert!(!release.sha256.is_empty(), "{name}");
                    assert!(!release.suite.is_empty(), "{name}");
                    verified += 1;
                    // One flipped byte inside the signed text must fail.
                    let mut tampered = bytes.clone();
                    let at = tampered.windows(7).position(|w| w == b"SHA256:").unwrap();
                    tampered[at + 20] ^= 1;
                    assert!(matches!(
                        verify_inrelease_with(&tampered, &ring, &name),
                        Err(ReleaseError::BadSignature { .. })
                    ));
                }
                // Third-party repositories are signed by other keys.
                Err(ReleaseError::BadSignature { .. }) => {
                    eprintln!("{name}: not signed by the Debian archive keyring")
                }
                Err(e) => panic!("{e}"),
            }
        }
        eprintln!("verified {verified} host InRelease files");
    }
}
