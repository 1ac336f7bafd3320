//! One registry's HTTP: authentication (anonymous, basic, bearer tokens
//! cached per scope), redirects that never carry credentials to another
//! origin, and errors that say what the registry said and what to do.
//! Requests go out through the crate's transport, whose one retry loop
//! sends them again after transient failures.
//!
//! Loopback registries are spoken to over plain HTTP by default (as
//! before), but one that answers the way a TLS server answers plain HTTP
//! is upgraded to HTTPS for the rest of the run (`speaks_tls`); the first
//! request of a client carries no credentials, so nothing is lost in the
//! clear by trying.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use super::auth::{find_credentials, parse_challenge, Challenge, Credentials};
use super::reference::{base_url, origin};
use super::token::{AuthState, Identity, TokenRequest};
use super::{error_codes, RegistryError, RegistrySettings, ERROR_BODY_LIMIT};
use crate::transport::{self, transient_status, Retry, Transport, TransportError};

/// Redirects followed for one request (blob GETs go to storage once).
const MAX_REDIRECTS: u32 = 5;

pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A client for one registry (`host[:port]`), holding its credentials and
/// the tokens obtained so far. Safe to share between threads.
pub struct Client {
    pub(super) transport: Transport,
    pub(super) settings: RegistrySettings,
    pub(super) registry: String,
    pub(super) base: String,
    pub(super) credentials: Option<(Credentials, String)>,
    pub(super) auth: AuthState,
    /// A registry reached over plain HTTP by default (loopback) turned out
    /// to speak TLS: its URLs are sent as https from then on.
    pub(super) upgraded: AtomicBool,
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
    /// No answer; the transport says whether another try may help.
    Transport(TransportError),
    /// A 429 or 5xx answer: worth another try. Boxed: an answer is large.
    Status(Box<ureq::Response>),
    /// Not worth another try.
    Fatal(RegistryError),
}

impl Retry for Failure {
    fn transient(&self) -> bool {
        match self {
            Failure::Transport(e) => e.transient(),
            Failure::Status(_) => true,
            Failure::Fatal(_) => false,
        }
    }
    fn gave_up(self, attempts: u32) -> Self {
        match self {
            Failure::Transport(e) => Failure::Transport(e.gave_up(attempts)),
            other => other,
        }
    }
}

/// Resolves a `Location` header against the URL that sent it.
pub fn resolve(base: &str, location: &str) -> String {
    transport::resolve_location(base, location)
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
        .map_err(|e| {
            RegistryError::from(TransportError::Connection {
                method: "GET",
                url: url.to_string(),
                message: format!("reading the answer: {e}"),
                attempts: 1,
            })
        })?;
    if body.len() as u64 > limit {
        return Err(too_large(body.len() as u64));
    }
    Ok(body)
}

/// A 400 in HTTP/1.0 without a single header: how Go's TLS servers
/// answer a plain-HTTP request ("Client sent an HTTP request to an HTTPS
/// server."); an HTTP server's own 400 has at least a Date.
fn bare_400(resp: &ureq::Response) -> bool {
    resp.status() == 400 && resp.http_version() == "HTTP/1.0" && resp.headers_names().is_empty()
}

impl Client {
    /// A client for `registry` (`host[:port]`); reads the auth files the
    /// settings name now, so a broken one is reported before any upload.
    pub fn new(registry: &str, settings: &RegistrySettings) -> Result<Client, RegistryError> {
        let credentials = find_credentials(registry, &settings.auth_files)?;
        Ok(Client {
            transport: Transport::new(&settings.network)?,
            settings: settings.clone(),
            registry: registry.to_string(),
            base: base_url(registry, settings.insecure),
            credentials,
            auth: AuthState::default(),
            upgraded: AtomicBool::new(false),
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// The registry's origin as requests are sent to it now.
    fn current_base(&self) -> String {
        match self.base.strip_prefix("http://") {
            Some(rest) if self.upgraded.load(Ordering::Relaxed) => format!("https://{rest}"),
            _ => self.base.clone(),
        }
    }

    /// `base/v2/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.current_base())
    }

    /// Requests sent again so far.
    pub fn retries(&self) -> u64 {
        self.transport.retries()
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends `req`, authenticating, following redirects and retrying
    /// transient failures (the transport's one loop). Returns the answer
    /// when it is 2xx or one of `req.allow`; any other status is an
    /// error naming the URL, the status and the registry's error codes.
    pub(crate) fn send(&self, req: &Req) -> Result<ureq::Response, RegistryError> {
        let result = self.transport.retrying(req.retry, || {
            let resp = self.attempt(req)?;
            let status = resp.status();
            if !(200..300).contains(&status)
                && !req.allow.contains(&status)
                && transient_status(status)
            {
                return Err(Failure::Status(Box::new(resp)));
            }
            Ok(resp)
        });
        let resp = match result {
            Ok(resp) => resp,
            Err(Failure::Status(resp)) => *resp,
            Err(Failure::Transport(e)) => return Err(e.into()),
            Err(Failure::Fatal(e)) => return Err(e),
        };
        let status = resp.status();
        if (200..300).contains(&status) || req.allow.contains(&status) {
            return Ok(resp);
        }
        Err(self.status_error(req.method, &req.url, resp))
    }

    /// Whether a plain-HTTP answer says the server speaks TLS; if so (and
    /// the registry is spoken to over HTTP only by the loopback default,
    /// not by --insecure), its URLs are upgraded to https for the rest of
    /// the run. Go's TLS servers, docker-registry among them, answer plain
    /// HTTP with a bare `HTTP/1.0 400` without headers (see [`bare_400`]);
    /// others send a TLS alert, which is no HTTP status line. Any other
    /// answer is handed back untouched.
    fn speaks_tls(
        &self,
        url: &str,
        answer: Result<ureq::Response, &TransportError>,
    ) -> Result<(), Option<Box<ureq::Response>>> {
        let plain = !self.settings.insecure
            && self.base.starts_with("http://")
            && url.starts_with(&format!("{}/", self.base));
        if plain && self.upgraded.load(Ordering::Relaxed) {
            // Another request, sent at the same time as this one, found
            // out first: send this one again as https.
            return Ok(());
        }
        let candidate = plain;
        let tls = match answer {
            Ok(resp) if !candidate => return Err(Some(Box::new(resp))),
            Ok(_) => true,
            Err(TransportError::Protocol { message, .. }) => {
                candidate && message.starts_with("Bad Status")
            }
            Err(_) => false,
        };
        if !tls {
            return Err(None);
        }
        self.upgraded.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// `url` as it is sent now: upgraded to https when the registry turned
    /// out to speak TLS.
    fn current(&self, url: &str) -> String {
        match url.strip_prefix(&format!("{}/", self.base)) {
            Some(rest)
                if self.upgraded.load(Ordering::Relaxed) && self.base.starts_with("http://") =>
            {
                format!("{}/{rest}", self.current_base())
            }
            _ => url.to_string(),
        }
    }

    /// One attempt: answers a 401 challenge once, follows redirects of
    /// GET/HEAD. Authorization goes only to the registry's own origin.
    pub(crate) fn attempt(&self, req: &Req) -> Result<ureq::Response, Failure> {
        let mut url = self.current(&req.url);
        let mut challenged = false;
        let mut redirects = 0;
        loop {
            let registry_origin = origin(&self.current_base());
            let mut sent = None;
            let own = req.registry_auth && origin(&url) == registry_origin;
            let mut headers: Vec<(&str, String)> =
                req.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
            if own {
                let who = self.identity();
                let authorization = self
                    .auth
                    .authorization(&who, &req.scopes, &|t| self.fetch_token(t))
                    .map_err(Failure::Fatal)?;
                if let Some(a) = authorization {
                    sent = Some(a.clone());
                    headers.push(("Authorization", a));
                }
            }
            let result = self.transport.send(&transport::Request {
                method: req.method,
                url: &url,
                headers: &headers,
                body: req.body,
            });
            let resp = match result {
                Ok(resp) if own && bare_400(&resp) => match self.speaks_tls(&url, Ok(resp)) {
                    Ok(()) => {
                        url = self.current(&url);
                        continue;
                    }
                    Err(resp) => *resp.expect("an answer is handed back"),
                },
                Ok(resp) => resp,
                Err(e) if own && self.speaks_tls(&url, Err(&e)).is_ok() => {
                    url = self.current(&url);
                    continue;
                }
                Err(e) => return Err(Failure::Transport(e)),
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
                            .answer_challenge(
                                &self.identity(),
                                c,
                                &req.scopes,
                                sent.as_deref(),
                                &|t| self.fetch_token(t),
                            )
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

    /// A token service's answer (status and the start of its body) to
    /// `t`, sent the way every request is, retries included.
    fn fetch_token(&self, t: &TokenRequest) -> Result<(u16, Vec<u8>), RegistryError> {
        let method = if t.form.is_some() { "POST" } else { "GET" };
        let mut req = Req::new(method, t.url.clone(), Vec::new())
            .without_registry_auth()
            .allow(&[400, 401, 403, 404, 405]);
        if let Some(b) = &t.basic {
            req = req.header("Authorization", b.clone());
        }
        if let Some(form) = &t.form {
            req = req
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.as_bytes());
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
                Some((c, from)) => format!(
                    "the registry refused user `{}` from the {from}; check those credentials",
                    c.username,
                ),
                None => format!(
                    "the registry wants credentials and none for {} were found in the auth files (nor through their credential helpers); log in (e.g. `podman login {}`) or pass an auth file",
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
