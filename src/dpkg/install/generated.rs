//! What maintainer scripts and triggers would have written, made from
//! the installed files, each owned by the package whose script writes it:
//! the CA bundle and its links (`cert_links`: OpenSSL's subject hash),
//! Java's trust store of the same CAs (`java_trust`), /etc/ld.so.cache
//! (`ld_cache`), the time zone, what postinsts make from shipped defaults
//! (`postinst_defaults`), and base-passwd's master files, handed back for
//! the account files. Generated files get mtime `epoch`, mode 0644 and
//! owner 0:0.

use std::collections::BTreeMap;

use super::ownership::{lexical_target, State};
use super::{package_label, read_error, InstallError, Selected};
use crate::dpkg::deb::DebContents;
use crate::fstree::{self, Content, FsTree, Node, NodeKind};
use postinst_defaults::Made;

pub(super) mod cert_links;
pub(super) mod java_trust;
pub(super) mod ld_cache;
mod pam;
pub(super) use pam::pam_auth_update;
pub(super) mod postinst_defaults;

const CA_DIR: &str = "usr/share/ca-certificates/";
const CERTS_DIR: &str = "etc/ssl/certs";
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
const JAVA_CACERTS: &str = "etc/ssl/certs/java/cacerts";
const LD_CACHE: &str = "etc/ld.so.cache";
/// tzdata's debconf default, what a noninteractive install selects.
const DEFAULT_TIMEZONE: &str = "Etc/UTC";
const PASSWD_MASTER: &str = "usr/share/base-passwd/passwd.master";
const GROUP_MASTER: &str = "usr/share/base-passwd/group.master";

/// The first of the packages named `name`, by index.
fn installed(state: &State, name: &str) -> Option<usize> {
    state.packages.iter().position(|(p, _)| p.name == name)
}

fn own_file(bytes: Vec<u8>, epoch: u64) -> Node {
    Node::file(Content::bytes(bytes), 0o644, 0, 0, epoch)
}

/// ca-certificates' postinst: /etc/ssl/certs/ca-certificates.crt as
/// `update-ca-certificates` builds it with the default configuration.
pub(super) fn ca_bundle(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    if let Some(j) = installed(state, "ca-certificates") {
        let bundle = bundle_bytes(state.packages, &state.trees)?;
        state.place(j, CA_BUNDLE.to_string(), own_file(bundle, epoch))?;
    }
    Ok(())
}

/// update-ca-certificates' links in /etc/ssl/certs: `<name>.pem` to each
/// CA file and `openssl rehash`'s `<subject hash>.<n>`.
pub(super) fn ca_links(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    if let Some(j) = installed(state, "ca-certificates") {
        for (key, target) in link_targets(state.packages, &state.trees)? {
            // A package's own file there stays, as `ln -sf` is never
            // asked to replace one in a fresh install.
            if !state.holders.contains_key(&key) {
                state.place(j, key, Node::symlink(target, 0, 0, epoch))?;
            }
        }
    }
    Ok(())
}

/// ca-certificates-java's postinst: /etc/ssl/certs/java/cacerts, the JKS
/// store of the same CAs as the bundle; the JRE's lib/security/cacerts is
/// the package's own symlink to it.
pub(super) fn java_cacerts(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    if let Some(j) = installed(state, "ca-certificates-java") {
        let store = keystore_bytes(state.packages, &state.trees, epoch)?;
        state.place(j, JAVA_CACERTS.to_string(), own_file(store, epoch))?;
    }
    Ok(())
}

/// tzdata's postinst with debconf's default: /etc/localtime ->
/// /usr/share/zoneinfo/Etc/UTC and /etc/timezone. The postinst keeps a
/// zone a link already names, and writes it to /etc/timezone.
pub(super) fn timezone(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    let Some(j) = installed(state, "tzdata") else {
        return Ok(());
    };
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
        let node = own_file(format!("{zone}\n").into_bytes(), epoch);
        state.place(j, "etc/timezone".into(), node)?;
    }
    Ok(())
}

/// debianutils' `update-shells` (its file trigger on shells.d): /etc/shells
/// from its template and every package's /usr/share/debianutils/shells.d
/// file (by name), each shell under /bin or /sbin also named under /usr
/// when /usr is merged; /var/lib/shells.state lists the shells alone.
pub(super) fn shells(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    const TEMPLATE: &str = "usr/share/debianutils/shells";
    const SHELLS_D: &str = "usr/share/debianutils/shells.d/";
    let Some(j) = installed(state, "debianutils") else {
        return Ok(());
    };
    let read = |state: &State, key: &str| -> Result<Option<String>, InstallError> {
        let Some(hs) = state.holders.get(key) else {
            return Ok(None);
        };
        match state.trees[hs[0]].get(key).map(|n| &n.kind) {
            Some(NodeKind::File(c)) if c.size() <= 1 << 16 => {
                let bytes = c
                    .read_all()
                    .map_err(|e| read_error(&state.packages[hs[0]].0, key, e))?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            _ => Ok(None),
        }
    };
    let Some(template) = read(state, TEMPLATE)? else {
        return Ok(());
    };
    let merged = matches!(
        state
            .holders
            .get("bin")
            .and_then(|hs| state.trees[hs[0]].get("bin"))
            .map(|n| &n.kind),
        Some(NodeKind::Symlink(_))
    );
    let mut texts = vec![template];
    let names: Vec<String> = state
        .holders
        .range(SHELLS_D.to_string()..)
        .take_while(|(k, _)| k.starts_with(SHELLS_D))
        .map(|(k, _)| k.clone())
        .filter(|k| !k[SHELLS_D.len()..].contains('/'))
        .collect();
    for k in names {
        texts.extend(read(state, &k)?);
    }
    let mut comments = String::new();
    let mut shells: Vec<String> = Vec::new();
    for (n, text) in texts.iter().enumerate() {
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                if n == 0 {
                    comments.push_str(line);
                    comments.push('\n');
                }
                continue;
            }
            if !line.starts_with('/') || line.chars().any(char::is_control) {
                continue;
            }
            let mut add = vec![line.to_string()];
            if merged && (line.starts_with("/bin/") || line.starts_with("/sbin/")) {
                add.push(format!("/usr{line}"));
            }
            for s in add {
                if !shells.contains(&s) {
                    shells.push(s);
                }
            }
        }
    }
    let list: String = shells.iter().map(|s| format!("{s}\n")).collect();
    for (key, text) in [
        ("etc/shells", format!("{comments}{list}")),
        ("var/lib/shells.state", list),
    ] {
        if !state.holders.contains_key(key) {
            state.place(j, key.to_string(), own_file(text.into_bytes(), epoch))?;
        }
    }
    Ok(())
}

/// What base-files', libc-bin's, python3's and openjdk's postinsts make
/// from shipped defaults, where nothing is installed yet.
pub(super) fn postinst_defaults(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    for made in postinst_defaults::made(state.packages, &state.trees, epoch) {
        make_unless_held(state, made)?;
    }
    Ok(())
}

/// What a postinst makes where nothing is yet; a directory the owner
/// alone ships, with nothing below it, may become the link it migrates to.
fn make_unless_held(state: &mut State, made: Made) -> Result<(), InstallError> {
    if let Some(hs) = state.holders.get(&made.key) {
        let own_empty_dir = made.migrates_dir
            && hs == &[made.owner]
            && state.trees[made.owner].get(&made.key).map(|n| &n.kind) == Some(&NodeKind::Dir)
            && !state.holders.keys().any(|k| {
                k.strip_prefix(made.key.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            });
        if !own_empty_dir {
            return Ok(());
        }
        state.trees[made.owner].remove(&made.key);
        state.holders.remove(&made.key);
    }
    // Below something that is not a directory (a package's own link,
    // say) the script's `mkdir -p` or `cp` would go elsewhere or fail.
    let mut cur = made.key.as_str();
    while let Some(ancestor) = fstree::parent(cur) {
        if let Some(hs) = state.holders.get(ancestor) {
            if state.trees[hs[0]].get(ancestor).map(|n| &n.kind) != Some(&NodeKind::Dir) {
                return Ok(());
            }
        }
        cur = ancestor;
    }
    state.place(made.owner, made.key, made.node)
}

/// libc-bin's ldconfig trigger: /etc/ld.so.cache, on the architectures
/// whose cache flags are known.
pub(super) fn ld_so_cache(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    if let Some(j) = installed(state, "libc-bin") {
        let libc_bin = &state.packages[j].0;
        if let Some(cache) = ld_cache_bytes(state.packages, &state.trees, libc_bin)? {
            state.place(j, LD_CACHE.to_string(), own_file(cache, epoch))?;
        }
    }
    Ok(())
}

/// base-passwd's (passwd.master, group.master), when it is installed: its
/// postinst writes the account files from them (see `assemble::accounts`).
pub(super) fn passwd_masters(state: &State) -> Result<Option<(String, String)>, InstallError> {
    match installed(state, "base-passwd") {
        Some(j) => Ok(Some((
            master_text(&state.trees[j], PASSWD_MASTER)?,
            master_text(&state.trees[j], GROUP_MASTER)?,
        ))),
        None => Ok(None),
    }
}

/// The largest CA file read, and the most all of them may add up to: a
/// certificate is a few KiB, Debian's whole set 220 KiB; a package's
/// 384 MiB `.crt` is refused rather than held in memory.
pub(super) const MAX_CA_FILE: u64 = 1 << 20;
pub(super) const MAX_CA_TOTAL: u64 = 64 << 20;

/// The certificates update-ca-certificates takes with the default
/// configuration: every `.crt` file under /usr/share/ca-certificates, by
/// image path in byte order.
fn ca_files<'a>(
    packages: &[(Selected, DebContents)],
    trees: &'a [FsTree],
) -> Result<BTreeMap<&'a str, Vec<u8>>, InstallError> {
    let mut certs: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut total = 0u64;
    for (j, tree) in trees.iter().enumerate() {
        for (key, node) in tree.iter() {
            if !key.starts_with(CA_DIR) || !key.ends_with(".crt") {
                continue;
            }
            let content = match &node.kind {
                NodeKind::File(c) => c,
                NodeKind::Hardlink(t) => match tree.get(t).map(|n| &n.kind) {
                    Some(NodeKind::File(c)) => c,
                    _ => continue,
                },
                _ => continue, // `find -type f` does not list symlinks
            };
            total += content.size();
            if content.size() > MAX_CA_FILE || total > MAX_CA_TOTAL {
                let what = if content.size() > MAX_CA_FILE {
                    format!(
                        "/{key} is {} bytes, more than a CA file may be ({MAX_CA_FILE} bytes)",
                        content.size()
                    )
                } else {
                    format!("the CA files add up to more than {MAX_CA_TOTAL} bytes (at /{key})")
                };
                return Err(InstallError::TooMuchWork {
                    package: package_label(&packages[j].0),
                    what,
                });
            }
            let bytes = content
                .read_all()
                .map_err(|source| read_error(&packages[j].0, key, source))?;
            certs.insert(key, bytes);
        }
    }
    Ok(certs)
}

/// update-ca-certificates with the default configuration, each
/// certificate given a final newline if it lacks one (Debian #635570).
fn bundle_bytes(
    packages: &[(Selected, DebContents)],
    trees: &[FsTree],
) -> Result<Vec<u8>, InstallError> {
    let mut bundle = Vec::new();
    for cert in ca_files(packages, trees)?.values() {
        bundle.extend_from_slice(cert);
        if !cert.is_empty() && !cert.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    Ok(bundle)
}

/// The links update-ca-certificates makes in /etc/ssl/certs (key → target):
/// `<name>.pem` to each CA file (a later file taking a name replaces the
/// earlier, as `ln -sf` does), then `openssl rehash`'s `<hash>.<n>` to each
/// `.pem` holding exactly one certificate, in name order, a certificate
/// already linked under its hash left out as rehash leaves duplicates.
fn link_targets(
    packages: &[(Selected, DebContents)],
    trees: &[FsTree],
) -> Result<BTreeMap<String, String>, InstallError> {
    let mut pems: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    for (key, bytes) in ca_files(packages, trees)? {
        let file_name = key.rsplit('/').next().unwrap_or(key);
        pems.insert(
            java_trust::pem_link_name(file_name),
            (format!("/{key}"), bytes),
        );
    }
    let mut links = BTreeMap::new();
    let mut by_hash: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for (pem, (target, bytes)) in &pems {
        links.insert(format!("{CERTS_DIR}/{pem}"), target.clone());
        let certs = bytes
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .filter(|w| *w == b"-----BEGIN CERTIFICATE-----")
            .count();
        let Some(der) = java_trust::first_certificate(bytes).filter(|_| certs == 1) else {
            continue;
        };
        let Some(hash) = cert_links::subject_hash(&der) else {
            continue;
        };
        let linked = by_hash.entry(hash).or_default();
        if linked.contains(&der) {
            continue;
        }
        links.insert(
            format!("{CERTS_DIR}/{hash:08x}.{}", linked.len()),
            pem.clone(),
        );
        linked.push(der);
    }
    Ok(links)
}

/// ca-certificates-java's keystore of the same CAs as the bundle.
fn keystore_bytes(
    packages: &[(Selected, DebContents)],
    trees: &[FsTree],
    epoch: u64,
) -> Result<Vec<u8>, InstallError> {
    let files = ca_files(packages, trees)?;
    Ok(java_trust::keystore(
        files.iter().map(|(k, v)| (*k, v.as_slice())),
        epoch,
    ))
}

/// /etc/ld.so.cache as libc-bin's ldconfig trigger writes it, or `None` on
/// an architecture whose cache flags are not known here.
fn ld_cache_bytes(
    packages: &[(Selected, DebContents)],
    trees: &[FsTree],
    libc_bin: &Selected,
) -> Result<Option<Vec<u8>>, InstallError> {
    let Some(machine) = ld_cache::Machine::for_debian_arch(&libc_bin.architecture) else {
        return Ok(None);
    };
    let view = ld_cache::ImageView::new(trees);
    let generator = ld_cache::generator(&libc_bin.version);
    match ld_cache::ld_cache(&view, machine, &generator) {
        Ok(cache) => Ok(Some(cache)),
        Err(ld_cache::Trouble::Read(key, source)) => {
            let j = trees
                .iter()
                .position(|t| t.get(&key).is_some())
                .unwrap_or(0);
            Err(read_error(&packages[j].0, &key, source))
        }
        Err(ld_cache::Trouble::Limit(what)) => Err(InstallError::TooMuchWork {
            package: package_label(libc_bin),
            what,
        }),
    }
}

fn master_text(tree: &FsTree, key: &str) -> Result<String, InstallError> {
    let err = |problem| InstallError::PasswdMaster {
        path: key.to_string(),
        problem,
    };
    match tree.get(key).map(|n| &n.kind) {
        Some(NodeKind::File(content)) => {
            let bytes = content.read_all().map_err(|_| err("unreadable"))?;
            String::from_utf8(bytes).map_err(|_| err("not UTF-8 text"))
        }
        _ => Err(err("missing from it")),
    }
}

#[cfg(test)]
mod tests;
