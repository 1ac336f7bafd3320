//! The plain file commands of maintainer scripts (`mkdir`, `install -d`,
//! `chown`, `chgrp`, `chmod`, `ln -s`, `cp`, `touch`,
//! `dpkg-statoverride --add`, `rm` of files, `cat > FILE <<EOF`, `echo >`,
//! `sed -i`), read into what they do to the tree.
//! Options the reader does not know make the command skipped, never
//! guessed; paths must be absolute and stay under the root.

/// What a file command does, paths absolute and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileOp {
    /// `mkdir [-p] [-m MODE]`, `install -d [-m MODE] [-o USER] [-g GROUP]`:
    /// `existing` says whether an existing directory takes the mode and
    /// owner (install does, mkdir does not).
    MakeDir {
        path: String,
        parents: bool,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
        existing: bool,
    },
    /// `recursive` for `-R`: the whole subtree.
    Chown {
        path: String,
        owner: Option<String>,
        group: Option<String>,
        recursive: bool,
    },
    Chmod {
        path: String,
        mode: Mode,
        recursive: bool,
    },
    /// `ln -s TARGET LINK`; `force` for `-f`.
    Symlink {
        target: String,
        link: String,
        force: bool,
    },
    /// `cp FROM TO`; `preserve` for `-p`/`-a`.
    Copy {
        from: String,
        to: String,
        preserve: bool,
    },
    Touch {
        path: String,
    },
    /// `cat > PATH <<EOF` (a here-document), `echo WORDS > PATH`; `append`
    /// for `>>`.
    Write {
        path: String,
        text: String,
        append: bool,
    },
    /// `rm [-f] PATH`: a file, never a folder.
    Remove {
        path: String,
        force: bool,
    },
    /// `sed -i SCRIPT PATH`.
    Edit {
        path: String,
        edit: super::sed::Edit,
    },
    /// `dpkg-statoverride --add [--update] USER GROUP MODE PATH`.
    StatOverride {
        owner: String,
        group: String,
        mode: u32,
        path: String,
        update: bool,
    },
}

/// A chmod mode: octal, or `[ugoa]*[+-=][rwxXst]*` clauses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Octal(u32),
    Symbolic(String),
}

impl Mode {
    /// The new mode of a node whose mode is `old`.
    pub(crate) fn apply(&self, old: u32, is_dir: bool) -> Option<u32> {
        match self {
            Mode::Octal(m) => Some(*m),
            Mode::Symbolic(text) => {
                let mut mode = old & 0o7777;
                for clause in text.split(',') {
                    let op_at = clause.find(['+', '-', '='])?;
                    let (who, rest) = clause.split_at(op_at);
                    let (op, perms) = rest.split_at(1);
                    let who = if who.is_empty() { "a" } else { who };
                    let mut mask = 0;
                    for w in who.chars() {
                        mask |= match w {
                            'u' => 0o4700,
                            'g' => 0o2070,
                            'o' => 0o1007,
                            'a' => 0o7777,
                            _ => return None,
                        };
                    }
                    let mut bits = 0;
                    for p in perms.chars() {
                        bits |= match p {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || old & 0o111 != 0 => 0o111,
                            'X' => 0,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => return None,
                        };
                    }
                    let bits = bits & mask;
                    mode = match op {
                        "+" => mode | bits,
                        "-" => mode & !bits,
                        _ => (mode & !(mask & 0o7777)) | bits,
                    };
                }
                Some(mode)
            }
        }
    }
}

/// How the report names an operation.
pub(crate) fn describe(op: &FileOp) -> String {
    match op {
        FileOp::MakeDir { path, .. } => format!("mkdir {path}"),
        FileOp::Chown {
            path, owner, group, ..
        } => format!(
            "chown {}{} {path}",
            owner.as_deref().unwrap_or(""),
            group.as_deref().map_or(String::new(), |g| format!(":{g}"))
        ),
        FileOp::Chmod { path, mode, .. } => match mode {
            Mode::Octal(m) => format!("chmod {m:o} {path}"),
            Mode::Symbolic(s) => format!("chmod {s} {path}"),
        },
        FileOp::Symlink { target, link, .. } => format!("ln -s {target} {link}"),
        FileOp::Copy { from, to, .. } => format!("cp {from} {to}"),
        FileOp::Touch { path } => format!("touch {path}"),
        FileOp::Write { path, append, .. } => {
            format!("write {path}{}", if *append { " (append)" } else { "" })
        }
        FileOp::Remove { path, .. } => format!("rm {path}"),
        FileOp::Edit { path, .. } => format!("sed -i {path}"),
        FileOp::StatOverride {
            owner,
            group,
            mode,
            path,
            ..
        } => {
            format!("dpkg-statoverride --add {owner} {group} {mode:o} {path}")
        }
    }
}

/// An octal mode; leading zeros as dpkg-statoverride and chmod take them
/// (php-common's `01733`), at most 8 characters.
fn octal(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 4 {
        return None;
    }
    Some(u32::from_str_radix(digits, 8).unwrap_or(0)).filter(|m| *m <= 0o7777)
}

fn mode(text: &str) -> Option<Mode> {
    match octal(text) {
        Some(m) => Some(Mode::Octal(m)),
        None if text.chars().all(|c| "ugoa+-=rwxXst,".contains(c)) && !text.is_empty() => {
            Some(Mode::Symbolic(text.to_string()))
        }
        None => None,
    }
}

/// `USER[:GROUP]`, `USER.GROUP` (old chown syntax), `:GROUP`.
fn owner_group(spec: &str) -> (Option<String>, Option<String>) {
    let (u, g) = match spec.split_once([':', '.']) {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    (some(u), g.and_then(some))
}

fn check_path(path: &str) -> Result<(), String> {
    if path.chars().any(char::is_control) {
        return Err(format!(
            "refused: `{}` holds control characters",
            path.escape_debug()
        ));
    }
    match crate::fstree::normalize_abs(path) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("refused: {e}")),
    }
}

/// Options, each with its value when it takes one.
type Options<'a> = Vec<(&'a str, Option<&'a str>)>;

/// Options (`-x` or `--long`) and the other words of `args` (after the
/// command name); an option in `with_value` takes the next word.
fn split<'a>(args: &[&'a str], with_value: &[&str]) -> Option<(Options<'a>, Vec<&'a str>)> {
    let mut opts = Vec::new();
    let mut words = Vec::new();
    let mut it = args.iter().copied();
    let mut only_words = false;
    while let Some(a) = it.next() {
        if only_words || !a.starts_with('-') || a == "-" {
            words.push(a);
        } else if a == "--" {
            only_words = true;
        } else if with_value.contains(&a) {
            opts.push((a, Some(it.next()?)));
        } else if let Some((o, v)) = a.split_once('=').filter(|_| a.starts_with("--")) {
            opts.push((o, Some(v)));
        } else if a.starts_with("--") {
            opts.push((a, None));
        } else {
            // Bundled short options: `-pm` is `-p -m`, with the value of
            // the last one, if it takes one, in the next word.
            let letters: Vec<char> = a[1..].chars().collect();
            for (k, c) in letters.iter().enumerate() {
                let o: &'a str = match *c {
                    'p' => "-p",
                    'm' => "-m",
                    'o' => "-o",
                    'g' => "-g",
                    'd' => "-d",
                    'f' => "-f",
                    's' => "-s",
                    'R' => "-R",
                    'a' => "-a",
                    'n' => "-n",
                    'T' => "-T",
                    'v' => "-v",
                    'h' => "-h",
                    _ => return None,
                };
                if with_value.contains(&o) {
                    let rest: String = letters[k + 1..].iter().collect();
                    let value = if rest.is_empty() {
                        it.next()?
                    } else {
                        // `-m755`: the value is the rest of the word.
                        let at = a.len() - rest.len();
                        &a[at..]
                    };
                    opts.push((o, Some(value)));
                    break;
                }
                opts.push((o, None));
            }
        }
    }
    Some((opts, words))
}

/// What a command writing `body` into `write` does: `cat` of a
/// here-document, or `echo` of words without options or backslashes
/// (dash's `echo` reads those as escapes).
pub(super) fn write(
    args: &[&str],
    op: &str,
    path: &str,
    body: Option<&str>,
) -> Result<FileOp, String> {
    let append = match op {
        ">" | ">|" | "1>" => false,
        ">>" | "1>>" => true,
        _ => return Err(format!("a redirection `{op}` the reader does not follow")),
    };
    let text = match (args, body) {
        (["cat"] | ["cat", "-"], Some(body)) => body.to_string(),
        (["cat"] | ["cat", "-"], None) => {
            return Err(String::from("a here-document the reader cannot expand"))
        }
        (["echo", words @ ..], None)
            if !words.first().is_some_and(|w| w.starts_with('-'))
                && !words.iter().any(|w| w.contains('\\')) =>
        {
            format!("{}\n", words.join(" "))
        }
        _ => {
            return Err(format!(
                "writes {path} with `{}`, which the reader does not follow",
                args[0]
            ))
        }
    };
    check_path(path)?;
    Ok(FileOp::Write {
        path: path.to_string(),
        text,
        append,
    })
}

/// What `args` (the command and its arguments) does, as one action per
/// path, or why it is not followed.
pub(super) fn parse(args: &[&str]) -> Result<Vec<FileOp>, String> {
    let unknown = || format!("`{}` with options the reader does not follow", args[0]);
    let file_op = |op| op;
    match args[0] {
        "mkdir" | "install" => {
            let (opts, words) = split(
                &args[1..],
                &["-m", "--mode", "-o", "--owner", "-g", "--group"],
            )
            .ok_or_else(unknown)?;
            let install = args[0] == "install";
            let mut parents = install;
            let (mut m, mut owner, mut group, mut dir) = (None, None, None, !install);
            for (o, v) in opts {
                match (o, v) {
                    ("-p" | "--parents", None) if !install => parents = true,
                    ("-d" | "--directory", None) if install => dir = true,
                    ("-m" | "--mode", Some(v)) => {
                        m = Some(octal(v).ok_or_else(unknown)?);
                    }
                    ("-o" | "--owner", Some(v)) if install => owner = Some(v.to_string()),
                    ("-g" | "--group", Some(v)) if install => group = Some(v.to_string()),
                    ("-v" | "--verbose", None) => {}
                    _ => return Err(unknown()),
                }
            }
            if !dir || words.is_empty() {
                return Err(unknown());
            }
            let mut out = Vec::new();
            for w in words {
                check_path(w)?;
                out.push(file_op(FileOp::MakeDir {
                    path: w.to_string(),
                    parents,
                    mode: m,
                    owner: owner.clone(),
                    group: group.clone(),
                    existing: install,
                }));
            }
            Ok(out)
        }
        "chown" | "chgrp" | "chmod" => {
            let (opts, words) = split(&args[1..], &[]).ok_or_else(unknown)?;
            let mut recursive = false;
            for (o, _) in opts {
                match o {
                    "-R" | "--recursive" => recursive = true,
                    "-h" | "-v" | "--no-dereference" => {}
                    // --reference and the rest are not followed.
                    _ => return Err(unknown()),
                }
            }
            let (spec, paths) = words.split_first().ok_or_else(unknown)?;
            if paths.is_empty() {
                return Err(unknown());
            }
            let mut out = Vec::new();
            for p in paths {
                check_path(p)?;
                let op = match args[0] {
                    "chown" => {
                        let (owner, group) = owner_group(spec);
                        FileOp::Chown {
                            path: p.to_string(),
                            owner,
                            group,
                            recursive,
                        }
                    }
                    "chgrp" => FileOp::Chown {
                        path: p.to_string(),
                        owner: None,
                        group: Some(spec.to_string()),
                        recursive,
                    },
                    _ => FileOp::Chmod {
                        path: p.to_string(),
                        mode: mode(spec).ok_or_else(unknown)?,
                        recursive,
                    },
                };
                out.push(file_op(op));
            }
            Ok(out)
        }
        "ln" => {
            let (opts, words) = split(&args[1..], &[]).ok_or_else(unknown)?;
            let mut symbolic = false;
            let mut force = false;
            for (o, _) in opts {
                match o {
                    "-s" | "--symbolic" => symbolic = true,
                    "-f" | "--force" => force = true,
                    "-n" | "-T" | "-v" | "--no-dereference" => {}
                    _ => return Err(unknown()),
                }
            }
            let [target, link] = words[..] else {
                return Err(unknown());
            };
            if !symbolic {
                return Err(unknown());
            }
            check_path(link)?;
            if target.chars().any(char::is_control) || target.is_empty() {
                return Err(unknown());
            }
            Ok(vec![file_op(FileOp::Symlink {
                target: target.to_string(),
                link: link.to_string(),
                force,
            })])
        }
        "cp" => {
            let (opts, words) = split(&args[1..], &[]).ok_or_else(unknown)?;
            let mut preserve = false;
            for (o, _) in opts {
                match o {
                    "-p" | "-a" | "--preserve" | "--archive" => preserve = true,
                    "-f" | "-v" | "--force" => {}
                    _ => return Err(unknown()),
                }
            }
            let [from, to] = words[..] else {
                return Err(unknown());
            };
            check_path(from)?;
            check_path(to)?;
            Ok(vec![file_op(FileOp::Copy {
                from: from.to_string(),
                to: to.to_string(),
                preserve,
            })])
        }
        "touch" => {
            let (opts, words) = split(&args[1..], &[]).ok_or_else(unknown)?;
            if !opts.is_empty() || words.is_empty() {
                return Err(unknown());
            }
            let mut out = Vec::new();
            for w in words {
                check_path(w)?;
                out.push(file_op(FileOp::Touch {
                    path: w.to_string(),
                }));
            }
            Ok(out)
        }
        "rm" => {
            let (opts, words) = split(&args[1..], &[]).ok_or_else(unknown)?;
            let mut force = false;
            for (o, _) in opts {
                match o {
                    "-f" | "--force" => force = true,
                    "-v" | "--verbose" => {}
                    // -r and the rest are not followed.
                    _ => return Err(unknown()),
                }
            }
            if words.is_empty() {
                return Err(unknown());
            }
            let mut out = Vec::new();
            for w in words {
                check_path(w)?;
                out.push(FileOp::Remove {
                    path: w.to_string(),
                    force,
                });
            }
            Ok(out)
        }
        "sed" => {
            let (edit, paths) = super::sed::parse_sed(&args[1..])?;
            let mut out = Vec::new();
            for p in paths {
                check_path(&p)?;
                out.push(FileOp::Edit {
                    path: p,
                    edit: edit.clone(),
                });
            }
            Ok(out)
        }
        "dpkg-statoverride" => {
            let mut update = false;
            let mut add = false;
            let mut words = Vec::new();
            for a in &args[1..] {
                match *a {
                    "--add" => add = true,
                    "--update" => update = true,
                    "--quiet" | "--force" => {}
                    w if !w.starts_with('-') => words.push(w),
                    _ => return Err(unknown()),
                }
            }
            let [owner, group, m, path] = words[..] else {
                return Err(unknown());
            };
            if !add {
                return Err(unknown());
            }
            check_path(path)?;
            let valid = |n: &str| {
                !n.is_empty()
                    && !n
                        .chars()
                        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
            };
            if !valid(owner) || !valid(group) {
                return Err(unknown());
            }
            Ok(vec![file_op(FileOp::StatOverride {
                owner: owner.to_string(),
                group: group.to_string(),
                mode: octal(m).ok_or_else(unknown)?,
                path: path.to_string(),
                update,
            })])
        }
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(args: &[&str]) -> Vec<FileOp> {
        parse(args).unwrap()
    }

    #[test]
    fn commands_become_operations() {
        assert_eq!(
            ops(&[
                "install",
                "-d",
                "-m",
                "2775",
                "-o",
                "postgres",
                "-g",
                "postgres",
                "/var/run/postgresql"
            ]),
            [FileOp::MakeDir {
                path: "/var/run/postgresql".into(),
                parents: true,
                mode: Some(0o2775),
                owner: Some("postgres".into()),
                group: Some("postgres".into()),
                existing: true,
            }]
        );
        assert_eq!(
            ops(&["chown", "redis:adm", "/var/log/redis"]),
            [FileOp::Chown {
                path: "/var/log/redis".into(),
                owner: Some("redis".into()),
                group: Some("adm".into()),
                recursive: false,
            }]
        );
        assert_eq!(
            ops(&[
                "ln",
                "-sf",
                "/etc/nginx/sites-available/default",
                "/etc/nginx/sites-enabled/default"
            ]),
            [FileOp::Symlink {
                target: "/etc/nginx/sites-available/default".into(),
                link: "/etc/nginx/sites-enabled/default".into(),
                force: true,
            }]
        );
        assert_eq!(
            Mode::Symbolic("g+s".into()).apply(0o755, true),
            Some(0o2755)
        );
        assert_eq!(
            Mode::Symbolic("u=rwx,go=".into()).apply(0o755, true),
            Some(0o700)
        );
        assert!(parse(&["chown", "--reference=/etc", "/var/lib/x"]).is_err());
        assert!(parse(&["mkdir", "/var/../../tmp/x"])
            .unwrap_err()
            .starts_with("refused"));
        assert!(parse(&["ln", "-s", "/etc/shadow", "relative/link"])
            .unwrap_err()
            .starts_with("refused"));
    }
}
