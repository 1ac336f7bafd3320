//! /etc/passwd and /etc/group, written declaratively from `[accounts]`,
//! the accounts packages declare (sysusers.d files, `adduser --system` in
//! their scripts) and, when base-passwd is installed, its master files.
//! Entries are in the order the tools leave them: the starting files'
//! (base-passwd's masters, a base image's) first, then each package's in
//! install order (adduser appends), then the recipe's.
//!
//! Package accounts are numbered as `dpkg::install::accounts` says (as
//! adduser and systemd-sysusers number them, the recipe's ids left
//! free), with the same registry the install used, so the owners its
//! scripts gave files are these accounts'. `[accounts]` entries win over
//! everything, as over the masters.

use crate::dpkg::install::accounts::{parse_group, parse_passwd, GroupLine, PasswdLine, Registry};
use crate::dpkg::install::{Declared, Reserved};
use crate::recipe::{GroupSpec, UserSpec};

/// The generated account files.
pub(crate) struct AccountFiles {
    pub passwd: String,
    pub group: String,
    /// Home directories of the recipe's users to create: (path, uid, gid).
    /// (A package's are made when its script runs.)
    pub homes: Vec<(String, u32, u32)>,
    /// /etc/shadow, /etc/gshadow and the backups shadow's tools leave:
    /// (key, text, mode, gid).
    pub shadow: Vec<(&'static str, String, u32, u32)>,
}

/// What `[accounts]` takes, which packages never get.
pub(crate) fn reserved(users: &[UserSpec], groups: &[GroupSpec]) -> Reserved {
    Reserved {
        users: users
            .iter()
            .map(|u| (u.name.clone(), u.uid, u.gid))
            .collect(),
        groups: groups.iter().map(|g| (g.name.clone(), g.gid)).collect(),
    }
}

/// Builds the account files. `masters` is base-passwd's (passwd, group)
/// master text when that package is installed; recipe entries win over
/// master entries with the same name. Without masters, root is added.
pub(crate) fn account_files(
    users: &[UserSpec],
    groups: &[GroupSpec],
    masters: Option<(&str, &str)>,
    declared: &[Declared],
    epoch: u64,
) -> AccountFiles {
    // The same registry, fed the same declarations in the same order, as
    // the install numbered them with.
    let reserved = reserved(users, groups);
    let mut registry = match masters {
        Some((p, g)) => Registry::new(parse_passwd(p), parse_group(g), reserved),
        None => Registry::root_only(reserved),
    };
    for d in declared {
        registry.add(d);
    }
    let mut homes = Vec::new();
    let (pw, gr) = (&mut registry.pw, &mut registry.gr);
    // The recipe's own entries by id, so the recipe's order never matters.
    let mut users: Vec<&UserSpec> = users.iter().collect();
    users.sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));
    let mut groups: Vec<&GroupSpec> = groups.iter().collect();
    groups.sort_by(|a, b| (a.gid, &a.name).cmp(&(b.gid, &b.name)));
    for u in &users {
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
    for g in &groups {
        gr.retain(|x| x.name != g.name && x.gid != g.gid);
        gr.push(GroupLine {
            name: g.name.clone(),
            gid: g.gid,
            members: g.members.clone(),
        });
    }
    // A user whose primary group nobody declared gets a group of its own
    // name, as useradd would make.
    for u in &users {
        if !gr.iter().any(|g| g.gid == u.gid) && !gr.iter().any(|g| g.name == u.name) {
            gr.push(GroupLine {
                name: u.name.clone(),
                gid: u.gid,
                members: vec![],
            });
        }
    }
    // shadow(5): the day of the last password change; an empty field
    // turns ageing off, where day 0 would ask for a new password at once.
    let days = if epoch >= 86_400 {
        (epoch / 86_400).to_string()
    } else {
        String::new()
    };
    let shadow = registry.shadow_files(&days);
    let (pw, gr) = (&registry.pw, &registry.gr);
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
            // In the order they joined, as adduser appends them.
            let mut m: Vec<&String> = Vec::new();
            for member in &g.members {
                if !m.contains(&member) {
                    m.push(member);
                }
            }
            let m: Vec<&str> = m.into_iter().map(String::as_str).collect();
            format!("{}:x:{}:{}\n", g.name, g.gid, m.join(","))
        })
        .collect();
    AccountFiles {
        passwd,
        group,
        homes,
        shadow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::install::DeclaredUser;

    #[test]
    fn recipe_accounts_by_id_with_root_and_implied_group() {
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
        let f = account_files(&users, &[], None, &[], 0);
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
                pair_ids: false,
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
                sysusers: true,
            },
            user("messagebus", true),
            // Already there: left alone.
            user("nobody", true),
            Declared::Member {
                user: "messagebus".into(),
                group: "systemd-journal".into(),
            },
        ];
        let f = account_files(&[recipe_user], &[], Some(masters), &declared, 0);
        assert_eq!(
            f.passwd,
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n_apt:x:101:65534::/nonexistent:/usr/sbin/nologin\nmessagebus:x:102:102::/nonexistent:/usr/sbin/nologin\napp:x:100:100::/app:/bin/sh\n"
        );
        assert_eq!(
            f.group,
            "root:x:0:\nnogroup:x:65534:\nsystemd-journal:x:999:messagebus\nmessagebus:x:102:\napp:x:100:\n"
        );
    }
}
