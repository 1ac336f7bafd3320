//! Resolving a recipe's `[apt]` into a lockfile, updating some of its
//! packages and keeping the rest, and telling whether a lockfile still
//! answers the recipe (and, when not, what changed: `changes`).

mod changes;

pub(crate) use changes::{changes, upgradable};
pub use changes::{why_stale, Change, Upgrade};

use std::collections::BTreeMap;

use crate::apt::fetch::{FetchError, Fetcher, VerifiedRelease};
use crate::apt::sources::{locate, AptSettings, Located, SourcesError};
use crate::apt::{control, resolver, snapshot, Package};
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
    /// `at` is the recipe line of the entry the error is about (`FILE:LINE:COL: `), or empty.
    #[error("{at}resolving packages for {platform}: {error}")]
    Resolve {
        at: String,
        platform: Platform,
        error: Box<resolver::DependencyError>,
    },
    #[error("`--update {name}`: the lock has no package {name}; name packages it holds ({held})")]
    NotLocked { name: String, held: String },
}

/// The sources as they are now: where each is, its verified Release,
/// and what a new lock records of it.
pub(crate) struct Suites {
    located: Vec<Located>,
    releases: Vec<VerifiedRelease>,
    locked: Vec<LockedSource>,
}

impl Suites {
    /// Reads every source's signed InRelease.
    pub(crate) fn read(
        apt: &AptSpec,
        fetcher: &Fetcher,
        settings: &AptSettings,
    ) -> Result<Suites, LockingError> {
        let mut suites = Suites {
            located: Vec::new(),
            releases: Vec::new(),
            locked: Vec::new(),
        };
        for src in &apt.sources {
            let located = locate(src, settings)?;
            let verified = fetcher.fetch_release(&located.url, &src.suite, &located.keyring)?;
            suites.locked.push(LockedSource {
                suite: src.suite.clone(),
                components: src.components.clone(),
                inrelease_sha256: verified.inrelease_sha256.clone(),
                date: verified
                    .release
                    .date
                    .as_deref()
                    .and_then(crate::timefmt::parse_rfc2822)
                    .map(crate::timefmt::rfc3339),
            });
            suites.located.push(located);
            suites.releases.push(verified);
        }
        Ok(suites)
    }

    /// Every package the sources offer for `arch` now.
    pub(crate) fn packages(
        &self,
        apt: &AptSpec,
        fetcher: &Fetcher,
        arch: &str,
    ) -> Result<Vec<Package>, LockingError> {
        let mut all = Vec::new();
        for (i, src) in apt.sources.iter().enumerate() {
            let release = &self.releases[i].release;
            for component in &src.components {
                let text = fetcher.fetch_index(
                    &self.located[i].url,
                    &src.suite,
                    component,
                    arch,
                    release,
                )?;
                let text = String::from_utf8_lossy(&text);
                let name = format!("{} {}/binary-{arch}/Packages", src.suite, component);
                all.extend(control::parse_packages_index(&text, &name, i)?);
            }
        }
        Ok(all)
    }

    /// Whether source `i` is a security archive: by its suite's name, as
    /// Debian (`bookworm-security`) and its derivatives name them.
    pub(crate) fn security(&self, apt: &AptSpec, i: usize) -> bool {
        let r = &self.releases[i].release;
        [&apt.sources[i].suite, &r.suite, &r.codename]
            .iter()
            .any(|s| s.to_ascii_lowercase().contains("security"))
    }
}

/// Resolves the recipe's packages against the signed indexes of its
/// sources, for every platform: the content of a new lockfile.
pub(crate) fn resolve_lock(
    recipe: &Recipe,
    apt: &AptSpec,
    fetcher: &Fetcher,
    settings: &AptSettings,
) -> Result<Lock, LockingError> {
    Ok(update_lock(recipe, apt, fetcher, settings, None)?.lock)
}

/// What `stele lock --update PKG…` keeps: the lock as it is, and the
/// packages to update (with what they need); every other package stays at
/// its locked version while it fits.
pub(crate) struct Keep<'a> {
    pub lock: &'a Lock,
    pub update: &'a [String],
}

/// A lock resolved anew, and the kept packages that could not stay.
pub(crate) struct Updated {
    pub lock: Lock,
    /// `name version`: why it moved although it was not named.
    pub moved: Vec<String>,
}

/// Resolves the recipe's packages against its sources now. With `keep`,
/// the packages it does not name are preferred at their locked versions;
/// one the suites no longer carry is taken from the indexes the lock
/// read (the local cache's, else the source's snapshot archive at the
/// lock's date), so it stays too. A named package and what it needs are
/// resolved as a new lock would resolve them.
pub(crate) fn update_lock(
    recipe: &Recipe,
    apt: &AptSpec,
    fetcher: &Fetcher,
    settings: &AptSettings,
    keep: Option<Keep>,
) -> Result<Updated, LockingError> {
    if let Some(keep) = &keep {
        check_named(keep)?;
    }
    let suites = Suites::read(apt, fetcher, settings)?;
    let mut old_indexes = OldIndexes::default();
    let mut moved = Vec::new();
    let mut platforms = BTreeMap::new();
    for platform in &recipe.platforms {
        let arch = platform
            .debian_arch()
            .expect("checked when the recipe loaded");
        let mut all = suites.packages(apt, fetcher, arch)?;
        let offered: std::collections::BTreeSet<(String, String, String)> = all
            .iter()
            .map(|q| (q.name.clone(), q.version.clone(), q.architecture.clone()))
            .collect();
        let mut preferred = BTreeMap::new();
        let kept = keep
            .as_ref()
            .and_then(|k| k.lock.platforms.get(&platform.to_string()).map(|p| (k, p)));
        if let Some((keep, old)) = kept {
            for p in old
                .packages
                .iter()
                .filter(|p| !keep.update.contains(&p.name))
            {
                preferred.insert(p.name.clone(), p.version.clone());
                if offered.contains(&(p.name.clone(), p.version.clone(), p.architecture.clone())) {
                    continue;
                }
                match old_indexes.stanza(keep.lock, apt, &suites, fetcher, settings, p, arch) {
                    Ok(stanza) => all.push(stanza),
                    Err(why) => moved.push(format!(
                        "{} {} ({platform}): the suites no longer carry it, and {why}",
                        p.name, p.version
                    )),
                }
            }
        }
        let resolve_error = |e: resolver::DependencyError| LockingError::Resolve {
            at: e
                .request_name()
                .and_then(|name| apt.request_loc(platform, name))
                .map_or(String::new(), |loc| format!("{loc}: ")),
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
        let universe =
            resolver::Universe::preferring(all, arch, &preferred).map_err(resolve_error)?;
        let chosen = resolver::resolve(&universe, &requested).map_err(resolve_error)?;
        // A kept package its source no longer offers is from the indexes
        // the old lock read: a snapshot has it as of their date.
        let old_date = |p: &Package| {
            let (keep, old) = kept?;
            let was = old.packages.iter().find(|q| q.sha256 == p.sha256)?;
            let source = keep.lock.sources.get(was.source)?;
            was.date.clone().or_else(|| source.date.clone())
        };
        let packages = chosen
            .into_iter()
            .map(|p| {
                let gone =
                    !offered.contains(&(p.name.clone(), p.version.clone(), p.architecture.clone()));
                let date = if gone { old_date(&p) } else { None };
                LockedPackage {
                    name: p.name,
                    version: p.version,
                    architecture: p.architecture,
                    source: p.source_index,
                    path: p.filename,
                    size: p.size,
                    sha256: p.sha256,
                    date,
                }
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
    Ok(Updated {
        lock: Lock {
            version: LOCK_VERSION,
            recipe_digest: resolution_digest(recipe, apt),
            // A new lock gets the recipe's profile, else the newest.
            encoding: recipe.encoding.unwrap_or_default(),
            sources: suites.locked,
            platforms,
            python: None,
            node: None,
        },
        moved,
    })
}

/// Every name `--update` gives must be one the lock holds.
fn check_named(keep: &Keep) -> Result<(), LockingError> {
    let held: std::collections::BTreeSet<&str> = keep
        .lock
        .platforms
        .values()
        .flat_map(|p| p.packages.iter().map(|p| p.name.as_str()))
        .collect();
    match keep.update.iter().find(|n| !held.contains(n.as_str())) {
        None => Ok(()),
        Some(name) => Err(LockingError::NotLocked {
            name: name.clone(),
            held: held.into_iter().collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The indexes an existing lock was resolved from, read as needed: the
/// packages of each (source, architecture), or why they cannot be had.
#[derive(Default)]
struct OldIndexes {
    read: BTreeMap<(usize, String), Result<Vec<Package>, String>>,
}

impl OldIndexes {
    /// The stanza of the locked package `p` in the index the lock read.
    #[allow(clippy::too_many_arguments)]
    fn stanza(
        &mut self,
        lock: &Lock,
        apt: &AptSpec,
        suites: &Suites,
        fetcher: &Fetcher,
        settings: &AptSettings,
        p: &LockedPackage,
        arch: &str,
    ) -> Result<Package, String> {
        let packages = self
            .read
            .entry((p.source, arch.to_string()))
            .or_insert_with(|| read_old(lock, apt, suites, fetcher, settings, p.source, arch));
        let packages = packages.as_ref().map_err(Clone::clone)?;
        packages
            .iter()
            .find(|q| q.name == p.name && q.version == p.version && q.sha256 == p.sha256)
            .cloned()
            .ok_or_else(|| format!("the indexes the lock read do not list {}", p.sha256))
    }
}

/// The packages for `arch` of source `i` as the lock read them: its
/// InRelease (checked to be the locked one, and signed) and indexes from
/// the local cache, else from the source's snapshot archive at the
/// lock's date.
fn read_old(
    lock: &Lock,
    apt: &AptSpec,
    suites: &Suites,
    fetcher: &Fetcher,
    settings: &AptSettings,
    i: usize,
    arch: &str,
) -> Result<Vec<Package>, String> {
    let src = &apt.sources[i];
    let Some(locked) = lock.sources.get(i) else {
        return Err(format!("the lock has no source {i}"));
    };
    let keyring = &suites.located[i].keyring;
    let read = |f: &Fetcher, root: &str, release: &crate::apt::release::Release| {
        let mut all = Vec::new();
        for component in &src.components {
            let text = f
                .fetch_index(root, &src.suite, component, arch, release)
                .map_err(|e| e.to_string())?;
            let name = format!(
                "{} {component}/binary-{arch}/Packages of {}",
                src.suite, locked.inrelease_sha256
            );
            all.extend(
                control::parse_packages_index(&String::from_utf8_lossy(&text), &name, i)
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok::<_, String>(all)
    };
    let cached = fetcher.cache_only();
    let name = format!("InRelease {}", locked.inrelease_sha256);
    if let Ok(release) = cached.cached_release(&locked.inrelease_sha256, keyring, &name) {
        if let Ok(all) = read(&cached, &suites.located[i].url, &release.release) {
            return Ok(all);
        }
    }
    let base = snapshot::base_url(src, settings).ok_or_else(|| {
        format!(
            "the local cache has not the indexes the lock read, and {}",
            snapshot::why_not(src)
        )
    })?;
    let time = snapshot::locked_time(locked, fetcher.cache())
        .ok_or_else(|| format!("the lock records no date for source {}", src.loc))?;
    let root = snapshot::find_root(
        fetcher,
        &base,
        &src.suite,
        time,
        Some(&locked.inrelease_sha256),
    )
    .map_err(|e| e.to_string())?;
    let release = fetcher
        .fetch_release(&root, &src.suite, keyring)
        .map_err(|e| e.to_string())?;
    if release.inrelease_sha256 != locked.inrelease_sha256 {
        return Err(format!(
            "the snapshot archive {base} has no state whose InRelease is {}",
            locked.inrelease_sha256
        ));
    }
    read(fetcher, &root, &release.release)
}

/// The digest of exactly what decides which packages resolve: each
/// source's suite and components (in order: the lock refers to sources by
/// position), the package list with its pins and the platforms each entry
/// is limited to, and the platforms. Mirrors, snapshot archives,
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
