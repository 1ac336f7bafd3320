//! Which proxy a request goes through: `HTTP_PROXY` for http URLs,
//! `HTTPS_PROXY` for https (tunnelled with CONNECT), none for the hosts
//! `NO_PROXY` names. The CLI reads the variables; this only decides.

/// The proxies in force, as the environment gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// `http://[user:pass@]host:port` for plain-HTTP requests.
    pub http: Option<String>,
    /// The same for HTTPS requests (a CONNECT tunnel).
    pub https: Option<String>,
    /// `NO_PROXY` entries: `*`, a host or domain (`.example` or
    /// `example`, which also covers its subdomains), `host:port`, an IP.
    pub no_proxy: Vec<String>,
}

impl ProxySettings {
    /// The proxy for a request to `host` (no brackets) on `port` over
    /// `scheme`, or `None` to connect directly.
    pub(crate) fn for_target(&self, scheme: &str, host: &str, port: u16) -> Option<&str> {
        let proxy = match scheme {
            "https" => self.https.as_deref(),
            _ => self.http.as_deref(),
        }?;
        if self.bypassed(host, port) {
            return None;
        }
        Some(proxy)
    }

    fn bypassed(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_start_matches('[');
            let (name, entry_port) = match entry.rsplit_once(':') {
                // An IPv6 address without a port has colons too.
                Some((n, p)) if !n.contains(':') || n.ends_with(']') => {
                    (n.trim_end_matches(']'), p.parse::<u16>().ok())
                }
                _ => (entry.trim_end_matches(']'), None),
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_start_matches("*.").trim_start_matches('.');
            !name.is_empty() && (host == name || host.ends_with(&format!(".{name}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_hosts_domains_and_ports() {
        let s = ProxySettings {
            http: Some("http://proxy.example:3128".into()),
            https: Some("http://proxy.example:3128".into()),
            no_proxy: vec![
                ".corp.example".into(),
                "mirror.example".into(),
                "127.0.0.1:5000".into(),
            ],
        };
        assert_eq!(s.for_target("https", "a.corp.example", 443), None);
        assert_eq!(s.for_target("https", "corp.example", 443), None);
        assert_eq!(s.for_target("http", "deb.mirror.example", 80), None);
        assert_eq!(s.for_target("http", "127.0.0.1", 5000), None);
        assert!(s.for_target("http", "127.0.0.1", 5001).is_some());
        assert!(s.for_target("https", "notcorp.example", 443).is_some());
        let all = ProxySettings {
            no_proxy: vec!["*".into()],
            ..s.clone()
        };
        assert_eq!(all.for_target("https", "registry.example", 443), None);
        let none = ProxySettings::default();
        assert_eq!(none.for_target("https", "registry.example", 443), None);
    }
}
