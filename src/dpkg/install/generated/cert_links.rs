//! The links update-ca-certificates makes in /etc/ssl/certs besides the
//! bundle: `<name>.pem` to each CA file, and `openssl rehash`'s
//! `<subject hash>.<n>` to each `.pem`, which OpenSSL's CApath lookups
//! (`-CApath /etc/ssl/certs`, the default verify directory) use.
//!
//! The subject hash is OpenSSL's `X509_NAME_hash` (1.0 and later): SHA-1
//! of the subject name's canonical encoding (string values as UTF-8,
//! lower-cased ASCII, whitespace trimmed and collapsed), its first four
//! bytes read little-endian.

use sha1::{Digest as _, Sha1};

/// A DER element: tag, its content, and the whole encoding.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// The first element of `b` and what follows it; `None` if malformed.
fn tlv(b: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers appear nowhere in a Name
    }
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = b.get(..end)?;
    Some((
        Tlv {
            tag,
            content: &whole[header..],
            whole,
        },
        &b[end..],
    ))
}

fn elements(mut b: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, rest) = tlv(b)?;
        out.push(t);
        b = rest;
    }
    Some(out)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The subject Name of a DER certificate.
fn subject(cert: &[u8]) -> Option<&[u8]> {
    let (cert, _) = tlv(cert)?;
    let (tbs, _) = tlv(cert.content)?;
    let fields = elements(tbs.content)?;
    // version [0] is optional; then serial, signature, issuer, validity,
    // subject.
    let skip = usize::from(fields.first()?.tag == 0xa0);
    let name = fields.get(skip + 4)?;
    (name.tag == 0x30).then_some(name.content)
}

/// A string value as UTF-8, for the string types OpenSSL canonicalizes.
fn utf8_of(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        0x0c => String::from_utf8(v.to_vec()).ok(),
        // Printable, T61 (read as Latin-1, as OpenSSL does), IA5, Visible.
        0x13 | 0x14 | 0x16 | 0x1a => Some(v.iter().map(|&b| char::from(b)).collect()),
        0x1e => {
            let units: Vec<u16> = v
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units).ok()
        }
        0x1c => v
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                char::from_u32(u32::from_be_bytes(b))
            })
            .collect(),
        _ => None,
    }
}

fn canon_text(s: &str) -> Vec<u8> {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|&b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !space(b))
        .map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut i = start;
    while i < end {
        let b = bytes[i];
        if space(b) {
            out.push(b' ');
            while i < end && space(bytes[i]) {
                i += 1;
            }
        } else {
            out.push(b.to_ascii_lowercase());
            i += 1;
        }
    }
    out
}

/// OpenSSL's canonical encoding of a Name's RDN sequence content.
fn canonical_name(name: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for rdn in elements(name)? {
        if rdn.tag != 0x31 {
            return None;
        }
        let mut avas: Vec<Vec<u8>> = Vec::new();
        for ava in elements(rdn.content)? {
            let parts = elements(ava.content)?;
            let (oid, value) = (parts.first()?, parts.get(1)?);
            let value = match utf8_of(value.tag, value.content) {
                Some(text) => der(0x0c, &canon_text(&text)),
                None => value.whole.to_vec(),
            };
            let mut seq = oid.whole.to_vec();
            seq.extend_from_slice(&value);
            avas.push(der(0x30, &seq));
        }
        // DER orders a SET OF by its elements' encodings.
        avas.sort();
        out.extend_from_slice(&der(0x31, &avas.concat()));
    }
    Some(out)
}

/// `openssl x509 -hash` of a DER certificate.
pub(crate) fn subject_hash(cert: &[u8]) -> Option<u32> {
    let canon = canonical_name(subject(cert)?)?;
    let digest = Sha1::digest(&canon);
    Some(u32::from_le_bytes(digest[..4].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::install::generated::java_trust::{
        first_certificate, pem_link_name, tests::ISRG,
    };

    #[test]
    fn isrg_root_x1_hashes_as_openssl_does() {
        // `openssl x509 -hash -noout` prints 4042bcee for ISRG Root X1.
        let der = first_certificate(ISRG.as_bytes()).unwrap();
        assert_eq!(format!("{:08x}", subject_hash(&der).unwrap()), "4042bcee");
    }

    #[test]
    fn names_are_canonicalized() {
        assert_eq!(canon_text("  Foo \t BAR  "), b"foo bar");
        assert_eq!(canon_text("ÅB"), "Åb".as_bytes());
        assert_eq!(canon_text(""), b"");
    }

    /// Every hash link on this host that leads to a CA file names the hash
    /// computed here for that file.
    #[test]
    fn matches_the_hosts_rehash() {
        let Ok(dir) = std::fs::read_dir("/etc/ssl/certs") else {
            eprintln!("skipped: no /etc/ssl/certs on this host");
            return;
        };
        let mut checked = 0;
        for e in dir {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((hash, n)) = name.split_once('.') else {
                continue;
            };
            if hash.len() != 8 || n.parse::<u32>().is_err() {
                continue;
            }
            let Ok(pem) = std::fs::read_link(e.path()) else {
                continue;
            };
            let Ok(crt) = std::fs::read_link(std::path::Path::new("/etc/ssl/certs").join(&pem))
            else {
                continue;
            };
            let Ok(bytes) = std::fs::read(&crt) else {
                continue;
            };
            let file_name = crt.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(pem.to_string_lossy(), pem_link_name(&file_name));
            let der = first_certificate(&bytes).unwrap();
            assert_eq!(
                format!("{:08x}", subject_hash(&der).unwrap()),
                hash,
                "{}",
                crt.display()
            );
            checked += 1;
        }
        assert!(
            checked > 100 || checked == 0,
            "only {checked} links checked"
        );
        eprintln!("{checked} hash links checked");
    }
}
