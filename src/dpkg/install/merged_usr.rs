//! Merged /usr (usrmerge, debootstrap's default since bookworm): paths
//! under /bin, /sbin, /lib, /lib32, /lib64 and /libx32 are installed under
//! /usr, and `bin -> usr/bin` and its kin are added. Relative symlink
//! targets are left as shipped, which is what dpkg does on a merged system.

use std::collections::BTreeMap;

use super::ownership::{equivalent, lexical_target, State};
use super::{package_label, InstallError, Selected};
use crate::dpkg::deb::DebContents;
use crate::fstree::{Node, NodeKind};

/// The directories merged /usr turns into symlinks, in byte order.
const MERGED_DIRS: [&str; 6] = ["bin", "lib", "lib32", "lib64", "libx32", "sbin"];

/// The merged /usr directory `key` lies in (or is), if any.
pub(super) fn merged_alias(key: &str) -> Option<&'static str> {
    let first = key.split('/').next()?;
    MERGED_DIRS.iter().copied().find(|a| *a == first)
}

/// One package's entries keyed by where they are installed.
pub(super) fn stage(
    j: usize,
    p: &Selected,
    deb: &DebContents,
    merged_usr: bool,
    remapped: &mut BTreeMap<&'static str, usize>,
) -> Result<BTreeMap<String, Node>, InstallError> {
    let mut staged: BTreeMap<String, (Node, &str)> = BTreeMap::new();
    for entry in &deb.data {
        let mut node = entry.node.clone();
        let alias = merged_alias(&entry.path).filter(|_| merged_usr);
        let key = match alias {
            None => entry.path.clone(),
            Some(alias) if entry.path == alias => match &node.kind {
                NodeKind::Dir => {
                    remapped.entry(alias).or_insert(j);
                    format!("usr/{alias}")
                }
                NodeKind::Symlink(t)
                    if lexical_target(alias, t).as_deref() == Some(&format!("usr/{alias}")) =>
                {
                    alias.to_string()
                }
                _ => {
                    return Err(InstallError::MergedUsrAlias {
                        package: package_label(p),
                        alias: alias.to_string(),
                        kind: node.kind_name(),
                    })
                }
            },
            Some(alias) => {
                remapped.entry(alias).or_insert(j);
                format!("usr/{}", entry.path)
            }
        };
        if let NodeKind::Hardlink(target) = &mut node.kind {
            if merged_usr && merged_alias(target).is_some() {
                *target = format!("usr/{target}");
            }
        }
        match staged.get(&key) {
            None => {
                staged.insert(key, (node, entry.path.as_str()));
            }
            Some((old, _)) if old.kind == NodeKind::Dir && node.kind == NodeKind::Dir => {
                // /usr/bin's own metadata wins over a remapped /bin's.
                if entry.path == key {
                    staged.insert(key, (node, entry.path.as_str()));
                }
            }
            Some((old, _)) if equivalent(&key, old, &node) => {}
            Some((_, first)) => {
                return Err(InstallError::MergedUsrClash {
                    package: package_label(p),
                    first: first.to_string(),
                    second: entry.path.clone(),
                })
            }
        }
    }
    Ok(staged.into_iter().map(|(k, (n, _))| (k, n)).collect())
}

/// Adds each alias symlink (`bin -> usr/bin`, …) that a package's paths
/// went through, owned by the first package that did, unless a package
/// ships it. `remapped` is what `stage` noted.
pub(super) fn link_aliases(
    state: &mut State,
    remapped: &BTreeMap<&'static str, usize>,
    epoch: u64,
) -> Result<(), InstallError> {
    for alias in MERGED_DIRS {
        if state.holders.contains_key(alias) {
            continue; // a package ships the symlink itself
        }
        let usr = format!("usr/{alias}");
        let first_usr = state.holders.get(&usr).map(|h| h[0]);
        let owner = match (remapped.get(alias).copied(), first_usr) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(j) = owner {
            state.place(j, alias.to_string(), Node::symlink(usr, 0, 0, epoch))?;
        }
    }
    Ok(())
}
