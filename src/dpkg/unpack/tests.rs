use tar::EntryType;

use super::*;
use crate::dpkg::deb::read_deb;
use crate::dpkg::deb::tests::{control_text, deb, TarBuilder};

/// A package with every kind of entry: files (one empty), a hard link, a
/// symlink, an xattr, and an mtime after the epoch used below.
pub(crate) fn sample() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("./")
        .dir("./usr/")
        .dir("./usr/bin/")
        .raw(
            b"./usr/bin/tool",
            EntryType::Regular,
            b"#!/bin/sh\necho tool\n",
            b"",
            0o755,
            (0, 0),
            9_000,
        )
        .raw(
            b"./usr/bin/alias",
            EntryType::Link,
            b"",
            b"./usr/bin/tool",
            0o755,
            (0, 0),
            1_000,
        )
        .symlink("./usr/bin/sym", "tool")
        .file("./usr/empty", b"")
        .pax(&[("SCHILY.xattr.user.k", b"\x00\x01")])
        .file("./usr/data", &vec![7u8; 200_000]);
    deb(
        &[
            ("control", control_text("t", "1").as_bytes()),
            ("md5sums", b"0  usr/bin/tool\n"),
        ],
        &t.finish(),
        "xz",
    )
}

fn store_with(bytes: &[u8]) -> (tempfile::TempDir, BlobStore, Digest) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let digest = store.put_bytes(bytes).unwrap();
    (dir, store, digest)
}

/// Same entries, metadata and bytes as `read_deb` gives.
pub(crate) fn assert_same(a: &DebContents, b: &DebContents) {
    assert_eq!(a.control, b.control);
    assert_eq!(a.data.len(), b.data.len());
    for (x, y) in a.data.iter().zip(&b.data) {
        assert_eq!(x.path, y.path);
        let (nx, ny) = (&x.node, &y.node);
        assert_eq!(
            (nx.mode, nx.uid, nx.gid, nx.mtime, &nx.xattrs),
            (ny.mode, ny.uid, ny.gid, ny.mtime, &ny.xattrs),
            "{}",
            x.path
        );
        match (&nx.kind, &ny.kind) {
            (NodeKind::File(cx), NodeKind::File(cy)) => {
                assert_eq!(cx.read_all().unwrap(), cy.read_all().unwrap(), "{}", x.path);
                assert!(cx.same_bytes(cy));
            }
            (kx, ky) => assert_eq!(kx, ky, "{}", x.path),
        }
    }
}

#[test]
fn unpacked_contents_match_read_deb_and_survive_their_index() {
    let bytes = sample();
    let (_dir, store, digest) = store_with(&bytes);
    let unpacked = unpack(&store, "t_1_amd64.deb", &digest, bytes.len() as u64).unwrap();
    let in_memory = read_deb("t_1_amd64.deb", &bytes[..], 2_000).unwrap();
    assert_same(&unpacked.contents(2_000), &in_memory);
    assert!(unpacked
        .contents(2_000)
        .data
        .iter()
        .any(|e| matches!(e.node.kind, NodeKind::File(Content::Cached { .. }))));
    let reloaded = UnpackedDeb::from_index(&unpacked.index_bytes(), &digest, &store).unwrap();
    assert_same(&reloaded.contents(2_000), &in_memory);
    // Each build clamps to its own epoch; the index keeps shipped times.
    let late = reloaded.contents(u64::MAX);
    let tool = late.data.iter().find(|e| e.path == "usr/bin/tool").unwrap();
    assert_eq!(tool.node.mtime, 9_000);
    assert_eq!(reloaded.unpacked_size(), 20 + 200_000);
}

#[test]
fn an_index_answers_only_its_package_and_must_fit_its_pack() {
    let bytes = sample();
    let (_dir, store, digest) = store_with(&bytes);
    let unpacked = unpack(&store, "t.deb", &digest, bytes.len() as u64).unwrap();
    let index = unpacked.index_bytes();
    assert!(UnpackedDeb::from_index(&index, &Digest::of(b"other"), &store).is_none());
    let mut short = unpacked.index.clone();
    short.pack_size -= 1;
    let short = serde_json::to_vec(&short).unwrap();
    assert!(UnpackedDeb::from_index(&short, &digest, &store).is_none());
    assert!(UnpackedDeb::from_index(b"{}", &digest, &store).is_none());
}

#[test]
fn a_damaged_pack_is_never_trusted() {
    let bytes = sample();
    let (_dir, store, digest) = store_with(&bytes);
    let unpacked = unpack(&store, "t.deb", &digest, bytes.len() as u64).unwrap();
    let pack = unpacked.pack.to_path_buf();
    // A pack flipped in place: the file read from it fails, naming it.
    let mut data = std::fs::read(&pack).unwrap();
    data[30] ^= 0xff;
    std::fs::write(&pack, &data).unwrap();
    let contents = unpacked.contents(0);
    let node = &contents
        .data
        .iter()
        .find(|e| e.path == "usr/data")
        .unwrap()
        .node;
    let NodeKind::File(content) = &node.kind else {
        panic!("usr/data is a file")
    };
    let e = content.read_all().unwrap_err();
    assert!(e.to_string().contains("is damaged"), "{e}");
}

#[test]
fn a_deb_that_is_not_the_locked_one_is_refused() {
    let bytes = sample();
    let (_dir, store, digest) = store_with(&bytes);
    let e = unpack(&store, "t.deb", &digest, bytes.len() as u64 + 1).unwrap_err();
    assert!(matches!(e, UnpackError::Damaged { .. }), "{e}");
}
