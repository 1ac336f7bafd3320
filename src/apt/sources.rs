//! Where a recipe's apt sources are: a mirror's base URL and the keys that
//! must sign it. Mirrors are locations, never identity, so nothing here
//! reaches a lockfile or an image.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::apt::fetch::join_url;
use crate::apt::hostconf;
use crate::apt::release::{Keyring, ReleaseError};
use crate::lock::LockedPackage;
use crate::recipe::AptSource;

/// Where mirrors and keys come from, decided once by the CLI from the
/// machine's apt configuration root and `STELE_MIRROR_<NAME>` variables.
#[derive(Clone, Debug)]
pub struct AptSettings {
    /// Root under which `etc/apt` is read for `mirror = "host"` (normally `/`).
    pub host_root: PathBuf,
    /// `STELE_MIRROR_<NAME>` values by NAME.
    pub mirrors: BTreeMap<String, String>,
    /// Parallel downloads.
    pub jobs: usize,
}

impl Default for AptSettings {
    fn default() -> Self {
        AptSettings {
            host_root: PathBuf::from("/"),
            mirrors: BTreeMap::new(),
            jobs: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("{loc}: mirror = \"host\" but the machine's apt configuration ({root}etc/apt) has no `deb` source for suite {suite}; add one, or set mirror to a URL")]
    NoHostSource {
        loc: String,
        root: String,
        suite: String,
    },
    #[error("{loc}: mirror = \"{name}\" but STELE_MIRROR_{name} is not set; export it as the mirror's base URL")]
    NoMirrorVariable { loc: String, name: String },
    #[error("{loc}: mirror {mirror} has no keyring: add `keyring = \"path/to/keyring.gpg\"` to this source (binary or armored OpenPGP keys)")]
    NoKeyring { loc: String, mirror: String },
    #[error("{loc}: cannot read keyring {path}")]
    KeyringRead {
        loc: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{loc}: {error}")]
    Keyring { loc: String, error: ReleaseError },
    #[error("{loc}: {error}")]
    HostConf {
        loc: String,
        error: hostconf::HostConfError,
    },
}

/// A recipe source made concrete: base URL and the keys that must sign it.
pub(crate) struct Located {
    pub url: String,
    pub keyring: Keyring,
}

/// Finds where `src` is and which keys sign it: the machine's apt
/// configuration for `mirror = "host"`, a URL as written, or the
/// `STELE_MIRROR_<NAME>` value for a name. The recipe's `keyring` wins
/// over the host source's `Signed-By`.
pub(crate) fn locate(src: &AptSource, settings: &AptSettings) -> Result<Located, SourcesError> {
    let loc = src.loc.0.clone();
    let recipe_keyring = || -> Result<Option<Keyring>, SourcesError> {
        let Some(path) = &src.keyring else {
            return Ok(None);
        };
        let bytes = std::fs::read(path).map_err(|e| SourcesError::KeyringRead {
            loc: loc.clone(),
            path: path.clone(),
            source: e,
        })?;
        let ring = Keyring::parse(&bytes, &path.display().to_string()).map_err(|e| {
            SourcesError::Keyring {
                loc: loc.clone(),
                error: e,
            }
        })?;
        Ok(Some(ring))
    };
    if src.mirror == "host" {
        let sources =
            hostconf::host_sources(&settings.host_root).map_err(|e| SourcesError::HostConf {
                loc: loc.clone(),
                error: e,
            })?;
        let host = hostconf::find_host_source(&sources, &src.suite).ok_or_else(|| {
            SourcesError::NoHostSource {
                loc: loc.clone(),
                root: settings
                    .host_root
                    .display()
                    .to_string()
                    .trim_end_matches('/')
                    .to_string()
                    + "/",
                suite: src.suite.clone(),
            }
        })?;
        let keyring = match recipe_keyring()? {
            Some(k) => k,
            None => hostconf::load_keyring(&settings.host_root, host).map_err(|e| {
                SourcesError::HostConf {
                    loc: loc.clone(),
                    error: e,
                }
            })?,
        };
        return Ok(Located {
            url: host.uri.clone(),
            keyring,
        });
    }
    let url = if src.mirror.contains("://") {
        src.mirror.clone()
    } else {
        settings.mirrors.get(&src.mirror).cloned().ok_or_else(|| {
            SourcesError::NoMirrorVariable {
                loc: loc.clone(),
                name: src.mirror.clone(),
            }
        })?
    };
    let keyring = recipe_keyring()?.ok_or_else(|| SourcesError::NoKeyring {
        loc: loc.clone(),
        mirror: url.clone(),
    })?;
    Ok(Located { url, keyring })
}

/// The URL of a locked package on the mirror `mirror_url`.
pub(crate) fn package_url(mirror_url: &str, p: &LockedPackage) -> String {
    join_url(mirror_url, &p.path)
}
