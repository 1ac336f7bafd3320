//! PEP 751 lock files (`pylock.toml`, the "pylock.toml specification"):
//! read, then judged per platform into the wheels to install. Only
//! wheels are installed: an sdist, a VCS checkout, a directory or an
//! archive would need a build backend run, which stele never does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::markers::{Environment, Marker};
use super::tags::{rank, Interpreter, WheelName};
use super::version::SpecifierSet;
use super::PythonError;
use crate::oci::Digest;

/// Lock files are text a tool wrote; anything this big is not one.
pub const PYLOCK_LIMIT: u64 = 64 << 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    lock_version: Spanned<String>,
    #[serde(default)]
    environments: Option<Vec<String>>,
    #[serde(default)]
    requires_python: Option<String>,
    #[serde(default)]
    default_groups: Vec<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    packages: Vec<Spanned<Package>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Package {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    marker: Option<String>,
    #[serde(default)]
    requires_python: Option<String>,
    #[serde(default)]
    index: Option<String>,
    #[serde(default)]
    vcs: Option<toml::Value>,
    #[serde(default)]
    directory: Option<toml::Value>,
    #[serde(default)]
    archive: Option<toml::Value>,
    #[serde(default)]
    sdist: Option<toml::Value>,
    #[serde(default)]
    wheels: Vec<WheelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct WheelEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// A lock file, read and checked in itself (its version, every marker);
/// `select` judges it for one platform.
#[derive(Debug)]
pub struct PyLock {
    pub path: PathBuf,
    pub digest: Digest,
    file: File,
    text: String,
}

/// Where a wheel is: a URL, or a file beside the lock.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WheelSource {
    Url(String),
    File(PathBuf),
}

/// The wheel chosen for one package on one platform.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChosenWheel {
    /// The name as the lock writes it.
    pub name: String,
    pub version: String,
    /// The wheel's file name.
    pub file: String,
    pub source: WheelSource,
    /// The index the lock says it came from, if it says.
    pub index: Option<String>,
    pub sha256: Digest,
    pub size: Option<u64>,
}

/// PEP 503's normalized name: lowercase, runs of `-_.` as one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

impl PyLock {
    /// Reads the lock `path` (what the recipe names, `shown` as it wrote it).
    pub fn load(path: &Path) -> Result<PyLock, PythonError> {
        let bytes =
            crate::apps::read_input(path, PYLOCK_LIMIT).map_err(|error| PythonError::Read {
                path: path.to_path_buf(),
                error,
            })?;
        PyLock::parse(path, bytes)
    }

    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<PyLock, PythonError> {
        let digest = Digest::of(&bytes);
        let text = String::from_utf8(bytes).map_err(|_| PythonError::Lock {
            place: path.display().to_string(),
            message: "is not UTF-8 text".into(),
        })?;
        let file: File = toml::from_str(&text).map_err(|e| {
            let (l, c) = e
                .span()
                .map_or((1, 1), |s| crate::recipe::line_col(&text, s.start));
            PythonError::Lock {
                place: format!("{}:{l}:{c}", path.display()),
                message: e.message().trim_end().to_string(),
            }
        })?;
        let lock = PyLock {
            path: path.to_path_buf(),
            digest,
            file,
            text,
        };
        lock.check()?;
        Ok(lock)
    }

    fn place<T>(&self, s: &Spanned<T>) -> String {
        let (l, c) = crate::recipe::line_col(&self.text, s.span().start);
        format!("{}:{l}:{c}", self.path.display())
    }

    /// The version (PEP 751: a tool MUST refuse a major version it does
    /// not know; a newer minor version only adds keys) and every marker.
    fn check(&self) -> Result<(), PythonError> {
        let v = self.file.lock_version.get_ref();
        let major = v.split('.').next().and_then(|m| m.parse::<u32>().ok());
        if major != Some(1) {
            return Err(PythonError::FutureLock {
                place: self.place(&self.file.lock_version),
                version: v.clone(),
                created_by: self.file.created_by.clone().unwrap_or_default(),
            });
        }
        for e in self.file.environments.iter().flatten() {
            Marker::parse(e).map_err(|e| PythonError::Lock {
                place: format!("{} environments", self.path.display()),
                message: e.to_string(),
            })?;
        }
        if let Some(rp) = &self.file.requires_python {
            SpecifierSet::parse(rp).ok_or_else(|| PythonError::Lock {
                place: format!("{} requires-python", self.path.display()),
                message: format!("`{rp}` is not a version specifier"),
            })?;
        }
        for p in &self.file.packages {
            if let Some(m) = &p.get_ref().marker {
                Marker::parse(m).map_err(|e| PythonError::Lock {
                    place: self.place(p),
                    message: format!("package {}: {e}", p.get_ref().name),
                })?;
            }
        }
        Ok(())
    }

    /// The groups installed when the recipe names none (`default-groups`).
    pub fn default_groups(&self) -> BTreeSet<String> {
        self.file.default_groups.iter().cloned().collect()
    }

    /// The wheels to install for a platform whose interpreter is
    /// `interpreter` and whose marker values are `env`, sorted by
    /// normalized name. `platform` names it in errors.
    pub fn select(
        &self,
        interpreter: &Interpreter,
        env: &Environment,
        platform: &str,
    ) -> Result<Vec<ChosenWheel>, PythonError> {
        if let Some(envs) = &self.file.environments {
            let fits = envs
                .iter()
                .any(|e| Marker::parse(e).is_ok_and(|m| m.holds(env)));
            if !fits {
                return Err(PythonError::NoEnvironment {
                    path: self.path.clone(),
                    platform: platform.to_string(),
                    python: interpreter.full_version.clone(),
                    environments: envs.join(" | "),
                });
            }
        }
        if let Some(rp) = &self.file.requires_python {
            if !SpecifierSet::parse(rp).is_some_and(|s| s.contains(&interpreter.full_version)) {
                return Err(PythonError::RequiresPython {
                    place: format!("{} requires-python", self.path.display()),
                    what: "the lock".into(),
                    specifier: rp.clone(),
                    for_python: format!("{platform} is {}", interpreter.full_version),
                });
            }
        }
        let supported = interpreter.supported_tags();
        let mut chosen: BTreeMap<String, ChosenWheel> = BTreeMap::new();
        for spanned in &self.file.packages {
            let p = spanned.get_ref();
            let applies = p
                .marker
                .as_ref()
                .map_or(true, |m| Marker::parse(m).is_ok_and(|m| m.holds(env)));
            if !applies {
                continue;
            }
            let place = self.place(spanned);
            let version = p.version.clone().unwrap_or_default();
            let label = format!("{} {}", p.name, version).trim_end().to_string();
            if let Some(rp) = &p.requires_python {
                if !SpecifierSet::parse(rp).is_some_and(|s| s.contains(&interpreter.full_version)) {
                    return Err(PythonError::RequiresPython {
                        place,
                        what: format!("package {label}"),
                        specifier: rp.clone(),
                        for_python: format!("{platform} is {}", interpreter.full_version),
                    });
                }
            }
            if p.wheels.is_empty() {
                let kind = if p.sdist.is_some() {
                    "only a source distribution (sdist)"
                } else if p.vcs.is_some() {
                    "only a VCS checkout"
                } else if p.directory.is_some() {
                    "only a local directory"
                } else if p.archive.is_some() {
                    "only an archive URL"
                } else {
                    "no file at all"
                };
                return Err(PythonError::NoWheels {
                    place,
                    package: label,
                    kind,
                });
            }
            let mut best: Option<(usize, &WheelEntry, String)> = None;
            let mut names = Vec::new();
            for w in &p.wheels {
                let file = wheel_file_name(w).ok_or_else(|| PythonError::Lock {
                    place: place.clone(),
                    message: format!(
                        "package {label}: a wheel has neither a name, a url nor a path"
                    ),
                })?;
                let parsed = WheelName::parse(&file).ok_or_else(|| PythonError::Lock {
                    place: place.clone(),
                    message: format!("package {label}: `{file}` is not a wheel file name"),
                })?;
                if let Some(r) = rank(&parsed.tags, &supported) {
                    if best.as_ref().map_or(true, |(b, _, _)| r < *b) {
                        best = Some((r, w, file.clone()));
                    }
                }
                names.push(file);
            }
            let Some((_, wheel, file)) = best else {
                let looked_for: Vec<String> =
                    supported.iter().take(6).map(|t| t.to_string()).collect();
                let glibc = interpreter
                    .glibc
                    .map_or("no glibc".into(), |(a, b)| format!("glibc {a}.{b}"));
                return Err(PythonError::NoFittingWheel {
                    place,
                    package: label,
                    platform: format!("{platform} (Python {}, {glibc})", interpreter.full_version),
                    tags: format!(
                        "looked for {}, … ({} tags); the lock has: {}",
                        looked_for.join(", "),
                        supported.len(),
                        names.join(", ")
                    ),
                });
            };
            let sha256 = wheel
                .hashes
                .get("sha256")
                .and_then(|h| Digest::from_hex(h).ok())
                .ok_or_else(|| PythonError::Lock {
                    place: place.clone(),
                    message: format!(
                        "package {label}: wheel {file} has no sha256 hash (stele checks every download against the lock's sha256; lock it with a tool that records one, as uv and pip do)"
                    ),
                })?;
            let source = match (&wheel.url, &wheel.path) {
                (_, Some(path)) => {
                    WheelSource::File(self.path.parent().unwrap_or(Path::new(".")).join(path))
                }
                (Some(url), None) => WheelSource::Url(url.clone()),
                (None, None) => unreachable!("the file name came from one"),
            };
            let key = normalize(&p.name);
            let wheel = ChosenWheel {
                name: p.name.clone(),
                version: version.clone(),
                file,
                source,
                index: p.index.clone(),
                sha256,
                size: wheel.size,
            };
            if let Some(other) = chosen.insert(key, wheel) {
                return Err(PythonError::Lock {
                    place,
                    message: format!(
                        "package {} applies to {platform} twice (also {} {}): their markers must exclude each other",
                        p.name, other.name, other.version
                    ),
                });
            }
        }
        Ok(chosen.into_values().collect())
    }
}

/// The wheel's file name: its `name`, else the last part of its URL or path.
fn wheel_file_name(w: &WheelEntry) -> Option<String> {
    if let Some(n) = &w.name {
        return Some(n.clone());
    }
    let from = w.url.as_deref().or(w.path.as_deref())?;
    let last = from.split(['?', '#']).next()?.rsplit('/').next()?;
    Some(crate::apps::percent_decode(last))
}
