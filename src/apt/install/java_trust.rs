//! /etc/ssl/certs/java/cacerts as ca-certificates-java's postinst leaves it:
//! a JKS keystore (bookworm's jar opens and saves it as "JKS"; its postinst
//! converts a PKCS#12 store back to JKS) with one trusted-certificate entry
//! per CA that update-ca-certificates links into /etc/ssl/certs, aliased
//! `debian:<link name>` in lower case (JKS lower-cases aliases), password
//! `changeit`. The JDK's lib/security/cacerts is a symlink to it shipped by
//! the JRE package, so `keytool -cacerts` and every TLS client use it.
//!
//! Byte-reproducible where the jar is not: entries in alias byte order
//! (Java writes them in its hash table's order) and dated with the build
//! epoch (Java uses the clock).

use std::collections::BTreeMap;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

const MAGIC: u32 = 0xfeed_feed;
const VERSION: u32 = 2;
const TRUSTED_CERT: u32 = 2;
pub(crate) const STORE_PASSWORD: &str = "changeit";

/// The name update-ca-certificates gives a certificate's link in
/// /etc/ssl/certs: the file name without `.crt`, spaces and commas made
/// `_`, parentheses `=`, then `.pem`.
pub(crate) fn pem_link_name(crt_file_name: &str) -> String {
    let stem = crt_file_name.strip_suffix(".crt").unwrap_or(crt_file_name);
    let mapped: String = stem
        .chars()
        .map(|c| match c {
            ' ' | ',' => '_',
            '(' | ')' => '=',
            c => c,
        })
        .collect();
    format!("{mapped}.pem")
}

/// The DER bytes of the first certificate in a PEM file, as Java's
/// CertificateFactory reads it; `None` when there is none.
pub(crate) fn first_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin)? + begin.len();
    let end = start + text[start..].find("-----END CERTIFICATE-----")?;
    let b64: String = text[start..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    // A DER certificate is one SEQUENCE.
    (der.first() == Some(&0x30)).then_some(der)
}

/// The keystore holding `certs` (alias → DER), each entry dated
/// `epoch` seconds.
pub(crate) fn jks(certs: &BTreeMap<String, Vec<u8>>, epoch: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(certs.len() as u32).to_be_bytes());
    for (alias, der) in certs {
        out.extend_from_slice(&TRUSTED_CERT.to_be_bytes());
        write_utf(&mut out, alias);
        out.extend_from_slice(&epoch.saturating_mul(1000).to_be_bytes());
        write_utf(&mut out, "X.509");
        out.extend_from_slice(&(der.len() as u32).to_be_bytes());
        out.extend_from_slice(der);
    }
    let digest = integrity(&out);
    out.extend_from_slice(&digest);
    out
}

/// JKS's keyed check over the store: SHA-1 of the password's UTF-16
/// code units, the fixed salt "Mighty Aphrodite", then the data.
fn integrity(data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    for unit in STORE_PASSWORD.encode_utf16() {
        h.update(unit.to_be_bytes());
    }
    h.update(b"Mighty Aphrodite");
    h.update(data);
    h.finalize().into()
}

/// Java's `DataOutputStream.writeUTF`: a 16-bit length, then modified
/// UTF-8 (NUL as two bytes, characters outside the BMP as surrogate pairs).
fn write_utf(out: &mut Vec<u8>, s: &str) {
    let mut bytes = Vec::new();
    for unit in s.encode_utf16() {
        match unit {
            1..=0x7f => bytes.push(unit as u8),
            0 | 0x80..=0x7ff => {
                bytes.push(0xc0 | (unit >> 6) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
            _ => {
                bytes.push(0xe0 | (unit >> 12) as u8);
                bytes.push(0x80 | ((unit >> 6) & 0x3f) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
        }
    }
    // Aliases are file names, far below writeUTF's 65535-byte limit.
    out.extend_from_slice(&(bytes.len().min(0xffff) as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..bytes.len().min(0xffff)]);
}

/// A keystore's trusted-certificate entries (alias, date in ms, DER), its
/// integrity checked; for tests and comparisons with Java's own stores.
#[cfg(test)]
pub(crate) fn parse(b: &[u8]) -> Option<Vec<(String, u64, Vec<u8>)>> {
    let body_len = b.len().checked_sub(20)?;
    if integrity(&b[..body_len])[..] != b[body_len..] {
        return None;
    }
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b[..body_len].get(at..at + n)?;
        at += n;
        Some(s)
    };
    let u32_of = |s: &[u8]| u32::from_be_bytes(s.try_into().expect("4 bytes"));
    if u32_of(take(4)?) != MAGIC || u32_of(take(4)?) != VERSION {
        return None;
    }
    let n = u32_of(take(4)?);
    let mut out = Vec::new();
    for _ in 0..n {
        if u32_of(take(4)?) != TRUSTED_CERT {
            return None;
        }
        let len = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
        let alias = String::from_utf8(take(len)?.to_vec()).ok()?;
        let date = u64::from_be_bytes(take(8)?.try_into().ok()?);
        let len = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
        if take(len)? != b"X.509" {
            return None;
        }
        let len = u32_of(take(4)?) as usize;
        out.push((alias, date, take(len)?.to_vec()));
    }
    Some(out)
}
