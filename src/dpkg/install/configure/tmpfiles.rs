//! `systemd-tmpfiles --create FILE…` as a postinst runs it: the named
//! tmpfiles.d(5) files read from the tree (the first of /etc, /run and
//! /usr/lib's `tmpfiles.d/FILE`), and the lines that leave something
//! lasting done through the same file operations as scripts' commands,
//! with their ownership rules: `d`/`D`/`v`/`q`/`Q` folders, `f` files
//! with their argument, `L` links, `z`/`Z` modes and owners of what is
//! there, `C` copies of files in the tree. What `--create` does not do
//! (`e`, `x`, `r` and kin, which clean or remove), boot-only lines (`!`),
//! credentials (`^`), and paths under /run, /tmp, /dev, /proc and /sys
//! (the container runtime's) are not needed in an image; attributes,
//! ACLs, device nodes and machine specifiers (`%m`, …) are skipped with
//! the reason.

use super::super::accounts::Registry;
use super::super::effects::{Outcome, ScriptEffect};
use super::super::ownership::State;
use super::file_ops::{self, Override};
use crate::dpkg::scripts::{FileOp, Mode};
use crate::fstree::{self, NodeKind};

/// Where `systemd-tmpfiles` looks for a file named without a folder, in
/// its order.
const DIRS: [&str; 4] = [
    "/etc/tmpfiles.d",
    "/run/tmpfiles.d",
    "/usr/lib/tmpfiles.d",
    "/lib/tmpfiles.d",
];
/// The runtime's folders: what lines put there is gone when a container
/// starts.
const RUNTIME: [&str; 5] = ["/run", "/tmp", "/dev", "/proc", "/sys"];
/// The most lines of one file followed.
const MAX_LINES: usize = 1024;

/// The file `systemd-tmpfiles` reads for `name`, when the tree has one.
pub(super) fn locate(
    state: &State,
    key_of: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Option<String> {
    if name.starts_with('/') {
        return Some(name.to_string());
    }
    DIRS.iter().map(|d| format!("{d}/{name}")).find(|p| {
        file_ops::resolve(state, key_of, p).is_some_and(|k| file_ops::text(state, &k).is_some())
    })
}

/// Does the lines of the tmpfiles.d file at `path` as package `j`, one
/// effect per line.
pub(super) fn apply(
    state: &mut State,
    j: usize,
    path: &str,
    registry: &Registry,
    key_of: &dyn Fn(&str) -> Option<String>,
    overrides: &mut Vec<Override>,
    epoch: u64,
) -> Vec<ScriptEffect> {
    let package = state.packages[j].0.name.clone();
    let text = file_ops::resolve(state, key_of, path).and_then(|k| file_ops::text(state, &k));
    let Some(text) = text else {
        return vec![ScriptEffect {
            package,
            source: path.to_string(),
            effect: format!("systemd-tmpfiles --create {path}"),
            outcome: Outcome::Skipped,
            detail: String::from("not a text file in the tree"),
        }];
    };
    let mut effects = Vec::new();
    for (n, raw) in text.lines().enumerate().take(MAX_LINES) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (outcome, detail) = match read_line(line) {
            Err((outcome, why)) => (outcome, why),
            Ok(l) => {
                let mut done = Vec::new();
                let mut failed = None;
                for op in ops(state, key_of, registry, &l) {
                    match file_ops::apply(state, j, &op, 0o022, registry, key_of, overrides, epoch)
                    {
                        Ok(d) => done.push(d),
                        Err(why) if l.ignore_errors => done.push(format!("ignored: {why}")),
                        Err(why) => {
                            failed = Some(why);
                            break;
                        }
                    }
                }
                match failed {
                    Some(why) => (Outcome::Skipped, why),
                    None if done.is_empty() => (Outcome::Reproduced, String::from("already so")),
                    None => (Outcome::Reproduced, done.join("; ")),
                }
            }
        };
        effects.push(ScriptEffect {
            package: package.clone(),
            source: format!("{path}:{}", n + 1),
            effect: line.to_string(),
            outcome,
            detail,
        });
    }
    effects
}

/// One line, read.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    kind: char,
    /// `+`: links and files replace what is there.
    plus: bool,
    ignore_errors: bool,
    path: String,
    /// (mode, only when created).
    mode: Option<(u32, bool)>,
    user: Option<(String, bool)>,
    group: Option<(String, bool)>,
    argument: Option<String>,
}

type Refusal = (Outcome, String);

fn read_line(line: &str) -> Result<Line, Refusal> {
    let skipped = |why: &str| (Outcome::Skipped, why.to_string());
    let not_needed = |why: &str| (Outcome::NotNeeded, why.to_string());
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..6 {
        rest = rest.trim_start();
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    let argument = match rest.trim() {
        "" | "-" => None,
        a => Some(unquote(a).ok_or_else(|| skipped("an argument the reader does not follow"))?),
    };
    let [typ, path, more @ ..] = fields.as_slice() else {
        return Err(skipped("a line without a type and a path"));
    };
    let mut chars = typ.chars();
    let kind = chars.next().unwrap_or(' ');
    let mods: String = chars.collect();
    if !mods.chars().all(|c| "+!-=~^".contains(c)) {
        return Err(skipped("a type the reader does not know"));
    }
    if mods.contains('!') {
        return Err(not_needed("only at boot (`!`)"));
    }
    if mods.contains('^') {
        return Err(not_needed(
            "from a system credential: a build passes none, and apt's install had none",
        ));
    }
    if mods.contains('~') {
        return Err(skipped(
            "a base64 argument, which the reader does not follow",
        ));
    }
    match kind {
        'd' | 'D' | 'v' | 'q' | 'Q' | 'f' | 'F' | 'L' | 'z' | 'Z' | 'C' => {}
        'e' | 'x' | 'X' | 'r' | 'R' => {
            return Err(not_needed(
                "cleans or removes, which `--create` does not do",
            ))
        }
        'h' | 'H' | 'a' | 'A' | 't' | 'T' => {
            return Err(skipped(
                "file attributes, ACLs or extended attributes, which the reader does not write",
            ))
        }
        'p' | 'c' | 'b' | 'w' => {
            return Err(skipped(
                "a fifo, a device node or a write to a file that exists, which the reader does not make",
            ))
        }
        _ => return Err(skipped("a type the reader does not know")),
    }
    if path.contains('%') {
        return Err(skipped(
            "a path with a specifier (`%m`, …) that names the running machine",
        ));
    }
    if !path.starts_with('/') || path.contains(['*', '?', '[']) {
        return Err(skipped("a path that is not one absolute file name"));
    }
    if let Some(r) = RUNTIME
        .iter()
        .find(|r| *path == **r || path.starts_with(&format!("{r}/")))
    {
        return Err((
            Outcome::NotNeeded,
            format!("under {r}, which the container runtime provides"),
        ));
    }
    let field = |k: usize| more.get(k).copied().filter(|f| *f != "-");
    let creation_only = |f: &str| match f.strip_prefix(':') {
        Some(rest) => (rest.to_string(), true),
        None => (f.to_string(), false),
    };
    let mode = match field(0) {
        None => None,
        Some(m) if m.starts_with('~') => {
            return Err(skipped(
                "a masked mode (`~`), which the reader does not follow",
            ))
        }
        Some(m) => {
            let (m, only) = creation_only(m);
            let mode = u32::from_str_radix(&m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| skipped("a mode the reader does not follow"))?;
            Some((mode, only))
        }
    };
    Ok(Line {
        kind,
        plus: mods.contains('+'),
        ignore_errors: mods.contains('-'),
        path: path.to_string(),
        mode,
        user: field(1).map(creation_only),
        group: field(2).map(creation_only),
        argument,
    })
}

/// An argument as systemd reads it: double or single quotes around it,
/// `\\`-escapes inside double ones.
fn unquote(a: &str) -> Option<String> {
    match a.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let inner = a.strip_prefix(q)?.strip_suffix(q)?;
            if q == '\'' {
                return Some(inner.to_string());
            }
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next()? {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        o => out.push(o),
                    },
                    c => out.push(c),
                }
            }
            Some(out)
        }
        _ => Some(a.to_string()),
    }
}

/// The file operations a line comes to, given what is in the tree: none
/// when it is already as the line wants it.
fn ops(
    state: &State,
    key_of: &dyn Fn(&str) -> Option<String>,
    registry: &Registry,
    l: &Line,
) -> Vec<FileOp> {
    let node = file_ops::resolve(state, key_of, &l.path).and_then(|k| file_ops::node_at(state, &k));
    let exists = node.is_some();
    let name = |f: &Option<(String, bool)>| f.as_ref().map(|(n, _)| n.clone());
    // What changes on a path that is there: the fields not marked `:`,
    // where they differ.
    let mut adjust = Vec::new();
    if let Some(n) = node.filter(|n| !matches!(n.kind, NodeKind::Symlink(_))) {
        let id = |f: &Option<(String, bool)>, of: &dyn Fn(&str) -> Option<u32>, now: u32| {
            f.as_ref()
                .filter(|(_, only)| !only)
                .filter(|(v, _)| v.parse().ok().or_else(|| of(v)) != Some(now))
                .map(|(v, _)| v.clone())
        };
        let owner = id(&l.user, &|v| registry.uid(v), n.uid);
        let group = id(&l.group, &|v| registry.gid(v), n.gid);
        let recursive = l.kind == 'Z';
        if owner.is_some()
            || group.is_some()
            || recursive && (l.user.is_some() || l.group.is_some())
        {
            adjust.push(FileOp::Chown {
                path: l.path.clone(),
                owner: owner.or_else(|| recursive.then(|| name(&l.user)).flatten()),
                group: group.or_else(|| recursive.then(|| name(&l.group)).flatten()),
                recursive,
            });
        }
        if let Some((m, false)) = l.mode {
            if m != n.mode & 0o7777 || recursive {
                adjust.push(FileOp::Chmod {
                    path: l.path.clone(),
                    mode: Mode::Octal(m),
                    recursive,
                });
            }
        }
    }
    let created = |default: u32| {
        let mut out = Vec::new();
        if l.user.is_some() || l.group.is_some() {
            out.push(FileOp::Chown {
                path: l.path.clone(),
                owner: name(&l.user),
                group: name(&l.group),
                recursive: false,
            });
        }
        out.push(FileOp::Chmod {
            path: l.path.clone(),
            mode: Mode::Octal(l.mode.map_or(default, |(m, _)| m)),
            recursive: false,
        });
        out
    };
    // systemd-tmpfiles makes a missing folder of what it creates (0755).
    let parent = fstree::parent(l.path.trim_start_matches('/'))
        .filter(|p| {
            file_ops::resolve(state, key_of, &format!("/{p}"))
                .and_then(|k| file_ops::node_at(state, &k))
                .is_none()
        })
        .map(|p| FileOp::MakeDir {
            path: format!("/{p}"),
            parents: true,
            mode: None,
            owner: None,
            group: None,
            existing: false,
        });
    let with_parent = |ops: Vec<FileOp>| parent.clone().into_iter().chain(ops).collect();
    match l.kind {
        'd' | 'D' | 'v' | 'q' | 'Q' if !exists => {
            let mut out = vec![FileOp::MakeDir {
                path: l.path.clone(),
                parents: true,
                mode: None,
                owner: None,
                group: None,
                existing: false,
            }];
            out.extend(created(0o755));
            out
        }
        'f' | 'F' if !exists => {
            let mut out = vec![FileOp::Write {
                path: l.path.clone(),
                text: l.argument.clone().unwrap_or_default(),
                append: false,
            }];
            out.extend(created(0o644));
            with_parent(out)
        }
        'C' if !exists => with_parent(match &l.argument {
            Some(from) => vec![FileOp::Copy {
                from: from.clone(),
                to: l.path.clone(),
                preserve: true,
            }],
            None => vec![FileOp::Copy {
                from: format!("/usr/share/factory{}", l.path),
                to: l.path.clone(),
                preserve: true,
            }],
        }),
        'L' => {
            let target = l
                .argument
                .clone()
                .unwrap_or_else(|| format!("/usr/share/factory{}", l.path));
            match node.map(|n| &n.kind) {
                Some(NodeKind::Symlink(t)) if *t == target => Vec::new(),
                Some(NodeKind::Dir) => Vec::new(),
                Some(_) if !l.plus => Vec::new(),
                _ => with_parent(vec![FileOp::Symlink {
                    target,
                    link: l.path.clone(),
                    force: l.plus,
                }]),
            }
        }
        _ => adjust,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_as_systemd_tmpfiles_create_reads_them() {
        let l = read_line("d- /root/.ssh :0700 root :root -").unwrap();
        assert_eq!(
            (l.kind, l.ignore_errors, l.mode, l.user, l.group),
            (
                'd',
                true,
                Some((0o700, true)),
                Some(("root".into(), false)),
                Some(("root".into(), true))
            )
        );
        let l = read_line("L+ /etc/mtab   -    -    -    -  ../proc/self/mounts").unwrap();
        assert_eq!(
            (l.plus, l.argument.as_deref()),
            (true, Some("../proc/self/mounts"))
        );
        let l = read_line("f /etc/x 0644 - - - \"two words\\n\"").unwrap();
        assert_eq!(l.argument.as_deref(), Some("two words\n"));
        for (line, outcome) in [
            ("d /run/user 0755 root root -", Outcome::NotNeeded),
            ("D! /var/x 1777 root root 10d", Outcome::NotNeeded),
            ("f^ /etc/hosts - - - - network.hosts", Outcome::NotNeeded),
            ("r! /forcefsck", Outcome::NotNeeded),
            ("x /var/tmp/systemd-private-*", Outcome::NotNeeded),
            (
                "z /var/log/journal/%m 2755 root systemd-journal - -",
                Outcome::Skipped,
            ),
            (
                "a+ /var/log/journal - - - - group:adm:r-x",
                Outcome::Skipped,
            ),
            ("h /var/log/journal - - - - +C", Outcome::Skipped),
            ("Z /var/x ~2750 root root - -", Outcome::Skipped),
            ("d relative 0755 - - -", Outcome::Skipped),
            ("c /var/x 0600 - - - 1:3", Outcome::Skipped),
        ] {
            assert_eq!(read_line(line).unwrap_err().0, outcome, "{line}");
        }
    }
}
