//! `node_modules` as npm lays it out: each package's tarball extracted
//! at its lock path (the first path part stripped, links skipped), with
//! npm's file modes (pacote's: readable by all, writable by the owner,
//! executable bits kept, every `bin` target made executable; folders
//! 0755), and each `bin` linked from the `node_modules/.bin` folder of
//! the `node_modules` the package sits in, by a relative symlink.

use std::collections::BTreeSet;

use super::lock::ChosenPackage;
use super::NodeError;
use crate::apps::archive::{clean_path, Unpacked};
use crate::fstree::{FsTree, Node};

/// The mode npm gives a file from a tarball: pacote's `(mode | fmode) &
/// ~umask | 0o600`, with fmode 0666 and umask 022, plus `+x` for a bin.
fn file_mode(mode: u32, bin: bool) -> u32 {
    ((mode & 0o777) | 0o666) & 0o755 | if bin { 0o111 } else { 0 }
}

/// The `node_modules` folder `path` (a lock key) sits in.
fn modules_dir(path: &str) -> &str {
    let at = path
        .rfind("node_modules/")
        .expect("lock keys are under node_modules");
    &path[..at + "node_modules".len()]
}

/// Lays `packages` (each with its unpacked tarball) out under `dest` (an
/// image key, the project folder) for `platform` (named in errors).
pub fn install(
    dest: &str,
    packages: &[(&ChosenPackage, &Unpacked)],
    epoch: u64,
    platform: &str,
) -> Result<FsTree, NodeError> {
    let mut tree = FsTree::new();
    for (package, unpacked) in packages {
        let err = |message: String| NodeError::Layout {
            platform: platform.to_string(),
            package: format!("{}@{}", package.name, package.version),
            message,
        };
        let root = format!("{dest}/{}", package.path);
        let bins: BTreeSet<String> = package.bin.values().filter_map(|p| clean_path(p)).collect();
        for entry in unpacked.entries() {
            let key = format!("{root}/{}", entry.path);
            let node = match unpacked.content(entry) {
                Some(content) => Node::file(
                    content,
                    file_mode(entry.mode, bins.contains(&entry.path)),
                    0,
                    0,
                    epoch,
                ),
                None => Node::dir(0o755, 0, 0, epoch),
            };
            tree.insert(key, node).map_err(|e| err(e.to_string()))?;
        }
        let bin_dir = format!("{dest}/{}/.bin", modules_dir(&package.path));
        let inside = &package.path[modules_dir(&package.path).len() + 1..];
        for (name, target) in &package.bin {
            let clean = clean_path(target)
                .ok_or_else(|| err(format!("bin {name} points outside the package: {target}")))?;
            if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
                return Err(err(format!("bin name `{name}` is not a file name")));
            }
            let link = Node::symlink(format!("../{inside}/{clean}"), 0, 0, epoch);
            tree.insert(format!("{bin_dir}/{name}"), link)
                .map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_bin_folders_follow_npm() {
        assert_eq!(file_mode(0o644, false), 0o644);
        assert_eq!(file_mode(0o600, false), 0o644);
        assert_eq!(file_mode(0o755, false), 0o755);
        assert_eq!(file_mode(0o644, true), 0o755);
        assert_eq!(file_mode(0o4777, false), 0o755);
        assert_eq!(modules_dir("node_modules/a"), "node_modules");
        assert_eq!(
            modules_dir("node_modules/a/node_modules/@s/b"),
            "node_modules/a/node_modules"
        );
    }
}
