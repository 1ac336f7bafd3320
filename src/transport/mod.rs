//! The one HTTP transport: apt fetching and the registry client both send
//! every request through a [`Transport`], so timeouts, retries, proxies
//! and TLS are decided in one place.
//!
//! - what is worth another try: a refused, reset or stalled connection, a
//!   short read, 429 and 5xx answers. Never a certificate or other TLS
//!   failure, an unknown host name, or another 4xx: asking again gives
//!   the same answer, only later.
//! - [`Transport::retrying`] is the only retry loop: the callers describe
//!   one attempt, the loop bounds how many there are and waits between
//!   them (doubling, capped).
//! - each request picks its agent by target: its TLS configuration
//!   (`tls`: CAs and client certificate for that host) and its proxy
//!   (`proxy`: `NO_PROXY` decides per host).
//!
//! Nothing here reads the environment; [`NetworkSettings`] comes from the
//! CLI.

mod proxy;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub use proxy::ProxySettings;
pub use tls::TlsSettings;

const BACKOFF_CAP: Duration = Duration::from_secs(30);

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
    /// A read or write that makes no progress for this long is abandoned
    /// (a stalled body), and the attempt fails transiently.
    pub idle_timeout: Duration,
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
}

impl TransportError {
    /// Whether another attempt may succeed.
    pub(crate) fn transient(&self) -> bool {
        matches!(self, TransportError::Connection { .. })
    }
}

/// Statuses worth asking again for: rate limiting and server trouble.
pub(crate) fn transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// An attempt's failure, as [`Transport::retrying`] sees it.
pub(crate) trait Retry {
    /// Another attempt may succeed.
    fn transient(&self) -> bool;
    /// The final failure after `attempts` attempts (to say so).
    fn gave_up(self, attempts: u32) -> Self;
}

impl Retry for TransportError {
    fn transient(&self) -> bool {
        TransportError::transient(self)
    }
    fn gave_up(self, n: u32) -> Self {
        match self {
            TransportError::Connection {
                method,
                url,
                message,
                ..
            } => TransportError::Connection {
                method,
                url,
                message,
                attempts: n,
            },
            other => other,
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

/// One request: no retries, no redirects followed.
pub struct Request<'a> {
    pub method: &'static str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: Option<&'a [u8]>,
}

/// Sends requests with one configuration. Safe to share between threads.
pub(crate) struct Transport {
    settings: NetworkSettings,
    /// The CAs every host is checked against, read when the first HTTPS
    /// request needs them: a warm build that sends nothing reads none of
    /// the system bundle.
    roots: std::sync::OnceLock<rustls::RootCertStore>,
    /// Agents by `scheme://host:port`: each has that host's TLS
    /// configuration and proxy.
    agents: Mutex<BTreeMap<String, (ureq::Agent, Option<String>)>>,
    retries: AtomicU64,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for `settings`. The CA files they name are read once,
    /// before the first HTTPS request (so a broken one is reported before
    /// anything is sent to a TLS host).
    pub fn new(settings: &NetworkSettings) -> Result<Transport, TransportError> {
        Ok(Transport {
            roots: std::sync::OnceLock::new(),
            settings: settings.clone(),
            agents: Mutex::new(BTreeMap::new()),
            retries: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// Attempts made again so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The agent for `url` and the proxy it uses.
    fn agent(
        &self,
        method: &'static str,
        url: &str,
    ) -> Result<(ureq::Agent, Option<String>), TransportError> {
        let Some((scheme, host, port)) = target(url) else {
            return Err(TransportError::Protocol {
                method,
                url: url.to_string(),
                message: "not an http:// or https:// URL".into(),
            });
        };
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let key = format!("{scheme}://{host}:{port}");
        if let Some(a) = self.agents.lock().expect("agents lock").get(&key) {
            return Ok(a.clone());
        }
        let mut builder = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(self.settings.connect_timeout)
            .timeout_read(self.settings.idle_timeout)
            .timeout_write(self.settings.idle_timeout)
            .user_agent(&self.settings.user_agent);
        let proxy = self
            .settings
            .proxy
            .for_target(&scheme, &host, port)
            .map(str::to_string);
        if let Some(p) = &proxy {
            let parsed = ureq::Proxy::new(p).map_err(|e| TransportError::Proxy {
                method,
                url: url.to_string(),
                proxy: redact(p),
                message: format!("not a proxy URL: {e}"),
            })?;
            builder = builder.proxy(parsed);
        }
        if scheme == "https" {
            // certs.d names folders as references write the registry:
            // `host:port`, and for port 443 `host` (or `host:443`).
            let named = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            let mut folders = vec![format!("{named}:{port}")];
            if port == 443 {
                folders.insert(0, named);
            }
            let roots = match self.roots.get() {
                Some(r) => r,
                None => {
                    let loaded = tls::base_roots(&self.settings.tls)?;
                    self.roots.get_or_init(|| loaded)
                }
            };
            builder = builder.tls_config(tls::client_config(&self.settings.tls, roots, &folders)?);
        }
        let agent = (builder.build(), proxy);
        self.agents
            .lock()
            .expect("agents lock")
            .insert(key, agent.clone());
        Ok(agent)
    }

    /// Sends one request. Any HTTP answer is returned, whatever its
    /// status; a failure to get one is classified (see the module doc).
    pub fn send(&self, req: &Request) -> Result<ureq::Response, TransportError> {
        let (agent, proxy) = self.agent(req.method, req.url)?;
        if let Some(p) = &proxy {
            let plain = req
                .url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
            if plain
                && req
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            {
                return Err(TransportError::CredentialsToProxy {
                    method: req.method,
                    url: req.url.to_string(),
                    proxy: redact(p),
                });
            }
        }
        let mut r = agent.request(req.method, req.url);
        for (k, v) in req.headers {
            r = r.set(k, v);
        }
        let result = match req.body {
            Some(b) => r.send_bytes(b),
            None => r.call(),
        };
        match result {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => Ok(resp),
            Err(ureq::Error::Transport(t)) => Err(classify(req.method, req.url, proxy, &t)),
        }
    }

    /// A GET that follows redirects (up to 5), each hop sent on its own
    /// host's agent, with no retries. For mirrors, which carry no
    /// credentials.
    pub(crate) fn get_following(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<ureq::Response, TransportError> {
        let mut url = url.to_string();
        for _ in 0..=5 {
            let resp = self.send(&Request {
                method: "GET",
                url: &url,
                headers,
                body: None,
            })?;
            if !matches!(resp.status(), 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let Some(location) = resp.header("Location") else {
                return Ok(resp);
            };
            url = resolve_location(&url, location);
        }
        Err(TransportError::Protocol {
            method: "GET",
            url,
            message: "more than 5 redirects".into(),
        })
    }

    /// The attempts one operation may make: `retries + 1`, or 1 without
    /// `retry`. Retries of the operation and resumed bodies inside it
    /// draw on the same budget, so an operation is bounded as a whole.
    pub fn budget(&self, retry: bool) -> Budget {
        Budget {
            left: std::sync::atomic::AtomicU32::new(if retry { self.settings.retries } else { 0 }),
            used: std::sync::atomic::AtomicU32::new(1),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the operation's
    /// budget is spent (`retries + 1` attempts, 1 when `retry` is off),
    /// waiting before each retry. The only retry loop: every caller
    /// describes one attempt.
    pub(crate) fn retrying<T, E: Retry>(
        &self,
        retry: bool,
        op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        self.retrying_within(&self.budget(retry), op)
    }

    /// [`Transport::retrying`] within a budget the caller also hands to
    /// the [`ResumingBody`]s of its attempts.
    pub(crate) fn retrying_within<T, E: Retry>(
        &self,
        budget: &Budget,
        mut op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if e.transient() && budget.take() => self.back_off(budget.used() - 1),
                Err(e) => return Err(e.gave_up(budget.used())),
            }
        }
    }

    /// Waits before retry number `n` (1-based: the attempt after the
    /// first) and counts it.
    pub(crate) fn back_off(&self, n: u32) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let factor = 1u32 << n.saturating_sub(1).min(16);
        std::thread::sleep(
            self.settings
                .backoff
                .saturating_mul(factor)
                .min(BACKOFF_CAP),
        );
    }
}

/// What is left of one operation's attempts (see [`Transport::budget`]).
pub(crate) struct Budget {
    left: std::sync::atomic::AtomicU32,
    used: std::sync::atomic::AtomicU32,
}

impl Budget {
    /// Takes one more attempt, if there is one left.
    pub fn take(&self) -> bool {
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            self.used.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Attempts made so far, the first included.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }
}

/// Asks again for a body from `offset` on (a `Range` request); the
/// answer is used only when it is a `206` starting exactly there.
pub(crate) type Reopen<'a> = dyn FnMut(u64) -> Result<ureq::Response, TransportError> + 'a;

/// An answer's body that, when it stalls (no progress for the idle
/// timeout), breaks off or ends short of its `Content-Length`, asks again
/// for the rest with a `Range` request, where the server said it serves
/// ranges (`Accept-Ranges: bytes`), within the operation's budget. Else
/// the read fails and [`ResumingBody::failure`] says how, so the caller's
/// attempt can fail transiently and the operation start over.
pub(crate) struct ResumingBody<'a> {
    transport: &'a Transport,
    budget: &'a Budget,
    method: &'static str,
    url: String,
    body: Box<dyn std::io::Read + Send>,
    offset: u64,
    length: Option<u64>,
    ranges: bool,
    reopen: Box<Reopen<'a>>,
    failure: Option<TransportError>,
    /// Times the body was picked up again.
    pub resumed: u32,
}

impl<'a> ResumingBody<'a> {
    pub fn new(
        transport: &'a Transport,
        budget: &'a Budget,
        url: &str,
        resp: ureq::Response,
        reopen: Box<Reopen<'a>>,
    ) -> ResumingBody<'a> {
        let ranges = resp
            .header("Accept-Ranges")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("bytes"));
        let length = resp
            .header("Content-Length")
            .and_then(|l| l.trim().parse().ok());
        ResumingBody {
            transport,
            budget,
            method: "GET",
            url: url.to_string(),
            body: Box::new(resp.into_reader()),
            offset: 0,
            length,
            ranges,
            reopen,
            failure: None,
            resumed: 0,
        }
    }

    /// The transient failure that ended reading, if one did.
    pub fn failure(&mut self) -> Option<TransportError> {
        self.failure.take()
    }

    fn broke_off(&self, why: &str) -> TransportError {
        TransportError::Connection {
            method: self.method,
            url: self.url.clone(),
            message: format!("the answer broke off after {} bytes: {why}", self.offset),
            attempts: 1,
        }
    }

    /// Picks the body up at `offset`, or says why it cannot.
    fn resume(&mut self, why: &str) -> Result<(), TransportError> {
        if !self.ranges || !self.budget.take() {
            return Err(self.broke_off(why));
        }
        self.transport.back_off(self.budget.used() - 1);
        let resp = (self.reopen)(self.offset)?;
        let starts_here = resp
            .header("Content-Range")
            .and_then(|r| r.trim().strip_prefix("bytes "))
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(start, _)| start.trim().parse::<u64>().ok() == Some(self.offset));
        if resp.status() != 206 || !starts_here {
            return Err(self.broke_off(&format!(
                "{why}; asked for the rest, the server answered {} without the range",
                resp.status()
            )));
        }
        self.body = Box::new(resp.into_reader());
        self.resumed += 1;
        Ok(())
    }
}

impl std::io::Read for ResumingBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let why = match self.body.read(buf) {
                Ok(0) if self.length.is_some_and(|l| self.offset < l) => {
                    "the connection closed before the end".to_string()
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) => e.to_string(),
            };
            if let Err(failure) = self.resume(&why) {
                let message = failure.to_string();
                self.failure = Some(failure);
                return Err(std::io::Error::other(message));
            }
        }
    }
}

/// A body reader that remembers whether reading failed, so a failure of
/// the network (transient: a reset, a stall past the idle timeout, a body
/// ending short) can be told apart from one of whoever consumes it.
pub(crate) struct TrackedRead<R> {
    inner: R,
    read: u64,
    error: Option<std::io::Error>,
}

impl<R: std::io::Read> TrackedRead<R> {
    pub fn new(inner: R) -> TrackedRead<R> {
        TrackedRead {
            inner,
            read: 0,
            error: None,
        }
    }

    /// The transient failure a read met, if one did.
    pub fn failure(&self, method: &'static str, url: &str) -> Option<TransportError> {
        self.error.as_ref().map(|e| TransportError::Connection {
            method,
            url: url.to_string(),
            message: format!("the answer broke off after {} bytes: {e}", self.read),
            attempts: 1,
        })
    }
}

impl<R: std::io::Read> std::io::Read for TrackedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
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

/// Resolves a `Location` against the URL that sent it (absolute,
/// scheme-relative, absolute path, relative path).
pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let origin = format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    );
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    match path.rfind('/') {
        Some(i) if i + 1 > origin.len() => format!("{}{location}", &path[..=i]),
        _ => format!("{origin}/{location}"),
    }
}

/// The rustls error somewhere in a transport failure's causes.
fn rustls_cause(t: &ureq::Transport) -> Option<rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<rustls::Error>() {
            return Some(e.clone());
        }
        // io::Error's source() skips the error it wraps; look inside.
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(e) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(e.clone());
            }
        }
        cause = c.source();
    }
    None
}

fn message(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

fn classify(
    method: &'static str,
    url: &str,
    proxy: Option<String>,
    t: &ureq::Transport,
) -> TransportError {
    let url_s = url.to_string();
    let host = target(url).map_or_else(String::new, |(_, h, p)| format!("{h}:{p}"));
    if let Some(e) = rustls_cause(t) {
        return match e {
            rustls::Error::InvalidCertificate(problem) => TransportError::Certificate {
                method,
                url: url_s,
                host,
                // rustls words the cases with context (name, expiry) and
                // names the rest (`UnknownIssuer`, `BadSignature`, …).
                problem: problem.to_string(),
            },
            rustls::Error::AlertReceived(alert) => {
                use rustls::AlertDescription as A;
                // What servers send when the client certificate is
                // missing or not one they accept.
                let client_certificate = matches!(
                    alert,
                    A::BadCertificate | A::CertificateRequired | A::UnknownCA | A::AccessDenied
                );
                let problem = if client_certificate {
                    format!("the server refused the handshake ({alert:?}): it wants a client certificate it accepts; put NAME.cert and NAME.key in --cert-dir DIR/{host}/ or /etc/containers/certs.d/{host}/")
                } else {
                    format!("the server ended the handshake with alert {alert:?}")
                };
                TransportError::Tls {
                    method,
                    url: url_s,
                    host,
                    problem,
                }
            }
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                TransportError::Tls {
                    method,
                    url: url_s,
                    host,
                    problem: format!("{e}; the server may not speak TLS on that port (plain HTTP needs an http:// URL or --insecure)"),
                }
            }
            other => TransportError::Tls {
                method,
                url: url_s,
                host,
                problem: other.to_string(),
            },
        };
    }
    match t.kind() {
        ureq::ErrorKind::Dns if proxy.is_none() => TransportError::Dns {
            method,
            url: url_s,
            host,
            message: message(t),
        },
        ureq::ErrorKind::ProxyUnauthorized
        | ureq::ErrorKind::InvalidProxyUrl
        | ureq::ErrorKind::Dns => TransportError::Proxy {
            method,
            url: url_s,
            proxy: proxy.as_deref().map(redact).unwrap_or_default(),
            message: message(t),
        },
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io | ureq::ErrorKind::ProxyConnect => {
            TransportError::Connection {
                method,
                url: url_s,
                message: match &proxy {
                    Some(p) => format!("{} (through the proxy {})", message(t), redact(p)),
                    None => message(t),
                },
                attempts: 1,
            }
        }
        _ => TransportError::Protocol {
            method,
            url: url_s,
            message: message(t),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_locations() {
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
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/x?s=1";
        assert_eq!(resolve_location(base, "/y"), "http://127.0.0.1:5000/y");
        assert_eq!(
            resolve_location(base, "y"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/y"
        );
        assert_eq!(
            resolve_location(base, "//o.example/p"),
            "http://o.example/p"
        );
        assert_eq!(
            redact("http://u:p@proxy.example:3128"),
            "http://proxy.example:3128"
        );
        assert!(transient_status(503) && transient_status(429) && !transient_status(404));
    }

    #[test]
    fn credentials_never_go_in_plain_http_through_a_proxy() {
        let t = Transport::new(&NetworkSettings {
            proxy: ProxySettings {
                http: Some("http://user:pw@127.0.0.1:9".into()),
                https: None,
                no_proxy: vec!["10.0.0.1".into()],
            },
            ..NetworkSettings::default()
        })
        .unwrap();
        let headers = [("Authorization", "Basic eDp5".to_string())];
        let e = t
            .send(&Request {
                method: "GET",
                url: "http://registry.example:5000/v2/",
                headers: &headers,
                body: None,
            })
            .unwrap_err();
        assert!(
            matches!(e, TransportError::CredentialsToProxy { .. }),
            "{e}"
        );
        // The proxy's own password is not repeated.
        assert!(!e.to_string().contains("pw"), "{e}");
        assert!(e.to_string().contains("NO_PROXY"), "{e}");
    }

    #[test]
    fn only_transient_failures_are_tried_again() {
        let t = Transport::new(&NetworkSettings {
            retries: 3,
            backoff: Duration::ZERO,
            ..NetworkSettings::default()
        })
        .unwrap();
        let mut calls = 0;
        let e = t
            .retrying(true, || -> Result<(), TransportError> {
                calls += 1;
                Err(TransportError::Certificate {
                    method: "GET",
                    url: "https://registry.example/v2/".into(),
                    host: "registry.example:443".into(),
                    problem: "UnknownIssuer".into(),
                })
            })
            .unwrap_err();
        assert_eq!(calls, 1, "{e}");
        let mut calls = 0;
        let e = t
            .retrying(true, || -> Result<(), TransportError> {
                calls += 1;
                Err(TransportError::Connection {
                    method: "GET",
                    url: "https://registry.example/v2/".into(),
                    message: "connection refused".into(),
                    attempts: 1,
                })
            })
            .unwrap_err();
        assert_eq!(calls, 4);
        assert!(e.to_string().contains("gave up after 4 attempt(s)"), "{e}");
    }
}
