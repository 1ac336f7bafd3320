//! The one HTTP transport of a run: apt fetching and every registry
//! client (the remote cache's included) send their requests through one
//! [`Transport`], made once from [`NetworkSettings`] at the CLI edge and
//! handed down. A request passes through layers, each its own type and
//! each tested alone, as go-containerregistry stacks its RoundTrippers:
//!
//! 1. [`Sender`] (`send`), the base: one request, one answer. It owns
//!    what is decided per target: TLS trust and client certificates
//!    (`tls`), the proxy (`proxy`: `NO_PROXY` decides per host; `tunnel`:
//!    CONNECT), the connection pool, and the read deadlines every socket
//!    keeps (`pace`: the wait for an answer, the throughput floor), all
//!    on connections its own connector makes (`connect`); it classifies a
//!    failure to get an answer ([`TransportError`]).
//! 2. the retry layer (`retry`): what is worth another try, how long to
//!    wait, and how many tries an operation gets and for how long
//!    ([`Budget`]: attempts and the total deadline). It sends a
//!    request again ([`Transport::send`]), runs an operation of several
//!    requests again ([`Transport::retrying`]), picks a body up by `Range`
//!    where it broke off ([`ResumingBody`]) and a chunked upload where the
//!    far side has it, through a callback the upload supplies
//!    ([`Resumable`], [`Transport::resume`]). No caller loops by hand.
//! 3. above it, per use: `redirect` follows a mirror's redirects (no
//!    credentials travel); the registry client adds authentication,
//!    redirects that keep credentials at home, and the loopback TLS
//!    upgrade (`registry::client`).
//!
//! A [`Transport`] is a cheap handle: clones share the sender (and so its
//! pool and TLS configurations); [`Transport::with_retry`] gives one use a
//! policy of its own on the same sender.
//!
//! Nothing here reads the environment; [`NetworkSettings`] comes from the
//! CLI.

mod connect;
mod pace;
mod proxy;
mod redirect;
mod retry;
mod send;
#[cfg(test)]
pub(crate) mod test_server;
mod tls;
mod tunnel;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use proxy::ProxySettings;
pub(crate) use redirect::{follow_redirects, is_redirect, resolve_location, MAX_REDIRECTS};
pub use retry::RetryPolicy;
pub(crate) use retry::{
    transient_status, Budget, PartFailed, Resumable, ResumingBody, TrackedRead, Transient,
};
pub use send::Sender;
pub use tls::{HostTls, TlsSettings, CERT_FILE_LIMIT};

/// How every request goes out.
#[derive(Clone, Debug)]
pub struct NetworkSettings {
    pub tls: TlsSettings,
    pub proxy: ProxySettings,
    /// Further attempts after a transient failure; an operation makes at
    /// most `retries + 1` requests' worth of attempts.
    pub retries: u32,
    /// Wait before the first retry; doubled for each one after.
    pub backoff: Duration,
    /// Connecting (TCP and, through a proxy, CONNECT) may take this long.
    pub connect_timeout: Duration,
    /// Waiting this long for an answer to begin (after a request or its
    /// body went out), or for a write to make progress, abandons the
    /// attempt, which fails transiently.
    pub idle_timeout: Duration,
    /// An answer read below this many bytes per second, measured over
    /// `speed_time` of waiting, is abandoned (curl's `--speed-limit`); so
    /// is one that stalls for `speed_time`. 0: no floor.
    pub speed_limit: u64,
    /// The window the floor is measured over (curl's `--speed-time`).
    pub speed_time: Duration,
    /// The most one request may take, its retries and resumed bodies
    /// included (curl's `--max-time`); no retry starts past it. Zero: no
    /// limit.
    pub max_time: Duration,
    pub user_agent: String,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            tls: TlsSettings::default(),
            proxy: ProxySettings::default(),
            retries: 4,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            // A slow but honest mirror keeps far above 1 KiB/s; a stall
            // of 20 s is abandoned and the body resumed by Range.
            speed_limit: 1024,
            speed_time: Duration::from_secs(20),
            // A 1 GB layer at 300 kB/s.
            max_time: Duration::from_secs(3600),
            user_agent: format!("stele/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{method} {url}: the certificate of {host} is not trusted: {problem}; if a private CA signed it, trust that CA: SSL_CERT_FILE=CA.crt, or CA.crt in --cert-dir DIR/{host}/ or /etc/containers/certs.d/{host}/ (--tls-verify=false skips the check)")]
    Certificate {
        method: &'static str,
        url: String,
        host: String,
        problem: String,
    },
    #[error("{method} {url}: TLS with {host} failed: {problem}")]
    Tls {
        method: &'static str,
        url: String,
        host: String,
        problem: String,
    },
    #[error("{method} {url}: the host name {host} does not resolve: {message}; check the name and the DNS (or proxy) settings")]
    Dns {
        method: &'static str,
        url: String,
        host: String,
        message: String,
    },
    #[error("{method} {url}: {message} (gave up after {attempts} attempt(s)); check that the server is running and reachable, and the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)")]
    Connection {
        method: &'static str,
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("{method} {url}: {message} (gave up after {attempts} attempt(s)); the server, a proxy or the network is slower than the floor allows (STELE_SPEED_LIMIT bytes/s over STELE_SPEED_TIME; STELE_MAX_TIME bounds a whole request)")]
    Slow {
        method: &'static str,
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("{method} {url}: through the proxy {proxy}: {message}")]
    Proxy {
        method: &'static str,
        url: String,
        proxy: String,
        message: String,
    },
    #[error("{method} {url}: refusing to send credentials in plain HTTP through the proxy {proxy}; use https (a CONNECT tunnel) or add the host to NO_PROXY")]
    CredentialsToProxy {
        method: &'static str,
        url: String,
        proxy: String,
    },
    #[error("{method} {url}: {message}")]
    Protocol {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("certificate file {path}: {message}")]
    CertFile { path: PathBuf, message: String },
    #[error("{method} {url}: gave up after {} s, the most one request may take ({attempts} attempt(s)); {why}", .limit.as_secs())]
    Deadline {
        method: &'static str,
        url: String,
        limit: Duration,
        attempts: u32,
        /// How the last attempt ended.
        why: String,
    },
}

/// One request: no retries, no redirects followed.
pub struct Request<'a> {
    pub method: &'static str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: Option<&'a [u8]>,
}

/// The transport of one run: the base [`Sender`] and the retry layer's
/// policy. Cheap to clone and safe to share between threads; clones share
/// the sender, its connection pool and its TLS configurations.
#[derive(Clone)]
pub struct Transport {
    sender: Arc<Sender>,
    policy: RetryPolicy,
    /// The most one operation of this handle may take (zero: no limit).
    max_time: Duration,
    /// Attempts made again by this handle (see [`Transport::with_retry`]).
    retries: Arc<AtomicU64>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("settings", self.sender.settings())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for Transport {
    /// No proxy, no CAs beyond those the settings name (none), the
    /// default timeouts and retries: for tests and library callers.
    fn default() -> Self {
        Transport::new(NetworkSettings::default())
    }
}

impl Transport {
    /// The transport for `settings`. Nothing is read or sent yet: the CA
    /// files they name are read before the first HTTPS request.
    pub fn new(settings: NetworkSettings) -> Transport {
        let policy = RetryPolicy::of(&settings);
        Transport {
            max_time: settings.max_time,
            sender: Arc::new(Sender::new(settings)),
            policy,
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn settings(&self) -> &NetworkSettings {
        self.sender.settings()
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// A handle on the same sender (pool, proxies, TLS) that retries as
    /// `policy` says and counts its retries apart: one use's own budget
    /// (a registry client's, a cache lookup's) without another pool.
    pub fn with_retry(&self, policy: RetryPolicy) -> Transport {
        Transport {
            sender: self.sender.clone(),
            policy,
            max_time: self.max_time,
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This handle with a total of `max_time` per operation instead of
    /// the settings' (a cache lookup's short budget): every attempt, its
    /// retries and resumed bodies must be done within it.
    pub fn with_max_time(&self, max_time: Duration) -> Transport {
        Transport {
            max_time,
            ..self.clone()
        }
    }

    /// Attempts this handle made again so far (after a transient failure,
    /// a resumed body or upload included).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// The failure of reading an answer's body (`e`, after `context`): a read
/// the deadlines abandoned (too slow, stalled) says so; any other is a
/// broken connection. Either is worth another try.
pub(crate) fn failed_read(
    method: &'static str,
    url: &str,
    context: &str,
    e: &std::io::Error,
) -> TransportError {
    let message = format!("{context}{e}");
    if pace::below_floor(e) {
        TransportError::Slow {
            method,
            url: url.to_string(),
            message,
            attempts: 1,
        }
    } else {
        TransportError::Connection {
            method,
            url: url.to_string(),
            message,
            attempts: 1,
        }
    }
}

/// `scheme`, host (no brackets) and port of an http(s) URL.
pub fn target(url: &str) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, tail) = v6.split_once(']')?;
        (h, tail.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    Some((scheme, host, port))
}

/// `http://user:pass@proxy:3128` → `http://proxy:3128`: a proxy's
/// password is not for error messages.
fn redact(proxy: &str) -> String {
    match proxy.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => proxy.to_string(),
        },
        None => proxy.rsplit_once('@').map_or(proxy, |(_, h)| h).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_redaction() {
        assert_eq!(
            target("https://r.example/v2/"),
            Some(("https", "r.example", 443))
        );
        assert_eq!(
            target("http://127.0.0.1:5000/x"),
            Some(("http", "127.0.0.1", 5000))
        );
        assert_eq!(target("http://[::1]:8/x"), Some(("http", "::1", 8)));
        assert_eq!(target("ftp://x/"), None);
        assert_eq!(
            redact("http://u:p@proxy.example:3128"),
            "http://proxy.example:3128"
        );
    }

    #[test]
    fn handles_share_the_sender_and_count_retries_apart() {
        let t = Transport::default();
        let other = t.with_retry(RetryPolicy {
            retries: 0,
            backoff: Duration::ZERO,
        });
        assert!(Arc::ptr_eq(&t.sender, &other.sender));
        assert_eq!(other.policy().retries, 0);
        assert_eq!(t.policy().retries, NetworkSettings::default().retries);
        assert!(!Arc::ptr_eq(&t.retries, &other.retries));
    }
}
