//! Reading a layout back: the image `stele build` wrote opens into the same
//! digests, a damaged blob is named, and selection by digest works.

use std::fs;

use crate::support::tree::populate;
use crate::support::*;
use stele::source::layout::{open_layout, Selector};

#[test]
fn built_layout_reads_back_with_its_digest_and_damage_is_named() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let layout = tmp.path().join("layout");
    let digest = build(&src.join("recipe.toml"), &layout);

    let opened = open_layout(&layout, &Selector::Only).unwrap();
    assert_eq!(opened.digest().to_string(), digest);
    assert_eq!(opened.built.images.len(), 1);
    let image = &opened.built.images[0];
    assert_eq!(image.platform.to_string(), "linux/amd64");
    assert_eq!(image.layers.len(), 1);

    let by_digest = open_layout(&layout, &Selector::Digest(digest.parse().unwrap())).unwrap();
    assert_eq!(by_digest.digest().to_string(), digest);
    let other = stele::oci::Digest::of(b"other");
    let e = open_layout(&layout, &Selector::Digest(other.clone()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&other.to_string()) && e.contains(&digest), "{e}");

    // A flipped byte in the layer blob is caught and the blob named.
    let blob = layout
        .join("blobs/sha256")
        .join(image.layers[0].digest.hex());
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let e = open_layout(&layout, &Selector::Only)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(image.layers[0].digest.hex()) && e.contains("damaged"),
        "{e}"
    );

    let e = open_layout(tmp.path(), &Selector::Only)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not an OCI image layout"), "{e}");
}
