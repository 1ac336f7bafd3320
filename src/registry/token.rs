//! Who a request goes as: nobody, basic credentials, or a bearer token
//! from the registry's token service (Docker's "Token Authentication
//! Specification"), fetched with the basic credentials when there are
//! some and kept per scope for the client's lifetime (one run).
//!
//! This module only decides; the HTTP goes through the client's one
//! request path (retries, redirects, timeouts), handed in as a [`Fetch`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::auth::{parse_token, Challenge, Credentials};
use super::reference::{host_without_port, is_loopback, origin, query_escape};
use super::{error_codes, RegistryError};

/// GETs a token service URL, with the `Authorization` header given (the
/// registry's basic credentials, when there are some), and returns the
/// answer's status and (size-limited) body. Transport failures and
/// transient statuses are the fetcher's to retry.
pub(super) type Fetch<'a> =
    &'a dyn Fn(&str, Option<String>) -> Result<(u16, Vec<u8>), RegistryError>;

/// The registry a client talks to, as far as authenticating needs it.
pub(super) struct Identity<'a> {
    pub registry: &'a str,
    pub credentials: Option<&'a (Credentials, PathBuf)>,
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
            let token = fetch_token(who, &realm, service.as_deref(), scopes, fetch)?;
            self.state
                .lock()
                .expect("auth state lock")
                .tokens
                .insert(key, token.clone());
            return Ok(Some(format!("Bearer {token}")));
        }
        if basic {
            if let Some((c, _)) = who.credentials {
                return Ok(Some(c.basic_header()));
            }
        }
        Ok(None)
    }

    /// Remembers what a 401's challenge asks for; for a bearer challenge,
    /// fetches the token for `scopes` (plus the scope the challenge names).
    pub(crate) fn answer_challenge(
        &self,
        who: &Identity,
        c: Challenge,
        scopes: &[String],
        fetch: Fetch,
    ) -> Result<(), RegistryError> {
        let mut st = self.state.lock().expect("auth state lock");
        match c {
            Challenge::Basic => st.basic = true,
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                st.bearer = Some((realm.clone(), service.clone()));
                // A 401 with a cached token: it expired or lacks a scope.
                let key = scopes.join(" ");
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
    let basic = who.credentials.map(|(c, _)| c.basic_header());
    let (status, body) = fetch(&url, basic)?;
    if status == 200 {
        return parse_token(&body)
            .ok_or_else(|| auth_err("the token service's answer holds no token".into()));
    }
    let advice = match who.credentials {
        Some((c, file)) => format!(
            "it refused user `{}` from {}; check the password there, or log in again",
            c.username,
            file.display()
        ),
        None => format!(
            "no credentials for {} were found in the auth files; log in (e.g. `podman login {}`) or pass an auth file",
            who.registry, who.registry
        ),
    };
    Err(auth_err(format!(
        "the token service answered {status}{}; {advice}",
        error_codes(&body)
    )))
}
