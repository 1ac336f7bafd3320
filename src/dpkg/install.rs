//! Installing packages without running them: the .debs' file systems become
//! one `FsTree` per package, checked against each other the way dpkg checks
//! file ownership, plus what maintainer scripts would have left behind and
//! images rely on, made declaratively.
//!
//! Reproduced:
//! - merged /usr (usrmerge, debootstrap's default since bookworm): paths
//!   under /bin, /sbin, /lib, /lib32, /lib64, /libx32 are installed under
//!   /usr and `bin -> usr/bin` etc. are added. Relative symlink targets are
//!   left as shipped, which is what dpkg does on a merged system.
//! - the dpkg database, distroless style (what trivy, grype and syft read
//!   when /var/lib/dpkg/status is absent): `status.d/<pkg>` is the control
//!   file with `Status: install ok installed`, `status.d/<pkg>.md5sums` the
//!   package's md5sums. Multi-Arch packages installed for two
//!   architectures are told apart as `<pkg>:<arch>`.
//! - ca-certificates' postinst: /etc/ssl/certs/ca-certificates.crt built as
//!   `update-ca-certificates` does with the default configuration.
//! - base-passwd's postinst: its master files are handed back so the
//!   account files are written from them (see `assemble::accounts`).
//! - what the preinst and postinst say, read (never run) by `scripts`, a
//!   reader of the sh Debian's scripts mostly use: update-alternatives
//!   registrations become the links and records (`alternatives`), system
//!   accounts (`adduser --system` and kin) and every sysusers.d file
//!   become accounts (`sysusers`, given ids in `assemble::accounts`).
//!   `configure` runs all of it after every package is unpacked, as
//!   `dpkg --configure` would, and reports each effect: reproduced, not
//!   needed in an image (services, caches), or skipped with the reason.
//! - update-ca-certificates' links: /etc/ssl/certs/<name>.pem to each CA
//!   file and `openssl rehash`'s <subject hash>.<n> links (see `cert_links`).
//! - ca-certificates-java's postinst: /etc/ssl/certs/java/cacerts, the JKS
//!   store of the same CAs as the bundle (see `java_trust`); the JRE's
//!   lib/security/cacerts is the package's own symlink to it.
//! - libc-bin's ldconfig trigger: /etc/ld.so.cache for the directories in
//!   /etc/ld.so.conf(.d) and glibc's own (see `ld_cache`): byte-identical
//!   to ldconfig's on amd64 (checked against the host's and the image's
//!   own ldconfig), arm64 in the same format with its loader's flags;
//!   other architectures get none and the loader searches its default
//!   directories.
//! - tzdata's postinst with debconf's default: /etc/localtime ->
//!   /usr/share/zoneinfo/Etc/UTC and /etc/timezone; a zone a package's
//!   /etc/localtime link names is kept and written to /etc/timezone.
//! - what base-files', libc-bin's, python3's and openjdk's postinsts make
//!   from shipped defaults where nothing is installed (/etc/profile,
//!   /etc/nsswitch.conf, /var/run -> /run, …; see `postinst_defaults`).
//!
//! Knowingly skipped (and reported when a script names them): file changes
//! scripts make with commands (`mkdir`, `chown`, …), debconf questions
//! (defaults only), systemd and init integration, /etc/ca-certificates.conf, ldconfig's aux-cache (inode and
//! ctime records it rebuilds when missing), python3's byte-compiling
//! (py3compile: Python compiles on import, and writes nothing on a
//! read-only root), locale and other caches rebuilt at boot, triggers,
//! `/var/lib/dpkg/status` and `info/`, and diversions.

use std::collections::BTreeMap;

use crate::apt::Package;
use crate::dpkg::deb::DebContents;
use crate::fstree::{self, Content, FsTree, Node, NodeKind};

/// What `install` does beyond unpacking. The default does all of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallOptions {
    /// Install /bin, /sbin and /lib* under /usr and add the alias symlinks.
    pub merged_usr: bool,
    /// Write `/var/lib/dpkg/status.d/` for scanners.
    pub dpkg_status: bool,
    /// Generate the CA bundle when ca-certificates is installed.
    pub ca_bundle: bool,
    /// Read maintainer scripts and sysusers.d files for the effects an
    /// image needs (alternatives, accounts) and report every effect.
    pub scripts: bool,
    /// `dpkg --print-architecture` of the system being made, when known.
    pub native_arch: Option<String>,
    /// The recipe's alternatives choices (manual mode).
    pub alternatives: Vec<ManualChoice>,
    /// Link each CA into /etc/ssl/certs by name and by subject hash when
    /// ca-certificates is installed.
    pub ca_links: bool,
    /// Generate Java's keystore of the same CAs when ca-certificates-java
    /// is installed.
    pub java_cacerts: bool,
    /// Generate /etc/ld.so.cache when libc-bin is installed.
    pub ld_cache: bool,
    /// Set the time zone to tzdata's default, Etc/UTC, when it is installed.
    pub timezone: bool,
    /// Make what postinsts make from shipped defaults (base-files' /etc/profile
    /// and directories, libc-bin's /etc/nsswitch.conf, …).
    pub postinst_defaults: bool,
}

impl Default for InstallOptions {
    fn default() -> InstallOptions {
        InstallOptions {
            merged_usr: true,
            dpkg_status: true,
            ca_bundle: true,
            scripts: true,
            native_arch: None,
            alternatives: Vec::new(),
            ca_links: true,
            java_cacerts: true,
            ld_cache: true,
            timezone: true,
            postinst_defaults: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageSummary {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Source package name, for SBOMs.
    pub source: String,
    /// The control file's `Installed-Size` (KiB), or the package's file
    /// sizes summed and rounded up to KiB when the field is missing.
    pub installed_size_kib: u64,
    /// Absolute image path of the package's copyright file, if it has one
    /// (directly or through a /usr/share/doc symlink to another package's).
    pub copyright: Option<String>,
}

#[derive(Clone, Debug)]
pub struct InstalledPackage {
    pub summary: PackageSummary,
    /// The package's files and the generated files it owns. Parents are not
    /// completed: call `complete_parents` on the tree a layer is made from.
    pub tree: FsTree,
}

#[derive(Clone, Debug)]
pub struct Installed {
    /// In the order the packages were given.
    pub packages: Vec<InstalledPackage>,
    /// (passwd.master, group.master) when base-passwd is installed.
    pub passwd_masters: Option<(String, String)>,
    /// Accounts the packages declare, in install order.
    pub accounts: Vec<Declared>,
    /// Every maintainer-script effect and what became of it, and the
    /// alternatives chosen.
    pub report: ScriptReport,
}

impl Installed {
    /// Every package's tree in one, for a single packages layer. Conflicts
    /// were settled by `install`, so only identical files and directories
    /// overlap (a later directory's metadata wins, as a later layer's would).
    pub(crate) fn merged_tree(&self) -> FsTree {
        let mut tree = FsTree::new();
        for p in &self.packages {
            tree.overlay(p.tree.clone());
        }
        tree
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{package}: the .deb has no control file, or it is not UTF-8 text; delete it from the cache and fetch it again")]
    NoControl { package: String },
    #[error("{package}: the .deb's control file says {field} `{found}` but the package index says `{expected}`; the cached file is not the package the lock names: delete it and fetch again")]
    Mismatch {
        package: String,
        field: &'static str,
        expected: String,
        found: String,
    },
    #[error("/{path} is shipped by both {first} and {second}, differently ({detail}); drop one of them from [apt] packages (a later package may overwrite an earlier one's file only when its Replaces names it)")]
    Conflict {
        path: String,
        first: String,
        second: String,
        detail: String,
    },
    #[error("{package} installs /{path} below /{ancestor}, which {owner} ships as a {kind}; these packages cannot be installed together: drop one of them")]
    BelowNonDirectory {
        package: String,
        path: String,
        ancestor: String,
        owner: String,
        kind: &'static str,
    },
    #[error("{package} ships /{alias} as a {kind}; with merged /usr it must be a directory (installed as /usr/{alias}) or the symlink {alias} -> usr/{alias}: install without merged /usr or pick another version")]
    MergedUsrAlias {
        package: String,
        alias: String,
        kind: &'static str,
    },
    #[error("{package} ships both /{first} and /{second}, which are one path with merged /usr, differently; install without merged /usr or pick another version")]
    MergedUsrClash {
        package: String,
        first: String,
        second: String,
    },
    #[error("base-passwd is installed but /{path} is {problem}; the package is damaged: delete it from the cache and fetch it again")]
    PasswdMaster { path: String, problem: &'static str },
    #[error(transparent)]
    Alternative(#[from] alternatives::NotOffered),
    #[error("{package}: reading /{path}: {error}")]
    Read {
        package: String,
        path: String,
        error: Box<crate::fstree::ContentError>,
    },
}

/// The directories merged /usr turns into symlinks, in byte order.
const MERGED_DIRS: [&str; 6] = ["bin", "lib", "lib32", "lib64", "libx32", "sbin"];
const STATUS_DIR: &str = "var/lib/dpkg/status.d";
const CA_DIR: &str = "usr/share/ca-certificates/";
const CERTS_DIR: &str = "etc/ssl/certs";
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
const JAVA_CACERTS: &str = "etc/ssl/certs/java/cacerts";
const LD_CACHE: &str = "etc/ld.so.cache";
/// tzdata's debconf default, what a noninteractive install selects.
const DEFAULT_TIMEZONE: &str = "Etc/UTC";
const PASSWD_MASTER: &str = "usr/share/base-passwd/passwd.master";
const GROUP_MASTER: &str = "usr/share/base-passwd/group.master";

/// Installs `packages` in the given order (the resolver's order: a package
/// after those it depends on). Generated files get mtime `epoch`, mode 0644
/// and owner 0:0.
pub fn install(
    packages: &[(Package, DebContents)],
    epoch: u64,
    opts: &InstallOptions,
) -> Result<Installed, InstallError> {
    for (p, deb) in packages {
        check_identity(p, deb)?;
    }
    let mut state = State {
        packages,
        trees: vec![FsTree::new(); packages.len()],
        holders: BTreeMap::new(),
    };
    // The first package whose paths went through each merged directory.
    let mut remapped: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (j, (p, deb)) in packages.iter().enumerate() {
        for (key, node) in stage(j, p, deb, opts.merged_usr, &mut remapped)? {
            state.place(j, key, node)?;
        }
    }

    if opts.merged_usr {
        for alias in MERGED_DIRS {
            if state.holders.contains_key(alias) {
                continue; // a package ships the symlink itself
            }
            let usr = format!("usr/{alias}");
            let first_usr = state.holders.get(&usr).map(|h| h[0]);
            let owner = match (remapped.get(alias).copied(), first_usr) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(j) = owner {
                state.place(j, alias.to_string(), Node::symlink(usr, 0, 0, epoch))?;
            }
        }
    }

    if opts.dpkg_status {
        let mut name_count: BTreeMap<&str, usize> = BTreeMap::new();
        for (p, _) in packages {
            *name_count.entry(&p.name).or_default() += 1;
        }
        for (j, (p, deb)) in packages.iter().enumerate() {
            let file = if name_count[p.name.as_str()] > 1 {
                format!("{}:{}", p.name, p.architecture)
            } else {
                p.name.clone()
            };
            let own_file = |bytes: Vec<u8>| Node::file(Content::bytes(bytes), 0o644, 0, 0, epoch);
            let status = generated::status_text(p, deb)?;
            state.place(
                j,
                format!("{STATUS_DIR}/{file}"),
                own_file(status.into_bytes()),
            )?;
            let md5sums = match deb.control.get("md5sums") {
                Some(m) => m.clone(),
                None => generated::computed_md5sums(p, deb)?,
            };
            if !md5sums.is_empty() {
                state.place(j, format!("{STATUS_DIR}/{file}.md5sums"), own_file(md5sums))?;
            }
        }
    }

    if opts.ca_bundle {
        if let Some(j) = packages
            .iter()
            .position(|(p, _)| p.name == "ca-certificates")
        {
            let bundle = generated::ca_bundle(packages, &state.trees)?;
            let node = Node::file(Content::bytes(bundle), 0o644, 0, 0, epoch);
            state.place(j, CA_BUNDLE.to_string(), node)?;
        }
    }

    let configured = if opts.scripts {
        configure::configure(
            &mut state,
            opts.merged_usr,
            opts.native_arch.as_deref(),
            &opts.alternatives,
            epoch,
        )?
    } else {
        configure::Configured {
            accounts: Vec::new(),
            report: ScriptReport::default(),
        }
    };

    if opts.ca_links {
        if let Some(j) = packages
            .iter()
            .position(|(p, _)| p.name == "ca-certificates")
        {
            for (key, target) in generated::ca_links(packages, &state.trees)? {
                // A package's own file there stays, as `ln -sf` is never
                // asked to replace one in a fresh install.
                if !state.holders.contains_key(&key) {
                    state.place(j, key, Node::symlink(target, 0, 0, epoch))?;
                }
            }
        }
    }

    if opts.java_cacerts {
        if let Some(j) = packages
            .iter()
            .position(|(p, _)| p.name == "ca-certificates-java")
        {
            let store = generated::java_cacerts(packages, &state.trees, epoch)?;
            let node = Node::file(Content::bytes(store), 0o644, 0, 0, epoch);
            state.place(j, JAVA_CACERTS.to_string(), node)?;
        }
    }

    if opts.timezone {
        if let Some(j) = packages.iter().position(|(p, _)| p.name == "tzdata") {
            // The postinst keeps a zone a link already names.
            let zone = match state.holders.get("etc/localtime") {
                None => {
                    let target = format!("/usr/share/zoneinfo/{DEFAULT_TIMEZONE}");
                    state.place(
                        j,
                        "etc/localtime".into(),
                        Node::symlink(target, 0, 0, epoch),
                    )?;
                    Some(DEFAULT_TIMEZONE.to_string())
                }
                Some(hs) => match &state.trees[hs[0]].get("etc/localtime").map(|n| &n.kind) {
                    Some(NodeKind::Symlink(t)) => lexical_target("etc/localtime", t)
                        .and_then(|k| k.strip_prefix("usr/share/zoneinfo/").map(str::to_string)),
                    _ => None,
                },
            };
            if let Some(zone) = zone.filter(|_| !state.holders.contains_key("etc/timezone")) {
                let name = Content::bytes(format!("{zone}\n").into_bytes());
                let node = Node::file(name, 0o644, 0, 0, epoch);
                state.place(j, "etc/timezone".into(), node)?;
            }
        }
    }

    if opts.postinst_defaults {
        for made in postinst_defaults::made(packages, &state.trees, epoch) {
            state.make_unless_held(made)?;
        }
    }

    // Last of the generated files: ldconfig runs from libc-bin's trigger,
    // after every package is configured.
    if opts.ld_cache {
        if let Some(j) = packages.iter().position(|(p, _)| p.name == "libc-bin") {
            if let Some(cache) = generated::ld_so_cache(packages, &state.trees, &packages[j].0)? {
                let node = Node::file(Content::bytes(cache), 0o644, 0, 0, epoch);
                state.place(j, LD_CACHE.to_string(), node)?;
            }
        }
    }

    let passwd_masters = match packages.iter().position(|(p, _)| p.name == "base-passwd") {
        Some(j) => Some((
            generated::master_text(&state.trees[j], PASSWD_MASTER)?,
            generated::master_text(&state.trees[j], GROUP_MASTER)?,
        )),
        None => None,
    };

    let summaries: Vec<PackageSummary> = packages
        .iter()
        .enumerate()
        .map(|(j, (p, deb))| generated::summary(p, deb, j, &state.trees))
        .collect();
    let installed = summaries
        .into_iter()
        .zip(state.trees)
        .map(|(summary, mut tree)| {
            canonicalize_hardlinks(&mut tree);
            InstalledPackage { summary, tree }
        })
        .collect();
    Ok(Installed {
        packages: installed,
        passwd_masters,
        accounts: configured.accounts,
        report: configured.report,
    })
}

fn package_label(p: &Package) -> String {
    format!("{} {} ({})", p.name, p.version, p.architecture)
}

fn check_identity(p: &Package, deb: &DebContents) -> Result<(), InstallError> {
    let fields = deb
        .control_fields()
        .ok_or_else(|| InstallError::NoControl {
            package: package_label(p),
        })?;
    let checks = [
        ("Package", &p.name),
        ("Version", &p.version),
        ("Architecture", &p.architecture),
    ];
    for (field, expected) in checks {
        let found = fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map_or("", |(_, v)| v.as_str());
        if found != expected {
            return Err(InstallError::Mismatch {
                package: package_label(p),
                field,
                expected: expected.clone(),
                found: found.to_string(),
            });
        }
    }
    Ok(())
}

/// The merged /usr directory `key` lies in (or is), if any.
fn merged_alias(key: &str) -> Option<&'static str> {
    let first = key.split('/').next()?;
    MERGED_DIRS.iter().copied().find(|a| *a == first)
}

/// One package's entries keyed by where they are installed.
fn stage(
    j: usize,
    p: &Package,
    deb: &DebContents,
    merged_usr: bool,
    remapped: &mut BTreeMap<&'static str, usize>,
) -> Result<BTreeMap<String, Node>, InstallError> {
    let mut staged: BTreeMap<String, (Node, &str)> = BTreeMap::new();
    for entry in &deb.data {
        let mut node = entry.node.clone();
        let alias = merged_alias(&entry.path).filter(|_| merged_usr);
        let key = match alias {
            None => entry.path.clone(),
            Some(alias) if entry.path == alias => match &node.kind {
                NodeKind::Dir => {
                    remapped.entry(alias).or_insert(j);
                    format!("usr/{alias}")
                }
                NodeKind::Symlink(t)
                    if lexical_target(alias, t).as_deref() == Some(&format!("usr/{alias}")) =>
                {
                    alias.to_string()
                }
                _ => {
                    return Err(InstallError::MergedUsrAlias {
                        package: package_label(p),
                        alias: alias.to_string(),
                        kind: node.kind_name(),
                    })
                }
            },
            Some(alias) => {
                remapped.entry(alias).or_insert(j);
                format!("usr/{}", entry.path)
            }
        };
        if let NodeKind::Hardlink(target) = &mut node.kind {
            if merged_usr && merged_alias(target).is_some() {
                *target = format!("usr/{target}");
            }
        }
        match staged.get(&key) {
            None => {
                staged.insert(key, (node, entry.path.as_str()));
            }
            Some((old, _)) if old.kind == NodeKind::Dir && node.kind == NodeKind::Dir => {
                // /usr/bin's own metadata wins over a remapped /bin's.
                if entry.path == key {
                    staged.insert(key, (node, entry.path.as_str()));
                }
            }
            Some((old, _)) if equivalent(&key, old, &node) => {}
            Some((_, first)) => {
                return Err(InstallError::MergedUsrClash {
                    package: package_label(p),
                    first: first.to_string(),
                    second: entry.path.clone(),
                })
            }
        }
    }
    Ok(staged.into_iter().map(|(k, (n, _))| (k, n)).collect())
}

/// Where a symlink at `key` points, as a normalized key resolved lexically
/// (`None` if it climbs above the root).
fn lexical_target(key: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        fstree::parent(key).map_or(Vec::new(), |p| p.split('/').collect())
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Whether two packages' entries at `key` are the same thing. As in dpkg,
/// files shared by Multi-Arch packages are compared by content only.
fn equivalent(key: &str, a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Dir, NodeKind::Dir) => true,
        (NodeKind::File(x), NodeKind::File(y)) => x.same_bytes(y),
        (NodeKind::Symlink(x), NodeKind::Symlink(y)) => {
            x == y || lexical_target(key, x).is_some_and(|t| Some(t) == lexical_target(key, y))
        }
        (NodeKind::Hardlink(x), NodeKind::Hardlink(y)) => x == y,
        _ => false,
    }
}

fn describe_difference(a: &Node, b: &Node) -> String {
    match (&a.kind, &b.kind) {
        (NodeKind::File(x), NodeKind::File(y)) => format!(
            "{} bytes, {} against {} bytes, {}",
            x.size(),
            x.digest(),
            y.size(),
            y.digest()
        ),
        (NodeKind::Symlink(x), NodeKind::Symlink(y)) => format!("symlinks to `{x}` and `{y}`"),
        _ => format!("a {} and a {}", a.kind_name(), b.kind_name()),
    }
}

/// Names in a relationship field (`a (>= 1), b:any | c`), without versions
/// or architecture qualifiers.
fn relation_names(field: &str) -> impl Iterator<Item = &str> {
    field.split([',', '|']).filter_map(|r| {
        r.split([' ', '\t', '\n', '(', ':', '['])
            .find(|s| !s.is_empty())
    })
}

/// Whether `later`'s Replaces names `earlier` (or a name it Provides).
/// Version restrictions are not evaluated: a Replaces naming a package at
/// all is taken to cover the version being installed.
fn replaces(later: &Package, earlier: &Package) -> bool {
    relation_names(&later.replaces).any(|n| {
        n == earlier.name || relation_names(&earlier.provides).any(|provided| provided == n)
    })
}

struct State<'a> {
    packages: &'a [(Package, DebContents)],
    trees: Vec<FsTree>,
    /// Which packages' trees hold each path (several for shared identical
    /// files and directories, otherwise one).
    holders: BTreeMap<String, Vec<usize>>,
}

impl State<'_> {
    fn label(&self, j: usize) -> String {
        package_label(&self.packages[j].0)
    }

    /// What a postinst makes where nothing is yet; a directory the owner
    /// alone ships, with nothing below it, may become the link it migrates to.
    fn make_unless_held(&mut self, made: postinst_defaults::Made) -> Result<(), InstallError> {
        if let Some(hs) = self.holders.get(&made.key) {
            let own_empty_dir = made.migrates_dir
                && hs == &[made.owner]
                && self.trees[made.owner].get(&made.key).map(|n| &n.kind) == Some(&NodeKind::Dir)
                && !self.holders.keys().any(|k| {
                    k.strip_prefix(made.key.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
                });
            if !own_empty_dir {
                return Ok(());
            }
            self.trees[made.owner].remove(&made.key);
            self.holders.remove(&made.key);
        }
        // Below something that is not a directory (a package's own link,
        // say) the script's `mkdir -p` or `cp` would go elsewhere or fail.
        let mut cur = made.key.as_str();
        while let Some(ancestor) = fstree::parent(cur) {
            if let Some(hs) = self.holders.get(ancestor) {
                if self.trees[hs[0]].get(ancestor).map(|n| &n.kind) != Some(&NodeKind::Dir) {
                    return Ok(());
                }
            }
            cur = ancestor;
        }
        self.place(made.owner, made.key, made.node)
    }

    /// Adds package `j`'s `node` at `key`, settling what earlier packages
    /// hold there as dpkg would.
    fn place(&mut self, j: usize, key: String, node: Node) -> Result<(), InstallError> {
        let mut cur = key.as_str();
        while let Some(ancestor) = fstree::parent(cur) {
            if let Some(hs) = self.holders.get(ancestor) {
                let held = &self.trees[hs[0]]
                    .get(ancestor)
                    .expect("holders match trees")
                    .kind;
                if *held != NodeKind::Dir {
                    return Err(InstallError::BelowNonDirectory {
                        package: self.label(j),
                        path: key.clone(),
                        ancestor: ancestor.to_string(),
                        owner: self.label(hs[0]),
                        kind: self.trees[hs[0]].get(ancestor).expect("held").kind_name(),
                    });
                }
            }
            cur = ancestor;
        }
        match self.holders.get(&key).cloned() {
            None => {
                if node.kind != NodeKind::Dir {
                    let prefix = format!("{key}/");
                    let below = self.holders.range(prefix.clone()..).next();
                    if let Some((child, hs)) = below.filter(|(c, _)| c.starts_with(&prefix)) {
                        return Err(InstallError::BelowNonDirectory {
                            package: self.label(hs[0]),
                            path: child.clone(),
                            ancestor: key,
                            owner: self.label(j),
                            kind: node.kind_name(),
                        });
                    }
                }
                self.holders.insert(key.clone(), vec![j]);
            }
            Some(hs) => {
                let old = self.trees[hs[0]].get(&key).expect("holders match trees");
                if equivalent(&key, old, &node) {
                    self.holders.get_mut(&key).expect("present").push(j);
                } else if old.kind != NodeKind::Dir
                    && hs
                        .iter()
                        .all(|&h| replaces(&self.packages[j].0, &self.packages[h].0))
                {
                    for &h in &hs {
                        remove_entry(&mut self.trees[h], &key);
                    }
                    self.holders.insert(key.clone(), vec![j]);
                } else {
                    return Err(InstallError::Conflict {
                        detail: describe_difference(old, &node),
                        path: key,
                        first: self.label(hs[0]),
                        second: self.label(j),
                    });
                }
            }
        }
        self.trees[j].replace(key, node);
        Ok(())
    }
}

/// Removes `key` from `tree`; hard links to it keep its content, one of
/// them becoming the file the others link to.
fn remove_entry(tree: &mut FsTree, key: &str) {
    let Some(removed) = tree.remove(key) else {
        return;
    };
    if !matches!(removed.kind, NodeKind::File(_)) {
        return;
    }
    let links: Vec<String> = tree
        .iter()
        .filter(|(_, n)| n.kind == NodeKind::Hardlink(key.to_string()))
        .map(|(k, _)| k.clone())
        .collect();
    if let Some((first, rest)) = links.split_first() {
        tree.replace(first.clone(), removed);
        for link in rest {
            if let Some(n) = tree.get_mut(link) {
                n.kind = NodeKind::Hardlink(first.clone());
            }
        }
    }
}

/// Makes the byte-order-first path of every hard-link group the regular
/// file, since a layer's tar lists paths in byte order and a link must come
/// after its target (a package's archive order, or merged /usr, may differ).
fn canonicalize_hardlinks(tree: &mut FsTree) {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, node) in tree.iter() {
        if let NodeKind::Hardlink(target) = &node.kind {
            groups.entry(target.clone()).or_default().push(key.clone());
        }
    }
    for (target, links) in groups {
        let first = &links[0]; // keys iterate in byte order
        if *first > target {
            continue;
        }
        let Some(file) = tree.get(&target).cloned() else {
            continue;
        };
        let link_node = tree.get(first).cloned().expect("listed above");
        tree.replace(first.clone(), file);
        tree.replace(
            target.clone(),
            Node {
                kind: NodeKind::Hardlink(first.clone()),
                ..link_node
            },
        );
        for link in &links[1..] {
            if let Some(n) = tree.get_mut(link) {
                n.kind = NodeKind::Hardlink(first.clone());
            }
        }
    }
}

mod alternatives;
mod cert_links;
mod configure;
mod effects;
mod generated;
mod java_trust;
mod ld_cache;
mod postinst_defaults;
mod sysusers;

pub use alternatives::{ManualChoice, NotOffered};
pub use effects::{Outcome, ScriptEffect, ScriptReport};
pub use sysusers::{Declared, DeclaredUser};

#[cfg(test)]
mod generated_tests;
#[cfg(test)]
mod tests;
