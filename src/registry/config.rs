//! Per-registry settings as podman, skopeo and buildah users already
//! write them: containers-registries.conf(5), version 2 (`[[registry]]`
//! with `prefix`, `location`, `insecure`, `blocked`, and
//! `[[registry.mirror]]` with `location`, `insecure`, `pull-from-mirror`),
//! and version 1's `[registries.insecure]` and `[registries.block]` lists.
//! Keys stele has no use for (search registries, short-name aliases,
//! credential helpers) are left alone.
//!
//! What an entry means here:
//! - `insecure = true`: the registry may be spoken to in plain HTTP, and
//!   its certificate is not checked (it is asked over HTTP first and
//!   switched to HTTPS when it answers as a TLS server);
//! - `blocked = true`: nothing is pulled from or pushed to it;
//! - `location`: where the `prefix`-rooted names really live;
//! - mirrors: tried in order before the location for pulls (never for
//!   pushes); a mirror's content is checked against the digests the
//!   reference or the registry names like any registry's, so a mirror can
//!   cost time but not change an image pinned by digest.
//!
//! The CLI finds the files (`--registries-conf`, `CONTAINERS_REGISTRIES_CONF`,
//! the user's and the system's); this reads the paths it is given. A CA for
//! one registry lives in its certs.d folder, not here, as for podman.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Reference, RegistryError};

/// The most a registries.conf may be; podman's own is a few kB.
const FILE_LIMIT: u64 = 1 << 20;

/// From which references a mirror may serve a pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullFrom {
    All,
    DigestOnly,
    TagOnly,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from: PullFrom,
}

/// One `[[registry]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What names it covers: `host[:port][/path]`, or `*.domain`.
    pub prefix: String,
    /// Where they live; empty for a wildcard prefix (the name as given).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirrors: Vec<Mirror>,
    /// The file it came from, for messages.
    pub file: PathBuf,
}

/// Where one pull or push goes: the reference as that place names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub reference: Reference,
    /// A mirror (pulls only), not the registry itself.
    pub mirror: bool,
}

/// Every entry of the files read, later files replacing earlier entries
/// of the same prefix (drop-ins over the main file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    entries: Vec<Entry>,
}

fn config_error(path: &Path, message: impl Into<String>) -> RegistryError {
    RegistryError::Config {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads `path` as untrusted input: a regular file (a FIFO or a device is
/// refused before a byte is read), at most [`FILE_LIMIT`] bytes.
fn read_bounded(path: &Path) -> Result<Option<String>, RegistryError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(config_error(path, e.to_string())),
    };
    let meta = file
        .metadata()
        .map_err(|e| config_error(path, e.to_string()))?;
    if !meta.is_file() {
        return Err(config_error(path, "not a regular file"));
    }
    if meta.len() > FILE_LIMIT {
        return Err(config_error(
            path,
            format!(
                "{} bytes is beyond the {FILE_LIMIT}-byte limit for a registries.conf",
                meta.len()
            ),
        ));
    }
    let mut text = String::new();
    file.take(FILE_LIMIT)
        .read_to_string(&mut text)
        .map_err(|e| config_error(path, e.to_string()))?;
    Ok(Some(text))
}

mod file {
    //! The file as written; unknown keys are other tools' business.
    #[derive(serde::Deserialize, Default)]
    pub struct File {
        #[serde(default)]
        pub registry: Vec<Registry>,
        /// Version 1.
        pub registries: Option<V1>,
    }

    #[derive(serde::Deserialize)]
    pub struct Registry {
        pub prefix: Option<String>,
        pub location: Option<String>,
        #[serde(default)]
        pub insecure: bool,
        #[serde(default)]
        pub blocked: bool,
        #[serde(default, rename = "mirror-by-digest-only")]
        pub mirror_by_digest_only: bool,
        #[serde(default)]
        pub mirror: Vec<Mirror>,
    }

    #[derive(serde::Deserialize)]
    pub struct Mirror {
        pub location: String,
        #[serde(default)]
        pub insecure: bool,
        #[serde(rename = "pull-from-mirror")]
        pub pull_from_mirror: Option<String>,
    }

    #[derive(serde::Deserialize)]
    pub struct V1 {
        pub insecure: Option<List>,
        pub block: Option<List>,
    }

    #[derive(serde::Deserialize)]
    pub struct List {
        #[serde(default)]
        pub registries: Vec<String>,
    }
}

impl RegistriesConf {
    /// Reads `files` in order (a missing one is skipped); an entry for a
    /// prefix an earlier file had replaces it.
    pub fn load(files: &[PathBuf]) -> Result<RegistriesConf, RegistryError> {
        let mut conf = RegistriesConf::default();
        for path in files {
            let Some(text) = read_bounded(path)? else {
                continue;
            };
            for entry in parse(path, &text)? {
                conf.entries.retain(|e| e.prefix != entry.prefix);
                conf.entries.push(entry);
            }
        }
        Ok(conf)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry whose prefix matches `reference` longest.
    pub fn entry(&self, reference: &Reference) -> Option<&Entry> {
        let name = reference.to_string();
        self.entries
            .iter()
            .filter(|e| matches(&e.prefix, &name, reference.hostname()))
            .max_by_key(|e| e.prefix.len())
    }

    /// Where a pull of `reference` is tried, in order: the mirrors that
    /// may serve it, then the location (or the reference itself).
    pub fn pull_endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, RegistryError> {
        let Some(e) = self.entry(reference) else {
            return Ok(vec![Endpoint {
                reference: reference.clone(),
                mirror: false,
            }]);
        };
        refuse_blocked(e, reference)?;
        let mut out = Vec::new();
        for m in &e.mirrors {
            let serves = match m.pull_from {
                PullFrom::All => true,
                PullFrom::DigestOnly => reference.digest.is_some(),
                PullFrom::TagOnly => reference.digest.is_none(),
            };
            if serves {
                out.push(Endpoint {
                    reference: rewrite(e, &m.location, reference)?,
                    mirror: true,
                });
            }
        }
        out.push(Endpoint {
            reference: rewrite(e, &e.location, reference)?,
            mirror: false,
        });
        Ok(out)
    }

    /// Whether `reference` may be pushed to: not blocked. A push goes
    /// where the reference says, never to a mirror, and is not moved to
    /// the entry's location (podman and skopeo push the same way).
    pub fn check_push(&self, reference: &Reference) -> Result<(), RegistryError> {
        match self.entry(reference) {
            None => Ok(()),
            Some(e) => refuse_blocked(e, reference),
        }
    }

    /// The registries (`host[:port]`) marked insecure, mirrors included.
    pub fn insecure_registries(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            let mut add = |location: &str| {
                let host = location.split('/').next().unwrap_or(location);
                if !host.is_empty() && !host.starts_with("*.") && !out.iter().any(|h| h == host) {
                    out.push(host.to_string());
                }
            };
            if e.insecure {
                add(if e.location.is_empty() {
                    &e.prefix
                } else {
                    &e.location
                });
            }
            for m in e.mirrors.iter().filter(|m| m.insecure) {
                add(&m.location);
            }
        }
        out
    }
}

fn refuse_blocked(e: &Entry, reference: &Reference) -> Result<(), RegistryError> {
    if e.blocked {
        return Err(config_error(
            &e.file,
            format!(
                "`{reference}` is blocked by the entry for `{}`; remove `blocked = true` there, or name another registry",
                e.prefix
            ),
        ));
    }
    Ok(())
}

/// Whether `prefix` covers the reference `name` (on `host`): the prefix
/// followed by the end or a separator (`/`, `:`, `@`), as
/// containers-registries.conf(5) matches; `*.domain` covers the hosts
/// under `domain`.
fn matches(prefix: &str, name: &str, host: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        return host.ends_with(&format!(".{domain}"));
    }
    match name.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with(['/', ':', '@']),
        None => false,
    }
}

/// `reference` with the entry's prefix replaced by `location`.
fn rewrite(e: &Entry, location: &str, reference: &Reference) -> Result<Reference, RegistryError> {
    if location.is_empty() || e.prefix.starts_with("*.") {
        return Ok(reference.clone());
    }
    let name = reference.to_string();
    let rest = name.strip_prefix(&e.prefix).unwrap_or("");
    let rewritten = format!("{location}{rest}");
    Reference::parse(&rewritten).map_err(|err| {
        config_error(
            &e.file,
            format!(
                "the entry for `{}` turns `{reference}` into `{rewritten}`, which is not a reference: {err}",
                e.prefix
            ),
        )
    })
}

fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, RegistryError> {
    let f: file::File = toml::from_str(text)
        .map_err(|e| config_error(path, format!("not a containers-registries.conf: {e}")))?;
    if f.registries.is_some() && !f.registry.is_empty() {
        return Err(config_error(
            path,
            "mixes version 1 ([registries.*]) and version 2 ([[registry]]) tables; keep one",
        ));
    }
    let mut entries = Vec::new();
    for r in f.registry {
        let location = r
            .location
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let prefix = match r.prefix {
            Some(p) if !p.is_empty() => p.trim_end_matches('/').to_string(),
            _ => location.clone(),
        };
        if prefix.is_empty() {
            return Err(config_error(
                path,
                "a [[registry]] table has neither `prefix` nor `location`",
            ));
        }
        if location.is_empty() && !prefix.starts_with("*.") {
            return Err(config_error(
                path,
                format!("the [[registry]] for `{prefix}` has no `location`"),
            ));
        }
        let mut mirrors = Vec::new();
        for m in r.mirror {
            let pull_from = match m.pull_from_mirror.as_deref() {
                None if r.mirror_by_digest_only => PullFrom::DigestOnly,
                None | Some("all") => PullFrom::All,
                Some("digest-only") => PullFrom::DigestOnly,
                Some("tag-only") => PullFrom::TagOnly,
                Some(other) => {
                    return Err(config_error(
                        path,
                        format!("pull-from-mirror = \"{other}\" for `{prefix}`: it is \"all\", \"digest-only\" or \"tag-only\""),
                    ))
                }
            };
            mirrors.push(Mirror {
                location: m.location.trim_end_matches('/').to_string(),
                insecure: m.insecure,
                pull_from,
            });
        }
        entries.push(Entry {
            prefix,
            location,
            insecure: r.insecure,
            blocked: r.blocked,
            mirrors,
            file: path.to_path_buf(),
        });
    }
    if let Some(v1) = f.registries {
        let lists = [(v1.insecure, true), (v1.block, false)];
        for (list, insecure) in lists {
            for host in list.map(|l| l.registries).unwrap_or_default() {
                let existing = entries.iter_mut().find(|e| e.prefix == host);
                let entry = match existing {
                    Some(e) => e,
                    None => {
                        entries.push(Entry {
                            prefix: host.clone(),
                            location: host.clone(),
                            insecure: false,
                            blocked: false,
                            mirrors: Vec::new(),
                            file: path.to_path_buf(),
                        });
                        entries.last_mut().expect("just pushed")
                    }
                };
                if insecure {
                    entry.insecure = true;
                } else {
                    entry.blocked = true;
                }
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf {
            entries: parse(Path::new("registries.conf"), text).unwrap(),
        }
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn the_longest_prefix_decides_and_mirrors_come_first_for_pulls() {
        let c = conf(
            r#"
unqualified-search-registries = ["registry.example"]
[aliases]
"app" = "registry.example/team/app"

[[registry]]
location = "registry.example"
insecure = true

[[registry]]
prefix = "registry.example/team"
location = "internal.example:5000/mirror/team"
[[registry.mirror]]
location = "cache.example/team"
[[registry.mirror]]
location = "digests.example/team"
pull-from-mirror = "digest-only"
"#,
        );
        let tagged = r("registry.example/team/app:1");
        let got: Vec<String> = c
            .pull_endpoints(&tagged)
            .unwrap()
            .iter()
            .map(|e| e.reference.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "cache.example/team/app:1",
                "internal.example:5000/mirror/team/app:1"
            ]
        );
        let pinned = r(&format!(
            "registry.example/team/app@sha256:{}",
            "a".repeat(64)
        ));
        assert_eq!(c.pull_endpoints(&pinned).unwrap().len(), 3);
        assert!(c.check_push(&tagged).is_ok());
        // `registry.example/teams` is not under `registry.example/team`.
        let other = r("registry.example/teams/x:1");
        assert_eq!(c.entry(&other).unwrap().prefix, "registry.example");
        assert!(c.entry(&r("elsewhere.example/x")).is_none());
        assert_eq!(c.insecure_registries(), ["registry.example"]);
    }

    #[test]
    fn version_1_lists_blocking_and_wildcards() {
        let c = conf(
            r#"
[registries.insecure]
registries = ["127.0.0.1:5000"]
[registries.block]
registries = ["bad.example"]
"#,
        );
        assert_eq!(c.insecure_registries(), ["127.0.0.1:5000"]);
        let e = c.pull_endpoints(&r("bad.example/x:1")).unwrap_err();
        assert!(e.to_string().contains("blocked"), "{e}");
        assert!(c.check_push(&r("bad.example/x:1")).is_err());

        let c = conf("[[registry]]\nprefix = \"*.corp.example\"\ninsecure = true\n");
        let e = c.entry(&r("a.corp.example/x")).unwrap();
        assert!(e.insecure);
        assert!(c.entry(&r("corp.example/x")).is_none());
        // The name is kept as it is.
        let pulled = c.pull_endpoints(&r("a.corp.example/x:1")).unwrap();
        assert_eq!(pulled[0].reference.to_string(), "a.corp.example/x:1");
    }

    #[test]
    fn mistakes_are_named() {
        let bad = |text: &str| parse(Path::new("r.conf"), text).unwrap_err().to_string();
        assert!(bad("[[registry]]\ninsecure = true\n").contains("neither"));
        assert!(bad("[[registry]]\nlocation = \"x.example\"\n[[registry.mirror]]\nlocation = \"m.example\"\npull-from-mirror = \"some\"\n").contains("pull-from-mirror"));
        assert!(bad(
            "[registries.insecure]\nregistries = []\n[[registry]]\nlocation = \"x.example\"\n"
        )
        .contains("mixes"));
        assert!(bad("[[registry]\n").contains("r.conf"));
    }
}
