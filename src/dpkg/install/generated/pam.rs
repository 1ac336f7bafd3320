//! libpam-runtime's `pam-auth-update --package` on a first install: the
//! `/etc/pam.d/common-*` files from the templates in /usr/share/pam and
//! every profile in /usr/share/pam-configs that is on by default, and its
//! state in /var/lib/pam. Without them `su` and `login` stop with
//! "Critical error".
//!
//! Per file (auth, account, password, session, session-noninteractive):
//! the profiles' `Primary` lines, highest `Priority` first (then by name,
//! last first, as pam-auth-update sorts), the first taking its `-Initial`
//! form, each `success=end` becoming the jump over the rest of the block
//! (or, with none, the `null` module `[default=1] pam_permit.so`); then
//! the `Additional` lines, the last taking its `-Final` form.
//! session-noninteractive leaves out `Session-Interactive-Only` profiles.

use super::super::ownership::State;
use super::{own_file, InstallError};
use crate::fstree::NodeKind;

const PROFILES: &str = "usr/share/pam-configs/";
const TEMPLATES: &str = "usr/share/pam/";
/// The largest profile or template read.
const MAX_READ: u64 = 1 << 16;
const NULL_MODULE: &str = "[default=1]\t\t\tpam_permit.so";

struct Profile {
    name: String,
    priority: i64,
    default_on: bool,
    fields: Vec<(String, Vec<String>)>,
}

impl Profile {
    fn field(&self, name: &str) -> Option<&[String]> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.field(name)?.first().map(String::as_str)
    }
}

fn parse(name: &str, text: &str) -> Profile {
    let mut fields: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                let l = line.trim();
                if !l.is_empty() {
                    v.push(l.to_string());
                }
            }
        } else if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            let values = if v.is_empty() {
                Vec::new()
            } else {
                vec![v.to_string()]
            };
            fields.push((k.trim().to_string(), values));
        }
    }
    let mut p = Profile {
        name: name.to_string(),
        priority: 0,
        default_on: false,
        fields,
    };
    p.priority = p
        .value("Priority")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    p.default_on = p
        .value("Default")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    p
}

fn read(state: &State, key: &str) -> Result<Option<String>, InstallError> {
    let Some(hs) = state.holders.get(key) else {
        return Ok(None);
    };
    match state.trees[hs[0]].get(key).map(|n| &n.kind) {
        Some(NodeKind::File(c)) if c.size() <= MAX_READ => {
            let bytes = c
                .read_all()
                .map_err(|e| super::read_error(&state.packages[hs[0]].0, key, e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        _ => Ok(None),
    }
}

/// A profile line as pam-auth-update writes it: control, then module and
/// its arguments joined by a blank (so a module without arguments is
/// followed by one).
fn written(line: &str) -> String {
    let (control, rest) = match line.strip_prefix('[') {
        Some(r) => match r.split_once(']') {
            Some((c, rest)) => (format!("[{c}]"), rest),
            None => return line.to_string(),
        },
        None => match line.find(char::is_whitespace) {
            Some(at) => (line[..at].to_string(), &line[at..]),
            None => return line.to_string(),
        },
    };
    let gap_end = rest.len() - rest.trim_start().len();
    let gap = &rest[..gap_end];
    let mut words = rest.trim_start().splitn(2, char::is_whitespace);
    let module = words.next().unwrap_or("");
    let args = words.next().unwrap_or("").trim();
    format!("{control}{gap}{module} {args}")
}

pub(in crate::dpkg::install) fn pam_auth_update(
    state: &mut State,
    epoch: u64,
) -> Result<(), InstallError> {
    let Some(j) = state
        .packages
        .iter()
        .position(|(p, _)| p.name == "libpam-runtime")
    else {
        return Ok(());
    };
    let names: Vec<String> = state
        .holders
        .range(PROFILES.to_string()..)
        .take_while(|(k, _)| k.starts_with(PROFILES))
        .map(|(k, _)| k[PROFILES.len()..].to_string())
        .filter(|n| !n.contains('/'))
        .collect();
    let mut profiles = Vec::new();
    for name in names {
        if let Some(text) = read(state, &format!("{PROFILES}{name}"))? {
            profiles.push(parse(&name, &text));
        }
    }
    profiles.sort_by(|a, b| b.priority.cmp(&a.priority).then(b.name.cmp(&a.name)));
    let seen: String = profiles.iter().map(|p| format!("{}\n", p.name)).collect();
    let on: Vec<&Profile> = profiles.iter().filter(|p| p.default_on).collect();
    let mut files: Vec<(String, String)> = Vec::new();
    for (kind, field, var, prefix) in [
        ("auth", "Auth", "auth", "auth"),
        ("account", "Account", "account", "account"),
        ("password", "Password", "password", "password"),
        ("session", "Session", "session", "session"),
        (
            "session-noninteractive",
            "Session",
            "session_nonint",
            "session",
        ),
    ] {
        let Some(template) = read(state, &format!("{TEMPLATES}common-{kind}"))? else {
            continue;
        };
        let of_type = |t: &str| -> Vec<&Profile> {
            on.iter()
                .copied()
                .filter(|p| {
                    p.value(&format!("{field}-Type"))
                        .is_some_and(|v| v.eq_ignore_ascii_case(t))
                })
                .filter(|p| {
                    kind != "session-noninteractive"
                        || !p
                            .value("Session-Interactive-Only")
                            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
                })
                .collect()
        };
        let primary = of_type("Primary");
        let additional = of_type("Additional");
        let mut state_text = String::new();
        let mut primary_lines = Vec::new();
        if primary.is_empty() {
            state_text.push_str(&format!("Module: null\n{NULL_MODULE}\n"));
            primary_lines.push(format!("{prefix}\t{NULL_MODULE}"));
        }
        for (i, p) in primary.iter().enumerate() {
            let initial = format!("{field}-Initial");
            let lines = match p.field(&initial) {
                Some(l) if i == 0 => l,
                _ => p.field(field).unwrap_or(&[]),
            };
            state_text.push_str(&format!("Module: {}\n", p.name));
            for l in lines {
                state_text.push_str(l);
                state_text.push('\n');
                let jump = format!("success={}", primary.len() - i);
                primary_lines.push(format!(
                    "{prefix}\t{}",
                    written(&l.replace("success=end", &jump))
                ));
            }
        }
        let mut additional_lines = Vec::new();
        for (i, p) in additional.iter().enumerate() {
            let last = i + 1 == additional.len();
            let lines = match p.field(&format!("{field}-Final")) {
                Some(l) if last => l,
                _ => p.field(field).unwrap_or(&[]),
            };
            if lines.is_empty() {
                continue;
            }
            state_text.push_str(&format!("Module: {}\n", p.name));
            for l in lines {
                state_text.push_str(l);
                state_text.push('\n');
                additional_lines.push(format!("{prefix}\t{}", written(l)));
            }
        }
        // A block with no lines leaves no line at all.
        let text: String = template
            .lines()
            .flat_map(|l| match l.trim() {
                t if t == format!("${var}_primary") => primary_lines.clone(),
                t if t == format!("${var}_additional") => additional_lines.clone(),
                _ => vec![l.to_string()],
            })
            .map(|l| l + "\n")
            .collect();
        files.push((format!("etc/pam.d/common-{kind}"), text));
        files.push((format!("var/lib/pam/{kind}"), state_text));
    }
    if files.is_empty() {
        return Ok(());
    }
    files.push((String::from("var/lib/pam/seen"), seen));
    for (key, text) in files {
        if !state.holders.contains_key(&key) {
            state.place(j, key, own_file(text.into_bytes(), epoch))?;
        }
    }
    Ok(())
}
