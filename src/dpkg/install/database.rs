//! The dpkg database as dpkg itself leaves it, so `dpkg -l`, `-L`, `-S`,
//! `-V`, `debsums`, `apt-get check` and every scanner (trivy, grype and
//! syft read `status` too) see the packages:
//!
//! - `status`: every package's control paragraph with `Status: install ok
//!   installed`, the fields in dpkg's own order (its field table, then the
//!   rest as shipped), `Conffiles` with the installed files' md5, packages
//!   sorted by name and architecture;
//! - `info/<pkg>.list` (every path of the data archive, in its order,
//!   after `/.`), and each control member but `control` itself
//!   (`md5sums`, `conffiles`, maintainer scripts, `triggers`, `shlibs`,
//!   …) as `info/<pkg>.<member>`; `<pkg>:<arch>` for Multi-Arch: same
//!   packages, as dpkg names them; `info/format`;
//! - `triggers/`: the file and named trigger interests the packages'
//!   `triggers` files declare (`File`, one file per name), with dpkg's
//!   empty `Lock` and `Unincorp`;
//! - `diversions`: dash's, which its postinst makes on a first install.
//!
//! The package whose install writes each file owns it; `status` and the
//! shared files belong to the last package, whose layer is the last to
//! change them.

use std::collections::BTreeMap;

use md5::{Digest as _, Md5};

use super::ownership::State;
use super::{package_label, read_error, InstallError, Selected};
use crate::dpkg::deb::DebContents;
use crate::fstree::{self, Content, ContentReader, Node, NodeKind};

const ADMIN_DIR: &str = "var/lib/dpkg";

/// The database files about every package at once (besides `triggers/`).
pub(super) const SHARED: &[&str] = &[
    "var/lib/dpkg/status",
    "var/lib/dpkg/info/format",
    "var/lib/dpkg/lock",
    "var/lib/dpkg/lock-frontend",
    "var/lib/dpkg/statoverride",
];

/// dpkg's field table (lib/dpkg/parse.c): the order `status` lists the
/// fields it knows; any other field follows, in the order shipped.
const FIELD_ORDER: [&str; 31] = [
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
];

/// Control members that run: dpkg keeps them executable.
const SCRIPTS: [&str; 5] = ["preinst", "postinst", "prerm", "postrm", "config"];

/// Adds the database: `info/`, `status`, the trigger interests and
/// diversions.
pub(super) fn write(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    let packages = state.packages;
    if packages.is_empty() {
        return Ok(());
    }
    let file = |bytes: Vec<u8>, mode: u32| Node::file(Content::bytes(bytes), mode, 0, 0, epoch);
    let last = packages.len() - 1;
    let mut stanzas: Vec<(&str, &str, String)> = Vec::new();
    let mut file_triggers: Vec<String> = Vec::new();
    let mut named_triggers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (j, (p, deb)) in packages.iter().enumerate() {
        let stem = info_name(p, deb);
        let conffiles = conffile_lines(p, deb)?;
        stanzas.push((&p.name, &p.architecture, status_text(p, deb, &conffiles)?));
        let mut list = String::from("/.\n");
        for e in &deb.data {
            list.push('/');
            list.push_str(&e.path);
            list.push('\n');
        }
        state.place(
            j,
            format!("{ADMIN_DIR}/info/{stem}.list"),
            file(list.into_bytes(), 0o644),
        )?;
        for (member, bytes) in &deb.control {
            if member == "control" || member.contains('/') {
                continue;
            }
            let mode = if SCRIPTS.contains(&member.as_str()) {
                0o755
            } else {
                0o644
            };
            state.place(
                j,
                format!("{ADMIN_DIR}/info/{stem}.{member}"),
                file(bytes.clone(), mode),
            )?;
        }
        if !deb.control.contains_key("md5sums") {
            let md5sums = computed_md5sums(p, deb)?;
            if !md5sums.is_empty() {
                state.place(
                    j,
                    format!("{ADMIN_DIR}/info/{stem}.md5sums"),
                    file(md5sums, 0o644),
                )?;
            }
        }
        let interests = deb
            .control
            .get("triggers")
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default();
        for line in interests.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (await_, name) = match words.as_slice() {
                ["interest" | "interest-await", name] => (true, *name),
                ["interest-noawait", name] => (false, *name),
                _ => continue,
            };
            let who = if await_ {
                p.name.clone()
            } else {
                format!("{}/noawait", p.name)
            };
            if name.starts_with('/') {
                file_triggers.push(format!("{name} {who}\n"));
            } else if valid_trigger_name(name) {
                named_triggers
                    .entry(name.to_string())
                    .or_default()
                    .push(who);
            }
        }
    }
    state.place(
        last,
        format!("{ADMIN_DIR}/info/format"),
        file(b"1\n".to_vec(), 0o644),
    )?;
    stanzas.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let status: String = stanzas.into_iter().map(|(_, _, s)| s + "\n").collect();
    state.place(
        last,
        format!("{ADMIN_DIR}/status"),
        file(status.into_bytes(), 0o644),
    )?;
    let triggers = format!("{ADMIN_DIR}/triggers");
    if !file_triggers.is_empty() {
        state.place(
            last,
            format!("{triggers}/File"),
            file(file_triggers.concat().into_bytes(), 0o644),
        )?;
    }
    for (name, who) in named_triggers {
        let text: String = who.iter().map(|w| format!("{w}\n")).collect();
        state.place(
            last,
            format!("{triggers}/{name}"),
            file(text.into_bytes(), 0o644),
        )?;
    }
    state.place(last, format!("{triggers}/Lock"), file(Vec::new(), 0o600))?;
    // The lock files dpkg and apt take, as a first run leaves them.
    for lock in ["lock", "lock-frontend"] {
        state.place(last, format!("{ADMIN_DIR}/{lock}"), file(Vec::new(), 0o640))?;
    }
    state.place(
        last,
        format!("{triggers}/Unincorp"),
        file(Vec::new(), 0o644),
    )?;
    if let Some(dash) = packages.iter().position(|(p, _)| p.name == "dash") {
        // dash's postinst on a first install: `dpkg-divert --package dash
        // --no-rename --divert …distrib --add` for sh and its manual page
        // (the only diversion of a minimal system); dpkg-divert keeps its
        // list newest first.
        let diversions = "/usr/share/man/man1/sh.1.gz\n/usr/share/man/man1/sh.distrib.1.gz\ndash\n/bin/sh\n/bin/sh.distrib\ndash\n";
        state.place(
            dash,
            format!("{ADMIN_DIR}/diversions"),
            file(diversions.as_bytes().to_vec(), 0o644),
        )?;
    }
    Ok(())
}

/// A trigger name dpkg accepts (printable ASCII, no blanks), so a name
/// from a package never becomes a path.
fn valid_trigger_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// The name dpkg files a package's database entries under.
fn info_name(p: &Selected, deb: &DebContents) -> String {
    let same = deb
        .control_field("Multi-Arch")
        .is_some_and(|m| m.trim() == "same");
    if same {
        format!("{}:{}", p.name, p.architecture)
    } else {
        p.name.clone()
    }
}

fn control_text<'a>(p: &Selected, deb: &'a DebContents) -> Result<&'a str, InstallError> {
    deb.control
        .get("control")
        .and_then(|c| std::str::from_utf8(c).ok())
        .ok_or_else(|| InstallError::NoControl {
            package: package_label(p),
        })
}

/// `Conffiles` as dpkg records it: ` PATH MD5` per conffile the package
/// installs, its md5 that of the file as shipped.
fn conffile_lines(p: &Selected, deb: &DebContents) -> Result<Vec<String>, InstallError> {
    let mut out = Vec::new();
    for path in conffiles(deb) {
        let Some(content) = deb.data.iter().find_map(|e| match &e.node.kind {
            NodeKind::File(c) if e.path == path => Some(c),
            _ => None,
        }) else {
            continue;
        };
        out.push(format!(" /{path} {}", md5_of(p, &path, content)?));
    }
    Ok(out)
}

/// The control file's paragraph as dpkg's status keeps it.
fn status_text(
    p: &Selected,
    deb: &DebContents,
    conffiles: &[String],
) -> Result<String, InstallError> {
    let text = control_text(p, deb)?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().skip_while(|l| l.trim().is_empty()) {
        if line.trim().is_empty() {
            break;
        }
        match fields.last_mut() {
            Some((_, f)) if line.starts_with([' ', '\t']) => {
                f.push('\n');
                f.push_str(line);
            }
            _ => {
                let name = line.split(':').next().unwrap_or("").trim().to_string();
                fields.push((name, line.to_string()));
            }
        }
    }
    let known = |n: &str| FIELD_ORDER.iter().position(|f| f.eq_ignore_ascii_case(n));
    fields
        .retain(|(n, _)| !n.eq_ignore_ascii_case("Status") && !n.eq_ignore_ascii_case("Conffiles"));
    fields.push((
        String::from("Status"),
        String::from("Status: install ok installed"),
    ));
    if !conffiles.is_empty() {
        fields.push((
            String::from("Conffiles"),
            format!("Conffiles:\n{}", conffiles.join("\n")),
        ));
    }
    // A stable sort: known fields by dpkg's table, the rest after them in
    // the order shipped.
    fields.sort_by_key(|(n, _)| known(n).unwrap_or(FIELD_ORDER.len()));
    let mut out = String::new();
    for (_, field) in fields {
        out.push_str(&field);
        out.push('\n');
    }
    Ok(out)
}

/// The package's conffiles, as tree keys.
fn conffiles(deb: &DebContents) -> Vec<String> {
    deb.control
        .get("conffiles")
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.starts_with("remove-on-upgrade"))
        .filter_map(|l| fstree::normalize_rel(l).ok())
        .filter(|k| !k.is_empty())
        .collect()
}

fn md5_of(p: &Selected, path: &str, content: &Content) -> Result<String, InstallError> {
    let mut md5 = Md5Writer(Md5::new());
    ContentReader::default()
        .copy(content, &mut md5)
        .map_err(|source| read_error(p, path, source))?;
    Ok(hex::encode(md5.0.finalize()))
}

/// An md5sums file as dh_md5sums writes it, for a package that ships
/// none: regular files in byte order of path (it runs `LC_ALL=C sort`),
/// conffiles left out, paths as shipped.
fn computed_md5sums(p: &Selected, deb: &DebContents) -> Result<Vec<u8>, InstallError> {
    let conffiles = conffiles(deb);
    let files: BTreeMap<&str, &Content> = deb
        .data
        .iter()
        .filter_map(|e| match &e.node.kind {
            NodeKind::File(c) => Some((e.path.as_str(), c)),
            _ => None,
        })
        .collect();
    let mut lines: BTreeMap<&str, String> = BTreeMap::new();
    for e in &deb.data {
        let content = match &e.node.kind {
            NodeKind::File(c) => c,
            NodeKind::Hardlink(t) => match files.get(t.as_str()) {
                Some(c) => c,
                None => continue,
            },
            _ => continue,
        };
        if conffiles.contains(&e.path) {
            continue;
        }
        lines.insert(&e.path, md5_of(p, &e.path, content)?);
    }
    let out: String = lines
        .into_iter()
        .map(|(path, md5)| format!("{md5}  {path}\n"))
        .collect();
    Ok(out.into_bytes())
}

/// Streams file contents into an md5 hash: a package file may be large.
struct Md5Writer(Md5);

impl std::io::Write for Md5Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
