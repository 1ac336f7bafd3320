//! Downloads from apt mirrors (HTTP(S) and `file://`) into the
//! content-addressed cache. Every byte that lands in the cache was first
//! checked against a digest that descends from a verified InRelease; the
//! cache is shared between concurrent builds, so all writes go through
//! `BlobStore`'s temp-file-and-rename.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

use super::release::{verify_inrelease_with, Keyring, Release, ReleaseError};
use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};
use crate::transport::{
    transient_status, Budget, ResumingBody, RetryPolicy, TrackedRead, Transient, Transport,
    TransportError,
};
/// InRelease files are a few hundred KiB; anything this big is not one.
pub(crate) const INRELEASE_LIMIT: u64 = 16 << 20;
/// Compressed index files (the largest Debian Packages.xz is ~10 MiB).
pub(crate) const INDEX_LIMIT: u64 = 512 << 20;
/// Decompressed Packages text; bounds a decompression bomb.
pub(crate) const INDEX_TEXT_LIMIT: u64 = 2 << 30;

const INDEX_NAMES: [&str; 3] = ["Packages.xz", "Packages.gz", "Packages"];

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{url} was not found (HTTP 404); check the mirror URL, suite, component and architecture"
    )]
    NotFound { url: String },
    #[error("GET {url} failed with HTTP {status}; check the mirror URL and that it serves an apt repository")]
    Status { url: String, status: u16 },
    #[error(transparent)]
    Network(#[from] TransportError),
    #[error("{url} is larger than the {limit}-byte limit for this kind of file; the mirror is serving something else")]
    TooLarge { url: String, limit: u64 },
    #[error("{url} does not match its expected digest: expected {expected} ({expected_size} bytes), found {found} ({found_size} bytes); the mirror may be out of sync or tampered with — try again later or another mirror; nothing was cached")]
    Mismatch {
        url: String,
        expected: Digest,
        expected_size: u64,
        found: Digest,
        found_size: u64,
    },
    #[error("index {file} from {url} does not match the signed Release: Release says {expected}, downloaded file is {found}; the mirror may be mid-update, try again later")]
    IndexMismatch {
        url: String,
        file: String,
        expected: Digest,
        found: Digest,
    },
    #[error("the Release of suite {suite} lists none of {tried}; check the component and architecture (it lists architectures: {architectures})", tried = .tried.join(", "))]
    NotInRelease {
        suite: String,
        tried: Vec<String>,
        architectures: String,
    },
    #[error("decompressing {url}: {message}")]
    Decompress { url: String, message: String },
    #[error("{label} ({digest}) is not in the cache {cache} and --offline forbids downloading it; run `stele vendor` while online to fill the cache, or drop --offline")]
    OfflineMiss {
        label: String,
        digest: Digest,
        cache: PathBuf,
    },
    #[error("--offline forbids downloading {url}; drop --offline, or build from an existing lockfile whose packages are cached")]
    Offline { url: String },
    #[error("reading {url} ({path}): {error}")]
    File {
        url: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error("`{url}` is not an http://, https:// or file:// URL")]
    UnsupportedUrl { url: String },
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One file to download: where, what it must hash to, and a name for
/// messages (usually `package version arch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchItem {
    pub url: String,
    pub sha256: Digest,
    pub size: u64,
    pub label: String,
}

/// A Release whose InRelease signature verified, and the digest of that
/// InRelease file (what a lockfile records).
#[derive(Clone, Debug)]
pub struct VerifiedRelease {
    pub release: Release,
    pub inrelease_sha256: Digest,
    pub url: String,
}

/// One failed attempt: worth trying again, or final.
enum Attempt {
    Retry(FetchError),
    Fatal(FetchError),
}

impl Transient for Attempt {
    fn transient(&self) -> bool {
        matches!(self, Attempt::Retry(_))
    }
    fn gave_up(self, attempts: u32) -> Self {
        match self {
            Attempt::Retry(FetchError::Network(e)) => {
                Attempt::Retry(FetchError::Network(e.gave_up(attempts)))
            }
            other => other,
        }
    }
    fn out_of_time(self, limit: Duration, attempts: u32) -> Self {
        match self {
            Attempt::Retry(FetchError::Network(e)) => {
                Attempt::Retry(FetchError::Network(e.out_of_time(limit, attempts)))
            }
            other => other,
        }
    }
}

impl Attempt {
    fn into_error(self) -> FetchError {
        match self {
            Attempt::Retry(e) | Attempt::Fatal(e) => e,
        }
    }
}

/// Downloads into a [`BlobStore`]. Cheap to share across threads.
#[derive(Debug)]
pub struct Fetcher {
    cache: BlobStore,
    offline: bool,
    transport: Transport,
}

impl Fetcher {
    /// A fetcher caching into `cache` whose requests go out through
    /// `transport` (the run's one: proxies, CAs, timeouts, retries). With
    /// `offline`, nothing touches the network and cache misses are errors.
    pub fn new(cache: BlobStore, offline: bool, transport: Transport) -> Fetcher {
        Fetcher {
            cache,
            offline,
            transport,
        }
    }

    /// Sets how many times a request is tried (at least once) and the
    /// delay before the first retry; each later delay doubles. The same
    /// sender (pool, proxies, TLS) goes on serving it.
    pub fn with_retries(self, attempts: u32, first_backoff: Duration) -> Fetcher {
        let transport = self.transport.with_retry(RetryPolicy {
            retries: attempts.max(1) - 1,
            backoff: first_backoff,
        });
        Fetcher { transport, ..self }
    }

    /// A fetcher that only reads the cache: what an offline fetcher
    /// would find, without this one going offline.
    pub(crate) fn cache_only(&self) -> Fetcher {
        Fetcher {
            cache: self.cache.clone(),
            offline: true,
            transport: self.transport.clone(),
        }
    }

    pub fn cache(&self) -> &BlobStore {
        &self.cache
    }

    pub fn offline(&self) -> bool {
        self.offline
    }

    /// Runs `op` (one download: the request and its whole body) through
    /// the transport's retry layer. Connection failures, 429 and 5xx
    /// answers are retried; 4xx answers and integrity failures are not (a
    /// mirror that served bad bytes once is not trusted to be asked again
    /// blindly). The requests inside, and bodies that stall or break off
    /// and are picked up again with a `Range` request, draw on the same
    /// budget of attempts.
    fn retrying<T>(
        &self,
        mut op: impl FnMut(&Budget) -> Result<T, Attempt>,
    ) -> Result<T, FetchError> {
        let budget = self.transport.budget(true);
        self.transport
            .retrying_within(&budget, || op(&budget))
            .map_err(Attempt::into_error)
    }

    fn open<'a>(&'a self, url: &str, budget: &'a Budget) -> Result<Body<'a>, Attempt> {
        if let Some(path) = url.strip_prefix("file://") {
            let path = PathBuf::from(path);
            return match File::open(&path) {
                Ok(f) => Ok(Body::File(TrackedRead::new(f))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(Attempt::Fatal(FetchError::NotFound { url: url.into() }))
                }
                Err(source) => Err(Attempt::Fatal(FetchError::File {
                    url: url.into(),
                    path,
                    error: source,
                })),
            };
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Attempt::Fatal(FetchError::UnsupportedUrl {
                url: url.into(),
            }));
        }
        let response = match self.transport.get_following(budget, url, &[]) {
            Ok(r) => r,
            Err(e) if e.transient() => return Err(Attempt::Retry(e.into())),
            Err(e) => return Err(Attempt::Fatal(e.into())),
        };
        let owned = url.to_string();
        let reopen = move |offset: u64| {
            self.transport
                .get_following(budget, &owned, &[("Range", format!("bytes={offset}-"))])
        };
        match response.status() {
            200..=299 => Ok(Body::Http(self.transport.resuming(
                budget,
                url,
                response,
                Box::new(reopen),
            ))),
            404 | 410 => Err(Attempt::Fatal(FetchError::NotFound { url: url.into() })),
            status => {
                let e = FetchError::Status {
                    url: url.into(),
                    status,
                };
                if transient_status(status) {
                    Err(Attempt::Retry(e))
                } else {
                    Err(Attempt::Fatal(e))
                }
            }
        }
    }

    /// The whole body at `url`, refusing more than `limit` bytes. The
    /// bytes are not verified: callers check them against a signature or
    /// digest before trusting or caching them.
    pub fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        if self.offline {
            return Err(FetchError::Offline { url: url.into() });
        }
        self.retrying(|budget| {
            let mut reader = self.open(url, budget)?;
            let mut bytes = Vec::new();
            if let Err(e) = (&mut reader)
                .take(limit.saturating_add(1))
                .read_to_end(&mut bytes)
            {
                let failure = reader
                    .failure(url)
                    .unwrap_or_else(|| TransportError::Connection {
                        method: "GET",
                        url: url.to_string(),
                        message: e.to_string(),
                        attempts: 1,
                    });
                return Err(Attempt::Retry(failure.into()));
            }
            if bytes.len() as u64 > limit {
                return Err(Attempt::Fatal(FetchError::TooLarge {
                    url: url.into(),
                    limit,
                }));
            }
            Ok(bytes)
        })
    }

    /// The cache path of the blob `digest`, downloading it from `url` when
    /// it is not cached. A returned path holds exactly `size` bytes hashing
    /// to `digest`; a failed download leaves nothing in the cache.
    pub fn fetch_verified(
        &self,
        url: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<PathBuf, FetchError> {
        self.fetch_item(&FetchItem {
            url: url.into(),
            sha256: digest.clone(),
            size,
            label: url.into(),
        })
    }

    /// As [`Fetcher::fetch_verified`], naming the item by its label in
    /// offline errors.
    pub(crate) fn fetch_item(&self, item: &FetchItem) -> Result<PathBuf, FetchError> {
        let path = self.cache.path(&item.sha256);
        if let Ok(meta) = path.metadata() {
            // Cached blobs were verified on the way in; a size check catches
            // truncation cheaply, and a full hash explains the damage.
            if meta.len() == item.size {
                return Ok(path);
            }
            self.cache.verify(&item.sha256, item.size)?;
            return Ok(path);
        }
        if self.offline {
            return Err(FetchError::OfflineMiss {
                label: item.label.clone(),
                digest: item.sha256.clone(),
                cache: self.cache.root().to_path_buf(),
            });
        }
        let url = item.url.as_str();
        self.retrying(|budget| {
            let mut reader = self.open(url, budget)?;
            match self
                .cache
                .put_verified(&mut reader, &item.sha256, item.size)
            {
                Ok(()) => Ok(()),
                Err(StoreError::DigestMismatch {
                    found, found_size, ..
                }) => Err(Attempt::Fatal(FetchError::Mismatch {
                    url: url.into(),
                    expected: item.sha256.clone(),
                    expected_size: item.size,
                    found,
                    found_size,
                })),
                // The store reports reader and writer failures alike; a
                // failed read is the network's fault and worth retrying.
                Err(e) => match reader.failure(url) {
                    Some(failure) => Err(Attempt::Retry(failure.into())),
                    None => Err(Attempt::Fatal(e.into())),
                },
            }
        })?;
        Ok(path)
    }

    /// Fetches every item with up to `jobs` threads, starting them in item
    /// order. Returns the cache paths in item order. After the first
    /// failure no new downloads start; once all threads have stopped, the
    /// error of the lowest-numbered failed item is returned.
    pub fn fetch_all(&self, items: &[FetchItem], jobs: usize) -> Result<Vec<PathBuf>, FetchError> {
        self.fetch_all_with(items, jobs, &|_| {})
    }

    /// [`Fetcher::fetch_all`], telling `fetched` (from the download
    /// threads) of each item once it is verified and cached.
    pub(crate) fn fetch_all_with(
        &self,
        items: &[FetchItem],
        jobs: usize,
        fetched: &(dyn Fn(&FetchItem) + Sync),
    ) -> Result<Vec<PathBuf>, FetchError> {
        // Equal weights: downloads are bound by the network, not the item.
        crate::parallel::map(
            items,
            jobs,
            |_| 0,
            |item| {
                let path = self.fetch_item(item)?;
                fetched(item);
                Ok(path)
            },
        )
    }

    /// The raw `dists/<suite>/InRelease` of a mirror, unverified and
    /// uncached (see [`Fetcher::fetch_release`]).
    pub fn fetch_inrelease(&self, mirror: &str, suite: &str) -> Result<Vec<u8>, FetchError> {
        self.get_bytes(&inrelease_url(mirror, suite), INRELEASE_LIMIT)
    }

    /// Downloads and verifies a suite's InRelease against `keyring`, then
    /// caches it by its sha256 (so a lockfile's `inrelease_sha256` can be
    /// looked up again with [`Fetcher::cached_release`]).
    pub fn fetch_release(
        &self,
        mirror: &str,
        suite: &str,
        keyring: &Keyring,
    ) -> Result<VerifiedRelease, FetchError> {
        let url = inrelease_url(mirror, suite);
        let bytes = self.fetch_inrelease(mirror, suite)?;
        let release = verify_inrelease_with(&bytes, keyring, &url)?;
        let inrelease_sha256 = self.cache.put_bytes(&bytes)?;
        Ok(VerifiedRelease {
            release,
            inrelease_sha256,
            url,
        })
    }

    /// A previously fetched InRelease from the cache, verified again (the
    /// cache is a convenience, not a trust anchor). Works offline.
    pub fn cached_release(
        &self,
        inrelease_sha256: &Digest,
        keyring: &Keyring,
        name: &str,
    ) -> Result<VerifiedRelease, FetchError> {
        let bytes = self
            .cache
            .read_verified(inrelease_sha256, None, INRELEASE_LIMIT)?;
        let release = verify_inrelease_with(&bytes, keyring, name)?;
        Ok(VerifiedRelease {
            release,
            inrelease_sha256: inrelease_sha256.clone(),
            url: name.into(),
        })
    }

    /// The Packages text of `component`/`arch`, from the best compressed
    /// form the signed Release lists (xz, gz, plain). The downloaded file
    /// is checked against the Release entry before it is decompressed or
    /// cached; when the Release also lists the plain file, the decompressed
    /// text is checked against that too.
    pub fn fetch_index(
        &self,
        mirror: &str,
        suite: &str,
        component: &str,
        arch: &str,
        release: &Release,
    ) -> Result<Vec<u8>, FetchError> {
        let dir = format!("{component}/binary-{arch}");
        let candidates: Vec<String> = INDEX_NAMES.iter().map(|n| format!("{dir}/{n}")).collect();
        let Some((file, digest, size)) = candidates
            .iter()
            .find_map(|c| release.sha256_of(c).map(|(d, s)| (c.clone(), d, s)))
        else {
            return Err(FetchError::NotInRelease {
                suite: suite.into(),
                tried: candidates,
                architectures: release.architectures.join(" "),
            });
        };
        let url = join_url(mirror, &format!("dists/{suite}/{file}"));
        if size > INDEX_LIMIT {
            return Err(FetchError::TooLarge {
                url,
                limit: INDEX_LIMIT,
            });
        }
        let compressed = if self.cache.contains(&digest) {
            self.cache.read_verified(&digest, Some(size), INDEX_LIMIT)?
        } else if self.offline {
            return Err(FetchError::OfflineMiss {
                label: format!("index {file} of suite {suite}"),
                digest,
                cache: self.cache.root().to_path_buf(),
            });
        } else {
            // Room beyond `size` so a tampered, larger file is reported as
            // a mismatch with its real digest rather than as oversized.
            let limit = size
                .saturating_mul(2)
                .max(size + (64 << 10))
                .min(INDEX_LIMIT);
            let bytes = self.get_bytes(&url, limit)?;
            let found = Digest::of(&bytes);
            if found != digest || bytes.len() as u64 != size {
                return Err(FetchError::IndexMismatch {
                    url,
                    file,
                    expected: digest,
                    found,
                });
            }
            self.cache.put_bytes(&bytes)?;
            bytes
        };
        let text = decompress(&file, &compressed, &url)?;
        if let Some((plain_digest, _)) = release.sha256_of(&format!("{dir}/Packages")) {
            let found = Digest::of(&text);
            if found != plain_digest {
                return Err(FetchError::IndexMismatch {
                    url,
                    file: format!("{dir}/Packages (decompressed)"),
                    expected: plain_digest,
                    found,
                });
            }
        }
        Ok(text)
    }
}

/// A download's body: a local file, or an HTTP answer that resumes.
enum Body<'a> {
    File(TrackedRead<File>),
    Http(ResumingBody<'a>),
}

impl Body<'_> {
    /// The failure of reading, when the source failed (not the consumer).
    fn failure(&mut self, url: &str) -> Option<TransportError> {
        match self {
            Body::File(f) => f.failure("GET", url),
            Body::Http(h) => h.failure(),
        }
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::File(f) => f.read(buf),
            Body::Http(h) => h.read(buf),
        }
    }
}

fn decompress(file: &str, bytes: &[u8], url: &str) -> Result<Vec<u8>, FetchError> {
    let reader: Box<dyn Read + '_> = if file.ends_with(".xz") {
        Box::new(xz2::read::XzDecoder::new(bytes))
    } else if file.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        return Ok(bytes.to_vec());
    };
    let mut text = Vec::new();
    reader
        .take(INDEX_TEXT_LIMIT + 1)
        .read_to_end(&mut text)
        .map_err(|e| FetchError::Decompress {
            url: url.into(),
            message: e.to_string(),
        })?;
    if text.len() as u64 > INDEX_TEXT_LIMIT {
        return Err(FetchError::TooLarge {
            url: url.into(),
            limit: INDEX_TEXT_LIMIT,
        });
    }
    Ok(text)
}

/// `<mirror>/<path>`, tolerating a trailing `/` on the mirror.
pub(crate) fn join_url(mirror: &str, path: &str) -> String {
    format!(
        "{}/{}",
        mirror.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

pub(crate) fn inrelease_url(mirror: &str, suite: &str) -> String {
    join_url(mirror, &format!("dists/{suite}/InRelease"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_urls() {
        assert_eq!(join_url("http://h/d/", "/dists/s"), "http://h/d/dists/s");
        assert_eq!(
            inrelease_url("file:///m", "s"),
            "file:///m/dists/s/InRelease"
        );
    }

    #[test]
    fn file_urls_and_unsupported_schemes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("c")).unwrap();
        let f = Fetcher::new(store, false, Transport::default()).with_retries(1, Duration::ZERO);
        std::fs::write(dir.path().join("a"), b"hello").unwrap();
        let url = format!("file://{}", dir.path().join("a").display());
        assert_eq!(f.get_bytes(&url, 5).unwrap(), b"hello");
        assert!(matches!(
            f.get_bytes(&url, 4),
            Err(FetchError::TooLarge { limit: 4, .. })
        ));
        let missing = format!("file://{}", dir.path().join("b").display());
        let e = f.get_bytes(&missing, 5).unwrap_err();
        assert!(e.to_string().contains(&missing), "{e}");
        assert!(matches!(
            f.get_bytes("ftp://x/y", 5),
            Err(FetchError::UnsupportedUrl { .. })
        ));
        let path = f.fetch_verified(&url, &Digest::of(b"hello"), 5).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"hello");
    }

    #[test]
    fn damaged_cache_entry_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"hello");
        std::fs::write(store.path(&digest), b"hell").unwrap();
        let f = Fetcher::new(store, true, Transport::default());
        let e = f.fetch_verified("file:///nowhere", &digest, 5).unwrap_err();
        assert!(
            matches!(e, FetchError::Store(StoreError::Mismatch { .. })),
            "{e}"
        );
    }
}
