//! Installing packages without running them: the .debs' file systems become
//! one `FsTree` per package, checked against each other the way dpkg checks
//! file ownership, plus what maintainer scripts would have left behind and
//! images rely on, made declaratively. `install` runs the passes in dpkg's
//! order; each has its own module.
//!
//! Reproduced:
//! - unpacking, with dpkg's file ownership (`ownership`: shared identical
//!   files, Replaces, conflicts) and merged /usr (`merged_usr`:
//!   usrmerge, debootstrap's default since bookworm).
//! - the dpkg database as dpkg leaves it (`database`: `status`, `info/`,
//!   trigger interests), which dpkg, apt, debsums and scanners read.
//! - what the preinst and postinst say, read (never run) by
//!   `dpkg::scripts`: `configure` applies it after every package is
//!   unpacked, as `dpkg --configure` would: update-alternatives
//!   registrations become the links and records (`configure::alternatives`),
//!   system accounts (`adduser --system` and kin) and every sysusers.d
//!   file become accounts (`configure::sysusers`, given ids in
//!   `assemble::accounts`). Every effect is reported (`effects`):
//!   reproduced, not needed in an image (services, caches), or skipped
//!   with the reason.
//! - what scripts and triggers write from the installed files
//!   (`generated`): ca-certificates' bundle and links, ca-certificates-java's
//!   trust store, libc-bin's /etc/ld.so.cache (byte-identical to ldconfig's
//!   on amd64, checked against the host's and the image's own ldconfig;
//!   arm64 in the same format with its loader's flags; other architectures
//!   get none and the loader searches its default directories), tzdata's
//!   time zone (debconf's default, Etc/UTC), what base-files', libc-bin's,
//!   python3's and openjdk's postinsts make from shipped defaults
//!   (/etc/profile, /etc/nsswitch.conf, /var/run -> /run, …), and
//!   base-passwd's master files, handed back so the account files are
//!   written from them.
//!
//! Knowingly skipped (and reported when a script names them): file changes
//! scripts make with commands (`mkdir`, `chown`, …), debconf questions
//! (defaults only), systemd and init integration,
//! /etc/ca-certificates.conf, ldconfig's aux-cache (inode and ctime records
//! it rebuilds when missing), python3's byte-compiling (py3compile: Python
//! compiles on import, and writes nothing on a read-only root), locale and
//! other caches rebuilt at boot, triggers, `/var/lib/dpkg/status` and
//! `info/`, and diversions.

use std::collections::BTreeMap;

use crate::dpkg::deb::DebContents;
use crate::fstree::{Content, ContentError, FsTree, Node, NodeKind};

use ownership::State;

/// A package selected for installation: who it is (what the lock names,
/// checked against its .deb's control file) and the fields of that control
/// file installing it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    pub version: String,
    /// Debian architecture (`amd64`, …) or `all`.
    pub architecture: String,
    /// The source package's name (the package's own when it has none).
    pub source: String,
    /// `Provides` and `Replaces` as written: a later package may take over
    /// a file of a package its Replaces names, or of one providing a name
    /// it names.
    pub provides: String,
    pub replaces: String,
}

/// What `install` does beyond unpacking. The default does all of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallOptions {
    /// Install /bin, /sbin and /lib* under /usr and add the alias symlinks.
    pub merged_usr: bool,
    /// Write the dpkg database (`/var/lib/dpkg/status`, `info/`, …).
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
    /// The account files the packages are installed over (a base image's
    /// /etc/passwd and /etc/group), when there are any; else base-passwd's
    /// masters when it is installed, else root alone.
    pub accounts_base: Option<(String, String)>,
    /// The names and ids the recipe's `[accounts]` takes.
    pub reserved: Reserved,
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
            accounts_base: None,
            reserved: Reserved::default(),
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
    /// The dpkg database's files that describe every package at once
    /// (`status`, the trigger interests, the lock files, statoverrides),
    /// and ucf's record of the files it manages (`/var/lib/ucf`): they
    /// change whenever any package does, so they are not any one
    /// package's, and go into the recipe layer beside the account files.
    pub shared: FsTree,
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
    Alternative(#[from] NotOffered),
    #[error("{package}: {what}; stele bounds the work one image's packages may ask for: drop the package or ask its maintainer")]
    TooMuchWork { package: String, what: String },
    #[error("{package}: reading /{path}: {error}")]
    Read {
        package: String,
        path: String,
        error: Box<crate::fstree::ContentError>,
    },
}

/// Installs `packages` in the given order (the resolver's order: a package
/// after those it depends on). Generated files get mtime `epoch`, mode 0644
/// and owner 0:0.
pub fn install(
    packages: &[(Selected, DebContents)],
    epoch: u64,
    opts: &InstallOptions,
) -> Result<Installed, InstallError> {
    for (p, deb) in packages {
        check_identity(p, deb)?;
    }
    let mut state = State::new(packages);
    // The first package whose paths went through each merged directory.
    let mut remapped: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (j, (p, deb)) in packages.iter().enumerate() {
        for (key, node) in merged_usr::stage(j, p, deb, opts.merged_usr, &mut remapped)? {
            state.place(j, key, node)?;
        }
    }
    if opts.merged_usr {
        merged_usr::link_aliases(&mut state, &remapped, epoch)?;
    }
    if opts.dpkg_status {
        database::write(&mut state, epoch)?;
    }
    if opts.ca_bundle {
        generated::ca_bundle(&mut state, epoch)?;
    }
    let configured = if opts.scripts {
        let seed = opts
            .accounts_base
            .clone()
            .map_or_else(|| generated::passwd_masters(&state), |b| Ok(Some(b)))?;
        let mut registry = match &seed {
            Some((p, g)) => accounts::Registry::new(
                accounts::parse_passwd(p),
                accounts::parse_group(g),
                opts.reserved.clone(),
            ),
            None => accounts::Registry::root_only(opts.reserved.clone()),
        };
        let mut overrides = Vec::new();
        let configured = configure::configure(
            &mut state,
            opts.merged_usr,
            opts.native_arch.as_deref(),
            &opts.alternatives,
            &mut registry,
            &mut overrides,
            epoch,
        )?;
        if !overrides.is_empty() {
            let text = configure::statoverride_text(&overrides);
            let last = state.packages.len() - 1;
            state.place(
                last,
                "var/lib/dpkg/statoverride".into(),
                Node::file(Content::bytes(text.into_bytes()), 0o644, 0, 0, epoch),
            )?;
        }
        configured
    } else {
        configure::Configured {
            accounts: Vec::new(),
            report: ScriptReport::default(),
            ucf: Vec::new(),
        }
    };
    if opts.ca_links {
        generated::ca_links(&mut state, epoch)?;
    }
    if opts.java_cacerts {
        generated::java_cacerts(&mut state, epoch)?;
    }
    if opts.timezone {
        generated::timezone(&mut state, epoch)?;
    }
    if opts.postinst_defaults {
        generated::postinst_defaults(&mut state, epoch)?;
        generated::shells(&mut state, epoch)?;
        generated::pam_auth_update(&mut state, epoch)?;
    }
    if opts.ca_bundle {
        generated::ca_local_dir(&mut state, epoch)?;
    }
    // Last of the generated files: ldconfig runs from libc-bin's trigger,
    // after every package is configured.
    if opts.ld_cache {
        generated::ld_so_cache(&mut state, epoch)?;
    }
    let passwd_masters = generated::passwd_masters(&state)?;
    let mut shared = FsTree::new();
    for (key, node) in &configured.ucf {
        for h in state.holders.remove(key).unwrap_or_default() {
            state.trees[h].remove(key);
        }
        shared.replace(key.clone(), node.clone());
    }
    for key in database::SHARED {
        if let Some(hs) = state.holders.remove(*key) {
            for h in hs {
                if let Some(node) = state.trees[h].remove(key) {
                    shared.replace(key.to_string(), node);
                }
            }
        }
    }
    let triggers = "var/lib/dpkg/triggers/";
    let trigger_keys: Vec<String> = state
        .holders
        .keys()
        .filter(|k| k.starts_with(triggers))
        .cloned()
        .collect();
    for key in trigger_keys {
        for h in state.holders.remove(&key).unwrap_or_default() {
            if let Some(node) = state.trees[h].remove(&key) {
                shared.replace(key.clone(), node);
            }
        }
    }

    let summaries: Vec<PackageSummary> = packages
        .iter()
        .enumerate()
        .map(|(j, (p, deb))| summary(p, deb, j, &state.trees))
        .collect();
    let installed = summaries
        .into_iter()
        .zip(state.trees)
        .map(|(summary, mut tree)| {
            ownership::canonicalize_hardlinks(&mut tree);
            InstalledPackage { summary, tree }
        })
        .collect();
    Ok(Installed {
        packages: installed,
        passwd_masters,
        shared,
        accounts: configured.accounts,
        report: configured.report,
    })
}

pub(super) fn package_label(p: &Selected) -> String {
    format!("{} {} ({})", p.name, p.version, p.architecture)
}

pub(super) fn read_error(p: &Selected, path: &str, source: ContentError) -> InstallError {
    InstallError::Read {
        package: package_label(p),
        path: path.to_string(),
        error: Box::new(source),
    }
}

fn check_identity(p: &Selected, deb: &DebContents) -> Result<(), InstallError> {
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

/// What the SBOM says of a package: its control file's facts, its
/// installed size and where its copyright file is.
fn summary(p: &Selected, deb: &DebContents, j: usize, trees: &[FsTree]) -> PackageSummary {
    let installed_size_kib = deb
        .control_field("Installed-Size")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let bytes: u64 = deb
                .data
                .iter()
                .map(|e| match &e.node.kind {
                    NodeKind::File(c) => c.size(),
                    _ => 0,
                })
                .sum();
            bytes.div_ceil(1024)
        });
    let doc = format!("usr/share/doc/{}", p.name);
    let is_file = |tree: &FsTree, key: &str| {
        matches!(
            tree.get(key).map(|n| &n.kind),
            Some(NodeKind::File(_) | NodeKind::Hardlink(_))
        )
    };
    let own = format!("{doc}/copyright");
    let copyright = if is_file(&trees[j], &own) {
        Some(format!("/{own}"))
    } else if let Some(NodeKind::Symlink(t)) = trees[j].get(&doc).map(|n| &n.kind) {
        ownership::lexical_target(&doc, t)
            .map(|dir| format!("{dir}/copyright"))
            .filter(|key| trees.iter().any(|tree| is_file(tree, key)))
            .map(|key| format!("/{key}"))
    } else {
        None
    };
    PackageSummary {
        name: p.name.clone(),
        version: p.version.clone(),
        architecture: p.architecture.clone(),
        source: p.source.clone(),
        installed_size_kib,
        copyright,
    }
}

pub(crate) mod accounts;
mod configure;
mod database;
mod effects;
mod generated;
mod merged_usr;
mod ownership;

pub use accounts::Reserved;
pub use configure::alternatives::{ManualChoice, NotOffered};
pub use configure::sysusers::{Declared, DeclaredUser};
pub use effects::{Outcome, ScriptEffect, ScriptReport};
pub(crate) use generated::{ca_store, java_trust, MAX_CA_FILE, MAX_CA_TOTAL};

#[cfg(test)]
mod tests;
