//! CI pipelines, second pass: what a platform team meets between a CI
//! job, two registries and a deploy-side verify. `push RECIPE` builds as
//! `build` does; `verify` needs no cache folder; a copy that dropped the
//! referrers is named; progress on a terminal and in a log; a build
//! context apart from the recipe; recipe errors at their lines. Real
//! parts: docker-registry on 127.0.0.1, skopeo, script(1), unshare(1).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::registry_real::build_signed_and_push;
use crate::support::docker_registry::{have_registry, DockerRegistry};
use crate::support::tree::populate;
use crate::support::wrap::{shell_line, wrapped};
use crate::support::*;

const RECIPE: &str = r#"[image]
name = "app"
tag = "v1"
epoch = 1700000000

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["hello"]
"#;

/// A signed repository of two packages (hello depends on libgreet), read
/// through a `file://` mirror, and a recipe folder with its keyring.
struct Project {
    dir: tempfile::TempDir,
    repo: AptRepo,
}

impl Project {
    fn new() -> Project {
        let repo = AptRepo::builder()
            .suite("stable", &["amd64"])
            .deb(
                "stable",
                Deb::new("hello", "1.0-1", "amd64")
                    .field("Depends", "libgreet")
                    .entry(DebEntry::dir("bin"))
                    .entry(DebEntry::exec("bin/hello", "#!/bin/sh\necho hello\n")),
            )
            .deb(
                "stable",
                Deb::new("libgreet", "1.0-1", "amd64")
                    .entry(DebEntry::dir("usr/lib"))
                    .entry(DebEntry::file(
                        "usr/lib/libgreet.so.1",
                        // Enough that writing its layer takes several writes.
                        "greet ".repeat(100_000),
                    )),
            )
            .build();
        let dir = tempdir();
        fs::copy(repo.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        fs::write(dir.path().join("app.toml"), RECIPE).unwrap();
        Project { dir, repo }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn recipe(&self) -> PathBuf {
        self.path("app.toml")
    }

    /// `stele ARGS… --cache-dir <the project's>` with the mirror named.
    fn stele(&self, args: &[&str]) -> Command {
        let mut c = stele();
        c.env("STELE_MIRROR_LOCAL", self.repo.file_url())
            .args(args)
            .arg("--cache-dir")
            .arg(self.path("cache"));
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        run(&mut self.stele(args))
    }

    fn key(&self) -> (PathBuf, PathBuf) {
        let key = self.path("ci.key");
        run(stele().args(["key", "generate"]).arg(&key)).expect_ok();
        (key, self.path("ci.pub"))
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The tags a registry repository holds (none when it does not exist).
fn tags(host: &str, repo: &str) -> Vec<String> {
    match ureq::get(&format!("http://{host}/v2/{repo}/tags/list")).call() {
        Ok(r) => json(r.into_string().unwrap().as_bytes())["tags"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// `stele push RECIPE` takes every option `build` takes, through the same
/// settings: with a stale lock `--locked` refuses before anything is
/// written or pushed; signed, with one kind of attestation and added
/// metadata, it pushes the digest `build` makes from the same options.
#[test]
fn push_a_recipe_builds_as_build_does_and_locked_writes_no_lock() {
    if !have_registry() {
        return;
    }
    let p = Project::new();
    let recipe = p.recipe();
    p.run(&["lock", s(&recipe)]).expect_ok();
    let lock = fs::read(p.path("app.lock")).unwrap();
    let (key, public) = p.key();
    let reg = DockerRegistry::start(None);
    let reference = format!("{}/team/app", reg.host());

    // A stale lock under --locked: refused, the lockfile as it was, no tag.
    fs::write(
        &recipe,
        RECIPE.replace(r#"["hello"]"#, r#"["hello", "libgreet"]"#),
    )
    .unwrap();
    let r = p.run(&[
        "push",
        s(&recipe),
        &reference,
        "--locked",
        "--sign-key",
        s(&key),
    ]);
    r.expect_fail();
    assert!(
        r.stderr.contains("--locked") && r.stderr.contains("stale"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read(p.path("app.lock")).unwrap(), lock);
    assert!(tags(&reg.host(), "team/app").is_empty());
    fs::write(&recipe, RECIPE).unwrap();

    let options = [
        "--locked",
        "--sign-key",
        s(&key),
        "--attest",
        "provenance",
        "--annotation",
        "org.opencontainers.image.source=https://example.invalid/app",
        "--label",
        "team=ci",
    ];
    let r = p.run(&[&["push", s(&recipe), &reference][..], &options].concat());
    r.expect_ok();
    let digest = r.last_line().rsplit_once('@').unwrap().1.to_string();
    assert_eq!(r.last_line(), format!("{reference}:v1@{digest}"));
    assert_eq!(fs::read(p.path("app.lock")).unwrap(), lock);
    let out = p.path("out");
    let built = p.run(&[&["build", s(&recipe), "-o", s(&out)][..], &options].concat());
    built.expect_ok();
    assert_eq!(built.last_line(), digest, "push RECIPE and build agree");

    let target = format!("docker://{reference}:v1");
    // Only provenance was made (`--attest provenance`): that is what the
    // key must have signed.
    let r = p.run(&[
        "verify",
        &target,
        "--key",
        s(&public),
        "--require",
        "provenance",
        "--digest",
        &digest,
    ]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("pass  signed provenance") && !r.stdout.contains("sbom"),
        "signed, and only the provenance: {}",
        r.stdout
    );

    // An image is pushed as it is: a build option is refused, not ignored.
    let r = p.run(&["push", s(&out), &reference, "--locked"]);
    r.expect_fail();
    assert!(
        r.stderr.contains("--locked") && r.stderr.contains("is an image"),
        "{}",
        r.stderr
    );
}

/// `stele` as a minimal deploy container runs it: no HOME, no XDG
/// folders.
fn bare() -> Command {
    let mut c = stele();
    c.env_remove("HOME").env_remove("XDG_CACHE_HOME");
    c
}

/// Verifying needs no cache folder: with HOME and XDG unset, a registry
/// image and a layout verify, and a pull works; `--rebuild`, which
/// builds, says before any check that it needs one. A read-only cache
/// folder is read past, never written.
#[test]
fn verify_needs_no_cache_folder() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let tmp = tmp.path();
    let (key, digest) = build_signed_and_push(tmp, &format!("{}/deploy/app:v1", reg.host()));
    let target = format!("docker://{}/deploy/app:v1", reg.host());
    // `stele [PREFIX] verify TARGET --digest D --key K [ARGS]`
    let verify = |c: &mut Command, args: &[&str]| {
        run(c
            .args(["verify", &target, "--digest", &digest, "--key"])
            .arg(&key)
            .args(args))
    };
    let r = verify(&mut bare(), &[]);
    r.expect_code(0);
    assert!(r.stdout.starts_with("VERIFIED"), "{}", r.stdout);
    run(bare()
        .arg("verify")
        .arg(tmp.join("built"))
        .arg("--key")
        .arg(&key))
    .expect_code(0);
    let pulled = tmp.join("pulled");
    let r = run(bare().args(["pull", &target[9..], "-o"]).arg(&pulled));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);

    let r = run(bare()
        .args(["verify", &target, "--rebuild"])
        .arg(tmp.join("src/recipe.toml")));
    r.expect_code(2);
    assert!(
        r.stderr.contains("--rebuild")
            && r.stderr.contains("writable cache folder")
            && r.stderr.contains("--cache-dir")
            && r.stderr.contains("HOME"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("pass"), "no check ran: {}", r.stdout);

    // A cache folder mounted read-only (as root is too, in a namespace of
    // its own): verify reads the image past it and changes nothing in it.
    let cache = tmp.join("ro-cache");
    verify(&mut stele(), &["--cache-dir", s(&cache)]).expect_code(0);
    let before = snapshot(&cache);
    let probe = Command::new("unshare").args(["-rm", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        skip("unshare -rm is not allowed here: the read-only cache is not tried");
        return;
    }
    let mut ro = wrapped("unshare", &stele());
    ro.args([
        "-rm",
        "sh",
        "-c",
        "mount --bind -o ro \"$1\" \"$1\" && shift && exec \"$@\"",
        "sh",
    ])
    .arg(&cache)
    .arg(STELE)
    .arg("-v");
    let r = verify(&mut ro, &["--cache-dir", s(&cache)]);
    r.expect_code(0);
    assert!(r.stderr.contains("cannot be written"), "{}", r.stderr);
    assert_eq!(snapshot(&cache), before, "the read-only cache is unchanged");
}

/// `skopeo copy` copies the image but not its referrers: verify says the
/// attestations were likely dropped by such a copy and names
/// `stele push SRC DST`, which carries them; after it, verify passes.
#[test]
fn a_copy_that_dropped_the_referrers_is_named() {
    if !have_registry() || !have_tool("skopeo") {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let tmp = tmp.path();
    let (key, digest) = build_signed_and_push(tmp, &format!("{}/ci/app:v1", reg.host()));
    let (from, to) = (
        format!("{}/ci/app:v1", reg.host()),
        format!("{}/prod/app:v1", reg.host()),
    );
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = || {
        run(stele()
            .args([
                "verify",
                &format!("docker://{to}"),
                "--digest",
                &digest,
                "--key",
            ])
            .arg(&key))
    };
    let r = verify();
    r.expect_code(1);
    assert!(
        r.stdout.contains("FAIL  attestations")
            && r.stdout.contains("dropped by a copy")
            && r.stdout.contains("`stele push SRC DST`"),
        "{}",
        r.stdout
    );
    run(stele().args(["push", &format!("docker://{from}"), &to])).expect_ok();
    verify().expect_code(0);
}

/// `verify -q` prints the result line, and then only what failed.
#[test]
fn verify_quiet_prints_the_result_and_what_failed() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let out = tmp.path().join("out");
    let digest = build(&src.join("recipe.toml"), &out);
    let r = run(stele().args(["-q", "verify"]).arg(&out));
    r.expect_code(0);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(r.stdout.starts_with(&format!("VERIFIED {}", out.display())));
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    let wrong = format!("sha256:{}", "0".repeat(64));
    let r = run(stele()
        .args(["-q", "verify"])
        .arg(&out)
        .args(["--digest", &wrong]));
    r.expect_code(1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(lines[0].starts_with("NOT VERIFIED"), "{}", r.stdout);
    assert!(
        lines[1].trim_start().starts_with("FAIL  pin") && lines[1].contains(&digest),
        "{}",
        r.stdout
    );
    // Without -q every check is listed.
    let r = run(stele().arg("verify").arg(&out));
    assert!(
        r.stdout.contains("pass  blob image manifest"),
        "{}",
        r.stdout
    );
}

/// A cold build says how unpacking and layer writing advance: a status
/// line redrawn in place on a terminal (script(1) gives one), whole lines
/// in a log, nothing with -q.
#[test]
fn unpacking_and_layer_writing_show_progress() {
    let p = Project::new();
    let recipe = p.recipe();
    p.run(&["lock", s(&recipe)]).expect_ok();
    // Each build gets a cold cache of its own: the unpacking is redone.
    let cold = |name: &str| {
        let mut c = stele();
        c.env("STELE_MIRROR_LOCAL", p.repo.file_url())
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(p.path(&format!("out-{name}")))
            .arg("--cache-dir")
            .arg(p.path(&format!("cache-{name}")));
        c
    };

    if have_tool("script") {
        let inner = cold("tty");
        let r = run(wrapped("script", &inner).args(["-qec", &shell_line(&inner), "/dev/null"]));
        r.expect_ok();
        for status in [
            "\r\x1b[2K  unpacking: 2/2 package(s)",
            "\r\x1b[2K  writing layers: ",
        ] {
            assert!(r.stdout.contains(status), "{status:?} in {:?}", r.stdout);
        }
        assert!(
            r.stdout
                .contains("\x1b[2Kpackages: 0 unpacked before, 2 unpacked now"),
            "the status line is cleared before the summary: {:?}",
            r.stdout
        );
    }

    // A log: whole lines only (every step here, with no interval).
    let r = run(cold("log").env("STELE_PROGRESS_INTERVAL", "0"));
    r.expect_ok();
    assert!(!r.stderr.contains('\r') && !r.stderr.contains('\x1b'));
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("unpacking 2 package(s) (")),
        "{}",
        r.stderr
    );
    for prefix in [
        "unpacking: 2/2 package(s), ",
        "writing layers: 2/2 layer(s), ",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains("(100%)")),
            "{prefix} in {}",
            r.stderr
        );
    }

    let r = run(cold("quiet").arg("-q"));
    r.expect_ok();
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(is_digest(r.last_line()));
}

/// A monorepo: the recipe in `deploy/`, what it copies in `build/`. The
/// recipe's folder does not hold it, and the error says so and names
/// `--context`; with `--context` it builds, the same image from any
/// checkout, none of which is named in it; a link out of the context is
/// refused; `verify --rebuild` takes the same context.
#[test]
fn a_build_context_apart_from_the_recipe() {
    let tmp = tempdir();
    let checkout = |name: &str| {
        let root = tmp.path().join(name);
        write_file(
            &root.join("deploy/app.toml"),
            "[image]\nname = \"mono\"\n\n[[files]]\nsrc = \"build/app\"\ndest = \"/app\"\n",
            0o644,
        );
        write_file(&root.join("build/app/run"), "#!/bin/sh\necho run\n", 0o755);
        write_file(&root.join("build/app/data.txt"), "data\n", 0o644);
        root
    };
    let one = checkout("one");
    let recipe = one.join("deploy/app.toml");
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(tmp.path().join("x")));
    r.expect_fail();
    assert!(
        r.stderr.contains("app.toml:5:7:")
            && r.stderr.contains("does not exist")
            && r.stderr.contains("--context"),
        "{}",
        r.stderr
    );

    let out = tmp.path().join("out-one");
    let d1 = build_with(&recipe, &out, &["--context", s(&one)]);
    let two = checkout("two");
    let d2 = build_with(
        &two.join("deploy/app.toml"),
        &tmp.path().join("out-two"),
        &["--context", s(&two)],
    );
    assert_eq!(d1, d2, "the context's path is not part of the image");
    for (name, bytes) in snapshot(&out) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(s(&one)) && !text.contains(s(tmp.path())),
            "{name} names the build context"
        );
    }
    run(stele()
        .arg("verify")
        .arg(&out)
        .arg("--rebuild")
        .arg(&recipe)
        .args(["--context", s(&one)]))
    .expect_code(0);

    std::os::unix::fs::symlink("../../../outside.txt", one.join("build/app/escape")).unwrap();
    write_file(&tmp.path().join("outside.txt"), "secret\n", 0o644);
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(tmp.path().join("y"))
        .args(["--context", s(&one)]));
    r.expect_fail();
    assert!(
        r.stderr.contains("escape") && r.stderr.contains("build context"),
        "{}",
        r.stderr
    );
}

/// An unknown package's error names its entry's file:line:column.
#[test]
fn an_unknown_package_is_named_at_its_line() {
    let p = Project::new();
    fs::write(
        p.recipe(),
        RECIPE.replace(r#"["hello"]"#, r#"["hello", "nope"]"#),
    )
    .unwrap();
    let r = p.run(&["lock", s(&p.recipe())]);
    r.expect_fail();
    assert!(
        r.stderr.contains(&format!(
            "{}:8:22: resolving packages for linux/amd64: no package named `nope`",
            p.recipe().display()
        )),
        "{}",
        r.stderr
    );
}

/// A mirror other than "host" needs a keyring, whether or not this
/// build reaches it: a warm cache refuses the recipe as a cold one does.
#[test]
fn the_keyring_rule_holds_with_a_warm_cache() {
    let p = Project::new();
    let recipe = p.recipe();
    p.run(&["lock", s(&recipe)]).expect_ok();
    let out = p.path("out");
    p.run(&["build", s(&recipe), "-o", s(&out), "--locked"])
        .expect_ok();
    // Keyrings do not make a lock stale: this one still answers.
    fs::write(&recipe, RECIPE.replace(", keyring = \"keyring.gpg\"", "")).unwrap();
    for extra in [&[][..], &["--offline"][..]] {
        let r = p.run(&[&["build", s(&recipe), "-o", s(&out), "--locked"][..], extra].concat());
        r.expect_fail();
        assert!(
            r.stderr.contains(&format!("{}:7:23:", recipe.display()))
                && r.stderr.contains("has no keyring"),
            "{}",
            r.stderr
        );
    }
}
