//! The package layers of one platform: the locked .debs installed without
//! running anything, as one layer or one per package, and what SBOMs say
//! about each package.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::PlannedLayer;
use crate::apt::install::Installed;
use crate::attest::{license, SbomPackage};
use crate::fstree::{Content, FsTree, Node, NodeKind};
use crate::layer;
use crate::lock::{Lock, LockedPackage};
use crate::oci::{Digest, Platform};
use crate::recipe::{AptLayers, AptSpec, PathKind, Recipe};
use crate::store::BlobStore;
use crate::BuildError;

/// The lock in force and the verified cache file of every .deb it names.
pub struct PackageInputs<'a> {
    pub lock: &'a Lock,
    pub lock_path: &'a Path,
    pub files: &'a BTreeMap<Digest, PathBuf>,
}

/// What the package step hands the rest of the build.
pub(super) struct PackageLayers {
    pub layers: Vec<PlannedLayer>,
    /// Every installed path, for the recipe layer's parents and whiteouts.
    pub tree: FsTree,
    /// base-passwd's (passwd, group) masters, when it is installed.
    pub masters: Option<(String, String)>,
    pub sbom: Vec<SbomPackage>,
}

pub(super) fn package_layers(
    recipe: &Recipe,
    apt: &AptSpec,
    inputs: &PackageInputs,
    platform: &Platform,
    lower: &FsTree,
    store: &BlobStore,
) -> Result<PackageLayers, BuildError> {
    let locked = crate::packages::locked_for(inputs.lock, inputs.lock_path, platform)?;
    let mut installed = crate::packages::install_locked(locked, inputs.files, recipe.epoch)?;
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
    let mut holder: BTreeMap<String, Digest> = BTreeMap::new();
    let mut tree = FsTree::new();
    match apt.layers {
        AptLayers::Single => {
            let mut merged = installed.merged_tree();
            merged.complete_parents_over(Some(lower), &template)?;
            let blob = layer::write_layer(&merged, recipe.compression, store)?;
            for p in &installed.packages {
                holder.insert(p.summary.name.clone(), blob.digest.clone());
            }
            layers.push(PlannedLayer {
                blob,
                created_by: format!(
                    "stele: {} Debian package{}",
                    installed.packages.len(),
                    if installed.packages.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ),
            });
            tree = merged;
        }
        AptLayers::PerPackage => {
            let mut below = lower.clone();
            for p in &installed.packages {
                let mut t = p.tree.clone();
                t.complete_parents_over(Some(&below), &template)?;
                let blob = layer::write_layer(&t, recipe.compression, store)?;
                holder.insert(p.summary.name.clone(), blob.digest.clone());
                layers.push(PlannedLayer {
                    blob,
                    created_by: format!(
                        "stele: Debian package {} {} ({})",
                        p.summary.name, p.summary.version, p.summary.architecture
                    ),
                });
                below.overlay(t.clone());
                tree.overlay(t);
            }
        }
    }
    let sbom = sbom_packages(&installed, locked, &holder);
    Ok(PackageLayers {
        layers,
        tree,
        masters: installed.passwd_masters.clone(),
        sbom,
    })
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
                    kind: NodeKind::File(Content::Bytes(b)),
                    ..
                }) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
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
