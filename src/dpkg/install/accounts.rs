//! The accounts of the system being installed, as the packages' scripts
//! change them one after another: the starting files (a base image's,
//! else base-passwd's masters, else root alone), the ids a recipe's
//! `[accounts]` takes, and each account a package declares, in install
//! order, numbered as the tool that declares it numbers it:
//!
//! - adduser (`--system`): the lowest uid in 100-999 free; with `--group`
//!   the group gets the uid's number when that gid is free, else the
//!   lowest free gid (so with base-passwd's `users` at 100, the first
//!   service user is 100:101, as on Debian);
//! - addgroup `--system`: the lowest free gid in 100-999;
//! - sysusers.d: the highest id in 100-999 free (systemd-sysusers searches
//!   down from its SYSTEM_UID_MAX), for a user one number free as both
//!   uid and gid, for a group a gid no user has as uid either (apt's
//!   systemd-journal 999, systemd-network 998:998); their shadow lines
//!   take sysusers' `!*`.
//!
//! An id a package names is kept when free. A name that exists already
//! is left alone (adduser and systemd-sysusers do nothing then). What a
//! package declares is checked first (`check`): names as adduser's
//! NAME_REGEX, no `:`, newline or control character in any field, an
//! absolute home and shell that stay under the root, and never uid or
//! gid 0.

use super::configure::sysusers::{Declared, DeclaredUser};

const SYSTEM_IDS: std::ops::RangeInclusive<u32> = 100..=999;
const NOGROUP: u32 = 65534;
/// useradd's limit on names, which adduser shares.
const MAX_NAME: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PasswdLine {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupLine {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

pub(crate) fn parse_passwd(text: &str) -> Vec<PasswdLine> {
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

pub(crate) fn parse_group(text: &str) -> Vec<GroupLine> {
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

/// Ids and names a recipe's `[accounts]` takes: packages never get them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    /// (name, uid, gid)
    pub users: Vec<(String, u32, u32)>,
    /// (name, gid)
    pub groups: Vec<(String, u32)>,
}

/// The account files as they stand.
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    pub pw: Vec<PasswdLine>,
    pub gr: Vec<GroupLine>,
    reserved: Reserved,
    /// How many users and groups there were when the shadow files were
    /// made (`None`: they are not).
    shadow_at: Option<(usize, usize)>,
    /// The files before their last change, as the tools leave them
    /// (`passwd-`, `group-`): the lines, and whether the change was
    /// pwconv's (whose backup keeps the masters' `*` passwords, mode 0600).
    pw_backup: Option<(Vec<PasswdLine>, bool)>,
    gr_backup: Option<(Vec<GroupLine>, bool)>,
    /// Users and groups systemd-sysusers made (their shadow password is
    /// `!*`, adduser's `!`).
    by_sysusers: std::collections::BTreeSet<String>,
}

/// What adding a declared account did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// A new user: its ids, and its home when the tool makes one.
    User {
        uid: u32,
        gid: u32,
        home: Option<String>,
    },
    Group {
        gid: u32,
    },
    Member,
    /// Nothing: the name exists, or the group it names does not, or no id
    /// is free.
    Nothing(&'static str),
}

impl Registry {
    pub(crate) fn new(pw: Vec<PasswdLine>, gr: Vec<GroupLine>, reserved: Reserved) -> Registry {
        Registry {
            pw,
            gr,
            reserved,
            shadow_at: None,
            pw_backup: None,
            gr_backup: None,
            by_sysusers: std::collections::BTreeSet::new(),
        }
    }

    /// /etc/shadow, /etc/gshadow and the `-` backups the tools leave,
    /// once `shadowconfig on` ran; `days` is the day of the last password
    /// change the entries record (empty: none).
    pub(crate) fn shadow_files(&self, days: &str) -> Vec<(&'static str, String, u32, u32)> {
        let shadow_gid = self.gid("shadow").unwrap_or(0);
        let sysusers = &self.by_sysusers;
        let locked = |name: &str| {
            if sysusers.contains(name) {
                "!*"
            } else {
                "!"
            }
        };
        let mut out = Vec::new();
        let passwd_text = |lines: &[PasswdLine], star: bool| -> String {
            lines
                .iter()
                .map(|p| {
                    let pw = if star { "*" } else { "x" };
                    format!(
                        "{}:{pw}:{}:{}:{}:{}:{}\n",
                        p.name, p.uid, p.gid, p.gecos, p.home, p.shell
                    )
                })
                .collect()
        };
        let group_text = |lines: &[GroupLine], star: bool| -> String {
            lines
                .iter()
                .map(|g| {
                    let pw = if star { "*" } else { "x" };
                    format!("{}:{pw}:{}:{}\n", g.name, g.gid, g.members.join(","))
                })
                .collect()
        };
        if let Some((lines, star)) = &self.pw_backup {
            let mode = if *star { 0o600 } else { 0o644 };
            out.push(("etc/passwd-", passwd_text(lines, *star), mode, 0));
        }
        if let Some((lines, star)) = &self.gr_backup {
            out.push(("etc/group-", group_text(lines, *star), 0o644, 0));
        }
        let Some((users_then, groups_then)) = self.shadow_at else {
            return out;
        };
        let shadow = |lines: &[PasswdLine]| -> String {
            lines
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    if k < users_then {
                        format!("{}:*:{days}:0:99999:7:::\n", p.name)
                    } else {
                        format!("{}:{}:{days}::::::\n", p.name, locked(&p.name))
                    }
                })
                .collect()
        };
        let gshadow = |lines: &[GroupLine]| -> String {
            lines
                .iter()
                .enumerate()
                .map(|(k, g)| {
                    let pw = if k < groups_then {
                        "*"
                    } else {
                        locked(&g.name)
                    };
                    format!("{}:{pw}::{}\n", g.name, g.members.join(","))
                })
                .collect()
        };
        out.push(("etc/shadow", shadow(&self.pw), 0o640, shadow_gid));
        out.push(("etc/gshadow", gshadow(&self.gr), 0o640, shadow_gid));
        if let Some((lines, false)) = &self.pw_backup {
            out.push(("etc/shadow-", shadow(lines), 0o640, shadow_gid));
        }
        if let Some((lines, false)) = &self.gr_backup {
            out.push(("etc/gshadow-", gshadow(lines), 0o640, shadow_gid));
        }
        out
    }

    /// The files a system without base-passwd starts with: root alone.
    pub(crate) fn root_only(reserved: Reserved) -> Registry {
        Registry::new(
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
            reserved,
        )
    }

    pub(crate) fn uid(&self, name: &str) -> Option<u32> {
        let reserved = self.reserved.users.iter().find(|u| u.0 == name);
        reserved
            .map(|u| u.1)
            .or_else(|| self.pw.iter().find(|p| p.name == name).map(|p| p.uid))
    }

    pub(crate) fn gid(&self, name: &str) -> Option<u32> {
        let reserved = self.reserved.groups.iter().find(|g| g.0 == name);
        reserved
            .map(|g| g.1)
            .or_else(|| self.gr.iter().find(|g| g.name == name).map(|g| g.gid))
    }

    fn uid_taken(&self, id: u32) -> bool {
        self.pw.iter().any(|p| p.uid == id) || self.reserved.users.iter().any(|u| u.1 == id)
    }

    fn gid_taken(&self, id: u32) -> bool {
        self.gr.iter().any(|g| g.gid == id)
            || self.reserved.groups.iter().any(|g| g.1 == id)
            || self.reserved.users.iter().any(|u| u.2 == id)
    }

    fn user_exists(&self, name: &str) -> bool {
        self.pw.iter().any(|p| p.name == name) || self.reserved.users.iter().any(|u| u.0 == name)
    }

    fn group_exists(&self, name: &str) -> bool {
        self.gr.iter().any(|g| g.name == name) || self.reserved.groups.iter().any(|g| g.0 == name)
    }

    fn free_uid(&self) -> Option<u32> {
        SYSTEM_IDS.clone().find(|&id| !self.uid_taken(id))
    }

    fn free_gid(&self) -> Option<u32> {
        SYSTEM_IDS.clone().find(|&id| !self.gid_taken(id))
    }

    /// Adds what a package declares (checked with `check` first).
    pub(crate) fn add(&mut self, d: &Declared) -> Added {
        match d {
            Declared::Shadow => {
                self.shadow_at = Some((self.pw.len(), self.gr.len()));
                self.pw_backup = Some((self.pw.clone(), true));
                self.gr_backup = Some((self.gr.clone(), true));
                Added::Member
            }
            Declared::Group {
                name,
                gid,
                sysusers,
            } => {
                if self.group_exists(name) {
                    return Added::Nothing("the group exists already");
                }
                let highest = || {
                    SYSTEM_IDS
                        .clone()
                        .rev()
                        .find(|&id| !self.gid_taken(id) && !self.uid_taken(id))
                };
                let Some(gid) = gid.filter(|&g| !self.gid_taken(g)).or_else(|| {
                    if *sysusers {
                        highest()
                    } else {
                        self.free_gid()
                    }
                }) else {
                    return Added::Nothing("no system gid is free");
                };
                if *sysusers {
                    self.by_sysusers.insert(name.clone());
                }
                self.gr_backup = Some((self.gr.clone(), false));
                self.gr.push(GroupLine {
                    name: name.clone(),
                    gid,
                    members: vec![],
                });
                Added::Group { gid }
            }
            Declared::Member { user, group } => {
                let before = self.gr.clone();
                match self.gr.iter_mut().find(|g| g.name == *group) {
                    Some(g) => {
                        self.gr_backup = Some((before, false));
                        if !g.members.contains(user) {
                            g.members.push(user.clone());
                        }
                        Added::Member
                    }
                    None => Added::Nothing("the group does not exist"),
                }
            }
            Declared::User(u) => {
                if self.user_exists(&u.name) {
                    return Added::Nothing("the user exists already");
                }
                let Some((uid, gid)) = self.user_ids(u) else {
                    return Added::Nothing("its group does not exist, or no system id is free");
                };
                if u.pair_ids {
                    self.by_sysusers.insert(u.name.clone());
                }
                if u.own_group && !self.group_exists(&u.name) {
                    self.gr_backup = Some((self.gr.clone(), false));
                    self.gr.push(GroupLine {
                        name: u.name.clone(),
                        gid,
                        members: vec![],
                    });
                }
                self.pw_backup = Some((self.pw.clone(), false));
                self.pw.push(PasswdLine {
                    name: u.name.clone(),
                    uid,
                    gid,
                    gecos: u.gecos.clone(),
                    home: u.home.clone(),
                    shell: u.shell.clone(),
                });
                let home = (u.create_home && u.home != "/").then(|| u.home.clone());
                Added::User { uid, gid, home }
            }
        }
    }

    /// A package user's (uid, gid), or `None` when its group does not exist.
    fn user_ids(&self, u: &DeclaredUser) -> Option<(u32, u32)> {
        let wanted = u.uid.filter(|&id| !self.uid_taken(id));
        if u.own_group {
            if let Some(gid) = self.gid(&u.name) {
                let uid = wanted
                    .or_else(|| {
                        Some(gid).filter(|&id| SYSTEM_IDS.contains(&id) && !self.uid_taken(id))
                    })
                    .or_else(|| {
                        if u.pair_ids {
                            SYSTEM_IDS.clone().rev().find(|&id| !self.uid_taken(id))
                        } else {
                            self.free_uid()
                        }
                    })?;
                return Some((uid, gid));
            }
            let uid = match wanted {
                Some(uid) => uid,
                // systemd-sysusers looks for one number free as both,
                // from the top of the system range down.
                None if u.pair_ids => SYSTEM_IDS
                    .clone()
                    .rev()
                    .find(|&id| !self.uid_taken(id) && !self.gid_taken(id))
                    .or_else(|| self.free_uid())?,
                None => self.free_uid()?,
            };
            let gid = Some(uid)
                .filter(|&id| !self.gid_taken(id))
                .or_else(|| self.free_gid())?;
            return Some((uid, gid));
        }
        let gid = match (&u.group, u.gid) {
            (Some(name), _) => self.gid(name)?,
            (None, Some(gid)) => gid,
            (None, None) => NOGROUP,
        };
        let uid = wanted.or_else(|| self.free_uid())?;
        Some((uid, gid))
    }
}

/// Whether `name` is one adduser takes for a system account (its
/// SYS_NAME_REGEX, `^[a-z_][-a-z0-9_]*\$?$`, or with `--force-badname`
/// upper case and `.` too), at most 32 bytes.
fn valid_name(name: &str, relaxed: bool) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    let first_ok =
        |c: char| c == '_' || c.is_ascii_lowercase() || (relaxed && c.is_ascii_uppercase());
    let rest_ok = |c: char| {
        c == '-'
            || c == '_'
            || c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || (relaxed && (c.is_ascii_uppercase() || c == '.'))
    };
    name.len() <= MAX_NAME && chars.next().is_some_and(first_ok) && chars.all(rest_ok)
}

/// A field of an account line: no `:`, newline or other control character.
fn valid_field(text: &str) -> bool {
    !text.chars().any(|c| c == ':' || c.is_control())
}

/// An absolute path that stays under the root, fit for an account line.
fn valid_path(path: &str) -> bool {
    valid_field(path) && crate::fstree::normalize_rel(path).is_ok() && path.starts_with('/')
}

/// Refuses what no account tool would write, or what would let a package
/// take root's place: why, for the report.
pub(crate) fn check(d: &Declared, relaxed: bool) -> Result<(), String> {
    let name_ok = |n: &str| valid_name(n, relaxed);
    let refuse = |what: String| Err(format!("refused: {what}"));
    match d {
        Declared::Shadow => {}
        Declared::Group { name, gid, .. } => {
            if !name_ok(name) {
                return refuse(format!(
                    "`{}` is not a valid group name",
                    name.escape_debug()
                ));
            }
            if *gid == Some(0) {
                return refuse(String::from("a package may not make a group with gid 0"));
            }
        }
        Declared::Member { user, group } => {
            if !name_ok(user) || !name_ok(group) {
                return refuse(format!(
                    "`{}` or `{}` is not a valid account name",
                    user.escape_debug(),
                    group.escape_debug()
                ));
            }
        }
        Declared::User(u) => {
            if !name_ok(&u.name) {
                return refuse(format!(
                    "`{}` is not a valid user name",
                    u.name.escape_debug()
                ));
            }
            if u.uid == Some(0) || u.gid == Some(0) {
                return refuse(String::from(
                    "a package may not make an account with uid or gid 0",
                ));
            }
            if let Some(g) = &u.group {
                if !name_ok(g) {
                    return refuse(format!("`{}` is not a valid group name", g.escape_debug()));
                }
            }
            if !valid_field(&u.gecos) {
                return refuse(format!(
                    "the comment `{}` holds `:` or a control character",
                    u.gecos.escape_debug()
                ));
            }
            for (what, path) in [("home", &u.home), ("shell", &u.shell)] {
                if !valid_path(path) {
                    return refuse(format!(
                        "the {what} `{}` is not an absolute path under the root",
                        path.escape_debug()
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> DeclaredUser {
        DeclaredUser {
            name: name.into(),
            uid: None,
            own_group: true,
            group: None,
            gid: None,
            gecos: String::new(),
            home: "/var/lib/x".into(),
            shell: "/usr/sbin/nologin".into(),
            create_home: true,
            pair_ids: false,
        }
    }

    /// base-passwd's `users` group holds gid 100, so adduser's first
    /// service user with its own group is 100:101, as apt leaves redis.
    #[test]
    fn numbered_as_adduser_numbers_them() {
        let mut r = Registry::new(
            parse_passwd("root:x:0:0:root:/root:/bin/bash\n"),
            parse_group("root:x:0:\nusers:x:100:\n"),
            Reserved::default(),
        );
        let added = r.add(&Declared::User(user("redis")));
        assert_eq!(
            added,
            Added::User {
                uid: 100,
                gid: 101,
                home: Some("/var/lib/x".into())
            }
        );
        // systemd-sysusers numbers from the top: a group, then a user
        // and its group on one number free as both (apt's
        // systemd-journal 999, systemd-network 998:998).
        r.add(&Declared::Shadow);
        let journal = Declared::Group {
            name: "systemd-journal".into(),
            gid: None,
            sysusers: true,
        };
        assert_eq!(r.add(&journal), Added::Group { gid: 999 });
        let mut sysusers = user("systemd-network");
        sysusers.pair_ids = true;
        assert!(matches!(
            r.add(&Declared::User(sysusers)),
            Added::User {
                uid: 998,
                gid: 998,
                ..
            }
        ));
        // adduser's next account is still the lowest free.
        assert!(matches!(
            r.add(&Declared::User(user("messagebus"))),
            Added::User {
                uid: 101,
                gid: 102,
                ..
            }
        ));
        let files = r.shadow_files("1");
        let text = |name: &str| &files.iter().find(|f| f.0 == name).unwrap().1;
        assert!(text("etc/shadow").ends_with("systemd-network:!*:1::::::\nmessagebus:!:1::::::\n"));
        assert!(text("etc/gshadow")
            .ends_with("systemd-journal:!*::\nsystemd-network:!*::\nmessagebus:!::\n"));
        assert_eq!(
            r.add(&Declared::User(user("redis"))),
            Added::Nothing("the user exists already")
        );
    }

    #[test]
    fn what_no_account_tool_writes_is_refused() {
        let mut bad = Vec::new();
        for name in ["a:b", "evil\nroot", "Root", "../x", "", &"x".repeat(33)] {
            bad.push(Declared::User(user(name)));
        }
        let mut gecos = user("svc");
        gecos.gecos = "x:0:0:".into();
        bad.push(Declared::User(gecos));
        let mut uid0 = user("svc");
        uid0.uid = Some(0);
        bad.push(Declared::User(uid0));
        for home in ["../../tmp/x", "/var/../../tmp", "relative", "/a:b"] {
            let mut u = user("svc");
            u.home = home.into();
            bad.push(Declared::User(u));
        }
        bad.push(Declared::Group {
            name: "wheel".into(),
            gid: Some(0),
            sysusers: false,
        });
        for d in &bad {
            let why = check(d, false).unwrap_err();
            assert!(why.starts_with("refused: "), "{d:?}: {why}");
        }
        assert!(check(&Declared::User(user("_apt")), false).is_ok());
        assert!(check(&Declared::User(user("Debian-exim")), false).is_err());
        assert!(check(&Declared::User(user("Debian-exim")), true).is_ok());
    }
}
