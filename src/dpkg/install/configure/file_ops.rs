//! The plain file commands of a package's scripts, done to the tree being
//! installed as they would run: directories made with the umask's mode,
//! owners by name through the accounts made so far, links, copies of
//! shipped files, empty files, statoverrides.
//!
//! A script changes the owner or mode only of what its own package alone
//! installs or its scripts made: a path another package holds too (`/etc`,
//! `/var/log`, a home that already exists) keeps its owner and mode, and
//! the command is reported as refused. It writes, edits or removes a file
//! its own source package holds, or one no package ships (another
//! script made it); never another package's shipped file. Paths are resolved through the
//! links packages ship (and `/var/run` → `/run`, which base-files makes
//! before any service package is configured), never out of the root.

use super::super::accounts::Registry;
use super::super::ownership::{lexical_target, State};
use crate::dpkg::scripts::{sed, FileOp};
use crate::fstree::{self, Content, Node, NodeKind};

/// A statoverride line: owner, group, mode, path.
pub(crate) type Override = (String, String, u32, String);

/// What the script's command did, or why it was not done.
pub(super) type Done = Result<String, String>;

/// Where an absolute `path` is in the tree: ancestors that are links
/// followed (lexically, at most 40 of them, as the kernel's limit), merged
/// /usr applied by `key_of`.
pub(super) fn resolve(
    state: &State,
    key_of: &dyn Fn(&str) -> Option<String>,
    path: &str,
) -> Option<String> {
    let mut key = key_of(path)?;
    for _ in 0..40 {
        let mut changed = false;
        let parts: Vec<&str> = key.split('/').collect();
        for k in 1..parts.len() {
            let ancestor = parts[..k].join("/");
            let target = match node(state, &ancestor).map(|n| &n.kind) {
                Some(NodeKind::Symlink(t)) => Some(t.clone()),
                // base-files' postinst makes these links first thing.
                None | Some(NodeKind::Dir) if ancestor == "var/run" => Some(String::from("/run")),
                None | Some(NodeKind::Dir) if ancestor == "var/lock" => {
                    Some(String::from("/run/lock"))
                }
                _ => None,
            };
            if let Some(t) = target {
                let base = lexical_target(&ancestor, &t)?;
                let rest = parts[k..].join("/");
                key = if base.is_empty() {
                    rest
                } else {
                    format!("{base}/{rest}")
                };
                key = key_of(&format!("/{key}"))?;
                changed = true;
                break;
            }
        }
        if !changed {
            return Some(key);
        }
    }
    None
}

/// The largest file a script's `grep`, `sed -i` or `>>` reads.
const MAX_TEXT: u64 = 1 << 20;

/// The text of the file at `key`, when it is a UTF-8 file of at most
/// `MAX_TEXT` bytes.
pub(super) fn text(state: &State, key: &str) -> Option<String> {
    match &node(state, key)?.kind {
        NodeKind::File(c) if c.size() <= MAX_TEXT => String::from_utf8(c.read_all().ok()?).ok(),
        _ => None,
    }
}

/// Gives the file at `key` (which `j` alone holds, no package ships, or
/// nobody holds) `text`:
/// an existing file keeps its mode and owner, a new one is made as the
/// shell makes it (0666 less the umask, root's).
fn put(state: &mut State, j: usize, key: &str, text: String, umask: u32, epoch: u64) -> Done {
    let content = Content::bytes(text.into_bytes());
    match node(state, key).map(|n| n.kind.clone()) {
        Some(NodeKind::File(_)) => {
            if !alone(state, j, key) && shipped(state, key) {
                return Err(refused(key));
            }
            for h in state.holders[key].clone() {
                if let Some(n) = state.trees[h].get_mut(key) {
                    n.kind = NodeKind::File(content.clone());
                    n.mtime = epoch;
                }
            }
            Ok(format!("/{key} written"))
        }
        Some(_) => Err(format!("/{key} is not a plain file")),
        None => {
            if !parent_is_dir(state, key) {
                return Err(format!("the folder of /{key} does not exist"));
            }
            let node = Node::file(content, 0o666 & !umask, 0, 0, epoch);
            state
                .place(j, key.to_string(), node)
                .map_err(|e| e.to_string())?;
            Ok(format!("/{key} made"))
        }
    }
}

/// What the tree has at `key`, from its first holder.
pub(super) fn node_at<'a>(state: &'a State, key: &str) -> Option<&'a Node> {
    node(state, key)
}

fn node<'a>(state: &'a State, key: &str) -> Option<&'a Node> {
    let hs = state.holders.get(key)?;
    state.trees[hs[0]].get(key)
}

/// Whether only packages of `j`'s source package hold `key` (a source
/// package's binaries are one maintainer's, and their scripts set up each
/// other's folders, as redis-tools' sets redis-server's /etc/redis).
fn alone(state: &State, j: usize, key: &str) -> bool {
    let source = &state.packages[j].0.source;
    state
        .holders
        .get(key)
        .is_some_and(|hs| hs.iter().all(|&h| state.packages[h].0.source == *source))
}

/// Whether `j` itself ships `key` and base-files (the system's own
/// folders: /etc, /var/log, …) does not: dpkg-statoverride, dpkg's own
/// record of a path's owner and mode, may then set it although another
/// source package ships it too (ssl-cert's and openssl's /etc/ssl/private).
fn co_owned(state: &State, j: usize, key: &str) -> bool {
    state.holders.get(key).is_some_and(|hs| {
        hs.contains(&j) && hs.iter().all(|&h| state.packages[h].0.name != "base-files")
    })
}

/// Whether a package's archive holds `key` (rather than a script or
/// stele's rules having made it): such a file is dpkg's, checked by
/// `dpkg -V`, and only its own source package's scripts change it. What
/// scripts made (libc-bin's /etc/nsswitch.conf) is everyone's to edit, as
/// libnss-systemd's postinst edits that one.
fn shipped(state: &State, key: &str) -> bool {
    let unmerged = key.strip_prefix("usr/");
    state.holders.get(key).is_some_and(|hs| {
        hs.iter().any(|&h| {
            state.packages[h]
                .1
                .data
                .iter()
                .any(|e| e.path == key || Some(e.path.as_str()) == unmerged)
        })
    })
}

fn refused(key: &str) -> String {
    format!("refused: /{key} is installed by other source packages too, and a script changes only what its own source package installs")
}

fn ids(
    registry: &Registry,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<(Option<u32>, Option<u32>), String> {
    let uid = match owner {
        None => None,
        Some(n) => Some(
            n.parse()
                .ok()
                .or_else(|| registry.uid(n))
                .ok_or_else(|| format!("there is no user `{n}`"))?,
        ),
    };
    let gid = match group {
        None => None,
        Some(n) => Some(
            n.parse()
                .ok()
                .or_else(|| registry.gid(n))
                .ok_or_else(|| format!("there is no group `{n}`"))?,
        ),
    };
    Ok((uid, gid))
}

/// Sets owner and mode of what `j` alone holds at `key` (and below it,
/// when `recursive`).
fn set(
    state: &mut State,
    j: usize,
    key: &str,
    recursive: bool,
    f: &dyn Fn(&mut Node),
) -> Result<(), String> {
    if !alone(state, j, key) {
        return Err(refused(key));
    }
    let prefix = format!("{key}/");
    let keys: Vec<String> = if recursive {
        state
            .holders
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .filter(|k| alone(state, j, k))
            .collect()
    } else {
        Vec::new()
    };
    for k in std::iter::once(key.to_string()).chain(keys) {
        for h in state.holders[&k].clone() {
            if let Some(n) = state.trees[h].get_mut(&k) {
                // Links have no mode or owner of their own that matters.
                if !matches!(n.kind, NodeKind::Symlink(_)) {
                    f(n);
                }
            }
        }
    }
    Ok(())
}

/// The parent of `key` exists and is a directory.
/// Places a file a command made at `key`, whose folder must exist.
pub(super) fn place_made(state: &mut State, j: usize, key: &str, node: Node) -> Done {
    if !parent_is_dir(state, key) {
        return Err(format!("the folder of /{key} does not exist"));
    }
    state
        .place(j, key.to_string(), node)
        .map_err(|e| e.to_string())?;
    Ok(format!("/{key} made"))
}

fn parent_is_dir(state: &State, key: &str) -> bool {
    match fstree::parent(key) {
        None => true,
        Some(p) => matches!(node(state, p).map(|n| &n.kind), Some(NodeKind::Dir)),
    }
}

/// Does `op` (run with `umask`) to the tree, as package `j`'s script.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply(
    state: &mut State,
    j: usize,
    op: &FileOp,
    umask: u32,
    registry: &Registry,
    key_of: &dyn Fn(&str) -> Option<String>,
    overrides: &mut Vec<Override>,
    epoch: u64,
) -> Done {
    let at = |state: &State, path: &str| {
        resolve(state, key_of, path).ok_or_else(|| format!("{path} leads out of the root"))
    };
    match op {
        FileOp::MakeDir {
            path,
            parents,
            mode,
            owner,
            group,
            existing,
        } => {
            let key = at(state, path)?;
            let (uid, gid) = ids(registry, owner.as_deref(), group.as_deref())?;
            match node(state, &key).map(|n| n.kind.clone()) {
                Some(NodeKind::Dir) => {
                    if *existing && (mode.is_some() || uid.is_some() || gid.is_some()) {
                        set(state, j, &key, false, &|n| {
                            if let Some(m) = mode {
                                n.mode = *m;
                            }
                            n.uid = uid.unwrap_or(n.uid);
                            n.gid = gid.unwrap_or(n.gid);
                        })?;
                        return Ok(format!("/{key} exists; its owner and mode set"));
                    }
                    Ok(format!("/{key} exists"))
                }
                Some(_) => Err(format!("/{key} exists and is not a directory")),
                None => {
                    let mut missing = Vec::new();
                    let mut cur = key.as_str();
                    while let Some(p) = fstree::parent(cur) {
                        match node(state, p).map(|n| &n.kind) {
                            Some(NodeKind::Dir) => break,
                            Some(_) => return Err(format!("/{p} is not a directory")),
                            None => missing.push(p.to_string()),
                        }
                        cur = p;
                    }
                    if !missing.is_empty() && !parents {
                        return Err(format!("/{} does not exist", missing[0]));
                    }
                    for p in missing.into_iter().rev() {
                        let node = Node::dir(0o777 & !umask, 0, 0, epoch);
                        state.place(j, p, node).map_err(|e| e.to_string())?;
                    }
                    // install -d makes 0755 whatever the umask.
                    let default = if *existing { 0o755 } else { 0o777 & !umask };
                    let node = Node::dir(
                        mode.unwrap_or(default),
                        uid.unwrap_or(0),
                        gid.unwrap_or(0),
                        epoch,
                    );
                    state
                        .place(j, key.clone(), node)
                        .map_err(|e| e.to_string())?;
                    Ok(format!("/{key} made"))
                }
            }
        }
        FileOp::Chown {
            path,
            owner,
            group,
            recursive,
        } => {
            let key = at(state, path)?;
            if node(state, &key).is_none() {
                return Err(format!("/{key} does not exist"));
            }
            let (uid, gid) = ids(registry, owner.as_deref(), group.as_deref())?;
            set(state, j, &key, *recursive, &|n| {
                n.uid = uid.unwrap_or(n.uid);
                n.gid = gid.unwrap_or(n.gid);
            })?;
            Ok(format!(
                "/{key} owned by {}:{}",
                owner.as_deref().unwrap_or("-"),
                group.as_deref().unwrap_or("-")
            ))
        }
        FileOp::Chmod {
            path,
            mode,
            recursive,
        } => {
            let key = at(state, path)?;
            let Some(n) = node(state, &key) else {
                return Err(format!("/{key} does not exist"));
            };
            if mode.apply(n.mode, n.kind == NodeKind::Dir).is_none() {
                return Err(String::from("a mode the reader does not follow"));
            }
            let mode = mode.clone();
            set(state, j, &key, *recursive, &|n| {
                let is_dir = n.kind == NodeKind::Dir;
                if let Some(m) = mode.apply(n.mode, is_dir) {
                    n.mode = m;
                }
            })?;
            Ok(format!("/{key} mode set"))
        }
        FileOp::Symlink {
            target,
            link,
            force,
        } => {
            let mut key = at(state, link)?;
            if matches!(node(state, &key).map(|n| &n.kind), Some(NodeKind::Dir)) {
                let name = target
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(target);
                key = format!("{key}/{name}");
            }
            if node(state, &key).is_some() {
                if !force {
                    return Err(format!("/{key} exists"));
                }
                if !alone(state, j, &key) {
                    return Err(refused(&key));
                }
                for h in state.holders.remove(&key).unwrap_or_default() {
                    state.trees[h].remove(&key);
                }
            }
            if !parent_is_dir(state, &key) {
                return Err(format!("the folder of /{key} does not exist"));
            }
            let node = Node::symlink(target.clone(), 0, 0, epoch);
            state
                .place(j, key.clone(), node)
                .map_err(|e| e.to_string())?;
            Ok(format!("/{key} -> {target}"))
        }
        FileOp::Copy { from, to, preserve } => {
            let from_key = at(state, from)?;
            let source = match node(state, &from_key) {
                Some(
                    n @ Node {
                        kind: NodeKind::File(_),
                        ..
                    },
                ) => n.clone(),
                Some(Node {
                    kind: NodeKind::Hardlink(t),
                    ..
                }) => match node(state, t) {
                    Some(n) => n.clone(),
                    None => return Err(format!("{from} is not a file")),
                },
                _ => return Err(format!("{from} is not an installed file")),
            };
            let mut key = at(state, to)?;
            if matches!(node(state, &key).map(|n| &n.kind), Some(NodeKind::Dir)) {
                let name = from_key.rsplit('/').next().unwrap_or(&from_key);
                key = format!("{key}/{name}");
            }
            if node(state, &key).is_some() {
                return Err(format!(
                    "/{key} exists, and the reader does not overwrite installed files"
                ));
            }
            if !parent_is_dir(state, &key) {
                return Err(format!("the folder of /{key} does not exist"));
            }
            let new = if *preserve {
                Node {
                    mtime: source.mtime.min(epoch),
                    ..source
                }
            } else {
                Node {
                    mode: source.mode & !umask,
                    uid: 0,
                    gid: 0,
                    mtime: epoch,
                    ..source
                }
            };
            state
                .place(j, key.clone(), new)
                .map_err(|e| e.to_string())?;
            Ok(format!("/{key} copied from {from}"))
        }
        FileOp::Touch { path } => {
            let key = at(state, path)?;
            if node(state, &key).is_some() {
                return Ok(format!("/{key} exists"));
            }
            if !parent_is_dir(state, &key) {
                return Err(format!("the folder of /{key} does not exist"));
            }
            let node = Node::file(Content::bytes(Vec::new()), 0o666 & !umask, 0, 0, epoch);
            state
                .place(j, key.clone(), node)
                .map_err(|e| e.to_string())?;
            Ok(format!("/{key} made, empty"))
        }
        FileOp::Write { path, text, append } => {
            let key = at(state, path)?;
            let text = match (append, node(state, &key)) {
                (true, Some(_)) => {
                    let old = self::text(state, &key)
                        .ok_or_else(|| format!("/{key} is not a text file the reader reads"))?;
                    old + text
                }
                _ => text.clone(),
            };
            put(state, j, &key, text, umask, epoch)
        }
        FileOp::Edit { path, edit } => {
            let key = at(state, path)?;
            let old = self::text(state, &key)
                .ok_or_else(|| format!("/{key} is not a text file the reader reads"))?;
            let new = sed::apply(edit, &old)?;
            if new == old {
                return Ok(format!("/{key} unchanged"));
            }
            put(state, j, &key, new, umask, epoch).map(|_| format!("/{key} edited"))
        }
        FileOp::Remove { path, force } => {
            let key = at(state, path)?;
            match node(state, &key).map(|n| &n.kind) {
                None if *force => Ok(format!("/{key} is not there")),
                None => Err(format!("/{key} does not exist")),
                Some(NodeKind::Dir) => Err(format!("/{key} is a folder")),
                Some(_) => {
                    if !alone(state, j, &key) && shipped(state, &key) {
                        return Err(refused(&key));
                    }
                    for h in state.holders.remove(&key).unwrap_or_default() {
                        state.trees[h].remove(&key);
                    }
                    Ok(format!("/{key} removed"))
                }
            }
        }
        FileOp::StatOverride {
            owner,
            group,
            mode,
            path,
            update,
        } => {
            let (uid, gid) = ids(registry, Some(owner), Some(group))?;
            overrides.retain(|o| o.3 != *path);
            overrides.push((owner.clone(), group.clone(), *mode, path.clone()));
            let key = at(state, path)?;
            if *update && node(state, &key).is_some() {
                if !alone(state, j, &key) && co_owned(state, j, &key) {
                    for h in state.holders[&key].clone() {
                        if let Some(n) = state.trees[h].get_mut(&key) {
                            n.mode = *mode;
                            n.uid = uid.unwrap_or(n.uid);
                            n.gid = gid.unwrap_or(n.gid);
                        }
                    }
                    return Ok(format!("in /var/lib/dpkg/statoverride; /{key} set"));
                }
                set(state, j, &key, false, &|n| {
                    n.mode = *mode;
                    n.uid = uid.unwrap_or(n.uid);
                    n.gid = gid.unwrap_or(n.gid);
                })?;
                return Ok(format!("in /var/lib/dpkg/statoverride; /{key} set"));
            }
            Ok(String::from("in /var/lib/dpkg/statoverride"))
        }
    }
}

/// /var/lib/dpkg/statoverride as dpkg-statoverride writes it.
pub(crate) fn statoverride_text(overrides: &[Override]) -> String {
    let mut sorted: Vec<&Override> = overrides.iter().collect();
    sorted.sort_by(|a, b| a.3.cmp(&b.3));
    sorted
        .iter()
        .map(|(o, g, m, p)| format!("{o} {g} {m:o} {p}\n"))
        .collect()
}
