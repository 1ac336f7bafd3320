//! ucf's first install, made without running it (ucf 3.0043's `ucf` and
//! `ucfr`): the new file copied to the configuration file it manages
//! (`cp -p`: the new file's mode and owner), its md5 appended to
//! `/var/lib/ucf/hashfile`, a copy kept in `/var/lib/ucf/cache/` (named
//! by the path with `/` as `:`) with `--three-way` or when it is under
//! 25,600 bytes, and `PACKAGE \t DEST` appended to `/var/lib/ucf/registry`.
//! Before each change ucf and ucfr keep the earlier file as `.0`, moving
//! `.0`…`.6` one number up, so the numbered files are the earlier states,
//! newest first, at most eight.
//!
//! A configuration file that is already there is left to ucf's questions
//! (it compares it with its record and the new file): not reproduced.

use super::super::accounts::Registry;
use super::super::ownership::State;
use super::file_ops;
use crate::dpkg::scripts::{FileOp, Ucf};
use crate::fstree::{Content, Node, NodeKind};
use md5::{Digest as _, Md5};

const STATE_DIR: &str = "var/lib/ucf";
/// ucf caches a new file under this size without `--three-way`.
const CACHE_BELOW: u64 = 25_600;
/// `.0` … `.7`.
const BACKUPS: usize = 8;

/// ucf's state as the scripts leave it, call by call.
#[derive(Default)]
pub(super) struct UcfState {
    /// `hashfile` after each change (the first entry: as it was before).
    hashes: Vec<Option<String>>,
    /// `registry` after each change, as `hashes`.
    registry: Vec<Option<String>>,
    /// `cache/NAME` and the node cached there.
    cache: Vec<(String, Node)>,
}

fn lines_without(text: Option<&String>, dest: &str) -> String {
    text.map(|t| {
        t.lines()
            .filter(|l| {
                !l.rsplit_once(char::is_whitespace)
                    .is_some_and(|(_, path)| path == dest)
            })
            .map(|l| format!("{l}\n"))
            .collect()
    })
    .unwrap_or_default()
}

/// What a file of ucf's state holds before the scripts change it: an
/// empty file when ucf's own postinst touched it.
fn initial(state: &State, name: &str) -> Option<String> {
    let key = format!("{STATE_DIR}/{name}");
    let hs = state.holders.get(&key)?;
    match &state.trees[hs[0]].get(&key)?.kind {
        NodeKind::File(c) => c
            .read_all()
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into()),
        _ => None,
    }
}

impl UcfState {
    /// `ucf NEW DEST` as package `j`'s script runs it.
    pub(super) fn install(
        &mut self,
        state: &mut State,
        j: usize,
        u: &Ucf,
        accounts: &Registry,
        key_of: &dyn Fn(&str) -> Option<String>,
        epoch: u64,
    ) -> file_ops::Done {
        let dest_key = file_ops::resolve(state, key_of, &u.dest)
            .ok_or_else(|| format!("refused: {} leads out of the root", u.dest))?;
        if state.holders.contains_key(&dest_key) {
            return Err(format!(
                "{} exists: ucf would compare it with {} and its record, which the reader does not",
                u.dest, u.new
            ));
        }
        match &u.content {
            // A file the script wrote into its temporary NEW: made with
            // NEW's mode, as ucf's `cp -p` carries it.
            Some(bytes) => {
                let node = Node::file(
                    Content::bytes(bytes.clone()),
                    u.mode.unwrap_or(0o600),
                    0,
                    0,
                    epoch,
                );
                file_ops::place_made(state, j, &dest_key, node)?;
            }
            None => {
                let copy = FileOp::Copy {
                    from: u.new.clone(),
                    to: u.dest.clone(),
                    preserve: true,
                };
                file_ops::apply(
                    state,
                    j,
                    &copy,
                    0o022,
                    accounts,
                    key_of,
                    &mut Vec::new(),
                    epoch,
                )?;
            }
        }
        let node = state.trees[j]
            .get_mut(&dest_key)
            .ok_or_else(|| format!("{} was not made", u.dest))?;
        if let Some(mode) = u.mode {
            node.mode = mode;
        }
        let node = node.clone();
        let NodeKind::File(content) = &node.kind else {
            return Err(format!("{} is not a file", u.new));
        };
        let bytes = content.read_all().map_err(|e| e.to_string())?;
        if self.hashes.is_empty() {
            self.hashes.push(initial(state, "hashfile"));
        }
        let last = self.hashes.last().cloned().flatten();
        let mut text = lines_without(last.as_ref(), &u.dest);
        text.push_str(&format!("{:x}  {}\n", Md5::digest(&bytes), u.dest));
        self.hashes.push(Some(text));
        let mut detail = format!(
            "/{dest_key} from {}, recorded in /{STATE_DIR}/hashfile",
            u.new
        );
        if u.three_way || (bytes.len() as u64) < CACHE_BELOW {
            let name = u.dest.replace('/', ":");
            self.cache.retain(|(n, _)| *n != name);
            self.cache.push((name.clone(), node.clone()));
            detail.push_str(&format!(" and cached as /{STATE_DIR}/cache/{name}"));
        }
        if !u.unapplied.is_empty() {
            let lines: Vec<String> = u.unapplied.iter().map(|l| l.to_string()).collect();
            detail.push_str(&format!(
                "; {} is copied from {} without the edits on line(s) {}, which run only on answers other than debconf's defaults",
                "the temporary file",
                u.new,
                lines.join(", ")
            ));
        }
        Ok(detail)
    }

    /// `ucfr PACKAGE DEST`: a file already registered to the same package
    /// is left as it is (no backup either), as ucfr does.
    pub(super) fn register(
        &mut self,
        state: &State,
        package: &str,
        dest: &str,
        key_of: &dyn Fn(&str) -> Option<String>,
    ) -> file_ops::Done {
        let key = file_ops::resolve(state, key_of, dest)
            .ok_or_else(|| format!("refused: {dest} leads out of the root"))?;
        let real = format!("/{key}");
        if self.registry.is_empty() {
            // ucfr touches the registry when it is missing.
            self.registry
                .push(Some(initial(state, "registry").unwrap_or_default()));
        }
        let last = self.registry.last().cloned().flatten();
        let owner = last.as_deref().and_then(|t| {
            t.lines().find_map(|l| {
                let (pkg, path) = l.split_once(char::is_whitespace)?;
                (path.trim() == real).then(|| pkg.to_string())
            })
        });
        if owner.as_deref() == Some(package) {
            return Ok(format!("{real} is registered to {package} already"));
        }
        let mut text = lines_without(last.as_ref(), &real);
        text.push_str(&format!("{package} \t {real}\n"));
        self.registry.push(Some(text));
        Ok(format!(
            "{real} registered to {package} in /{STATE_DIR}/registry"
        ))
    }

    /// ucf's files as the last script left them, with their numbered
    /// backups and the cache folder.
    pub(super) fn files(&self, epoch: u64) -> Vec<(String, Node)> {
        let mut out = Vec::new();
        let file =
            |text: &str| Node::file(Content::bytes(text.as_bytes().to_vec()), 0o644, 0, 0, epoch);
        for (name, history) in [("hashfile", &self.hashes), ("registry", &self.registry)] {
            let Some((Some(now), before)) = history.split_last() else {
                continue;
            };
            out.push((format!("{STATE_DIR}/{name}"), file(now)));
            for (n, text) in before.iter().rev().flatten().take(BACKUPS).enumerate() {
                out.push((format!("{STATE_DIR}/{name}.{n}"), file(text)));
            }
        }
        if !self.hashes.is_empty() {
            out.push((format!("{STATE_DIR}/cache"), Node::dir(0o755, 0, 0, epoch)));
        }
        for (name, node) in &self.cache {
            out.push((format!("{STATE_DIR}/cache/{name}"), node.clone()));
        }
        out
    }
}
