//! /etc/passwd and /etc/group, written declaratively from `[accounts]`,
//! the accounts packages declare (sysusers.d files, `adduser --system` in
//! their scripts) and, when base-passwd is installed, its master files.
//! Entries are sorted by id so the files never depend on the order things
//! were declared in.
//!
//! Ids for package accounts: an id the package names is kept when free;
//! otherwise the lowest id in 100-999 (Debian's system range, adduser's
//! rule) that is free in the masters, the recipe's `[accounts]` and the
//! accounts given before it, in package install order. A user with a group
//! of its own name gets the same number for both when it is free in both.
//! An account whose name exists already is left as it is (adduser and
//! systemd-sysusers do nothing then); `[accounts]` entries still win over
//! everything, as over the masters.

use crate::dpkg::install::{Declared, DeclaredUser};
use crate::recipe::{GroupSpec, UserSpec};

const SYSTEM_IDS: std::ops::RangeInclusive<u32> = 100..=999;
const NOGROUP: u32 = 65534;

#[derive(Clone, Debug, PartialEq, Eq)]
struct PasswdLine {
    name: String,
    uid: u32,
    gid: u32,
    gecos: String,
    home: String,
    shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupLine {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The generated account files.
pub(crate) struct AccountFiles {
    pub passwd: String,
    pub group: String,
    /// Home directories to create: (path, uid, gid).
    pub homes: Vec<(String, u32, u32)>,
}

fn parse_passwd(text: &str) -> Vec<PasswdLine> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 7 {
                return None;
            }
            Some(PasswdLine {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                gecos: f[4].into(),
                home: f[5].into(),
                shell: f[6].into(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupLine> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 4 {
                return None;
            }
            Some(GroupLine {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// Builds the account files. `masters` is base-passwd's (passwd, group)
/// master text when that package is installed; recipe entries win over
/// master entries with the same name. Without masters, root is added.
pub(crate) fn account_files(
    users: &[UserSpec],
    groups: &[GroupSpec],
    masters: Option<(&str, &str)>,
    declared: &[Declared],
) -> AccountFiles {
    let (mut pw, mut gr) = match masters {
        Some((p, g)) => (parse_passwd(p), parse_group(g)),
        None => (
            vec![PasswdLine {
                name: "root".into(),
                uid: 0,
                gid: 0,
                gecos: "root".into(),
                home: "/root".into(),
                shell: "/sbin/nologin".into(),
            }],
            vec![GroupLine {
                name: "root".into(),
                gid: 0,
                members: vec![],
            }],
        ),
    };
    let mut homes = Vec::new();
    add_declared(&mut pw, &mut gr, &mut homes, declared, users, groups);
    for u in users {
        homes.retain(|(h, _, _)| *h != u.home);
        pw.retain(|p| p.name != u.name && p.uid != u.uid);
        pw.push(PasswdLine {
            name: u.name.clone(),
            uid: u.uid,
            gid: u.gid,
            gecos: String::new(),
            home: u.home.clone(),
            shell: u.shell.clone(),
        });
        if u.home != "/" {
            homes.push((u.home.clone(), u.uid, u.gid));
        }
    }
    for g in groups {
        gr.retain(|x| x.name != g.name && x.gid != g.gid);
        gr.push(GroupLine {
            name: g.name.clone(),
            gid: g.gid,
            members: g.members.clone(),
        });
    }
    // A user whose primary group nobody declared gets a group of its own
    // name, as useradd would make.
    for u in users {
        if !gr.iter().any(|g| g.gid == u.gid) && !gr.iter().any(|g| g.name == u.name) {
            gr.push(GroupLine {
                name: u.name.clone(),
                gid: u.gid,
                members: vec![],
            });
        }
    }
    pw.sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));
    gr.sort_by(|a, b| (a.gid, &a.name).cmp(&(b.gid, &b.name)));
    let passwd: String = pw
        .iter()
        .map(|p| {
            format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                p.name, p.uid, p.gid, p.gecos, p.home, p.shell
            )
        })
        .collect();
    let group: String = gr
        .iter()
        .map(|g| {
            let mut m = g.members.clone();
            m.sort();
            m.dedup();
            format!("{}:x:{}:{}\n", g.name, g.gid, m.join(","))
        })
        .collect();
    AccountFiles {
        passwd,
        group,
        homes,
    }
}

/// The package accounts, merged in as the module comment says.
fn add_declared(
    pw: &mut Vec<PasswdLine>,
    gr: &mut Vec<GroupLine>,
    homes: &mut Vec<(String, u32, u32)>,
    declared: &[Declared],
    users: &[UserSpec],
    groups: &[GroupSpec],
) {
    let uid_taken = |pw: &[PasswdLine], id: u32| {
        pw.iter().any(|p| p.uid == id) || users.iter().any(|u| u.uid == id)
    };
    let gid_taken = |gr: &[GroupLine], id: u32| {
        gr.iter().any(|g| g.gid == id)
            || groups.iter().any(|g| g.gid == id)
            || users.iter().any(|u| u.gid == id)
    };
    let recipe_user = |n: &str| users.iter().any(|u| u.name == n);
    let recipe_group = |n: &str| groups.iter().any(|g| g.name == n);
    for d in declared {
        match d {
            Declared::Group { name, gid } => {
                if gr.iter().any(|g| g.name == *name) || recipe_group(name) {
                    continue;
                }
                let gid = gid
                    .filter(|&g| !gid_taken(gr, g))
                    .or_else(|| SYSTEM_IDS.clone().find(|&g| !gid_taken(gr, g)));
                if let Some(gid) = gid {
                    gr.push(GroupLine {
                        name: name.clone(),
                        gid,
                        members: vec![],
                    });
                }
            }
            Declared::Member { user, group } => {
                if let Some(g) = gr.iter_mut().find(|g| g.name == *group) {
                    g.members.push(user.clone());
                }
            }
            Declared::User(u) => {
                if pw.iter().any(|p| p.name == u.name) || recipe_user(&u.name) {
                    continue;
                }
                let Some((uid, gid)) = user_ids(pw, gr, u, &uid_taken, &gid_taken) else {
                    continue;
                };
                if u.own_group && !gr.iter().any(|g| g.name == u.name) {
                    gr.push(GroupLine {
                        name: u.name.clone(),
                        gid,
                        members: vec![],
                    });
                }
                pw.push(PasswdLine {
                    name: u.name.clone(),
                    uid,
                    gid,
                    gecos: u.gecos.clone(),
                    home: u.home.clone(),
                    shell: u.shell.clone(),
                });
                if u.create_home && u.home != "/" {
                    homes.push((u.home.clone(), uid, gid));
                }
            }
        }
    }
}

/// A package user's (uid, gid), or `None` when its group does not exist.
fn user_ids(
    pw: &[PasswdLine],
    gr: &[GroupLine],
    u: &DeclaredUser,
    uid_taken: &dyn Fn(&[PasswdLine], u32) -> bool,
    gid_taken: &dyn Fn(&[GroupLine], u32) -> bool,
) -> Option<(u32, u32)> {
    let wanted = u.uid.filter(|&id| !uid_taken(pw, id));
    if u.own_group {
        if let Some(g) = gr.iter().find(|g| g.name == u.name) {
            let uid = wanted
                .or_else(|| {
                    Some(g.gid).filter(|&id| SYSTEM_IDS.contains(&id) && !uid_taken(pw, id))
                })
                .or_else(|| SYSTEM_IDS.clone().find(|&id| !uid_taken(pw, id)))?;
            return Some((uid, g.gid));
        }
        let uid = wanted.or_else(|| {
            SYSTEM_IDS
                .clone()
                .find(|&id| !uid_taken(pw, id) && !gid_taken(gr, id))
                .or_else(|| SYSTEM_IDS.clone().find(|&id| !uid_taken(pw, id)))
        })?;
        let gid = Some(uid)
            .filter(|&id| !gid_taken(gr, id))
            .or_else(|| SYSTEM_IDS.clone().find(|&id| !gid_taken(gr, id)))?;
        return Some((uid, gid));
    }
    let gid = match (&u.group, u.gid) {
        (Some(name), _) => gr.iter().find(|g| g.name == *name)?.gid,
        (None, Some(gid)) => gid,
        (None, None) => NOGROUP,
    };
    let uid = wanted.or_else(|| SYSTEM_IDS.clone().find(|&id| !uid_taken(pw, id)))?;
    Some((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_id_with_root_and_implied_group() {
        let users = vec![
            UserSpec {
                name: "nonroot".into(),
                uid: 65532,
                gid: 65532,
                home: "/home/nonroot".into(),
                shell: "/sbin/nologin".into(),
            },
            UserSpec {
                name: "app".into(),
                uid: 1000,
                gid: 1000,
                home: "/app".into(),
                shell: "/bin/sh".into(),
            },
        ];
        let f = account_files(&users, &[], None, &[]);
        assert_eq!(
            f.passwd,
            "root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000::/app:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
        );
        assert_eq!(f.group, "root:x:0:\napp:x:1000:\nnonroot:x:65532:\n");
    }

    #[test]
    fn package_accounts_get_the_lowest_free_system_ids() {
        let user = |name: &str, own_group: bool| {
            Declared::User(DeclaredUser {
                name: name.into(),
                uid: None,
                own_group,
                group: None,
                gid: None,
                gecos: String::new(),
                home: "/nonexistent".into(),
                shell: "/usr/sbin/nologin".into(),
                create_home: false,
            })
        };
        let masters = (
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "root:x:0:\nnogroup:x:65534:\n",
        );
        let recipe_user = UserSpec {
            name: "app".into(),
            uid: 100,
            gid: 100,
            home: "/app".into(),
            shell: "/bin/sh".into(),
        };
        let declared = [
            user("_apt", false),
            Declared::Group {
                name: "systemd-journal".into(),
                gid: None,
            },
            user("messagebus", true),
            // Already there: left alone.
            user("nobody", true),
            Declared::Member {
                user: "messagebus".into(),
                group: "systemd-journal".into(),
            },
        ];
        let f = account_files(&[recipe_user], &[], Some(masters), &declared);
        assert_eq!(
            f.passwd,
            "root:x:0:0:root:/root:/bin/bash\napp:x:100:100::/app:/bin/sh\n_apt:x:101:65534::/nonexistent:/usr/sbin/nologin\nmessagebus:x:102:102::/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(
            f.group,
            "root:x:0:\napp:x:100:\nsystemd-journal:x:101:messagebus\nmessagebus:x:102:\nnogroup:x:65534:\n"
        );
    }
}
