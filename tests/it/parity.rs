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
//! quick loops while working on parity. The sets beyond minbase and
//! nginx + redis (postgresql, openssh-server, php-cli) download and
//! install three times as much; `STELE_PARITY_QUICK=1` leaves them out
//! for quick loops.

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

/// What a parity run leaves: the comparison, and stele's image (an OCI
/// layout) for the real runs.
struct Parity {
    #[allow(dead_code)]
    comparison: Comparison,
    image: std::path::PathBuf,
    /// How many packages apt installed, and their names, sorted.
    packages: usize,
    names: Vec<String>,
}

/// Runs `script` with bash in one container of `image` (no network but
/// its own loopback), as root; its output.
fn in_container(image: &std::path::Path, script: &str) -> Option<Run> {
    if !have_tool("podman") {
        return None;
    }
    let storage = crate::support::podman::lowercase_tempdir();
    let r = crate::support::podman::podman_run_with(
        storage.path(),
        &["--entrypoint", "/bin/bash"],
        &format!("oci:{}:latest", image.display()),
        &["-c", script],
    );
    Some(r)
}

/// The lines every run prints (Debian's tools read the database: the
/// package count, `dpkg -L`, `-S`, `-V`, `apt-get check`), then `more`.
fn expect_lines(r: &Run, packages: usize, more: &[&str]) {
    let count = format!("packages {packages}");
    let dpkg = [
        count.as_str(),
        "dpkg -L ok",
        "dpkg -S ok",
        "dpkg -V ok",
        "apt-get check ok",
    ];
    for want in dpkg.iter().chain(more) {
        assert!(
            r.stdout.lines().any(|l| l == *want),
            "`{want}` not in:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
}

/// Builds `set` with apt and with stele, compares the two and returns the
/// comparison after the allowed differences are taken out, failing on
/// any other.
fn parity(name: &str, set: &[&str]) -> Option<Parity> {
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
    // Every difference, allowed or not, kept beside the two trees: what
    // the next step of parity work starts from.
    let listing: Vec<String> = c
        .differences
        .iter()
        .map(|(path, what)| format!("/{path}: {what}\n"))
        .collect();
    fs::write(apt.root.with_extension("differences"), listing.concat()).unwrap();
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
    Some(Parity {
        comparison: c,
        image: out,
        packages: apt.packages.len(),
        names: {
            let mut names: Vec<String> = apt.packages.iter().map(|(n, _, _)| n.clone()).collect();
            names.sort_unstable();
            names
        },
    })
}

/// And `recipes/debian.toml` (`variant = "minbase"`) locks exactly the
/// packages debootstrap installed.
#[test]
fn minbase_equals_debootstrap() {
    let Some(p) = parity("minbase", &[]) else {
        return;
    };
    let lock =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/debian.lock")).unwrap();
    let mut locked: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    locked.sort_unstable();
    let names: Vec<&str> = p.names.iter().map(String::as_str).collect();
    assert_eq!(
        locked, names,
        "recipes/debian.lock against debootstrap's minbase"
    );
}

/// Then, in the image: Debian's own tools read its dpkg database, nginx
/// serves its default page, redis answers, and `su` reaches a system user.
#[test]
fn nginx_and_redis_equal_apt() {
    let Some(p) = parity("nginx-redis", &["nginx-light", "redis-server"]) else {
        return;
    };
    let script = r#"set -e
echo "packages $(dpkg -l | grep -c '^ii')"
dpkg -L nginx-common | grep -qx /etc/nginx/nginx.conf && echo "dpkg -L ok"
dpkg -S /usr/bin/redis-server | grep -q '^redis-server' && echo "dpkg -S ok"
dpkg -V && echo "dpkg -V ok"
apt-get check -q >/dev/null && echo "apt-get check ok"
su -s /bin/sh redis -c 'id -un' | sed 's/^/su: /'
redis-server --daemonize yes --logfile /var/log/redis/redis.log >/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli ping 2>/dev/null | grep -q PONG && break; sleep 0.5; done
echo "redis $(redis-cli ping)"
nginx
exec 3<>/dev/tcp/127.0.0.1/80
printf 'GET / HTTP/1.0
Host: localhost

' >&3
grep -q 'Welcome to nginx' <&3 && echo "nginx serves its page"
"#;
    let Some(r) = in_container(&p.image, script) else {
        return;
    };
    assert!(
        r.ok(),
        "{}
{}",
        r.stdout,
        r.stderr
    );
    expect_lines(
        &r,
        p.packages,
        &["su: redis", "redis PONG", "nginx serves its page"],
    );
}

/// Whether the heavier sets run: always, but with `STELE_PARITY_QUICK=1`
/// (a quick loop while working on one set); the test then says why it
/// did not.
fn all_sets(name: &str) -> bool {
    let quick = std::env::var("STELE_PARITY_QUICK").is_ok_and(|v| v == "1");
    if quick {
        skip(&format!(
            "the {name} parity set is left out under STELE_PARITY_QUICK=1"
        ));
    }
    !quick
}

/// Then, in the image: Debian's tools read the dpkg database, and the
/// postgres user makes a cluster in its home, starts the server and
/// answers a query.
#[test]
fn postgresql_equals_apt() {
    if !all_sets("postgresql") {
        return;
    }
    let Some(p) = parity("postgresql", &["postgresql"]) else {
        return;
    };
    // /run is the container's: its start-up makes the socket folder, as
    // systemd-tmpfiles does at boot from postgresql-common's tmpfiles.d.
    let script = r#"set -e
echo "packages $(dpkg -l | grep -c '^ii')"
dpkg -L postgresql-15 | grep -qx /usr/lib/postgresql/15/bin/initdb && echo "dpkg -L ok"
dpkg -S /usr/lib/postgresql/15/bin/postgres | grep -q '^postgresql-15' && echo "dpkg -S ok"
dpkg -V && echo "dpkg -V ok"
apt-get check -q >/dev/null && echo "apt-get check ok"
install -d -m 2775 -o postgres -g postgres /run/postgresql
su postgres -c '/usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/data' >/dev/null && echo "initdb ok"
su postgres -c '/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/data -w -l /var/lib/postgresql/server.log start' >/dev/null && echo "started"
echo "select $(su postgres -c "psql -tAc 'select 1'")"
"#;
    let Some(r) = in_container(&p.image, script) else {
        return;
    };
    assert!(r.ok(), "{}\n{}", r.stdout, r.stderr);
    expect_lines(&r, p.packages, &["initdb ok", "started", "select 1"]);
}

/// Then, in the image: host keys made at start-up let `sshd -t` pass
/// (the privilege separation folder is under /run, which a container
/// starts empty), `su` reaches the sshd user, and Debian's own tools read
/// the dpkg database.
#[test]
fn openssh_server_equals_apt() {
    if !all_sets("openssh-server") {
        return;
    }
    let Some(p) = parity("openssh-server", &["openssh-server"]) else {
        return;
    };
    let script = r#"set -e
echo "packages $(dpkg -l | grep -c '^ii')"
dpkg -L openssh-server | grep -qx /usr/sbin/sshd && echo "dpkg -L ok"
dpkg -S /usr/bin/ssh-agent | grep -q '^openssh-client' && echo "dpkg -S ok"
dpkg -V && echo "dpkg -V ok"
apt-get check -q >/dev/null && echo "apt-get check ok"
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
sshd -t && echo "sshd -t ok"
su -s /bin/sh sshd -c 'id -un' | sed 's/^/su: /'
stat -c 'ssh-agent %G %A' /usr/bin/ssh-agent
"#;
    let Some(r) = in_container(&p.image, script) else {
        return;
    };
    assert!(r.ok(), "{}\n{}", r.stdout, r.stderr);
    expect_lines(
        &r,
        p.packages,
        &["sshd -t ok", "su: sshd", "ssh-agent _ssh -rwxr-sr-x"],
    );
}

#[test]
fn php_cli_equals_apt() {
    if all_sets("php-cli") {
        parity("php-cli", &["php-cli"]);
    }
}
