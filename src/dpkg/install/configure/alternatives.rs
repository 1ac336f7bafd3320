//! The links `update-alternatives --install` makes, derived from the
//! registrations the scripts name, as dpkg's update-alternatives decides
//! them: in auto mode the highest priority wins and, on a tie, the choice
//! registered first stays (update-alternatives keeps the current link
//! unless a strictly higher priority comes); a recipe's choice is manual
//! mode. A slave whose file does not exist gets no link, as dpkg skips it;
//! a link path a package ships a file at is left alone, as dpkg refuses
//! to replace a file with a link.
//!
//! The record in /var/lib/dpkg/alternatives/NAME is dpkg's format: mode,
//! master link, slaves sorted by name, a blank line, then each choice
//! sorted by path with its priority and one line per slave, and a final
//! blank line.

use std::collections::BTreeMap;

use crate::dpkg::install::effects::{Outcome, ScriptEffect};
use crate::dpkg::scripts::{self, Action, AltInstall};
use crate::fstree::Node;

/// A recipe's `[apt] alternatives` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualChoice {
    pub name: String,
    pub path: String,
    /// Recipe location, for messages.
    pub loc: String,
}

/// One registration or removal, as a script named it.
pub(super) struct Registration {
    pub package: usize,
    pub package_name: String,
    pub source: String,
    pub change: Change,
}

pub(super) enum Change {
    Install(AltInstall),
    Remove { name: String, path: String },
}

struct Choice {
    path: String,
    priority: i64,
    /// Slave name → path.
    slaves: BTreeMap<String, String>,
    package: usize,
    effect: usize,
}

struct Group {
    link: String,
    /// Slave name → link.
    slaves: BTreeMap<String, String>,
    choices: Vec<Choice>,
    /// Index into `choices` of the current link.
    current: usize,
}

/// What the alternatives become.
pub(super) struct Outcomes {
    /// (owning package, key, node) to add to the trees.
    pub nodes: Vec<(usize, String, Node)>,
    pub effects: Vec<ScriptEffect>,
    /// Name → chosen path, for the report and the lock.
    pub chosen: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{loc}: [apt] alternatives chooses `{path}` for `{name}`, but {offered}; name one of the offered paths or remove the entry")]
pub struct NotOffered {
    pub loc: String,
    pub name: String,
    pub path: String,
    pub offered: String,
}

/// Works out the alternatives. `key_of` maps an absolute path to the tree
/// key it is installed at (merged /usr applied); `present` says whether a
/// key exists in the installed trees, and `is_plain` whether what is there
/// is something other than a symlink (which dpkg would not replace).
pub(super) fn derive(
    regs: Vec<Registration>,
    manual: &[ManualChoice],
    key_of: &dyn Fn(&str) -> Option<String>,
    present: &dyn Fn(&str) -> bool,
    is_plain: &dyn Fn(&str) -> bool,
    epoch: u64,
) -> Result<Outcomes, NotOffered> {
    let mut effects: Vec<ScriptEffect> = Vec::new();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for r in regs {
        let mut effect = ScriptEffect {
            package: r.package_name.clone(),
            source: r.source.clone(),
            effect: String::new(),
            outcome: Outcome::Reproduced,
            detail: String::new(),
        };
        match r.change {
            Change::Install(i) => {
                effect.effect = scripts::describe(&Action::AltInstall(i.clone()));
                let exists = key_of(&i.path).is_some_and(|k| present(&k));
                if !exists {
                    effect.outcome = Outcome::Skipped;
                    effect.detail = format!(
                        "{} is not installed, so update-alternatives would refuse it",
                        i.path
                    );
                    effects.push(effect);
                    continue;
                }
                if let Some(g) = groups.get(&i.name) {
                    if g.link != i.link {
                        effect.outcome = Outcome::Skipped;
                        effect.detail = format!(
                            "`{}` is already registered with the link {}",
                            i.name, g.link
                        );
                        effects.push(effect);
                        continue;
                    }
                }
                effect.detail = format!("registered for `{}`", i.name);
                let choice = Choice {
                    path: i.path.clone(),
                    priority: i.priority,
                    slaves: i
                        .slaves
                        .iter()
                        .map(|(_, n, p)| (n.clone(), p.clone()))
                        .collect(),
                    package: r.package,
                    effect: effects.len(),
                };
                effects.push(effect);
                let g = groups.entry(i.name.clone()).or_insert_with(|| Group {
                    link: i.link.clone(),
                    slaves: BTreeMap::new(),
                    choices: Vec::new(),
                    current: 0,
                });
                for (l, n, _) in &i.slaves {
                    g.slaves.insert(n.clone(), l.clone());
                }
                match g.choices.iter().position(|c| c.path == choice.path) {
                    Some(k) => g.choices[k] = choice,
                    None => {
                        g.choices.push(choice);
                        let last = g.choices.len() - 1;
                        if g.choices[last].priority > g.choices[g.current].priority {
                            g.current = last;
                        }
                    }
                }
            }
            Change::Remove { name, path } => {
                effect.effect = format!("update-alternatives --remove {name} {path}");
                let removed = groups.get_mut(&name).and_then(|g| {
                    let k = g.choices.iter().position(|c| c.path == path)?;
                    let c = g.choices.remove(k);
                    Some((k, c))
                });
                match removed {
                    Some((k, c)) => {
                        effect.detail = format!("cancels the registration of {path}");
                        effects[c.effect].outcome = Outcome::Skipped;
                        effects[c.effect].detail =
                            format!("removed again by {} {}", effect.package, effect.source);
                        let g = groups.get_mut(&name).expect("just found");
                        if g.choices.is_empty() {
                            groups.remove(&name);
                        } else if k == g.current {
                            // dpkg then takes the first choice by path with
                            // the highest priority.
                            g.current = best_by_path(&g.choices);
                        } else if k < g.current {
                            g.current -= 1;
                        }
                    }
                    None => {
                        effect.outcome = Outcome::NotNeeded;
                        effect.detail = String::from("nothing registered to remove");
                    }
                }
                effects.push(effect);
            }
        }
    }

    let mut modes: BTreeMap<String, &'static str> = BTreeMap::new();
    for m in manual {
        let Some(g) = groups.get_mut(&m.name) else {
            return Err(NotOffered {
                loc: m.loc.clone(),
                name: m.name.clone(),
                path: m.path.clone(),
                offered: String::from("no installed package registers that name"),
            });
        };
        match g.choices.iter().position(|c| c.path == m.path) {
            Some(k) => g.current = k,
            None => {
                let mut offered: Vec<&str> = g.choices.iter().map(|c| c.path.as_str()).collect();
                offered.sort_unstable();
                return Err(NotOffered {
                    loc: m.loc.clone(),
                    name: m.name.clone(),
                    path: m.path.clone(),
                    offered: format!("the installed packages offer {}", offered.join(", ")),
                });
            }
        }
        modes.insert(m.name.clone(), "manual");
    }

    let mut nodes = Vec::new();
    let mut chosen = BTreeMap::new();
    let mut links_taken: BTreeMap<String, String> = BTreeMap::new();
    for (name, g) in &groups {
        let best = &g.choices[g.current];
        let owner = best.package;
        let mut links = vec![(name.clone(), g.link.clone(), Some(best.path.clone()))];
        for (sname, slink) in &g.slaves {
            let target = best.slaves.get(sname).filter(|p| !p.is_empty()).cloned();
            let target = target.filter(|p| key_of(p).is_some_and(|k| present(&k)));
            links.push((sname.clone(), slink.clone(), target));
        }
        for (k, (lname, link, target)) in links.into_iter().enumerate() {
            let Some(target) = target else { continue };
            let Some(link_key) = key_of(&link) else {
                continue;
            };
            let plain = is_plain(&link_key);
            let taken = links_taken.get(&link_key).cloned();
            if plain || taken.is_some() {
                let why = match taken {
                    Some(other) => format!("{link} is already the link of `{other}`"),
                    None => format!("{link} is a file a package ships, which update-alternatives does not replace"),
                };
                if k == 0 {
                    let e = &mut effects[best.effect];
                    e.outcome = Outcome::Skipped;
                    e.detail = why;
                }
                continue;
            }
            links_taken.insert(link_key.clone(), lname.clone());
            nodes.push((
                owner,
                format!("etc/alternatives/{lname}"),
                Node::symlink(target.clone(), 0, 0, epoch),
            ));
            nodes.push((
                owner,
                link_key,
                Node::symlink(format!("/etc/alternatives/{lname}"), 0, 0, epoch),
            ));
        }
        let mode = modes.get(name).copied().unwrap_or("auto");
        nodes.push((
            owner,
            format!("var/lib/dpkg/alternatives/{name}"),
            Node::file(
                crate::fstree::Content::bytes(record(mode, g).into_bytes()),
                0o644,
                0,
                0,
                epoch,
            ),
        ));
        effects[best.effect].detail = format!(
            "`{name}` -> {} ({mode} mode, priority {})",
            best.path, best.priority
        );
        for c in &g.choices {
            if c.path != best.path && effects[c.effect].outcome == Outcome::Reproduced {
                effects[c.effect].detail = format!(
                    "registered for `{name}`; {} (priority {}) is chosen",
                    best.path, best.priority
                );
            }
        }
        chosen.insert(name.clone(), best.path.clone());
    }
    Ok(Outcomes {
        nodes,
        effects,
        chosen,
    })
}

fn best_by_path(choices: &[Choice]) -> usize {
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by(|&a, &b| choices[a].path.cmp(&choices[b].path));
    let mut best = order[0];
    for &k in &order {
        if choices[k].priority > choices[best].priority {
            best = k;
        }
    }
    best
}

/// /var/lib/dpkg/alternatives/NAME as update-alternatives writes it.
fn record(mode: &str, g: &Group) -> String {
    let mut out = format!("{mode}\n{}\n", g.link);
    for (name, link) in &g.slaves {
        out.push_str(&format!("{name}\n{link}\n"));
    }
    out.push('\n');
    let mut choices: Vec<&Choice> = g.choices.iter().collect();
    choices.sort_by(|a, b| a.path.cmp(&b.path));
    for c in choices {
        out.push_str(&format!("{}\n{}\n", c.path, c.priority));
        for name in g.slaves.keys() {
            out.push_str(c.slaves.get(name).map_or("", String::as_str));
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(
        package: usize,
        name: &str,
        path: &str,
        priority: i64,
        slaves: &[(&str, &str, &str)],
    ) -> Registration {
        Registration {
            package,
            package_name: format!("p{package}"),
            source: String::from("postinst:1"),
            change: Change::Install(AltInstall {
                link: format!("/usr/bin/{name}"),
                name: name.into(),
                path: path.into(),
                priority,
                slaves: slaves
                    .iter()
                    .map(|(l, n, p)| (l.to_string(), n.to_string(), p.to_string()))
                    .collect(),
            }),
        }
    }

    fn run(
        regs: Vec<Registration>,
        manual: &[ManualChoice],
        files: &[&str],
    ) -> Result<Outcomes, NotOffered> {
        let files: Vec<String> = files
            .iter()
            .map(|f| f.trim_start_matches('/').to_string())
            .collect();
        derive(
            regs,
            manual,
            &|p| Some(p.trim_start_matches('/').to_string()),
            &|k| files.iter().any(|f| f == k),
            &|_| false,
            7,
        )
    }

    fn text(o: &Outcomes, key: &str) -> String {
        match &o.nodes.iter().find(|(_, k, _)| k == key).expect(key).2.kind {
            crate::fstree::NodeKind::File(c) => String::from_utf8(c.read_all().unwrap()).unwrap(),
            crate::fstree::NodeKind::Symlink(t) => t.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// The same registrations given to the real update-alternatives
    /// (dpkg 1.21, `--root` in a temp folder) wrote exactly this record:
    /// a has the higher priority and wins; b's man page slave names a
    /// file that does not exist, so it stays in the record but gets no link.
    #[test]
    fn record_matches_update_alternatives() {
        let o = run(
            vec![
                reg(
                    0,
                    "t",
                    "/usr/bin/b",
                    5,
                    &[
                        ("/usr/bin/z", "z", "/usr/bin/b"),
                        (
                            "/usr/share/man/man1/t.1.gz",
                            "t.1.gz",
                            "/usr/share/man/man1/nonexist.1.gz",
                        ),
                    ],
                ),
                reg(
                    1,
                    "t",
                    "/usr/bin/a",
                    7,
                    &[("/usr/bin/c", "c", "/usr/bin/a")],
                ),
            ],
            &[],
            &["/usr/bin/a", "/usr/bin/b"],
        )
        .unwrap();
        assert_eq!(
            text(&o, "var/lib/dpkg/alternatives/t"),
            "auto\n/usr/bin/t\nc\n/usr/bin/c\nt.1.gz\n/usr/share/man/man1/t.1.gz\nz\n/usr/bin/z\n\n/usr/bin/a\n7\n/usr/bin/a\n\n\n/usr/bin/b\n5\n\n/usr/share/man/man1/nonexist.1.gz\n/usr/bin/b\n\n"
        );
        assert_eq!(text(&o, "usr/bin/t"), "/etc/alternatives/t");
        assert_eq!(text(&o, "etc/alternatives/t"), "/usr/bin/a");
        assert_eq!(text(&o, "usr/bin/c"), "/etc/alternatives/c");
        assert!(!o.nodes.iter().any(|(_, k, _)| k == "usr/bin/z"));
        assert!(o.nodes.iter().all(|(owner, _, _)| *owner == 1));
        assert_eq!(o.chosen["t"], "/usr/bin/a");
    }

    #[test]
    fn ties_keep_the_first_registered_and_removal_falls_back_by_path() {
        let files = ["/usr/bin/zz", "/usr/bin/aa", "/usr/bin/mm"];
        let o = run(
            vec![
                reg(0, "tool", "/usr/bin/zz", 5, &[]),
                reg(1, "tool", "/usr/bin/aa", 5, &[]),
                reg(2, "tool", "/usr/bin/mm", 5, &[]),
            ],
            &[],
            &files,
        )
        .unwrap();
        assert_eq!(o.chosen["tool"], "/usr/bin/zz");
        let mut regs = vec![
            reg(0, "tool", "/usr/bin/zz", 5, &[]),
            reg(1, "tool", "/usr/bin/mm", 5, &[]),
            reg(2, "tool", "/usr/bin/aa", 5, &[]),
        ];
        regs.push(Registration {
            package: 0,
            package_name: String::from("p0"),
            source: String::from("postinst:2"),
            change: Change::Remove {
                name: "tool".into(),
                path: "/usr/bin/zz".into(),
            },
        });
        let o = run(regs, &[], &files).unwrap();
        assert_eq!(o.chosen["tool"], "/usr/bin/aa");
        assert_eq!(o.effects[0].outcome, Outcome::Skipped);
    }

    #[test]
    fn manual_choice_and_refusals() {
        let regs = || {
            vec![
                reg(0, "java", "/usr/lib/jvm/a/bin/java", 1711, &[]),
                reg(1, "java", "/usr/lib/jvm/b/bin/java", 1111, &[]),
            ]
        };
        let files = ["/usr/lib/jvm/a/bin/java", "/usr/lib/jvm/b/bin/java"];
        let pick = |path: &str| ManualChoice {
            name: "java".into(),
            path: path.into(),
            loc: "r.toml:3:1".into(),
        };
        let o = run(regs(), &[pick("/usr/lib/jvm/b/bin/java")], &files).unwrap();
        assert_eq!(o.chosen["java"], "/usr/lib/jvm/b/bin/java");
        assert!(text(&o, "var/lib/dpkg/alternatives/java").starts_with("manual\n"));
        let err = run(regs(), &[pick("/opt/java")], &files)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("r.toml:3:1:")
                && err.contains("/usr/lib/jvm/a/bin/java, /usr/lib/jvm/b/bin/java"),
            "{err}"
        );
        // A path that is not installed is not registered.
        let o = run(regs(), &[], &files[1..]).unwrap();
        assert_eq!(o.chosen["java"], "/usr/lib/jvm/b/bin/java");
        assert_eq!(o.effects[0].outcome, Outcome::Skipped);
    }
}
