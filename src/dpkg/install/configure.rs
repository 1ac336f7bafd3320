//! What `dpkg --configure` would have done after every package was
//! unpacked, made without running anything: each package's preinst
//! (`install`) and postinst (`configure`) read by the script reader, its
//! sysusers.d files applied, the alternatives derived. Packages are taken
//! in install order; the report lists every effect with its outcome.

use std::collections::BTreeMap;

use super::alternatives::{self, Change, ManualChoice, Registration};
use super::effects::{Outcome, ScriptEffect, ScriptReport};
use super::sysusers::{self, Declared};
use super::{merged_alias, InstallError, State};
use crate::dpkg::scripts::{self, Action};
use crate::dpkg::shell::Found;
use crate::fstree::{self, NodeKind};

pub(super) struct Configured {
    pub accounts: Vec<Declared>,
    pub report: ScriptReport,
}

const SYSUSERS_DIR: &str = "usr/lib/sysusers.d/";

pub(super) fn configure(
    state: &mut State,
    merged_usr: bool,
    native_arch: Option<&str>,
    manual: &[ManualChoice],
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
    let packages = state.packages;
    for (j, (p, deb)) in packages.iter().enumerate() {
        let mut sysusers_named: Vec<String> = Vec::new();
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
            let ctx = scripts::Context {
                package: &p.name,
                arch: &p.architecture,
                native_arch,
                lookup: &lookup,
            };
            for step in scripts::read(&ctx, text, args) {
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
                    Action::AddUser(u) => {
                        effect.detail =
                            format!("system user `{}`, in /etc/passwd and /etc/group", u.name);
                        accounts.push(Declared::User(u.into()));
                    }
                    Action::AddGroup { name, gid } => {
                        effect.detail = format!("system group `{name}`, in /etc/group");
                        accounts.push(Declared::Group { name, gid });
                    }
                    Action::AddMember { user, group } => {
                        effect.detail = format!("`{user}` in group `{group}`, in /etc/group");
                        accounts.push(Declared::Member { user, group });
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
                        package: super::package_label(p),
                        path: k.clone(),
                        error: Box::new(error),
                    })
            })
            .collect::<Result<_, _>>()?;
        for (path, bytes) in files {
            let text = String::from_utf8_lossy(&bytes);
            let (declared, found) = sysusers::read(&p.name, &path, &text);
            accounts.extend(declared);
            effects.extend(found);
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
                    super::remove_entry(&mut state.trees[h], &key);
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
    })
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::dpkg::deb::read_deb;
    use crate::dpkg::deb::tests::{control_text, deb, TarBuilder};
    use crate::oci::Digest;

    fn package(name: &str, data: &mut TarBuilder, postinst: &str) -> (Package, DebContents) {
        let p = Package {
            name: name.into(),
            version: "1.0".into(),
            architecture: "amd64".into(),
            multi_arch: String::new(),
            essential: false,
            priority: "optional".into(),
            source: name.into(),
            depends: String::new(),
            pre_depends: String::new(),
            provides: String::new(),
            conflicts: String::new(),
            breaks: String::new(),
            replaces: String::new(),
            filename: format!("pool/main/{name}_1.0_amd64.deb"),
            size: 0,
            sha256: Digest::of(b""),
            stanza: String::new(),
            source_index: 0,
        };
        let control = control_text(name, "1.0");
        let mut files: Vec<(&str, &[u8])> = vec![("control", control.as_bytes())];
        if !postinst.is_empty() {
            files.push(("postinst", postinst.as_bytes()));
        }
        let bytes = deb(&files, &data.finish(), "xz");
        let contents = read_deb(&p.filename, &bytes[..], 5).unwrap();
        (p, contents)
    }

    #[test]
    fn links_replace_shipped_symlinks_under_merged_usr_and_accounts_keep_order() {
        let packages = vec![
            package(
                "oldpager",
                TarBuilder::new()
                    .dir("./")
                    .dir("./bin/")
                    .file("./bin/more", b"elf")
                    .symlink("./bin/pager", "more"),
                "#!/bin/sh\nadduser --system --group first\n",
            ),
            package(
                "newpager",
                TarBuilder::new()
                    .dir("./")
                    .dir("./usr/lib/sysusers.d/")
                    .file("./usr/lib/sysusers.d/x.conf", b"u second -\n"),
                "#!/bin/sh\nset -e\nupdate-alternatives --install /bin/pager pager /bin/more 50\nsystemctl daemon-reload\n",
            ),
        ];
        let installed = install(&packages, 5, &InstallOptions::default()).unwrap();
        let old = &installed.packages[0].tree;
        let new = &installed.packages[1].tree;
        assert!(
            old.get("usr/bin/pager").is_none(),
            "the shipped link is replaced"
        );
        assert_eq!(
            new.get("usr/bin/pager").map(|n| &n.kind),
            Some(&NodeKind::Symlink("/etc/alternatives/pager".into()))
        );
        assert_eq!(
            new.get("etc/alternatives/pager").map(|n| &n.kind),
            Some(&NodeKind::Symlink("/bin/more".into()))
        );
        let names: Vec<&str> = installed
            .accounts
            .iter()
            .map(|a| match a {
                Declared::User(u) => u.name.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(names, ["first", "second"]);
        let outcomes: Vec<(&str, &str, Outcome)> = installed
            .report
            .effects
            .iter()
            .map(|e| (e.package.as_str(), e.source.as_str(), e.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("oldpager", "postinst:2", Outcome::Reproduced),
                ("newpager", "postinst:3", Outcome::Reproduced),
                ("newpager", "postinst:4", Outcome::NotNeeded),
                (
                    "newpager",
                    "/usr/lib/sysusers.d/x.conf:1",
                    Outcome::Reproduced
                ),
            ]
        );
        // Without script reading, nothing of it happens.
        let plain = InstallOptions {
            scripts: false,
            ..InstallOptions::default()
        };
        let installed = install(&packages, 5, &plain).unwrap();
        assert!(installed.report.effects.is_empty() && installed.accounts.is_empty());
        assert_eq!(
            installed.packages[0]
                .tree
                .get("usr/bin/pager")
                .map(|n| &n.kind),
            Some(&NodeKind::Symlink("more".into()))
        );
    }
}
