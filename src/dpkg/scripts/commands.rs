//! What each command a maintainer script runs means for an image: the
//! commands of dpkg, adduser, update-alternatives, debconf, init systems
//! and the caches Debian's packages refresh. A command not named here is
//! skipped as unknown, with its name.

use super::{
    adduser, files, postgresql, sed, ucf, update_alternatives, Action, PhpEnmod, Reader, Service,
    Temp, MKTEMP,
};
use crate::dpkg::shell::{Simple, Site, Status};

/// Records what `cmd` does at `at`, and returns its exit status.
pub(super) fn run(r: &mut Reader, cmd: &Simple, at: &Site) -> Status {
    if let Some(status) = temporary(r, cmd, at) {
        return status;
    }
    // Writing a file: `cat > FILE <<EOF` and `echo … > FILE` are followed,
    // any other a file change the reader does not make.
    if let Some(write) = cmd.writes.first() {
        let action = match (&write.path, cmd.writes.len()) {
            (Some(path), 1) if path.starts_with("/dev/") => Action::NotNeeded {
                command: cmd.written.to_string(),
                why: "writes to a device (the terminal, a log): nothing in the image",
            },
            (Some(path), 1) => files::write(cmd.argv, &write.op, path, cmd.body)
                .map(|op| Action::File(op, at.umask))
                .unwrap_or_else(|why| Action::Skipped {
                    command: cmd.written.to_string(),
                    why,
                }),
            (path, _) => Action::Skipped {
                command: cmd.written.to_string(),
                why: format!(
                    "writes {}",
                    path.as_deref().unwrap_or("a file named at run time")
                ),
            },
        };
        let status = match action {
            Action::File(..) => Status::True,
            _ => Status::Unknown,
        };
        r.record(at, action);
        return status;
    }
    if cmd.heredoc {
        r.record(
            at,
            Action::Skipped {
                command: cmd.written.to_string(),
                why: String::from("reads a here-document"),
            },
        );
        return Status::Unknown;
    }
    let args = cmd.argv;
    let text = args.join(" ");
    let not_needed = |why: &'static str| Action::NotNeeded {
        command: text.clone(),
        why,
    };
    let skipped = |why: &str| Action::Skipped {
        command: text.clone(),
        why: why.to_string(),
    };
    match args[0] {
        "dpkg" => match args {
            [_, "--compare-versions", a, op, b] => compare_versions(a, op, b),
            [_, "--print-architecture"] => Status::True,
            _ => {
                r.record(at, skipped("a dpkg query the reader does not answer"));
                Status::Unknown
            }
        },
        "su" => su(r, args),
        // The accounts made before (by earlier packages and earlier
        // lines); a package's own do not exist before its first configure.
        "getent" if matches!(args.get(1), Some(&("passwd" | "group"))) && args.len() == 3 => {
            Status::of(r.account(args[1], args[2]).is_some())
        }
        "update-alternatives" => {
            match update_alternatives::parse(&args[1..]) {
                Ok(a) => r.record(at, a),
                Err(why) => r.record(at, skipped(&why)),
            }
            Status::True
        }
        "adduser" | "useradd" | "addgroup" | "groupadd" => {
            match adduser::parse(args) {
                    Some(a) => r.record(at, a),
                    None => r.record(at, skipped("only system accounts (`--system`, `-r`) and groups with a given id, with literal names, are followed")),
                }
            Status::True
        }
        "ucf" => {
            match ucf::parse_ucf(&args[1..]) {
                Ok(Action::Ucf(mut u)) if u.new == MKTEMP => match &r.temp {
                    Some(Temp {
                        written: Some((bytes, mode)),
                        ..
                    }) => {
                        u.content = Some(bytes.clone());
                        u.mode = Some(*mode);
                        r.record(at, Action::Ucf(u));
                    }
                    Some(Temp {
                        copy: Some((from, kept)),
                        doubtful,
                        ..
                    }) => {
                        u.new = from.clone();
                        u.unapplied = doubtful.clone();
                        u.mode = (!kept).then_some(0o600);
                        r.record(at, Action::Ucf(u));
                    }
                    _ => r.record(
                        at,
                        skipped("installs a temporary file whose content the reader cannot tell"),
                    ),
                },
                Ok(a) => r.record(at, a),
                Err(why) => r.record(at, skipped(&why)),
            }
            Status::True
        }
        "ucfr" => {
            match ucf::parse_ucfr(&args[1..]) {
                Ok(a) => r.record(at, a),
                Err(why) => r.record(at, skipped(&why)),
            }
            Status::True
        }
        "systemd-sysusers" => {
            let files: Vec<&&str> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
            if files.is_empty() {
                r.record(at, not_needed("every sysusers.d file is applied by stele"));
            }
            for f in files {
                r.record(
                    at,
                    Action::Sysusers {
                        file: f.to_string(),
                    },
                );
            }
            Status::True
        }
        "systemd-tmpfiles" => {
            let (opts, files): (Vec<&str>, Vec<&str>) =
                args[1..].iter().partition(|a| a.starts_with('-'));
            let create = opts.contains(&"--create");
            let other = opts.iter().find(|o| !matches!(**o, "--create" | "--root="));
            match (create, other, files.is_empty()) {
                (true, None, false) if files.iter().all(|f| !f.contains("..")) => r.record(
                    at,
                    Action::Tmpfiles {
                        files: files.iter().map(|f| f.to_string()).collect(),
                    },
                ),
                (true, None, true) => r.record(
                    at,
                    skipped("applies every tmpfiles.d file; the reader applies the files a script names"),
                ),
                _ => r.record(
                    at,
                    skipped("systemd-tmpfiles other than `--create FILE…`"),
                ),
            }
            Status::True
        }
        "deb-systemd-helper" => {
            let rest: Vec<&str> = args[1..]
                .iter()
                .copied()
                .filter(|a| *a != "--quiet")
                .collect();
            match rest.as_slice() {
                // A unit never seen before counts as enabled, so a first
                // install enables it (deb-systemd-helper(1p)).
                ["was-enabled", _] => Status::True,
                // Whether deb-systemd-helper enabled the unit before: its
                // state file is there.
                ["debian-installed", unit] if super::is_file_name(unit) => Status::of(
                    (r.ctx.lookup)(&format!(
                        "/var/lib/systemd/deb-systemd-helper-enabled/{unit}.dsh-also"
                    ))
                    .is_some(),
                ),
                [verb @ ("enable" | "update-state"), units @ ..] if !units.is_empty() => {
                    for unit in units {
                        let action = if !super::is_file_name(unit) {
                            skipped(&format!(
                                "refused: `{}` is not a unit name",
                                unit.escape_debug()
                            ))
                        } else if *verb == "enable" {
                            Action::Service(Service::Enable(unit.to_string()))
                        } else {
                            Action::Service(Service::UpdateState(unit.to_string()))
                        };
                        r.record(at, action);
                    }
                    Status::True
                }
                _ => {
                    r.record(at, not_needed("systemd's state for upgrades and removals; nothing to do on a first install"));
                    Status::True
                }
            }
        }
        "systemctl" if systemctl_enable(&args[1..]).is_some() => {
            for unit in systemctl_enable(&args[1..]).unwrap_or_default() {
                let action = if super::is_file_name(unit) {
                    Action::Service(Service::SystemctlEnable(unit.to_string()))
                } else {
                    skipped(&format!(
                        "refused: `{}` is not a unit name",
                        unit.escape_debug()
                    ))
                };
                r.record(at, action);
            }
            Status::True
        }
        "/lib/runit-helper/runit-helper" | "/usr/lib/runit-helper/runit-helper" => {
            // dh_runit's helper, as its postinst enables a service: the
            // link runsvdir/default/NAME → /etc/sv/NAME, unless the admin's
            // `.NAME` marker or a link is there (a first install has
            // neither). What it does under /run and to running services
            // an image does not need.
            let var = |n: &str| {
                cmd.env
                    .iter()
                    .rev()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.as_deref())
            };
            match (args.get(1).copied(), var("NAME"), var("ENABLE")) {
                (Some("postinst"), Some(Some(name)), Some(Some("yes")))
                    if super::is_file_name(name) =>
                {
                    let link = format!("/etc/runit/runsvdir/default/{name}");
                    let marker = format!("/etc/runit/runsvdir/default/.{name}");
                    if (r.ctx.lookup)(&marker).is_none() && (r.ctx.lookup)(&link).is_none() {
                        let op = files::FileOp::Symlink {
                            target: format!("/etc/sv/{name}"),
                            link,
                            force: true,
                        };
                        r.record(at, Action::File(op, at.umask));
                    }
                }
                (Some("postinst"), _, Some(Some("yes"))) => r.record(
                    at,
                    skipped("runit-helper with a service name the reader cannot tell"),
                ),
                _ => r.record(
                    at,
                    not_needed("runit-helper: nothing to enable on a first install"),
                ),
            }
            Status::True
        }
        "update-rc.d" => {
            match &args[1..] {
                // The sequence numbers after `defaults` are ignored by
                // update-rc.d since insserv's dependency ordering (it
                // warns and falls back to the LSB header).
                [name, "defaults", numbers @ ..]
                    if super::is_file_name(name)
                        && numbers.len() <= 2
                        && numbers.iter().all(|n| {
                            !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
                        }) =>
                {
                    r.record(at, Action::Service(Service::RcDefaults(name.to_string())));
                }
                _ => r.record(
                    at,
                    skipped("update-rc.d with arguments the reader does not follow"),
                ),
            }
            Status::True
        }
        "deb-systemd-invoke" | "systemctl" | "invoke-rc.d" | "service" | "start-stop-daemon"
        | "initctl" => {
            r.record(
                at,
                not_needed("starts or stops a service: an image runs none while it is built"),
            );
            Status::Unknown
        }
        "dpkg-maintscript-helper" => {
            r.record(
                at,
                not_needed(
                    "conffile and path moves for upgrades; nothing to do on a first install",
                ),
            );
            Status::True
        }
        "update-mime-database"
        | "gtk-update-icon-cache"
        | "update-desktop-database"
        | "fc-cache"
        | "mandb"
        | "install-info"
        | "update-menus"
        | "glib-compile-schemas"
        | "update-icon-caches"
        | "update-info-dir"
        | "gio-querymodules"
        | "update-catalog"
        | "update-xmlcatalog" => {
            r.record(
                at,
                not_needed("a cache the program rebuilds or does without"),
            );
            Status::True
        }
        "update-binfmts" => {
            r.record(
                at,
                not_needed("binfmt registration belongs to the host kernel"),
            );
            Status::True
        }
        "ldconfig" => {
            r.record(
                at,
                Action::Generated {
                    command: text.clone(),
                    what: "/etc/ld.so.cache, written by stele when libc-bin is installed",
                },
            );
            Status::True
        }
        "update-ca-certificates" => {
            r.record(
                    at,
                    Action::Generated {
                        command: text.clone(),
                        what: "the CA bundle and its links in /etc/ssl/certs, written by stele from ca-certificates' files",
                    },
                );
            Status::True
        }
        "shadowconfig" if args.get(1) == Some(&"on") && args.len() == 2 => {
            r.record(at, Action::ShadowOn);
            Status::True
        }
        "pam-auth-update" => {
            r.record(
                at,
                Action::Generated {
                    command: text.clone(),
                    what: "/etc/pam.d/common-*, written by stele from every profile in /usr/share/pam-configs",
                },
            );
            Status::True
        }
        "add-shell" | "remove-shell" | "update-shells" => {
            r.record(
                at,
                Action::Generated {
                    command: text.clone(),
                    what: "/etc/shells, written by stele from debianutils' template and every shells.d file",
                },
            );
            Status::True
        }
        "dpkg-trigger" => {
            r.record(
                at,
                not_needed("a trigger activation: the triggers that write files (ldconfig, update-shells, pam-auth-update, update-ca-certificates) are made by stele, the rest reload running services"),
            );
            Status::True
        }
        "." | "source" if args.get(1) == Some(&"/usr/lib/php/php-maintscript-helper") => {
            // php-common's functions, of which the reader knows the one
            // that changes files: `php_invoke` (below).
            Status::True
        }
        "php_invoke" => {
            match &args[1..] {
                // php-maintscript-helper: for every SAPI, `phpenmod -m -r`
                // (maintainer, registered); for one, `phpenmod -m`.
                ["enmod", version, sapi, module] => {
                    let all = *sapi == "ALL";
                    let e = PhpEnmod {
                        version: version.to_string(),
                        sapi: sapi.to_string(),
                        module: module.to_string(),
                        maint: true,
                        register: all,
                    };
                    match php_checked(e) {
                        Ok(e) => r.record(at, Action::PhpEnmod(e)),
                        Err(why) => r.record(at, skipped(&why)),
                    }
                }
                [cmd, ..] if *cmd != "enmod" => r.record(
                    at,
                    not_needed("disables PHP modules: nothing to do on a first install"),
                ),
                _ => r.record(
                    at,
                    skipped("php_invoke with arguments the reader does not follow"),
                ),
            }
            Status::True
        }
        "phpenmod" => {
            match php_enmod_args(&args[1..]) {
                Ok(es) => {
                    for e in es {
                        r.record(at, Action::PhpEnmod(e));
                    }
                }
                Err(why) => r.record(at, skipped(&why)),
            }
            Status::True
        }
        "." | "source" if args.get(1) == Some(&postgresql::FUNCTIONS) => {
            // postgresql-common's functions: the reader knows those a
            // first install's postinsts call (below).
            if !r.sourced.contains(&postgresql::FUNCTIONS) {
                r.sourced.push(postgresql::FUNCTIONS);
            }
            Status::True
        }
        "pg_updatedicts" | "/usr/sbin/pg_updatedicts" => {
            postgresql::update_dicts(r, at);
            Status::True
        }
        name if postgresql::is_configure(name) && r.sourced.contains(&postgresql::FUNCTIONS) => {
            postgresql::configure(r, args, at);
            Status::True
        }
        "." | "source" if args.get(1) == Some(&"/usr/share/debconf/confmodule") => {
            // debconf's library, not an effect: what its questions decide
            // is read from their defaults, and commands that depend on an
            // answer are reported where they are met.
            Status::True
        }
        "." | "source" => {
            r.record(
                at,
                skipped("sources another file, which the reader does not read"),
            );
            Status::Unknown
        }
        "db_get" if args.len() == 2 => {
            // The question's default, as debconf answers a question
            // nobody was asked (noninteractive, as an image is built).
            let default = r
                .ctx
                .templates
                .and_then(|t| super::template_default(t, args[1]));
            match default {
                Some(value) => {
                    r.record(
                        at,
                        not_needed("a debconf question: an image takes its default, which the script reads from RET"),
                    );
                    r.assign = Some((String::from("RET"), Some(value)));
                    Status::True
                }
                None => {
                    r.record(
                        at,
                        not_needed("a debconf question: an image takes its default, and what depends on the answer is read under doubt"),
                    );
                    r.assign = Some((String::from("RET"), None));
                    Status::Unknown
                }
            }
        }
        "db_get"
        | "db_set"
        | "db_input"
        | "db_go"
        | "db_stop"
        | "db_fset"
        | "db_fget"
        | "db_metaget"
        | "db_purge"
        | "db_reset"
        | "db_register"
        | "db_unregister"
        | "db_subst"
        | "db_version"
        | "db_capb"
        | "db_title"
        | "db_x_loadtemplatefile" => {
            r.record(
                at,
                not_needed("a debconf question: an image takes its default, and what depends on the answer is read under doubt"),
            );
            Status::Unknown
        }
        "dpkg-statoverride" if args.get(1) == Some(&"--list") => {
            // A first install has no override but those a script adds.
            Status::False
        }
        "grep" => match sed::parse_grep(&args[1..]) {
            // grep -q answers 1 for a missing file too (2, an error, is
            // false as well for `if`).
            Ok((patterns, file)) => match (r.ctx.lookup)(&file) {
                None => Status::False,
                Some(_) => match (r.ctx.read)(&file) {
                    Some(text) => Status::of(sed::grep(&patterns, &text)),
                    None => Status::Unknown,
                },
            },
            Err(why) => {
                r.record(at, skipped(&why));
                Status::Unknown
            }
        },
        "mkdir" | "install" | "touch" | "chmod" | "chown" | "chgrp" | "ln" | "cp" | "rm"
        | "sed" | "dpkg-statoverride" => {
            match files::parse(args) {
                Ok(ops) => {
                    for op in ops {
                        r.record(at, Action::File(op, at.umask));
                    }
                }
                Err(why) => r.record(at, skipped(&why)),
            }
            Status::True
        }
        "rmdir" | "mv" | "mknod" | "setcap" => {
            r.record(
                at,
                skipped(&format!(
                    "changes files with `{}`, which the reader does not reproduce",
                    args[0]
                )),
            );
            Status::Unknown
        }
        other => {
            r.record(
                at,
                Action::Skipped {
                    command: text.clone(),
                    why: format!("a command the reader does not know (`{other}`)"),
                },
            );
            Status::Unknown
        }
    }
}

/// A command on `MKTEMP` (see `Reader::temp`): `cp FILE "$tmp"` is
/// followed as a copy; `rm` of it is no effect; any other command that
/// names it makes its content unknown, or, under a condition the reader
/// cannot decide, is remembered as an edit the copy does not have. `ucf`
/// is left to its own reading.
fn temporary(r: &mut Reader, cmd: &Simple, at: &Site) -> Option<Status> {
    let args = cmd.argv;
    let named = args.iter().skip(1).any(|a| *a == MKTEMP)
        || cmd.writes.iter().any(|w| w.path.as_deref() == Some(MKTEMP));
    if !named || args[0] == "ucf" || at.probe {
        return None;
    }
    let text = args.join(" ");
    let operands: Vec<&str> = args[1..]
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-'))
        .collect();
    match (args[0], operands.as_slice()) {
        ("cp", [from, to]) if *to == MKTEMP && from.starts_with('/') && at.doubt.is_none() => {
            let kept = args[1..].iter().any(|a| {
                a.starts_with('-') && !a.starts_with("--") && (a.contains('a') || a.contains('p'))
                    || matches!(*a, "--archive" | "--preserve")
            });
            r.temp = Some(Temp {
                copy: Some((from.to_string(), kept)),
                doubtful: Vec::new(),
                written: None,
            });
            r.record(
                at,
                Action::NotNeeded {
                    command: text,
                    why: "a temporary copy, followed to the command that installs it",
                },
            );
            Some(Status::True)
        }
        ("rm", _) => {
            r.record(
                at,
                Action::NotNeeded {
                    command: text,
                    why: "removes a temporary file",
                },
            );
            Some(Status::True)
        }
        // What the script writes into it, where that is sure to run: a
        // here-document, or a `sed` of an installed file.
        ("cat", []) if written_whole(cmd) && at.doubt.is_none() && cmd.body.is_some() => {
            let body = cmd.body.unwrap_or_default();
            r.temp = Some(Temp {
                copy: None,
                doubtful: Vec::new(),
                written: Some((body.as_bytes().to_vec(), 0o600)),
            });
            r.record(at, written_note(text));
            Some(Status::True)
        }
        ("sed", _) if written_whole(cmd) && at.doubt.is_none() && sed_of(r, args).is_some() => {
            let edited = sed_of(r, args).unwrap_or_default();
            r.temp = Some(Temp {
                copy: None,
                doubtful: Vec::new(),
                written: Some((edited.into_bytes(), 0o600)),
            });
            r.record(at, written_note(text));
            Some(Status::True)
        }
        ("chmod", [mode, _])
            if at.doubt.is_none()
                && matches!(
                    &r.temp,
                    Some(Temp {
                        written: Some(_),
                        ..
                    })
                )
                && u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o7777) =>
        {
            if let Some(Temp {
                written: Some((_, m)),
                ..
            }) = &mut r.temp
            {
                *m = u32::from_str_radix(mode, 8).unwrap_or(0o600);
            }
            r.record(at, written_note(text));
            Some(Status::True)
        }
        _ => {
            match (&mut r.temp, at.doubt) {
                (
                    Some(Temp {
                        copy: Some(_),
                        doubtful,
                        ..
                    }),
                    Some(_),
                ) => doubtful.push(at.line),
                (temp, _) => {
                    *temp = Some(Temp {
                        copy: None,
                        doubtful: Vec::new(),
                        written: None,
                    })
                }
            }
            r.record(
                at,
                Action::Skipped {
                    command: text,
                    why: String::from(
                        "changes a temporary file, which the reader follows only as a copy",
                    ),
                },
            );
            Some(Status::Unknown)
        }
    }
}

/// A module, version and SAPI must each be one file name.
fn php_checked(e: PhpEnmod) -> Result<PhpEnmod, String> {
    for (what, name) in [
        ("module", &e.module),
        ("version", &e.version),
        ("SAPI", &e.sapi),
    ] {
        if !super::is_file_name(name) {
            return Err(format!(
                "refused: `{}` is not a PHP {what} name",
                name.escape_debug()
            ));
        }
    }
    Ok(e)
}

/// `phpenmod [-v VERSION] [-s SAPI] [-m] [-r] [-q] MODULE…` (both
/// default to ALL).
fn php_enmod_args(args: &[&str]) -> Result<Vec<PhpEnmod>, String> {
    let (mut version, mut sapi) = ("ALL", "ALL");
    let (mut maint, mut register) = (false, false);
    let mut modules = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-v" | "-s" if i + 1 < args.len() => {
                if args[i] == "-v" {
                    version = args[i + 1];
                } else {
                    sapi = args[i + 1];
                }
                i += 1;
            }
            "-m" => maint = true,
            "-r" => register = true,
            "-q" => {}
            a if a.starts_with('-') => {
                return Err(format!(
                    "phpenmod with an option the reader does not follow (`{}`)",
                    a.escape_debug()
                ))
            }
            m => modules.push(m),
        }
        i += 1;
    }
    if modules.is_empty() {
        return Err(String::from("phpenmod without a module"));
    }
    modules
        .into_iter()
        .map(|m| {
            php_checked(PhpEnmod {
                version: version.to_string(),
                sapi: sapi.to_string(),
                module: m.to_string(),
                maint,
                register,
            })
        })
        .collect()
}

/// `dpkg --compare-versions A OP B`: an empty version is earlier than any
/// other, except for the `-nl` operators, where it is later.
fn compare_versions(a: &str, op: &str, b: &str) -> Status {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let (op, nl) = match op.strip_suffix("-nl") {
        Some(o) => (o, true),
        None => (op, false),
    };
    let ord = match (a.is_empty(), b.is_empty()) {
        (true, true) => Equal,
        (true, false) if nl => Greater,
        (true, false) => Less,
        (false, true) if nl => Less,
        (false, true) => Greater,
        (false, false) => crate::dpkg::version::compare(a, b),
    };
    match op {
        "lt" | "<<" => Status::of(ord == Less),
        "le" | "<=" | "<" => Status::of(ord != Greater),
        "eq" | "=" => Status::of(ord == Equal),
        "ne" => Status::of(ord != Equal),
        "ge" | ">=" | ">" => Status::of(ord != Less),
        "gt" | ">>" => Status::of(ord == Greater),
        _ => Status::Unknown,
    }
}

/// `su [-s SHELL] USER -c 'test -O PATH && test -G PATH'` (postgresql-
/// common's check that the user owns its home, before it chowns it): a
/// test of ownership the tree answers. A root-owned path is not owned by
/// a package's user, whose ids are never 0. Anything else su runs is
/// unknown.
fn su(r: &mut Reader, args: &[&str]) -> Status {
    let mut user = None;
    let mut script = None;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match *a {
            "-s" | "--shell" => {
                it.next();
            }
            "-c" | "--command" => script = it.next().copied(),
            "-" | "-l" | "--login" | "-m" | "-p" => {}
            u if !u.starts_with('-') && user.is_none() => user = Some(u),
            _ => return Status::Unknown,
        }
    }
    let (Some(user), Some(script)) = (user, script) else {
        return Status::Unknown;
    };
    if user == "root" || r.account("passwd", user).is_none() {
        return Status::Unknown;
    }
    // `A && B` is false at its first test when that is false; only a
    // root-owned path is known not to be the user's.
    let first = script.split("&&").next().unwrap_or_default();
    let words: Vec<&str> = first.split_whitespace().collect();
    let (op, path) = match words.as_slice() {
        ["test", op, path] | ["[", op, path, "]"] => (*op, *path),
        _ => return Status::Unknown,
    };
    let Some((uid, gid)) = (r.ctx.owner)(path) else {
        return Status::Unknown;
    };
    let root = match op {
        "-O" => uid == 0,
        "-G" => gid == 0,
        _ => return Status::Unknown,
    };
    if root {
        Status::False
    } else {
        Status::Unknown
    }
}

/// The units of `systemctl [OPTIONS] enable UNIT…` (options that change
/// nothing in the tree, and `--root`, which is `$DPKG_ROOT`, empty for
/// an image's scripts), or None for another systemctl call.
fn systemctl_enable<'a>(args: &[&'a str]) -> Option<Vec<&'a str>> {
    let mut words = args.iter().copied().filter(|a| {
        !matches!(
            *a,
            "-q" | "--quiet" | "--no-reload" | "--root=" | "--system"
        )
    });
    if words.next()? != "enable" {
        return None;
    }
    let units: Vec<&str> = words.collect();
    (!units.is_empty() && !units.iter().any(|u| u.starts_with('-'))).then_some(units)
}

/// Whether `cmd` writes only the temporary file, whole (`> "$tmp"`).
fn written_whole(cmd: &Simple) -> bool {
    matches!(cmd.writes, [w] if w.op == ">" && w.path.as_deref() == Some(MKTEMP))
}

fn written_note(command: String) -> Action {
    Action::NotNeeded {
        command,
        why: "writes a temporary file, followed to the command that installs it",
    }
}

/// `sed -e … FILE` of an installed file: the text it prints.
fn sed_of(r: &Reader, args: &[&str]) -> Option<String> {
    let (edit, files) = super::sed::parse_sed_printing(&args[1..]).ok()?;
    match files.as_slice() {
        [file] if file.starts_with('/') => super::sed::apply(&edit, &(r.ctx.read)(file)?).ok(),
        _ => None,
    }
}
