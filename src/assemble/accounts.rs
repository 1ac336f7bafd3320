//! /etc/passwd and /etc/group, written declaratively from `[accounts]` and,
//! when base-passwd is installed, its master files. Entries are sorted by id
//! so the files never depend on the order things were declared in.

use crate::recipe::{GroupSpec, UserSpec};

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
    for u in users {
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
        let f = account_files(&users, &[], None);
        assert_eq!(
            f.passwd,
            "root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000::/app:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
        );
        assert_eq!(f.group, "root:x:0:\napp:x:1000:\nnonroot:x:65532:\n");
    }
}
