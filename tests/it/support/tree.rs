//! The source tree and recipe the reproducibility tests build: every kind
//! of entry a recipe can bring in (nested folders, an executable, relative
//! and absolute symlinks, a hard link pair, [[paths]], accounts, config,
//! annotations), creatable in either order.

use std::fs;
use std::path::Path;

use super::write_file;

pub const EPOCH: u64 = 1_700_000_000;

/// One entry of the source tree beside the recipe.
pub enum Src {
    Dir(&'static str),
    File(&'static str, &'static [u8], u32),
    Symlink(&'static str, &'static str),
    /// A second name for an existing `File`.
    Hardlink(&'static str, &'static str),
}

pub const TREE: &[Src] = &[
    Src::Dir("app"),
    Src::Dir("app/bin"),
    Src::File("app/bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
    Src::Dir("app/share"),
    Src::Dir("app/share/doc"),
    Src::File("app/share/doc/readme.txt", b"read me\n", 0o644),
    Src::File("app/share/data.bin", b"\x00\x01\x02\xff binary", 0o644),
    Src::File("app/share/hard-a.txt", b"shared inode\n", 0o644),
    Src::Hardlink("app/bin/hard-b.txt", "app/share/hard-a.txt"),
    Src::Dir("app/lib"),
    Src::Symlink("app/lib/data", "../share/data.bin"),
    Src::Symlink("app/hostname", "/etc/hostname"),
    Src::Dir("app/empty"),
    Src::File("config.txt", b"key = value\n", 0o644),
];

pub const RECIPE: &str = r#"
[image]
name = "repro"
epoch = 1700000000
compression = "gzip"

[[files]]
src = "app"
dest = "/opt/app"
owner = "1000:1000"

[[files]]
src = "config.txt"
dest = "/etc/app/config.txt"
mode = "0600"

[[paths]]
path = "/var/cache/app"
kind = "dir"
mode = "0750"
owner = "1000:1000"

[[paths]]
path = "/etc/app/motd"
kind = "file"
content = "welcome\n"

[[paths]]
path = "/usr/bin/tool"
kind = "symlink"
target = "/opt/app/bin/tool"

[[accounts.users]]
name = "nonroot"
uid = 65532

[[accounts.users]]
name = "app"
uid = 1000
home = "/opt/app"
shell = "/bin/sh"

[[accounts.groups]]
name = "nonroot"
gid = 65532

[[accounts.groups]]
name = "app"
gid = 1000

[config]
entrypoint = ["/usr/bin/tool"]
cmd = ["--serve"]
env = { Z_LAST = "z", A_FIRST = "a", PATH = "/usr/bin:/bin" }
workdir = "/opt/app"
user = "1000:1000"
labels = { "org.example.b" = "2", "org.example.a" = "1" }
exposed_ports = ["8080/tcp", "53/udp"]
volumes = ["/var/cache/app", "/data"]
stop_signal = "SIGTERM"

[annotations]
"org.opencontainers.image.source" = "https://example.invalid/repro"
"org.example.note" = "fixture"
"#;

/// Creates the source tree and recipe in `dir`, in list order or reversed.
pub fn populate(dir: &Path, reverse: bool) {
    let file_of = |name: &str| {
        TREE.iter().find_map(|e| match e {
            Src::File(p, c, m) if *p == name => Some((*c, *m)),
            _ => None,
        })
    };
    let entries: Vec<&Src> = if reverse {
        TREE.iter().rev().collect()
    } else {
        TREE.iter().collect()
    };
    for e in entries {
        match e {
            Src::Dir(p) => fs::create_dir_all(dir.join(p)).unwrap(),
            Src::File(p, content, mode) => {
                // Reversed, a hard link may have created this file already.
                if !dir.join(p).exists() {
                    write_file(&dir.join(p), content, *mode);
                }
            }
            Src::Symlink(p, target) => {
                fs::create_dir_all(dir.join(p).parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(target, dir.join(p)).unwrap();
            }
            Src::Hardlink(p, original) => {
                if !dir.join(original).exists() {
                    let (c, m) = file_of(original).unwrap();
                    write_file(&dir.join(original), c, m);
                }
                fs::create_dir_all(dir.join(p).parent().unwrap()).unwrap();
                fs::hard_link(dir.join(original), dir.join(p)).unwrap();
            }
        }
    }
    fs::write(dir.join("recipe.toml"), RECIPE).unwrap();
}
