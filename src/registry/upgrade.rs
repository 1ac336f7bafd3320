//! The lowest of the registry's layers, just above the transport's retry
//! layer: loopback registries are spoken to over plain HTTP by default,
//! but one that answers the way a TLS server answers plain HTTP is spoken
//! to over HTTPS for the rest of the run. The first request of a client
//! carries no credentials (none are known before the registry's first
//! 401), so nothing is lost in the clear by trying.

use std::sync::atomic::{AtomicBool, Ordering};

use super::reference::origin;
use crate::transport::{Budget, Request, Transport, TransportError};

/// Where one registry is reached, and whether that turned to HTTPS.
pub(super) struct TlsUpgrade {
    /// The registry's origin as first spoken to.
    base: String,
    /// Plain HTTP by the loopback default, not by the user's `--insecure`:
    /// such a registry may turn out to speak TLS.
    may_upgrade: bool,
    upgraded: AtomicBool,
}

/// A 400 in HTTP/1.0 without a single header: how Go's TLS servers
/// answer a plain-HTTP request ("Client sent an HTTP request to an HTTPS
/// server."); an HTTP server's own 400 has at least a Date.
fn bare_400(resp: &ureq::Response) -> bool {
    resp.status() == 400 && resp.http_version() == "HTTP/1.0" && resp.headers_names().is_empty()
}

impl TlsUpgrade {
    /// For a registry first spoken to at `base` (`scheme://host[:port]`);
    /// `insecure` is the user's word that plain HTTP is meant.
    pub fn new(base: String, insecure: bool) -> TlsUpgrade {
        TlsUpgrade {
            may_upgrade: !insecure && base.starts_with("http://"),
            base,
            upgraded: AtomicBool::new(false),
        }
    }

    fn upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Relaxed)
    }

    /// The registry's origin as requests go to it now.
    pub fn base(&self) -> String {
        match self.base.strip_prefix("http://") {
            Some(rest) if self.upgraded() => format!("https://{rest}"),
            _ => self.base.clone(),
        }
    }

    /// `url` as it is sent now: the registry's URLs upgraded to https
    /// once it turned out to speak TLS.
    pub fn current(&self, url: &str) -> String {
        match url.strip_prefix(&format!("{}/", self.base)) {
            Some(rest) if self.upgraded() && self.may_upgrade => {
                format!("{}/{rest}", self.base())
            }
            _ => url.to_string(),
        }
    }

    /// Whether `url` is on the registry itself (as first spoken to, or
    /// upgraded), where its credentials may go.
    pub fn own(&self, url: &str) -> bool {
        let o = origin(url);
        o == origin(&self.base) || o == origin(&self.base())
    }

    /// Sends `req` through `transport` (the retry layer) within `budget`,
    /// to the upgraded URL once the registry is known to speak TLS. A
    /// plain-HTTP request to the registry whose answer says the server
    /// speaks TLS turns the registry to https and is sent again so; any
    /// other answer or failure is handed back untouched.
    pub fn send(
        &self,
        transport: &Transport,
        budget: &Budget,
        req: &Request,
    ) -> Result<ureq::Response, TransportError> {
        let url = self.current(req.url);
        let answer = transport.send(budget, &Request { url: &url, ..*req });
        if !self.speaks_tls(&url, &answer) {
            return answer;
        }
        let url = self.current(&url);
        transport.send(budget, &Request { url: &url, ..*req })
    }

    /// Whether `answer`, to a plain-HTTP request for `url`, says the
    /// registry speaks TLS (then it is upgraded). Go's TLS servers,
    /// docker-registry among them, answer with a bare `HTTP/1.0 400` (see
    /// [`bare_400`]); others send a TLS alert, which is no HTTP status
    /// line at all.
    fn speaks_tls(&self, url: &str, answer: &Result<ureq::Response, TransportError>) -> bool {
        let plain = self.may_upgrade && url.starts_with(&format!("{}/", self.base));
        if !plain {
            return false;
        }
        let tls = match answer {
            Ok(resp) => bare_400(resp),
            Err(TransportError::Protocol { message, .. }) => message.starts_with("Bad Status"),
            // Another request, sent at the same time as this one, found
            // out first: send this one again as https.
            Err(_) => self.upgraded(),
        };
        if tls {
            self.upgraded.store(true, Ordering::Relaxed);
        }
        tls
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_server::{Answer, Scripted};

    const GO_TLS_ANSWER: &str =
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

    #[test]
    fn only_a_headerless_http_1_0_400_is_a_tls_servers_answer() {
        let bare: ureq::Response = GO_TLS_ANSWER.parse().unwrap();
        assert!(bare_400(&bare));
        let own: ureq::Response = "HTTP/1.1 400 Bad Request\r\nDate: x\r\n\r\n"
            .parse()
            .unwrap();
        assert!(!bare_400(&own));
    }

    fn get(url: &str) -> Request<'_> {
        Request {
            method: "GET",
            url,
            headers: &[],
            body: None,
        }
    }

    #[test]
    fn a_loopback_registry_answering_as_a_tls_server_is_spoken_to_over_https() {
        let server = Scripted::start(vec![Answer::Raw(GO_TLS_ANSWER)]);
        let base = server.url("");
        let upgrade = TlsUpgrade::new(base.clone(), false);
        let t = Transport::default();
        let url = format!("{base}/v2/");
        // The https request meets a server that speaks no TLS: it fails,
        // but it was made, to the same host and port.
        let e = upgrade.send(&t, &t.budget(false), &get(&url)).unwrap_err();
        let https = url.replacen("http://", "https://", 1);
        assert!(e.to_string().contains(&https), "{e}");
        assert_eq!(upgrade.current(&url), https);
        assert_eq!(upgrade.base(), base.replacen("http://", "https://", 1));
        assert!(upgrade.own(&https) && upgrade.own(&url));
        assert!(!upgrade.own("http://127.0.0.2:1/v2/"));
        assert_eq!(server.requests(), ["GET /v2/"]);

        // With --insecure, plain HTTP is what the user asked for: the
        // answer is the registry's.
        let server = Scripted::start(vec![Answer::Raw(GO_TLS_ANSWER)]);
        let base = server.url("");
        let upgrade = TlsUpgrade::new(base.clone(), true);
        let url = format!("{base}/v2/");
        let resp = upgrade.send(&t, &t.budget(false), &get(&url)).unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(upgrade.current(&url), url);
    }
}
