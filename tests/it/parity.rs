//! Apt parity: for each package set, debootstrap's minbase plus
//! `apt-get install SET` in a chroot (from the machine's own mirror) is
//! the reference, and stele's image of exactly the packages and versions
//! apt installed must equal it file for file (path, type, mode, owner,
//! link target, content), but for the differences README.md's parity
//! table names with their reasons. Each test prints its figure: the share
//! of apt's paths that are identical in stele's image.
//!
//! Needs root (debootstrap, chroot) and the machine's apt sources; skipped
//! with the reason otherwise (under CI=true a missing tool fails). With
//! `STELE_PARITY_REUSE=1` an earlier run's minbase tree is reused, for
//! quick loops while working on parity.

use std::fs;
use std::io::Write as _;

use crate::support::parity::{
    allowed_differences, apt_install, compare, read_image, read_tree, Comparison,
};
use crate::support::*;

const SUITE: &str = "bookworm";
/// The README section whose table lists the differences allowed.
const README_SECTION: &str = "### Parity with apt";

fn can_run() -> bool {
    if !have_tool("debootstrap") || !have_tool("chroot") {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("the parity tests need root for debootstrap and chroot");
        return false;
    }
    true
}

/// Builds `set` with apt and with stele, compares the two and returns the
/// comparison after the allowed differences are taken out, failing on
/// any other.
fn parity(name: &str, set: &[&str]) -> Option<Comparison> {
    if !can_run() {
        return None;
    }
    let apt = apt_install(SUITE, name, set)?;
    let tmp = tempdir();
    let packages: Vec<String> = apt
        .packages
        .iter()
        .map(|(n, v, _)| format!("  \"{n}={v}\",\n"))
        .collect();
    let recipe = tmp.path().join(format!("{name}.toml"));
    fs::write(
        &recipe,
        format!(
            "[image]\nname = \"parity-{name}\"\n\n[apt]\nsources = [{{ mirror = \"host\", suite = \"{SUITE}\" }}]\npackages = [\n{}]\n",
            packages.concat()
        ),
    )
    .unwrap();
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity/cache");
    let lock = run(stele()
        .arg("lock")
        .arg(&recipe)
        .arg("--cache-dir")
        .arg(&cache));
    lock.expect_ok();
    // Kept beside apt's tree, so a difference can be looked at.
    let out = apt.root.with_extension("image");
    if out.exists() {
        fs::remove_dir_all(&out).unwrap();
    }
    let built = run(stele()
        .arg("build")
        .arg(&recipe)
        .args(["--locked", "--cache-dir"])
        .arg(&cache)
        .arg("-o")
        .arg(&out));
    built.expect_ok();
    let image = read_image(&check_layout(&out));
    let reference = read_tree(&apt.root);
    let allowed = allowed_differences(README_SECTION);
    let left_out = |path: &str| allowed.iter().any(|a| a.left_out && a.covers(name, path));
    let mut c = compare(&reference, &image, &left_out);
    let mut unexplained = Vec::new();
    c.differences.retain(|(path, what)| {
        let ok = allowed.iter().any(|a| a.covers(name, path));
        if !ok {
            unexplained.push(format!("/{path}: {what}"));
        }
        ok
    });
    let _ = writeln!(
        std::io::stderr(),
        "PARITY {name}: {} packages, {} of apt's {} paths identical ({:.2}%), {} allowed differences, {} unexplained",
        apt.packages.len(),
        c.identical,
        c.reference_paths,
        c.percent(),
        c.differences.len(),
        unexplained.len()
    );
    assert!(
        unexplained.is_empty(),
        "{name}: {} differences from apt that README.md's parity table does not name:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    Some(c)
}

#[test]
fn minbase_equals_debootstrap() {
    parity("minbase", &[]);
}

#[test]
fn nginx_and_redis_equal_apt() {
    parity("nginx-redis", &["nginx-light", "redis-server"]);
}

#[test]
fn postgresql_equals_apt() {
    parity("postgresql", &["postgresql"]);
}

#[test]
fn openssh_server_equals_apt() {
    parity("openssh-server", &["openssh-server"]);
}

#[test]
fn php_cli_equals_apt() {
    parity("php-cli", &["php-cli"]);
}
