//! Accounts packages declare: `sysusers.d(5)` files under
//! /usr/lib/sysusers.d, and the `adduser --system` (and kin) calls the
//! script reader finds. Both become `Declared` entries in install order
//! (per package: its scripts' calls, then its sysusers.d files by name,
//! lines in order); `assemble::accounts` gives them ids and writes them.

use crate::dpkg::install::effects::{Outcome, ScriptEffect};
use crate::dpkg::scripts::AddUser;

/// One account a package asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declared {
    User(DeclaredUser),
    Group {
        name: String,
        gid: Option<u32>,
        /// Numbered as systemd-sysusers numbers (the highest free id),
        /// not as addgroup (the lowest).
        sysusers: bool,
    },
    /// `user` joins `group` (sysusers `m`, `adduser USER GROUP`).
    Member {
        user: String,
        group: String,
    },
    /// `shadowconfig on` (passwd's postinst): /etc/shadow and /etc/gshadow
    /// are made here, from the accounts so far (pwconv, grpconv); later
    /// accounts are added to them as adduser adds them.
    Shadow,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredUser {
    pub name: String,
    pub uid: Option<u32>,
    /// Primary group: a group of the user's own name (made if missing),
    /// a named group, a numeric gid, or else `nogroup` (adduser's default).
    pub own_group: bool,
    pub group: Option<String>,
    pub gid: Option<u32>,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// Whether the home folder is made (adduser without --no-create-home).
    pub create_home: bool,
    /// Whether user and group get one number free as both
    /// (systemd-sysusers), rather than adduser's lowest free uid and the
    /// same gid when free.
    pub pair_ids: bool,
}

pub(super) const NOLOGIN: &str = "/usr/sbin/nologin";

impl From<AddUser> for DeclaredUser {
    fn from(u: AddUser) -> DeclaredUser {
        // adduser --system's defaults (adduser 3.13x): home /nonexistent,
        // shell nologin, primary group nogroup unless --group/--ingroup.
        let home = u.home.unwrap_or_else(|| String::from("/nonexistent"));
        DeclaredUser {
            create_home: u.create_home && home != "/nonexistent",
            name: u.name,
            uid: u.uid,
            own_group: u.own_group,
            group: u.group,
            gid: u.gid,
            gecos: u.gecos,
            home,
            shell: u.shell.unwrap_or_else(|| NOLOGIN.to_string()),
            pair_ids: false,
        }
    }
}

/// The fields of a sysusers.d line: blank-separated, `"..."` quoting.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else {
            return Some(out);
        };
        let mut f = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => f.push(chars.next()?),
                    c => f.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                f.push(c);
                chars.next();
            }
        }
        out.push(f);
    }
}

/// Reads one sysusers.d file (`path` for messages, absolute): the
/// accounts it declares and an effect per line.
pub(super) fn read(package: &str, path: &str, text: &str) -> (Vec<Declared>, Vec<ScriptEffect>) {
    let mut declared = Vec::new();
    let mut effects = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut effect = ScriptEffect {
            package: package.to_string(),
            source: format!("{path}:{}", n + 1),
            effect: line.to_string(),
            outcome: Outcome::Reproduced,
            detail: String::new(),
        };
        let unset = |f: Option<&String>| f.filter(|v| v.as_str() != "-").cloned();
        let result: Result<(Declared, String), String> = match fields(line) {
            None => Err(String::from("an unterminated quote")),
            Some(f) => match f.first().map(String::as_str) {
                Some("u" | "u!") if f.len() >= 2 => {
                    let id = unset(f.get(2));
                    let (uid, gid) = match id.as_deref() {
                        None => (None, None),
                        Some(id) => match id.split_once(':') {
                            Some((u, g)) => (u.parse().ok(), g.parse().ok()),
                            None => (id.parse().ok(), None),
                        },
                    };
                    if id.as_deref().is_some_and(|i| i.starts_with('/')) {
                        Err(String::from(
                            "ids taken from a file's owner are not followed",
                        ))
                    } else {
                        let home = unset(f.get(4)).unwrap_or_else(|| String::from("/"));
                        let shell = unset(f.get(5)).unwrap_or_else(|| NOLOGIN.to_string());
                        let group = id
                            .as_deref()
                            .and_then(|i| i.split_once(':'))
                            .map(|(_, g)| g.to_string())
                            .filter(|g| g.parse::<u32>().is_err());
                        Ok((
                            Declared::User(DeclaredUser {
                                name: f[1].clone(),
                                uid,
                                own_group: gid.is_none() && group.is_none(),
                                group,
                                gid,
                                gecos: unset(f.get(3)).unwrap_or_default(),
                                home,
                                shell,
                                create_home: false,
                                pair_ids: true,
                            }),
                            format!("system user `{}`", f[1]),
                        ))
                    }
                }
                Some("g") if f.len() >= 2 => {
                    let gid = unset(f.get(2));
                    if gid.as_deref().is_some_and(|g| g.starts_with('/')) {
                        Err(String::from(
                            "ids taken from a file's owner are not followed",
                        ))
                    } else {
                        Ok((
                            Declared::Group {
                                name: f[1].clone(),
                                gid: gid.and_then(|g| g.parse().ok()),
                                sysusers: true,
                            },
                            format!("system group `{}`", f[1]),
                        ))
                    }
                }
                Some("m") if f.len() >= 3 => Ok((
                    Declared::Member {
                        user: f[1].clone(),
                        group: f[2].clone(),
                    },
                    format!("`{}` in group `{}`", f[1], f[2]),
                )),
                Some("r") => {
                    effect.outcome = Outcome::NotNeeded;
                    effect.detail =
                        String::from("stele gives system accounts ids from 100-999 itself");
                    effects.push(effect);
                    continue;
                }
                _ => Err(String::from("a line type stele does not apply")),
            },
        };
        match result {
            Ok((d, what)) => {
                effect.detail = format!("{what}, in /etc/passwd and /etc/group");
                declared.push(d);
            }
            Err(why) => {
                effect.outcome = Outcome::Skipped;
                effect.detail = why;
            }
        }
        effects.push(effect);
    }
    (declared, effects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbus_and_timesync_files() {
        let (d, e) = read(
            "dbus-system-bus-common",
            "/usr/lib/sysusers.d/dbus.conf",
            include_str!("../../fixtures/dbus.sysusers.conf"),
        );
        assert_eq!(
            d,
            vec![Declared::User(DeclaredUser {
                name: "messagebus".into(),
                uid: None,
                own_group: true,
                group: None,
                gid: None,
                gecos: "System Message Bus".into(),
                home: "/".into(),
                shell: NOLOGIN.into(),
                create_home: false,
                pair_ids: true,
            })]
        );
        assert_eq!(e[0].source, "/usr/lib/sysusers.d/dbus.conf:5");
        assert_eq!(e[0].outcome, Outcome::Reproduced);
        let (d, _) = read(
            "systemd-timesyncd",
            "/usr/lib/sysusers.d/systemd-timesync.conf",
            include_str!("../../fixtures/systemd-timesync.sysusers.conf"),
        );
        assert!(matches!(&d[..], [Declared::User(u)] if u.name == "systemd-timesync"));
    }

    #[test]
    fn groups_members_ids_and_refusals() {
        let text = "g tape 26\nu app 120:tape \"App user\" /var/lib/app /bin/sh\nm app tape\nr - 500-900\nu owner /etc/x\nx weird\n";
        let (d, e) = read("p", "/usr/lib/sysusers.d/p.conf", text);
        assert_eq!(d.len(), 3);
        assert!(
            matches!(&d[1], Declared::User(u) if u.uid == Some(120) && u.group.as_deref() == Some("tape") && !u.own_group && u.home == "/var/lib/app")
        );
        let outcomes: Vec<Outcome> = e.iter().map(|e| e.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Reproduced,
                Outcome::Reproduced,
                Outcome::Reproduced,
                Outcome::NotNeeded,
                Outcome::Skipped,
                Outcome::Skipped
            ]
        );
    }
}
