//! Everyday use of the CLI (issue 16): how much it says (`-q`, `-v`), the
//! messages people meet first, `[[files]] exclude` and `.steleignore`,
//! `init`, `completions`, `man`, `schema`, `inspect`, and the build
//! overrides (`--annotation`, `--label`, `--platform`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// A recipe folder with a small files-only recipe, and its own cache.
struct Fixture {
    tmp: tempfile::TempDir,
}

const SMALL_RECIPE: &str = r#"
[image]
name = "everyday"
epoch = 1700000000
platforms = ["linux/amd64", "linux/arm64"]

[[files]]
src = "app"
dest = "/opt/app"

[config]
entrypoint = ["/opt/app/run"]
"#;

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_recipe(SMALL_RECIPE)
    }

    fn with_recipe(recipe: &str) -> Fixture {
        let tmp = tempdir();
        write_file(&tmp.path().join("src/recipe.toml"), recipe, 0o644);
        write_file(
            &tmp.path().join("src/app/run"),
            "#!/bin/sh\necho hi\n",
            0o755,
        );
        write_file(&tmp.path().join("src/app/data.txt"), "data\n", 0o644);
        Fixture { tmp }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn recipe(&self) -> PathBuf {
        self.path("src/recipe.toml")
    }

    /// `stele ARGS…` with this fixture's own cache folder.
    fn stele(&self, args: &[&str]) -> Command {
        let mut c = stele();
        c.args(args);
        c.env("XDG_CACHE_HOME", self.path("cache"));
        c
    }

    /// `stele build RECIPE -o OUT ARGS…`, run.
    fn build(&self, out: &str, args: &[&str]) -> Run {
        let mut c = self.stele(&["build"]);
        c.arg(self.recipe())
            .arg("-o")
            .arg(self.path(out))
            .args(args);
        run(&mut c)
    }
}

#[track_caller]
fn digest_of(r: &Run) -> String {
    r.expect_ok();
    let d = r.last_line().to_string();
    assert!(is_digest(&d), "not a digest: {:?}", r.stdout);
    d
}

// ---- item 1: -q / -v ------------------------------------------------------

#[test]
fn quiet_prints_only_the_result() {
    let f = Fixture::new();
    let r = f.build("out", &["-q"]);
    digest_of(&r);
    assert_eq!(r.stderr, "", "-q printed on stderr");
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    // Global: accepted after the subcommand and before it.
    let mut c = f.stele(&["-q", "build"]);
    c.arg(f.recipe()).arg("-o").arg(f.path("out2"));
    let r2 = run(&mut c);
    assert_eq!(digest_of(&r2), digest_of(&r));
    assert_eq!(r2.stderr, "");
}

#[test]
fn normal_and_verbose_progress_on_stderr() {
    let f = Fixture::new();
    let normal = f.build("out", &[]);
    let digest = digest_of(&normal);
    assert!(normal.stderr.contains("building "), "{}", normal.stderr);
    assert!(
        !normal.stderr.contains("  layer sha256:"),
        "{}",
        normal.stderr
    );
    let verbose = f.build("out", &["-v"]);
    assert_eq!(digest_of(&verbose), digest);
    assert!(
        verbose.stderr.contains("layer cache: hits 1, misses 0"),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose.stderr.contains("linux/arm64: manifest sha256:")
            && verbose.stderr.contains("  layer sha256:"),
        "{}",
        verbose.stderr
    );
    // stdout holds the result only, whatever the level.
    assert_eq!(verbose.stdout, normal.stdout);
    let both = f.build("out", &["-q", "-v"]);
    both.expect_fail();
}

// ---- item 2 and 8: messages said once, snapshotted -------------------------

/// Replaces the test's temp folder with `[TMP]` so snapshots hold still.
fn snapshot_filters(f: &Fixture) -> Vec<(String, &'static str)> {
    vec![(regex_escape(&f.tmp.path().display().to_string()), "[TMP]")]
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

macro_rules! assert_stderr_snapshot {
    ($f:expr, $name:expr, $text:expr) => {{
        let filters = snapshot_filters($f);
        let filters: Vec<(&str, &str)> = filters.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        insta::with_settings!({ filters => filters, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}

#[test]
fn integer_mode_says_write_it_as_a_string() {
    for (name, written) in [
        ("everyday_mode_leading_zero", "0755"),
        ("everyday_mode_integer", "755"),
    ] {
        let f = Fixture::with_recipe(&format!(
            "[image]\nname = \"x\"\n\n[[files]]\nsrc = \"app\"\ndest = \"/app\"\nmode = {written}\n"
        ));
        let r = f.build("out", &[]);
        r.expect_fail();
        assert_stderr_snapshot!(&f, name, r.stderr);
    }
}

#[test]
fn unwritable_output_folder_is_named_before_any_work() {
    let f = Fixture::new();
    let locked = f.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    // root writes anywhere it is allowed to; /sys/fs refuses even root.
    let root = std::fs::write(locked.join("probe"), "").is_ok();
    let out = if root {
        PathBuf::from("/sys/fs/stele-out")
    } else {
        locked.join("out")
    };
    let mut c = f.stele(&["build"]);
    c.arg(f.recipe()).arg("-o").arg(&out);
    let r = run(&mut c);
    r.expect_fail();
    let stderr = r
        .stderr
        .replace(&out.display().to_string(), "[OUT]")
        .replace(&out.parent().unwrap().display().to_string(), "[FOLDER]");
    assert!(!stderr.contains(".stele-tmp-"), "{stderr}");
    assert!(
        !stderr.contains("building"),
        "checked before the build: {stderr}"
    );
    assert_stderr_snapshot!(&f, "everyday_unwritable_output", stderr);
}

#[test]
fn missing_recipe_is_named() {
    let f = Fixture::new();
    let mut c = f.stele(&["build"]);
    c.arg(f.path("src/nope.toml"));
    let r = run(&mut c);
    r.expect_fail();
    assert_stderr_snapshot!(&f, "everyday_missing_recipe", r.stderr);
}

// ---- item 3: [[files]] exclude and .steleignore -----------------------------

const EXCLUDE_RECIPE: &str = r#"
[image]
name = "excludes"
epoch = 1700000000

[[files]]
src = "app"
dest = "/opt/app"
exclude = ["**/__pycache__", "*.pyc"]
"#;

/// Paths in the image's only layer.
fn layer_paths(layout: &std::path::Path) -> Vec<String> {
    let l = check_layout(layout);
    l.layers
        .iter()
        .flat_map(|(media_type, blob)| tar_entries(&decompress(media_type, blob)))
        .map(|e| e.path)
        .collect()
}

#[test]
fn excluded_files_are_left_out_and_the_digest_is_as_without_them() {
    let f = Fixture::with_recipe(EXCLUDE_RECIPE);
    write_file(&f.path("src/app/lib/mod.py"), "x = 1\n", 0o644);
    let clean = digest_of(&f.build("clean", &[]));
    write_file(&f.path("src/app/__pycache__/x.pyc"), "bytecode", 0o644);
    write_file(
        &f.path("src/app/lib/__pycache__/mod.cpython.pyc"),
        "b",
        0o644,
    );
    write_file(&f.path("src/app/stray.pyc"), "bytecode", 0o644);
    let stray = digest_of(&f.build("stray", &[]));
    assert_eq!(clean, stray, "excluded files changed the image");
    let paths = layer_paths(&f.path("stray"));
    assert!(paths.iter().any(|p| p == "opt/app/run"), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("pyc") || p.contains("__pycache__")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p == "opt/app/lib/mod.py"), "{paths:?}");
}

#[test]
fn steleignore_excludes_and_is_not_copied() {
    let f = Fixture::with_recipe(EXCLUDE_RECIPE);
    let clean = digest_of(&f.build("clean", &[]));
    write_file(
        &f.path("src/app/.steleignore"),
        "# scratch files\n*.log\ntmp/\n",
        0o644,
    );
    write_file(&f.path("src/app/debug.log"), "noise", 0o644);
    write_file(&f.path("src/app/tmp/cache.bin"), "noise", 0o644);
    let ignored = digest_of(&f.build("ignored", &[]));
    assert_eq!(clean, ignored);
    let paths = layer_paths(&f.path("ignored"));
    assert!(
        !paths.iter().any(|p| p.contains(".steleignore")),
        "{paths:?}"
    );
}

#[test]
fn exclude_is_checked_at_its_line() {
    let f = Fixture::with_recipe(
        "[image]\nname = \"x\"\n\n[[files]]\nsrc = \"app/run\"\ndest = \"/run\"\nexclude = [\"*.pyc\"]\n",
    );
    let r = f.build("out", &[]);
    r.expect_fail();
    assert!(
        r.stderr
            .contains("recipe.toml:7:12: exclude applies to a folder"),
        "{}",
        r.stderr
    );
}
