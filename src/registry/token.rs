//! Who a request goes as: nobody, basic credentials, or a bearer token
//! from the registry's token service (Docker's "Token Authentication
//! Specification"), fetched with the basic credentials when there are
//! some and kept per scope for the client's lifetime (one run).
//!
//! This module only decides; the HTTP goes through the client's one
//! request path (retries, redirects, timeouts), handed in as a [`Fetch`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::auth::{parse_token, Challenge, Credentials};
use super::reference::{host_without_port, is_loopback, origin, query_escape};
use super::{error_codes, RegistryError};

/// One request to a token service: a GET of `url` with the registry's
/// basic credentials when there are some, or a POST of an OAuth2 form
/// (`application/x-www-form-urlencoded`) for a refresh token.
pub(super) struct TokenRequest {
    pub url: String,
    pub basic: Option<String>,
    pub form: Option<String>,
}

/// Sends a [`TokenRequest`] and returns the answer's status and
/// (size-limited) body. Transport failures and transient statuses are the
/// fetcher's to retry.
pub(super) type Fetch<'a> = &'a dyn Fn(&TokenRequest) -> Result<(u16, Vec<u8>), RegistryError>;

/// The registry a client talks to, as far as authenticating needs it.
pub(super) struct Identity<'a> {
    pub registry: &'a str,
    pub credentials: Option<&'a (Credentials, String)>,
    /// Plain HTTP allowed to any token service (else only to loopback).
    pub insecure: bool,
}

#[derive(Default)]
struct State {
    /// The registry asked for Basic auth.
    basic: bool,
    /// The registry's token service, once a challenge named it.
    bearer: Option<(String, Option<String>)>,
    /// Tokens by the scopes they were asked for, for this run only.
    tokens: BTreeMap<String, String>,
}

/// What a client has learned about authenticating at its registry. Safe to
/// share between threads.
#[derive(Default)]
pub(super) struct AuthState {
    state: Mutex<State>,
    /// Held while a token is fetched: threads that need the same token at
    /// once (parallel uploads) wait for the one fetch instead of each
    /// asking the token service.
    fetching: Mutex<()>,
}

impl AuthState {
    /// The Authorization header for requests needing `scopes`, fetching a
    /// token first when the registry is known to want one.
    pub fn authorization(
        &self,
        who: &Identity,
        scopes: &[String],
        fetch: Fetch,
    ) -> Result<Option<String>, RegistryError> {
        let key = scopes.join(" ");
        let (bearer, basic) = {
            let st = self.state.lock().expect("auth state lock");
            if let Some(t) = st.tokens.get(&key) {
                return Ok(Some(format!("Bearer {t}")));
            }
            (st.bearer.clone(), st.basic)
        };
        if let Some((realm, service)) = bearer {
            let _fetching = self.fetching.lock().expect("token fetch lock");
            if let Some(t) = self.token(&key) {
                return Ok(Some(format!("Bearer {t}")));
            }
            let token = fetch_token(who, &realm, service.as_deref(), scopes, fetch)?;
            self.state
                .lock()
                .expect("auth state lock")
                .tokens
                .insert(key, token.clone());
            return Ok(Some(format!("Bearer {token}")));
        }
        if basic {
            if let Some((c, from)) = who.credentials {
                return match c.basic_header() {
                    Some(b) => Ok(Some(b)),
                    None => Err(RegistryError::Auth {
                        url: who.registry.to_string(),
                        message: format!("the registry asks for a password (Basic), but the {from} holds only an identity token, which goes only to a token service; log in with a password"),
                    }),
                };
            }
        }
        Ok(None)
    }

    fn token(&self, key: &str) -> Option<String> {
        let st = self.state.lock().expect("auth state lock");
        st.tokens.get(key).cloned()
    }

    /// Remembers what a 401's challenge asks for; for a bearer challenge,
    /// fetches the token for `scopes` (plus the scope the challenge names),
    /// unless another thread already replaced `sent`, the Authorization
    /// the refused request carried.
    pub(crate) fn answer_challenge(
        &self,
        who: &Identity,
        c: Challenge,
        scopes: &[String],
        sent: Option<&str>,
        fetch: Fetch,
    ) -> Result<(), RegistryError> {
        let _fetching = self.fetching.lock().expect("token fetch lock");
        let mut st = self.state.lock().expect("auth state lock");
        match c {
            Challenge::Basic => st.basic = true,
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                st.bearer = Some((realm.clone(), service.clone()));
                let key = scopes.join(" ");
                if let Some(t) = st.tokens.get(&key) {
                    if sent != Some(format!("Bearer {t}").as_str()) {
                        // Fetched by another request since this one went out.
                        return Ok(());
                    }
                }
                // A 401 with a cached token: it expired or lacks a scope.
                st.tokens.remove(&key);
                drop(st);
                let mut wanted: Vec<String> = scopes.to_vec();
                if let Some(s) = scope {
                    if !wanted.contains(&s) {
                        wanted.push(s);
                    }
                }
                let token = fetch_token(who, &realm, service.as_deref(), &wanted, fetch)?;
                self.state
                    .lock()
                    .expect("auth state lock")
                    .tokens
                    .insert(key, token);
            }
        }
        Ok(())
    }
}

/// GET `realm?service=…&scope=…` (with the registry's basic credentials
/// when there are some) for a bearer token.
fn fetch_token(
    who: &Identity,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    fetch: Fetch,
) -> Result<String, RegistryError> {
    let auth_err = |message: String| RegistryError::Auth {
        url: realm.to_string(),
        message,
    };
    let realm_host = origin(realm);
    let realm_host = realm_host.split_once("://").map_or("", |(_, h)| h);
    if realm.starts_with("http://") && !who.insecure && !is_loopback(host_without_port(realm_host))
    {
        return Err(auth_err(
            "the token service is plain HTTP; credentials would travel unencrypted (allow it with --insecure only on a trusted network)".into(),
        ));
    }
    if !realm.starts_with("http://") && !realm.starts_with("https://") {
        return Err(auth_err(
            "the challenge's realm is not an http(s) URL".into(),
        ));
    }
    let mut url = realm.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    if let Some(s) = service {
        url.push_str(&format!("{sep}service={}", query_escape(s)));
        sep = '&';
    }
    for s in scopes {
        url.push_str(&format!("{sep}scope={}", query_escape(s)));
        sep = '&';
    }
    let request = match who.credentials {
        // OAuth2 (RFC 6749 §6) as the distribution token spec's "OAuth2
        // token" section has it: the refresh token is exchanged by POST.
        Some((
            Credentials {
                identity_token: Some(refresh),
                ..
            },
            _,
        )) => {
            let mut form = format!(
                "grant_type=refresh_token&client_id=stele&refresh_token={}",
                query_escape(refresh)
            );
            if let Some(s) = service {
                form.push_str(&format!("&service={}", query_escape(s)));
            }
            if !scopes.is_empty() {
                form.push_str(&format!("&scope={}", query_escape(&scopes.join(" "))));
            }
            TokenRequest {
                url: realm.to_string(),
                basic: None,
                form: Some(form),
            }
        }
        creds => TokenRequest {
            url,
            basic: creds.and_then(|(c, _)| c.basic_header()),
            form: None,
        },
    };
    let (status, body) = fetch(&request)?;
    if status == 200 {
        return parse_token(&body)
            .ok_or_else(|| auth_err("the token service's answer holds no token".into()));
    }
    let advice = match who.credentials {
        Some((c, from)) => format!(
            "it refused user `{}` from the {from}; check the password there, or log in again",
            c.username,
        ),
        None => format!(
            "no credentials for {} were found in the auth files (nor through their credential helpers); log in (e.g. `podman login {}`) or pass an auth file",
            who.registry, who.registry
        ),
    };
    Err(auth_err(format!(
        "the token service answered {status}{}; {advice}",
        error_codes(&body)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn bearer() -> Challenge {
        Challenge::Bearer {
            realm: "https://127.0.0.1/token".into(),
            service: Some("test".into()),
            scope: None,
        }
    }

    /// `threads` requests refused at once with `sent`: how many tokens
    /// they fetched, and the token each then goes with.
    fn refused_at_once(
        state: &AuthState,
        threads: usize,
        sent: Option<&str>,
        name: &str,
    ) -> (u32, Vec<String>) {
        let who = Identity {
            registry: "127.0.0.1:5000",
            credentials: None,
            insecure: false,
        };
        let fetched = AtomicU32::new(0);
        let fetch = |_: &TokenRequest| {
            let n = fetched.fetch_add(1, Ordering::SeqCst) + 1;
            // Slow enough that the other threads arrive while it runs.
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok((200, format!(r#"{{"token":"{name}{n}"}}"#).into_bytes()))
        };
        let scopes = vec!["repository:a:pull,push".to_string()];
        let used = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        state
                            .answer_challenge(&who, bearer(), &scopes, sent, &fetch)
                            .unwrap();
                        state.authorization(&who, &scopes, &fetch).unwrap().unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        (fetched.load(Ordering::SeqCst), used)
    }

    #[test]
    fn requests_refused_together_fetch_one_token() {
        let state = AuthState::default();
        let (fetched, used) = refused_at_once(&state, 8, None, "first");
        assert_eq!(fetched, 1);
        assert!(used.iter().all(|a| a == "Bearer first1"), "{used:?}");
        // The token expired: every request that carried it is refused, and
        // one new token answers them all.
        let (fetched, used) = refused_at_once(&state, 8, Some("Bearer first1"), "second");
        assert_eq!(fetched, 1);
        assert!(used.iter().all(|a| a == "Bearer second1"), "{used:?}");
    }
}
