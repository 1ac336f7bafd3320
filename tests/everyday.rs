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
