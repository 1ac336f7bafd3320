//! Golden digests: the fixture recipe must build to exactly these bytes,
//! with each encoding profile stele writes (tar dialect, compressor crates
//! and versions, levels, chunk or block size): a dependency bump that
//! changes the output fails here. If that happens on purpose, add a new
//! profile in src/layer/profile.rs and pin its digests here (the old
//! profile must keep its own; scripts/update-golden.sh prints them).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::podman::{compile_hello, lowercase_tempdir, podman_run};
use crate::support::*;

const OLD: &str = "stele-2026.1";
const NEW: &str = "stele-2026.2";
/// The uncompressed layer: changes only when the tar writer or the tree does.
/// (Last moved when images began embedding provenance: the recipe layer
/// holds the SBOM, the config and manifest the recipe digest; the
/// encoding profile did not change.)
const GOLDEN_DIFF_ID: &str =
    "sha256:909e286f8b6625fd54939054e051df900f6ee054fc9b824239f19ea0d92396bd";
/// The fixture's images with the newest profile (the recipes name none).
const GOLDEN_GZIP: &str = "sha256:6bb159572171e1758a09c14de832d71e8b5d9b6178b41984c241a8cb7c5391e2";
const GOLDEN_ZSTD: &str = "sha256:3835d1124096e90e0e3d377d578f1040645d476187e0404dc891abd8c7e96e21";
/// The fixture's images with `encoding = "stele-2026.1"` added to the
/// recipes. Their layers are the bytes stele wrote before 2026.2 existed
/// (the images without the pin were sha256:8a090fbf… and sha256:a6551333…).
const GOLDEN_GZIP_2026_1: &str =
    "sha256:ff58c0471529b56dcd5283d750f3d7f8aa165c18c8841eaac607875717b3b213";
const GOLDEN_ZSTD_2026_1: &str =
    "sha256:98343ec28647e94be163971943338eb542aa342e9a5cb74b6aeeac4c84e29443";
const LAYER_GZIP_2026_1: &str =
    "sha256:86b274b78d5c9cc3f702cee103fa524c2f45827c88941bf1fc53f1fa3ec82571";
const LAYER_ZSTD_2026_1: &str =
    "sha256:5d53aa3b678ea44ac51e46017876d0ff7fdaed21da3e387f6d9223caaeb8c8c9";

/// A layer of many blocks (`big_text`), per profile and compression; the
/// 2026.1 values are what stele wrote before 2026.2 existed.
const BIG_LAYERS: [(&str, &str, &str); 4] = [
    (
        OLD,
        "gzip",
        "sha256:28be83cdd8850826fc569e17877bda5865dd264c834d7d8c991c3c57100db908",
    ),
    (
        OLD,
        "zstd",
        "sha256:c15f2ecc2b32f3ac637ec28c7ec76f24cf151026fac864ddd01dc6d16de0fe01",
    ),
    (
        NEW,
        "gzip",
        "sha256:3a6ad6756ed0e3b49d33e1dfb81d07a043ce3d98671905ea71462600b813e51f",
    ),
    (
        NEW,
        "zstd",
        "sha256:262cc23bcd0a9fa83dcf4ded884de612bbc1cda1f681706521e9fc18f5be7be6",
    ),
];

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
    for (profile, pin) in [(NEW, false), (OLD, true)] {
        let mut digests = Vec::new();
        let mut diff_ids = Vec::new();
        let mut layers = Vec::new();
        for name in ["recipe", "recipe-zstd"] {
            let mut recipe = dir.join(format!("{name}.toml"));
            if pin {
                let text = fs::read_to_string(&recipe).unwrap();
                recipe = dir.join(format!("{name}-{profile}.toml"));
                fs::write(&recipe, pin_profile(&text, profile)).unwrap();
            }
            let out = tmp.path().join(format!("{name}-{profile}"));
            digests.push(build(&recipe, &out));
            let l = check_layout(&out);
            assert_eq!(l.manifest["annotations"]["dev.stele.encoding"], profile);
            diff_ids.push(
                l.config["rootfs"]["diff_ids"][0]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
            layers.push(
                l.manifest["layers"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        // scripts/update-golden.sh reads these lines.
        println!("golden {profile} diff_id: {}", diff_ids[0]);
        println!("golden {profile} gzip: {}", digests[0]);
        println!("golden {profile} zstd: {}", digests[1]);
        println!("golden {profile} layers: {layers:?}");
        assert_eq!(
            diff_ids[0], diff_ids[1],
            "gzip and zstd images hold the same tar"
        );
        assert_eq!(diff_ids[0], GOLDEN_DIFF_ID, "the canonical tar changed");
        if pin {
            assert_eq!(
                layers,
                [LAYER_GZIP_2026_1, LAYER_ZSTD_2026_1],
                "a {OLD} layer changed"
            );
            assert_eq!(
                digests,
                [GOLDEN_GZIP_2026_1, GOLDEN_ZSTD_2026_1],
                "a {OLD} image changed"
            );
        } else {
            assert_eq!(digests, [GOLDEN_GZIP, GOLDEN_ZSTD], "a {NEW} image changed");
        }
    }
}

/// `text` (a recipe) with `encoding = "<profile>"` in its `[image]`.
fn pin_profile(text: &str, profile: &str) -> String {
    assert!(text.contains("\n[image]\n"));
    text.replacen(
        "\n[image]\n",
        &format!("\n[image]\nencoding = \"{profile}\"\n"),
        1,
    )
}

/// `len` bytes of text: compressible, different in every block, the same
/// on every machine.
fn big_text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 20] = [
        "layer",
        "digest",
        "image",
        "manifest",
        "config",
        "tar",
        "gzip",
        "zstd",
        "recipe",
        "epoch",
        "reproducible",
        "package",
        "debian",
        "index",
        "blob",
        "the",
        "a",
        "of",
        "and",
        "block",
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.extend_from_slice(WORDS[(x >> 33) as usize % WORDS.len()].as_bytes());
        out.push(if (x >> 20) % 8 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// A recipe folder whose one layer holds a 5 MiB text file (more than
/// one block of either codec) at `dest`.
fn big_recipe(
    dir: &Path,
    compression: &str,
    profile: Option<&str>,
    extra: &str,
) -> std::path::PathBuf {
    let text = big_text(5 * 1024 * 1024 + 12345);
    write_file(&dir.join("files/big.txt"), text, 0o644);
    let mut recipe = format!(
        "[image]\nname = \"big\"\nepoch = 1700000000\ncompression = \"{compression}\"\n\n\
         [[files]]\nsrc = \"files/big.txt\"\ndest = \"/big.txt\"\n{extra}"
    );
    if let Some(p) = profile {
        recipe = pin_profile(&format!("\n{recipe}"), p);
    }
    let path = dir.join(format!(
        "{compression}-{}.toml",
        profile.unwrap_or("default")
    ));
    fs::write(&path, recipe).unwrap();
    path
}

#[test]
fn layers_of_many_blocks_are_pinned_and_independent_of_jobs() {
    let tmp = tempdir();
    let dir = tmp.path().join("big");
    for (profile, compression, want) in BIG_LAYERS {
        let recipe = big_recipe(&dir, compression, Some(profile), "");
        let mut first = None;
        for jobs in ["1", "2", "8"] {
            let out = tmp.path().join(format!("{profile}-{compression}-{jobs}"));
            let digest = build_with(&recipe, &out, &["--jobs", jobs]);
            let l = check_layout(&out);
            let layer = l.manifest["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_string();
            println!("golden big {profile} {compression} --jobs {jobs}: {layer}");
            assert_eq!(layer, want, "{profile} {compression} with --jobs {jobs}");
            assert_eq!(first.get_or_insert(digest.clone()), &digest);
        }
    }
    // Without a pin a recipe without [apt] gets the newest profile.
    let out = tmp.path().join("default");
    build(&big_recipe(&dir, "zstd", None, ""), &out);
    let l = check_layout(&out);
    assert_eq!(l.manifest["annotations"]["dev.stele.encoding"], NEW);
    assert_eq!(l.manifest["layers"][0]["digest"], BIG_LAYERS[3].2);
}

#[test]
fn other_tools_read_layers_of_many_blocks() {
    let tmp = lowercase_tempdir();
    let dir = tmp.path().join("src");
    let want = big_text(5 * 1024 * 1024 + 12345);
    if have_tool("umoci") {
        // umoci 0.4.7 refuses zstd layers by media type.
        let out = tmp.path().join("umoci-layout");
        build(&big_recipe(&dir, "gzip", Some(NEW), ""), &out);
        let bundle = tmp.path().join("bundle");
        let r = run(Command::new("umoci")
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", out.display()))
            .arg(&bundle));
        r.expect_ok();
        assert!(
            fs::read(bundle.join("big.txt")).unwrap() == want,
            "umoci: big.txt differs"
        );
    }
    if have_tool("skopeo") {
        for compression in ["gzip", "zstd"] {
            let out = tmp.path().join(format!("skopeo-{compression}"));
            build(&big_recipe(&dir, compression, Some(NEW), ""), &out);
            // Copying with decompression makes skopeo read every block and
            // check the DiffID of what it read.
            let to = tmp.path().join(format!("skopeo-dir-{compression}"));
            let r = run(Command::new("skopeo")
                .args(["copy", "--dest-decompress"])
                .arg(format!("oci:{}:latest", out.display()))
                .arg(format!("dir:{}", to.display())));
            r.expect_ok();
            let diff_id = check_layout(&out).config["rootfs"]["diff_ids"][0]
                .as_str()
                .unwrap()
                .to_string();
            let hex = diff_id.trim_start_matches("sha256:");
            let tar = fs::read(to.join(hex)).expect("skopeo wrote the layer under its DiffID");
            assert_eq!(sha256_digest(&tar), diff_id, "skopeo {compression}");
        }
    }
    if have_tool("podman") && have_tool("runc") {
        let Some(_) = compile_hello(&dir) else { return };
        // hello prints the first line of /etc/motd: here the big file, so
        // podman must unpack every block of the layer to start it.
        let entry = "\n[[files]]\nsrc = \"hello\"\ndest = \"/hello\"\n\n\
                     [[files]]\nsrc = \"files/big.txt\"\ndest = \"/etc/motd\"\n\n\
                     [config]\nentrypoint = [\"/hello\"]\n";
        let first_line = want.split(|&b| b == b'\n').next().unwrap();
        let first_line =
            String::from_utf8(first_line[..first_line.len().min(62)].to_vec()).unwrap();
        let storage = tmp.path().join("p");
        for compression in ["gzip", "zstd"] {
            let out = tmp.path().join(format!("podman-{compression}"));
            build(&big_recipe(&dir, compression, Some(NEW), entry), &out);
            let r = podman_run(&storage, &format!("oci:{}:latest", out.display()));
            r.expect_ok();
            assert!(
                r.stdout.contains(&format!("motd={first_line}")),
                "podman {compression}: {}",
                r.stdout
            );
        }
    }
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
