//! A refused build: the error names the recipe line, and nothing is left
//! where the output would have gone, not even the folders made for it.
//! A refused output is refused before any work.

use std::fs;

use crate::support::*;

#[test]
fn a_refused_build_leaves_no_output_folder_behind() {
    let tmp = tempdir();
    let recipe = tmp.path().join("recipe.toml");
    let cases: [(&[u8], &str); 4] = [
        // Refused at resolve, after the output's folders could be made.
        (
            b"[image]\nname = \"x\"\nepoch = 5\n[base]\nlayout = \"missing@sha256:0123456789012345678901234567890123456789012345678901234567890123\"\n",
            "recipe.toml:5:",
        ),
        (b"[image]\nname = \"x\"\nepoch = 253402300800\n", "recipe.toml:3:"),
        (
            b"[image]\nname = \"x\"\n[config]\nenv = { \"A=B\" = \"c\" }\n",
            "recipe.toml:4:",
        ),
        (b"[image]\nname = \"x\"\n# \xff\n", "recipe.toml:3:3:"),
    ];
    for (text, at) in cases {
        fs::write(&recipe, text).unwrap();
        for format in ["oci", "oci-archive"] {
            let out = tmp.path().join("out/deeper/image");
            let r = run(stele()
                .current_dir(tmp.path())
                .args(["build", "recipe.toml", "--format", format, "-o"])
                .arg(&out));
            r.expect_fail();
            assert!(r.stderr.contains(at), "want {at}: {}", r.stderr);
            assert!(
                !tmp.path().join("out").exists(),
                "a refused build left {}",
                tmp.path().join("out").display()
            );
        }
    }
}

#[test]
fn pull_refuses_an_output_it_may_not_replace_before_the_network() {
    let tmp = tempdir();
    let taken = tmp.path().join("notes.txt");
    fs::write(&taken, "mine").unwrap();
    let cache = tmp.path().join("cache");
    // Nothing listens on port 9: a request would fail otherwise.
    let r = run(stele()
        .args(["pull", "127.0.0.1:9/team/app:1", "--cache-dir"])
        .arg(&cache)
        .arg("-o")
        .arg(&taken));
    r.expect_fail();
    assert!(r.stderr.contains("refusing to replace"), "{}", r.stderr);
    assert!(!r.stderr.contains("pulling"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&taken).unwrap(), "mine");
    assert!(
        !cache.exists(),
        "the cache was opened before the output was checked"
    );
}

#[test]
fn push_names_a_file_destination_as_not_a_registry() {
    let tmp = tempdir();
    for (dest, noun) in [
        ("oci:out/app:1", "a layout folder"),
        ("oci-archive:app.tar", "an oci-archive"),
        ("docker-archive:app.tar:1", "a docker-archive"),
    ] {
        let r = run(stele()
            .current_dir(tmp.path())
            .args(["push", "missing-source", dest]));
        r.expect_fail();
        assert!(
            r.stderr.contains(&format!(
                "`{dest}` is {noun}, and `stele push` sends to a registry"
            )),
            "{}",
            r.stderr
        );
    }
    assert!(fs::read_dir(tmp.path()).unwrap().next().is_none());
}
