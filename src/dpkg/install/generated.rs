//! What dpkg and maintainer scripts would have written, made from the
//! installed trees: the status.d database, the CA bundle and Java's
//! keystore of it, the loader cache, base-passwd's masters, and each
//! package's summary.

use std::collections::BTreeMap;

use md5::{Digest as _, Md5};

use super::{cert_links, java_trust, ld_cache};
use super::{lexical_target, package_label, InstallError, PackageSummary, CA_DIR, CERTS_DIR};
use crate::apt::Package;
use crate::dpkg::deb::DebContents;
use crate::fstree::{self, Content, ContentError, ContentReader, FsTree, NodeKind};

fn control_text<'a>(p: &Package, deb: &'a DebContents) -> Result<&'a str, InstallError> {
    deb.control
        .get("control")
        .and_then(|c| std::str::from_utf8(c).ok())
        .ok_or_else(|| InstallError::NoControl {
            package: package_label(p),
        })
}

/// The control file's paragraph as dpkg's status keeps it: every field as
/// shipped, `Status: install ok installed` right after `Package`.
pub(super) fn status_text(p: &Package, deb: &DebContents) -> Result<String, InstallError> {
    let text = control_text(p, deb)?;
    let mut fields: Vec<String> = Vec::new();
    for line in text.lines().skip_while(|l| l.trim().is_empty()) {
        if line.trim().is_empty() {
            break;
        }
        match fields.last_mut() {
            Some(f) if line.starts_with([' ', '\t']) => {
                f.push('\n');
                f.push_str(line);
            }
            _ => fields.push(line.to_string()),
        }
    }
    let name_of = |f: &str| {
        f.split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let mut out = String::new();
    for field in fields.iter().filter(|f| name_of(f) != "status") {
        out.push_str(field);
        out.push('\n');
        if name_of(field) == "package" {
            out.push_str("Status: install ok installed\n");
        }
    }
    Ok(out)
}

/// An md5sums file as dh_md5sums writes it: regular files in byte order of
/// path (it runs `LC_ALL=C sort`), conffiles left out, paths as shipped.
pub(super) fn computed_md5sums(p: &Package, deb: &DebContents) -> Result<Vec<u8>, InstallError> {
    let conffiles: Vec<String> = deb
        .control
        .get("conffiles")
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches("remove-on-upgrade").trim())
        .filter_map(|l| fstree::normalize_rel(l).ok())
        .collect();
    let files: BTreeMap<&str, &Content> = deb
        .data
        .iter()
        .filter_map(|e| match &e.node.kind {
            NodeKind::File(c) => Some((e.path.as_str(), c)),
            _ => None,
        })
        .collect();
    let mut lines: BTreeMap<&str, String> = BTreeMap::new();
    for e in &deb.data {
        let content = match &e.node.kind {
            NodeKind::File(c) => c,
            NodeKind::Hardlink(t) => match files.get(t.as_str()) {
                Some(c) => c,
                None => continue,
            },
            _ => continue,
        };
        if conffiles.contains(&e.path) {
            continue;
        }
        let mut md5 = Md5Writer(Md5::new());
        ContentReader::default()
            .copy(content, &mut md5)
            .map_err(|source| read_error(p, &e.path, source))?;
        lines.insert(&e.path, hex::encode(md5.0.finalize()));
    }
    let out: String = lines
        .into_iter()
        .map(|(path, md5)| format!("{md5}  {path}\n"))
        .collect();
    Ok(out.into_bytes())
}

/// Streams file contents into an md5 hash: a package file may be large.
struct Md5Writer(Md5);

impl std::io::Write for Md5Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn read_error(p: &Package, path: &str, source: ContentError) -> InstallError {
    InstallError::Read {
        package: package_label(p),
        path: path.to_string(),
        error: Box::new(source),
    }
}

/// The certificates update-ca-certificates takes with the default
/// configuration: every `.crt` file under /usr/share/ca-certificates, by
/// image path in byte order.
fn ca_files<'a>(
    packages: &[(Package, DebContents)],
    trees: &'a [FsTree],
) -> Result<BTreeMap<&'a str, Vec<u8>>, InstallError> {
    let mut certs: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
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
pub(super) fn ca_bundle(
    packages: &[(Package, DebContents)],
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
pub(super) fn ca_links(
    packages: &[(Package, DebContents)],
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
pub(super) fn java_cacerts(
    packages: &[(Package, DebContents)],
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
pub(super) fn ld_so_cache(
    packages: &[(Package, DebContents)],
    trees: &[FsTree],
    libc_bin: &Package,
) -> Result<Option<Vec<u8>>, InstallError> {
    let Some(machine) = ld_cache::Machine::for_debian_arch(&libc_bin.architecture) else {
        return Ok(None);
    };
    let view = ld_cache::ImageView::new(trees);
    let generator = ld_cache::generator(&libc_bin.version);
    match ld_cache::ld_cache(&view, machine, &generator) {
        Ok(cache) => Ok(Some(cache)),
        Err((key, source)) => {
            let j = trees
                .iter()
                .position(|t| t.get(&key).is_some())
                .unwrap_or(0);
            Err(read_error(&packages[j].0, &key, source))
        }
    }
}

pub(super) fn master_text(tree: &FsTree, key: &str) -> Result<String, InstallError> {
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

pub(super) fn summary(
    p: &Package,
    deb: &DebContents,
    j: usize,
    trees: &[FsTree],
) -> PackageSummary {
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
        lexical_target(&doc, t)
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
