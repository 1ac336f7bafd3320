//! `ucf` and `ucfr`, read as their getopt specifications take them
//! (ucf 3.0043: `ucf [OPTIONS] NEW DEST`, `ucfr [OPTIONS] PACKAGE DEST`).
//! On a first install ucf copies NEW to DEST and records its md5 and,
//! with `--three-way` or for a small file, a cached copy; ucfr records
//! which package owns DEST. Options that change where ucf keeps its state
//! or make it do nothing are refused: the command is then skipped.

use super::Action;

/// What `ucf` is asked to do on a first install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ucf {
    /// The new version of the file (NEW), absolute.
    pub new: String,
    /// The configuration file ucf manages (DEST), absolute.
    pub dest: String,
    /// `--three-way`: the new file is cached whatever its size.
    pub three_way: bool,
    /// Where NEW is a temporary copy of `new` (`$(mktemp)`): the lines
    /// of the edits to it that run only under a condition the reader
    /// cannot decide (a debconf answer), which the copy does not have.
    pub unapplied: Vec<usize>,
    /// The temporary file's mode, where the copy into it kept mktemp's
    /// 0600 (`cp` without `-p` or `-a`); ucf's `cp -p` carries it on.
    pub mode: Option<u32>,
    /// What the script wrote into the temporary file NEW, when it wrote
    /// it rather than copied an installed file.
    pub content: Option<Vec<u8>>,
}

/// Whether `arg` is one of ucf's options that take a value, and whether
/// the value is the next word (`--sum-file FILE`, `-s DIR`) rather than
/// attached (`--sum-file=FILE`, `-sDIR`). getopt's `-a` lets long options
/// start with one dash.
fn valued(arg: &str) -> Option<bool> {
    const LONG: [&str; 4] = ["src-dir", "sum-file", "package", "debconf-template"];
    let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if name.starts_with("state-dir") || name.starts_with("dest-dir") {
        return None;
    }
    if LONG.contains(&name) {
        return Some(true);
    }
    if let Some((n, _)) = name.split_once('=') {
        if LONG.contains(&n) {
            return Some(false);
        }
    }
    if !arg.starts_with("--") && (name.starts_with('s') || name.starts_with('P')) {
        return Some(name.len() == 1);
    }
    None
}

/// ucf's and ucfr's debug options, whose level is attached if given.
fn is_debug(arg: &str) -> bool {
    ["-d", "-D", "--debug", "--DEBUG"]
        .iter()
        .any(|d| arg.starts_with(d))
}

/// Reads `ucf`'s arguments (after the command name).
pub(super) fn parse_ucf(args: &[&str]) -> Result<Action, String> {
    let mut three_way = false;
    let mut files = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        match a {
            "--" => {
                files.extend_from_slice(&args[i..]);
                break;
            }
            "--three-way" | "-three-way" => three_way = true,
            "--debconf-ok" | "-debconf-ok" | "-Z" | "-v" | "--verbose" | "-verbose" => {}
            "-n" | "--no-action" | "-p" | "--purge" | "-h" | "--help" => {
                return Err(format!(
                    "`ucf {a}` changes no file on a first install, or only prints"
                ));
            }
            _ if a.starts_with('-') => {
                if let Some(next) = valued(a) {
                    if next {
                        i += 1;
                    }
                } else if !is_debug(a) {
                    return Err(format!(
                        "ucf with an option the reader does not follow (`{}`)",
                        a.escape_debug()
                    ));
                }
            }
            _ => files.push(a),
        }
    }
    match files.as_slice() {
        [new, dest] if new.starts_with('/') && dest.starts_with('/') => Ok(Action::Ucf(Ucf {
            new: new.to_string(),
            dest: dest.to_string(),
            three_way,
            unapplied: Vec::new(),
            mode: None,
            content: None,
        })),
        _ => Err(String::from(
            "ucf takes two absolute paths, NEW and DEST, which the reader could not tell",
        )),
    }
}

/// Reads `ucfr`'s arguments (after the command name).
pub(super) fn parse_ucfr(args: &[&str]) -> Result<Action, String> {
    let mut words = Vec::new();
    for a in args {
        match *a {
            "-f" | "--force" | "-force" | "-v" | "--verbose" | "-verbose" => {}
            "-p" | "--purge" | "-n" | "--no-action" | "-h" | "--help" => {
                return Err(format!(
                    "`ucfr {a}` changes no registration on a first install"
                ));
            }
            _ if is_debug(a) => {}
            _ if a.starts_with('-') => {
                return Err(format!(
                    "ucfr with an option the reader does not follow (`{}`)",
                    a.escape_debug()
                ))
            }
            _ => words.push(*a),
        }
    }
    match words.as_slice() {
        [package, dest] if dest.starts_with('/') && super::is_file_name(package) => {
            Ok(Action::Ucfr {
                package: package.to_string(),
                dest: dest.to_string(),
            })
        }
        _ => Err(String::from(
            "ucfr takes a package name and an absolute path, which the reader could not tell",
        )),
    }
}
