//! A CONNECT tunnel through an HTTP proxy (RFC 9110 §9.3.6), opened by
//! the transport itself rather than by ureq: the tunnelled connection is
//! then pooled under its target like any direct one (ureq 2 pools a
//! proxied connection under one key and looks it up under another, so it
//! opened a tunnel per request), and a proxy that answers anything but
//! `200` is named as the proxy, not taken for the registry.

use base64::Engine as _;
use std::io::{Read, Write};

use super::pace::Paced;

/// The most a proxy's answer to CONNECT may be, head and all.
const ANSWER_LIMIT: usize = 16 << 10;

/// An HTTP proxy, as `HTTPS_PROXY` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ProxyEndpoint {
    pub host: String,
    pub port: u16,
    /// `Basic …` for `Proxy-Authorization`, from `user:pass@`.
    authorization: Option<String>,
    /// `http://host:port`, for messages: never the credentials.
    pub shown: String,
}

/// Why a tunnel could not be opened: the proxy's fault, named.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct TunnelFailure {
    pub proxy: String,
    pub message: String,
    /// Another try may do better (the proxy's 5xx: its upstream failed).
    pub transient: bool,
}

impl ProxyEndpoint {
    /// `http://[user:pass@]host[:port][/]`; a proxy spoken to in TLS or
    /// SOCKS is not supported, and said so.
    pub fn parse(url: &str) -> Result<ProxyEndpoint, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_string(), url),
        };
        if scheme != "http" {
            return Err(format!(
                "{scheme}:// proxies are not supported; give the proxy as http://HOST:PORT"
            ));
        }
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, tail) = v6
                .split_once(']')
                .ok_or_else(|| "an unclosed `[`".to_string())?;
            (h.to_string(), tail.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host.contains('/') {
            return Err("no proxy host".into());
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("`{p}` is not a port"))?,
            None => 80,
        };
        let authorization = userinfo.map(|u| {
            let decoded = percent_decode(u);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(decoded)
            )
        });
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        Ok(ProxyEndpoint {
            shown: format!("http://{bracketed}:{port}"),
            host,
            port,
            authorization,
        })
    }

    fn fail(&self, message: String, transient: bool) -> std::io::Error {
        std::io::Error::other(TunnelFailure {
            proxy: self.shown.clone(),
            message,
            transient,
        })
    }

    /// Asks the proxy, over `conn`, for a tunnel to `host:port` and reads
    /// its answer; Ok leaves `conn` at the first byte of the tunnel.
    pub fn open(
        &self,
        conn: &mut Paced,
        host: &str,
        port: u16,
        user_agent: &str,
    ) -> std::io::Result<()> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut head = format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\n"
        );
        if let Some(a) = &self.authorization {
            head.push_str(&format!("Proxy-Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes())
            .and_then(|()| conn.flush())
            .map_err(|e| self.fail(format!("sending CONNECT {authority}: {e}"), true))?;
        // Byte by byte up to the blank line: what follows is the tunnel's,
        // and the far side speaks first in no protocol we tunnel.
        let mut answer = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") && !answer.ends_with(b"\n\n") {
            if answer.len() >= ANSWER_LIMIT {
                return Err(self.fail(
                    format!("its answer to CONNECT {authority} goes on past {ANSWER_LIMIT} bytes without ending; it is not an HTTP proxy, or not a working one"),
                    false,
                ));
            }
            match conn.read(&mut byte) {
                Ok(0) => {
                    return Err(self.fail(
                        format!(
                            "it closed the connection after {} byte(s) of its answer to CONNECT {authority}",
                            answer.len()
                        ),
                        true,
                    ))
                }
                Ok(_) => answer.push(byte[0]),
                Err(e) => {
                    return Err(self.fail(
                        format!("reading its answer to CONNECT {authority}: {e}"),
                        true,
                    ))
                }
            }
        }
        let text = String::from_utf8_lossy(&answer);
        let status_line = text.lines().next().unwrap_or("").trim();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let status = parts.next().and_then(|s| s.parse::<u16>().ok());
        let reason = parts.next().unwrap_or("").trim();
        let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
            return Err(self.fail(
                format!(
                    "its answer to CONNECT {authority} is not HTTP (it begins `{}`); check that HTTPS_PROXY names an HTTP proxy",
                    shown_start(&answer)
                ),
                false,
            ));
        };
        match status {
            200..=299 => Ok(()),
            407 => Err(self.fail(
                format!("it wants credentials (407 {reason}) for CONNECT {authority}; give them in the proxy URL: http://USER:PASSWORD@HOST:PORT"),
                false,
            )),
            500..=599 => Err(self.fail(
                format!("it could not open a tunnel to {authority} ({status} {reason})"),
                true,
            )),
            _ => Err(self.fail(
                format!("it refused a tunnel to {authority} ({status} {reason}); ask its administrator to allow CONNECT to that port, or put the host in NO_PROXY"),
                false,
            )),
        }
    }
}

/// The start of an answer, printable, for a message.
fn shown_start(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '·' } else { c })
        .collect();
    text
}

/// `%XX` escapes in a URL's user info.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_and_hide_their_credentials() {
        let p = ProxyEndpoint::parse("http://us%40er:p%3Ass@proxy.example:3128/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
        assert_eq!(p.shown, "http://proxy.example:3128");
        let basic = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(p.authorization, Some(format!("Basic {basic}")));
        let p = ProxyEndpoint::parse("[::1]:8080").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 8080));
        assert_eq!(p.shown, "http://[::1]:8080");
        assert_eq!(ProxyEndpoint::parse("proxy.example").unwrap().port, 80);
        assert!(ProxyEndpoint::parse("socks5://proxy.example:1080")
            .unwrap_err()
            .contains("not supported"));
        assert!(ProxyEndpoint::parse("http://proxy.example:x").is_err());
    }
}
