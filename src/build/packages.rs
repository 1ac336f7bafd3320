//! The package layers of one platform: the locked .debs installed without
//! running anything, as one layer or one per package, and what SBOMs say
//! about each package.

use std::collections::BTreeMap;
use std::path::Path;

use super::LayerPlan;
use crate::apt::install::Installed;
use crate::attest::{license, SbomPackage};
use crate::deb::unpack::UnpackedDeb;
use crate::fstree::{FsTree, Node, NodeKind};
use crate::lock::{Lock, LockedPackage};
use crate::oci::{Digest, LayerBlob, Platform};
use crate::recipe::{AptLayers, AptSpec, PathKind, Recipe};
use crate::BuildError;

/// The lock in force and every .deb it names, unpacked.
pub struct PackageInputs<'a> {
    pub lock: &'a Lock,
    pub lock_path: &'a Path,
    pub debs: &'a BTreeMap<Digest, UnpackedDeb>,
}

/// What the package step hands the rest of the build: the layers to
/// write, and what SBOMs need once they are written.
pub(super) struct PackageLayers<'a> {
    pub layers: Vec<LayerPlan>,
    /// Every installed path, for the recipe layer's parents and whiteouts.
    pub tree: FsTree,
    /// base-passwd's (passwd, group) masters, when it is installed.
    pub masters: Option<(String, String)>,
    installed: Installed,
    locked: &'a [LockedPackage],
    /// Which of `layers` holds each package, by name.
    holder: BTreeMap<String, usize>,
}

pub(super) fn package_layers<'a>(
    recipe: &Recipe,
    apt: &AptSpec,
    inputs: &PackageInputs<'a>,
    platform: &Platform,
    lower: &FsTree,
) -> Result<PackageLayers<'a>, BuildError> {
    let locked = crate::packages::locked_for(inputs.lock, inputs.lock_path, platform)?;
    let mut installed = crate::packages::install_locked(locked, inputs.debs, recipe.epoch)?;
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
    match apt.layers {
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
    Ok(PackageLayers {
        layers,
        tree,
        masters: installed.passwd_masters.clone(),
        installed,
        locked,
        holder,
    })
}

impl PackageLayers<'_> {
    /// The SBOM entries, once the image's new layers exist: `blobs`, in
    /// order, starting with this step's.
    pub fn sbom(&self, blobs: &[LayerBlob]) -> Vec<SbomPackage> {
        let holder = self
            .holder
            .iter()
            .map(|(name, &i)| (name.clone(), blobs[i].digest.clone()))
            .collect();
        sbom_packages(&self.installed, self.locked, &holder)
    }
}

/// Each installed package as SBOMs list it: its license from its own
/// copyright file (or the one its doc symlink leads to), the .deb's hash
/// from the lock, and the layer that holds its files.
fn sbom_packages(
    installed: &Installed,
    locked: &[LockedPackage],
    holder: &BTreeMap<String, Digest>,
) -> Vec<SbomPackage> {
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
        out.push(SbomPackage {
            name: s.name.clone(),
            version: s.version.clone(),
            architecture: s.architecture.clone(),
            license,
            source_package: s.source.clone(),
            sha256: lp.sha256.clone(),
            layer_digest: holder[&s.name].clone(),
        });
    }
    out.sort();
    out
}
