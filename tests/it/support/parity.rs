//! The reference for what packages leave behind: debootstrap's minbase
//! from the machine's own mirror (its apt configuration's first `deb`
//! source for the suite, and that source's keyring), made once per run of
//! the tests in a folder under cargo's target folder, then per package set
//! a copy of it where apt-get installs the set in a chroot. Both sides are
//! read into [`Entry`] maps (path, type, mode, owner, link target, content
//! digest) and compared; the differences apt and stele may have are the
//! ones README.md's parity table names, read from there by the tests.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

use super::{decompress, run, skip, tar_entries, Layout};

/// What both sides are compared on, per path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `d`, `-`, `l`, or `c`/`b`/`p`/`s` for what only a real system has.
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: Option<String>,
    /// sha256 of a regular file's bytes.
    pub sha256: Option<String>,
}

impl Entry {
    /// How `self` (apt's) and `other` (stele's) differ, in a few words.
    pub fn difference(&self, other: &Entry) -> Option<String> {
        let mut parts = Vec::new();
        if self.kind != other.kind {
            parts.push(format!("type {} against {}", self.kind, other.kind));
        } else {
            if self.mode != other.mode {
                parts.push(format!("mode {:04o} against {:04o}", self.mode, other.mode));
            }
            if (self.uid, self.gid) != (other.uid, other.gid) {
                parts.push(format!(
                    "owner {}:{} against {}:{}",
                    self.uid, self.gid, other.uid, other.gid
                ));
            }
            if self.link != other.link {
                parts.push(format!("link {:?} against {:?}", self.link, other.link));
            }
            if self.sha256 != other.sha256 {
                parts.push(String::from("content"));
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The machine's mirror for `suite`: its URL and keyring file, or `None`
/// (with the reason printed) when its apt configuration has none.
pub fn host_mirror(suite: &str) -> Option<(String, PathBuf)> {
    let sources = stele::apt::hostconf::host_sources(Path::new("/")).unwrap_or_default();
    let Some(source) = stele::apt::hostconf::find_host_source(&sources, suite) else {
        skip(&format!(
            "this machine's apt configuration has no `deb` source for {suite}; the parity tests need one"
        ));
        return None;
    };
    match &source.signed_by {
        Some(stele::apt::hostconf::SignedBy::Path(p)) => Some((source.uri.clone(), p.clone())),
        _ => {
            skip(&format!(
                "{}: the parity tests need a Signed-By keyring file for debootstrap",
                source.origin
            ));
            None
        }
    }
}

/// Where the reference trees are made: a folder the tests own.
fn parity_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity")
}

/// debootstrap `--variant=minbase SUITE` from the machine's mirror, made
/// once per run of the test binary (every set starts from a copy).
pub fn minbase(suite: &str) -> Option<PathBuf> {
    static MADE: OnceLock<Option<PathBuf>> = OnceLock::new();
    MADE.get_or_init(|| {
        let (mirror, keyring) = host_mirror(suite)?;
        let root = parity_root();
        let tree = root.join(format!("{suite}-minbase"));
        let done = root.join(format!("{suite}-minbase.done"));
        let reuse = std::env::var("STELE_PARITY_REUSE").is_ok_and(|v| v == "1");
        if reuse && done.exists() && tree.exists() {
            return Some(tree);
        }
        let _ = fs::remove_file(&done);
        if tree.exists() {
            remove_tree(&tree);
        }
        fs::create_dir_all(&root).unwrap();
        let r = run(Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--keyring={}", keyring.display()))
            .arg(suite)
            .arg(&tree)
            .arg(&mirror)
            .env("LC_ALL", "C"));
        assert!(r.ok(), "debootstrap failed:\n{}\n{}", r.stdout, r.stderr);
        fs::write(&done, &mirror).unwrap();
        Some(tree)
    })
    .clone()
}

/// A tree copied from `from` to `to`, owners, modes and links kept.
fn copy_tree(from: &Path, to: &Path) {
    if to.exists() {
        remove_tree(to);
    }
    let r = run(Command::new("cp").arg("-a").arg(from).arg(to));
    assert!(r.ok(), "cp -a {}: {}", from.display(), r.stderr);
}

fn remove_tree(path: &Path) {
    // A chroot's /proc left mounted by an interrupted run is unmounted
    // first, so the removal never reaches into the host's.
    let _ = Command::new("umount").arg(path.join("proc")).output();
    fs::remove_dir_all(path).unwrap_or_else(|e| panic!("removing {}: {e}", path.display()));
}

/// apt's side of one package set: minbase plus `apt-get install SET` in
/// a chroot, with services kept from starting (policy-rc.d, removed
/// again afterwards), and the packages it left as (name, version, arch).
pub struct AptTree {
    pub root: PathBuf,
    pub packages: Vec<(String, String, String)>,
}

pub fn apt_install(suite: &str, name: &str, set: &[&str]) -> Option<AptTree> {
    let base = minbase(suite)?;
    let root = parity_root().join(format!("{suite}-set-{name}"));
    copy_tree(&base, &root);
    if !set.is_empty() {
        // Each set's chroot is its own tree with its own apt locks, so the
        // installs run at once: most of their time is the download.
        let policy = root.join("usr/sbin/policy-rc.d");
        fs::write(&policy, "#!/bin/sh\nexit 101\n").unwrap();
        fs::set_permissions(&policy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mounted = run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(root.join("proc")));
        assert!(mounted.ok(), "mount proc: {}", mounted.stderr);
        let chroot = |args: &[&str]| {
            run(Command::new("chroot")
                .arg(&root)
                .args(["env", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"])
                .args(args))
        };
        let update = chroot(&["apt-get", "update", "-q"]);
        let install = if update.ok() {
            let mut args = vec!["apt-get", "install", "-y", "-q"];
            args.extend(set);
            chroot(&args)
        } else {
            update
        };
        let _ = Command::new("umount").arg(root.join("proc")).output();
        assert!(
            install.ok(),
            "apt-get install {set:?} in the chroot failed:\n{}\n{}",
            install.stdout,
            install.stderr
        );
        fs::remove_file(&policy).unwrap();
    }
    let q = run(Command::new("chroot").arg(&root).args([
        "dpkg-query",
        "-W",
        "-f",
        "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n",
    ]));
    assert!(q.ok(), "dpkg-query: {}", q.stderr);
    let packages = q
        .stdout
        .lines()
        .filter(|l| l.starts_with("ii "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect();
    Some(AptTree { root, packages })
}

fn sha256_file(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Every path of the tree at `root` (keys without a leading `/`).
pub fn read_tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let key = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let md = fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let (kind, link, sha256) = if ft.is_dir() {
                stack.push(path.clone());
                ('d', None, None)
            } else if ft.is_symlink() {
                let t = fs::read_link(&path).unwrap();
                ('l', Some(t.to_str().unwrap().to_string()), None)
            } else if ft.is_file() {
                ('-', None, Some(sha256_file(&path)))
            } else if ft.is_char_device() {
                ('c', None, None)
            } else if ft.is_block_device() {
                ('b', None, None)
            } else if ft.is_fifo() {
                ('p', None, None)
            } else {
                ('s', None, None)
            };
            let mode = if kind == 'l' {
                0o777
            } else {
                md.mode() & 0o7777
            };
            out.insert(
                key,
                Entry {
                    kind,
                    mode,
                    uid: md.uid().into(),
                    gid: md.gid().into(),
                    link,
                    sha256,
                },
            );
        }
    }
    out
}

/// The merged file system of an image's layers, applied in order
/// (whiteouts remove; hard links read as the file they share).
pub fn read_image(layout: &Layout) -> BTreeMap<String, Entry> {
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    for (media_type, blob) in &layout.layers {
        for e in tar_entries(&decompress(media_type, blob)) {
            let path = e
                .path
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
            if name == ".wh..wh..opq" {
                let prefix = format!("{dir}/");
                out.retain(|k, _| !k.starts_with(&prefix));
                continue;
            }
            if let Some(gone) = name.strip_prefix(".wh.") {
                let gone = if dir.is_empty() {
                    gone.to_string()
                } else {
                    format!("{dir}/{gone}")
                };
                let prefix = format!("{gone}/");
                out.retain(|k, _| *k != gone && !k.starts_with(&prefix));
                continue;
            }
            let entry = match e.kind {
                'h' => {
                    let target = e.link.as_deref().unwrap_or("").trim_start_matches("./");
                    let shared = out
                        .get(target)
                        .cloned()
                        .expect("hard link after its target");
                    Entry {
                        mode: e.mode & 0o7777,
                        uid: e.uid,
                        gid: e.gid,
                        ..shared
                    }
                }
                kind => Entry {
                    kind,
                    mode: if kind == 'l' { 0o777 } else { e.mode & 0o7777 },
                    uid: e.uid,
                    gid: e.gid,
                    link: e.link.clone().filter(|_| kind == 'l'),
                    sha256: (kind == '-').then(|| hex::encode(Sha256::digest(&e.data))),
                },
            };
            out.insert(path, entry);
        }
    }
    out
}

/// One row of README.md's parity table: paths (a `*` matches within one
/// component, `**` any run of them), the sets it is for (`all` or names),
/// whether stele leaves the path out on purpose (machine-specific files,
/// logs, caches: not counted in the figure) or makes it differently
/// (counted); every row must give its reason.
#[derive(Clone, Debug)]
pub struct Allowed {
    pub pattern: String,
    pub sets: Vec<String>,
    pub left_out: bool,
}

impl Allowed {
    pub fn covers(&self, set: &str, path: &str) -> bool {
        self.sets.iter().any(|s| s == "all" || s == set) && path_matches(&self.pattern, path)
    }
}

/// The rows of the README's table headed `| path | sets | kind | why |` in
/// the section `heading`.
pub fn allowed_differences(heading: &str) -> Vec<Allowed> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README.md has no section {heading}"))
        .1;
    let table = section
        .split_once("| path | sets | kind | why |")
        .unwrap_or_else(|| {
            panic!("README.md's {heading} has no `| path | sets | kind | why |` table")
        })
        .1;
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert!(
                cells.get(3).is_some_and(|r| !r.is_empty()),
                "README.md's parity table: `{l}` gives no reason"
            );
            let unquote = |s: &str| s.trim_matches('`').to_string();
            Allowed {
                pattern: unquote(cells[0]).trim_start_matches('/').to_string(),
                sets: cells[1].split(',').map(|s| unquote(s.trim())).collect(),
                left_out: match cells[2] {
                    "left out" => true,
                    "differs" => false,
                    other => panic!("README.md's parity table: kind `{other}` is neither `left out` nor `differs`"),
                },
            }
        })
        .collect()
}

/// Whether `path` matches `pattern` (`*` within a component, `**` any
/// number of components).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    fn component(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|k| component(rest, &s[k..])),
            Some((c, rest)) => s.first() == Some(c) && component(rest, &s[1..]),
        }
    }
    fn parts(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|k| parts(rest, &s[k..])),
            Some((c, rest)) => {
                !s.is_empty() && component(c.as_bytes(), s[0].as_bytes()) && parts(rest, &s[1..])
            }
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    parts(&p, &s)
}

/// The comparison of one set: apt's paths (but those left out on
/// purpose) identical in stele's image, and every difference (path,
/// what).
pub struct Comparison {
    pub reference_paths: usize,
    pub identical: usize,
    pub differences: Vec<(String, String)>,
}

impl Comparison {
    pub fn percent(&self) -> f64 {
        100.0 * self.identical as f64 / self.reference_paths as f64
    }
}

/// Compares apt's tree with stele's; `left_out` says which paths are
/// left out of the comparison on purpose (on either side).
pub fn compare(
    apt: &BTreeMap<String, Entry>,
    stele: &BTreeMap<String, Entry>,
    left_out: &dyn Fn(&str) -> bool,
) -> Comparison {
    let mut identical = 0;
    let mut differences = Vec::new();
    let mut reference_paths = 0;
    for (path, a) in apt.iter().filter(|(p, _)| !left_out(p)) {
        reference_paths += 1;
        match stele.get(path) {
            None => differences.push((path.clone(), String::from("missing from stele's image"))),
            Some(s) => match a.difference(s) {
                None => identical += 1,
                Some(d) => differences.push((path.clone(), d)),
            },
        }
    }
    for path in stele
        .keys()
        .filter(|p| !apt.contains_key(*p) && !left_out(p))
    {
        differences.push((path.clone(), String::from("only in stele's image")));
    }
    differences.sort();
    Comparison {
        reference_paths,
        identical,
        differences,
    }
}
