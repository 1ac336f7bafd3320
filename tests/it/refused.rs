//! A refused build: the error names the recipe line, and nothing is left
//! where the output would have gone, not even the folders made for it.

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
