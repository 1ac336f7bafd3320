//! One registry's HTTP: the registry layer of the crate's transport
//! (`transport`'s module doc has the layers below). A request passes, top
//! down, through:
//!
//! - redirects ([`Client::exchange`]): a GET or HEAD follows them (blob
//!   downloads go to storage); any other method that is redirected is an
//!   error;
//! - authentication (`Client::authorized`): the registry's authorization
//!   (anonymous, basic, bearer tokens cached per scope, `token`) goes only
//!   to the registry's own origin, never to a host a redirect names, and
//!   a 401 challenge is answered once;
//! - the loopback TLS upgrade (`upgrade`);
//! - the transport's retry layer and base sender.
//!
//! Errors say what the registry said and what to do.

use std::io::Read;

use super::auth::{find_credentials, parse_challenge, Challenge, Credentials};
use super::reference::base_url;
use super::token::{AuthState, Identity, TokenRequest};
use super::upgrade::TlsUpgrade;
use super::{error_codes, RegistryError, RegistrySettings, ERROR_BODY_LIMIT};
use crate::transport::{
    failed_read, follow_redirects, is_redirect, Budget, Request, Transport, MAX_REDIRECTS,
};

pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A client for one registry (`host[:port]`), holding its credentials and
/// the tokens obtained so far. Safe to share between threads.
pub struct Client {
    /// The run's transport, counting this client's retries apart.
    transport: Transport,
    settings: RegistrySettings,
    registry: String,
    credentials: Option<(Credentials, String)>,
    auth: AuthState,
    tls: TlsUpgrade,
}

/// One request as the push and pull code describe it.
pub(crate) struct Req<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<&'a [u8]>,
    pub scopes: Vec<String>,
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

    pub(crate) fn without_registry_auth(mut self) -> Self {
        self.registry_auth = false;
        self
    }
}

/// Reads an answer's body, refusing more than `limit` bytes (a manifest,
/// an index): the registry is not trusted to be brief. The limit is the
/// one every source holds documents to; past it, the error says so as
/// they all do.
pub(crate) fn read_limited(
    resp: ureq::Response,
    limit: u64,
    url: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = |n: u64| RegistryError::Limit {
        reference: url.to_string(),
        error: crate::oci::media::LimitError::TooLarge {
            what: "manifest or index",
            name: url.rsplit('/').next().unwrap_or(url).to_string(),
            size: n,
            limit,
        },
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
        .map_err(|e| RegistryError::from(failed_read("GET", url, "reading the answer: ", &e)))?;
    if body.len() as u64 > limit {
        return Err(too_large(body.len() as u64));
    }
    Ok(body)
}

/// A document a registry answered with, read whole.
pub(crate) struct Document {
    pub status: u16,
    /// `Content-Type` without parameters.
    pub content_type: Option<String>,
    /// `Docker-Content-Digest`, as the registry wrote it.
    pub digest: Option<String>,
    /// The body; empty for an allowed status that is not 2xx.
    pub bytes: Vec<u8>,
}

/// Reads and drops what is left of a body the caller has no use for (up
/// to a bound), so its connection goes back to the pool.
pub(crate) fn drain(resp: ureq::Response) {
    let _ = std::io::copy(
        &mut resp.into_reader().take(ERROR_BODY_LIMIT),
        &mut std::io::sink(),
    );
}

impl Client {
    /// A client for `registry` (`host[:port]`) whose requests go out
    /// through the settings' transport; reads the auth files the settings
    /// name now, so a broken one is reported before any upload.
    pub fn new(registry: &str, settings: &RegistrySettings) -> Result<Client, RegistryError> {
        let credentials = find_credentials(registry, &settings.auth_files, settings.helper_limits)?;
        let transport = &settings.transport;
        Ok(Client {
            transport: transport.with_retry(transport.policy()),
            settings: settings.clone(),
            registry: registry.to_string(),
            credentials,
            auth: AuthState::default(),
            tls: TlsUpgrade::new(
                base_url(
                    registry,
                    settings.insecure || settings.plain_allowed(registry),
                ),
                settings.insecure,
            ),
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// `base/v2/<path>`, at the registry's origin as requests go to it now.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.tls.base())
    }

    /// Requests this client sent again so far.
    pub fn retries(&self) -> u64 {
        self.transport.retries()
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends `req` through every layer, within a budget of its own: sent
    /// again after a dropped connection or a 5xx/429 answer. Returns the
    /// answer when it is 2xx or one of `req.allow`; any other status is an
    /// error naming the URL, the status and the registry's error codes.
    pub(crate) fn send(&self, req: &Req) -> Result<ureq::Response, RegistryError> {
        let resp = self.exchange(&self.transport.budget(true), req)?;
        let status = resp.status();
        if (200..300).contains(&status) || req.allow.contains(&status) {
            return Ok(resp);
        }
        Err(self.status_error(req.method, &req.url, resp))
    }

    /// A document (manifest, index, referrers list) `req` names, read
    /// whole up to `limit` bytes. The request and the reading of its body
    /// are one attempt, made again within one budget when either fails
    /// transiently: a body that breaks off, stalls or trickles below the
    /// floor is asked for again, as a blob's is. A status in `req.allow`
    /// that is not 2xx comes back with no body.
    pub(crate) fn fetch_document(&self, req: &Req, limit: u64) -> Result<Document, RegistryError> {
        let budget = self.transport.budget(true);
        self.transport.retrying_within(&budget, || {
            let resp = self.exchange(&budget, req)?;
            let status = resp.status();
            if !(200..300).contains(&status) {
                if req.allow.contains(&status) {
                    drain(resp);
                    return Ok(Document {
                        status,
                        content_type: None,
                        digest: None,
                        bytes: Vec::new(),
                    });
                }
                return Err(self.status_error(req.method, &req.url, resp));
            }
            let content_type = resp
                .header("Content-Type")
                .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
            let digest = resp
                .header("Docker-Content-Digest")
                .map(|d| d.trim().to_string());
            let bytes = read_limited(resp, limit, &req.url)?;
            Ok(Document {
                status,
                content_type,
                digest,
                bytes,
            })
        })
    }

    /// The redirect layer: `req` answered, whatever the status, within
    /// `budget`: the caller's, who may share it with more of one operation,
    /// or give one attempt to a request whose repetition it steers (an
    /// upload's chunks). GET and HEAD follow redirects, each hop through
    /// the auth layer.
    pub(crate) fn exchange(
        &self,
        budget: &Budget,
        req: &Req,
    ) -> Result<ureq::Response, RegistryError> {
        let download = matches!(req.method, "GET" | "HEAD");
        let resp = if download {
            follow_redirects(
                &req.url,
                |url| self.authorized(budget, req, url),
                |url| RegistryError::Protocol {
                    url,
                    message: format!("more than {MAX_REDIRECTS} redirects"),
                },
            )?
        } else {
            self.authorized(budget, req, &req.url)?
        };
        let status = resp.status();
        if !is_redirect(status) {
            return Ok(resp);
        }
        let message = if download {
            format!("the registry answered {status} without a Location")
        } else {
            format!(
                "the registry redirected a {} ({status}); stele follows redirects only for downloads",
                req.method
            )
        };
        Err(RegistryError::Protocol {
            url: req.url.clone(),
            message,
        })
    }

    /// The auth layer: to the registry's own origin, `req` goes with the
    /// registry's authorization, and a 401 challenge is answered once
    /// (then sent again). To any other host (storage a redirect names),
    /// and for the token service, nothing is added.
    fn authorized(
        &self,
        budget: &Budget,
        req: &Req,
        url: &str,
    ) -> Result<ureq::Response, RegistryError> {
        if !req.registry_auth || !self.tls.own(url) {
            return self.upgrading(budget, req, url, None);
        }
        let who = self.identity();
        let fetch = |t: &TokenRequest| self.fetch_token(t);
        let sent = self.auth.authorization(&who, &req.scopes, &fetch)?;
        let resp = self.upgrading(budget, req, url, sent.as_deref())?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let Some(challenge) = resp.header("WWW-Authenticate").and_then(parse_challenge) else {
            return Ok(resp);
        };
        // Basic without credentials: asking again cannot help.
        if challenge == Challenge::Basic && self.credentials.is_none() {
            return Ok(resp);
        }
        self.auth
            .answer_challenge(&who, challenge, &req.scopes, sent.as_deref(), &fetch)?;
        let again = self.auth.authorization(&who, &req.scopes, &fetch)?;
        self.upgrading(budget, req, url, again.as_deref())
    }

    /// Hands one hop, with `authorization`, to the TLS-upgrade layer.
    fn upgrading(
        &self,
        budget: &Budget,
        req: &Req,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<ureq::Response, RegistryError> {
        let mut headers: Vec<(&str, String)> =
            req.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
        if let Some(a) = authorization {
            headers.push(("Authorization", a.to_string()));
        }
        let request = Request {
            method: req.method,
            url,
            headers: &headers,
            body: req.body,
        };
        Ok(self.tls.send(&self.transport, budget, &request)?)
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            registry: &self.registry,
            credentials: self.credentials.as_ref(),
            insecure: self.settings.insecure || self.settings.plain_allowed(&self.registry),
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
    use crate::registry::reference::{origin, query_escape};
    use crate::transport::test_server::{Answer, Scripted};

    fn client_with_basic_credentials(host: &str, dir: &std::path::Path) -> Client {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:pw");
        let file = dir.join("auth.json");
        std::fs::write(
            &file,
            format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}"}}}}}}"#),
        )
        .unwrap();
        let settings = RegistrySettings {
            auth_files: vec![file],
            ..RegistrySettings::default()
        };
        Client::new(host, &settings).unwrap()
    }

    #[test]
    fn credentials_go_to_the_registry_after_its_challenge_and_never_where_it_redirects() {
        let storage = Scripted::start(vec![Answer::status(200, "blob")]);
        let registry = Scripted::start(vec![
            Answer::status(401, "").header("WWW-Authenticate", r#"Basic realm="r""#),
            Answer::redirect(307, &storage.url("/x")),
            Answer::redirect(307, "/elsewhere"),
        ]);
        let host = registry.url("").trim_start_matches("http://").to_string();
        let dir = tempfile::tempdir().unwrap();
        let client = client_with_basic_credentials(&host, dir.path());
        let url = client.url("a/blobs/sha256:x");
        let resp = client
            .send(&Req::new("GET", url.clone(), vec![pull_scope("a")]))
            .unwrap();
        assert_eq!(resp.into_string().unwrap(), "blob");
        let asked: Vec<Option<String>> = registry
            .log()
            .iter()
            .map(|l| l.header("authorization").map(str::to_string))
            .collect();
        assert_eq!(asked.len(), 2);
        assert_eq!(asked[0], None, "the first request goes anonymous");
        assert!(asked[1].as_deref().unwrap().starts_with("Basic "));
        let at_storage = storage.log();
        assert_eq!(at_storage.len(), 1);
        assert_eq!(at_storage[0].header("authorization"), None);

        // Only downloads follow redirects.
        let e = client
            .send(&Req::new("PUT", url, vec![push_scope("a")]).body(b"x"))
            .unwrap_err();
        assert!(e.to_string().contains("redirected a PUT"), "{e}");
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
