//! Running built images for real: a static C binary to put in them, and
//! podman with the flags these sandboxes need and storage private to the
//! test, so parallel tests share no locks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{have_tool, run, skip};

pub const HELLO_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char cwd[256];
    if (!getcwd(cwd, sizeof cwd)) return 3;
    const char *greeting = getenv("GREETING");
    printf("hello from stele\n");
    printf("uid=%u gid=%u\n", (unsigned)getuid(), (unsigned)getgid());
    printf("cwd=%s\n", cwd);
    printf("greeting=%s\n", greeting ? greeting : "(none)");
    for (int i = 1; i < argc; i++) printf("arg=%s\n", argv[i]);
    FILE *f = fopen("/etc/motd", "r");
    char line[64] = "";
    if (f && fgets(line, sizeof line, f)) printf("motd=%s", line);
    return 0;
}
"#;

/// Compiles HELLO_C into `dir/hello` as a static binary. `None` (skip)
/// outside CI when no static C toolchain is installed.
pub fn compile_hello(dir: &Path) -> Option<PathBuf> {
    if !have_tool("gcc") {
        return None;
    }
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("hello.c"), HELLO_C).unwrap();
    let bin = dir.join("hello");
    let r = run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(dir.join("hello.c")));
    if !r.ok() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("gcc -static failed (is libc6-dev installed?): {}", r.stderr);
        }
        skip(&format!("gcc -static failed: {}", r.stderr));
        return None;
    }
    Some(bin)
}

/// podman names an `oci:` image after its path, and a repository name
/// must be lowercase (tempfile's random names are not); its runroot must
/// also be under 50 characters, so the name is short.
pub fn lowercase_tempdir() -> tempfile::TempDir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    tempfile::Builder::new()
        .prefix(&format!(
            "stele-pm-{}-{}",
            std::process::id(),
            nanos % 1_000_000_000
        ))
        .rand_bytes(0)
        .tempdir()
        .expect("temp dir")
}

/// `podman` with its storage under `storage` and the global flags these
/// sandboxes need; add a subcommand.
pub fn podman(storage: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(storage.join("r"))
        .arg("--runroot")
        .arg(storage.join("rr"))
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--storage-driver",
            "vfs",
            "--events-backend",
            "none",
        ]);
    c
}

/// `podman run` of `image` with the flags these sandboxes need.
pub fn podman_run(storage: &Path, image: &str) -> super::Run {
    podman_run_with(storage, &[], image, &[])
}

/// `podman run [FLAGS] IMAGE [ARGS]` with the flags these sandboxes need,
/// e.g. FLAGS `--entrypoint /usr/bin/awk`.
pub fn podman_run_with(storage: &Path, flags: &[&str], image: &str, args: &[&str]) -> super::Run {
    run(podman(storage)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=1000:1000",
        ])
        .args(flags)
        .arg(image)
        .args(args))
}
