//! Turns the recipe's own entries (`[[files]]`, `[[paths]]`, `[accounts]`)
//! into the tree of the recipe layer.

pub mod accounts;
pub mod files;
pub mod local_ca;

use crate::fstree::{Content, FsTree, Node, NodeKind, TreeError};
use crate::recipe::{PathKind, Recipe};

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error(transparent)]
    Files(#[from] files::FilesError),
    // Interpolated, not attached: the location is what the tree's own
    // message lacks.
    #[error("{loc}: {error}")]
    Path { loc: String, error: TreeError },
    #[error("the account files: {error}")]
    Accounts { error: TreeError },
    #[error("{recipe}: {error}")]
    LocalCa {
        recipe: std::path::PathBuf,
        error: Box<local_ca::LocalCaError>,
    },
}

/// The recipe layer's tree. `masters` is base-passwd's (passwd, group) when
/// the packages install it, so accounts merge with the Debian defaults;
/// `declared` are the accounts the packages ask for.
pub(crate) fn recipe_tree(
    recipe: &Recipe,
    masters: Option<(&str, &str)>,
    declared: &[crate::dpkg::install::Declared],
) -> Result<FsTree, AssembleError> {
    let epoch = recipe.epoch;
    let mut tree = FsTree::new();
    for spec in &recipe.files {
        files::add_file_spec(&mut tree, spec, &recipe.context, epoch)?;
    }
    for p in &recipe.paths {
        let (uid, gid) = p.owner;
        let node = match &p.kind {
            PathKind::Dir => Node::dir(p.mode.unwrap_or(0o755), uid, gid, epoch),
            PathKind::File(text) => Node::file(
                Content::bytes(text.as_bytes()),
                p.mode.unwrap_or(0o644),
                uid,
                gid,
                epoch,
            ),
            PathKind::Symlink(t) => Node::symlink(t.clone(), uid, gid, epoch),
            PathKind::Absent => Node {
                kind: NodeKind::Whiteout,
                ..Node::dir(0, 0, 0, epoch)
            },
        };
        tree.insert(p.key.clone(), node)
            .map_err(|error| AssembleError::Path {
                loc: p.loc.0.clone(),
                error,
            })?;
    }
    let accounts = |error| AssembleError::Accounts { error };
    if !recipe.users.is_empty()
        || !recipe.groups.is_empty()
        || masters.is_some()
        || !declared.is_empty()
    {
        let acc = accounts::account_files(&recipe.users, &recipe.groups, masters, declared, epoch);
        tree.insert(
            "etc/passwd".into(),
            Node::file(Content::bytes(acc.passwd), 0o644, 0, 0, epoch),
        )
        .map_err(accounts)?;
        tree.insert(
            "etc/group".into(),
            Node::file(Content::bytes(acc.group), 0o644, 0, 0, epoch),
        )
        .map_err(accounts)?;
        for (key, text, mode, gid) in acc.shadow {
            tree.insert(
                key.into(),
                Node::file(Content::bytes(text), mode, 0, gid, epoch),
            )
            .map_err(accounts)?;
        }
        for (home, uid, gid) in acc.homes {
            let key =
                crate::fstree::normalize_abs(&home).expect("validated when the recipe loaded");
            if tree.get(&key).is_none() {
                tree.insert(key, Node::dir(0o755, uid, gid, epoch))
                    .map_err(accounts)?;
            }
        }
    }
    Ok(tree)
}
