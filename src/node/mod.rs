//! Node.js packages from npm's `package-lock.json`, laid out in
//! `node_modules` as `npm ci --omit=dev --ignore-scripts` leaves them,
//! without running npm or Node.js:
//!
//! - `lock` reads the lock and chooses, per platform, the packages to
//!   install (dev packages, optional packages for other systems, bundled
//!   packages left out as npm leaves them out);
//! - `layout` extracts each package's tarball at its path, with npm's
//!   file modes, and links each `bin` into `node_modules/.bin`.
//!
//! Install scripts (`preinstall`, `install`, `postinstall`, an implicit
//! `node-gyp rebuild`) are never run: a package that has them is refused
//! unless the recipe names it in `[node] skip-scripts`, so nothing is
//! ever silently half-installed.

pub mod layout;
pub mod lock;

use std::fmt;
use std::path::PathBuf;

use crate::oci::Platform;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot read the npm lock {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Lock { path: PathBuf, message: String },
    #[error("{path}: lockfileVersion {version} is from the future; this stele reads lockfileVersion 2 and 3 (npm 7 and later); update stele, or write the lock with an npm that writes version 3")]
    FutureLock { path: PathBuf, version: u64 },
    #[error("{path}: package {package} has install scripts (preinstall, install, postinstall or a node-gyp build), which stele never runs; if it works without them, add \"{name}\" to [node] skip-scripts (as `npm ci --ignore-scripts` would install it), else build the image another way")]
    InstallScript {
        path: PathBuf,
        package: String,
        name: String,
    },
    #[error("{path}: package {package} is {what}; stele installs registry packages only")]
    Unsupported {
        path: PathBuf,
        package: String,
        what: &'static str,
    },
    #[error("{path}: package {package} does not run on {platform} (it wants {wants}) and is not optional; drop the platform or the package")]
    BadPlatform {
        path: PathBuf,
        package: String,
        platform: String,
        wants: String,
    },
    #[error("{platform}: {package}: {message}")]
    Layout {
        platform: String,
        package: String,
        message: String,
    },
}

/// `process.platform`, `process.arch` and the C library of an image, as
/// npm compares a package's `os`, `cpu` and `libc` with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlatform {
    pub os: String,
    pub cpu: String,
    /// `glibc` (Debian) or `musl`.
    pub libc: String,
}

impl NodePlatform {
    /// The values Node.js reports on `platform` with a glibc image;
    /// `None` for an architecture Node.js does not name.
    pub fn of(platform: &Platform) -> Option<NodePlatform> {
        let cpu = match (platform.architecture.as_str(), platform.variant.as_deref()) {
            ("amd64", _) => "x64",
            ("arm64", _) => "arm64",
            ("arm", _) => "arm",
            ("386", _) => "ia32",
            ("ppc64le", _) => "ppc64",
            ("s390x", _) => "s390x",
            ("riscv64", _) => "riscv64",
            ("mips64le", _) => "mips64el",
            ("loong64", _) => "loong64",
            _ => return None,
        };
        (platform.os == "linux").then(|| NodePlatform {
            os: "linux".into(),
            cpu: cpu.into(),
            libc: "glibc".into(),
        })
    }
}

impl fmt::Display for NodePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.os, self.cpu, self.libc)
    }
}
