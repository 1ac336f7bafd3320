//! An OCI Distribution Spec client (distribution-spec v1.1): push and pull
//! of the image model, with the registry's own rules for authentication,
//! resumable uploads and referrers.
//!
//! Nothing here reads the environment or the user's home: which auth files
//! to read, whether plain HTTP is allowed and the run's one transport
//! (retries, proxies, TLS, shared with apt fetching and every other
//! registry) all come in through [`RegistrySettings`], which the CLI
//! fills.
//!
//! - [`reference`]: `HOST[:PORT]/REPO[:TAG][@sha256:…]`, never a default host
//! - [`auth`]: credentials from auth files and credential helpers,
//!   `WWW-Authenticate` challenges
//! - [`client`]: the registry layer over the crate's `transport`:
//!   redirects, then authentication, then `upgrade` (the loopback HTTPS
//!   upgrade), each its own step; errors
//! - `token`: basic credentials or bearer tokens, cached per scope
//! - [`upload`]: one blob: HEAD, mount, monolithic or chunked upload, resume
//! - `manifest`: one manifest or index PUT, its digest checked
//! - [`push`]: images and indexes, and their referrers
//! - [`referrers`]: pushing referrers and listing them (API, fallback tag)
//! - [`pull`]: manifests and blobs into a `BlobStore`, and the referrers'
//!
//! Imports go one way: `push` and `pull` use `referrers`, `manifest` and
//! `upload`; those use `client`; `client` uses `token`, `auth`, `upgrade`
//! and `reference`.

pub mod auth;
pub mod client;
pub mod config;
mod cosign;
pub(crate) mod manifest;
pub mod pull;
pub mod push;
pub mod reference;
pub mod referrers;
mod token;
mod upgrade;
pub mod upload;

use std::path::PathBuf;

use crate::oci::Digest;
use crate::store::StoreError;
use crate::transport::{Transient, Transport, TransportError};

pub use client::Client;
pub use pull::{pull, Pulled};
pub use push::{check_push_target, push_built, push_built_with, PushOptions};
pub use reference::Reference;

/// How to talk to registries. The CLI builds it from flags and the
/// environment; tests build it directly.
#[derive(Clone, Debug)]
pub struct RegistrySettings {
    /// docker/containers auth files, in order: the first that has an entry
    /// for a registry's host gives its credentials.
    pub auth_files: Vec<PathBuf>,
    /// Allow plain HTTP to any host (it is always allowed to loopback).
    pub insecure: bool,
    /// Registries (`host[:port]`) that may be spoken to in plain HTTP, as
    /// loopback ones are: asked over HTTP first, switched to HTTPS when
    /// they answer as a TLS server (`--src-insecure`, `--dest-insecure`,
    /// registries.conf's `insecure = true`).
    pub insecure_registries: Vec<String>,
    /// Mirrors, locations and blocked names (containers-registries.conf).
    pub registries: config::RegistriesConf,
    /// Blobs up to this size are uploaded in one PUT; larger ones in
    /// PATCH chunks of this size (memory use is one chunk per blob in
    /// flight, up to `jobs` of them).
    pub chunk_size: u64,
    /// How requests go out (timeouts, retries, proxies, TLS): the run's
    /// one transport, shared with apt fetching and every other registry.
    /// Each client counts its retries apart.
    pub transport: Transport,
    /// The largest blob a pull accepts; a descriptor claiming more is
    /// refused before anything is downloaded.
    pub blob_limit: u64,
    /// Blobs sent or fetched at once. What lands in the registry or the
    /// store is the same for any value.
    pub jobs: usize,
    /// Told how blob transfers go, from whichever thread moved a blob.
    pub progress: Progress,
    /// How long a credential helper may take to answer.
    pub helper_limits: auth::HelperLimits,
}

/// How the blobs of one push or pull are going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// `blobs` blobs of `bytes` bytes in all are to be sent or fetched
    /// (or found there already).
    Started { blobs: usize, bytes: u64 },
    /// One blob is done: `bytes` long, and whether its bytes travelled.
    Blob { bytes: u64, moved: bool },
    /// Every blob is done, or one failed and the rest were not started.
    Finished,
}

/// Where [`Transfer`] events go: nowhere by default; the CLI's status line.
#[derive(Clone, Default)]
pub struct Progress(Option<std::sync::Arc<dyn Fn(Transfer) + Send + Sync>>);

impl Progress {
    pub fn new(f: impl Fn(Transfer) + Send + Sync + 'static) -> Progress {
        Progress(Some(std::sync::Arc::new(f)))
    }

    pub(crate) fn emit(&self, event: Transfer) {
        if let Some(f) = &self.0 {
            f(event);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(on)"
        } else {
            "Progress(off)"
        })
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            auth_files: Vec::new(),
            insecure: false,
            insecure_registries: Vec::new(),
            registries: config::RegistriesConf::default(),
            chunk_size: 16 << 20,
            transport: Transport::default(),
            blob_limit: 32 << 30,
            jobs: 4,
            progress: Progress::default(),
            helper_limits: auth::HelperLimits::default(),
        }
    }
}

/// What a push did, counted as it happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// Blobs whose bytes were sent.
    pub blobs_uploaded: u64,
    /// Blob bytes put on the wire, including bytes sent again after a
    /// failed attempt.
    pub bytes_uploaded: u64,
    /// Blobs the registry already had (HEAD said so): nothing sent.
    pub blobs_existing: u64,
    /// Blobs mounted from another repository of the same registry.
    pub blobs_mounted: u64,
    /// Manifests and indexes PUT, by digest or tag.
    pub manifests_pushed: u64,
    /// Referrer (attestation) manifests pushed.
    pub referrers_pushed: u64,
    /// Uploads continued from the registry's `Range` after a failure.
    pub uploads_resumed: u64,
    /// Uploads started over (416, or an upload the registry lost).
    pub uploads_restarted: u64,
    /// Requests sent again after a 5xx, 429 or dropped connection.
    pub retries: u64,
    /// What went wrong beside the image without stopping the push (an
    /// unreadable referrers tag), one message each.
    pub warnings: Vec<String>,
}

impl PushReport {
    /// Adds what another part of the same push did.
    pub(crate) fn add(&mut self, other: &PushReport) {
        let PushReport {
            blobs_uploaded,
            bytes_uploaded,
            blobs_existing,
            blobs_mounted,
            manifests_pushed,
            referrers_pushed,
            uploads_resumed,
            uploads_restarted,
            retries,
            warnings,
        } = other;
        self.blobs_uploaded += blobs_uploaded;
        self.bytes_uploaded += bytes_uploaded;
        self.blobs_existing += blobs_existing;
        self.blobs_mounted += blobs_mounted;
        self.manifests_pushed += manifests_pushed;
        self.referrers_pushed += referrers_pushed;
        self.uploads_resumed += uploads_resumed;
        self.uploads_restarted += uploads_restarted;
        self.retries += retries;
        self.warnings.extend(warnings.iter().cloned());
    }
}

impl std::fmt::Display for PushReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} blob(s) uploaded ({} bytes), {} already there, {} mounted; {} manifest(s), {} referrer(s)",
            self.blobs_uploaded,
            self.bytes_uploaded,
            self.blobs_existing,
            self.blobs_mounted,
            self.manifests_pushed,
            self.referrers_pushed
        )?;
        if self.retries + self.uploads_resumed + self.uploads_restarted > 0 {
            write!(
                f,
                "; {} retries, {} upload(s) resumed, {} restarted",
                self.retries, self.uploads_resumed, self.uploads_restarted
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{input}` is not a registry reference: {reason}")]
    Reference { input: String, reason: String },
    #[error("{method} {url}: the registry answered {status} {reason}{codes}{hint}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        /// The HTTP reason phrase.
        reason: String,
        /// The registry's `errors[]` as `CODE: message` list, with a
        /// leading `: ` when there are any.
        codes: String,
        /// What to do about it, with a leading `; ` when there is advice.
        hint: String,
    },
    // Boxed: a transport error carries a URL and a message or two.
    #[error(transparent)]
    Network(Box<TransportError>),
    #[error("{url}: {message}")]
    Protocol { url: String, message: String },
    #[error("{url}: digest mismatch: stele expected {expected}, the registry's answer has {found}; the registry or a proxy changed the content, or the reference names other content")]
    DigestMismatch {
        url: String,
        expected: Digest,
        found: String,
    },
    #[error("registry auth file {path}: {message}")]
    AuthFile { path: PathBuf, message: String },
    #[error("registries.conf {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// A document beyond one of the limits every source shares.
    #[error("{reference}: {error}")]
    Limit {
        reference: String,
        error: crate::oci::media::LimitError,
    },
    /// `helper` names the program and the auth file entry that named it.
    #[error("{helper} for {registry}: {message}")]
    CredentialHelper {
        helper: String,
        registry: String,
        message: String,
    },
    #[error("authenticating at {url}: {message}")]
    Auth { url: String, message: String },
    #[error("{reference}: refusing {what} {digest}: it claims {size} bytes, beyond the {limit}-byte limit")]
    TooLarge {
        reference: String,
        what: &'static str,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("{reference}: {error}")]
    Store {
        reference: String,
        error: StoreError,
    },
    /// One blob of a push failed, so no manifest was pushed. The cause is
    /// in the message: it is the part that says what to do.
    #[error("uploading blob {digest} to {repository} (no manifest was pushed): {cause}")]
    Blob {
        repository: String,
        digest: Digest,
        cause: Box<RegistryError>,
    },
    #[error("{reference}: {what} {digest} is malformed: {message}")]
    Malformed {
        reference: String,
        what: &'static str,
        digest: Digest,
        message: String,
    },
}

impl From<TransportError> for RegistryError {
    fn from(e: TransportError) -> RegistryError {
        RegistryError::Network(Box::new(e))
    }
}

/// For operations of several requests run again by the retry layer: only
/// the network's transient failures are worth another attempt.
impl Transient for RegistryError {
    fn transient(&self) -> bool {
        matches!(self, RegistryError::Network(e) if e.transient())
    }
    fn gave_up(self, attempts: u32) -> Self {
        match self {
            RegistryError::Network(e) => RegistryError::Network(Box::new(e.gave_up(attempts))),
            other => other,
        }
    }
    fn out_of_time(self, limit: std::time::Duration, attempts: u32) -> Self {
        match self {
            RegistryError::Network(e) => {
                RegistryError::Network(Box::new(e.out_of_time(limit, attempts)))
            }
            other => other,
        }
    }
}

/// How much of an error answer is read for its `errors[]`.
pub(crate) const ERROR_BODY_LIMIT: u64 = 64 << 10;

/// The registry's `errors[]` (distribution-spec "Error Codes") as
/// `: CODE: message, CODE: message`, or empty.
pub(crate) fn error_codes(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(e) = serde_json::from_slice::<Errors>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return if text.is_empty() || text.len() > 200 || text.starts_with('<') {
            String::new()
        } else {
            format!(": {text}")
        };
    };
    let parts: Vec<String> = e
        .errors
        .iter()
        .map(|x| match (&x.code, &x.message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => "(no detail)".into(),
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

impl RegistrySettings {
    /// Whether `registry` may be spoken to in plain HTTP without the
    /// user's `--insecure` (then it switches to HTTPS when it speaks TLS).
    pub(crate) fn plain_allowed(&self, registry: &str) -> bool {
        let registry = registry.to_ascii_lowercase();
        self.insecure_registries
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&registry))
    }
}

impl RegistryError {
    /// The HTTP status, for a registry's error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            RegistryError::Blob { cause, .. } => cause.status(),
            _ => None,
        }
    }
}
