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
use crate::python::pylock::PyLock;
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
        let chosen = super::choose::python(recipe, spec, &lock, Some(apt))?
            .into_iter()
            .map(|(platform, (_, wheels))| (platform, wheels));
        python = Some(LockedApps {
            lockfile: spec.lock_written.clone(),
            lockfile_sha256: lock.digest.clone(),
            platforms: listed(chosen, |w| LockedAppPackage {
                name: w.name,
                version: w.version,
                file: w.file,
                hash: w.sha256.to_string(),
            }),
        });
    }
    let mut node = None;
    if let Some(spec) = &recipe.node {
        let lock = PackageLock::load(&spec.lock)?;
        let chosen = super::choose::node(recipe, spec, &lock)?;
        node = Some(LockedApps {
            lockfile: spec.lock_written.clone(),
            lockfile_sha256: lock.digest.clone(),
            platforms: listed(chosen, |p| LockedAppPackage {
                name: p.name,
                version: p.version,
                file: p.path,
                hash: p.integrity,
            }),
        });
    }
    Ok((python, node))
}

/// Each platform's packages as the lock lists them, sorted.
fn listed<T>(
    chosen: impl IntoIterator<Item = (String, Vec<T>)>,
    entry: impl Fn(T) -> LockedAppPackage,
) -> BTreeMap<String, Vec<LockedAppPackage>> {
    chosen
        .into_iter()
        .map(|(platform, packages)| {
            let mut packages: Vec<LockedAppPackage> = packages.into_iter().map(&entry).collect();
            packages.sort();
            (platform, packages)
        })
        .collect()
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
