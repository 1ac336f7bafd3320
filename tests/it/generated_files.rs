//! What installing generates in place of maintainer scripts, checked by
//! running the image: glibc's loader finds a library only
//! /etc/ld.so.conf.d names, through the /etc/ld.so.cache stele wrote.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::podman::{lowercase_tempdir, podman_run};
use crate::support::*;

const GREET_C: &str = "const char *greeting(void) { return \"greetings from /opt\"; }\n";
const MAIN_C: &str = "#include <stdio.h>\nconst char *greeting(void);\nint main(void) { puts(greeting()); return 0; }\n";

const RECIPE: &str = r#"
[image]
name = "ldcache"
epoch = 1700000000
platforms = ["linux/amd64"]

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = PACKAGES

[config]
entrypoint = ["/usr/bin/greet"]
"#;

/// A shared library with soname libgreet.so.1 and a program linked to it
/// without a run path, so only the loader cache can lead to it.
fn compile(dir: &Path) -> Option<(Vec<u8>, Vec<u8>)> {
    fs::write(dir.join("greet.c"), GREET_C).unwrap();
    fs::write(dir.join("main.c"), MAIN_C).unwrap();
    let lib = run(Command::new("gcc")
        .args(["-shared", "-fPIC", "-Wl,-soname,libgreet.so.1", "-o"])
        .arg(dir.join("libgreet.so.1"))
        .arg(dir.join("greet.c")));
    if !lib.ok() {
        skip(&format!("gcc -shared failed: {}", lib.stderr));
        return None;
    }
    let bin = run(Command::new("gcc")
        .arg("-o")
        .arg(dir.join("greet"))
        .arg(dir.join("main.c"))
        .arg(dir.join("libgreet.so.1")));
    if !bin.ok() {
        skip(&format!("gcc failed: {}", bin.stderr));
        return None;
    }
    Some((
        fs::read(dir.join("libgreet.so.1")).unwrap(),
        fs::read(dir.join("greet")).unwrap(),
    ))
}

#[test]
fn the_loader_finds_conf_d_libraries_through_the_generated_cache() {
    let host_lib = Path::new("/usr/lib/x86_64-linux-gnu");
    if !have_tool("podman") || !have_tool("gcc") || !host_lib.join("libc.so.6").exists() {
        skip("needs podman, gcc and an x86_64 glibc host");
        return;
    }
    let work = tempdir();
    let Some((libgreet, greet)) = compile(work.path()) else {
        return;
    };
    let triplet = "x86_64-linux-gnu";
    // The host's own C library, packaged as Debian lays it out.
    let libc6 = Deb::new("libc6", "2.36-9", "amd64")
        .entry(DebEntry::dir("lib"))
        .entry(DebEntry::dir(&format!("lib/{triplet}")))
        .entry(DebEntry::file(
            &format!("lib/{triplet}/libc.so.6"),
            fs::read(host_lib.join("libc.so.6")).unwrap(),
        ))
        .entry(DebEntry::exec(
            &format!("lib/{triplet}/ld-linux-x86-64.so.2"),
            fs::read(host_lib.join("ld-linux-x86-64.so.2")).unwrap(),
        ))
        .entry(DebEntry::dir("lib64"))
        .entry(DebEntry::symlink(
            "lib64/ld-linux-x86-64.so.2",
            &format!("/lib/{triplet}/ld-linux-x86-64.so.2"),
        ))
        .entry(DebEntry::dir("etc/ld.so.conf.d"))
        .entry(DebEntry::file(
            &format!("etc/ld.so.conf.d/{triplet}.conf"),
            format!("/usr/local/lib/{triplet}\n/lib/{triplet}\n/usr/lib/{triplet}\n"),
        ));
    let libc_bin = Deb::new("libc-bin", "2.36-9", "amd64")
        .field("Depends", "libc6")
        .entry(DebEntry::dir("etc"))
        .entry(DebEntry::file(
            "etc/ld.so.conf",
            "include /etc/ld.so.conf.d/*.conf\n",
        ));
    let libgreet1 = Deb::new("libgreet1", "1.0", "amd64")
        .field("Depends", "libc6")
        .entry(DebEntry::dir("opt/greet/lib"))
        .entry(DebEntry::file("opt/greet/lib/libgreet.so.1", libgreet))
        .entry(DebEntry::dir("etc/ld.so.conf.d"))
        .entry(DebEntry::file(
            "etc/ld.so.conf.d/greet.conf",
            "/opt/greet/lib\n",
        ));
    let greet = Deb::new("greet", "1.0", "amd64")
        .field("Depends", "libgreet1, libc6")
        .entry(DebEntry::dir("usr/bin"))
        .entry(DebEntry::exec("usr/bin/greet", greet));
    let repo = AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb("stable", libc6)
        .deb("stable", libc_bin)
        .deb("stable", libgreet1)
        .deb("stable", greet)
        .build();
    let (url, _server) = repo.serve();

    let build = |packages: &str| -> (tempfile::TempDir, String) {
        // podman names an oci: image after its path, which must be lowercase.
        let dir = lowercase_tempdir();
        fs::copy(repo.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        let recipe = dir.path().join("recipe.toml");
        fs::write(&recipe, RECIPE.replace("PACKAGES", packages)).unwrap();
        let r = run(stele()
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(dir.path().join("out"))
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .env("STELE_MIRROR_LOCAL", &url));
        r.expect_ok();
        let digest = r.last_line().to_string();
        (dir, digest)
    };

    let (with_cache, digest) = build(r#"["greet", "libc-bin"]"#);
    let storage = lowercase_tempdir();
    let image = format!("oci:{}:latest", with_cache.path().join("out").display());
    let r = podman_run(storage.path(), &image);
    r.expect_ok();
    assert_eq!(r.stdout, "greetings from /opt\n", "{}", r.stderr);
    let (_again, again) = build(r#"["greet", "libc-bin"]"#);
    assert_eq!(again, digest, "the cache is part of a reproducible image");

    // Without libc-bin nothing would have run ldconfig: no cache, and the
    // library is not found.
    let (without, _) = build(r#"["greet"]"#);
    let storage = lowercase_tempdir();
    let image = format!("oci:{}:latest", without.path().join("out").display());
    let r = podman_run(storage.path(), &image);
    assert!(!r.ok(), "ran without a loader cache: {}", r.stdout);
    assert!(r.stderr.contains("libgreet.so.1"), "{}", r.stderr);
}
