//! Image references: `HOST[:PORT]/REPO[:TAG][@sha256:…]`.
//!
//! The registry host is always written out. Docker's implicit default
//! registry (and its `library/` prefix) is deliberately not supported: a
//! reference that does not start with a host is an error, so an image is
//! never fetched from a registry the user did not name.

use std::fmt;

use super::RegistryError;
use crate::oci::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host`, `host:port` or `[v6addr]:port`, as written.
    pub registry: String,
    /// The repository path, e.g. `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn err(input: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Reference {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// distribution-spec: a path component is lowercase alphanumerics joined by
/// `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// distribution-spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

/// Whether the first path component names a host rather than a
/// repository: it has a dot or a port, is bracketed IPv6, or is `localhost`.
fn looks_like_host(s: &str) -> bool {
    s.contains('.') || s.contains(':') || s.starts_with('[') || s == "localhost"
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

fn valid_host(h: &str) -> bool {
    if let Some(rest) = h.strip_prefix('[') {
        let Some((addr, tail)) = rest.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return addr_ok && (tail.is_empty() || tail.strip_prefix(':').is_some_and(valid_port));
    }
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    name_ok && port.map_or(true, valid_port)
}

impl Reference {
    /// Parses a reference; a leading `docker://` (skopeo's transport) is
    /// accepted and dropped.
    pub fn parse(input: &str) -> Result<Reference, RegistryError> {
        // A URL names a transport, which a reference does not carry: the
        // same image is the same name over HTTP or HTTPS (podman, skopeo
        // and docker refuse it too). Plain HTTP is a setting of the
        // registry, not of its images' names.
        let lower = input.get(..8).unwrap_or(input).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Err(err(
                input,
                "a reference names an image, not a URL: write HOST[:PORT]/REPO[:TAG]; for a registry that speaks plain HTTP pass --insecure (with `stele push`, --src-insecure or --dest-insecure for one side), or mark it `insecure = true` in registries.conf",
            ));
        }
        let s = input.strip_prefix("docker://").unwrap_or(input);
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        let Some((host, path)) = name_tag.split_once('/') else {
            return Err(err(
                input,
                "it names no registry host; write the host explicitly, as HOST[:PORT]/REPO[:TAG] (stele has no default registry)",
            ));
        };
        if !looks_like_host(host) {
            return Err(err(
                input,
                format!("`{host}` is not a registry host (a host has a dot or a port, or is localhost); write the host explicitly, e.g. registry.example/{name_tag} (stele has no default registry)"),
            ));
        }
        if !valid_host(host) {
            return Err(err(input, format!("`{host}` is not a valid host[:port]")));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) => (r, Some(t)),
            None => (path, None),
        };
        if let Some(bad) = repository.split('/').find(|c| !valid_component(c)) {
            return Err(err(
                input,
                format!("repository component `{bad}` must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`"),
            ));
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(err(
                    input,
                    format!("tag `{t}` must be letters, digits, `_`, `.` or `-` (at most 128, not starting with `.` or `-`)"),
                ));
            }
        }
        let digest = match digest {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|e: crate::oci::digest::DigestParseError| err(input, e.to_string()))?,
            ),
            None => None,
        };
        Ok(Reference {
            registry: host.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The host without the port (brackets kept for IPv6).
    pub fn hostname(&self) -> &str {
        host_without_port(&self.registry)
    }

    /// What the manifest endpoint is asked for: the digest when pinned,
    /// else the tag, else `latest`.
    pub(crate) fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository pinned to `digest`, keeping the tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `host/repo` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

pub(crate) fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(i) => &registry[..=i],
            None => registry,
        };
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Loopback hosts may be spoken to over plain HTTP without `insecure`.
pub(crate) fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

pub(crate) fn base_url(registry: &str, insecure: bool) -> String {
    let scheme = if insecure || is_loopback(host_without_port(registry)) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{registry}")
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `scheme://host:port` of a URL, lowercased, for origin comparisons.
pub(crate) fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_not_a_reference() {
        let e = Reference::parse("http://127.0.0.1:5000/team/app:1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a URL") && e.contains("--dest-insecure"),
            "{e}"
        );
        assert!(Reference::parse("HTTPS://registry.example/a").is_err());
    }

    #[test]
    fn parses_host_repo_tag_digest() {
        let d = Digest::of(b"x");
        let r = Reference::parse(&format!("registry.example:5000/team/app:v1.2@{d}")).unwrap();
        assert_eq!(r.registry, "registry.example:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1.2"));
        assert_eq!(r.digest, Some(d.clone()));
        assert_eq!(
            r.to_string(),
            format!("registry.example:5000/team/app:v1.2@{d}")
        );
        assert_eq!(r.manifest_reference(), d.to_string());
        assert_eq!(
            base_url(&r.registry, false),
            "https://registry.example:5000"
        );
        assert_eq!(base_url(&r.registry, true), "http://registry.example:5000");

        let r = Reference::parse("docker://127.0.0.1:5000/a").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "a")
        );
        assert_eq!(r.manifest_reference(), "latest");
        assert_eq!(base_url(&r.registry, false), "http://127.0.0.1:5000");
        let r = Reference::parse("localhost/a/b-c__d.e:t").unwrap();
        assert_eq!(base_url(&r.registry, false), "http://localhost");
        let r = Reference::parse("[::1]:5000/a:t").unwrap();
        assert_eq!(r.hostname(), "[::1]");
        assert_eq!(base_url(&r.registry, false), "http://[::1]:5000");
    }

    #[test]
    fn a_missing_host_is_an_error_that_says_to_write_it() {
        for input in ["library/debian:12", "debian", "team/app@sha256:00"] {
            let e = Reference::parse(input).unwrap_err().to_string();
            assert!(e.contains("host") && e.contains(input), "{e}");
        }
        let e = Reference::parse("debian:12").unwrap_err().to_string();
        assert!(e.contains("no default registry"), "{e}");
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "registry.example/Team/app",
            "registry.example/a//b",
            "registry.example/a-/b",
            "registry.example/a:-tag",
            "registry.example:99999/a",
            "registry.example/a@sha512:00",
            "bad_host.example/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
