//! Services enabled as a first install enables them, from what the
//! packages declare: `update-rc.d NAME defaults` links
//! `/etc/rcN.d/S01NAME` and `K01NAME` to `../init.d/NAME` for the
//! runlevels of the script's LSB header (`Default-Start`,
//! `Default-Stop`; 01 is update-rc.d's number without insserv), and
//! `deb-systemd-helper enable UNIT` makes the links of the unit's
//! `[Install]` section (`Alias=`, `WantedBy=`, `RequiredBy=`, and the
//! units `Also=` names) in /etc/systemd/system, with the state
//! deb-systemd-helper keeps in /var/lib/systemd/deb-systemd-helper-enabled;
//! `deb-systemd-helper update-state UNIT` writes only that state, and
//! `systemctl enable UNIT` only the links. An instance of a template
//! (`getty@tty1.service`, or the template's `DefaultInstance=`) is linked
//! under the instance's name to the template's file, as systemctl links
//! it. Nothing is started: an image runs no service while it is built.

use super::super::ownership::State;
use crate::dpkg::scripts::is_file_name as valid;
use crate::fstree::{Content, Node, NodeKind};

const UNIT_DIRS: [&str; 2] = ["lib/systemd/system", "usr/lib/systemd/system"];
const STATE_DIR: &str = "var/lib/systemd/deb-systemd-helper-enabled";
/// How many units `Also=` may lead to from one `enable`.
const MAX_ALSO: usize = 16;
/// The largest unit or init script read.
const MAX_READ: u64 = 1 << 20;

fn text(state: &State, key: &str) -> Option<String> {
    let hs = state.holders.get(key)?;
    match &state.trees[hs[0]].get(key)?.kind {
        NodeKind::File(c) if c.size() <= MAX_READ => c
            .read_all()
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

/// A link `key` → `target` owned by `j`, unless something is there.
fn link(
    state: &mut State,
    j: usize,
    key: String,
    target: &str,
    epoch: u64,
) -> Result<bool, String> {
    if state.holders.contains_key(&key) {
        return Ok(false);
    }
    state
        .place(j, key, Node::symlink(target, 0, 0, epoch))
        .map_err(|e| e.to_string())?;
    Ok(true)
}

/// `update-rc.d NAME defaults`.
pub(super) fn rc_defaults(
    state: &mut State,
    j: usize,
    name: &str,
    epoch: u64,
) -> Result<String, String> {
    let script = format!("etc/init.d/{name}");
    let Some(body) = text(state, &script) else {
        return Err(format!("/{script} is not installed"));
    };
    let field = |f: &str| -> Vec<String> {
        body.lines()
            .skip_while(|l| !l.starts_with("### BEGIN INIT INFO"))
            .take_while(|l| !l.starts_with("### END INIT INFO"))
            .find_map(|l| {
                l.trim_start_matches('#')
                    .trim()
                    .strip_prefix(f)
                    .map(str::to_string)
            })
            .map(|v| {
                v.trim_start_matches(':')
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut made = Vec::new();
    for (prefix, levels) in [("S", field("Default-Start")), ("K", field("Default-Stop"))] {
        for level in levels {
            if !(level == "S" || (level.len() == 1 && level.as_bytes()[0].is_ascii_digit())) {
                continue;
            }
            let key = format!("etc/rc{level}.d/{prefix}01{name}");
            if link(state, j, key.clone(), &format!("../init.d/{name}"), epoch)? {
                made.push(format!("/{key}"));
            }
        }
    }
    Ok(format!("links {}", made.join(", ")))
}

/// Which of a unit's links and deb-systemd-helper's state are made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Enable {
    /// `deb-systemd-helper enable`: the links and the state.
    Helper,
    /// `deb-systemd-helper update-state`: the state only.
    StateOnly,
    /// `systemctl enable`: the links only.
    Systemctl,
}

/// The unit file of `unit` and the name its links take: the unit itself,
/// or for an instance the template (`getty@tty1.service` →
/// `getty@.service`).
fn unit_file(state: &State, unit: &str) -> Option<(&'static str, String, String)> {
    let find = |name: &str| {
        UNIT_DIRS
            .iter()
            .find_map(|d| text(state, &format!("{d}/{name}")).map(|t| (*d, t)))
    };
    if let Some((dir, body)) = find(unit) {
        return Some((dir, unit.to_string(), body));
    }
    let (prefix, rest) = unit.split_once('@')?;
    let (_, suffix) = rest.rsplit_once('.')?;
    let template = format!("{prefix}@.{suffix}");
    find(&template).map(|(dir, body)| (dir, template, body))
}

/// `deb-systemd-helper enable UNIT` and its kin (see `Enable`).
pub(super) fn enable(
    state: &mut State,
    j: usize,
    unit: &str,
    how: Enable,
    epoch: u64,
) -> Result<String, String> {
    let mut queue = vec![unit.to_string()];
    let mut done: Vec<String> = Vec::new();
    let mut made = Vec::new();
    // Per unit met: the units its `Also=` names, and its own links.
    let mut found: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    while let Some(unit) = queue.pop() {
        if done.contains(&unit) || done.len() >= MAX_ALSO {
            continue;
        }
        done.push(unit.clone());
        let Some((dir, file, body)) = unit_file(state, &unit) else {
            if made.is_empty() && done.len() == 1 {
                return Err(format!("no unit file {unit} is installed"));
            }
            continue;
        };
        // The unit as deb-systemd-helper names it: under /lib, where
        // bookworm's units are, before merged /usr.
        let target = format!("/{}/{file}", dir.trim_start_matches("usr/"));
        // A template is linked as an instance: the one named, else its
        // DefaultInstance; without one, there is nothing to link.
        let instance = match unit.split_once('@') {
            Some((_, rest)) if rest.starts_with('.') => body
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("DefaultInstance="))
                .map(str::trim)
                .filter(|i| valid(i))
                .map(|i| unit.replacen("@.", &format!("@{i}."), 1)),
            _ => Some(unit.clone()),
        };
        let Some(name) = instance else {
            continue;
        };
        let instance_of = |n: String| match name.split_once('@') {
            Some((_, rest)) if n.contains("@.") => {
                let inst = rest.rsplit_once('.').map_or("", |(i, _)| i);
                n.replacen("@.", &format!("@{inst}."), 1)
            }
            _ => n,
        };
        let mut aliases = Vec::new();
        let mut wants = Vec::new();
        let mut also_of: Vec<String> = Vec::new();
        let mut section = "";
        for line in body.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line;
                continue;
            }
            if section != "[Install]" {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let names = v
                .split_whitespace()
                .filter(|n| valid(n))
                .map(str::to_string);
            match k.trim() {
                "Alias" => aliases.extend(names.map(instance_of)),
                "WantedBy" => wants.extend(names.map(|t| format!("{t}.wants"))),
                "RequiredBy" => wants.extend(names.map(|t| format!("{t}.requires"))),
                "Also" => also_of.extend(names),
                _ => {}
            }
        }
        // The stack takes them in order.
        queue.extend(also_of.iter().rev().cloned());
        let mut links: Vec<String> = aliases;
        links.extend(wants.into_iter().map(|w| format!("{w}/{name}")));
        let mut own = Vec::new();
        for rel in links {
            let key = format!("etc/systemd/system/{rel}");
            if how != Enable::StateOnly {
                link(state, j, key.clone(), &target, epoch)?;
                made.push(format!("/{key}"));
            }
            own.push(format!("/{key}"));
            let mirror = format!("{STATE_DIR}/{rel}");
            if how == Enable::Helper && !state.holders.contains_key(&mirror) {
                state
                    .place(
                        j,
                        mirror,
                        Node::file(Content::bytes(Vec::new()), 0o644, 0, 0, epoch),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
        found.push((unit.clone(), also_of, own));
    }
    // deb-systemd-helper records in UNIT.dsh-also every link its enable
    // made: those of the units it names in `Also=` (enabled first, in
    // order), then its own; systemctl keeps no such record.
    fn full(
        unit: &str,
        found: &[(String, Vec<String>, Vec<String>)],
        seen: &mut Vec<String>,
    ) -> Vec<String> {
        if seen.iter().any(|u| u == unit) {
            return Vec::new();
        }
        seen.push(unit.to_string());
        let Some((_, also, own)) = found.iter().find(|(u, _, _)| u == unit) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in also {
            out.extend(full(a, found, seen));
        }
        out.extend(own.iter().cloned());
        out
    }
    if how != Enable::Systemctl {
        for (unit, _, _) in &found {
            let links = full(unit, &found, &mut Vec::new());
            if links.is_empty() {
                continue;
            }
            let key = format!("{STATE_DIR}/{unit}.dsh-also");
            if !state.holders.contains_key(&key) {
                let text: String = links.iter().map(|l| format!("{l}\n")).collect();
                state
                    .place(
                        j,
                        key,
                        Node::file(Content::bytes(text.into_bytes()), 0o644, 0, 0, epoch),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    if how == Enable::StateOnly {
        return Ok(format!("/{STATE_DIR}/{unit}.dsh-also"));
    }
    Ok(format!("links {}", made.join(", ")))
}
