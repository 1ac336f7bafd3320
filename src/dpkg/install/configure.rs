//! What `dpkg --configure` would have done after every package was
//! unpacked, made without running anything: each package's preinst
//! (`install`) and postinst (`configure`) read by `dpkg::scripts`, its
//! sysusers.d files applied, the alternatives derived. Packages are taken
//! in install order; the report lists every effect with its outcome.

use std::collections::BTreeMap;

use super::accounts::{self, Added, Registry};
use super::effects::{Outcome, ScriptEffect, ScriptReport};
use super::merged_usr::merged_alias;
use super::ownership::{remove_entry, State};
use super::{package_label, InstallError};
use crate::dpkg::scripts::{self, Action};
use crate::dpkg::shell::Found;
use crate::fstree::{self, NodeKind};
use alternatives::{Change, ManualChoice, Registration};
use sysusers::Declared;

pub(super) mod alternatives;
mod file_ops;
mod generated_rules;
mod php;
mod services;
pub(super) mod sysusers;
mod tmpfiles;
mod ucf;

pub(super) use file_ops::statoverride_text;

pub(super) struct Configured {
    pub accounts: Vec<Declared>,
    pub report: ScriptReport,
    /// ucf's state files (`/var/lib/ucf`), which every package using ucf
    /// changes: they belong to none of them.
    pub ucf: Vec<(String, fstree::Node)>,
}

/// What became of a declared account: kept (for the account files) and
/// reported, or reported as refused.
fn record_account(
    effect: &mut ScriptEffect,
    accounts: &mut Vec<Declared>,
    d: Declared,
    done: Result<String, String>,
) {
    match done {
        Ok(detail) => {
            effect.detail = detail;
            accounts.push(d);
        }
        Err(why) => {
            effect.outcome = Outcome::Skipped;
            effect.detail = why;
        }
    }
}

/// Adds a checked account to `registry` and makes the home adduser
/// makes: `SYS_DIR_MODE` 0755, owned by the user, only where nothing is
/// (adduser leaves an existing folder, `/etc` say, as it is).
fn add_account(
    state: &mut State,
    j: usize,
    registry: &mut Registry,
    d: &Declared,
    key_of: &dyn Fn(&str) -> Option<String>,
    epoch: u64,
) -> Result<String, String> {
    match registry.add(d) {
        Added::User { uid, gid, home } => {
            let mut detail = format!("uid {uid}, gid {gid}, in /etc/passwd and /etc/group");
            if let Some(home) = home {
                let key = file_ops::resolve(state, key_of, &home)
                    .ok_or_else(|| format!("refused: the home {home} leads out of the root"))?;
                if state.holders.contains_key(&key) {
                    detail.push_str(&format!("; its home {home} exists and is left as it is"));
                } else {
                    let mut missing = Vec::new();
                    let mut cur = key.as_str();
                    while let Some(p) = fstree::parent(cur) {
                        if state.holders.contains_key(p) {
                            break;
                        }
                        missing.push(p.to_string());
                        cur = p;
                    }
                    for p in missing.into_iter().rev() {
                        state
                            .place(j, p, fstree::Node::dir(0o755, 0, 0, epoch))
                            .map_err(|e| e.to_string())?;
                    }
                    state
                        .place(j, key, fstree::Node::dir(0o755, uid, gid, epoch))
                        .map_err(|e| e.to_string())?;
                    detail.push_str(&format!("; home {home} made"));
                }
            }
            Ok(detail)
        }
        Added::Group { gid } => Ok(format!("gid {gid}, in /etc/group")),
        Added::Member => Ok(String::from("in /etc/group")),
        Added::Nothing(why) => Ok(format!("nothing to do: {why}")),
    }
}

const SYSUSERS_DIR: &str = "usr/lib/sysusers.d/";

/// Packages whose scripts' file commands stele does not follow, because
/// `install::generated` makes what they make (base-files' directories
/// and links, dash's /bin/sh and its diversions): following both would
/// make it twice.
const RULED: [&str; 2] = ["base-files", "dash"];

#[allow(clippy::too_many_arguments)]
pub(super) fn configure(
    state: &mut State,
    merged_usr: bool,
    native_arch: Option<&str>,
    manual: &[ManualChoice],
    registry: &mut Registry,
    overrides: &mut Vec<file_ops::Override>,
    epoch: u64,
) -> Result<Configured, InstallError> {
    let key_of = |path: &str| -> Option<String> {
        let key = fstree::normalize_abs(path).ok()?;
        Some(match merged_alias(&key) {
            Some(_) if merged_usr => format!("usr/{key}"),
            _ => key,
        })
    };
    let mut effects: Vec<ScriptEffect> = Vec::new();
    let mut regs: Vec<Registration> = Vec::new();
    let mut accounts: Vec<Declared> = Vec::new();
    let mut ucf_state = ucf::UcfState::default();
    let packages = state.packages;
    for (j, (p, deb)) in packages.iter().enumerate() {
        let mut sysusers_named: Vec<String> = Vec::new();
        let mut tmpfiles_named: Vec<String> = Vec::new();
        for (script, args) in [
            ("preinst", &["install"][..]),
            ("postinst", &["configure"][..]),
        ] {
            let Some(bytes) = deb.control.get(script) else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(bytes) else {
                effects.push(ScriptEffect {
                    package: p.name.clone(),
                    source: format!("{script}:1"),
                    effect: String::from("(the whole script)"),
                    outcome: Outcome::Skipped,
                    detail: String::from("not UTF-8 text"),
                });
                continue;
            };
            let lookup = |path: &str| -> Option<Found> {
                let key = key_of(path)?;
                let holder = state.holders.get(&key)?[0];
                let node = state.trees[holder].get(&key)?;
                Some(match &node.kind {
                    NodeKind::Dir => Found::Dir,
                    NodeKind::Symlink(_) => Found::Symlink,
                    _ => Found::File {
                        executable: node.mode & 0o111 != 0,
                    },
                })
            };
            let list = |path: &str| -> Option<Vec<String>> {
                let key = key_of(path)?;
                matches!(lookup(path), Some(Found::Dir)).then(|| php::children(state, &key))
            };
            let files = |name: &str| -> Option<Vec<String>> {
                let i = packages.iter().position(|(q, _)| q.name == name)?;
                Some(
                    state.trees[i]
                        .iter()
                        .map(|(k, _)| format!("/{k}"))
                        .collect(),
                )
            };
            let registered: std::collections::BTreeSet<&str> = regs
                .iter()
                .filter_map(|r| match &r.change {
                    Change::Install(i) => Some(i.name.as_str()),
                    Change::Remove { .. } => None,
                })
                .collect();
            let alternative = |name: &str| registered.contains(name);
            let owner = |path: &str| -> Option<(u32, u32)> {
                let key = key_of(path)?;
                let holder = state.holders.get(&key)?[0];
                state.trees[holder].get(&key).map(|n| (n.uid, n.gid))
            };
            let known: &Registry = registry;
            let account = |kind: &str, name: &str| -> Option<Vec<String>> {
                if kind == "group" {
                    return known.gid(name).map(|_| Vec::new());
                }
                known.uid(name)?;
                let primary = known.pw.iter().find(|u| u.name == name).map(|u| u.gid);
                let mut groups: Vec<String> = known
                    .gr
                    .iter()
                    .filter(|g| Some(g.gid) == primary)
                    .map(|g| g.name.clone())
                    .take(1)
                    .collect();
                for g in &known.gr {
                    if g.members.iter().any(|m| m == name) && !groups.contains(&g.name) {
                        groups.push(g.name.clone());
                    }
                }
                Some(groups)
            };
            let read = |path: &str| -> Option<String> {
                file_ops::text(state, &file_ops::resolve(state, &key_of, path)?)
            };
            let ctx = scripts::Context {
                package: &p.name,
                arch: &p.architecture,
                native_arch,
                lookup: &lookup,
                list: &list,
                files: &files,
                alternative: &alternative,
                account: &account,
                templates: deb
                    .control
                    .get("templates")
                    .and_then(|b| std::str::from_utf8(b).ok()),
                owner: &owner,
                read: &read,
            };
            let steps = scripts::read(&ctx, text, args);
            let ruled = generated_rules::spans(&p.name, script, text);
            for step in steps {
                let source = format!("{script}:{}", step.line);
                let mut effect = ScriptEffect {
                    package: p.name.clone(),
                    source: source.clone(),
                    effect: scripts::describe(&step.action),
                    outcome: Outcome::Reproduced,
                    detail: String::new(),
                };
                match step.action {
                    Action::AltInstall(i) => {
                        regs.push(Registration {
                            package: j,
                            package_name: p.name.clone(),
                            source,
                            change: Change::Install(i),
                        });
                        continue;
                    }
                    Action::AltRemove { name, path } => {
                        regs.push(Registration {
                            package: j,
                            package_name: p.name.clone(),
                            source,
                            change: Change::Remove { name, path },
                        });
                        continue;
                    }
                    Action::AddUser(_) | Action::AddGroup { .. } | Action::AddMember { .. } => {
                        let (d, relaxed) = match step.action {
                            Action::AddUser(u) => {
                                let relaxed = u.bad_names;
                                (Declared::User(u.into()), relaxed)
                            }
                            Action::AddGroup { name, gid } => (
                                Declared::Group {
                                    name,
                                    gid,
                                    sysusers: false,
                                },
                                false,
                            ),
                            Action::AddMember { user, group } => {
                                (Declared::Member { user, group }, false)
                            }
                            _ => unreachable!("matched above"),
                        };
                        let done = accounts::check(&d, relaxed)
                            .and_then(|()| add_account(state, j, registry, &d, &key_of, epoch));
                        record_account(&mut effect, &mut accounts, d, done);
                    }
                    Action::ShadowOn => {
                        registry.add(&Declared::Shadow);
                        accounts.push(Declared::Shadow);
                        effect.detail = String::from(
                            "/etc/shadow and /etc/gshadow, written with /etc/passwd and /etc/group",
                        );
                    }
                    Action::Service(service) => {
                        let done = match &service {
                            scripts::Service::Enable(unit) => {
                                services::enable(state, j, unit, services::Enable::Helper, epoch)
                            }
                            scripts::Service::UpdateState(unit) => {
                                services::enable(state, j, unit, services::Enable::StateOnly, epoch)
                            }
                            scripts::Service::SystemctlEnable(unit) => {
                                services::enable(state, j, unit, services::Enable::Systemctl, epoch)
                            }
                            scripts::Service::RcDefaults(name) => {
                                services::rc_defaults(state, j, name, epoch)
                            }
                        };
                        match done {
                            Ok(detail) => effect.detail = detail,
                            Err(why) => {
                                effect.outcome = Outcome::Skipped;
                                effect.detail = why;
                            }
                        }
                    }
                    Action::File(..) if RULED.contains(&p.name.as_str()) => {
                        effect.detail =
                            format!("made by stele's rules for what {}'s script makes", p.name);
                    }
                    Action::File(op, umask) => {
                        match file_ops::apply(
                            state, j, &op, umask, registry, &key_of, overrides, epoch,
                        ) {
                            Ok(detail) => effect.detail = detail,
                            Err(why) => {
                                effect.outcome = Outcome::Skipped;
                                effect.detail = why;
                            }
                        }
                    }
                    Action::Ucf(u) => {
                        let done = ucf_state.install(state, j, &u, registry, &key_of, epoch);
                        match done {
                            Ok(detail) => effect.detail = detail,
                            Err(why) => {
                                effect.outcome = Outcome::Skipped;
                                effect.detail = why;
                            }
                        }
                    }
                    Action::PhpEnmod(e) => match php::enmod(state, j, &e, epoch) {
                        Ok(detail) => effect.detail = detail,
                        Err(why) => {
                            effect.outcome = Outcome::Skipped;
                            effect.detail = why;
                        }
                    },
                    Action::Ucfr { package, dest } => {
                        match ucf_state.register(state, &package, &dest, &key_of) {
                            Ok(detail) => effect.detail = detail,
                            Err(why) => {
                                effect.outcome = Outcome::Skipped;
                                effect.detail = why;
                            }
                        }
                    }
                    Action::Sysusers { file } => {
                        let file = if file.contains('/') {
                            file
                        } else {
                            format!("/{SYSUSERS_DIR}{file}")
                        };
                        if key_of(&file).is_some_and(|k| state.trees[j].get(&k).is_some()) {
                            effect.detail = format!("applied from {file}");
                            sysusers_named.push(file);
                        } else {
                            effect.outcome = Outcome::Skipped;
                            effect.detail = format!("{file} is not in the package");
                        }
                    }
                    Action::Tmpfiles { files } => {
                        let mut found = Vec::new();
                        let mut missing = Vec::new();
                        for f in files {
                            match tmpfiles::locate(state, &key_of, &f) {
                                Some(path) => found.push(path),
                                None => missing.push(f),
                            }
                        }
                        if !missing.is_empty() {
                            effect.outcome = Outcome::Skipped;
                            effect.detail = format!("not in the tree: {}", missing.join(", "));
                        } else {
                            effect.detail = format!(
                                "applied from {}, after the package's sysusers.d accounts",
                                found.join(", ")
                            );
                            tmpfiles_named.extend(found);
                        }
                    }
                    Action::Generated { what, .. } => effect.detail = what.to_string(),
                    Action::NotNeeded { why, .. } => {
                        effect.outcome = Outcome::NotNeeded;
                        effect.detail = why.to_string();
                    }
                    Action::Skipped { why, .. } => {
                        effect.outcome = Outcome::Skipped;
                        effect.detail = why;
                    }
                }
                // What stele writes itself from the installed files.
                if effect.outcome == Outcome::Skipped {
                    if let Some((_, _, what)) =
                        ruled.iter().find(|(a, b, _)| (*a..*b).contains(&step.line))
                    {
                        effect.outcome = Outcome::Reproduced;
                        effect.detail = what.to_string();
                    }
                }
                effects.push(effect);
            }
        }
        // The package's own sysusers.d files, applied whether or not its
        // script calls systemd-sysusers: on Debian, systemd applies them
        // all at boot, and an image has no boot.
        let files: Vec<(String, Vec<u8>)> = state.trees[j]
            .iter()
            .filter(|(k, _)| {
                k.starts_with(SYSUSERS_DIR)
                    && k.ends_with(".conf")
                    && !k[SYSUSERS_DIR.len()..].contains('/')
            })
            .filter_map(|(k, n)| match &n.kind {
                NodeKind::File(c) => Some((k, c)),
                _ => None,
            })
            .map(|(k, c)| {
                c.read_all()
                    .map(|b| (format!("/{k}"), b))
                    .map_err(|error| InstallError::Read {
                        package: package_label(p),
                        path: k.clone(),
                        error: Box::new(error),
                    })
            })
            .collect::<Result<_, _>>()?;
        for (path, bytes) in files {
            let text = String::from_utf8_lossy(&bytes);
            let (declared, found) = sysusers::read(&p.name, &path, &text);
            // Each declaration pairs with the effect of its line, in order.
            let mut declared = declared.into_iter();
            for mut effect in found {
                if effect.outcome == Outcome::Reproduced {
                    let Some(d) = declared.next() else { break };
                    let done = accounts::check(&d, false)
                        .and_then(|()| add_account(state, j, registry, &d, &key_of, epoch));
                    record_account(&mut effect, &mut accounts, d, done);
                }
                effects.push(effect);
            }
        }
        // tmpfiles.d lines name the package's accounts, which its
        // sysusers.d files made just above.
        for path in tmpfiles_named {
            effects.extend(tmpfiles::apply(
                state, j, &path, registry, &key_of, overrides, epoch,
            ));
        }
    }
    let present = |key: &str| state.holders.contains_key(key);
    let is_plain = |key: &str| {
        state.holders.get(key).is_some_and(|hs| {
            !matches!(
                state.trees[hs[0]].get(key).map(|n| &n.kind),
                Some(NodeKind::Symlink(_))
            )
        })
    };
    let alts = alternatives::derive(regs, manual, &key_of, &present, &is_plain, epoch)
        .map_err(InstallError::Alternative)?;
    for (j, key, node) in alts.nodes {
        // A symlink a package ships where a link goes is replaced, as
        // update-alternatives replaces it; files were left alone above.
        if let Some(hs) = state.holders.get(&key).cloned() {
            let shipped = state.trees[hs[0]].get(&key).map(|n| &n.kind);
            if matches!(shipped, Some(NodeKind::Symlink(_))) && shipped != Some(&node.kind) {
                for h in hs {
                    remove_entry(&mut state.trees[h], &key);
                }
                state.holders.remove(&key);
            }
        }
        state.place(j, key, node)?;
    }
    effects.extend(alts.effects);
    // Package by package in install order, each package's effects in the
    // order of their sources.
    let order: BTreeMap<&str, usize> = packages
        .iter()
        .enumerate()
        .map(|(j, (p, _))| (p.name.as_str(), j))
        .collect();
    effects.sort_by_key(|e| {
        let (file, line) = e.source.rsplit_once(':').unwrap_or((&e.source, "0"));
        let rank = match file {
            "preinst" => 0,
            "postinst" => 1,
            _ => 2,
        };
        (
            order.get(e.package.as_str()).copied().unwrap_or(usize::MAX),
            rank,
            file.to_string(),
            line.parse::<usize>().unwrap_or(0),
        )
    });
    Ok(Configured {
        accounts,
        report: ScriptReport {
            effects,
            alternatives: alts.chosen,
        },
        ucf: ucf_state.files(epoch),
    })
}

#[cfg(test)]
mod tests;
