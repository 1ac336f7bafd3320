//! npm's `package-lock.json` (lockfileVersion 2 and 3: the `packages`
//! map keyed by install path), judged per platform into the packages to
//! install, as `npm ci --omit=dev --ignore-scripts` would choose them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{NodeError, NodePlatform};
use crate::apps::fetch::Integrity;
use crate::oci::Digest;

/// Lock files are text npm wrote; anything this big is not one.
pub const PACKAGE_LOCK_LIMIT: u64 = 256 << 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(default)]
    lockfile_version: Option<u64>,
    #[serde(default)]
    packages: Option<BTreeMap<String, Entry>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    resolved: Option<String>,
    #[serde(default)]
    integrity: Option<String>,
    #[serde(default)]
    link: bool,
    #[serde(default)]
    dev: bool,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    dev_optional: bool,
    #[serde(default)]
    in_bundle: bool,
    #[serde(default)]
    extraneous: bool,
    #[serde(default)]
    has_install_script: bool,
    #[serde(default)]
    bin: Option<BTreeMap<String, String>>,
    #[serde(default)]
    os: Option<Vec<String>>,
    #[serde(default)]
    cpu: Option<Vec<String>>,
    #[serde(default)]
    libc: Option<Vec<String>>,
    #[serde(default)]
    license: Option<serde_json::Value>,
}

/// A package-lock.json, read and checked in itself.
#[derive(Debug)]
pub struct PackageLock {
    pub path: PathBuf,
    pub digest: Digest,
    packages: BTreeMap<String, Entry>,
}

/// One package to install on one platform.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChosenPackage {
    /// Where it goes, relative to the project: `node_modules/a/node_modules/b`.
    pub path: String,
    /// Its registry name (an alias's real name).
    pub name: String,
    pub version: String,
    pub integrity: String,
    /// The lock's `resolved`, when it records one.
    pub resolved: Option<String>,
    /// `bin` links: name → path inside the package.
    pub bin: BTreeMap<String, String>,
    /// It has install scripts, which are not run (the recipe said so).
    pub scripts_skipped: bool,
    /// SPDX license expression, when the lock names one.
    pub license: Option<String>,
}

/// The package name a `node_modules/…` key installs: its last part,
/// with a scope.
fn name_of_key(key: &str) -> Option<&str> {
    let at = key.rfind("node_modules/")? + "node_modules/".len();
    let rest = &key[at..];
    (!rest.is_empty()).then_some(rest)
}

/// npm's platform check (`npm-install-checks`): a `!value` excludes, and
/// a list of plain values must name the current one.
fn allows(list: Option<&Vec<String>>, current: &str) -> bool {
    let Some(list) = list else {
        return true;
    };
    if list.iter().any(|v| v.strip_prefix('!') == Some(current)) {
        return false;
    }
    let positive: Vec<&String> = list.iter().filter(|v| !v.starts_with('!')).collect();
    positive.is_empty() || positive.iter().any(|v| *v == current || *v == "any")
}

impl PackageLock {
    pub fn load(path: &Path) -> Result<PackageLock, NodeError> {
        let bytes =
            crate::apps::read_input(path, PACKAGE_LOCK_LIMIT).map_err(|error| NodeError::Read {
                path: path.to_path_buf(),
                error,
            })?;
        PackageLock::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<PackageLock, NodeError> {
        let bad = |message: String| NodeError::Lock {
            path: path.to_path_buf(),
            message,
        };
        let file: File = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("line {} column {}: {e}", e.line(), e.column())))?;
        match file.lockfile_version {
            Some(2 | 3) => {}
            Some(v) if v > 3 => {
                return Err(NodeError::FutureLock {
                    path: path.to_path_buf(),
                    version: v,
                })
            }
            v => {
                return Err(bad(format!(
                    "lockfileVersion {} has no `packages` map; rewrite it with npm 7 or later (`npm install --package-lock-only`)",
                    v.map_or("missing".to_string(), |v| v.to_string())
                )))
            }
        }
        let packages = file.packages.ok_or_else(|| {
            bad(
                "it has no `packages` map; rewrite it with `npm install --package-lock-only`"
                    .into(),
            )
        })?;
        for key in packages.keys().filter(|k| !k.is_empty()) {
            if crate::apps::archive::clean_path(key).as_deref() != Some(key.as_str())
                || !key.starts_with("node_modules/") && !packages[key].link
            {
                return Err(bad(format!(
                    "package path `{key}` is not a path under node_modules"
                )));
            }
        }
        Ok(PackageLock {
            path: path.to_path_buf(),
            digest: Digest::of(bytes),
            packages,
        })
    }

    /// The packages to install on `platform`, in path order: dev
    /// packages only with `dev`; optional packages whose `os`, `cpu` or
    /// `libc` exclude the platform left out (with everything nested
    /// under them), as npm leaves them out; bundled packages come inside
    /// their parent's tarball. A required package the platform excludes,
    /// a package with install scripts not named in `skip_scripts`, a
    /// linked or non-registry package, or one without integrity is an
    /// error naming it.
    pub fn select(
        &self,
        platform: &NodePlatform,
        dev: bool,
        skip_scripts: &BTreeSet<String>,
    ) -> Result<Vec<ChosenPackage>, NodeError> {
        let mut skipped: Vec<String> = Vec::new();
        let mut chosen = Vec::new();
        for (key, e) in &self.packages {
            if key.is_empty() || e.extraneous {
                continue;
            }
            if e.dev && !dev {
                continue;
            }
            if skipped.iter().any(|s| key.starts_with(&format!("{s}/"))) {
                continue;
            }
            let name = e
                .name
                .clone()
                .or_else(|| name_of_key(key).map(str::to_string))
                .unwrap_or_else(|| key.clone());
            let version = e.version.clone().unwrap_or_default();
            let label = format!("{name}@{version} ({key})");
            if e.link {
                return Err(NodeError::Unsupported {
                    path: self.path.clone(),
                    package: label,
                    what: "a link (a workspace or `file:` folder)",
                });
            }
            let fits = allows(e.os.as_ref(), &platform.os)
                && allows(e.cpu.as_ref(), &platform.cpu)
                && (e.libc.is_none()
                    || platform.os != "linux"
                    || allows(e.libc.as_ref(), &platform.libc));
            let optional = e.optional || (e.dev_optional && !dev);
            if !fits {
                if optional {
                    skipped.push(key.clone());
                    continue;
                }
                return Err(NodeError::BadPlatform {
                    path: self.path.clone(),
                    package: label,
                    platform: platform.to_string(),
                    wants: format!(
                        "os {:?}, cpu {:?}, libc {:?}",
                        e.os.clone().unwrap_or_default(),
                        e.cpu.clone().unwrap_or_default(),
                        e.libc.clone().unwrap_or_default()
                    ),
                });
            }
            if e.in_bundle {
                continue;
            }
            let scripts_skipped = e.has_install_script;
            if e.has_install_script && !skip_scripts.contains(&name) {
                return Err(NodeError::InstallScript {
                    path: self.path.clone(),
                    package: label,
                    name: name.clone(),
                });
            }
            if let Some(r) = &e.resolved {
                if !(r.starts_with("https://") || r.starts_with("http://")) {
                    return Err(NodeError::Unsupported {
                        path: self.path.clone(),
                        package: label,
                        what: "not from a registry (a git, file or other URL)",
                    });
                }
            }
            let integrity = e.integrity.clone().ok_or_else(|| NodeError::Lock {
                path: self.path.clone(),
                message: format!("package {label} has no `integrity`; stele checks every tarball against the lock: install it from a registry and lock again"),
            })?;
            if Integrity::parse(&integrity).is_none() {
                return Err(NodeError::Lock {
                    path: self.path.clone(),
                    message: format!("package {label}: integrity `{integrity}` names no sha512, sha384, sha256 or sha1 hash"),
                });
            }
            let bin = e
                .bin
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.trim_start_matches("./").to_string()))
                .collect();
            let license = e.license.as_ref().and_then(|l| match l {
                serde_json::Value::String(s) => Some(s.clone()),
                _ => None,
            });
            chosen.push(ChosenPackage {
                path: key.clone(),
                name,
                version,
                integrity,
                resolved: e.resolved.clone(),
                bin,
                scripts_skipped,
                license,
            });
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"{
      "name": "app", "lockfileVersion": 3, "requires": true,
      "packages": {
        "": {"name": "app", "dependencies": {"esbuild": "^0.24.0"}},
        "node_modules/esbuild": {"version": "0.24.2", "integrity": "sha512-AAAA", "hasInstallScript": true, "bin": {"esbuild": "bin/esbuild"}, "optionalDependencies": {}},
        "node_modules/@esbuild/linux-x64": {"version": "0.24.2", "integrity": "sha512-AAAB", "optional": true, "os": ["linux"], "cpu": ["x64"]},
        "node_modules/@esbuild/linux-arm64": {"version": "0.24.2", "integrity": "sha512-AAAC", "optional": true, "os": ["linux"], "cpu": ["arm64"]},
        "node_modules/@img/sharp-linuxmusl-x64": {"version": "0.33.5", "integrity": "sha512-AAAD", "optional": true, "os": ["linux"], "cpu": ["x64"], "libc": ["musl"]},
        "node_modules/@img/sharp-linuxmusl-x64/node_modules/x": {"version": "1.0.0", "integrity": "sha512-AAAE", "optional": true},
        "node_modules/typescript": {"version": "5.0.0", "integrity": "sha512-AAAF", "dev": true, "bin": {"tsc": "./bin/tsc"}},
        "node_modules/a/node_modules/b": {"version": "1.0.0", "integrity": "sha512-AAAG", "inBundle": true}
      }
    }"#;

    fn platform(cpu: &str) -> NodePlatform {
        NodePlatform {
            os: "linux".into(),
            cpu: cpu.into(),
            libc: "glibc".into(),
        }
    }

    #[test]
    fn each_platform_gets_its_own_optional_packages() {
        let lock = PackageLock::parse(Path::new("package-lock.json"), LOCK.as_bytes()).unwrap();
        let skip = BTreeSet::from(["esbuild".to_string()]);
        let paths = |cpu: &str, dev: bool| -> Vec<String> {
            lock.select(&platform(cpu), dev, &skip)
                .unwrap()
                .into_iter()
                .map(|p| p.path)
                .collect()
        };
        assert_eq!(
            paths("x64", false),
            ["node_modules/@esbuild/linux-x64", "node_modules/esbuild"]
        );
        assert_eq!(
            paths("arm64", false),
            ["node_modules/@esbuild/linux-arm64", "node_modules/esbuild"]
        );
        assert!(paths("x64", true).contains(&"node_modules/typescript".to_string()));
        let chosen = lock.select(&platform("x64"), true, &skip).unwrap();
        let tsc = chosen.iter().find(|p| p.name == "typescript").unwrap();
        assert_eq!(tsc.bin["tsc"], "bin/tsc");
        assert!(
            chosen
                .iter()
                .find(|p| p.name == "esbuild")
                .unwrap()
                .scripts_skipped
        );
    }

    #[test]
    fn install_scripts_future_locks_and_bad_platforms_are_refused_by_name() {
        let lock = PackageLock::parse(Path::new("package-lock.json"), LOCK.as_bytes()).unwrap();
        let e = lock
            .select(&platform("x64"), false, &BTreeSet::new())
            .unwrap_err();
        assert!(e.to_string().contains("esbuild@0.24.2"), "{e}");
        assert!(e.to_string().contains("install script"), "{e}");
        let future = LOCK.replace("\"lockfileVersion\": 3", "\"lockfileVersion\": 4");
        let e = PackageLock::parse(Path::new("p.json"), future.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("lockfileVersion 4"), "{e}");
        let old = LOCK.replace("\"lockfileVersion\": 3", "\"lockfileVersion\": 1");
        assert!(PackageLock::parse(Path::new("p.json"), old.as_bytes()).is_err());
        let required = LOCK.replace(
            "\"optional\": true, \"os\": [\"linux\"], \"cpu\": [\"arm64\"]",
            "\"os\": [\"linux\"], \"cpu\": [\"arm64\"]",
        );
        let lock = PackageLock::parse(Path::new("p.json"), required.as_bytes()).unwrap();
        let skip = BTreeSet::from(["esbuild".to_string()]);
        let e = lock.select(&platform("x64"), false, &skip).unwrap_err();
        assert!(e.to_string().contains("@esbuild/linux-arm64"), "{e}");
        let evil = LOCK.replace("node_modules/typescript", "node_modules/../../etc");
        assert!(PackageLock::parse(Path::new("p.json"), evil.as_bytes()).is_err());
        assert!(allows(Some(&vec!["!win32".into()]), "linux"));
        assert!(!allows(Some(&vec!["!linux".into()]), "linux"));
    }
}
