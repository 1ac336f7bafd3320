//! The CI path's boundaries: outputs published only after a build
//! succeeded, the image config's user checked against the image's
//! accounts, and `--json` documents that say what the human lines say.

use std::fs;
use std::path::Path;

use crate::support::*;

fn recipe(dir: &Path, extra: &str) -> std::path::PathBuf {
    write_file(&dir.join("app/hello.txt"), "hello\n", 0o644);
    let path = dir.join("recipe.toml");
    fs::write(
        &path,
        format!(
            "[image]\nname = \"ci\"\nepoch = 1700000000\n\n[[files]]\nsrc = \"app/\"\ndest = \"/app\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_failing_digest_file_leaves_every_previous_output_as_it_was() {
    let tmp = tempdir();
    let recipe = recipe(tmp.path(), "");
    let out = tmp.path().join("out");
    let digest_file = tmp.path().join("digest");
    let first = build_with(
        &recipe,
        &out,
        &["--digest-file", digest_file.to_str().unwrap()],
    );
    let before = snapshot(&out);
    // Another image, and a digest file in a folder that does not exist.
    write_file(&tmp.path().join("app/more.txt"), "more\n", 0o644);
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(&out)
        .arg("--digest-file")
        .arg(tmp.path().join("missing/digest")));
    r.expect_fail();
    assert!(
        r.stderr.contains("missing") && r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&out), before, "the layout was replaced");
    assert_eq!(
        fs::read_to_string(&digest_file).unwrap(),
        format!("{first}\n")
    );
    let left = leftovers(tmp.path(), ".stele-");
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

#[test]
fn replacing_a_layout_swaps_it_whole() {
    let tmp = tempdir();
    let recipe = recipe(tmp.path(), "");
    let out = tmp.path().join("out");
    let first = build(&recipe, &out);
    write_file(&tmp.path().join("app/more.txt"), "more\n", 0o644);
    let second = build(&recipe, &out);
    assert_ne!(first, second);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["digest"] == second.as_str()),
        "{index}"
    );
    let left = leftovers(tmp.path(), ".stele-");
    assert!(left.is_empty(), "the old layout was left at {left:?}");
}

#[test]
fn a_user_the_image_does_not_have_is_refused_at_its_line() {
    let tmp = tempdir();
    let path = recipe(tmp.path(), "\n[config]\nuser = \"appuser\"\n");
    let r = run(stele()
        .arg("build")
        .arg(&path)
        .arg("-o")
        .arg(tmp.path().join("out")));
    r.expect_fail();
    assert!(
        r.stderr.contains("recipe.toml:10:8")
            && r.stderr.contains("user `appuser`")
            && r.stderr.contains("/etc/passwd")
            && r.stderr.contains("[accounts]"),
        "{}",
        r.stderr
    );
    assert!(!tmp.path().join("out").exists());

    // Declared under [accounts]: fine; a group must exist as well.
    let accounts = "\n[[accounts.users]]\nname = \"appuser\"\nuid = 1000\n\n[config]\nuser = \"appuser:appgroup\"\n";
    let path = recipe(tmp.path(), accounts);
    let r = run(stele()
        .arg("build")
        .arg(&path)
        .arg("-o")
        .arg(tmp.path().join("out")));
    r.expect_fail();
    assert!(r.stderr.contains("group `appgroup`"), "{}", r.stderr);
    let path = recipe(tmp.path(), &accounts.replace(":appgroup", ""));
    build(&path, &tmp.path().join("out"));

    // Numeric ids need no account.
    let path = recipe(tmp.path(), "\n[config]\nuser = \"1000:1000\"\n");
    build(&path, &tmp.path().join("out2"));
}

#[test]
fn build_json_describes_the_image_it_wrote() {
    let tmp = tempdir();
    let path = recipe(tmp.path(), "");
    let out = tmp.path().join("out");
    let digest = build(&path, &tmp.path().join("plain"));
    let r = run(stele()
        .arg("build")
        .arg(&path)
        .arg("-o")
        .arg(&out)
        .arg("--json"));
    r.expect_ok();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", r.stdout));
    assert_eq!(doc["digest"], digest.as_str());
    assert_eq!(doc["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(doc["tag"], "latest");
    assert!(doc["lock"].is_null());
    assert_eq!(doc["layer_cache"]["enabled"], true);
    let layout = check_layout(&out);
    let layers = doc["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), layout.layers.len());
    for (l, (media_type, bytes)) in layers.iter().zip(&layout.layers) {
        assert_eq!(l["size"], bytes.len() as u64);
        assert_eq!(l["digest"], sha256_digest(bytes).as_str());
        assert_eq!(l["media_type"], media_type.as_str());
    }
    let kinds: Vec<&str> = doc["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"provenance"), "{kinds:?}");
}
