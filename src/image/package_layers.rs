//! The package layers of one platform: the locked .debs installed without
//! running anything, as one layer or one per package, and what SBOMs say
//! about each package.

use std::collections::BTreeMap;

use super::source_groups::{group_by_source, Member};
use super::{BuildError, LayerPlan};
use crate::apt::debs::{package_label, CheckedLock};
use crate::apt::{resolver, Package};
use crate::attest::{license, DebPackage, SbomPackage};
use crate::dpkg::deb::DebContents;
use crate::dpkg::install::{
    install, Declared, InstallOptions, Installed, ManualChoice, ScriptReport, Selected,
};
use crate::dpkg::unpack::UnpackedDeb;
use crate::fstree::{FsTree, Node, NodeKind};
use crate::lock::LockedPackage;
use crate::oci::{Digest, LayerBlob, Platform};
use crate::recipe::{AptLayers, AptSpec, PathKind, Recipe};

/// A recipe's `[apt]` made ready for the pure build: its spec, the lock in
/// force (checked against the recipe's platforms and sources), and every
/// .deb it names, unpacked. Only the pipeline's resolve stage makes one,
/// so a build has packages exactly when the recipe has `[apt]`.
pub struct Packages {
    pub(crate) apt: AptSpec,
    pub(crate) lock: CheckedLock,
    pub(crate) debs: BTreeMap<Digest, UnpackedDeb>,
}

impl Packages {
    pub(crate) fn new(
        apt: AptSpec,
        lock: CheckedLock,
        debs: BTreeMap<Digest, UnpackedDeb>,
    ) -> Packages {
        Packages { apt, lock, debs }
    }

    /// The lock in force.
    pub fn lock(&self) -> &crate::lock::Lock {
        &self.lock.lock
    }
}

/// What the package step hands the rest of the build: the layers to
/// write, and what SBOMs need once they are written.
pub(super) struct PackageLayers {
    pub layers: Vec<LayerPlan>,
    /// Every installed path, for the recipe layer's parents and whiteouts.
    pub tree: FsTree,
    /// The packages as SBOMs list them, read once (their copyright files
    /// are parsed for licenses) for the embedded SBOM and the attestations.
    debs: Vec<DebPackage>,
    /// base-passwd's (passwd, group) masters, when it is installed.
    pub masters: Option<(String, String)>,
    /// Accounts the packages declare.
    pub accounts: Vec<Declared>,
    /// The dpkg database files about every package, for the recipe layer.
    pub shared: FsTree,
    installed: Installed,
    /// Which of `layers` holds each package, by name.
    holder: BTreeMap<String, usize>,
}

pub(super) fn package_layers(
    recipe: &Recipe,
    inputs: &Packages,
    platform: &Platform,
    lower: &FsTree,
) -> Result<PackageLayers, BuildError> {
    let locked: &[LockedPackage] = inputs
        .lock
        .per_platform
        .get(&platform.to_string())
        .map_or(&[], Vec::as_slice);
    let opts = InstallOptions {
        native_arch: platform.debian_arch().map(str::to_string),
        // The lock's record of the choices is what the build holds the
        // packages to; the recipe only says where each was written.
        alternatives: inputs
            .lock
            .lock
            .platforms
            .get(&platform.to_string())
            .map(|p| &p.alternatives)
            .into_iter()
            .flatten()
            .map(|(name, path)| ManualChoice {
                name: name.clone(),
                path: path.clone(),
                loc: inputs.apt.alternatives.get(name).map_or_else(
                    || format!("the lock's {platform} alternatives"),
                    |(_, loc)| loc.0.clone(),
                ),
            })
            .collect(),
        accounts_base: base_accounts(lower)?,
        reserved: crate::assemble::accounts::reserved(&recipe.users, &recipe.groups),
        ..InstallOptions::default()
    };
    let (mut installed, source_versions) =
        install_locked(locked, &inputs.debs, recipe.epoch, &opts)?;
    // `kind = "absent"` takes a path out of the packages themselves, so
    // its bytes never ship (a whiteout would only hide them).
    for p in &recipe.paths {
        if p.kind == PathKind::Absent {
            for pkg in &mut installed.packages {
                pkg.tree.remove_subtree(&p.key);
            }
        }
    }
    let template = Node::dir(0o755, 0, 0, recipe.epoch);
    let mut layers = Vec::new();
    let mut holder: BTreeMap<String, usize> = BTreeMap::new();
    let mut tree = FsTree::new();
    match inputs.apt.layers {
        AptLayers::Single => {
            let mut merged = installed.merged_tree();
            merged.complete_parents_over(Some(lower), &template)?;
            for p in &installed.packages {
                holder.insert(p.summary.name.clone(), 0);
            }
            let n = installed.packages.len();
            layers.push(LayerPlan {
                tree: merged.clone(),
                created_by: format!("stele: {n} Debian package{}", if n == 1 { "" } else { "s" }),
            });
            tree = merged;
        }
        AptLayers::BySource { budget } => {
            let members: Vec<Member> = installed
                .packages
                .iter()
                .map(|p| Member {
                    source: &p.summary.source,
                    bytes: p
                        .tree
                        .iter()
                        .map(|(_, n)| match &n.kind {
                            NodeKind::File(c) => c.size(),
                            _ => 0,
                        })
                        .sum(),
                })
                .collect();
            let mut below = lower.clone();
            for group in group_by_source(&members, budget) {
                let mut t = FsTree::new();
                let mut names = Vec::new();
                for &i in &group.members {
                    let p = &installed.packages[i];
                    t.overlay(p.tree.clone());
                    holder.insert(p.summary.name.clone(), layers.len());
                    names.push(format!(
                        "{} {} ({})",
                        p.summary.name, p.summary.version, p.summary.architecture
                    ));
                }
                t.complete_parents_over(Some(&below), &template)?;
                below.overlay(t.clone());
                tree.overlay(t.clone());
                let what = match group.sources.as_slice() {
                    [one] => format!("Debian source package {one}"),
                    many => format!("Debian source packages {}", many.join(", ")),
                };
                layers.push(LayerPlan {
                    tree: t,
                    created_by: format!("stele: {what}: {}", names.join(", ")),
                });
            }
        }
        AptLayers::PerPackage => {
            let mut below = lower.clone();
            for p in &installed.packages {
                let mut t = p.tree.clone();
                t.complete_parents_over(Some(&below), &template)?;
                holder.insert(p.summary.name.clone(), layers.len());
                below.overlay(t.clone());
                tree.overlay(t.clone());
                layers.push(LayerPlan {
                    tree: t,
                    created_by: format!(
                        "stele: Debian package {} {} ({})",
                        p.summary.name, p.summary.version, p.summary.architecture
                    ),
                });
            }
        }
    }
    let debs = deb_packages(&installed, locked, &source_versions);
    Ok(PackageLayers {
        layers,
        tree,
        debs,
        masters: installed.passwd_masters.clone(),
        accounts: installed.accounts.clone(),
        shared: installed.shared.clone(),
        installed,
        holder,
    })
}

/// The base image's /etc/passwd and /etc/group, when it has both: the
/// packages' accounts are added to them, as the recipe layer adds them.
fn base_accounts(lower: &FsTree) -> Result<Option<(String, String)>, BuildError> {
    let text = |key: &str| super::file_text(lower, key);
    Ok(match (text("etc/passwd")?, text("etc/group")?) {
        (Some(p), Some(g)) => Some((p, g)),
        _ => None,
    })
}

impl PackageLayers {
    /// What the packages' maintainer scripts would have done, and what
    /// became of each effect.
    pub(crate) fn script_report(&self) -> &ScriptReport {
        &self.installed.report
    }

    /// Whether the package named `name` is installed by this step.
    pub(crate) fn installs(&self, name: &str) -> bool {
        self.holder.contains_key(name)
    }

    /// The packages installed, for the SBOM embedded in the image: known
    /// before any layer is written.
    pub(crate) fn deb_packages(&self) -> Vec<DebPackage> {
        self.debs.clone()
    }

    /// The SBOM entries, once the image's new layers exist: `blobs`, in
    /// order, starting with this step's.
    pub fn sbom(&self, blobs: &[LayerBlob]) -> Vec<SbomPackage> {
        let mut out: Vec<SbomPackage> = self
            .debs
            .iter()
            .map(|p| SbomPackage {
                layer_digest: blobs[self.holder[&p.name]].digest.clone(),
                deb: p.clone(),
            })
            .collect();
        out.sort();
        out
    }
}

/// Each installed package as SBOMs list it: its license from its own
/// copyright file (or the one its doc symlink leads to) and the .deb's
/// hash from the lock.
fn deb_packages(
    installed: &Installed,
    locked: &[LockedPackage],
    source_versions: &BTreeMap<String, String>,
) -> Vec<DebPackage> {
    let copyright_text = |path: &str| {
        let key = path.trim_start_matches('/');
        installed
            .packages
            .iter()
            .find_map(|p| match p.tree.get(key) {
                Some(Node {
                    kind: NodeKind::File(content),
                    ..
                }) => Some(content.read_all()),
                _ => None,
            })
            // Unreadable here means damaged, which writing the layer reports.
            .and_then(Result::ok)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let mut out = Vec::new();
    for p in &installed.packages {
        let s = &p.summary;
        let Some(lp) = locked.iter().find(|l| {
            l.name == s.name && l.version == s.version && l.architecture == s.architecture
        }) else {
            continue;
        };
        let license = s
            .copyright
            .as_deref()
            .and_then(copyright_text)
            .and_then(|t| license::from_debian_copyright(&t));
        out.push(DebPackage {
            name: s.name.clone(),
            version: s.version.clone(),
            architecture: s.architecture.clone(),
            license,
            source_package: s.source.clone(),
            source_version: source_versions.get(&s.name).cloned(),
            sha256: lp.sha256.clone(),
            purl: None,
        });
    }
    out.sort();
    out
}

/// Installs one platform's locked packages from their unpacked contents,
/// each after the packages it depends on (dpkg's unpack order, which is
/// what `Replaces` is judged by); ties in name order. Also returns each
/// package's source version where its `Source:` field names one
/// (`Source: glibc (2.36-9)`), for SBOMs.
pub(crate) fn install_locked(
    locked: &[LockedPackage],
    debs: &BTreeMap<Digest, UnpackedDeb>,
    epoch: u64,
    opts: &InstallOptions,
) -> Result<(Installed, BTreeMap<String, String>), BuildError> {
    let mut unpacked = Vec::with_capacity(locked.len());
    let mut source_versions = BTreeMap::new();
    for p in locked {
        let contents = debs
            .get(&p.sha256)
            .ok_or_else(|| BuildError::NotUnpacked {
                package: package_label(p),
            })?
            .contents(epoch);
        if let Some(v) = contents
            .control_field("Source")
            .as_deref()
            .and_then(source_version)
        {
            source_versions.insert(p.name.clone(), v);
        }
        unpacked.push((package_record(p, &contents), contents));
    }
    let records: Vec<Package> = unpacked.iter().map(|(p, _)| p.clone()).collect();
    let mut slots: Vec<Option<(Package, DebContents)>> = unpacked.into_iter().map(Some).collect();
    let ordered: Vec<(Selected, DebContents)> = resolver::install_order(&records)
        .into_iter()
        .map(|i| slots[i].take().expect("install_order is a permutation"))
        .map(|(p, deb)| (selected(&p), deb))
        .collect();
    Ok((install(&ordered, epoch, opts)?, source_versions))
}

/// The version in a `Source:` field's parentheses (`glibc (2.36-9)`).
fn source_version(field: &str) -> Option<String> {
    let (_, rest) = field.split_once('(')?;
    let (version, _) = rest.split_once(')')?;
    let version = version.trim();
    (!version.is_empty()).then(|| version.to_string())
}

/// What `install` reads of a package record.
fn selected(p: &Package) -> Selected {
    Selected {
        name: p.name.clone(),
        version: p.version.clone(),
        architecture: p.architecture.clone(),
        source: p.source.clone(),
        provides: p.provides.clone(),
        replaces: p.replaces.clone(),
    }
}

/// The package record `install` needs, from the lock and the .deb's own
/// control file (which is what dpkg trusts too).
fn package_record(p: &LockedPackage, deb: &DebContents) -> Package {
    let field = |n: &str| deb.control_field(n).unwrap_or_default();
    Package {
        name: p.name.clone(),
        version: p.version.clone(),
        architecture: p.architecture.clone(),
        multi_arch: field("Multi-Arch"),
        essential: field("Essential") == "yes",
        priority: field("Priority"),
        source: deb.control_field("Source").map_or_else(
            || p.name.clone(),
            |s| s.split_whitespace().next().unwrap_or_default().to_string(),
        ),
        depends: field("Depends"),
        pre_depends: field("Pre-Depends"),
        provides: field("Provides"),
        conflicts: field("Conflicts"),
        breaks: field("Breaks"),
        replaces: field("Replaces"),
        filename: p.path.clone(),
        size: p.size,
        sha256: p.sha256.clone(),
        stanza: String::new(),
        source_index: p.source,
    }
}
