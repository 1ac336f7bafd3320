//! Who a request goes as: nobody, basic credentials, or a bearer token
//! from the registry's token service (Docker's "Token Authentication
//! Specification"), fetched with the basic credentials when there are
//! some and kept per scope for the client's lifetime (one run).

use std::collections::BTreeMap;
use std::io::Read;

use super::auth::{parse_token, Challenge};
use super::client::{
    error_codes, origin, query_escape, transient, transport_message, Client, ERROR_BODY_LIMIT,
};
use super::reference::{host_without_port, is_loopback};
use super::RegistryError;

#[derive(Default)]
pub(super) struct AuthState {
    /// The registry asked for Basic auth.
    basic: bool,
    /// The registry's token service, once a challenge named it.
    bearer: Option<(String, Option<String>)>,
    /// Tokens by the scopes they were asked for, for this run only.
    tokens: BTreeMap<String, String>,
}

impl Client {
    /// The Authorization header for requests needing `scopes`, fetching a
    /// token first when the registry is known to want one.
    pub(super) fn authorization(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let key = scopes.join(" ");
        let (bearer, basic) = {
            let st = self.auth.lock().expect("auth state lock");
            if let Some(t) = st.tokens.get(&key) {
                return Ok(Some(format!("Bearer {t}")));
            }
            (st.bearer.clone(), st.basic)
        };
        if let Some((realm, service)) = bearer {
            let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
            self.auth
                .lock()
                .expect("auth state lock")
                .tokens
                .insert(key, token.clone());
            return Ok(Some(format!("Bearer {token}")));
        }
        if basic {
            if let Some((c, _)) = &self.credentials {
                return Ok(Some(c.basic_header()));
            }
        }
        Ok(None)
    }

    pub(super) fn answer_challenge(
        &self,
        c: Challenge,
        scopes: &[String],
    ) -> Result<(), RegistryError> {
        let mut st = self.auth.lock().expect("auth state lock");
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
                let token = self.fetch_token(&realm, service.as_deref(), &wanted)?;
                self.auth
                    .lock()
                    .expect("auth state lock")
                    .tokens
                    .insert(key, token);
            }
        }
        Ok(())
    }

    /// GET `realm?service=…&scope=…` (with the registry's basic
    /// credentials when there are some) for a bearer token.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let auth_err = |message: String| RegistryError::Auth {
            url: realm.to_string(),
            message,
        };
        let realm_host = origin(realm);
        let realm_host = realm_host.split_once("://").map_or("", |(_, h)| h);
        if realm.starts_with("http://")
            && !self.settings.insecure
            && !is_loopback(host_without_port(realm_host))
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut r = self.agent.get(&url);
            if let Some((c, _)) = &self.credentials {
                r = r.set("Authorization", &c.basic_header());
            }
            let resp = match r.call() {
                Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
                Err(ureq::Error::Transport(_)) if attempt <= self.settings.retries => {
                    self.back_off(attempt);
                    continue;
                }
                Err(ureq::Error::Transport(t)) => return Err(auth_err(transport_message(&t))),
            };
            let status = resp.status();
            if transient(status) && attempt <= self.settings.retries {
                self.back_off(attempt);
                continue;
            }
            let mut body = Vec::new();
            let _ = resp
                .into_reader()
                .take(ERROR_BODY_LIMIT)
                .read_to_end(&mut body);
            if status == 200 {
                return parse_token(&body)
                    .ok_or_else(|| auth_err("the token service's answer holds no token".into()));
            }
            let who = match &self.credentials {
                Some((c, file)) => format!(
                    "it refused user `{}` from {}; check the password there, or log in again",
                    c.username,
                    file.display()
                ),
                None => format!(
                    "no credentials for {} were found in the auth files; log in (e.g. `podman login {}`) or pass an auth file",
                    self.registry, self.registry
                ),
            };
            return Err(auth_err(format!(
                "the token service answered {status}{}; {who}",
                error_codes(&body)
            )));
        }
    }
}
