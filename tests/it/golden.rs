//! Golden digests: the fixture recipe must build to exactly these bytes.
//! They pin the encoding profile `stele-2026.1` (tar dialect, compressor
//! crates and versions, levels, chunk size): a dependency bump that changes
//! the output fails here. If that happens on purpose, bump `PROFILE_ID` in
//! src/layer/profile.rs and update the digests (scripts/update-golden.sh
//! prints them).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::*;

const PROFILE: &str = "stele-2026.1";
/// The uncompressed layer: changes only when the tar writer or the tree does.
/// (Last moved when images began embedding provenance: the recipe layer
/// holds the SBOM, the config and manifest the recipe digest; the
/// encoding profile did not change.)
const GOLDEN_DIFF_ID: &str =
    "sha256:909e286f8b6625fd54939054e051df900f6ee054fc9b824239f19ea0d92396bd";
const GOLDEN_GZIP: &str = "sha256:8a090fbfc156bec9040eca3d6b75edbde3edef8bfbcf19330d206d5e520b9892";
const GOLDEN_ZSTD: &str = "sha256:a65513334ca780dd84b927992d6af18526f4a8c3f6eb431ab0f0486dddaebec5";

/// Files of the fixture that are executable; every other file gets 0644.
const EXECUTABLE: &[&str] = &["files/bin/hello"];

/// Copies the committed fixture with modes set here, not by the checkout
/// (git keeps at most the +x bit, and the umask shapes the rest).
fn fixture_copy(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
    for entry in walkdir::WalkDir::new(&src).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&src).unwrap();
        let to = dest.join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            assert!(
                entry.file_type().is_file(),
                "{}: the fixture holds only files and folders",
                rel.display()
            );
            let rel_s = rel.to_str().unwrap();
            let mode = if EXECUTABLE.contains(&rel_s) {
                0o755
            } else {
                0o644
            };
            write_file(&to, fs::read(entry.path()).unwrap(), mode);
        }
    }
}

#[test]
fn fixture_builds_to_the_golden_digests() {
    let tmp = tempdir();
    let dir = tmp.path().join("golden");
    fixture_copy(&dir);
    let gzip = build(&dir.join("recipe.toml"), &tmp.path().join("gzip"));
    let zstd = build(&dir.join("recipe-zstd.toml"), &tmp.path().join("zstd"));
    let lg = check_layout(&tmp.path().join("gzip"));
    let lz = check_layout(&tmp.path().join("zstd"));
    let diff_id = lg.config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    // scripts/update-golden.sh reads these lines.
    println!("golden diff_id: {diff_id}");
    println!("golden gzip: {gzip}");
    println!("golden zstd: {zstd}");

    assert_eq!(lg.manifest["annotations"]["dev.stele.encoding"], PROFILE);
    assert_eq!(lz.manifest["annotations"]["dev.stele.encoding"], PROFILE);
    assert_eq!(
        lz.config["rootfs"]["diff_ids"][0],
        diff_id.as_str(),
        "gzip and zstd images hold the same tar"
    );
    assert_eq!(diff_id, GOLDEN_DIFF_ID, "the canonical tar changed");
    assert_eq!(gzip, GOLDEN_GZIP, "the gzip image changed");
    assert_eq!(zstd, GOLDEN_ZSTD, "the zstd image changed");
}

#[test]
fn golden_does_not_depend_on_checkout_modes() {
    // A checkout under umask 077 (and without the +x bit) must not matter:
    // the copy sets every mode itself.
    let tmp = tempdir();
    let a = tmp.path().join("a");
    fixture_copy(&a);
    let b = tmp.path().join("b");
    fixture_copy(&b);
    let d1 = build(&a.join("recipe.toml"), &tmp.path().join("la"));
    let hello = a.join("files/bin/hello");
    fs::set_permissions(&hello, fs::Permissions::from_mode(0o700)).unwrap();
    let d2 = build(&a.join("recipe.toml"), &tmp.path().join("lb"));
    assert_eq!(
        d1, d2,
        "0700 and 0755 are both executable: same default mode"
    );
    fs::set_permissions(b.join("files/bin/hello"), fs::Permissions::from_mode(0o644)).unwrap();
    let d3 = build(&b.join("recipe.toml"), &tmp.path().join("lc"));
    assert_ne!(d1, d3, "the executable bit is the one mode bit that counts");
}
