//! `[[files]]`: host files and directories in the build context (the
//! recipe's folder unless `--context` names another) become tree nodes. Host metadata that would make the image depend on the machine
//! (mtimes, owners, umask-shaped modes, directory order) is never copied:
//! mtimes are the epoch, owners come from the recipe, modes are 0755/0644
//! from the executable bit unless the recipe says otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fstree::{normalize_rel, Content, FsTree, Node, NodeKind, TreeError};
use crate::oci::digest::hash_reader;
use crate::recipe::FileSpec;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{loc}: reading {path}: {error}")]
    Io {
        loc: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{loc}: {path} is a symlink to {target}, which is outside the recipe's folder {root} (the build context): copy the file it points to beside the recipe instead, or into the folder --context names")]
    LinkEscapes {
        loc: String,
        path: PathBuf,
        target: String,
        root: PathBuf,
    },
    #[error("{loc}: {path} is a {kind}; only regular files, directories and symlinks can be copied into an image")]
    Unsupported {
        loc: String,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("{loc}: {path} has a name that is not UTF-8; rename it")]
    NotUtf8 { loc: String, path: PathBuf },
    #[error("{loc}: {path}: {message}; fix the pattern (gitignore syntax)")]
    Ignore {
        loc: String,
        path: PathBuf,
        message: String,
    },
    // Interpolated, not attached: the tree's message is the whole story
    // and the location is what it lacks.
    #[error("{loc}: {error}")]
    Tree { loc: String, error: TreeError },
}

fn default_mode(meta: &fs::Metadata) -> u32 {
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// The build context, with symlinks resolved, as the bound links must stay in.
fn canonical_root(root: &Path, loc: &str) -> Result<PathBuf, FilesError> {
    fs::canonicalize(root).map_err(|e| FilesError::Io {
        loc: loc.into(),
        path: root.into(),
        error: e,
    })
}

/// Adds one `[[files]]` entry to `tree`, read from the build context
/// `context` (`Recipe::context`), which no link may lead out of.
pub(crate) fn add_file_spec(
    tree: &mut FsTree,
    spec: &FileSpec,
    context: &Path,
    epoch: u64,
) -> Result<(), FilesError> {
    let loc = spec.loc.0.as_str();
    let tree_error = |error| FilesError::Tree {
        loc: loc.into(),
        error,
    };
    let root = canonical_root(context, loc)?;
    let io = |path: &Path, e| FilesError::Io {
        loc: loc.into(),
        path: path.into(),
        error: e,
    };
    let (uid, gid) = spec.owner;

    // The src itself may be a symlink (a common way to share a file between
    // recipes); it is followed, but only within the build context.
    let resolved = fs::canonicalize(&spec.src).map_err(|e| io(&spec.src, e))?;
    if !resolved.starts_with(&root) {
        return Err(FilesError::LinkEscapes {
            loc: loc.into(),
            path: spec.src.clone(),
            target: resolved.display().to_string(),
            root,
        });
    }
    let meta = fs::metadata(&resolved).map_err(|e| io(&resolved, e))?;
    if meta.is_file() {
        let node = file_node(&resolved, &meta, spec, epoch, loc)?;
        tree.insert(spec.dest.clone(), node).map_err(tree_error)?;
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(FilesError::Unsupported {
            loc: loc.into(),
            path: resolved,
            kind: file_kind(&meta),
        });
    }

    tree.insert(spec.dest.clone(), Node::dir(0o755, uid, gid, epoch))
        .map_err(tree_error)?;
    let excluded = exclusions(&resolved, spec, loc)?;
    // Hard links are grouped by inode and resolved after the walk, so the
    // file that carries the content is the first in tar order, whatever
    // order the directory walk found them in.
    let mut inodes: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    let mut pending: Vec<(String, Node)> = Vec::new();
    for entry in walkdir::WalkDir::new(&resolved)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        // An excluded folder is not entered: nothing below it is copied.
        .filter_entry(|e| !excluded(e.path(), e.file_type().is_dir()))
    {
        let entry = entry.map_err(|e| {
            let p = e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| resolved.clone());
            io(&p, e.into())
        })?;
        let path = entry.path();
        let rel = path
            .strip_prefix(&resolved)
            .expect("walk stays below its root");
        let rel = rel.to_str().ok_or_else(|| FilesError::NotUtf8 {
            loc: loc.into(),
            path: path.into(),
        })?;
        let key = format!(
            "{}/{}",
            spec.dest,
            normalize_rel(rel).expect("walked paths have no ..")
        );
        let meta = entry.metadata().map_err(|e| io(path, e.into()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            pending.push((key, Node::dir(0o755, uid, gid, epoch)));
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(|e| io(path, e))?;
            let target_s = target.to_str().ok_or_else(|| FilesError::NotUtf8 {
                loc: loc.into(),
                path: path.into(),
            })?;
            // Absolute targets name image paths and are never followed on
            // the host; relative ones must stay inside the build context.
            if target.is_relative() {
                let joined = path.parent().expect("entry has a parent").join(&target);
                let escapes = match fs::canonicalize(&joined) {
                    Ok(c) => !c.starts_with(&root),
                    Err(_) => !lexically_inside(&joined, context),
                };
                if escapes {
                    return Err(FilesError::LinkEscapes {
                        loc: loc.into(),
                        path: path.into(),
                        target: target_s.to_string(),
                        root,
                    });
                }
            }
            pending.push((key, Node::symlink(target_s, uid, gid, epoch)));
        } else if ft.is_file() {
            let node = file_node(path, &meta, spec, epoch, loc)?;
            if meta.nlink() > 1 {
                inodes
                    .entry((meta.dev(), meta.ino()))
                    .or_default()
                    .push(key.clone());
            }
            pending.push((key, node));
        } else {
            return Err(FilesError::Unsupported {
                loc: loc.into(),
                path: path.into(),
                kind: file_kind(&meta),
            });
        }
    }
    let mut link_to: BTreeMap<String, String> = BTreeMap::new();
    for mut group in inodes.into_values() {
        group.sort();
        for other in &group[1..] {
            link_to.insert(other.clone(), group[0].clone());
        }
    }
    for (key, mut node) in pending {
        if let Some(target) = link_to.get(&key) {
            node.kind = NodeKind::Hardlink(target.clone());
        }
        tree.insert(key, node).map_err(tree_error)?;
    }
    Ok(())
}

/// What `[[files]] exclude` and the folder's `.steleignore` leave out
/// of a copied folder `root`, as a predicate on (host path, is a folder).
/// The `.steleignore` itself is never copied; its text changes the image
/// only through what it excludes.
fn exclusions(
    root: &Path,
    spec: &FileSpec,
    loc: &str,
) -> Result<impl Fn(&Path, bool) -> bool, FilesError> {
    let ignore_file = root.join(IGNORE_FILE);
    let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
    for pattern in &spec.exclude {
        builder
            .add_line(None, pattern)
            .map_err(|e| FilesError::Ignore {
                loc: loc.into(),
                path: spec.src.clone(),
                message: e.to_string(),
            })?;
    }
    if ignore_file.is_file() {
        if let Some(e) = builder.add(&ignore_file) {
            return Err(FilesError::Ignore {
                loc: loc.into(),
                path: ignore_file,
                message: e.to_string(),
            });
        }
    }
    let matcher = builder.build().map_err(|e| FilesError::Ignore {
        loc: loc.into(),
        path: spec.src.clone(),
        message: e.to_string(),
    })?;
    Ok(move |path: &Path, is_dir: bool| {
        path == ignore_file || matcher.matched(path, is_dir).is_ignore()
    })
}

/// The file in a copied folder's root that lists, gitignore-style, what
/// not to copy.
pub(crate) const IGNORE_FILE: &str = ".steleignore";

fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut depth: Vec<std::ffi::OsString> = Vec::new();
    let root_abs = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                depth.pop();
            }
            std::path::Component::CurDir => {}
            other => depth.push(other.as_os_str().to_owned()),
        }
    }
    depth.iter().collect::<PathBuf>().starts_with(root_abs)
}

fn file_node(
    path: &Path,
    meta: &fs::Metadata,
    spec: &FileSpec,
    epoch: u64,
    loc: &str,
) -> Result<Node, FilesError> {
    let file = fs::File::open(path).map_err(|e| FilesError::Io {
        loc: loc.into(),
        path: path.into(),
        error: e,
    })?;
    let (digest, size) =
        hash_reader(std::io::BufReader::new(file)).map_err(|e| FilesError::Io {
            loc: loc.into(),
            path: path.into(),
            error: e,
        })?;
    let mode = spec.mode.unwrap_or_else(|| default_mode(meta));
    let (uid, gid) = spec.owner;
    Ok(Node::file(
        Content::Host {
            path: path.to_path_buf(),
            size,
            digest,
        },
        mode,
        uid,
        gid,
        epoch,
    ))
}

fn file_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    if ft.is_fifo() {
        "named pipe"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    }
}
