//! The base layer: one request, one answer, nothing sent again. What is
//! decided per target lives here: the agent for `scheme://host:port`
//! holds that host's TLS configuration (`tls`), its proxy (`proxy`), the
//! timeouts and the pooled connections; a failure to get an answer is
//! classified into a [`TransportError`] that says whether it is worth
//! another try (the retry layer asks).
//!
//! Connections are made by the transport's own connector (`connect`):
//! TLS, a CONNECT tunnel through `HTTPS_PROXY`, and the read deadlines of
//! `pace` on the socket. ureq hands a connector only the TCP stream of an
//! `https` URL, so a plain-HTTP request goes to ureq as `https://HOST:PORT`
//! with its own `Host` header, and the connector speaks no TLS for it. A
//! plain-HTTP request through `HTTP_PROXY` (absolute-form, no tunnel) is
//! the one ureq connects itself: it keeps the idle timeout and the total
//! deadline, not the throughput floor.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::connect::Connector;
use super::pace::{Abandoned, Pace};
use super::tunnel::{ProxyEndpoint, TunnelFailure};
use super::{redact, target, tls, NetworkSettings, Request, TransportError};

/// Idle connections kept per target: enough for every blob in flight at
/// the highest `--jobs` people use, so parallel transfers reuse them.
const POOL_PER_TARGET: usize = 32;

/// How requests to one target travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// Through the transport's connector: TLS or not, tunnelled or not.
    Connector { plain: bool },
    /// Plain HTTP through `HTTP_PROXY`, connected by ureq.
    PlainProxy,
}

/// One target's agent (its pool), how it is reached, and the proxy that
/// carries it (for messages).
#[derive(Clone)]
struct Target {
    agent: ureq::Agent,
    route: Route,
    proxy: Option<String>,
    /// `https://host:port` a plain request is sent to ureq as, and the
    /// `Host` header it carries.
    plain_as: Option<(String, String)>,
}

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
    targets: Mutex<BTreeMap<String, Target>>,
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
            targets: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    fn pace(&self) -> Pace {
        Pace {
            idle: self.settings.idle_timeout,
            speed_limit: self.settings.speed_limit,
            speed_time: self.settings.speed_time,
        }
    }

    /// The agent for `url` and how it travels.
    fn target(&self, method: &'static str, url: &str) -> Result<Target, TransportError> {
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
        if let Some(t) = self.targets.lock().expect("targets lock").get(&key) {
            return Ok(t.clone());
        }
        let s = &self.settings;
        let mut builder = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(s.connect_timeout)
            .timeout_read(s.idle_timeout)
            .timeout_write(s.idle_timeout)
            .max_idle_connections(4 * POOL_PER_TARGET)
            .max_idle_connections_per_host(POOL_PER_TARGET)
            .user_agent(&s.user_agent);
        let proxy = s.proxy.for_target(&scheme, &host, port).map(str::to_string);
        let proxy_error = |p: &str, message: String| TransportError::Proxy {
            method,
            url: url.to_string(),
            proxy: redact(p),
            message,
        };
        let plain = scheme == "http";
        let route = if plain && proxy.is_some() {
            Route::PlainProxy
        } else {
            Route::Connector { plain }
        };
        let mut plain_as = None;
        match route {
            Route::PlainProxy => {
                let p = proxy.as_deref().expect("a proxy");
                let parsed = ureq::Proxy::new(p)
                    .map_err(|e| proxy_error(p, format!("not a proxy URL: {e}")))?;
                builder = builder.proxy(parsed);
            }
            Route::Connector { plain } => {
                let tunnel = match &proxy {
                    Some(p) => Some(
                        ProxyEndpoint::parse(p)
                            .map_err(|m| proxy_error(p, format!("not a proxy URL: {m}")))?,
                    ),
                    None => None,
                };
                if let Some(t) = &tunnel {
                    // Every connection of this agent goes to the proxy;
                    // the tunnel then asks for the target.
                    let (proxy_host, proxy_port) = (t.host.clone(), t.port);
                    builder = builder.resolver(move |_: &str| {
                        (proxy_host.as_str(), proxy_port)
                            .to_socket_addrs()
                            .map(|a| a.collect())
                    });
                }
                let tls = if plain {
                    let named = if host.contains(':') {
                        format!("[{host}]")
                    } else {
                        host.clone()
                    };
                    let host_header = if port == 80 {
                        named.clone()
                    } else {
                        format!("{named}:{port}")
                    };
                    plain_as = Some((format!("https://{named}:{port}"), host_header));
                    None
                } else {
                    let roots = match self.roots.get() {
                        Some(r) => r,
                        None => {
                            let loaded = tls::base_roots(&s.tls)?;
                            self.roots.get_or_init(|| loaded)
                        }
                    };
                    Some(tls::client_config(&s.tls, roots, &host, port)?)
                };
                let pace = self.pace();
                builder = builder.tls_connector(Arc::new(Connector {
                    host: host.clone(),
                    port,
                    tls,
                    tunnel,
                    pace,
                    connect_pace: Pace {
                        idle: s.connect_timeout,
                        speed_limit: 0,
                        ..pace
                    },
                    user_agent: s.user_agent.clone(),
                }));
            }
        }
        let t = Target {
            agent: builder.build(),
            route,
            proxy,
            plain_as,
        };
        self.targets
            .lock()
            .expect("targets lock")
            .insert(key, t.clone());
        Ok(t)
    }

    /// Sends one request, to be answered (its body read too) by
    /// `deadline`. Any HTTP answer is returned, whatever its status; a
    /// failure to get one is classified (see the module doc).
    pub fn send(
        &self,
        req: &Request,
        deadline: Option<Instant>,
    ) -> Result<ureq::Response, TransportError> {
        let t = self.target(req.method, req.url)?;
        if let (Route::PlainProxy, Some(p)) = (t.route, &t.proxy) {
            if req
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
        let mut r = match &t.plain_as {
            Some((origin, host)) => {
                let rest = path_and_query(req.url);
                let rest = rest.as_str();
                t.agent
                    .request(req.method, &format!("{origin}{rest}"))
                    .set("Host", host)
            }
            None => t.agent.request(req.method, req.url),
        };
        for (k, v) in req.headers {
            r = r.set(k, v);
        }
        // ureq's deadline resets the socket's timeouts to what is left of
        // it before each read; the connector's sockets set their own
        // again, and ureq's own connections (plain HTTP through a proxy)
        // keep the idle timeout rather than lose it to the deadline.
        if let (Some(d), Route::Connector { .. }) = (deadline, t.route) {
            r = r.timeout(d.saturating_duration_since(Instant::now()));
        }
        let result = match req.body {
            Some(b) => r.send_bytes(b),
            None => r.call(),
        };
        match result {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => Ok(resp),
            Err(ureq::Error::Transport(e)) => Err(classify(req.method, req.url, &t, &e)),
        }
    }
}

/// `/path?query` of an absolute URL (`/` when it has no path).
fn path_and_query(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    match after_scheme.find(['/', '?']) {
        Some(i) if after_scheme[i..].starts_with('/') => after_scheme[i..].to_string(),
        Some(i) => format!("/{}", &after_scheme[i..]),
        None => "/".to_string(),
    }
}

/// The rustls error somewhere in a transport failure's causes.
fn rustls_cause(t: &ureq::Transport) -> Option<rustls::Error> {
    cause::<rustls::Error>(t).cloned()
}

/// The first cause of type `E` in a transport failure's chain, looking
/// inside I/O errors too (their `source()` skips the error they wrap).
fn cause<E: std::error::Error + 'static>(t: &ureq::Transport) -> Option<&E> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<E>() {
            return Some(e);
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(e) = io.get_ref().and_then(|i| i.downcast_ref::<E>()) {
                return Some(e);
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

fn classify(method: &'static str, url: &str, to: &Target, t: &ureq::Transport) -> TransportError {
    let url_s = url.to_string();
    let proxy = to.proxy.as_deref();
    let host = target(url).map_or_else(String::new, |(_, h, p)| format!("{h}:{p}"));
    if let Some(f) = cause::<TunnelFailure>(t) {
        return if f.transient {
            TransportError::Connection {
                method,
                url: url_s,
                message: format!("through the proxy {}: {}", f.proxy, f.message),
                attempts: 1,
            }
        } else {
            TransportError::Proxy {
                method,
                url: url_s,
                proxy: f.proxy.clone(),
                message: f.message.clone(),
            }
        };
    }
    if let Some(why) = cause::<Abandoned>(t) {
        let message = match proxy {
            Some(p) => format!("{why} (through the proxy {})", redact(p)),
            None => why.to_string(),
        };
        return if why.below_floor() {
            TransportError::Slow {
                method,
                url: url_s,
                message,
                attempts: 1,
            }
        } else {
            TransportError::Connection {
                method,
                url: url_s,
                message,
                attempts: 1,
            }
        };
    }
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
        | ureq::ErrorKind::ProxyConnect
        | ureq::ErrorKind::Dns => TransportError::Proxy {
            method,
            url: url_s,
            proxy: proxy.map(redact).unwrap_or_default(),
            message: message(t),
        },
        // What ureq read as the answer was not HTTP. Through a proxy
        // (plain HTTP, absolute-form), the proxy framed it.
        ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader if proxy.is_some() => {
            TransportError::Proxy {
                method,
                url: url_s,
                proxy: proxy.map(redact).unwrap_or_default(),
                message: format!(
                    "its answer is not HTTP ({}); check that HTTP_PROXY names an HTTP proxy",
                    message(t)
                ),
            }
        }
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io => TransportError::Connection {
            method,
            url: url_s,
            message: match proxy {
                Some(p) => format!("{} (through the proxy {})", message(t), redact(p)),
                None => message(t),
            },
            attempts: 1,
        },
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
            .send(&get("http://registry.example:5000/v2/", &headers), None)
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
            let resp = s.send(&get(&url, &[]), None).unwrap();
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
        let e = s.send(&get(&url, &[]), None).unwrap_err();
        assert!(matches!(e, TransportError::Connection { .. }), "{e}");
        assert!(e.to_string().contains(&url), "{e}");

        // Accepts, reads the request, never answers: abandoned after the
        // idle timeout.
        let server = Scripted::start(vec![Answer::Stall]);
        let started = Instant::now();
        let e = s.send(&get(&server.url("/x"), &[]), None).unwrap_err();
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
            .send(&get("http://mirror.example/dists/x/InRelease", &[]), None)
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
