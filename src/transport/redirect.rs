//! Redirects: which answers redirect, where to, and the one follower.
//! What each hop carries is the caller's: a mirror's GET carries no
//! credentials ([`Transport::get_following`]); the registry client's hops
//! carry its authorization only to the registry itself.

use super::{Budget, Request, Transport, TransportError};

/// Redirects followed for one request (a blob GET goes to storage once).
pub(crate) const MAX_REDIRECTS: u32 = 5;

/// Whether `status` redirects (to the answer's `Location`).
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Sends a GET or HEAD to `url` by `hop`, then to each `Location` a
/// redirect names (resolved against the URL that sent it), up to
/// [`MAX_REDIRECTS`]. Any other answer is returned, a redirect without a
/// `Location` included; past the limit, `too_many` makes the error.
pub(crate) fn follow_redirects<E>(
    url: &str,
    mut hop: impl FnMut(&str) -> Result<ureq::Response, E>,
    too_many: impl FnOnce(String) -> E,
) -> Result<ureq::Response, E> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let resp = hop(&url)?;
        if !is_redirect(resp.status()) {
            return Ok(resp);
        }
        let Some(location) = resp.header("Location") else {
            return Ok(resp);
        };
        url = resolve_location(&url, location);
    }
    Err(too_many(url))
}

impl Transport {
    /// A GET that follows redirects, each hop sent through the retry
    /// layer within `budget`. For mirrors, which carry no credentials.
    pub(crate) fn get_following(
        &self,
        budget: &Budget,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<ureq::Response, TransportError> {
        follow_redirects(
            url,
            |url| {
                self.send(
                    budget,
                    &Request {
                        method: "GET",
                        url,
                        headers,
                        body: None,
                    },
                )
            },
            |url| TransportError::Protocol {
                method: "GET",
                url,
                message: format!("more than {MAX_REDIRECTS} redirects"),
            },
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_server::{Answer, Scripted};

    #[test]
    fn locations_resolve_against_the_url_that_sent_them() {
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
            resolve_location(base, "https://other.example/p"),
            "https://other.example/p"
        );
    }

    #[test]
    fn a_mirror_redirect_is_followed_to_another_host_and_bounded() {
        let storage = Scripted::start(vec![Answer::status(200, "the file")]);
        let mirror = Scripted::start(vec![Answer::redirect(302, &storage.url("/file"))]);
        let t = Transport::default();
        let resp = t
            .get_following(&t.budget(false), &mirror.url("/dists/x"), &[])
            .unwrap();
        assert_eq!(resp.into_string().unwrap(), "the file");
        assert_eq!(storage.requests(), ["GET /file"]);

        let looping = Scripted::start(vec![Answer::redirect(307, "/again"); 10]);
        let e = t
            .get_following(&t.budget(false), &looping.url("/"), &[])
            .unwrap_err();
        assert!(e.to_string().contains("more than 5 redirects"), "{e}");
        assert_eq!(looping.requests().len(), 6);
    }
}
