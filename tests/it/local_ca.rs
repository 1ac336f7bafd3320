//! A company CA a recipe adds under /usr/local/share/ca-certificates, in
//! an image built from the machine's mirror (minbase, ca-certificates,
//! ca-certificates-java and OpenJDK): stele's bundle, links and Java store
//! against what the real `update-ca-certificates --fresh` and its Java
//! hook leave when run in a container of the same image, and a TLS server
//! whose leaf the company CA signed, trusted inside the image. Skipped,
//! with the reason printed, where the machine has no apt source for
//! bookworm or no podman.

use std::collections::BTreeMap;
use std::fs;
use std::sync::OnceLock;

use crate::live::{build_shared, host_has_suite, live_root, Shared};
use crate::support::pki::Pki;
use crate::support::*;

const RECIPE: &str = r#"
[image]
name = "local-ca"
epoch = 1735689600

[apt]
sources = [{ mirror = "host", suite = "bookworm", components = ["main"] }]
variant = "minbase"
packages = ["ca-certificates", "ca-certificates-java", "openjdk-17-jre-headless"]

# In a folder and with a space, so the link's name (`Company_CA.pem`)
# and Java's alias are the tool's.
[[files]]
src = "company-ca.crt"
dest = "/usr/local/share/ca-certificates/company/Company CA.crt"

[[files]]
src = "tls"
dest = "/srv/tls"
"#;

/// The image, built once per run, and the company CA's PEM.
struct Image {
    shared: Shared,
    ca_pem: String,
}

fn image() -> Option<&'static Image> {
    if !host_has_suite("bookworm") || !have_tool("podman") || !have_tool("openssl") {
        return None;
    }
    static CELL: OnceLock<Image> = OnceLock::new();
    Some(CELL.get_or_init(|| {
        let dir = live_root().join("local-ca");
        fs::create_dir_all(dir.join("tls")).unwrap();
        let pki = Pki::new(&dir.join("pki"));
        let (leaf, key) = pki.issue("leaf", true);
        fs::copy(pki.ca(), dir.join("company-ca.crt")).unwrap();
        fs::copy(leaf, dir.join("tls/leaf.crt")).unwrap();
        fs::copy(key, dir.join("tls/leaf.key")).unwrap();
        let recipe = dir.join("local-ca.toml");
        fs::write(&recipe, RECIPE).unwrap();
        run(stele()
            .arg("lock")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(dir.join("cache")))
        .expect_ok();
        let ca_pem = fs::read_to_string(pki.ca()).unwrap();
        Image {
            shared: build_shared("local-ca", recipe, dir),
            ca_pem,
        }
    }))
}

/// What a state dump of the container says, by section.
fn sections(text: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("== ") {
            name = n.to_string();
            out.entry(name.clone()).or_default();
            continue;
        }
        let s = out.entry(name.clone()).or_default();
        s.push_str(line);
        s.push('\n');
    }
    out
}

/// keytool's `-list` as (alias, SHA-256 fingerprint) lines, sorted, with
/// the store type and count; without the entries' dates (the jar dates
/// them with the clock, stele with the epoch).
fn java_entries(listing: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut alias = None;
    for line in listing.lines() {
        if line.starts_with("Keystore type:") || line.starts_with("Your keystore contains") {
            out.push(line.to_string());
        } else if line.contains(", trustedCertEntry,") {
            alias = line.split(", ").next().map(str::to_string);
        } else if let Some(fp) = line.strip_prefix("Certificate fingerprint (SHA-256): ") {
            out.push(format!("{} {fp}", alias.take().unwrap_or_default()));
        }
    }
    out.sort();
    out
}

/// The links, the bundle and Java's store as stele built them are what
/// `update-ca-certificates --fresh` (and ca-certificates-java's hook,
/// through dpkg's trigger) leave when run in the image.
#[test]
fn local_ca_is_what_update_ca_certificates_leaves() {
    let Some(image) = image() else { return };
    let bundle = String::from_utf8(image.shared.file("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(
        bundle.ends_with(&image.ca_pem) && bundle.matches("BEGIN CERTIFICATE").count() > 100,
        "the company CA ends the bundle, after the distribution's"
    );
    let script = r#"
set -e
K=$(echo /usr/lib/jvm/java-17-openjdk-*/bin/keytool)
state() {
  echo "== links"; find /etc/ssl/certs -maxdepth 1 -type l -printf '%f %l\n' | LC_ALL=C sort
  echo "== bundle"; sha256sum < /etc/ssl/certs/ca-certificates.crt
  echo "== java"; "$K" -list -cacerts -storepass changeit
}
echo "== stele"; state > /tmp/stele
update-ca-certificates --fresh > /tmp/log 2>&1 || { cat /tmp/log; exit 1; }
echo "== apt"; state > /tmp/apt
cat /tmp/stele | sed 's/^== /== stele /'
cat /tmp/apt | sed 's/^== /== apt /'
echo "== log"; cat /tmp/log
echo "== pending"; ls /var/lib/ca-certificates-java/
"#;
    let r = image
        .shared
        .run(&["--user", "0", "--entrypoint", "/bin/sh"], &["-c", script]);
    r.expect_ok();
    let s = sections(&r.stdout);
    let log = &s["log"];
    assert!(
        !log.contains("E: ") && log.contains(" added, 0 removed; done."),
        "{log}"
    );
    assert!(
        !s["pending"].contains("pending"),
        "the Java hook's trigger ran: {log}"
    );
    assert_eq!(s["stele links"], s["apt links"], "{log}");
    assert!(
        s["stele links"]
            .contains("Company_CA.pem /usr/local/share/ca-certificates/company/Company CA.crt\n"),
        "{}",
        s["stele links"]
    );
    assert!(
        s["stele links"]
            .lines()
            .any(|l| l.ends_with(" Company_CA.pem") && l.len() == "12345678.0 Company_CA.pem".len()),
        "the subject-hash link: {}",
        s["stele links"]
    );
    assert_eq!(s["stele bundle"], s["apt bundle"]);
    let (ours, theirs) = (java_entries(&s["stele java"]), java_entries(&s["apt java"]));
    assert_eq!(ours, theirs);
    assert!(ours.len() > 100, "{ours:?}");
    assert!(
        ours.iter().any(|l| l.starts_with("debian:company_ca.pem ")),
        "{ours:?}"
    );
}

/// A TLS server on 127.0.0.1 whose leaf the company CA signed is trusted
/// by OpenSSL in the image through the hash links (its default CApath)
/// and through the bundle, and not through a distribution CA alone (the
/// check is not vacuous); keytool lists the CA in Java's default store.
#[test]
fn a_server_the_company_ca_signed_is_trusted_in_the_image() {
    let Some(image) = image() else { return };
    let script = r#"
cd /srv/tls
openssl s_server -quiet -accept 127.0.0.1:8443 -cert leaf.crt -key leaf.key -www >/dev/null 2>&1 &
i=0
until openssl s_client -connect 127.0.0.1:8443 </dev/null >/dev/null 2>&1; do
  i=$((i+1)); [ $i -lt 200 ] || { echo "the server never came up"; exit 1; }
  sleep 0.1
done
check() {
  out=$(openssl s_client -connect 127.0.0.1:8443 -verify_return_error -verify_ip 127.0.0.1 "$@" </dev/null 2>&1)
  echo "exit $?"
  echo "$out" | grep -E '^Verif'
}
echo "== capath"; check
echo "== bundle"; check -no-CApath -CAfile /etc/ssl/certs/ca-certificates.crt
echo "== other"; check -no-CApath -CAfile /usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt
echo "== java"; $(echo /usr/lib/jvm/java-17-openjdk-*/bin/keytool) -list -cacerts -storepass changeit -alias debian:company_ca.pem
"#;
    let r = image
        .shared
        .run(&["--user", "0", "--entrypoint", "/bin/sh"], &["-c", script]);
    r.expect_ok();
    let s = sections(&r.stdout);
    for trusted in ["capath", "bundle"] {
        assert!(
            s[trusted].starts_with("exit 0\n") && s[trusted].contains("Verification: OK"),
            "{trusted}: {}",
            r.stdout
        );
    }
    assert!(
        !s["other"].starts_with("exit 0\n") && !s["other"].contains("Verification: OK"),
        "{}",
        r.stdout
    );
    assert!(s["java"].contains("trustedCertEntry"), "{}", r.stdout);
}
