//! What `update-ca-certificates` makes of an ordered list of CA files
//! (image path without the leading `/` → PEM bytes, in the order the tool
//! `add`s them: the configuration's certificates, then the local ones):
//! the bundle and the links in /etc/ssl/certs. Used for the packages'
//! certificates by the install, and for a recipe's local CAs
//! (`assemble::local_ca`) over the layers below it.

use std::collections::BTreeMap;

use super::{cert_links, java_trust};

pub(crate) const CERTS_DIR: &str = "etc/ssl/certs";
pub(crate) const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
pub(crate) const JAVA_CACERTS: &str = "etc/ssl/certs/java/cacerts";
/// Where a package's certificates are, and where the administrator's.
pub(crate) const CERTS_SRC: &str = "usr/share/ca-certificates";
pub(crate) const LOCAL_SRC: &str = "usr/local/share/ca-certificates";

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// How many PEM certificates `pem` holds (its `BEGIN CERTIFICATE` lines).
pub(crate) fn certificate_count(pem: &[u8]) -> usize {
    pem.windows(BEGIN.len()).filter(|w| *w == BEGIN).count()
}

/// The bundle: each file in turn, given a final newline if it lacks one
/// (`sed -e '$a\'`, Debian #635570).
pub(crate) fn bundle<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut bundle = Vec::new();
    for (_, cert) in files {
        bundle.extend_from_slice(cert);
        if !cert.is_empty() && !cert.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    bundle
}

/// The links (key → target): `<name>.pem` to each CA file (a later file
/// taking a name replaces the earlier, as `ln -sf` does), then `openssl
/// rehash`'s `<hash>.<n>` to each `.pem` holding exactly one certificate,
/// in name order, a certificate already linked under its hash left out as
/// rehash leaves duplicates.
pub(crate) fn links<'a>(
    files: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> BTreeMap<String, String> {
    let mut pems: BTreeMap<String, (String, &[u8])> = BTreeMap::new();
    for (key, bytes) in files {
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
        let single = certificate_count(bytes) == 1;
        let Some(der) = java_trust::first_certificate(bytes).filter(|_| single) else {
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
    links
}

/// Whether `name` (a file name in /etc/ssl/certs) is one `openssl rehash`
/// owns: eight hex digits, a dot, an optional `r`, a number.
pub(crate) fn is_hash_link_name(name: &str) -> bool {
    let Some((hash, n)) = name.split_once('.') else {
        return false;
    };
    let n = n.strip_prefix('r').unwrap_or(n);
    hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_link_names() {
        for yes in ["4042bcee.0", "4042bcee.12", "4042BCEE.1", "4042bcee.r0"] {
            assert!(is_hash_link_name(yes), "{yes}");
        }
        for no in ["ISRG.pem", "4042bce.0", "4042bcee.", "4042bcee.x", "ca.crt"] {
            assert!(!is_hash_link_name(no), "{no}");
        }
    }

    #[test]
    fn a_later_file_takes_a_taken_link_name_and_bundles_end_in_newlines() {
        let files = [
            ("usr/share/ca-certificates/a/Corp.crt", &b"x"[..]),
            ("usr/local/share/ca-certificates/Corp.crt", &b"y\n"[..]),
        ];
        assert_eq!(bundle(files.iter().copied()), b"x\ny\n");
        let links = links(files.iter().copied());
        assert_eq!(
            links.get("etc/ssl/certs/Corp.pem").map(String::as_str),
            Some("/usr/local/share/ca-certificates/Corp.crt")
        );
    }
}
