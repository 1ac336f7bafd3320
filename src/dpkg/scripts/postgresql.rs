//! postgresql-common's maintainer-script functions
//! (`/usr/share/postgresql-common/maintscripts-functions`), which the
//! server, client, contrib and doc packages of every major version source
//! and call from their postinsts. Their one lasting effect on a first
//! install is `_link_manpages`: an alternative whose master is the
//! version's `postmaster.1.gz` (server), `psql.1.gz` (client) or
//! `SPI_connect.3.gz` (doc), with a slave per other man page the
//! packages ship under `/usr/share/postgresql/V/man`. The man pages are
//! the packages' own file lists (`dpkg -L`), so the alternative is read
//! from them rather than from the shell pipeline that lists them.
//! `configure_version` also makes the version's first cluster
//! (`pg_createcluster`), which an image leaves to its first start.

use super::{update_alternatives, Action, Reader};
use crate::dpkg::shell::Site;

/// The file the postinsts source.
pub(super) const FUNCTIONS: &str = "/usr/share/postgresql-common/maintscripts-functions";

/// Whether `name` is one of the functions that file defines and a
/// first install's postinst calls.
pub(super) fn is_configure(name: &str) -> bool {
    matches!(
        name,
        "configure_version"
            | "configure_client_version"
            | "configure_contrib_version"
            | "configure_doc_version"
    )
}

/// A major version as the package names carry it (`15`, `9.6`).
fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 8
        && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.as_bytes()[0].is_ascii_digit()
}

/// Records what `configure_*_version VERSION [OLD]` does.
pub(super) fn configure(r: &mut Reader, args: &[&str], at: &Site) {
    let text = args.join(" ");
    let Some(&version) = args.get(1).filter(|v| is_version(v)) else {
        r.record(
            at,
            Action::Skipped {
                command: text,
                why: String::from("postgresql-common's function called without a major version the reader can read"),
            },
        );
        return;
    };
    let server = format!("postgresql-{version}");
    let contrib = format!("postgresql-contrib-{version}");
    let client = format!("postgresql-client-{version}");
    let doc = format!("postgresql-doc-{version}");
    let (master, packages): (&str, Vec<&str>) = match args[0] {
        "configure_version" | "configure_contrib_version" => {
            ("postmaster.1.gz", vec![&server, &contrib])
        }
        "configure_client_version" => ("psql.1.gz", vec![&client]),
        _ => ("SPI_connect.3.gz", vec![&doc]),
    };
    if args[0] == "configure_version" {
        r.record(
            at,
            Action::NotNeeded {
                command: format!("pg_createcluster -u postgres {version} main (from {text})"),
                why: "the version's first cluster: a database with an identity of its own, made at the container's first start (as the official postgres images do), never baked into an image",
            },
        );
        r.record(
            at,
            Action::NotNeeded {
                command: String::from("/usr/share/postgresql-common/pg_updateaptconfig"),
                why: "apt's NeverAutoRemove list of the versions that have a cluster, which is left out with the cluster",
            },
        );
    }
    link_manpages(r, version, master, &packages, at);
}

/// `pg_updatedicts` (postgresql-common's postinst, on a first install):
/// its cache folder, made with umask 022, and the dictionaries of the
/// hunspell and myspell packages converted into it — which the reader
/// does not do (it runs iconv), so it says so when there are any.
pub(super) fn update_dicts(r: &mut Reader, at: &Site) {
    let mkdir = ["mkdir", "-p", "/var/cache/postgresql/dicts"];
    match super::files::parse(&mkdir) {
        Ok(ops) => {
            for op in ops {
                r.record(at, Action::File(op, 0o022));
            }
        }
        Err(why) => r.record(
            at,
            Action::Skipped {
                command: mkdir.join(" "),
                why,
            },
        ),
    }
    let dictionaries = ["/usr/share/hunspell", "/usr/share/myspell/dicts"]
        .iter()
        .flat_map(|d| (r.ctx.list)(d).unwrap_or_default())
        .any(|name| name.ends_with(".aff"));
    if dictionaries {
        r.record(
            at,
            Action::Skipped {
                command: String::from("pg_updatedicts"),
                why: String::from("converts the installed hunspell/myspell dictionaries with iconv into /var/cache/postgresql/dicts, which the reader does not do"),
            },
        );
    }
}

/// `_link_manpages VERSION MASTER PACKAGE…`.
fn link_manpages(r: &mut Reader, version: &str, master: &str, packages: &[&str], at: &Site) {
    let mut mans: Vec<String> = Vec::new();
    for p in packages {
        for f in (r.ctx.files)(p).unwrap_or_default() {
            if is_man_page(&f) && !matches_anywhere(master, &f) {
                mans.push(f);
            }
        }
    }
    // `[ -n "$MANS" ] || return 0`
    if mans.is_empty() {
        return;
    }
    let dirs = [
        "mkdir",
        "-p",
        "/usr/share/man/man1",
        "/usr/share/man/man3",
        "/usr/share/man/man7",
    ];
    match super::files::parse(&dirs) {
        Ok(ops) => {
            for op in ops {
                r.record(at, Action::File(op, at.umask));
            }
        }
        Err(why) => r.record(
            at,
            Action::Skipped {
                command: dirs.join(" "),
                why,
            },
        ),
    }
    let section = section(master);
    let priority = if version.starts_with(['8', '9']) {
        version.chars().filter(char::is_ascii_digit).collect()
    } else {
        format!("{version}0")
    };
    let link = format!("/usr/share/man/{section}/{master}");
    let path = format!("/usr/share/postgresql/{version}/man/{section}/{master}");
    let strip = format!("postgresql/{version}/");
    let mut argv: Vec<String> = vec![
        String::from("--install"),
        link,
        master.to_string(),
        path,
        priority,
    ];
    for man in &mans {
        // `sed "s/postgresql\/$1\///"`: the first occurrence.
        let target = man.replacen(&strip, "", 1);
        let name = man.rsplit('/').next().unwrap_or(man).to_string();
        argv.extend([String::from("--slave"), target, name, man.clone()]);
    }
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let action = match update_alternatives::parse(&args) {
        Ok(a) => a,
        Err(why) => Action::Skipped {
            command: format!("update-alternatives --install /usr/share/man/{section}/{master} {master} (postgresql-common's _link_manpages)"),
            why,
        },
    };
    r.record(at, action);
}

/// `grep -E '/man/.*\.[1-9](\.gz)?$'`.
fn is_man_page(path: &str) -> bool {
    let stem = path.strip_suffix(".gz").unwrap_or(path);
    let b = stem.as_bytes();
    if b.len() < 2 || b[b.len() - 2] != b'.' || !(b'1'..=b'9').contains(&b[b.len() - 1]) {
        return false;
    }
    stem[..stem.len() - 2].contains("/man/")
}

/// `grep "$2"` with a basic regular expression of letters, digits, `_`
/// and `.` (any character), as the masters are.
fn matches_anywhere(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    t.len() >= p.len()
        && t.windows(p.len())
            .any(|w| w.iter().zip(p).all(|(c, q)| *q == b'.' || c == q))
}

/// `sed -e 's/.*\.\(.*\)\..*/man\1/'`: the part between the last two dots.
fn section(master: &str) -> String {
    let mut parts = master.rsplitn(3, '.');
    let _ext = parts.next();
    match (parts.next(), parts.next()) {
        (Some(s), Some(_)) => format!("man{s}"),
        _ => master.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_masters_and_sections_as_the_functions_find_them() {
        assert!(is_man_page("/usr/share/postgresql/15/man/man1/initdb.1.gz"));
        assert!(is_man_page("/usr/share/postgresql/15/man/man7/ABORT.7"));
        assert!(!is_man_page("/usr/share/postgresql/15/man/man1"));
        assert!(!is_man_page("/usr/share/doc/x/changelog.Debian.gz"));
        assert!(!is_man_page("/usr/lib/postgresql/15/bin/initdb.1.gz"));
        assert!(matches_anywhere(
            "postmaster.1.gz",
            "/usr/share/postgresql/15/man/man1/postmaster.1.gz"
        ));
        assert!(!matches_anywhere(
            "postmaster.1.gz",
            "/usr/share/postgresql/15/man/man1/postgres.1.gz"
        ));
        assert_eq!(section("postmaster.1.gz"), "man1");
        assert_eq!(section("SPI_connect.3.gz"), "man3");
        assert!(is_version("15") && is_version("9.6"));
        assert!(!is_version("../1") && !is_version("") && !is_version("x"));
    }
}
