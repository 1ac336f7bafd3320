//! Resolving a recipe's `[apt]` into a lockfile, and telling whether a
//! lockfile still answers the recipe.

use std::collections::BTreeMap;

use crate::apt::fetch::{FetchError, Fetcher};
use crate::apt::sources::{locate, AptSettings, SourcesError};
use crate::apt::{control, resolver};
use crate::lock::{Lock, LockedPackage, LockedPlatform, LockedSource, LOCK_VERSION};
use crate::oci::{Digest, Platform};
use crate::recipe::{AptSpec, Recipe};

#[derive(Debug, thiserror::Error)]
pub enum LockingError {
    #[error(transparent)]
    Sources(#[from] SourcesError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("resolving packages for {platform}: {error}")]
    Resolve {
        platform: Platform,
        error: Box<resolver::DependencyError>,
    },
}

/// Resolves the recipe's packages against the signed indexes of its
/// sources, for every platform: the content of a new lockfile.
pub(crate) fn resolve_lock(
    recipe: &Recipe,
    apt: &AptSpec,
    fetcher: &Fetcher,
    settings: &AptSettings,
) -> Result<Lock, LockingError> {
    let mut sources = Vec::new();
    let mut releases = Vec::new();
    for src in &apt.sources {
        let located = locate(src, settings)?;
        let verified = fetcher.fetch_release(&located.url, &src.suite, &located.keyring)?;
        sources.push(LockedSource {
            suite: src.suite.clone(),
            components: src.components.clone(),
            inrelease_sha256: verified.inrelease_sha256.clone(),
        });
        releases.push((located, verified));
    }
    let mut platforms = BTreeMap::new();
    for platform in &recipe.platforms {
        let arch = platform
            .debian_arch()
            .expect("checked when the recipe loaded");
        let mut all = Vec::new();
        for (i, (src, (located, verified))) in apt.sources.iter().zip(&releases).enumerate() {
            for component in &src.components {
                let text = fetcher.fetch_index(
                    &located.url,
                    &src.suite,
                    component,
                    arch,
                    &verified.release,
                )?;
                let text = String::from_utf8_lossy(&text);
                let name = format!("{} {}/binary-{arch}/Packages", src.suite, component);
                all.extend(control::parse_packages_index(&text, &name, i)?);
            }
        }
        let resolve_error = |e| LockingError::Resolve {
            platform: platform.clone(),
            error: Box::new(e),
        };
        let mut requested = apt.packages_for(platform);
        if let Some(variant) = apt.variant {
            // The set as debootstrap takes it: by name from the indexes,
            // each resolved like a named package (highest version).
            let named: std::collections::BTreeSet<&str> = requested
                .iter()
                .map(|r| r.split_once('=').map_or(r.as_str(), |(n, _)| n))
                .collect();
            let base: std::collections::BTreeSet<String> = all
                .iter()
                .filter(|p| p.architecture == arch || p.architecture == "all")
                .filter(|p| variant.includes(&p.name, p.essential, &p.priority))
                .filter(|p| !named.contains(p.name.as_str()))
                .map(|p| p.name.clone())
                .collect();
            requested.extend(base);
        }
        let universe = resolver::Universe::new(all, arch).map_err(resolve_error)?;
        let chosen = resolver::resolve(&universe, &requested).map_err(resolve_error)?;
        let packages = chosen
            .into_iter()
            .map(|p| LockedPackage {
                name: p.name,
                version: p.version,
                architecture: p.architecture,
                source: p.source_index,
                path: p.filename,
                size: p.size,
                sha256: p.sha256,
            })
            .collect();
        let alternatives = apt
            .alternatives
            .iter()
            .map(|(name, (path, _))| (name.clone(), path.clone()))
            .collect();
        platforms.insert(
            platform.to_string(),
            LockedPlatform {
                packages,
                alternatives,
            },
        );
    }
    Ok(Lock {
        version: LOCK_VERSION,
        recipe_digest: resolution_digest(recipe, apt),
        // A new lock gets the recipe's profile, else the newest.
        encoding: recipe.encoding.unwrap_or_default(),
        sources,
        platforms,
    })
}

/// The digest of exactly what decides which packages resolve: each
/// source's suite and components (in order: the lock refers to sources by
/// position), the package list with its pins and the platforms each entry
/// is limited to, and the platforms. Mirrors,
/// keyrings and the layer split are left out on purpose: a snapshot
/// mirror, another name for the same archive or a rotated key resolve the
/// same packages, and trust is checked again when the .debs are fetched
/// (by their locked sha256) or the indexes are read (by the keyring).
/// The alternatives choices are in it when there are any (the lock records
/// them), so locks of recipes without any keep their digest.
pub(crate) fn resolution_digest(recipe: &Recipe, apt: &AptSpec) -> Digest {
    let sources: Vec<serde_json::Value> = apt
        .sources
        .iter()
        .map(|s| serde_json::json!({ "suite": s.suite, "components": s.components }))
        .collect();
    // An entry for every platform stays a bare string, so locks written
    // before per-platform entries existed are still fresh.
    let packages: Vec<serde_json::Value> = apt
        .packages
        .iter()
        .map(|p| match &p.platforms {
            None => p.name.clone().into(),
            Some(only) => serde_json::json!({
                "name": p.name,
                "platforms": only.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            }),
        })
        .collect();
    let mut inputs = serde_json::json!({
        "sources": sources,
        "packages": packages,
        "platforms": recipe.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    });
    if let Some(variant) = apt.variant {
        inputs["variant"] = serde_json::json!(variant.name());
    }
    if !apt.alternatives.is_empty() {
        let chosen: BTreeMap<&str, &str> = apt
            .alternatives
            .iter()
            .map(|(n, (p, _))| (n.as_str(), p.as_str()))
            .collect();
        inputs["alternatives"] = serde_json::json!(chosen);
    }
    Digest::of(&crate::oci::json::to_canonical_vec(&inputs))
}

/// Whether `lock` still answers the recipe's `[apt]`.
/// A lock made with another profile than the one the recipe names does
/// not: the lock records the profile its builds use.
pub(crate) fn is_fresh(recipe: &Recipe, apt: &AptSpec, lock: &Lock) -> bool {
    lock.recipe_digest == resolution_digest(recipe, apt)
        && recipe.encoding.map_or(true, |e| e == lock.encoding)
}
