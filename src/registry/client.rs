//! One registry's HTTP: authentication (anonymous, basic, bearer tokens
//! cached per scope), redirects that never carry credentials to another
//! origin, retries with backoff, and errors that say what the registry
//! said and what to do.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::auth::{find_credentials, parse_challenge, Challenge, Credentials};
use super::reference::{base_url, origin};
use super::token::{AuthState, Identity};
use super::{error_codes, RegistryError, RegistrySettings, ERROR_BODY_LIMIT};

/// Redirects followed for one request (blob GETs go to storage once).
const MAX_REDIRECTS: u32 = 5;
const BACKOFF_CAP: Duration = Duration::from_secs(30);

pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A client for one registry (`host[:port]`), holding its credentials and
/// the tokens obtained so far. Safe to share between threads.
pub struct Client {
    pub(super) agent: ureq::Agent,
    pub(super) settings: RegistrySettings,
    pub(super) registry: String,
    pub(super) base: String,
    pub(super) credentials: Option<(Credentials, PathBuf)>,
    pub(super) auth: AuthState,
    pub(super) retries: AtomicU64,
}

/// One request as the push and pull code describe it.
pub(crate) struct Req<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<&'a [u8]>,
    pub scopes: Vec<String>,
    /// Sent again after a dropped connection or a 5xx/429 answer. Off for
    /// requests whose repetition the caller must steer (upload chunks).
    pub retry: bool,
    /// Non-2xx statuses the caller handles itself (e.g. 404 on HEAD).
    pub allow: &'a [u16],
    /// Goes with the registry's authorization and answers its challenges.
    /// Off for the token service, whose authorization is the caller's.
    pub registry_auth: bool,
}

impl<'a> Req<'a> {
    pub fn new(method: &'static str, url: String, scopes: Vec<String>) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: None,
            scopes,
            retry: true,
            allow: &[],
            registry_auth: true,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn allow(mut self, statuses: &'a [u16]) -> Self {
        self.allow = statuses;
        self
    }

    pub(crate) fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }

    pub(crate) fn without_registry_auth(mut self) -> Self {
        self.registry_auth = false;
        self
    }
}

/// How one attempt ended when it got no usable answer.
pub(crate) enum Failure {
    /// The connection failed or dropped: worth another try.
    Transport(String),
    /// Not worth another try.
    Fatal(RegistryError),
}

/// Resolves a `Location` header against the URL that sent it (RFC 3986
/// §5.2, the forms registries use: absolute, scheme-relative, absolute
/// path, relative path).
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme = base.split_once("://").map_or("https", |(s, _)| s);
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{}{location}", origin(base));
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    match path.rfind('/') {
        Some(i) if i + 1 > origin(base).len() => format!("{}{location}", &path[..=i]),
        _ => format!("{}/{location}", origin(base)),
    }
}

/// A transport failure without the URL (the error names it already).
pub(super) fn transport_message(t: &ureq::Transport) -> String {
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

pub(super) fn transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Reads an answer's body, refusing more than `limit` bytes (a manifest,
/// an index): the registry is not trusted to be brief.
pub(crate) fn read_limited(
    resp: ureq::Response,
    limit: u64,
    url: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = |n: u64| {
        RegistryError::Protocol {
        url: url.to_string(),
        message: format!("the answer is {n} bytes or more, beyond the {limit}-byte limit for a manifest or index"),
    }
    };
    if let Some(n) = resp
        .header("Content-Length")
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        if n > limit {
            return Err(too_large(n));
        }
    }
    let mut body = Vec::new();
    resp.into_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| RegistryError::Transport {
            method: "GET",
            url: url.to_string(),
            message: e.to_string(),
            attempts: 1,
        })?;
    if body.len() as u64 > limit {
        return Err(too_large(body.len() as u64));
    }
    Ok(body)
}

impl Client {
    /// A client for `registry` (`host[:port]`); reads the auth files the
    /// settings name now, so a broken one is reported before any upload.
    pub fn new(registry: &str, settings: &RegistrySettings) -> Result<Client, RegistryError> {
        let credentials = find_credentials(registry, &settings.auth_files)?;
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(settings.timeout.min(Duration::from_secs(30)))
            .timeout_read(settings.timeout)
            .timeout_write(settings.timeout)
            .user_agent(&settings.user_agent)
            .build();
        Ok(Client {
            agent,
            settings: settings.clone(),
            registry: registry.to_string(),
            base: base_url(registry, settings.insecure),
            credentials,
            auth: AuthState::default(),
            retries: AtomicU64::new(0),
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// `base/v2/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    /// Requests sent again so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Waits before retry number `n` (1-based) and counts it.
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

    /// Sends `req`, authenticating, following redirects and retrying
    /// transient failures. Returns the answer when it is 2xx or one of
    /// `req.allow`; any other status is an error naming the URL, the
    /// status and the registry's error codes.
    pub(crate) fn send(&self, req: &Req) -> Result<ureq::Response, RegistryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let can_retry = req.retry && attempt <= self.settings.retries;
            match self.attempt(req) {
                Ok(resp) => {
                    let status = resp.status();
                    if (200..300).contains(&status) || req.allow.contains(&status) {
                        return Ok(resp);
                    }
                    if transient(status) && can_retry {
                        self.back_off(attempt);
                        continue;
                    }
                    return Err(self.status_error(req.method, &req.url, resp));
                }
                Err(Failure::Transport(_)) if can_retry => self.back_off(attempt),
                Err(Failure::Transport(message)) => {
                    return Err(RegistryError::Transport {
                        method: req.method,
                        url: req.url.clone(),
                        message,
                        attempts: attempt,
                    })
                }
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }

    /// One attempt: answers a 401 challenge once, follows redirects of
    /// GET/HEAD. Authorization goes only to the registry's own origin.
    pub(crate) fn attempt(&self, req: &Req) -> Result<ureq::Response, Failure> {
        let mut url = req.url.clone();
        let mut challenged = false;
        let mut redirects = 0;
        let registry_origin = origin(&self.base);
        loop {
            let own = req.registry_auth && origin(&url) == registry_origin;
            let mut r = self.agent.request(req.method, &url);
            for (k, v) in &req.headers {
                r = r.set(k, v);
            }
            if own {
                let who = self.identity();
                let authorization = self
                    .auth
                    .authorization(&who, &req.scopes, &|url, basic| {
                        self.fetch_token(url, basic)
                    })
                    .map_err(Failure::Fatal)?;
                if let Some(a) = authorization {
                    r = r.set("Authorization", &a);
                }
            }
            let result = match req.body {
                Some(b) => r.send_bytes(b),
                None => r.call(),
            };
            let resp = match result {
                Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
                Err(ureq::Error::Transport(t)) => {
                    return Err(Failure::Transport(transport_message(&t)))
                }
            };
            let status = resp.status();
            if status == 401 && own && !challenged {
                challenged = true;
                if let Some(h) = resp.header("WWW-Authenticate") {
                    if let Some(c) = parse_challenge(h) {
                        // Basic without credentials: asking again cannot help.
                        if c == Challenge::Basic && self.credentials.is_none() {
                            return Ok(resp);
                        }
                        self.auth
                            .answer_challenge(&self.identity(), c, &req.scopes, &|url, basic| {
                                self.fetch_token(url, basic)
                            })
                            .map_err(Failure::Fatal)?;
                        continue;
                    }
                }
                return Ok(resp);
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                if !matches!(req.method, "GET" | "HEAD") {
                    return Err(Failure::Fatal(RegistryError::Protocol {
                        url,
                        message: format!(
                            "the registry redirected a {} ({status}); stele follows redirects only for downloads",
                            req.method
                        ),
                    }));
                }
                let Some(location) = resp.header("Location") else {
                    return Err(Failure::Fatal(RegistryError::Protocol {
                        url,
                        message: format!("the registry answered {status} without a Location"),
                    }));
                };
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(Failure::Fatal(RegistryError::Protocol {
                        url,
                        message: format!("more than {MAX_REDIRECTS} redirects"),
                    }));
                }
                url = resolve(&url, location);
                continue;
            }
            return Ok(resp);
        }
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            registry: &self.registry,
            credentials: self.credentials.as_ref(),
            insecure: self.settings.insecure,
        }
    }

    /// A token service's answer (status and the start of its body) to a
    /// GET of `url`, sent the way every request is, retries included.
    fn fetch_token(
        &self,
        url: &str,
        basic: Option<String>,
    ) -> Result<(u16, Vec<u8>), RegistryError> {
        let mut req = Req::new("GET", url.to_string(), Vec::new())
            .without_registry_auth()
            .allow(&[400, 401, 403, 404, 405]);
        if let Some(b) = basic {
            req = req.header("Authorization", b);
        }
        let resp = self.send(&req)?;
        let status = resp.status();
        let mut body = Vec::new();
        let _ = resp
            .into_reader()
            .take(ERROR_BODY_LIMIT)
            .read_to_end(&mut body);
        Ok((status, body))
    }

    /// An error for a non-2xx answer: URL, status, the registry's error
    /// codes, and advice.
    pub(crate) fn status_error(
        &self,
        method: &'static str,
        url: &str,
        resp: ureq::Response,
    ) -> RegistryError {
        let status = resp.status();
        let status_text = resp.status_text().to_string();
        let mut body = Vec::new();
        let _ = resp
            .into_reader()
            .take(ERROR_BODY_LIMIT)
            .read_to_end(&mut body);
        let hint = match status {
            401 => match &self.credentials {
                Some((c, file)) => format!(
                    "the registry refused user `{}` from {}; check those credentials",
                    c.username,
                    file.display()
                ),
                None => format!(
                    "the registry wants credentials and none for {} were found in the auth files; log in (e.g. `podman login {}`) or pass an auth file",
                    self.registry, self.registry
                ),
            },
            403 => "the credentials in use may not do this here; check the account's permissions for this repository".into(),
            404 => "the repository, tag or digest does not exist there; check the reference".into(),
            405 => "the registry does not allow this (it may be read-only or a pull-through cache)".into(),
            413 => "the registry refused the size of the request; try a smaller chunk size".into(),
            429 => "the registry is rate-limiting; try again later".into(),
            _ => String::new(),
        };
        RegistryError::Status {
            method,
            url: url.to_string(),
            status,
            reason: status_text,
            codes: error_codes(&body),
            hint: if hint.is_empty() {
                hint
            } else {
                format!("; {hint}")
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::reference::query_escape;

    #[test]
    fn resolves_locations() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/x?s=1";
        assert_eq!(
            resolve(base, "https://other.example/p"),
            "https://other.example/p"
        );
        assert_eq!(resolve(base, "//other.example/p"), "http://other.example/p");
        assert_eq!(
            resolve(base, "/v2/a/blobs/uploads/y?_state=z"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/y?_state=z"
        );
        assert_eq!(
            resolve(base, "y"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/y"
        );
        assert_eq!(
            origin("HTTP://Host.example:5000/v2/"),
            "http://host.example:5000"
        );
    }

    #[test]
    fn error_codes_from_the_registry_json() {
        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        assert_eq!(
            error_codes(body),
            ": DENIED: requested access to the resource is denied"
        );
        assert_eq!(error_codes(b""), "");
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
