use tar::EntryType;

use super::*;
use crate::dpkg::deb::read_deb;
use crate::dpkg::deb::tests::{control_text, deb, TarBuilder};

/// A package with every kind of entry: files (one empty), a hard link, a
/// symlink, an xattr, and an mtime after the epoch used below.
fn sample() -> Vec<u8> {
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

fn cache_with(bytes: &[u8]) -> (tempfile::TempDir, UnpackCache, Digest) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let digest = store.put_bytes(bytes).unwrap();
    (dir, UnpackCache::open(&store).unwrap(), digest)
}

/// Same entries, metadata and bytes as `read_deb` gives.
fn assert_same(a: &DebContents, b: &DebContents) {
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
fn unpacked_contents_match_read_deb_and_survive_a_reload() {
    let bytes = sample();
    let (_dir, cache, digest) = cache_with(&bytes);
    assert!(cache.load(&digest).is_none());
    let unpacked = cache
        .unpack("t_1_amd64.deb", &digest, bytes.len() as u64)
        .unwrap();
    let in_memory = read_deb("t_1_amd64.deb", &bytes[..], 2_000).unwrap();
    assert_same(&unpacked.contents(2_000), &in_memory);
    assert!(unpacked
        .contents(2_000)
        .data
        .iter()
        .any(|e| matches!(e.node.kind, NodeKind::File(Content::Cached { .. }))));
    let reloaded = cache.load(&digest).expect("recorded");
    assert_same(&reloaded.contents(2_000), &in_memory);
    // Each build clamps to its own epoch; the record keeps shipped times.
    let late = reloaded.contents(u64::MAX);
    let tool = late.data.iter().find(|e| e.path == "usr/bin/tool").unwrap();
    assert_eq!(tool.node.mtime, 9_000);
    assert_eq!(reloaded.unpacked_size(), 20 + 200_000);
}

#[test]
fn a_damaged_record_or_pack_is_never_trusted() {
    let bytes = sample();
    let (dir, cache, digest) = cache_with(&bytes);
    let unpacked = cache.unpack("t.deb", &digest, bytes.len() as u64).unwrap();
    let pack = unpacked.pack.to_path_buf();

    // A pointer naming another blob: no record.
    let pointer = dir.path().join("unpacked/v1").join(digest.hex());
    let good_pointer = std::fs::read(&pointer).unwrap();
    std::fs::write(&pointer, format!("{digest}\n")).unwrap();
    assert!(cache.load(&digest).is_none());
    assert!(
        !pointer.exists(),
        "a record that does not check out is dropped"
    );

    // The index itself damaged: its digest no longer matches.
    std::fs::write(&pointer, &good_pointer).unwrap();
    let index_path = dir
        .path()
        .join("blobs/sha256")
        .join(&std::str::from_utf8(&good_pointer).unwrap().trim()[7..]);
    let mut index = std::fs::read(&index_path).unwrap();
    let at = index.len() / 2;
    index[at] ^= 1;
    std::fs::write(&index_path, &index).unwrap();
    assert!(cache.load(&digest).is_none());

    // A pack flipped in place: the file read from it fails, naming it.
    let unpacked = cache.unpack("t.deb", &digest, bytes.len() as u64).unwrap();
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
    let (_dir, cache, digest) = cache_with(&bytes);
    let e = cache
        .unpack("t.deb", &digest, bytes.len() as u64 + 1)
        .unwrap_err();
    assert!(matches!(e, UnpackError::Damaged { .. }), "{e}");
    assert!(cache.load(&digest).is_none(), "nothing recorded");
}

#[test]
fn an_adopted_entry_is_checked_as_a_record_of_its_own() {
    let bytes = sample();
    // One cache unpacks; another receives its index and pack, as a remote
    // cache hands them over, and adopts them without the .deb.
    let (_a, first, deb_digest) = cache_with(&bytes);
    let unpacked = first.unpack("t", &deb_digest, bytes.len() as u64).unwrap();
    let (index, index_size, pack, pack_size) = first.entry(&deb_digest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let second = UnpackCache::open(&store).unwrap();
    store.copy_from(&first.store, &index).unwrap();
    store.copy_from(&first.store, &pack).unwrap();
    assert_eq!(store.path(&index).metadata().unwrap().len(), index_size);

    let other = Digest::of(b"another package");
    assert!(second
        .adopt(&other, &index, index_size, &pack, true)
        .is_none());
    assert!(second
        .adopt(&deb_digest, &index, index_size, &other, true)
        .is_none());
    // A pack damaged on disk and not just checked is refused.
    let path = store.path(&pack);
    let mut damaged = std::fs::read(&path).unwrap();
    damaged[0] ^= 1;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &damaged).unwrap();
    assert!(second
        .adopt(&deb_digest, &index, index_size, &pack, false)
        .is_none());
    damaged[0] ^= 1;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &damaged).unwrap();
    let adopted = second
        .adopt(&deb_digest, &index, index_size, &pack, false)
        .unwrap();
    assert_eq!(pack_size, unpacked.unpacked_size());
    assert_same(&adopted.contents(u64::MAX), &unpacked.contents(u64::MAX));
    assert!(
        second.load(&deb_digest).is_some(),
        "recorded for later builds"
    );
}
