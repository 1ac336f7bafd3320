//! What changed between two locks (what `stele lock` prints), what the
//! suites now offer newer than a lock (`stele lock --check --upgradable`,
//! security archives first), and why a lock no longer answers its recipe
//! (`--check`'s "stale", said in words).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{LockingError, Suites};
use crate::apt::fetch::Fetcher;
use crate::apt::sources::AptSettings;
use crate::dpkg::version;
use crate::lock::Lock;
use crate::recipe::{AptSpec, Recipe};

/// One package that moved between two locks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub name: String,
    /// `None`: added.
    pub old: Option<String>,
    /// `None`: removed.
    pub new: Option<String>,
    /// The suite the new version comes from.
    pub suite: Option<String>,
    /// The platforms it moved on.
    pub platforms: Vec<String>,
}

/// What makes two platforms' changes one: the change without its
/// platforms.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Moved {
    name: String,
    old: Option<String>,
    new: Option<String>,
    suite: Option<String>,
}

/// The packages that differ between `old` and `new`, by name, each once
/// with the platforms it moved on.
pub(crate) fn changes(old: Option<&Lock>, new: &Lock, apt: &AptSpec) -> Vec<Change> {
    let mut moved: BTreeMap<Moved, Vec<String>> = BTreeMap::new();
    for (platform, locked) in &new.platforms {
        let before: BTreeMap<&str, &str> = old
            .and_then(|o| o.platforms.get(platform))
            .map(|p| {
                p.packages
                    .iter()
                    .map(|p| (p.name.as_str(), p.version.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let after: BTreeMap<&str, (&str, usize)> = locked
            .packages
            .iter()
            .map(|p| (p.name.as_str(), (p.version.as_str(), p.source)))
            .collect();
        let names: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
        for name in names {
            let was = before.get(name).map(|v| v.to_string());
            let now = after.get(name);
            if was.as_deref() == now.map(|(v, _)| *v) {
                continue;
            }
            let suite = now
                .and_then(|(_, s)| apt.sources.get(*s))
                .map(|s| s.suite.clone());
            let key = Moved {
                name: name.to_string(),
                old: was,
                new: now.map(|(v, _)| v.to_string()),
                suite,
            };
            moved.entry(key).or_default().push(platform.clone());
        }
    }
    moved
        .into_iter()
        .map(|(m, platforms)| Change {
            name: m.name,
            old: m.old,
            new: m.new,
            suite: m.suite,
            platforms,
        })
        .collect()
}

/// A locked package the suites now offer newer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upgrade {
    pub name: String,
    pub architecture: String,
    pub locked: String,
    pub offered: String,
    /// The suite that offers it.
    pub suite: String,
    /// Offered by a security archive.
    pub security: bool,
    pub platforms: Vec<String>,
}

/// What the recipe's suites offer now that is newer than `lock`, each
/// package once: security archives' first, then by name.
pub(crate) fn upgradable(
    recipe: &Recipe,
    apt: &AptSpec,
    lock: &Lock,
    fetcher: &Fetcher,
    settings: &AptSettings,
) -> Result<Vec<Upgrade>, LockingError> {
    let suites = Suites::read(apt, fetcher, settings)?;
    // Keyed by the upgrade without its platforms; `Ord` puts security
    // archives' first (`not_security` false), then names.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Offered {
        not_security: bool,
        name: String,
        architecture: String,
        locked: String,
        offered: String,
        suite: String,
    }
    let mut found: BTreeMap<Offered, Vec<String>> = BTreeMap::new();
    for platform in &recipe.platforms {
        let Some(locked) = lock.platforms.get(&platform.to_string()) else {
            continue;
        };
        let arch = platform
            .debian_arch()
            .expect("checked when the recipe loaded");
        let offered = suites.packages(apt, fetcher, arch)?;
        for p in &locked.packages {
            let newest = offered
                .iter()
                .filter(|q| q.name == p.name && q.architecture == p.architecture)
                .filter(|q| version::compare(&q.version, &p.version).is_gt())
                .max_by(|a, b| version::compare(&a.version, &b.version));
            let Some(q) = newest else { continue };
            let key = Offered {
                not_security: !suites.security(apt, q.source_index),
                name: p.name.clone(),
                architecture: p.architecture.clone(),
                locked: p.version.clone(),
                offered: q.version.clone(),
                suite: apt.sources[q.source_index].suite.clone(),
            };
            found.entry(key).or_default().push(platform.to_string());
        }
    }
    Ok(found
        .into_iter()
        .map(|(o, platforms)| Upgrade {
            name: o.name,
            architecture: o.architecture,
            locked: o.locked,
            offered: o.offered,
            suite: o.suite,
            security: !o.not_security,
            platforms,
        })
        .collect())
}

/// Why `lock` no longer answers `recipe`, each reason a phrase: what the
/// recipe asks that the lock does not record. The lock keeps what was
/// resolved, not what was asked, so a package dropped from `[apt]
/// packages` is told apart only as the reason left when no other is.
pub fn why_stale(recipe: &Recipe, apt: &AptSpec, lock: &Lock) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(e) = recipe.encoding.filter(|e| *e != lock.encoding) {
        why.push(format!(
            "the recipe names encoding {e}, the lock {}",
            lock.encoding
        ));
    }
    let wanted: BTreeSet<String> = recipe.platforms.iter().map(|p| p.to_string()).collect();
    let locked: BTreeSet<String> = lock.platforms.keys().cloned().collect();
    for p in wanted.difference(&locked) {
        why.push(format!("platform {p} added"));
    }
    for p in locked.difference(&wanted) {
        why.push(format!("platform {p} removed"));
    }
    for (i, src) in apt.sources.iter().enumerate() {
        match lock.sources.get(i) {
            None => why.push(format!("source {} ({}) added", i + 1, src.suite)),
            Some(l) if l.suite != src.suite => why.push(format!(
                "source {}: suite {} → {}",
                i + 1,
                l.suite,
                src.suite
            )),
            Some(l) if l.components != src.components => why.push(format!(
                "source {} ({}): components {} → {}",
                i + 1,
                src.suite,
                l.components.join(" "),
                src.components.join(" ")
            )),
            Some(_) => {}
        }
    }
    for (i, l) in lock.sources.iter().enumerate().skip(apt.sources.len()) {
        why.push(format!("source {} ({}) removed", i + 1, l.suite));
    }
    for platform in &recipe.platforms {
        let Some(locked) = lock.platforms.get(&platform.to_string()) else {
            continue;
        };
        for request in apt.packages_for(platform) {
            let (name, pin) = match request.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (request.as_str(), None),
            };
            match locked.packages.iter().find(|p| p.name == name) {
                None => why.push(format!("`{request}` added ({platform})")),
                Some(p) if pin.is_some_and(|v| !version::compare(v, &p.version).is_eq()) => why
                    .push(format!(
                        "`{request}` pinned, the lock has {} {} ({platform})",
                        p.name, p.version
                    )),
                Some(_) => {}
            }
        }
        let chosen: BTreeMap<&str, &str> = apt
            .alternatives
            .iter()
            .map(|(n, (p, _))| (n.as_str(), p.as_str()))
            .collect();
        let recorded: BTreeMap<&str, &str> = locked
            .alternatives
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_str()))
            .collect();
        if chosen != recorded {
            why.push(format!("[apt] alternatives changed ({platform})"));
        }
    }
    why.dedup();
    if why.is_empty() && !super::is_fresh(recipe, apt, lock) {
        why.push("an [apt] packages entry was removed or its platforms changed".to_string());
    }
    why
}
