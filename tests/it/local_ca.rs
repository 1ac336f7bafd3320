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

use crate::live::{build_shared, host_has_suite, live_root, locked_recipe, Shared};
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

/// What one container of the image prints (one podman storage for both
/// tests: vfs copies the image's 0.5 GB per storage): OpenSSL and keytool
/// against a TLS server whose leaf the company CA signed, then the
/// certificates' state as stele built it, `update-ca-certificates
/// --fresh` (its Java hook through dpkg's trigger), and the state after.
const SCRIPT: &str = r#"
(cd /srv/tls && exec openssl s_server -quiet -accept 127.0.0.1:8443 -cert leaf.crt -key leaf.key -www >/dev/null 2>&1) &
server=$!
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
kill $server
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

/// The image, built once per run, the company CA's PEM, and what
/// [`SCRIPT`] printed in a container of it.
struct Image {
    shared: Shared,
    ca_pem: String,
    container: Run,
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
        let recipe = locked_recipe(&dir, "local-ca", RECIPE);
        let ca_pem = fs::read_to_string(pki.ca()).unwrap();
        let shared = build_shared("local-ca", recipe, dir);
        let container = shared.run(&["--user", "0", "--entrypoint", "/bin/sh"], &["-c", SCRIPT]);
        container.expect_ok();
        Image {
            shared,
            ca_pem,
            container,
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
    let r = &image.container;
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
    let r = &image.container;
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

const LOCAL_RECIPE: &str = r#"
[image]
name = "local-ca-repo"
epoch = 1700000000
platforms = ["linux/amd64"]

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["ca-certificates"]
"#;

/// Each layer of the layout at `out`: its digest and its entries.
fn layers_of(out: &std::path::Path) -> Vec<(String, Vec<TarEntry>)> {
    let l = check_layout(out);
    l.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&l.layers)
        .map(|(d, (mt, blob))| {
            (
                d["digest"].as_str().unwrap().to_string(),
                tar_entries(&decompress(mt, blob)),
            )
        })
        .collect()
}

fn entry<'a>(layer: &'a [TarEntry], path: &str) -> Option<&'a TarEntry> {
    layer.iter().find(|e| e.path == path)
}

/// From a local signed repository (a ca-certificates of one CA): the
/// package layer is the same bytes with or without the recipe's local
/// CA, which joins the bundle and gets its links in the recipe layer; a
/// CA read through `--context` makes the same image; a path the recipe
/// writes itself stays the recipe's; a link or a file that is not a PEM
/// certificate under the folder is refused, naming it and the fix.
#[test]
fn local_cas_join_in_the_recipe_layer_and_bad_ones_are_refused() {
    if !have_tool("openssl") {
        skip("needs openssl to make the test CAs");
        return;
    }
    let work = tempdir();
    let distro = Pki::new(&work.path().join("distro"));
    let company = Pki::new(&work.path().join("company"));
    let distro_pem = fs::read(distro.ca()).unwrap();
    let company_pem = fs::read(company.ca()).unwrap();
    let ca = Deb::new("ca-certificates", "20230311", "all")
        .entry(DebEntry::dir("etc/ssl/certs"))
        .entry(DebEntry::dir("usr/share/ca-certificates/mozilla"))
        .entry(DebEntry::file(
            "usr/share/ca-certificates/mozilla/Distro_CA.crt",
            distro_pem.clone(),
        ));
    let repo = AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb("stable", ca)
        .build();
    let (url, _server) = repo.serve();
    let dir = work.path().join("project");
    fs::create_dir_all(dir.join("ctx/cas")).unwrap();
    fs::copy(repo.keyring_path(), dir.join("keyring.gpg")).unwrap();
    fs::write(dir.join("company.crt"), &company_pem).unwrap();
    fs::write(dir.join("ctx/company.crt"), &company_pem).unwrap();
    let build = |name: &str, extra: &str, args: &[&str]| -> Run {
        let recipe = dir.join(format!("{name}.toml"));
        fs::write(&recipe, format!("{LOCAL_RECIPE}{extra}")).unwrap();
        run(stele()
            .arg("build")
            .arg(&recipe)
            .args(args)
            .arg("-o")
            .arg(dir.join(format!("out-{name}")))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .env("STELE_MIRROR_LOCAL", &url))
    };
    let company_file = r#"
[[files]]
src = "company.crt"
dest = "/usr/local/share/ca-certificates/Company CA.crt"
"#;
    let plain = build("plain", "", &[]);
    plain.expect_ok();
    let with = build("with", company_file, &[]);
    with.expect_ok();
    let (plain_layers, with_layers) = (
        layers_of(&dir.join("out-plain")),
        layers_of(&dir.join("out-with")),
    );
    assert_eq!(
        plain_layers[0].0, with_layers[0].0,
        "the package layer does not depend on the recipe's files"
    );
    let top = &with_layers.last().unwrap().1;
    let bundle =
        entry(top, "etc/ssl/certs/ca-certificates.crt").expect("the bundle, in the recipe layer");
    assert_eq!(bundle.data, [distro_pem, company_pem.clone()].concat());
    let pem = entry(top, "etc/ssl/certs/Company_CA.pem").expect("the .pem link");
    assert_eq!(
        pem.link.as_deref(),
        Some("/usr/local/share/ca-certificates/Company CA.crt")
    );
    let hashes: Vec<&TarEntry> = top
        .iter()
        .filter(|e| e.link.as_deref() == Some("Company_CA.pem"))
        .collect();
    assert_eq!(hashes.len(), 1, "one subject-hash link to it");

    // The same CA from another build context: the same image.
    let ctx = build(
        "ctx",
        company_file,
        &["--context", dir.join("ctx").to_str().unwrap()],
    );
    ctx.expect_ok();
    assert_eq!(ctx.last_line(), with.last_line());

    // The recipe's own bundle wins.
    let own = build(
        "own",
        &format!(
            "{company_file}\n[[paths]]\npath = \"/etc/ssl/certs/ca-certificates.crt\"\nkind = \"file\"\ncontent = \"mine\\n\"\n"
        ),
        &[],
    );
    own.expect_ok();
    let own_layers = layers_of(&dir.join("out-own"));
    let top = &own_layers.last().unwrap().1;
    assert_eq!(
        entry(top, "etc/ssl/certs/ca-certificates.crt")
            .unwrap()
            .data,
        b"mine\n"
    );
    assert!(entry(top, "etc/ssl/certs/Company_CA.pem").is_some());

    // Refused: a link (never followed), and a file that is no certificate.
    std::os::unix::fs::symlink("../company.crt", dir.join("ctx/cas/link.crt")).unwrap();
    let link = build(
        "link",
        "[[files]]\nsrc = \"cas\"\ndest = \"/usr/local/share/ca-certificates/cas\"\n",
        &["--context", dir.join("ctx").to_str().unwrap()],
    );
    assert!(!link.ok());
    assert!(
        link.stderr.contains("link.toml: /usr/local/share/ca-certificates/cas/link.crt is a link to ../company.crt; put the certificate file itself there"),
        "{}",
        link.stderr
    );
    fs::write(dir.join("bad.crt"), "not a certificate\n").unwrap();
    let bad = build(
        "bad",
        "[[files]]\nsrc = \"bad.crt\"\ndest = \"/usr/local/share/ca-certificates/bad.crt\"\n",
        &[],
    );
    assert!(!bad.ok());
    assert!(
        bad.stderr.contains("/usr/local/share/ca-certificates/bad.crt is not a PEM certificate; give a PEM certificate (`openssl x509"),
        "{}",
        bad.stderr
    );
}
