//! A recipe's local CAs over a package tree as stele's install leaves it.

use super::*;
use crate::dpkg::install::java_trust::tests::ISRG;

const EPOCH: u64 = 1_700_000_000;

/// A self-signed P-256 CA ("Example Corp Root CA"), subject hash 89e5d190.
const CORP: &str = "-----BEGIN CERTIFICATE-----
MIIBwzCCAWmgAwIBAgIUGjga7YzlC93o79Y3oJckrLAu4BQwCgYIKoZIzj0EAwIw
NjEVMBMGA1UECgwMRXhhbXBsZSBDb3JwMR0wGwYDVQQDDBRFeGFtcGxlIENvcnAg
Um9vdCBDQTAgFw0yNjEyMDcwMTUxMTdaGA8yMTI2MTExMzAxNTExN1owNjEVMBMG
A1UECgwMRXhhbXBsZSBDb3JwMR0wGwYDVQQDDBRFeGFtcGxlIENvcnAgUm9vdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABB1WYO1Hw6FJyylZvaRnFfgXzXOo
Ze6fIyDvr1Ij/Jj9Wq9UZEiEXtGGQfGUa+5XMq0oLwZ5y6day7atwrl975GjUzBR
MB0GA1UdDgQWBBQxS1fTKgXk7EbSRzrZqv9onXxx+TAfBgNVHSMEGDAWgBQxS1fT
KgXk7EbSRzrZqv9onXxx+TAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQC83lzbAKgRpx4R8ooY7PwHs56g7rxISjm25ydSym1cewIgLn1ETbqBkRa2
WAd1qnvO/QxFhFpUKonvYHHxUreqD2k=
-----END CERTIFICATE-----
";

const BOTH: CaTools = CaTools {
    ca_certificates: true,
    java: true,
};

fn file(bytes: &[u8]) -> Node {
    Node::file(Content::bytes(bytes.to_vec()), 0o644, 0, 0, EPOCH)
}

fn put(tree: &mut FsTree, key: &str, node: Node) {
    tree.replace(key.to_string(), node);
}

/// ca-certificates (ISRG Root X1) and ca-certificates-java as stele's
/// install leaves them.
fn lower() -> FsTree {
    let isrg = "usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt";
    let mut t = FsTree::new();
    put(&mut t, TOOL, file(b"#!/bin/sh\n"));
    put(&mut t, JAVA_HOOK, file(b"#!/bin/sh\n"));
    put(&mut t, isrg, file(ISRG.as_bytes()));
    put(&mut t, CONF, file(b"# header\nmozilla/ISRG_Root_X1.crt\n"));
    put(&mut t, LOCAL_SRC, Node::dir(0o2775, 0, 50, EPOCH));
    put(&mut t, CERTS_DIR, Node::dir(0o755, 0, 0, EPOCH));
    let files = [(isrg, ISRG.as_bytes())];
    put(
        &mut t,
        BUNDLE,
        file(&ca_store::bundle(files.iter().copied())),
    );
    for (k, target) in ca_store::links(files.iter().copied()) {
        put(&mut t, &k, Node::symlink(target, 0, 0, EPOCH));
    }
    let store = java_trust::keystore(files.iter().copied(), EPOCH);
    put(&mut t, JAVA_CACERTS, file(&store));
    t
}

fn corp_top(name: &str, bytes: &[u8]) -> FsTree {
    let mut top = FsTree::new();
    put(&mut top, &format!("{LOCAL_SRC}/{name}"), file(bytes));
    top
}

fn bytes_of(n: &Node) -> Vec<u8> {
    match &n.kind {
        NodeKind::File(c) => c.read_all().unwrap(),
        other => panic!("not a file: {other:?}"),
    }
}

#[test]
fn nothing_under_the_local_folder_changes_nothing() {
    let mut top = FsTree::new();
    put(&mut top, "etc/motd", file(b"hi\n"));
    assert!(changes(&lower(), &top, BOTH, EPOCH).unwrap().is_empty());
    // The folder alone (no certificate) leaves everything as it was.
    let mut top = FsTree::new();
    put(&mut top, LOCAL_SRC, Node::dir(0o755, 0, 0, EPOCH));
    assert!(changes(&lower(), &top, BOTH, EPOCH).unwrap().is_empty());
}

/// The bundle gains the local CA after the distribution's, the links
/// `<name>.pem` and `<hash>.0`, and Java's store an entry
/// `debian:<name>.pem`; nothing else changes.
#[test]
fn a_local_ca_joins_the_bundle_links_and_java() {
    let top = corp_top("corp/Example Corp.crt", CORP.as_bytes());
    let out = changes(&lower(), &top, BOTH, EPOCH).unwrap();
    let keys: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "etc/ssl/certs/89e5d190.0",
            "etc/ssl/certs/Example_Corp.pem",
            BUNDLE,
            JAVA_CACERTS,
        ]
    );
    assert_eq!(bytes_of(&out[BUNDLE]), format!("{ISRG}{CORP}").into_bytes());
    let link = |k: &str| out[k].kind.clone();
    assert_eq!(
        link("etc/ssl/certs/Example_Corp.pem"),
        NodeKind::Symlink("/usr/local/share/ca-certificates/corp/Example Corp.crt".into())
    );
    assert_eq!(
        link("etc/ssl/certs/89e5d190.0"),
        NodeKind::Symlink("Example_Corp.pem".into())
    );
    let store = java_trust::parse(&bytes_of(&out[JAVA_CACERTS])).unwrap();
    let aliases: Vec<&str> = store.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        aliases,
        ["debian:example_corp.pem", "debian:isrg_root_x1.pem"]
    );
    // Without the folder below (no base-files), the recipe's files make it.
    let mut bare = lower();
    bare.remove(LOCAL_SRC);
    assert_eq!(changes(&bare, &top, BOTH, EPOCH).unwrap(), out);
    // Without a final newline, the bundle gets one (sed -e '$a\').
    let trimmed = CORP.trim_end().as_bytes();
    let out = changes(&lower(), &corp_top("c.crt", trimmed), BOTH, EPOCH).unwrap();
    assert_eq!(bytes_of(&out[BUNDLE]), format!("{ISRG}{CORP}").into_bytes());
}

/// A local file taking a distribution certificate's link name replaces
/// it (`ln -sf`): the old hash link goes, whited out.
#[test]
fn a_local_ca_named_as_a_distribution_one_takes_its_links() {
    let top = corp_top("ISRG_Root_X1.crt", CORP.as_bytes());
    let out = changes(&lower(), &top, BOTH, EPOCH).unwrap();
    assert_eq!(out["etc/ssl/certs/4042bcee.0"].kind, NodeKind::Whiteout);
    assert_eq!(
        out["etc/ssl/certs/ISRG_Root_X1.pem"].kind,
        NodeKind::Symlink("/usr/local/share/ca-certificates/ISRG_Root_X1.crt".into())
    );
    assert_eq!(
        out["etc/ssl/certs/89e5d190.0"].kind,
        NodeKind::Symlink("ISRG_Root_X1.pem".into())
    );
}

#[test]
fn without_java_the_store_stays_and_without_ca_certificates_nothing_happens() {
    let top = corp_top("corp.crt", CORP.as_bytes());
    let no_java = CaTools {
        java: false,
        ..BOTH
    };
    let out = changes(&lower(), &top, no_java, EPOCH).unwrap();
    assert!(out.contains_key(BUNDLE) && !out.contains_key(JAVA_CACERTS));
    assert!(changes(&FsTree::new(), &top, CaTools::default(), EPOCH)
        .unwrap()
        .is_empty());
    // ca-certificates from a base image: refused, with the fix.
    let err = changes(&lower(), &top, CaTools::default(), EPOCH).unwrap_err();
    assert!(
        err.to_string()
            .contains("add ca-certificates to [apt] packages"),
        "{err}"
    );
}

#[test]
fn what_is_not_one_bounded_pem_certificate_file_is_refused() {
    let err = |top: FsTree| {
        changes(&lower(), &top, BOTH, EPOCH)
            .unwrap_err()
            .to_string()
    };
    let e = err(corp_top("corp.crt", b"not a certificate"));
    assert!(
        e.starts_with("/usr/local/share/ca-certificates/corp.crt is not a PEM certificate; ")
            && e.contains("openssl x509"),
        "{e}"
    );
    let e = err(corp_top("two.crt", format!("{CORP}{CORP}").as_bytes()));
    assert!(e.contains("two.crt holds 2 certificates"), "{e}");
    let big = vec![b'a'; MAX_CA_FILE as usize + 1];
    let e = err(corp_top("big.crt", &big));
    assert!(e.contains("big.crt is 1048577 bytes"), "{e}");
    let mut top = FsTree::new();
    put(
        &mut top,
        &format!("{LOCAL_SRC}/link.crt"),
        Node::symlink("/etc/shadow", 0, 0, EPOCH),
    );
    let e = err(top);
    assert!(
        e.contains("link.crt is a link to /etc/shadow") && e.contains("does not follow links"),
        "{e}"
    );
    let mut top = corp_top("a.crt", CORP.as_bytes());
    put(
        &mut top,
        &format!("{LOCAL_SRC}/b.crt"),
        Node {
            kind: NodeKind::Hardlink(format!("{LOCAL_SRC}/a.crt")),
            ..file(b"")
        },
    );
    assert!(err(top).contains("b.crt is a hard link"));
    let mut top = FsTree::new();
    put(&mut top, LOCAL_SRC, Node::symlink("/tmp", 0, 0, EPOCH));
    assert!(err(top).contains("ca-certificates is a link to /tmp"));
    // A file not named .crt is not the tool's, and is not read.
    let out = changes(&lower(), &corp_top("README", b"x"), BOTH, EPOCH).unwrap();
    assert!(out.is_empty());
}

/// The configuration decides the distribution's part: a `!` line leaves
/// a certificate out, and without the file the bundle holds the local
/// ones alone, as the tool leaves it.
#[test]
fn the_configuration_decides_the_distribution_part() {
    let top = corp_top("corp.crt", CORP.as_bytes());
    let mut lower = lower();
    put(&mut lower, CONF, file(b"!mozilla/ISRG_Root_X1.crt\n"));
    let out = changes(&lower, &top, BOTH, EPOCH).unwrap();
    assert_eq!(bytes_of(&out[BUNDLE]), CORP.as_bytes());
    assert_eq!(
        out["etc/ssl/certs/ISRG_Root_X1.pem"].kind,
        NodeKind::Whiteout
    );
    // The hook never removes: Java keeps the deselected CA.
    let store = java_trust::parse(&bytes_of(&out[JAVA_CACERTS])).unwrap();
    assert_eq!(store.len(), 2);
    lower.remove(CONF);
    let out = changes(&lower, &top, BOTH, EPOCH).unwrap();
    assert_eq!(bytes_of(&out[BUNDLE]), CORP.as_bytes());
}
