//! Choosing the set of packages a recipe's `[apt] packages` need, the way
//! apt and apko users expect:
//!
//! - Depends and Pre-Depends are followed depth first, in field order. In
//!   an OR group `a | b` an alternative that is already chosen wins, then
//!   one the recipe names itself, then the first alternative that can be
//!   installed. A name's candidates are tried highest version first (ties
//!   to the earlier source), then the packages that Provide it, the more
//!   important Priority first (as apt does), then by name.
//! - A versioned Provides (`foo (= 1.0)`) satisfies versioned relations;
//!   an unversioned one only unversioned relations (policy §7.5).
//! - Conflicts and Breaks are checked, both ways, against everything
//!   chosen so far. stele never runs maintainer scripts, so Breaks (which
//!   only differs from Conflicts in when dpkg configures packages) is
//!   treated as Conflicts.
//! - A candidate that cannot be installed (a conflict, or a dependency of
//!   its own that cannot be met) is undone and the next one is tried: the
//!   next version, then the next alternative. This local backtracking is
//!   bounded by `ATTEMPT_LIMIT`; a choice made for an earlier, satisfied
//!   dependency is never revisited.
//! - Only one architecture plus `all` is ever installed, so the
//!   qualifiers `:any` and `:native` reduce to the plain name, and a
//!   qualifier naming another architecture cannot be satisfied.
//! - Essential and Priority: required packages are not added unless named
//!   or depended on: an image holds what it asks for.

use std::collections::{BTreeMap, BTreeSet};

use crate::apt::control::{parse_relation_list, parse_relations, Op, Relation};
use crate::apt::Package;
use crate::dpkg::version;

/// How many install attempts one `resolve` may make before giving up.
/// Real dependency trees need about one per chosen package plus a few.
pub(crate) const ATTEMPT_LIMIT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    #[error("the package indexes hold {count} packages but none for {arch} or `all`; check that the recipe's sources carry architecture {arch}")]
    NoPackagesForArch { arch: String, count: usize },
    #[error("`{request}` in [apt] packages: {problem}")]
    BadRequest { request: String, problem: String },
    #[error("no package named `{name}` in the sources for {arch}{}", suggest(.suggestions))]
    NotFound {
        name: String,
        arch: String,
        suggestions: Vec<String>,
    },
    #[error("`{name}={version}` in [apt] packages: the sources have no such version; {name} has {}", .available.join(", "))]
    PinNotFound {
        name: String,
        version: String,
        available: Vec<String>,
    },
    #[error("`{name}` is a virtual package provided by {}; name the one you want in [apt] packages", .providers.join(", "))]
    Virtual {
        name: String,
        providers: Vec<String>,
    },
    #[error("cannot satisfy {chain}: {reason}")]
    Unsatisfiable { chain: String, reason: String },
    #[error("resolving `{request}` took more than {limit} attempts; pin versions (`name=version`) or name the alternatives you want in [apt] packages")]
    TooComplex { request: String, limit: usize },
}

impl DependencyError {
    /// The `[apt] packages` name the error is about, when it is about one
    /// entry: for the recipe line the message names.
    pub fn request_name(&self) -> Option<&str> {
        match self {
            DependencyError::NotFound { name, .. }
            | DependencyError::PinNotFound { name, .. }
            | DependencyError::Virtual { name, .. } => Some(name),
            DependencyError::BadRequest { request, .. }
            | DependencyError::TooComplex { request, .. } => {
                Some(request.split_once('=').map_or(request.as_str(), |(n, _)| n))
            }
            DependencyError::NoPackagesForArch { .. } | DependencyError::Unsatisfiable { .. } => {
                None
            }
        }
    }
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        "; check the name and the sources' components".to_string()
    } else {
        format!("; did you mean {}?", names.join(", "))
    }
}

/// The parsed relationship fields of one package.
#[derive(Debug)]
struct Relations {
    /// Pre-Depends groups, then Depends groups.
    depends: Vec<Vec<Relation>>,
    provides: Vec<(String, Option<String>)>,
    /// Conflicts and Breaks, with the field each came from.
    conflicts: Vec<(&'static str, Relation)>,
}

fn parse_package_relations(p: &Package, arch: &str) -> Result<Relations, String> {
    let field = |name: &str, e: crate::apt::control::RelationError| {
        format!("{} {} has a malformed {name} field: {e}", p.name, p.version)
    };
    let mut depends = parse_relations(&p.pre_depends, arch).map_err(|e| field("Pre-Depends", e))?;
    depends.extend(parse_relations(&p.depends, arch).map_err(|e| field("Depends", e))?);
    let mut provides = Vec::new();
    for r in parse_relation_list(&p.provides, arch).map_err(|e| field("Provides", e))? {
        match r.constraint {
            None => provides.push((r.name, None)),
            Some((Op::Eq, v)) => provides.push((r.name, Some(v))),
            Some((op, _)) => {
                return Err(format!(
                    "{} {} has a malformed Provides field: `{op}` is not allowed, only `=`",
                    p.name, p.version
                ))
            }
        }
    }
    let mut conflicts = Vec::new();
    for (name, text) in [("Conflicts", &p.conflicts), ("Breaks", &p.breaks)] {
        conflicts.extend(
            parse_relation_list(text, arch)
                .map_err(|e| field(name, e))?
                .into_iter()
                .map(|r| (name, r)),
        );
    }
    Ok(Relations {
        depends,
        provides,
        conflicts,
    })
}

/// Every package that can be installed for one architecture, indexed by
/// name and by what they provide.
pub(crate) struct Universe {
    arch: String,
    packages: Vec<Package>,
    /// Per package; a malformed field only matters if the package is tried.
    relations: Vec<Result<Relations, String>>,
    /// Name → candidates, most preferred first.
    by_name: BTreeMap<String, Vec<usize>>,
    /// Virtual name → (provider, provided version), by provider name, then
    /// the provider's preference order.
    providers: BTreeMap<String, Vec<(usize, Option<String>)>>,
}

impl Universe {
    /// Keeps the packages of `arch` and `all`. The same name from several
    /// sources or versions gives several candidates; an exact duplicate
    /// (same name, version, architecture and source) is kept once.
    #[cfg(test)]
    pub fn new(all: Vec<Package>, arch: &str) -> Result<Universe, DependencyError> {
        Universe::preferring(all, arch, &BTreeMap::new())
    }

    /// [`Universe::new`], with the version `preferred` names for a
    /// package tried before its others (highest first after it): what
    /// `stele lock --update PKG` keeps every other package at.
    pub fn preferring(
        all: Vec<Package>,
        arch: &str,
        preferred: &BTreeMap<String, String>,
    ) -> Result<Universe, DependencyError> {
        let count = all.len();
        let mut seen = BTreeSet::new();
        let packages: Vec<Package> = all
            .into_iter()
            .filter(|p| p.architecture == arch || p.architecture == "all")
            .filter(|p| {
                seen.insert((
                    p.name.clone(),
                    p.version.clone(),
                    p.architecture.clone(),
                    p.source_index,
                ))
            })
            .collect();
        if packages.is_empty() && count > 0 {
            return Err(DependencyError::NoPackagesForArch {
                arch: arch.to_string(),
                count,
            });
        }
        let relations: Vec<_> = packages
            .iter()
            .map(|p| parse_package_relations(p, arch))
            .collect();
        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_name.entry(p.name.clone()).or_default().push(i);
        }
        let preference = |a: &usize, b: &usize| {
            let (pa, pb) = (&packages[*a], &packages[*b]);
            let kept = |p: &Package| preferred.get(&p.name) == Some(&p.version);
            kept(pb)
                .cmp(&kept(pa))
                .then_with(|| version::compare(&pb.version, &pa.version))
                .then(pa.source_index.cmp(&pb.source_index))
                .then_with(|| pa.architecture.cmp(&pb.architecture))
                .then(a.cmp(b))
        };
        for candidates in by_name.values_mut() {
            candidates.sort_by(preference);
        }
        let mut providers: BTreeMap<String, Vec<(usize, Option<String>)>> = BTreeMap::new();
        for candidates in by_name.values() {
            for &i in candidates {
                for (name, v) in relations[i]
                    .as_ref()
                    .map(|r| r.provides.as_slice())
                    .unwrap_or_default()
                {
                    providers
                        .entry(name.clone())
                        .or_default()
                        .push((i, v.clone()));
                }
            }
        }
        // apt's choice among providers: the more important Priority first
        // (mawk, `required`, over gawk for `awk`), then by name. Stable,
        // so one provider's versions keep their preference order.
        for list in providers.values_mut() {
            list.sort_by_key(|(i, _)| {
                (
                    priority_rank(&packages[*i].priority),
                    packages[*i].name.as_str(),
                )
            });
        }
        Ok(Universe {
            arch: arch.to_string(),
            packages,
            relations,
            by_name,
            providers,
        })
    }

    fn label(&self, i: usize) -> String {
        format!("{} {}", self.packages[i].name, self.packages[i].version)
    }

    /// Names (real and virtual) close to `name`, for a helpful error.
    fn close_names(&self, name: &str) -> Vec<String> {
        let limit = 1.max(name.len() / 3);
        let mut scored: Vec<(usize, &String)> = self
            .by_name
            .keys()
            .chain(self.providers.keys())
            .filter_map(|n| {
                // Names that extend the request (`libc` → `libc6`) always
                // qualify, ranked by how much longer they are.
                if n.starts_with(name) {
                    return Some((n.len() - name.len(), n));
                }
                let d = edit_distance(n, name);
                (d <= limit).then_some((d, n))
            })
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
    }
}

fn priority_rank(priority: &str) -> u8 {
    match priority {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        "optional" => 3,
        "extra" => 4,
        _ => 5,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Splits `name` or `name=version`.
fn parse_request(request: &str) -> Result<(&str, Option<&str>), DependencyError> {
    let bad = |problem: &str| DependencyError::BadRequest {
        request: request.to_string(),
        problem: problem.to_string(),
    };
    let (name, version) = match request.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (request, None),
    };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || "(),|:[]<>".contains(c)) {
        return Err(bad(
            "write a package name, optionally pinned as `name=version`",
        ));
    }
    if version.is_some_and(|v| v.is_empty() || v.contains(char::is_whitespace)) {
        return Err(bad("the version after `=` is empty or contains spaces"));
    }
    Ok((name, version))
}

/// Resolves `requested` (`name` or `name=version`, an exact pin that
/// every dependency on that name must then accept) into the packages to
/// install: one per name, sorted by name.
pub fn resolve(universe: &Universe, requested: &[String]) -> Result<Vec<Package>, DependencyError> {
    let mut pins: BTreeMap<String, String> = BTreeMap::new();
    let mut names = Vec::new();
    for request in requested {
        let (name, version) = parse_request(request)?;
        names.push((request.as_str(), name, version));
        let Some(version) = version else { continue };
        let Some(candidates) = universe.by_name.get(name) else {
            return Err(DependencyError::NotFound {
                name: name.to_string(),
                arch: universe.arch.clone(),
                suggestions: universe.close_names(name),
            });
        };
        if !candidates
            .iter()
            .any(|&i| version::compare(&universe.packages[i].version, version).is_eq())
        {
            let available = candidates
                .iter()
                .map(|&i| universe.packages[i].version.clone())
                .collect();
            return Err(DependencyError::PinNotFound {
                name: name.to_string(),
                version: version.to_string(),
                available,
            });
        }
        if let Some(other) = pins
            .insert(name.to_string(), version.to_string())
            .filter(|o| !version::compare(o, version).is_eq())
        {
            return Err(DependencyError::BadRequest {
                request: request.clone(),
                problem: format!("{name} is also pinned to {other}; keep one version"),
            });
        }
    }
    let requested = names.iter().map(|(_, n, _)| n.to_string()).collect();
    let mut state = State::new(universe, pins, requested);
    for (request, name, version) in names {
        // A pin heads the chain as `name (= version)`.
        let relation = Relation {
            name: name.to_string(),
            arch_qualifier: None,
            constraint: version.map(|v| (Op::Eq, v.to_string())),
        };
        if !universe.by_name.contains_key(name) {
            let Some(providers) = universe.providers.get(name) else {
                return Err(DependencyError::NotFound {
                    name: name.to_string(),
                    arch: universe.arch.clone(),
                    suggestions: universe.close_names(name),
                });
            };
            // Like apt: a virtual name stands for its provider only when
            // that is unambiguous (or already settled).
            let provider_names: BTreeSet<&str> = providers
                .iter()
                .map(|(i, _)| universe.packages[*i].name.as_str())
                .collect();
            let settled = provider_names
                .iter()
                .any(|n| state.requested.contains(*n) || state.chosen.contains_key(*n));
            if provider_names.len() > 1 && !settled {
                return Err(DependencyError::Virtual {
                    name: name.to_string(),
                    providers: provider_names.into_iter().map(str::to_string).collect(),
                });
            }
        }
        state
            .satisfy_request(&relation, universe.by_name.contains_key(name))
            .map_err(|f| {
                if f.too_complex {
                    DependencyError::TooComplex {
                        request: request.to_string(),
                        limit: ATTEMPT_LIMIT,
                    }
                } else {
                    DependencyError::Unsatisfiable {
                        chain: f.chain.join(" -> "),
                        reason: f.reason,
                    }
                }
            })?;
    }
    Ok(state
        .chosen
        .values()
        .map(|c| universe.packages[c.index].clone())
        .collect())
}

mod order;
mod search;
#[cfg(test)]
mod tests;

pub use order::install_order;
use search::State;
