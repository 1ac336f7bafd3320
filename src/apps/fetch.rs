//! Downloads of application packages (wheels, npm tarballs) into the
//! content-addressed cache, through the run's one transport (proxies,
//! TLS, timeouts, retries). Every byte is checked against the digest the
//! package's lock records (a wheel's sha256, an npm package's SRI
//! `integrity`) before it gets a name in the cache; credentials travel
//! only to the origin they were configured for, never across a redirect
//! to another one.

use std::io::{self, Read, Write};

use base64::Engine as _;
use sha2::Digest as _;

use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};
use crate::transport::{
    follow_redirects, transient_status, Request, Transient, Transport, TransportError,
};

/// What a download must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A sha256 (pylock.toml's `hashes.sha256`).
    Sha256(Digest),
    /// An SRI string (`sha512-…`, package-lock.json's `integrity`); the
    /// strongest algorithm it names is checked.
    Integrity(Integrity),
}

/// A Subresource Integrity value: the strongest hash it lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrity {
    /// `sha512`, `sha384`, `sha256` or `sha1`.
    pub algorithm: &'static str,
    pub digest: Vec<u8>,
    /// As the lock wrote it.
    pub text: String,
}

impl Integrity {
    /// Reads an SRI string; `None` when it names no hash stele knows.
    pub fn parse(text: &str) -> Option<Integrity> {
        let mut best: Option<Integrity> = None;
        let strength = |a: &str| {
            ["sha1", "sha256", "sha384", "sha512"]
                .iter()
                .position(|x| *x == a)
        };
        for item in text.split_whitespace() {
            let (algorithm, rest) = item.split_once('-')?;
            let b64 = rest.split('?').next().unwrap_or(rest);
            let digest = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            let algorithm = match algorithm {
                "sha512" => "sha512",
                "sha384" => "sha384",
                "sha256" => "sha256",
                "sha1" => "sha1",
                _ => continue,
            };
            if best
                .as_ref()
                .map_or(true, |b| strength(algorithm) > strength(b.algorithm))
            {
                best = Some(Integrity {
                    algorithm,
                    digest,
                    text: text.to_string(),
                });
            }
        }
        best
    }

    fn hasher(&self) -> Hasher {
        match self.algorithm {
            "sha512" => Hasher::Sha512(sha2::Sha512::new()),
            "sha384" => Hasher::Sha384(sha2::Sha384::new()),
            "sha256" => Hasher::Sha256(sha2::Sha256::new()),
            _ => Hasher::Sha1(sha1::Sha1::new()),
        }
    }
}

enum Hasher {
    Sha512(sha2::Sha512),
    Sha384(sha2::Sha384),
    Sha256(sha2::Sha256),
    Sha1(sha1::Sha1),
}

impl Hasher {
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha512(h) => h.update(b),
            Hasher::Sha384(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha1(h) => h.update(b),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
        }
    }
}

/// An `Authorization` header value for every URL of one origin and path
/// prefix (`https://host:port/path/`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub prefix: String,
    pub header: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "Credential({} …)", self.prefix)
    }
}

/// The credential for `url`: the longest matching prefix.
pub(crate) fn credential_for<'a>(
    credentials: &'a [Credential],
    url: &str,
) -> Option<&'a Credential> {
    credentials
        .iter()
        .filter(|c| url.starts_with(&c.prefix))
        .max_by_key(|c| c.prefix.len())
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{label}: {url} was not found (HTTP {status}); check the index or registry configured for it")]
    NotFound {
        label: String,
        url: String,
        status: u16,
    },
    #[error("{label}: GET {url} failed with HTTP {status}{hint}")]
    Status {
        label: String,
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{label}: downloading failed")]
    Network {
        label: String,
        #[source]
        source: TransportError,
    },
    #[error("{label}: {url} is not what the lock says: expected {expected}, downloaded {found}; the index or registry served other bytes (a changed or tampered file): nothing was cached")]
    Mismatch {
        label: String,
        url: String,
        expected: String,
        found: String,
    },
    #[error("{label}: {url} is larger than {limit} bytes, more than the lock allows")]
    TooLarge {
        label: String,
        url: String,
        limit: u64,
    },
    #[error("{label}: --offline forbids downloading {url}; build once online or import a vendor folder first")]
    Offline { label: String, url: String },
    #[error("{label}: `{url}` is not an http:// or https:// URL")]
    UnsupportedUrl { label: String, url: String },
    #[error("{label}: reading {url}: {error}")]
    Read {
        label: String,
        url: String,
        error: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Transient for FetchError {
    fn transient(&self) -> bool {
        match self {
            FetchError::Network { source, .. } => source.transient(),
            FetchError::Status { status, .. } => transient_status(*status),
            FetchError::Read { .. } => true,
            _ => false,
        }
    }
    fn gave_up(self, attempts: u32) -> Self {
        match self {
            FetchError::Network { label, source } => FetchError::Network {
                label,
                source: source.gave_up(attempts),
            },
            other => other,
        }
    }
}

/// Whether the blob `digest` (`size` bytes) in `store` is what
/// `expected` says: an archive a remote cache handed over is checked
/// against the lock as a download is.
pub(crate) fn check_blob(
    store: &BlobStore,
    digest: &Digest,
    size: u64,
    expected: &Expected,
) -> Result<(), String> {
    match expected {
        Expected::Sha256(want) if want == digest => Ok(()),
        Expected::Sha256(want) => Err(format!("it is {digest}, the lock names {want}")),
        Expected::Integrity(i) => {
            let (mut file, found_size) = store.open_blob(digest).map_err(|e| e.to_string())?;
            if found_size != size {
                return Err(format!("it is {found_size} bytes, its record says {size}"));
            }
            let mut h = i.hasher();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            if h.finish() != i.digest {
                return Err(format!("it does not have the integrity {}", i.text));
            }
            Ok(())
        }
    }
}

/// One download.
pub struct Download<'a> {
    pub url: &'a str,
    pub expected: &'a Expected,
    /// The size the lock records, when it records one.
    pub size: Option<u64>,
    /// Refuse more than this many bytes when the size is not known.
    pub limit: u64,
    /// Names the package in errors (`flask 3.1.3`).
    pub label: &'a str,
}

/// Downloads `d` into `store` and returns the blob's sha256 and size. An
/// `Ok` means the blob is stored and matched what the lock expects; a
/// failure stores nothing.
pub fn download(
    transport: &Transport,
    credentials: &[Credential],
    store: &BlobStore,
    d: &Download,
) -> Result<(Digest, u64), FetchError> {
    if !(d.url.starts_with("https://") || d.url.starts_with("http://")) {
        return Err(FetchError::UnsupportedUrl {
            label: d.label.to_string(),
            url: d.url.to_string(),
        });
    }
    let budget = transport.budget(true);
    transport.retrying_within(&budget, || {
        let resp = get(transport, &budget, credentials, d.url, None, d.label)?;
        store_checked(resp.into_reader(), store, d)
    })
}

/// The body at `url` (an index page), at most `limit` bytes; `accept` is
/// the `Accept` header.
pub(crate) fn get_page(
    transport: &Transport,
    credentials: &[Credential],
    url: &str,
    accept: &str,
    limit: u64,
    label: &str,
) -> Result<Vec<u8>, FetchError> {
    let budget = transport.budget(true);
    transport.retrying_within(&budget, || {
        let resp = get(transport, &budget, credentials, url, Some(accept), label)?;
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| FetchError::Read {
                label: label.to_string(),
                url: url.to_string(),
                error,
            })?;
        if bytes.len() as u64 > limit {
            return Err(FetchError::TooLarge {
                label: label.to_string(),
                url: url.to_string(),
                limit,
            });
        }
        Ok(bytes)
    })
}

/// One GET of `url` with its redirects, each hop with the credential
/// configured for it (so none crosses to another origin); an answer that
/// is not 2xx is an error.
fn get(
    transport: &Transport,
    budget: &crate::transport::Budget,
    credentials: &[Credential],
    url: &str,
    accept: Option<&str>,
    label: &str,
) -> Result<ureq::Response, FetchError> {
    let resp = follow_redirects(
        url,
        |hop| {
            let mut headers: Vec<(&str, String)> = credential_for(credentials, hop)
                .map(|c| ("Authorization", c.header.clone()))
                .into_iter()
                .collect();
            headers.extend(accept.map(|a| ("Accept", a.to_string())));
            transport.send(
                budget,
                &Request {
                    method: "GET",
                    url: hop,
                    headers: &headers,
                    body: None,
                },
            )
        },
        |url| TransportError::Protocol {
            method: "GET",
            url,
            message: "too many redirects".into(),
        },
    )
    .map_err(|source| FetchError::Network {
        label: label.to_string(),
        source,
    })?;
    match resp.status() {
        200..=299 => Ok(resp),
        status @ (404 | 410) => Err(FetchError::NotFound {
            label: label.to_string(),
            url: url.to_string(),
            status,
        }),
        status => Err(FetchError::Status {
            label: label.to_string(),
            url: url.to_string(),
            status,
            hint: if matches!(status, 401 | 403) {
                "; the index or registry wants credentials: configure them where pip or npm reads them (an index URL with user:password, `_authToken` in .npmrc)"
            } else {
                ""
            },
        }),
    }
}

/// Streams `body` into `store`, checking it as `d` expects.
pub(crate) fn store_checked(
    body: impl Read,
    store: &BlobStore,
    d: &Download,
) -> Result<(Digest, u64), FetchError> {
    let limit = d.size.unwrap_or(d.limit);
    let mut writer = store.begin()?;
    let mut hasher = match d.expected {
        Expected::Integrity(i) => Some(i.hasher()),
        Expected::Sha256(_) => None,
    };
    let mut reader = body.take(limit.saturating_add(1));
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(FetchError::Read {
                    label: d.label.to_string(),
                    url: d.url.to_string(),
                    error,
                })
            }
        };
        total += n as u64;
        if total > limit {
            return Err(FetchError::TooLarge {
                label: d.label.to_string(),
                url: d.url.to_string(),
                limit,
            });
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..n]);
        }
        writer
            .write_all(&buf[..n])
            .map_err(|error| StoreError::Io {
                path: writer.temp_path().to_path_buf(),
                error,
            })?;
    }
    let mismatch = |found: String| FetchError::Mismatch {
        label: d.label.to_string(),
        url: d.url.to_string(),
        expected: match d.expected {
            Expected::Sha256(s) => match d.size {
                Some(n) => format!("{s} ({n} bytes)"),
                None => s.to_string(),
            },
            Expected::Integrity(i) => i.text.clone(),
        },
        found,
    };
    match d.expected {
        Expected::Sha256(digest) => {
            let size = d.size.unwrap_or(total);
            writer
                .commit_verified_as(digest, size)
                .map_err(|e| match e {
                    StoreError::DigestMismatch {
                        found, found_size, ..
                    } => mismatch(format!("{found} ({found_size} bytes)")),
                    other => other.into(),
                })?;
            Ok((digest.clone(), size))
        }
        Expected::Integrity(i) => {
            let found = hasher.expect("made for integrity").finish();
            if found != i.digest {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&found);
                return Err(mismatch(format!("{}-{b64}", i.algorithm)));
            }
            if d.size.is_some_and(|s| s != total) {
                return Err(mismatch(format!("{total} bytes")));
            }
            Ok(writer.finish()?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_takes_the_strongest_hash() {
        let sha512 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(b"x"));
        let sha1 = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(b"x"));
        let both = format!("sha1-{sha1} sha512-{sha512}");
        let i = Integrity::parse(&both).unwrap();
        assert_eq!(i.algorithm, "sha512");
        assert_eq!(i.digest, sha2::Sha512::digest(b"x").to_vec());
        assert!(Integrity::parse("md5-AAAA").is_none());
        assert!(Integrity::parse("sha512-!!!").is_none());
    }

    #[test]
    fn a_body_is_stored_only_when_it_is_what_the_lock_says() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let good = Expected::Integrity(
            Integrity::parse(&format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(b"pkg"))
            ))
            .unwrap(),
        );
        let d = |expected| Download {
            url: "https://registry.invalid/p/-/p-1.tgz",
            expected,
            size: None,
            limit: 100,
            label: "p 1",
        };
        let (digest, size) = store_checked(&b"pkg"[..], &store, &d(&good)).unwrap();
        assert_eq!((digest.clone(), size), (Digest::of(b"pkg"), 3));
        assert!(store.contains(&digest));
        let e = store_checked(&b"other"[..], &store, &d(&good)).unwrap_err();
        assert!(e.to_string().contains("is not what the lock says"), "{e}");
        assert!(!store.contains(&Digest::of(b"other")));
        let sha = Expected::Sha256(Digest::of(b"wheel"));
        let e = store_checked(&b"wheeI"[..], &store, &d(&sha)).unwrap_err();
        assert!(matches!(e, FetchError::Mismatch { .. }), "{e}");
        assert!(store_checked(&[0u8; 101][..], &store, &d(&sha)).is_err());
        let creds = vec![
            Credential {
                prefix: "https://r.invalid/".into(),
                header: "Bearer a".into(),
            },
            Credential {
                prefix: "https://r.invalid/team/".into(),
                header: "Bearer b".into(),
            },
        ];
        assert_eq!(
            credential_for(&creds, "https://r.invalid/team/x")
                .unwrap()
                .header,
            "Bearer b"
        );
        assert!(credential_for(&creds, "https://other.invalid/x").is_none());
        assert!(!format!("{:?}", creds[0]).contains("Bearer"));
    }
}
