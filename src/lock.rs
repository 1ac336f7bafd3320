//! The lockfile: everything a build needs to fetch exactly the same bytes
//! again, and nothing about where they were fetched from (mirrors are
//! locations, digests are identity). TOML, sorted, meant to be diffed in
//! review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::oci::Digest;

pub const LOCK_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format version of this file.
    pub version: u32,
    /// Digest of the canonical recipe's apt inputs (sources, packages,
    /// platforms): when it differs from the recipe's, the lock is stale.
    pub recipe_digest: Digest,
    /// Encoding profile the lock's builds use (unless the recipe names
    /// one: then the two agree, or the lock is stale).
    pub encoding: crate::layer::Profile,
    #[serde(default, rename = "source")]
    pub sources: Vec<LockedSource>,
    /// Per platform (`linux/amd64`), the packages to install, sorted by name.
    #[serde(default)]
    pub platforms: BTreeMap<String, LockedPlatform>,
    /// `[python]`: the pylock.toml in force and the wheel each platform
    /// installs from it. Locks without it still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<LockedApps>,
    /// `[node]`: the package-lock.json in force and the packages each
    /// platform installs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<LockedApps>,
}

/// An ecosystem's lockfile as the build used it: its digest, and per
/// platform what it installs (derived from it and the interpreter the
/// Debian packages give, so a review of the stele lock shows which
/// package changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedApps {
    /// The lockfile's path as the recipe writes it.
    pub lockfile: String,
    pub lockfile_sha256: Digest,
    /// Per platform, the packages, sorted.
    #[serde(default)]
    pub platforms: BTreeMap<String, Vec<LockedAppPackage>>,
}

/// One Python or npm package of one platform.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedAppPackage {
    pub name: String,
    pub version: String,
    /// The wheel's file name, or the npm package's path in the project.
    pub file: String,
    /// The wheel's sha256, or the npm tarball's integrity.
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    pub suite: String,
    pub components: Vec<String>,
    /// sha256 of the InRelease file the packages were resolved from.
    pub inrelease_sha256: Digest,
    /// That InRelease's `Date`, in UTC (`2024-06-29T09:05:49Z`): when the
    /// archive looked as the lock says, so a snapshot of it at that time
    /// still has the .debs the mirror dropped. Where-from only, like a
    /// mirror: locks written before it existed have none, and stay fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlatform {
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
    /// The recipe's `[apt] alternatives` choices for this platform (name
    /// → path), which the build holds the installed packages to; names
    /// not listed follow the highest priority among the locked packages.
    /// Locks written before this existed have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alternatives: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Index into `sources`.
    pub source: usize,
    /// Pool path relative to the mirror root.
    pub path: String,
    pub size: u64,
    pub sha256: Digest,
    /// When the indexes it was resolved from were made, for a package
    /// kept by `stele lock --update` at a version its source's current
    /// indexes no longer list: a snapshot archive has it as of then, not
    /// as of the source's `date`. Where-from only, like the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read lockfile {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}; delete it and run `stele lock` again")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write lockfile {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is version {found}, this stele reads version {LOCK_VERSION}; run `stele lock` to rewrite it")]
    Version { path: PathBuf, found: u32 },
}

impl Lock {
    pub fn load(path: &Path) -> Result<Lock, LockError> {
        let text = std::fs::read_to_string(path).map_err(|e| LockError::Read {
            path: path.into(),
            error: e,
        })?;
        let lock: Lock = toml::from_str(&text).map_err(|e| {
            let (l, c) = e
                .span()
                .map_or((1, 1), |s| crate::recipe::line_col(&text, s.start));
            LockError::Parse {
                path: path.into(),
                message: format!("line {l} column {c}: {}", e.message().trim_end()),
            }
        })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version {
                path: path.into(),
                found: lock.version,
            });
        }
        Ok(lock)
    }

    /// The canonical text: sorted packages, a header comment saying what
    /// the file is. Same lock, same bytes.
    pub(crate) fn to_text(&self) -> String {
        let mut sorted = self.clone();
        for p in sorted.platforms.values_mut() {
            p.packages.sort();
        }
        let body = toml::to_string(&sorted).expect("lock serializes");
        format!("# stele lockfile: written by `stele lock`, read by `stele build`. Do not edit.\n{body}")
    }

    /// The lockfile path for a recipe: `<stem>.lock` beside it.
    pub(crate) fn path_for(recipe: &Path) -> PathBuf {
        recipe.with_extension("lock")
    }

    /// Writes the lockfile at `path` through a temp file and a rename, so
    /// a reader sees the old lock or the new one. Created 0666 before the
    /// umask, as any file a user's tool writes.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        use std::io::Write;
        let err = |source| LockError::Write {
            path: path.into(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = crate::store::temp_file_in(dir, ".stele-tmp-").map_err(err)?;
        tmp.write_all(self.to_text().as_bytes()).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts() {
        let pkg = |n: &str| LockedPackage {
            name: n.into(),
            version: "1.0-1".into(),
            architecture: "amd64".into(),
            source: 0,
            path: format!("pool/main/{n}.deb"),
            size: 10,
            sha256: Digest::of(n.as_bytes()),
            date: None,
        };
        let mut platforms = BTreeMap::new();
        platforms.insert(
            "linux/amd64".into(),
            LockedPlatform {
                packages: vec![pkg("zz"), pkg("aa")],
                alternatives: BTreeMap::from([("awk".to_string(), "/usr/bin/mawk".to_string())]),
            },
        );
        let lock = Lock {
            version: LOCK_VERSION,
            recipe_digest: Digest::of(b"r"),
            encoding: crate::layer::Profile::V2026_1,
            sources: vec![LockedSource {
                suite: "bookworm".into(),
                components: vec!["main".into()],
                inrelease_sha256: Digest::of(b"i"),
                date: Some("2001-09-09T01:46:40Z".into()),
            }],
            platforms,
            python: None,
            node: None,
        };
        let text = lock.to_text();
        assert!(
            text.find("name = \"aa\"").unwrap() < text.find("name = \"zz\"").unwrap(),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        std::fs::write(&p, &text).unwrap();
        let back = Lock::load(&p).unwrap();
        assert_eq!(back.to_text(), text);
        assert!(
            text.contains("[platforms.\"linux/amd64\".alternatives]\nawk = \"/usr/bin/mawk\"\n"),
            "{text}"
        );
        // A lock from before alternatives were recorded still reads.
        let old = text.replace(
            "[platforms.\"linux/amd64\".alternatives]\nawk = \"/usr/bin/mawk\"\n",
            "",
        );
        std::fs::write(&p, &old).unwrap();
        assert!(Lock::load(&p).unwrap().platforms["linux/amd64"]
            .alternatives
            .is_empty());
        // So does one from before sources recorded their date.
        assert!(text.contains("date = \"2001-09-09T01:46:40Z\"\n"), "{text}");
        let old = text.replace("date = \"2001-09-09T01:46:40Z\"\n", "");
        std::fs::write(&p, &old).unwrap();
        assert_eq!(Lock::load(&p).unwrap().sources[0].date, None);
        assert_eq!(Lock::load(&p).unwrap().to_text(), old);
    }
}
