//! /etc/ld.so.cache as libc-bin's `ldconfig` trigger leaves it after apt
//! installs packages: glibc 2.33+'s format (`glibc-ld.so.cache1.1`, no old
//! libc5 part), built from the image's ld.so.conf and glibc's built-in
//! directories, byte for byte what `ldconfig -X -r ROOT` writes for the same
//! tree (checked against the host's ldconfig in the tests).
//!
//! What it reproduces of ldconfig: directories in ld.so.conf order (with
//! `include` globs), then the built-in `/lib/<triplet>`, `/usr/lib/<triplet>`,
//! `/lib`, `/usr/lib`, a directory reached twice (merged /usr) scanned once
//! under the name it was first given; in each, every `lib*.so*`/`ld-*.so*`
//! name that is, or links to, an ELF file, keyed by its DT_SONAME; entries
//! sorted by ldconfig's library order; the string table tail-merged as
//! glibc's `stringtable_finalize` does; the generator extension naming the
//! installed libc-bin. Not reproduced: glibc-hwcaps subdirectories (Debian
//! packages do not ship them), the x86 ISA-level marks (no Debian library
//! carries them), /var/cache/ldconfig/aux-cache (inode and ctime records a
//! rebuild refreshes) and the soname links ldconfig would create (packages
//! ship them).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use crate::fstree::{ContentError, Node, NodeKind};

/// What ldconfig needs to know of the image's architecture: where glibc's
/// built-in directories are and the cache flags the loader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Machine {
    triplet: &'static str,
    /// `e_machine` of the 64-bit libraries that get `flags`.
    elf_machine: u16,
    /// FLAG_ELF_LIBC6 with the architecture's 64-bit bits, which the loader
    /// compares with its own `_DL_CACHE_DEFAULT_ID`.
    flags: i32,
}

impl Machine {
    /// The architectures whose ldconfig flags are known here; for others no
    /// cache is written and the loader searches its default directories.
    pub(crate) fn for_debian_arch(arch: &str) -> Option<Machine> {
        match arch {
            "amd64" => Some(Machine {
                triplet: "x86_64-linux-gnu",
                elf_machine: 62,
                flags: 0x0303,
            }),
            "arm64" => Some(Machine {
                triplet: "aarch64-linux-gnu",
                elf_machine: 183,
                flags: 0x0a03,
            }),
            _ => None,
        }
    }
}

/// A read-only view of the installed image, every package's tree in one.
pub(crate) struct ImageView<'a> {
    nodes: BTreeMap<&'a str, &'a Node>,
}

impl<'a> ImageView<'a> {
    pub(crate) fn new(trees: impl IntoIterator<Item = &'a crate::fstree::FsTree>) -> Self {
        let mut nodes = BTreeMap::new();
        for tree in trees {
            for (k, n) in tree.iter() {
                nodes.insert(k.as_str(), n);
            }
        }
        ImageView { nodes }
    }

    /// `path` with every symlink on the way followed inside the image (as
    /// `ldconfig -r` does), or `None` for a loop. Missing components are
    /// kept: the caller looks at what the result is.
    fn resolve(&self, path: &str) -> Option<String> {
        let mut done: Vec<String> = Vec::new();
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => {}
                ".." => {
                    done.pop();
                }
                name => {
                    done.push(name.to_string());
                    if let Some(NodeKind::Symlink(target)) =
                        self.nodes.get(done.join("/").as_str()).map(|n| &n.kind)
                    {
                        hops += 1;
                        if hops > 40 {
                            return None;
                        }
                        done.pop();
                        if target.starts_with('/') {
                            done.clear();
                        }
                        pending.extend(target.split('/').rev().map(str::to_string));
                    }
                }
            }
        }
        Some(done.join("/"))
    }

    fn is_dir(&self, key: &str) -> bool {
        match self.nodes.get(key) {
            Some(n) => n.kind == NodeKind::Dir,
            // Trees do not always list parents: a path with entries below it
            // is a directory.
            None => !self.children(key).is_empty(),
        }
    }

    /// Names directly inside directory `key`, in byte order.
    fn children(&self, key: &str) -> Vec<&'a str> {
        let prefix = format!("{key}/");
        self.nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let name = &k[prefix.len()..];
                (!name.contains('/')).then_some(name)
            })
            .collect()
    }

    /// The bytes of the regular file at `key` (a hard link read through),
    /// or `None` if it is not one.
    fn file(&self, key: &str) -> Option<Result<Vec<u8>, ContentError>> {
        match &self.nodes.get(key)?.kind {
            NodeKind::File(c) => Some(c.read_all()),
            NodeKind::Hardlink(t) => match &self.nodes.get(t.as_str())?.kind {
                NodeKind::File(c) => Some(c.read_all()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The text of the file at `path`; `None` if there is none, or it is
    /// not UTF-8 (ldconfig would find no directory names in it either).
    fn text(&self, path: &str) -> Result<Option<String>, (String, ContentError)> {
        let Some(key) = self.resolve(path) else {
            return Ok(None);
        };
        match self.file(&key) {
            None => Ok(None),
            Some(bytes) => Ok(String::from_utf8(bytes.map_err(|e| (key, e))?).ok()),
        }
    }
}

/// The most configuration files one cache reads (`ld.so.conf` and every
/// file its includes name, each time it is named), and the most
/// directories they may list: a package's includes that fan out (each file
/// including a dozen others, nine deep) would otherwise be read billions
/// of times.
pub(crate) const MAX_CONF_FILES: usize = 512;
pub(crate) const MAX_CONF_DIRS: usize = 4096;
/// How deep includes nest before the walk stops following them.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Why no cache was made.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// A package's file could not be read (its key).
    Read(String, ContentError),
    /// A limit was reached: which.
    Limit(String),
}

impl From<(String, ContentError)> for Trouble {
    fn from((key, e): (String, ContentError)) -> Trouble {
        Trouble::Read(key, e)
    }
}

/// One cache entry: the name the loader looks up and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CacheEntry {
    pub(crate) flags: i32,
    pub(crate) soname: String,
    pub(crate) path: String,
}

/// The cache for the installed image, `generator` naming the ldconfig that
/// would have written it. Errors are reading a package's file.
pub(crate) fn ld_cache(
    view: &ImageView,
    machine: Machine,
    generator: &str,
) -> Result<Vec<u8>, Trouble> {
    let entries = scan(view, machine)?;
    Ok(encode(&entries, generator))
}

/// The generator string glibc's Debian build puts in the cache, from
/// libc-bin's version (`2.36-9+deb12u14` → release 2.36).
pub(crate) fn generator(libc_bin_version: &str) -> String {
    let no_epoch = libc_bin_version
        .split_once(':')
        .map_or(libc_bin_version, |(_, v)| v);
    let upstream = no_epoch.rsplit_once('-').map_or(no_epoch, |(u, _)| u);
    let upstream = upstream.split('+').next().unwrap_or(upstream);
    format!("ldconfig (Debian GLIBC {libc_bin_version}) stable release version {upstream}")
}

/// The directories ldconfig scans, as named (no trailing slash), in order.
fn directories(view: &ImageView, machine: Machine) -> Result<Vec<String>, Trouble> {
    let mut dirs = Vec::new();
    let mut files_read = 0;
    read_conf(view, "/etc/ld.so.conf", &mut dirs, 0, &mut files_read)?;
    for d in [
        format!("/lib/{}", machine.triplet),
        format!("/usr/lib/{}", machine.triplet),
        "/lib".to_string(),
        "/usr/lib".to_string(),
    ] {
        dirs.push(d);
    }
    Ok(dirs)
}

fn read_conf(
    view: &ImageView,
    path: &str,
    dirs: &mut Vec<String>,
    depth: usize,
    files_read: &mut usize,
) -> Result<(), Trouble> {
    // Includes nest; a loop of them is cut off rather than followed.
    if depth > MAX_INCLUDE_DEPTH {
        return Ok(());
    }
    *files_read += 1;
    if *files_read > MAX_CONF_FILES {
        return Err(Trouble::Limit(format!(
            "the ld.so.conf includes name more than {MAX_CONF_FILES} files to read (at {path})"
        )));
    }
    let Some(text) = view.text(path)? else {
        return Ok(());
    };
    let conf_dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with([' ', '\t']))
        {
            for pattern in rest.split_whitespace() {
                let pattern = if pattern.starts_with('/') {
                    pattern.to_string()
                } else {
                    format!("{conf_dir}/{pattern}")
                };
                for file in glob(view, &pattern) {
                    read_conf(view, &file, dirs, depth + 1, files_read)?;
                }
            }
        } else if line.len() > 5
            && line[..5].eq_ignore_ascii_case("hwcap")
            && line[5..].starts_with([' ', '\t'])
        {
            // Obsolete; glibc ignores it too.
        } else {
            // The old `DIR=TYPE` form names the directory before `=`.
            let dir = line.split('=').next().unwrap_or(line).trim_end();
            let dir = dir.trim_end_matches('/');
            if dir.starts_with('/') {
                if dirs.len() >= MAX_CONF_DIRS {
                    return Err(Trouble::Limit(format!(
                        "the ld.so.conf files list more than {MAX_CONF_DIRS} directories (at {path})"
                    )));
                }
                dirs.push(dir.to_string());
            }
        }
    }
    Ok(())
}

/// The files matching `pattern` (wildcards in its last component only, as
/// every ld.so.conf include uses), sorted as glob(3) sorts them in the C
/// locale.
fn glob(view: &ImageView, pattern: &str) -> Vec<String> {
    let (dir, name_pattern) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if !name_pattern.contains(['*', '?', '[']) {
        return vec![pattern.to_string()];
    }
    let Some(dir_key) = view.resolve(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = view
        .children(&dir_key)
        .into_iter()
        .filter(|name| {
            // A match too costly to decide is no match: glob(3) has no
            // such bound, but no real include needs one.
            !name.starts_with('.')
                && crate::dpkg::wildcard::matches(
                    name_pattern.as_bytes(),
                    name.as_bytes(),
                    b'*',
                    b'?',
                ) == Some(true)
        })
        .map(|name| format!("{dir}/{name}"))
        .collect();
    out.sort();
    out
}

/// glibc's `_dl_is_dso`: the names ldconfig looks at.
fn is_dso_name(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

struct DirLib {
    name: String,
    soname: String,
    flags: i32,
    is_link: bool,
}

/// Every directory's libraries, in the order ldconfig adds them.
fn scan(view: &ImageView, machine: Machine) -> Result<Vec<CacheEntry>, Trouble> {
    let mut seen: Vec<String> = Vec::new();
    let mut entries: Vec<CacheEntry> = Vec::new();
    let mut read: BTreeMap<String, Option<Elf>> = BTreeMap::new();
    for dir in directories(view, machine)? {
        let Some(real) = view.resolve(&dir) else {
            continue;
        };
        if real.is_empty() || !view.is_dir(&real) || seen.contains(&real) {
            continue;
        }
        seen.push(real.clone());
        let mut libs: Vec<DirLib> = Vec::new();
        for name in view.children(&real) {
            if !is_dso_name(name) || name.ends_with(".#prelink#") || name.contains(".#prelink#.") {
                continue;
            }
            let key = format!("{real}/{name}");
            let is_link = matches!(
                view.nodes.get(key.as_str()).map(|n| &n.kind),
                Some(NodeKind::Symlink(_))
            );
            let Some(target) = view.resolve(&key) else {
                continue;
            };
            // A library is reached through its links too: read it once.
            if !read.contains_key(&target) {
                let elf = match view.file(&target) {
                    Some(bytes) => read_elf(&bytes.map_err(|e| (target.clone(), e))?),
                    None => None,
                };
                read.insert(target.clone(), elf);
            }
            let Some(elf) = &read[&target] else {
                continue; // linker scripts, other files named like libraries
            };
            let mut soname = elf.soname.clone().unwrap_or_else(|| name.to_string());
            // As ldconfig: a link keeps its own name when that is the
            // soname or the development link (`libz.so` for `libz.so.1`);
            // any other link counts as the file it reaches.
            let is_link =
                is_link && (name == soname || (name.ends_with(".so") && soname.starts_with(name)));
            if is_link {
                soname = name.to_string();
            }
            let flags = if elf.class64 && elf.machine == machine.elf_machine {
                machine.flags
            } else {
                elf.generic_flags
            };
            match libs.iter_mut().find(|l| l.soname == soname) {
                Some(old) => {
                    let newer = (!is_link && old.is_link)
                        || (is_link == old.is_link && libcmp(&old.name, name) == Ordering::Less);
                    if newer {
                        *old = DirLib {
                            name: name.to_string(),
                            soname,
                            flags,
                            is_link,
                        };
                    }
                }
                None => libs.push(DirLib {
                    name: name.to_string(),
                    soname,
                    flags,
                    is_link,
                }),
            }
        }
        for lib in libs {
            entries.push(CacheEntry {
                flags: lib.flags,
                path: format!("{dir}/{}", lib.soname),
                soname: lib.soname,
            });
        }
    }
    // ldconfig keeps its list sorted as it adds, a new entry after equal
    // ones: a stable sort in scan order.
    entries.sort_by(|a, b| libcmp(&b.soname, &a.soname).then(b.flags.cmp(&a.flags)));
    Ok(entries)
}

/// glibc's `_dl_cache_libcmp`: byte order, except that runs of digits
/// compare as numbers and a digit sorts after any other byte.
pub(crate) fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i].is_ascii_digit() {
            if j < b.len() && b[j].is_ascii_digit() {
                let (mut x, mut y) = (0u64, 0u64);
                while i < a.len() && a[i].is_ascii_digit() {
                    x = x.wrapping_mul(10).wrapping_add(u64::from(a[i] - b'0'));
                    i += 1;
                }
                while j < b.len() && b[j].is_ascii_digit() {
                    y = y.wrapping_mul(10).wrapping_add(u64::from(b[j] - b'0'));
                    j += 1;
                }
                if x != y {
                    return x.cmp(&y);
                }
            } else {
                return Ordering::Greater;
            }
        } else if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        } else if j >= b.len() || a[i] != b[j] {
            return a[i].cmp(b.get(j).unwrap_or(&0));
        } else {
            i += 1;
            j += 1;
        }
    }
    0u8.cmp(b.get(j).unwrap_or(&0))
}

struct Elf {
    class64: bool,
    machine: u16,
    soname: Option<String>,
    /// ldconfig's generic reading: libc6 if it needs libc.so.6 or libm.so.6.
    generic_flags: i32,
}

/// The parts of an ELF shared object ldconfig reads, `None` when it would
/// skip the file.
fn read_elf(b: &[u8]) -> Option<Elf> {
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return None;
    }
    let class64 = match b[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big = match b[5] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let s: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    };
    let u64_at = |o: usize| -> Option<u64> {
        let s: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    };
    let word = |o: usize| -> Option<u64> {
        if class64 {
            u64_at(o)
        } else {
            u32_at(o).map(u64::from)
        }
    };
    let e_type = u16_at(16)?;
    if e_type != 2 && e_type != 3 {
        return None; // ET_EXEC or ET_DYN only
    }
    let machine = u16_at(18)?;
    let (phoff, phentsize, phnum) = if class64 {
        (u64_at(32)?, u16_at(54)?, u16_at(56)?)
    } else {
        (u64::from(u32_at(28)?), u16_at(42)?, u16_at(44)?)
    };
    let mut load_base: Option<u64> = None;
    let mut dynamic: Option<(u64, u64)> = None;
    let mut interp: Option<&[u8]> = None;
    for i in 0..u64::from(phnum) {
        let ph = usize::try_from(phoff.checked_add(i * u64::from(phentsize))?).ok()?;
        let p_type = u32_at(ph)?;
        let (offset, vaddr, filesz) = if class64 {
            (u64_at(ph + 8)?, u64_at(ph + 16)?, u64_at(ph + 32)?)
        } else {
            (
                u64::from(u32_at(ph + 4)?),
                u64::from(u32_at(ph + 8)?),
                u64::from(u32_at(ph + 16)?),
            )
        };
        match p_type {
            1 if load_base.is_none() => load_base = Some(vaddr.wrapping_sub(offset)),
            2 => dynamic = Some((offset, filesz)),
            3 => {
                let s = b.get(usize::try_from(offset).ok()?..)?;
                interp = Some(&s[..s.iter().position(|&c| c == 0)?]);
            }
            _ => {}
        }
    }
    let (dyn_off, dyn_size) = dynamic.filter(|(_, s)| *s > 0)?;
    let entsize = if class64 { 16 } else { 8 };
    let mut strtab: Option<u64> = None;
    let mut soname_off: Option<u64> = None;
    let mut needed: Vec<u64> = Vec::new();
    let mut o = usize::try_from(dyn_off).ok()?;
    let end = o.checked_add(usize::try_from(dyn_size).ok()?)?;
    while o + entsize <= end {
        let tag = word(o)?;
        let val = word(o + entsize / 2)?;
        match tag {
            0 => break,
            1 => needed.push(val),
            5 => strtab = Some(val),
            14 => soname_off = Some(val),
            _ => {}
        }
        o += entsize;
    }
    let strings = usize::try_from(strtab?.wrapping_sub(load_base.unwrap_or(0))).ok()?;
    let string = |off: u64| -> Option<String> {
        let start = strings.checked_add(usize::try_from(off).ok()?)?;
        let s = b.get(start..)?;
        let s = &s[..s.iter().position(|&c| c == 0)?];
        Some(String::from_utf8_lossy(s).into_owned())
    };
    let mut generic_flags = 1; // FLAG_ELF
    if interp.is_some_and(|i| i.starts_with(b"/lib/ld-linux") || i.starts_with(b"/lib64/ld-linux"))
    {
        generic_flags = 3;
    }
    for n in needed {
        if matches!(string(n).as_deref(), Some("libc.so.6" | "libm.so.6")) {
            generic_flags = 3;
        }
    }
    let soname = match soname_off {
        Some(off) => Some(string(off)?),
        None => None,
    };
    Some(Elf {
        class64,
        machine,
        soname,
        generic_flags,
    })
}

const MAGIC: &[u8; 20] = b"glibc-ld.so.cache1.1";
const HEADER_LEN: usize = 48;
const ENTRY_LEN: usize = 24;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const FLAGS_LITTLE_ENDIAN: u8 = 2;

/// The cache file for `entries` (already in cache order).
pub(crate) fn encode(entries: &[CacheEntry], generator: &str) -> Vec<u8> {
    let mut strings: Vec<&str> = entries
        .iter()
        .flat_map(|e| [e.soname.as_str(), e.path.as_str()])
        .collect();
    strings.sort_unstable();
    strings.dedup();
    let (table, offsets) = string_table(&strings);
    let str_offset = HEADER_LEN + entries.len() * ENTRY_LEN;
    let at = |s: &str| -> u32 {
        let i = strings
            .binary_search(&s)
            .expect("every string is in the table");
        (str_offset + offsets[i]) as u32
    };
    let extension_offset = (str_offset + table.len()).next_multiple_of(4);
    // The cache is read by the loader of the machine it is for: written in
    // the host's byte order by ldconfig, here in the order of the only
    // machines supported (both little-endian).
    let mut out = Vec::with_capacity(extension_offset + 24 + generator.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(table.len() as u32).to_le_bytes());
    out.push(FLAGS_LITTLE_ENDIAN);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&(extension_offset as u32).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    for e in entries {
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&at(&e.soname).to_le_bytes());
        out.extend_from_slice(&at(&e.path).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // osversion, unused
        out.extend_from_slice(&0u64.to_le_bytes()); // hwcap
    }
    out.extend_from_slice(&table);
    out.resize(extension_offset, 0);
    out.extend_from_slice(&EXTENSION_MAGIC.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // tag: generator
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&((extension_offset + 24) as u32).to_le_bytes());
    out.extend_from_slice(&(generator.len() as u32).to_le_bytes());
    out.extend_from_slice(generator.as_bytes());
    out
}

/// glibc's ldconfig string table: strings ordered by their reversed bytes,
/// descending (so a string follows the longer ones it ends), each sharing
/// the previous string's tail when it is a suffix of it. Returns the table
/// and each string's offset, in the order of `strings`.
fn string_table(strings: &[&str]) -> (Vec<u8>, Vec<usize>) {
    let mut order: Vec<usize> = (0..strings.len()).collect();
    order.sort_by(|&l, &r| {
        let (l, r) = (strings[l].as_bytes(), strings[r].as_bytes());
        // Reversed, a suffix is a prefix and compares less: descending
        // order puts the longer string first.
        r.iter().rev().cmp(l.iter().rev())
    });
    let mut offsets = vec![0usize; strings.len()];
    let mut table: Vec<u8> = Vec::new();
    let mut previous: Option<(usize, &[u8])> = None;
    for &i in &order {
        let s = strings[i].as_bytes();
        offsets[i] = match previous {
            Some((off, p)) if p.ends_with(s) => off + p.len() - s.len(),
            _ => {
                let off = table.len();
                table.extend_from_slice(s);
                table.push(0);
                off
            }
        };
        previous = Some((offsets[i], s));
    }
    (table, offsets)
}

/// Reads a cache back for the tests: each entry's flags, key and value,
/// and the generator.
#[cfg(test)]
pub(crate) fn parse(b: &[u8]) -> Option<(Vec<CacheEntry>, String)> {
    if b.get(..20)? != MAGIC || *b.get(28)? != FLAGS_LITTLE_ENDIAN {
        return None;
    }
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)) };
    let n = u32_at(20)? as usize;
    let str_at = |o: u32| -> Option<String> {
        let s = b.get(o as usize..)?;
        String::from_utf8(s[..s.iter().position(|&c| c == 0)?].to_vec()).ok()
    };
    let mut entries = Vec::new();
    for i in 0..n {
        let e = HEADER_LEN + i * ENTRY_LEN;
        entries.push(CacheEntry {
            flags: u32_at(e)? as i32,
            soname: str_at(u32_at(e + 4)?)?,
            path: str_at(u32_at(e + 8)?)?,
        });
    }
    let ext = u32_at(32)? as usize;
    if u32_at(ext)? != EXTENSION_MAGIC {
        return None;
    }
    let off = u32_at(ext + 16)? as usize;
    let len = u32_at(ext + 20)? as usize;
    let generator = String::from_utf8(b.get(off..off + len)?.to_vec()).ok()?;
    Some((entries, generator))
}

#[cfg(test)]
pub(super) mod tests;
