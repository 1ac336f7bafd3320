//! The base layer: one request, one answer, nothing sent again. What is
//! decided per target lives here: the agent for `scheme://host:port`
//! holds that host's TLS configuration (`tls`), its proxy (`proxy`), the
//! timeouts and the pooled connections; a failure to get an answer is
//! classified into a [`TransportError`] that says whether it is worth
//! another try (the retry layer asks).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use super::{redact, target, tls, NetworkSettings, Request, TransportError};

/// Sends single requests as the settings say. Safe to share between
/// threads; the one [`super::Transport`] of a run holds the one sender.
pub struct Sender {
    settings: NetworkSettings,
    /// The CAs every host is checked against, read when the first HTTPS
    /// request needs them: a warm build that sends nothing reads none of
    /// the system bundle.
    roots: OnceLock<rustls::RootCertStore>,
    /// Agents by `scheme://host:port`, each with that target's TLS
    /// configuration, proxy and pool of connections.
    agents: Mutex<BTreeMap<String, (ureq::Agent, Option<String>)>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Sender {
    pub fn new(settings: NetworkSettings) -> Sender {
        Sender {
            settings,
            roots: OnceLock::new(),
            agents: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// The agent for `url` and the proxy it goes through.
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
            let roots = match self.roots.get() {
                Some(r) => r,
                None => {
                    let loaded = tls::base_roots(&self.settings.tls)?;
                    self.roots.get_or_init(|| loaded)
                }
            };
            builder =
                builder.tls_config(tls::client_config(&self.settings.tls, roots, &host, port)?);
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
    use crate::transport::test_server::{Answer, Scripted};
    use crate::transport::ProxySettings;
    use std::time::{Duration, Instant};

    fn get<'a>(url: &'a str, headers: &'a [(&'a str, String)]) -> Request<'a> {
        Request {
            method: "GET",
            url,
            headers,
            body: None,
        }
    }

    #[test]
    fn credentials_never_go_in_plain_http_through_a_proxy() {
        let s = Sender::new(NetworkSettings {
            proxy: ProxySettings {
                http: Some("http://user:pw@127.0.0.1:9".into()),
                https: None,
                no_proxy: vec!["10.0.0.1".into()],
            },
            ..NetworkSettings::default()
        });
        let headers = [("Authorization", "Basic eDp5".to_string())];
        let e = s
            .send(&get("http://registry.example:5000/v2/", &headers))
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
    fn any_status_is_an_answer_and_connections_are_pooled_per_target() {
        let statuses = [200, 503, 404];
        let server = Scripted::start(statuses.map(|s| Answer::status(s, "body")).to_vec());
        let s = Sender::new(NetworkSettings::default());
        let url = server.url("/x");
        let mut answered = Vec::new();
        for _ in statuses {
            let resp = s.send(&get(&url, &[])).unwrap();
            answered.push(resp.status());
            // A body read to its end hands the connection back.
            resp.into_string().unwrap();
        }
        assert_eq!(answered, statuses);
        assert_eq!(server.connections(), 1, "{:?}", server.requests());
    }

    #[test]
    fn a_refused_connection_is_transient_and_a_stalled_answer_too() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = Sender::new(NetworkSettings {
            idle_timeout: Duration::from_millis(300),
            ..NetworkSettings::default()
        });
        let url = format!("http://127.0.0.1:{port}/x");
        let e = s.send(&get(&url, &[])).unwrap_err();
        assert!(matches!(e, TransportError::Connection { .. }), "{e}");
        assert!(e.to_string().contains(&url), "{e}");

        // Accepts, reads the request, never answers: abandoned after the
        // idle timeout.
        let server = Scripted::start(vec![Answer::Stall]);
        let started = Instant::now();
        let e = s.send(&get(&server.url("/x"), &[])).unwrap_err();
        assert!(matches!(e, TransportError::Connection { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_failure_through_a_proxy_names_the_proxy() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = format!("http://someone:secret@127.0.0.1:{port}");
        let s = Sender::new(NetworkSettings {
            proxy: ProxySettings {
                http: Some(proxy.clone()),
                https: Some(proxy),
                no_proxy: Vec::new(),
            },
            ..NetworkSettings::default()
        });
        let e = s
            .send(&get("http://mirror.example/dists/x/InRelease", &[]))
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
