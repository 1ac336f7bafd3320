//! What a command writes to the file system, seen by strace: every path
//! it creates, opens for writing, renames, links or removes, resolved
//! to an absolute path (strace `-y` names the folder of every `*at`
//! call's descriptor, and the file an `open` returned). For "nothing
//! outside the output and the cache is written".

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system calls that change the file system by path.
const WRITES: &str = "openat,open,creat,mkdir,mkdirat,unlink,unlinkat,rmdir,rename,renameat,renameat2,link,linkat,symlink,symlinkat";

/// `cmd` run under strace (every thread and child, one file per
/// process in `dir`); its status, stdout and stderr.
pub fn traced(cmd: &Command, dir: &Path) -> super::Run {
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-ff", "-y", "-qq", "-e"])
        .arg(format!("trace={WRITES}"))
        .arg("-o")
        .arg(dir.join("trace"))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        traced.current_dir(d);
    }
    super::run(&mut traced)
}

/// Every path the traced processes wrote, from the files in `dir`;
/// relative paths of calls without a folder descriptor are taken
/// against `cwd`.
pub fn written(dir: &Path, cwd: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            paths.extend(written_by(line, cwd));
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

fn written_by(line: &str, cwd: &Path) -> Vec<PathBuf> {
    let Some((call, rest)) = line.split_once('(') else {
        return Vec::new();
    };
    let Some((args, ret)) = rest.rsplit_once(") = ") else {
        return Vec::new();
    };
    if ret.starts_with('-') || ret.starts_with('?') {
        return Vec::new();
    }
    let a = split_args(args);
    let at = |dirfd: usize, name: usize| resolve(a.get(dirfd), a.get(name), cwd);
    let plain = |name: usize| resolve(None, a.get(name), cwd);
    let writing = |flags: Option<&String>| {
        flags.is_some_and(|f| {
            ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|w| f.contains(w))
        })
    };
    let opened = || {
        // `= 3</the/file>`: the file the call opened.
        ret.split_once('<')
            .and_then(|(_, p)| p.strip_suffix('>'))
            .map(PathBuf::from)
    };
    let found = match call {
        "openat" if writing(a.get(2)) => vec![opened().or_else(|| at(0, 1))],
        "open" if writing(a.get(1)) => vec![opened().or_else(|| plain(0))],
        "creat" => vec![opened().or_else(|| plain(0))],
        "mkdir" | "unlink" | "rmdir" => vec![plain(0)],
        "mkdirat" | "unlinkat" => vec![at(0, 1)],
        "rename" | "link" => vec![plain(0), plain(1)],
        "renameat" | "renameat2" | "linkat" => vec![at(0, 1), at(2, 3)],
        "symlink" => vec![plain(1)],
        "symlinkat" => vec![at(1, 2)],
        _ => Vec::new(),
    };
    found.into_iter().flatten().collect()
}

/// A `"path"` argument against a `FD</folder>` one (or `cwd`).
fn resolve(dirfd: Option<&String>, name: Option<&String>, cwd: &Path) -> Option<PathBuf> {
    let name = name?.strip_prefix('"')?.trim_end_matches("...");
    let name = name.strip_suffix('"').unwrap_or(name);
    if name.starts_with('/') {
        return Some(PathBuf::from(name));
    }
    let folder = dirfd
        .and_then(|d| d.split_once('<'))
        .and_then(|(_, f)| f.strip_suffix('>'))
        .map_or_else(|| cwd.to_path_buf(), PathBuf::from);
    Some(folder.join(name))
}

/// The arguments of a call as strace prints them, split at the commas
/// that separate them (not those inside quotes or brackets).
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped, mut depth) = (false, false, 0i32);
    for c in args.chars() {
        if quoted {
            current.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                current.push(c);
            }
            '<' | '[' | '{' | '(' => {
                depth += 1;
                current.push(c);
            }
            '>' | ']' | '}' | ')' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut current).trim().to_string()),
            c => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

#[test]
fn strace_lines_are_read_into_the_paths_written() {
    let cwd = Path::new("/work");
    let lines = [
        (
            r#"openat(AT_FDCWD</work>, "out/x", O_WRONLY|O_CREAT|O_CLOEXEC, 0666) = 3</work/out/x>"#,
            vec!["/work/out/x"],
        ),
        (
            r#"openat(AT_FDCWD</work>, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3</etc/passwd>"#,
            vec![],
        ),
        (
            r#"mkdirat(5</c/blobs>, "sha256", 0777) = 0"#,
            vec!["/c/blobs/sha256"],
        ),
        (
            r#"renameat2(4</c>, ".tmp-1", 4</c>, "a, b", RENAME_NOREPLACE) = 0"#,
            vec!["/c/.tmp-1", "/c/a, b"],
        ),
        (
            r#"unlink("rel") = -1 ENOENT (No such file or directory)"#,
            vec![],
        ),
        (
            r#"symlinkat("/x", AT_FDCWD</work>, "l") = 0"#,
            vec!["/work/l"],
        ),
    ];
    for (line, want) in lines {
        let got: Vec<PathBuf> = written_by(line, cwd);
        let want: Vec<PathBuf> = want.into_iter().map(PathBuf::from).collect();
        assert_eq!(got, want, "{line}");
    }
}
