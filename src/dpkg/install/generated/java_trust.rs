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

/// The keystore of the CA files `files` (image path → PEM, in the order
/// update-ca-certificates takes them), one entry per /etc/ssl/certs link
/// it would make: a later file whose link name is taken replaces the
/// earlier, as `ln -sf` does. A file without a readable certificate is left
/// out, as the jar leaves it.
pub(crate) fn keystore<'a>(
    files: impl Iterator<Item = (&'a str, &'a [u8])>,
    epoch: u64,
) -> Vec<u8> {
    let mut certs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    add_files(&mut certs, files);
    jks(&certs, epoch)
}

/// The hook's `+` lines for `files` (image path → PEM, in order) on the
/// store's entries `certs` (alias → DER): each file's certificate under
/// `debian:<link name>`, a file without one removing the alias.
pub(crate) fn add_files<'a>(
    certs: &mut BTreeMap<String, Vec<u8>>,
    files: impl Iterator<Item = (&'a str, &'a [u8])>,
) {
    for (path, pem) in files {
        let file_name = path.rsplit('/').next().unwrap_or(path);
        let alias = format!("debian:{}", pem_link_name(file_name)).to_lowercase();
        match first_certificate(pem) {
            Some(der) => {
                certs.insert(alias, der);
            }
            None => {
                certs.remove(&alias);
            }
        }
    }
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
/// integrity checked (a recipe's local CAs join the store below them;
/// tests compare with Java's own stores).
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real CA certificate (ISRG Root X1, as ca-certificates ships it).
    pub(crate) const ISRG: &str = "-----BEGIN CERTIFICATE-----
MIIFazCCA1OgAwIBAgIRAIIQz7DSQONZRGPgu2OCiwAwDQYJKoZIhvcNAQELBQAw
TzELMAkGA1UEBhMCVVMxKTAnBgNVBAoTIEludGVybmV0IFNlY3VyaXR5IFJlc2Vh
cmNoIEdyb3VwMRUwEwYDVQQDEwxJU1JHIFJvb3QgWDEwHhcNMTUwNjA0MTEwNDM4
WhcNMzUwNjA0MTEwNDM4WjBPMQswCQYDVQQGEwJVUzEpMCcGA1UEChMgSW50ZXJu
ZXQgU2VjdXJpdHkgUmVzZWFyY2ggR3JvdXAxFTATBgNVBAMTDElTUkcgUm9vdCBY
MTCCAiIwDQYJKoZIhvcNAQEBBQADggIPADCCAgoCggIBAK3oJHP0FDfzm54rVygc
h77ct984kIxuPOZXoHj3dcKi/vVqbvYATyjb3miGbESTtrFj/RQSa78f0uoxmyF+
0TM8ukj13Xnfs7j/EvEhmkvBioZxaUpmZmyPfjxwv60pIgbz5MDmgK7iS4+3mX6U
A5/TR5d8mUgjU+g4rk8Kb4Mu0UlXjIB0ttov0DiNewNwIRt18jA8+o+u3dpjq+sW
T8KOEUt+zwvo/7V3LvSye0rgTBIlDHCNAymg4VMk7BPZ7hm/ELNKjD+Jo2FR3qyH
B5T0Y3HsLuJvW5iB4YlcNHlsdu87kGJ55tukmi8mxdAQ4Q7e2RCOFvu396j3x+UC
B5iPNgiV5+I3lg02dZ77DnKxHZu8A/lJBdiB3QW0KtZB6awBdpUKD9jf1b0SHzUv
KBds0pjBqAlkd25HN7rOrFleaJ1/ctaJxQZBKT5ZPt0m9STJEadao0xAH0ahmbWn
OlFuhjuefXKnEgV4We0+UXgVCwOPjdAvBbI+e0ocS3MFEvzG6uBQE3xDk3SzynTn
jh8BCNAw1FtxNrQHusEwMFxIt4I7mKZ9YIqioymCzLq9gwQbooMDQaHWBfEbwrbw
qHyGO0aoSCqI3Haadr8faqU9GY/rOPNk3sgrDQoo//fb4hVC1CLQJ13hef4Y53CI
rU7m2Ys6xt0nUW7/vGT1M0NPAgMBAAGjQjBAMA4GA1UdDwEB/wQEAwIBBjAPBgNV
HRMBAf8EBTADAQH/MB0GA1UdDgQWBBR5tFnme7bl5AFzgAiIyBpY9umbbjANBgkq
hkiG9w0BAQsFAAOCAgEAVR9YqbyyqFDQDLHYGmkgJykIrGF1XIpu+ILlaS/V9lZL
ubhzEFnTIZd+50xx+7LSYK05qAvqFyFWhfFQDlnrzuBZ6brJFe+GnY+EgPbk6ZGQ
3BebYhtF8GaV0nxvwuo77x/Py9auJ/GpsMiu/X1+mvoiBOv/2X/qkSsisRcOj/KK
NFtY2PwByVS5uCbMiogziUwthDyC3+6WVwW6LLv3xLfHTjuCvjHIInNzktHCgKQ5
ORAzI4JMPJ+GslWYHb4phowim57iaztXOoJwTdwJx4nLCgdNbOhdjsnvzqvHu7Ur
TkXWStAmzOVyyghqpZXjFaH3pO3JLF+l+/+sKAIuvtd7u+Nxe5AW0wdeRlN8NwdC
jNPElpzVmbUq4JUagEiuTDkHzsxHpFKVK7q4+63SM1N95R1NbdWhscdCb+ZAJzVc
oyi3B43njTOQ5yOf+1CceWxG1bQVs5ZufpsMljq4Ui0/1lvh+wjChP4kqKOJ2qxq
4RgqsahDYVvTH9w7jXbyLeiNdd8XM2w9U/t7y0Ff/9yi0GE44Za4rF2LN9d11TPA
mRGunUHBcnWEvgJBQl9nJEiU0Zsnvgc/ubhPgXRR4Xq37Z0j4r7g1SgEEzwxA57d
emyPxgcYxn/eR44/KJ4EBs+lVDR3veyJm+kXQ99b21/+jh5Xos1AnX5iItreGCc=
-----END CERTIFICATE-----
";

    fn der() -> Vec<u8> {
        first_certificate(ISRG.as_bytes()).unwrap()
    }

    #[test]
    fn link_names_are_update_ca_certificates_names() {
        assert_eq!(pem_link_name("ISRG_Root_X1.crt"), "ISRG_Root_X1.pem");
        assert_eq!(
            pem_link_name("NetLock_Arany_(Class_Gold)_Főtanúsítvány.crt"),
            "NetLock_Arany_=Class_Gold=_Főtanúsítvány.pem"
        );
        assert_eq!(pem_link_name("a b,c.crt"), "a_b_c.pem");
    }

    #[test]
    fn the_first_certificate_of_a_pem_file_is_read() {
        let der = der();
        assert_eq!(der.len(), 1391);
        let two = format!("junk\n{ISRG}{ISRG}");
        assert_eq!(first_certificate(two.as_bytes()), Some(der));
        assert_eq!(first_certificate(b"no certificate here"), None);
        assert_eq!(
            first_certificate(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"),
            None
        );
    }

    #[test]
    fn keystores_are_sorted_dated_and_checked() {
        let files = [
            (
                "usr/share/ca-certificates/mozilla/Z_Root.crt",
                ISRG.as_bytes(),
            ),
            (
                "usr/share/ca-certificates/mozilla/ISRG Root (X1).crt",
                ISRG.as_bytes(),
            ),
            (
                "usr/share/ca-certificates/mozilla/Broken.crt",
                b"nothing".as_slice(),
            ),
        ];
        let store = keystore(files.iter().copied(), 1_700_000_000);
        assert_eq!(&store[..8], &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
        let entries = parse(&store).unwrap();
        let aliases: Vec<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(aliases, ["debian:isrg_root_=x1=.pem", "debian:z_root.pem"]);
        assert!(entries
            .iter()
            .all(|(_, date, d)| *date == 1_700_000_000_000 && *d == der()));
        // Same input, same bytes, whatever order the files come in.
        let reversed = keystore(files.iter().rev().copied(), 1_700_000_000);
        assert_eq!(store, reversed);
        let mut damaged = store.clone();
        damaged[20] ^= 1;
        assert_eq!(parse(&damaged), None);
    }

    /// The bytes for a fixed input, pinned: a change to the format or the
    /// order is a change to every image with ca-certificates-java.
    #[test]
    fn golden_keystore() {
        let files = [
            (
                "usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
                ISRG.as_bytes(),
            ),
            (
                "usr/share/ca-certificates/corp/Corp CA.crt",
                ISRG.as_bytes(),
            ),
        ];
        let store = keystore(files.iter().copied(), 1_735_689_600);
        assert_eq!(
            crate::oci::Digest::of(&store).to_string(),
            "sha256:8976e01cc9f38664d2765aaad559bc648c54c6ce07d18eeeedac56985421b701"
        );
    }

    #[test]
    fn aliases_are_written_as_java_writes_utf() {
        let mut out = Vec::new();
        write_utf(&mut out, "ő\0a");
        assert_eq!(out, [0, 5, 0xc5, 0x91, 0xc0, 0x80, b'a']);
    }

    /// The host's CAs through `keystore` against what keytool reads from
    /// it and what ca-certificates-java's jar wrote on this host.
    #[test]
    fn java_reads_the_store_and_it_holds_what_the_jar_writes() {
        let dir = std::path::Path::new("/usr/share/ca-certificates");
        if !dir.is_dir() {
            eprintln!("skipped: no /usr/share/ca-certificates on this host");
            return;
        }
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for e in walkdir::WalkDir::new(dir) {
            let e = e.unwrap();
            let p = e.path().to_str().unwrap();
            if e.file_type().is_file() && p.ends_with(".crt") {
                files.insert(
                    p.trim_start_matches('/').to_string(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
        let store = keystore(files.iter().map(|(k, v)| (k.as_str(), v.as_slice())), 1_000);
        let ours: BTreeMap<String, Vec<u8>> = parse(&store)
            .unwrap()
            .into_iter()
            .map(|(a, _, d)| (a, d))
            .collect();
        assert!(ours.len() > 100, "{} CAs", ours.len());

        // The jar's store on this host names each certificate as ours does.
        // The host's CA files may be of another ca-certificates version than
        // its keystore (reissued CAs, local ones), so the certificates both
        // hold are compared.
        if let Ok(host) = std::fs::read("/etc/ssl/certs/java/cacerts") {
            let host = parse(&host).expect("the host's store is JKS with password changeit");
            let by_der: BTreeMap<&[u8], &String> =
                ours.iter().map(|(a, d)| (d.as_slice(), a)).collect();
            let (mut same, mut renamed) = (0, Vec::new());
            for (alias, _, der) in &host {
                match by_der.get(der.as_slice()) {
                    Some(ours) if *ours == alias => same += 1,
                    Some(ours) => renamed.push(format!("{alias} / {ours}")),
                    None => {}
                }
            }
            // A CA file renamed between the two versions is named otherwise.
            assert!(
                same > 100 && renamed.len() * 20 < same,
                "{same} named alike; named otherwise (jar / ours): {renamed:?}"
            );
        } else {
            eprintln!("no /etc/ssl/certs/java/cacerts on this host: not compared");
        }

        let Ok(keytool) = std::process::Command::new("keytool").arg("-help").output() else {
            // CI installs a JRE (.ci/run), so there the check always runs.
            assert!(
                std::env::var_os("CI").is_none(),
                "keytool is missing: install openjdk-17-jre-headless"
            );
            eprintln!("skipped: no keytool on this host");
            return;
        };
        drop(keytool);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("cacerts");
        std::fs::write(&path, &store).unwrap();
        let out = std::process::Command::new("keytool")
            .args(["-list", "-storepass", STORE_PASSWORD, "-keystore"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "keytool: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Keystore type: JKS"), "{text}");
        assert!(
            text.contains(&format!("Your keystore contains {} entries", ours.len())),
            "{text}"
        );
        for alias in ours.keys() {
            assert!(
                text.contains(&format!("{alias}, ")),
                "keytool does not list {alias}"
            );
        }
        assert!(text.contains("trustedCertEntry"), "{text}");
    }
}
