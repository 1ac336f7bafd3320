//! A recipe's local CAs: certificates it puts under
//! /usr/local/share/ca-certificates (`[[files]]`, `[[paths]]`) join the
//! bundle, get update-ca-certificates' links and join Java's store, as
//! running `update-ca-certificates` in the image (and ca-certificates-java's
//! `update.d` hook) would have left them. Everything this changes goes in
//! the recipe layer, so the package layers stay the same bytes whatever
//! the recipe's files are.
//!
//! The tool with `--fresh`: the certificates `/etc/ca-certificates.conf`
//! lists (in its order, `!` lines left out), then every `*.crt` below the
//! local folder in `sort` order; links to all of them and `openssl
//! rehash`'s; the Java hook adds every linked certificate to the store,
//! whose other entries stay.

use std::collections::{BTreeMap, BTreeSet};

use crate::dpkg::install::ca_store::{self, BUNDLE, CERTS_DIR, CERTS_SRC, JAVA_CACERTS, LOCAL_SRC};
use crate::dpkg::install::{java_trust, MAX_CA_FILE, MAX_CA_TOTAL};
use crate::fstree::{self, Content, FsTree, Node, NodeKind};

const CONF: &str = "etc/ca-certificates.conf";
const TOOL: &str = "usr/sbin/update-ca-certificates";
const JAVA_HOOK: &str = "etc/ca-certificates/update.d/jks-keystore";

/// Which of the certificate tools this build's packages install (their
/// files below the recipe layer are then readable; a base image's are not).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CaTools {
    /// ca-certificates: the bundle, its configuration and links.
    pub ca_certificates: bool,
    /// ca-certificates-java: /etc/ssl/certs/java/cacerts and its hook.
    pub java: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalCaError {
    #[error("/{path} {problem}; {fix}")]
    File {
        path: String,
        problem: String,
        fix: String,
    },
    #[error("reading /{path}: {error}")]
    Read {
        path: String,
        error: crate::fstree::ContentError,
    },
}

fn refuse(path: &str, problem: impl Into<String>, fix: &str) -> LocalCaError {
    LocalCaError::File {
        path: path.to_string(),
        problem: problem.into(),
        fix: fix.to_string(),
    }
}

/// The image as the recipe layer `top` over `lower` makes it.
struct View<'a> {
    lower: &'a FsTree,
    top: &'a FsTree,
}

impl View<'_> {
    fn get(&self, key: &str) -> Option<&Node> {
        // A whiteout in the recipe layer removes the path and below.
        let mut cur = Some(key);
        while let Some(k) = cur {
            if let Some(n) = self.top.get(k) {
                if n.kind == NodeKind::Whiteout {
                    return None;
                }
                if k == key {
                    return Some(n);
                }
            }
            cur = fstree::parent(k);
        }
        self.lower.get(key)
    }

    /// Every path strictly below `dir`, in byte order.
    fn below(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        let keys: BTreeSet<&String> = self
            .lower
            .iter()
            .chain(self.top.iter())
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(&prefix))
            .collect();
        keys.into_iter()
            .filter(|k| self.get(k).is_some())
            .cloned()
            .collect()
    }

    /// A regular file's bytes (a hard link read through), at most `limit`.
    fn read(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, LocalCaError> {
        let content = match self.get(key).map(|n| &n.kind) {
            Some(NodeKind::File(c)) => c,
            Some(NodeKind::Hardlink(t)) => match self.get(t).map(|n| &n.kind) {
                Some(NodeKind::File(c)) => c,
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        if content.size() > limit {
            return Err(refuse(
                key,
                format!(
                    "is {} bytes, more than stele reads ({limit})",
                    content.size()
                ),
                "check that it is the file you meant",
            ));
        }
        content
            .read_all()
            .map(Some)
            .map_err(|error| LocalCaError::Read {
                path: key.to_string(),
                error,
            })
    }
}

const LINK_FIX: &str = "put the certificate file itself there (a PEM file whose name ends in .crt): stele does not follow links there";
const PEM_FIX: &str = "give a PEM certificate (`openssl x509 -in FILE -out NAME.crt`, with `-inform der` for a DER file)";

/// The recipe layer's additions for its local CAs (key → node, whiteouts
/// for links the tool would remove), none when `top` puts nothing under
/// /usr/local/share/ca-certificates. Paths `top` writes itself are left
/// to it by the caller.
pub(crate) fn changes(
    lower: &FsTree,
    top: &FsTree,
    tools: CaTools,
    epoch: u64,
) -> Result<BTreeMap<String, Node>, LocalCaError> {
    let local_prefix = format!("{LOCAL_SRC}/");
    let touched = top
        .iter()
        .any(|(k, _)| k == LOCAL_SRC || k.starts_with(&local_prefix));
    let view = View { lower, top };
    if !touched {
        return Ok(BTreeMap::new());
    }
    if !tools.ca_certificates {
        if view.get(TOOL).is_some() {
            return Err(refuse(
                LOCAL_SRC,
                "holds the recipe's CA certificates, but ca-certificates comes from the base image, whose bundle stele does not rebuild",
                "add ca-certificates to [apt] packages",
            ));
        }
        return Ok(BTreeMap::new());
    }
    let local = local_files(&view)?;
    let mut files = conf_files(&view)?;
    files.extend(local);
    let ordered = || files.iter().map(|(k, v)| (k.as_str(), v.as_slice()));

    let mut out = BTreeMap::new();
    let bundle = ca_store::bundle(ordered());
    if view.read(BUNDLE, MAX_CA_TOTAL)?.as_deref() != Some(bundle.as_slice()) {
        out.insert(BUNDLE.to_string(), own_file(bundle, epoch));
    }
    let wanted = ca_store::links(ordered());
    for key in view.below(CERTS_DIR) {
        let name = &key[CERTS_DIR.len() + 1..];
        let Some(NodeKind::Symlink(target)) = view.get(&key).map(|n| &n.kind) else {
            continue;
        };
        let managed = target.starts_with(&format!("/{CERTS_SRC}"))
            || target.starts_with(&format!("/{LOCAL_SRC}"))
            || ca_store::is_hash_link_name(name);
        if managed && !name.contains('/') && !wanted.contains_key(&key) {
            out.insert(key, whiteout(epoch));
        }
    }
    for (key, target) in wanted {
        match view.get(&key).map(|n| &n.kind) {
            Some(NodeKind::Symlink(t)) if *t == target => {}
            // A package's own file there stays, as in the install.
            Some(NodeKind::File(_) | NodeKind::Hardlink(_) | NodeKind::Dir) => {}
            _ => {
                out.insert(key, Node::symlink(target, 0, 0, epoch));
            }
        }
    }
    if tools.java && view.get(JAVA_HOOK).is_some() {
        if let Some(store) = java_store(&view, &files, epoch)? {
            out.insert(JAVA_CACERTS.to_string(), own_file(store, epoch));
        }
    }
    Ok(out)
}

fn own_file(bytes: Vec<u8>, epoch: u64) -> Node {
    Node::file(Content::bytes(bytes), 0o644, 0, 0, epoch)
}

fn whiteout(epoch: u64) -> Node {
    Node {
        kind: NodeKind::Whiteout,
        ..Node::dir(0, 0, 0, epoch)
    }
}

/// `find -L /usr/local/share/ca-certificates -type f -name '*.crt' | sort`,
/// each one checked: a regular file holding one PEM certificate, at most
/// `MAX_CA_FILE` bytes; a link anywhere below the folder is refused
/// rather than followed.
fn local_files(view: &View) -> Result<Vec<(String, Vec<u8>)>, LocalCaError> {
    match view.get(LOCAL_SRC).map(|n| &n.kind) {
        // Missing, it is made as the parent of the recipe's files.
        Some(NodeKind::Dir) | None => {}
        Some(NodeKind::Symlink(t)) => {
            return Err(refuse(
                LOCAL_SRC,
                format!("is a link to {t}"),
                "make it a folder holding the .crt files",
            ))
        }
        _ => return Ok(Vec::new()),
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for key in view.below(LOCAL_SRC) {
        let node = view.get(&key).expect("below lists present paths");
        match &node.kind {
            NodeKind::Symlink(t) => {
                return Err(refuse(&key, format!("is a link to {t}"), LINK_FIX))
            }
            NodeKind::Hardlink(t) => {
                return Err(refuse(&key, format!("is a hard link to /{t}"), LINK_FIX))
            }
            NodeKind::File(c) if key.ends_with(".crt") => {
                if key.chars().any(char::is_control) {
                    return Err(refuse(
                        &key,
                        "has a control character in its name, which update-ca-certificates cannot read",
                        "rename it",
                    ));
                }
                total += c.size();
                if c.size() > MAX_CA_FILE || total > MAX_CA_TOTAL {
                    return Err(refuse(
                        &key,
                        format!(
                            "is {} bytes, more than a CA file may be ({MAX_CA_FILE} bytes; {MAX_CA_TOTAL} all together)",
                            c.size()
                        ),
                        "a CA certificate is a few KiB: check that it is the file you meant",
                    ));
                }
                let pem = view.read(&key, MAX_CA_FILE)?.unwrap_or_default();
                let count = ca_store::certificate_count(&pem);
                if count == 0 || java_trust::first_certificate(&pem).is_none() {
                    return Err(refuse(&key, "is not a PEM certificate", PEM_FIX));
                }
                if count > 1 {
                    return Err(refuse(
                        &key,
                        format!("holds {count} certificates; OpenSSL's hash links and Java would take only the first"),
                        "put each certificate in its own .crt file",
                    ));
                }
                out.push((key, pem));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The certificates /etc/ca-certificates.conf lists, in its order, each
/// a regular file under /usr/share/ca-certificates (a listed name that is
/// not is skipped, as the tool warns and skips it). Without the file, or
/// with an empty one, none: the tool then adds the local ones alone.
fn conf_files(view: &View) -> Result<Vec<(String, Vec<u8>)>, LocalCaError> {
    let Some(conf) = view.read(CONF, MAX_CA_FILE)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut total = 0u64;
    for line in String::from_utf8_lossy(&conf).lines() {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Ok(rel) = fstree::normalize_rel(line.trim_matches([' ', '\t'])) else {
            continue;
        };
        let key = format!("{CERTS_SRC}/{rel}");
        if rel.is_empty() || !key.starts_with(&format!("{CERTS_SRC}/")) {
            continue;
        }
        if let Some(pem) = view.read(&key, MAX_CA_FILE)? {
            total += pem.len() as u64;
            if total > MAX_CA_TOTAL {
                return Err(refuse(
                    &key,
                    format!("takes the CA files over {MAX_CA_TOTAL} bytes"),
                    "check /etc/ca-certificates.conf",
                ));
            }
            out.push((key, pem));
        }
    }
    Ok(out)
}

/// ca-certificates-java's hook on a fresh run: every linked certificate
/// (re)added to the store below, under `debian:<link name>`; its other
/// entries stay. `None` when that changes nothing.
fn java_store(
    view: &View,
    files: &[(String, Vec<u8>)],
    epoch: u64,
) -> Result<Option<Vec<u8>>, LocalCaError> {
    let old = view.read(JAVA_CACERTS, MAX_CA_TOTAL)?;
    let mut certs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if let Some(old) = &old {
        let entries = java_trust::parse(old).ok_or_else(|| {
            refuse(
                JAVA_CACERTS,
                "is not a JKS store stele can read (password changeit)",
                "let ca-certificates-java from [apt] packages make it",
            )
        })?;
        certs.extend(entries.into_iter().map(|(alias, _, der)| (alias, der)));
    }
    java_trust::add_files(
        &mut certs,
        files.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
    );
    let store = java_trust::jks(&certs, epoch);
    Ok((old.as_deref() != Some(store.as_slice())).then_some(store))
}

#[cfg(test)]
mod tests;
