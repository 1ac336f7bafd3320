//! What `[python]` and `[node]` add to stele's lock: each ecosystem
//! lockfile's digest and, per platform, the packages it installs there.
//! A pure function of the recipe, the ecosystem lock and the Debian
//! packages locked (which name the interpreter), so it needs no
//! download: `stele lock` writes it, `lock --check` and `--locked`
//! compare it, and `build` brings it up to date.

use std::collections::BTreeMap;

use super::resolve::AppsError;
use crate::lock::{Lock, LockedAppPackage, LockedApps};
use crate::node::lock::PackageLock;
use crate::node::{NodeError, NodePlatform};
use crate::python::pylock::PyLock;
use crate::python::InterpreterHints;
use crate::recipe::Recipe;

/// The `python` and `node` sections `recipe` gives over the Debian
/// packages of `apt`.
pub fn sections(
    recipe: &Recipe,
    apt: &Lock,
) -> Result<(Option<LockedApps>, Option<LockedApps>), AppsError> {
    let mut python = None;
    if let Some(spec) = &recipe.python {
        let lock = PyLock::load(&spec.lock)?;
        let hints = InterpreterHints {
            python: spec.python.clone(),
            glibc: spec.glibc,
        };
        let groups = spec.groups.clone().unwrap_or_else(|| lock.default_groups());
        let mut platforms = BTreeMap::new();
        for platform in &recipe.platforms {
            let key = platform.to_string();
            let locked = apt
                .platforms
                .get(&key)
                .map_or(&[][..], |p| p.packages.as_slice());
            let interpreter = crate::python::interpreter(locked, &hints, platform, &spec.loc.0)?;
            let env = crate::python::environment(&interpreter, &spec.extras, &groups);
            let mut packages: Vec<LockedAppPackage> = lock
                .select(&interpreter, &env, &key)?
                .into_iter()
                .map(|w| LockedAppPackage {
                    name: w.name,
                    version: w.version,
                    file: w.file,
                    hash: w.sha256.to_string(),
                })
                .collect();
            packages.sort();
            platforms.insert(key, packages);
        }
        python = Some(LockedApps {
            lockfile: spec.lock_written.clone(),
            lockfile_sha256: lock.digest.clone(),
            platforms,
        });
    }
    let mut node = None;
    if let Some(spec) = &recipe.node {
        let lock = PackageLock::load(&spec.lock)?;
        let mut platforms = BTreeMap::new();
        for platform in &recipe.platforms {
            let np = NodePlatform::of(platform).ok_or_else(|| NodeError::Lock {
                path: spec.lock.clone(),
                message: format!("Node.js names no architecture for {platform}"),
            })?;
            let mut packages: Vec<LockedAppPackage> = lock
                .select(&np, spec.dev, &spec.skip_scripts)?
                .into_iter()
                .map(|p| LockedAppPackage {
                    name: p.name,
                    version: p.version,
                    file: p.path,
                    hash: p.integrity,
                })
                .collect();
            packages.sort();
            platforms.insert(platform.to_string(), packages);
        }
        node = Some(LockedApps {
            lockfile: spec.lock_written.clone(),
            lockfile_sha256: lock.digest.clone(),
            platforms,
        });
    }
    Ok((python, node))
}

/// Brings `lock`'s sections up to date with `recipe`; whether they
/// changed.
pub fn update(recipe: &Recipe, lock: &mut Lock) -> Result<bool, AppsError> {
    let (python, node) = sections(recipe, lock)?;
    let changed = lock.python != python || lock.node != node;
    lock.python = python;
    lock.node = node;
    Ok(changed)
}

/// Whether `lock`'s sections answer `recipe` (a lockfile that cannot be
/// read does not).
pub fn answers(recipe: &Recipe, lock: &Lock) -> bool {
    sections(recipe, lock).is_ok_and(|(python, node)| lock.python == python && lock.node == node)
}
