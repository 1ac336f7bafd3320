//! The small files and directories postinsts make on a first install from
//! defaults the packages ship, each made only where nothing installed
//! holds the path already (the scripts test `[ ! -e … ]` the same way):
//!
//! - base-files: /etc/profile, /etc/motd, /root/.profile and /root/.bashrc
//!   copied from /usr/share/base-files (`cp -p`: the shipped file's mode
//!   and date); /mnt, /srv, /opt, /etc/opt, /var/opt, /media, /var/mail
//!   (2775 root:mail), /run/lock (1777), the /usr/local tree and
//!   /usr/local/man -> share/man; /var/spool/mail -> ../mail;
//!   /var/run -> /run and /var/lock -> /run/lock when no package installs
//!   anything below them; /var/log/wtmp, btmp and lastlog (root:utmp);
//!   /etc/dpkg/origins/default -> debian; /usr/share/info/dir.
//! - libc-bin: /etc/nsswitch.conf from /usr/share/libc-bin (without it
//!   glibc asks DNS before /etc/hosts).
//! - python3: /etc/python3/debian_config; python3.X-minimal: the
//!   /usr/local/lib/python3.X/dist-packages directory `site` adds.
//! - openjdk-N-jre-headless: Java's system preferences root,
//!   /etc/.java/.systemPrefs with its two empty lock files.
//! - locales: /etc/locale.gen listing every supported locale, none
//!   chosen, and /etc/default/locale without LANG (debconf's defaults).
//!
//! Group ids are base-passwd's fixed ones (mail 8, utmp 43).

use crate::dpkg::deb::DebContents;
use crate::dpkg::install::Selected;
use crate::fstree::{Content, FsTree, Node, NodeKind};

const MAIL_GID: u32 = 8;
const UTMP_GID: u32 = 43;

/// One thing a postinst makes: by package `owner`, at `key`.
pub(super) struct Made {
    pub(super) owner: usize,
    pub(super) key: String,
    pub(super) node: Node,
    /// Replaces the directory the owner itself ships at `key` (base-files'
    /// /var/run and /var/lock becoming links), when nothing is below it.
    pub(super) migrates_dir: bool,
}

/// What the installed packages' postinsts would make, in a fixed order.
pub(super) fn made(
    packages: &[(Selected, DebContents)],
    trees: &[FsTree],
    epoch: u64,
) -> Vec<Made> {
    let mut out = Vec::new();
    let m = |owner: usize, key: &str, node: Node| Made {
        owner,
        key: key.to_string(),
        node,
        migrates_dir: false,
    };
    let dir = |mode: u32, gid: u32| Node::dir(mode, 0, gid, epoch);
    let link = |target: &str| Node::symlink(target, 0, 0, epoch);
    let empty = |mode: u32, gid: u32| Node::file(Content::bytes(Vec::new()), mode, 0, gid, epoch);
    let position = |name: &str| packages.iter().position(|(p, _)| p.name == name);
    // `cp -p` of a shipped file keeps its mode, owner and date.
    let shipped = |j: usize, key: &str| -> Option<Node> {
        let node = trees[j].get(key)?;
        matches!(node.kind, NodeKind::File(_)).then(|| node.clone())
    };

    if let Some(j) = position("base-files") {
        for (from, to) in [
            ("dot.profile", "root/.profile"),
            ("dot.bashrc", "root/.bashrc"),
            ("profile", "etc/profile"),
            ("motd", "etc/motd"),
        ] {
            if let Some(node) = shipped(j, &format!("usr/share/base-files/{from}")) {
                out.push(m(j, to, node));
            }
        }
        for key in ["mnt", "srv", "opt", "etc/opt", "var/opt", "media"] {
            out.push(m(j, key, dir(0o755, 0)));
        }
        out.push(m(j, "var/mail", dir(0o2775, MAIL_GID)));
        out.push(m(j, "var/spool/mail", link("../mail")));
        out.push(m(j, "run/lock", dir(0o1777, 0)));
        for key in ["var/run", "var/lock"] {
            let target = if key == "var/run" {
                "/run"
            } else {
                "/run/lock"
            };
            out.push(Made {
                owner: j,
                key: key.to_string(),
                node: link(target),
                migrates_dir: true,
            });
        }
        for key in [
            "usr/local",
            "usr/local/share",
            "usr/local/share/man",
            "usr/local/bin",
            "usr/local/games",
            "usr/local/lib",
            "usr/local/include",
            "usr/local/sbin",
            "usr/local/src",
            "usr/local/etc",
        ] {
            out.push(Made {
                owner: j,
                key: key.to_string(),
                node: dir(0o755, 0),
                migrates_dir: false,
            });
        }
        out.push(Made {
            owner: j,
            key: "usr/local/man".into(),
            node: link("share/man"),
            migrates_dir: false,
        });
        for (key, mode) in [
            ("var/log/wtmp", 0o664),
            ("var/log/btmp", 0o660),
            ("var/log/lastlog", 0o664),
        ] {
            out.push(Made {
                owner: j,
                key: key.into(),
                node: empty(mode, UTMP_GID),
                migrates_dir: false,
            });
        }
        if trees[j].get("etc/dpkg/origins/debian").is_some() {
            out.push(Made {
                owner: j,
                key: "etc/dpkg/origins/default".into(),
                node: link("debian"),
                migrates_dir: false,
            });
        }
        if trees[j].get("usr/share/info").map(|n| &n.kind) == Some(&NodeKind::Dir) {
            if let Some(mut node) = shipped(j, "usr/share/base-files/info.dir") {
                node.mode = 0o644;
                out.push(Made {
                    owner: j,
                    key: "usr/share/info/dir".into(),
                    node,
                    migrates_dir: false,
                });
            }
        }
    }

    if let Some(j) = position("libc-bin") {
        if let Some(node) = shipped(j, "usr/share/libc-bin/nsswitch.conf") {
            out.push(Made {
                owner: j,
                key: "etc/nsswitch.conf".into(),
                node,
                migrates_dir: false,
            });
        }
    }

    if let Some(j) = position("python3") {
        out.push(Made {
            owner: j,
            key: "etc/python3/debian_config".into(),
            node: Node::file(
                Content::bytes(b"[DEFAULT]\nbyte-compile = standard\n".to_vec()),
                0o644,
                0,
                0,
                epoch,
            ),
            migrates_dir: false,
        });
    }

    if let Some(j) = position("locales") {
        if let Some(generated) = locale_gen(trees, j) {
            out.push(Made {
                owner: j,
                key: "etc/locale.gen".into(),
                node: Node::file(Content::bytes(generated), 0o644, 0, 0, epoch),
                migrates_dir: false,
            });
            // `update-locale --no-checks LANG`: no LANG, as the default
            // answer (`None`) leaves it.
            out.push(Made {
                owner: j,
                key: "etc/default/locale".into(),
                node: Node::file(
                    Content::bytes(b"#  File generated by update-locale\n".to_vec()),
                    0o644,
                    0,
                    0,
                    epoch,
                ),
                migrates_dir: false,
            });
        }
    }

    for (j, (p, _)) in packages.iter().enumerate() {
        if let Some(version) = python_minimal_version(&p.name) {
            for key in [
                format!("usr/local/lib/python{version}"),
                format!("usr/local/lib/python{version}/dist-packages"),
            ] {
                out.push(Made {
                    owner: j,
                    key,
                    node: dir(0o755, 0),
                    migrates_dir: false,
                });
            }
        }
        if is_openjdk_jre_headless(&p.name) {
            for key in ["etc/.java", "etc/.java/.systemPrefs"] {
                out.push(Made {
                    owner: j,
                    key: key.into(),
                    node: dir(0o755, 0),
                    migrates_dir: false,
                });
            }
            for key in [
                "etc/.java/.systemPrefs/.system.lock",
                "etc/.java/.systemPrefs/.systemRootModFile",
            ] {
                out.push(Made {
                    owner: j,
                    key: key.into(),
                    node: empty(0o644, 0),
                    migrates_dir: false,
                });
            }
        }
    }
    out
}

/// `3.11` for `python3.11-minimal`.
fn python_minimal_version(name: &str) -> Option<&str> {
    let v = name.strip_prefix("python")?.strip_suffix("-minimal")?;
    let (major, minor) = v.split_once('.')?;
    (major == "3" && !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())).then_some(v)
}

/// `openjdk-17-jre-headless` and the like, whose postinst makes the
/// system preferences root.
fn is_openjdk_jre_headless(name: &str) -> bool {
    name.strip_prefix("openjdk-")
        .and_then(|r| r.strip_suffix("-jre-headless"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// /etc/locale.gen as locales' postinst writes it with debconf's default
/// answers (no locale chosen): its header, whose `#` line the empty
/// choice's `sed 0,/^[# ]*$/ …` empties, then every locale of
/// /usr/share/i18n/SUPPORTED commented out, in `sort -u` order.
fn locale_gen(trees: &[FsTree], j: usize) -> Option<Vec<u8>> {
    let supported = match &trees[j].get("usr/share/i18n/SUPPORTED")?.kind {
        NodeKind::File(c) => c.read_all().ok()?,
        _ => return None,
    };
    let text = String::from_utf8_lossy(&supported);
    let mut locales: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|l| l.trim_end_matches(' '))
        .collect();
    locales.sort_unstable();
    locales.dedup();
    let mut out = String::from(
        "# This file lists locales that you wish to have built. You can find a list\n\
         # of valid supported locales at /usr/share/i18n/SUPPORTED, and you can add\n\
         # user defined locales to /usr/local/share/i18n/SUPPORTED. If you change\n\
         # this file, you need to rerun locale-gen.\n\n\n",
    );
    for l in locales {
        out.push_str("# ");
        out.push_str(l);
        out.push('\n');
    }
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        assert_eq!(python_minimal_version("python3.11-minimal"), Some("3.11"));
        assert_eq!(python_minimal_version("python3-minimal"), None);
        assert_eq!(python_minimal_version("python2.7-minimal"), None);
        assert!(is_openjdk_jre_headless("openjdk-17-jre-headless"));
        assert!(!is_openjdk_jre_headless("openjdk-17-jre"));
        assert!(!is_openjdk_jre_headless("openjdk--jre-headless"));
    }
}
