//! Where the user's own pip and npm download packages from: their
//! environment variables and configuration files, read once here into
//! `apps::AppSettings`, so `[python]` and `[node]` use the same index,
//! registry and credentials the user's tools do. Nothing below the CLI
//! reads them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::apps::{AppSettings, Credential};

/// Configuration files are a few lines; anything this big is not one.
const CONFIG_LIMIT: u64 = 1 << 20;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home() -> Option<PathBuf> {
    env("HOME").map(PathBuf::from)
}

fn read(path: &Path) -> Option<String> {
    let bytes = crate::apps::read_input(path, CONFIG_LIMIT).ok()?;
    String::from_utf8(bytes).ok()
}

/// `https://user:pass@host/simple/` → the URL without its user part and a
/// Basic credential for its origin.
fn split_userinfo(url: &str) -> (String, Option<Credential>) {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let clean = format!("{scheme}://{host}{path}");
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(crate::apps::percent_decode(userinfo))
    );
    (
        clean,
        Some(Credential {
            prefix: format!("{scheme}://{host}/"),
            header,
        }),
    )
}

/// pip's index: `PIP_INDEX_URL`, uv's `UV_DEFAULT_INDEX`/`UV_INDEX_URL`,
/// else `index-url` from pip's configuration files (site, then user,
/// then `PIP_CONFIG_FILE`; a later one wins, as pip reads them).
fn pip_index() -> Option<String> {
    if let Some(v) = env("PIP_INDEX_URL")
        .or_else(|| env("UV_DEFAULT_INDEX"))
        .or_else(|| env("UV_INDEX_URL"))
    {
        return Some(v);
    }
    let mut files = vec![
        PathBuf::from("/etc/pip.conf"),
        PathBuf::from("/etc/xdg/pip/pip.conf"),
    ];
    if let Some(h) = home() {
        files.push(h.join(".pip/pip.conf"));
    }
    match (env("XDG_CONFIG_HOME"), home()) {
        (Some(x), _) => files.push(PathBuf::from(x).join("pip/pip.conf")),
        (None, Some(h)) => files.push(h.join(".config/pip/pip.conf")),
        _ => {}
    }
    files.extend(env("PIP_CONFIG_FILE").map(PathBuf::from));
    let mut found = None;
    for f in files {
        let Some(text) = read(&f) else { continue };
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.trim().to_string();
            } else if let Some((k, v)) = line.split_once('=') {
                let k = k.trim().replace('_', "-");
                if k == "index-url" && matches!(section.as_str(), "global" | "install") {
                    found = Some(v.trim().to_string());
                }
            }
        }
    }
    found
}

/// `${VAR}` in an npmrc value, as npm expands it from the environment.
fn expand(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        match rest[at + 2..].find('}') {
            Some(end) => {
                let name = &rest[at + 2..at + 2 + end];
                out.push_str(&std::env::var(name).unwrap_or_default());
                rest = &rest[at + 3 + end..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `key=value` lines of an npmrc, values expanded and unquoted.
fn npmrc(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with([';', '#']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim().trim_matches('"');
            (k.trim().to_string(), expand(v))
        })
        .collect()
}

/// npm's registries and credentials: the global npmrc, the user's
/// (`NPM_CONFIG_USERCONFIG` or `~/.npmrc`), the project's (beside its
/// package-lock.json), then `npm_config_registry`; a later one wins, as
/// npm layers them.
fn npm(project: Option<&Path>, settings: &mut AppSettings) {
    let mut files: Vec<PathBuf> = Vec::new();
    files.extend(
        env("NPM_CONFIG_GLOBALCONFIG")
            .or_else(|| env("npm_config_globalconfig"))
            .map(PathBuf::from),
    );
    files.push(PathBuf::from("/etc/npmrc"));
    files.push(PathBuf::from("/usr/etc/npmrc"));
    match env("NPM_CONFIG_USERCONFIG").or_else(|| env("npm_config_userconfig")) {
        Some(u) => files.push(PathBuf::from(u)),
        None => files.extend(home().map(|h| h.join(".npmrc"))),
    }
    files.extend(project.map(|p| p.join(".npmrc")));
    let mut auth: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in &files {
        settings.npm_config_searched.push(f.display().to_string());
        let Some(text) = read(f) else { continue };
        for (k, v) in npmrc(&text) {
            if k == "registry" {
                settings
                    .npm_registries
                    .insert(String::new(), v.trim_end_matches('/').to_string());
            } else if let Some(scope) = k.strip_suffix(":registry").filter(|s| s.starts_with('@')) {
                settings
                    .npm_registries
                    .insert(scope.to_string(), v.trim_end_matches('/').to_string());
            } else if let Some(rest) = k.strip_prefix("//") {
                if let Some((prefix, key)) = rest.rsplit_once(":_") {
                    auth.entry(prefix.to_string())
                        .or_default()
                        .insert(format!("_{key}"), v);
                } else if let Some((prefix, key)) = rest.rsplit_once(':') {
                    auth.entry(prefix.to_string())
                        .or_default()
                        .insert(key.to_string(), v);
                }
            }
        }
    }
    settings
        .npm_config_searched
        .push("the npm_config_registry variable".into());
    if let Some(r) = env("npm_config_registry").or_else(|| env("NPM_CONFIG_REGISTRY")) {
        settings
            .npm_registries
            .insert(String::new(), r.trim_end_matches('/').to_string());
    }
    for (prefix, keys) in auth {
        let b64 = base64::engine::general_purpose::STANDARD;
        let header = if let Some(token) = keys.get("_authToken") {
            format!("Bearer {token}")
        } else if let Some(basic) = keys.get("_auth") {
            format!("Basic {basic}")
        } else if let (Some(user), Some(password)) = (keys.get("username"), keys.get("_password")) {
            let password = b64
                .decode(password)
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .unwrap_or_default();
            format!("Basic {}", b64.encode(format!("{user}:{password}")))
        } else {
            continue;
        };
        let prefix = if prefix.ends_with('/') {
            prefix
        } else {
            format!("{prefix}/")
        };
        for scheme in ["https", "http"] {
            settings.credentials.push(Credential {
                prefix: format!("{scheme}://{prefix}"),
                header: header.clone(),
            });
        }
    }
}

/// Where `[python]` and `[node]` download from; `npm_project` is the
/// folder of the recipe's package-lock.json (its `.npmrc` counts).
pub(crate) fn app_settings(npm_project: Option<&Path>) -> AppSettings {
    let mut settings = AppSettings::default();
    if let Some(index) = pip_index() {
        let (url, credential) = split_userinfo(&index);
        settings.pip_index = Some(url);
        settings.credentials.extend(credential);
    }
    npm(npm_project, &mut settings);
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_credentials_are_split_from_the_url() {
        let (url, c) = split_userinfo("https://me:p%40ss@pypi.invalid/simple/");
        assert_eq!(url, "https://pypi.invalid/simple");
        let c = c.unwrap();
        assert_eq!(c.prefix, "https://pypi.invalid/");
        assert_eq!(
            c.header,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("me:p@ss")
            )
        );
        assert_eq!(split_userinfo("https://x.invalid/simple").1, None);
    }

    #[test]
    fn npmrc_lines_are_read_as_npm_reads_them() {
        let lines = npmrc("; a comment\nregistry = \"https://r.invalid/npm/\"\n@s:registry=https://s.invalid/\n//r.invalid/npm/:_authToken=${STELE_TEST_UNSET_VARIABLE}x\n");
        assert_eq!(
            lines[0],
            ("registry".into(), "https://r.invalid/npm/".into())
        );
        assert_eq!(lines[1].0, "@s:registry");
        assert_eq!(lines[2], ("//r.invalid/npm/:_authToken".into(), "x".into()));
    }
}
