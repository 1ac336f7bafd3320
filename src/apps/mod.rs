//! Application dependencies from their ecosystems' own lockfiles: what
//! `[python]` (`crate::python`) and `[node]` (`crate::node`) share.
//!
//! - `resolve` (the pipeline's resolve stage): each platform's packages
//!   chosen from the lock, each archive fetched (`fetch`: through the
//!   run's transport, checked against the lock's hash) into the cache
//!   folder, or taken from a vendor folder, and unpacked once
//!   (`archive`, reading ZIP with `zip`) into a pack the cache keeps;
//! - `layers` (the pure build): per platform, one layer of Python
//!   packages and one of npm packages, and what SBOMs say of them.

pub mod archive;
pub mod choose;
pub mod fetch;
pub mod layers;
pub mod locking;
pub mod resolve;
pub(crate) mod zip;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

pub use fetch::Credential;
pub use layers::app_layers;
pub use resolve::{resolve, AppInputs, AppsError};

/// A lockfile is text a tool wrote; anything this big is not one.
pub const LOCK_LIMIT: u64 = 256 << 20;

/// Reads a regular file (never through a final symlink into a device or
/// a fifo), refusing more than `limit` bytes.
pub fn read_input(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// `%2B` → `+`: a URL's percent-escapes decoded (a wheel's file name in
/// its URL, a password in an index URL); invalid escapes stay as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where Python and npm packages are downloaded from, as the user's own
/// tools are configured; decided once by the CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppSettings {
    /// pip's index (`PIP_INDEX_URL`, `UV_INDEX_URL`/`UV_DEFAULT_INDEX`,
    /// pip.conf `index-url`), without a trailing `/`. With one, wheels are
    /// found through its Simple API instead of the lock's URLs.
    pub pip_index: Option<String>,
    /// npm's registries: `""` the default (`npm_config_registry`,
    /// `.npmrc` `registry=`), `@scope` a scope's (`@scope:registry=`),
    /// without a trailing `/`.
    pub npm_registries: BTreeMap<String, String>,
    /// Credentials by URL prefix (an index URL's `user:password`, an
    /// `.npmrc` `//host/path/:_authToken` or `_auth`).
    pub credentials: Vec<Credential>,
    /// Where npm's configuration was looked for, for the message that
    /// says none names a registry.
    pub npm_config_searched: Vec<String>,
}
