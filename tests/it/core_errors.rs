//! Bad recipes: each is refused with a non-zero exit, a message naming the
//! recipe's file:line:column and what would fix it, and no output at all
//! (no layout, no staging folder left beside where it would have gone).

use std::fs;
use std::path::Path;

use crate::support::*;

const HEAD: &str = "[image]\nname = \"bad\"\n";

/// One bad recipe: its text after `HEAD`, the text the error must point
/// at (its first occurrence gives the expected line:column; `None` where
/// the mistake has no single place), and words of the fix the message gives.
struct Case {
    name: &'static str,
    body: &'static str,
    at: Option<&'static str>,
    hint: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "unknown key",
        body: "colour = \"blue\"\n",
        at: Some("colour"),
        hint: &["unknown field `colour`", "remove it or correct its spelling"],
    },
    Case {
        name: "unknown key in a nested table",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"/a\"\nmod = \"0644\"\n",
        at: Some("mod ="),
        hint: &["unknown field `mod`", "expected one of", "mode"],
    },
    Case {
        name: "wrong type",
        body: "epoch = \"yesterday\"\n",
        at: Some("\"yesterday\""),
        hint: &["invalid type: string", "expected i64", "write the value as that type"],
    },
    Case {
        name: "wrong type in a list",
        body: "[config]\nentrypoint = \"/bin/app\"\n",
        at: Some("\"/bin/app\""),
        hint: &["invalid type", "expected a sequence", "write the value as that type"],
    },
    Case {
        name: "missing required key",
        body: "[[files]]\nsrc = \"a.txt\"\n",
        at: Some("[[files]]"),
        hint: &["missing field `dest`", "add it"],
    },
    Case {
        name: "missing src",
        body: "[[files]]\nsrc = \"nope.txt\"\ndest = \"/nope\"\n",
        at: Some("\"nope.txt\""),
        hint: &["`nope.txt` does not exist", "looked for"],
    },
    Case {
        name: "src climbing out with ..",
        body: "[[files]]\nsrc = \"../a.txt\"\ndest = \"/a\"\n",
        at: Some("\"../a.txt\""),
        hint: &["climbs out", "move the file beside the recipe"],
    },
    Case {
        name: "absolute src",
        body: "[[files]]\nsrc = \"/etc/hostname\"\ndest = \"/a\"\n",
        at: Some("\"/etc/hostname\""),
        hint: &["is absolute", "relative to the recipe's folder"],
    },
    Case {
        name: "dest not absolute",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"etc/a.txt\"\n",
        at: Some("\"etc/a.txt\""),
        hint: &["not an absolute path", "start with `/`"],
    },
    Case {
        name: "path not absolute",
        body: "[[paths]]\npath = \"tmp\"\nkind = \"dir\"\n",
        at: Some("\"tmp\""),
        hint: &["not an absolute path", "`/tmp`"],
    },
    Case {
        name: ".. in dest",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"/etc/../a.txt\"\n",
        at: Some("\"/etc/../a.txt\""),
        hint: &["contains `..`", "without `..`"],
    },
    Case {
        name: "symlink inside a copied folder pointing outside",
        body: "[[files]]\nsrc = \"tree\"\ndest = \"/tree\"\n",
        at: Some("\"tree\""),
        hint: &["outside the recipe's folder", "copy the file it points to"],
    },
    Case {
        name: "src that is a symlink to outside",
        body: "[[files]]\nsrc = \"outlink\"\ndest = \"/x\"\n",
        at: Some("\"outlink\""),
        hint: &["outside the recipe's folder", "copy the file it points to"],
    },
    Case {
        name: "invalid mode",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"/a\"\nmode = \"0888\"\n",
        at: Some("\"0888\""),
        hint: &["not an octal mode", "\"0644\""],
    },
    Case {
        name: "mode as a number",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"/a\"\nmode = 644\n",
        at: Some("644\n"),
        hint: &["mode = 644 is not a string", "write mode as a string, \"0644\""],
    },
    Case {
        name: "invalid owner",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"/a\"\nowner = \"root\"\n",
        at: Some("\"root\""),
        hint: &["not numeric `uid:gid`", "\"65532:65532\""],
    },
    Case {
        name: "owner uid out of range",
        body: "[[paths]]\npath = \"/d\"\nkind = \"dir\"\nowner = \"4294967296:0\"\n",
        at: Some("\"4294967296:0\""),
        hint: &["not numeric `uid:gid`"],
    },
    Case {
        name: "duplicate dest with different content",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"/etc/app.conf\"\n\n[[files]]\nsrc = \"b.txt\"\ndest = \"/etc/app.conf\"\n",
        at: Some("\"b.txt\""),
        hint: &["/etc/app.conf is given twice with different content", "keep one"],
    },
    Case {
        name: "file and path at the same place",
        body: "[[files]]\nsrc = \"a.txt\"\ndest = \"/etc/app.conf\"\n\n[[paths]]\npath = \"/etc/app.conf\"\nkind = \"dir\"\n",
        at: Some("\"/etc/app.conf\"\nkind"),
        hint: &["given twice with different kinds", "keep one"],
    },
    Case {
        name: "unknown path kind",
        body: "[[paths]]\npath = \"/dev/null\"\nkind = \"device\"\n",
        at: Some("\"device\""),
        hint: &["kind `device` is not known", "\"dir\", \"file\", \"symlink\""],
    },
    Case {
        name: "symlink path without target",
        body: "[[paths]]\npath = \"/bin/sh\"\nkind = \"symlink\"\n",
        at: Some("\"symlink\""),
        hint: &["needs `target"],
    },
];

/// Line and column (1-based) of the first occurrence of `needle`.
fn line_col(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in {text}"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// A recipe folder with the sources the cases name, including links that
/// lead out of it, inside a parent that holds the link targets.
fn sources(parent: &Path) -> std::path::PathBuf {
    let dir = parent.join("recipe");
    write_file(&dir.join("a.txt"), "a\n", 0o644);
    write_file(&dir.join("b.txt"), "b\n", 0o644);
    write_file(&parent.join("secret.txt"), "outside\n", 0o644);
    write_file(&dir.join("tree/ok.txt"), "fine\n", 0o644);
    fs::create_dir_all(dir.join("tree/deep")).unwrap();
    std::os::unix::fs::symlink("../../../secret.txt", dir.join("tree/deep/escape")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", dir.join("outlink")).unwrap();
    dir
}

#[test]
fn bad_recipes_are_refused_with_place_and_fix() {
    let tmp = tempdir();
    let dir = sources(tmp.path());
    let mut failures = Vec::new();
    for case in CASES {
        let text = format!("{HEAD}{}", case.body);
        let recipe = dir.join("recipe.toml");
        fs::write(&recipe, &text).unwrap();
        let out_parent = tmp.path().join("outputs");
        fs::create_dir_all(&out_parent).unwrap();
        let out = out_parent.join("image");
        let r = run(stele().arg("build").arg(&recipe).arg("-o").arg(&out));
        let mut problems = Vec::new();
        if r.ok() {
            problems.push("exit status 0".to_string());
        }
        if let Some(at) = case.at {
            let (l, c) = line_col(&text, at);
            let want = format!("{}:{l}:{c}:", recipe.display());
            if !r.stderr.contains(&want) {
                problems.push(format!("does not name {want}"));
            }
        } else if !r.stderr.contains(recipe.to_str().unwrap()) {
            problems.push("does not name the recipe".into());
        }
        for h in case.hint {
            if !r.stderr.contains(h) {
                problems.push(format!("no hint `{h}`"));
            }
        }
        if r.stderr.matches(case.hint[0]).count() > 1 {
            problems.push("the message is printed more than once".into());
        }
        if out.exists() {
            problems.push("the output was written".into());
        }
        let left = leftovers(&out_parent, ".stele-");
        if !left.is_empty() {
            problems.push(format!("staging left behind: {left:?}"));
        }
        if !r.stdout.trim().is_empty() {
            problems.push(format!("stdout is not empty: {}", r.stdout));
        }
        if std::env::var_os("STELE_SHOW_ERRORS").is_some() {
            eprintln!("--- {}\n{}", case.name, r.stderr.trim());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {}",
                case.name,
                problems.join("; "),
                r.stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn failed_build_keeps_the_previous_layout() {
    let tmp = tempdir();
    let dir = sources(tmp.path());
    let recipe = dir.join("recipe.toml");
    let out = tmp.path().join("layout");
    fs::write(
        &recipe,
        format!("{HEAD}[[files]]\nsrc = \"a.txt\"\ndest = \"/a\"\n"),
    )
    .unwrap();
    build(&recipe, &out);
    let before = snapshot(&out);
    // Fails late, after blobs were being written: while the tree is built.
    fs::write(
        &recipe,
        format!("{HEAD}[[files]]\nsrc = \"a.txt\"\ndest = \"/a\"\n[[files]]\nsrc = \"b.txt\"\ndest = \"/a\"\n"),
    )
    .unwrap();
    let r = run(stele().arg("build").arg(&recipe).arg("-o").arg(&out));
    r.expect_fail();
    assert_eq!(snapshot(&out), before, "the old layout is intact");
    assert!(leftovers(tmp.path(), ".stele-").is_empty());
}

#[test]
fn missing_recipe_is_named() {
    let tmp = tempdir();
    let recipe = tmp.path().join("nowhere.toml");
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(tmp.path().join("o")));
    r.expect_fail();
    assert!(r.stderr.contains(recipe.to_str().unwrap()), "{}", r.stderr);
    assert!(!tmp.path().join("o").exists());
}
