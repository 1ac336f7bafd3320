use super::files::FileOp;
use super::*;

fn run_with(package: &str, text: &str, files: &[&str]) -> Vec<Step> {
    let lookup = |p: &str| {
        files.contains(&p).then_some(Found::File {
            executable: p.contains("/bin/"),
        })
    };
    let ctx = Context {
        package,
        lookup: &lookup,
        ..nothing_known()
    };
    read(&ctx, text, &["configure"])
}

/// A context that knows nothing of the system: each test sets what it
/// needs over it.
fn nothing_known() -> Context<'static> {
    fn no_file(_: &str) -> Option<Found> {
        None
    }
    fn no_names(_: &str) -> Option<Vec<String>> {
        None
    }
    fn not_registered(_: &str) -> bool {
        false
    }
    fn no_account(_: &str, _: &str) -> Option<Vec<String>> {
        None
    }
    fn no_owner(_: &str) -> Option<(u32, u32)> {
        None
    }
    fn no_text(_: &str) -> Option<String> {
        None
    }
    Context {
        package: "p",
        arch: "amd64",
        native_arch: Some("amd64"),
        lookup: &no_file,
        list: &no_names,
        files: &no_names,
        alternative: &not_registered,
        account: &no_account,
        templates: None,
        owner: &no_owner,
        read: &no_text,
    }
}

fn run(text: &str) -> Vec<Step> {
    run_with("p", text, &[])
}

fn actions(steps: &[Step]) -> Vec<&Action> {
    steps.iter().map(|s| &s.action).collect()
}

fn skipped(steps: &[Step]) -> Vec<(usize, String)> {
    steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Skipped { command, .. } => Some((s.line, command.clone())),
            _ => None,
        })
        .collect()
}

fn alt(link: &str, name: &str, path: &str, priority: i64, slaves: &[(&str, &str, &str)]) -> Action {
    Action::AltInstall(AltInstall {
        link: link.into(),
        name: name.into(),
        path: path.into(),
        priority,
        slaves: slaves
            .iter()
            .map(|(l, n, p)| (l.to_string(), n.to_string(), p.to_string()))
            .collect(),
    })
}

#[test]
fn mawk_registers_awk_with_its_slaves() {
    let steps = run(include_str!("../fixtures/mawk.postinst"));
    assert_eq!(
        actions(&steps),
        [&alt(
            "/usr/bin/awk",
            "awk",
            "/usr/bin/mawk",
            5,
            &[
                (
                    "/usr/share/man/man1/awk.1.gz",
                    "awk.1.gz",
                    "/usr/share/man/man1/mawk.1.gz"
                ),
                ("/usr/bin/nawk", "nawk", "/usr/bin/mawk"),
                (
                    "/usr/share/man/man1/nawk.1.gz",
                    "nawk.1.gz",
                    "/usr/share/man/man1/mawk.1.gz"
                ),
            ]
        )]
    );
    assert_eq!(steps[0].line, 5);
}

#[test]
fn openjdk_registers_each_tool_with_man_slaves_only_where_pages_exist() {
    let base = "/usr/lib/jvm/java-17-openjdk-amd64";
    let java_man = format!("{base}/man/man1/java.1.gz");
    let steps = run_with(
        "openjdk-17-jre-headless",
        include_str!("../fixtures/openjdk-17-jre-headless.postinst"),
        &[&java_man, "/usr/bin/mountpoint"],
    );
    let alts: Vec<&Action> = actions(&steps)
        .into_iter()
        .filter(|a| matches!(a, Action::AltInstall(_)))
        .collect();
    let java = alt(
        "/usr/bin/java",
        "java",
        &format!("{base}/bin/java"),
        1711,
        &[("/usr/share/man/man1/java.1.gz", "java.1.gz", &java_man)],
    );
    assert_eq!(alts[0], &java);
    let names: Vec<&str> = alts
        .iter()
        .map(|a| match a {
            Action::AltInstall(i) => i.name.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        names,
        ["java", "jpackage", "keytool", "rmiregistry", "jexec"]
    );
    let Action::AltInstall(keytool) = alts[2] else {
        unreachable!()
    };
    assert!(keytool.slaves.is_empty(), "no man page for keytool here");
    let Action::AltInstall(jexec) = alts[4] else {
        unreachable!()
    };
    assert_eq!(
        jexec.slaves,
        [(
            "/usr/share/binfmts/jar".to_string(),
            "jexec-binfmt".to_string(),
            format!("{base}/lib/jar.binfmt")
        )]
    );
    // The /etc/.java folders are made as the script makes them; the
    // trigger is not needed (stele writes Java's trust store itself).
    let skipped = skipped(&steps);
    assert!(
        steps.iter().any(|s| s.line == 23
            && matches!(&s.action, Action::File(FileOp::MakeDir { path, mode: Some(0o755), .. }, _) if path == "/etc/.java")),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| matches!(&s.action, Action::NotNeeded { command, .. } if command == "dpkg-trigger update-ca-certificates-java")),
        "{steps:?}"
    );
    // Nothing under the undecidable `mountpoint` condition is an effect.
    assert!(
        !skipped.iter().any(|(_, c)| c.contains("mountpoint")),
        "{skipped:?}"
    );
}

#[test]
fn dbus_adds_messagebus_through_its_in_sysroot_function() {
    let steps = run(include_str!("../fixtures/dbus-system-bus-common.postinst"));
    assert_eq!(
        actions(&steps),
        [&Action::AddUser(AddUser {
            name: "messagebus".into(),
            home: Some("/nonexistent".into()),
            own_group: true,
            create_home: false,
            ..AddUser::default()
        })]
    );
}

#[test]
fn apt_adds_its_user_and_services_are_not_needed() {
    let steps = run(include_str!("../fixtures/apt.postinst"));
    let a = actions(&steps);
    assert_eq!(
        a[0],
        &Action::AddUser(AddUser {
            name: "_apt".into(),
            home: Some("/nonexistent".into()),
            create_home: false,
            bad_names: true,
            ..AddUser::default()
        })
    );
    assert!(
        a.iter()
            .filter(|a| matches!(a, Action::Service(_)) || matches!(a, Action::NotNeeded { why, .. } if why.starts_with("starts or stops") || why.starts_with("systemd's state")))
            .count()
            >= 4
    );
    assert!(a.iter().any(|a| matches!(a, Action::NotNeeded { command, .. } if command.starts_with("dpkg-maintscript-helper rm_conffile /etc/apt/apt.conf.d/20changelog 1.2.4~ -- configure"))));
    // `[ -n "$2" ]` is false on a first install: no rm.
    assert!(skipped(&steps).is_empty(), "{:?}", skipped(&steps));
}

#[test]
fn timesyncd_names_its_sysusers_file_and_skips_what_it_cannot_follow() {
    let steps = run(include_str!("../fixtures/systemd-timesyncd.postinst"));
    let a = actions(&steps);
    assert!(a.contains(&&Action::Sysusers {
        file: "systemd-timesync.conf".into()
    }));
    // _adopt_conffile returns early: no .dpkg-bak file exists.
    assert!(
        !skipped(&steps).iter().any(|(_, c)| c.starts_with("mv")),
        "{:?}",
        skipped(&steps)
    );
}

#[test]
fn what_the_reader_refuses_is_skipped_with_its_line() {
    let text = "#!/bin/sh\nset -e\nfor f in /usr/lib/x/*; do\n  update-alternatives --install /usr/bin/x x $f 10\ndone\nif [ \"$(id -u)\" = 0 ]; then\n  adduser --system foo\nfi\nupdate-alternatives --install /usr/bin/y y `cat /etc/y` 5\n";
    let steps = run(text);
    let s: Vec<(usize, &str)> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Skipped { why, .. } => Some((s.line, why.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(s.len(), 3, "{steps:?}");
    assert_eq!(s[0].0, 4);
    assert!(s[0].1.contains("`for`"), "{s:?}");
    assert_eq!(s[1].0, 7);
    assert!(s[1].1.contains("condition on line 6"), "{s:?}");
    assert_eq!(s[2].0, 9);
    assert!(!steps
        .iter()
        .any(|s| matches!(s.action, Action::AltInstall(_) | Action::AddUser(_))));
}

#[test]
fn variables_case_removal_and_exit() {
    let text = r#"
NAME=tool
prio=${PRIO:-20}
case "$1" in
  configure|abort-upgrade)
    for v in a b; do
      update-alternatives --install /usr/bin/$NAME-$v $NAME-$v /usr/lib/$NAME/$v $prio \
        --slave /usr/share/man/man1/$NAME-$v.1.gz $NAME-$v.1.gz /usr/lib/$NAME/$v.1.gz
    done
    update-alternatives --remove $NAME-b /usr/lib/$NAME/b
    ;;
  remove)
    update-alternatives --remove $NAME-a /usr/lib/$NAME/a
    ;;
esac
getent group staff >/dev/null || addgroup --system --quiet staff
exit 0
adduser --system never
"#;
    let steps = run(text);
    let a = actions(&steps);
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(
        matches!(a[0], Action::Skipped { .. }),
        "PRIO is unknown: {a:?}"
    );
    let text = text.replace("${PRIO:-20}", "20");
    let steps = run(&text);
    let a = actions(&steps);
    assert_eq!(
        a,
        [
            &alt(
                "/usr/bin/tool-a",
                "tool-a",
                "/usr/lib/tool/a",
                20,
                &[(
                    "/usr/share/man/man1/tool-a.1.gz",
                    "tool-a.1.gz",
                    "/usr/lib/tool/a.1.gz"
                )]
            ),
            &alt(
                "/usr/bin/tool-b",
                "tool-b",
                "/usr/lib/tool/b",
                20,
                &[(
                    "/usr/share/man/man1/tool-b.1.gz",
                    "tool-b.1.gz",
                    "/usr/lib/tool/b.1.gz"
                )]
            ),
            &Action::AltRemove {
                name: "tool-b".into(),
                path: "/usr/lib/tool/b".into()
            },
            &Action::AddGroup {
                name: "staff".into(),
                gid: None
            },
        ]
    );
    assert_eq!(steps[0].line, 7);
}

/// Scripts are untrusted input: mangled versions of the fixtures (bytes
/// from sh's special characters inserted, cut and swapped, from a fixed
/// seed) give an answer, never a panic or a hang.
#[test]
fn mangled_scripts_never_panic() {
    let fixtures = [
        include_str!("../fixtures/mawk.postinst"),
        include_str!("../fixtures/openjdk-17-jre-headless.postinst"),
        include_str!("../fixtures/dbus-system-bus-common.postinst"),
        include_str!("../fixtures/apt.postinst"),
        include_str!("../fixtures/systemd-timesyncd.postinst"),
    ];
    let alphabet: Vec<char> = "$`'\"\\(){}[];&|<>#*?:-+= \n\tifthenfidoneforcaseesacé0"
        .chars()
        .collect();
    let mut state: u64 = 0x5eed;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n.max(1)
    };
    for round in 0..400 {
        let mut text: Vec<char> = fixtures[round % fixtures.len()].chars().collect();
        for _ in 0..1 + next(8) {
            let at = next(text.len() + 1);
            match next(3) {
                0 => text.insert(at, alphabet[next(alphabet.len())]),
                1 if at < text.len() => {
                    let end = (at + next(20)).min(text.len());
                    text.drain(at..end);
                }
                _ if at < text.len() => text[at] = alphabet[next(alphabet.len())],
                _ => {}
            }
        }
        let text: String = text.into_iter().collect();
        let _ = run(&text);
    }
    // Deep nesting and a loop that would not end are bounded.
    let deep = format!("{}true{}", "if true; then ".repeat(200), "; fi".repeat(200));
    let _ = run(&deep);
    let _ = run("f() { f; }\nf\n");
    let _ = run("for a in 1 2 3 4 5 6 7 8 9 10; do for b in 1 2 3 4 5 6 7 8 9 10; do for c in 1 2 3 4 5 6 7 8 9 10; do for d in 1 2 3 4 5 6 7 8 9 10; do for e in 1 2 3 4 5 6 7 8 9 10; do true; done; done; done; done; done\n");
}

#[test]
fn versions_uname_and_groups_with_an_id() {
    let text = "if [ -z \"$2\" ] || dpkg --compare-versions \"$2\" lt 1.0.1-11; then\n  groupadd -g 42 shadow\nfi\nif dpkg --compare-versions \"$2\" lt-nl 36~; then adduser --system never; fi\nif dpkg --compare-versions 1.2 gt 1.10; then adduser --system never; fi\nif [ \"$(uname -s)\" = Linux ]; then\n  update-alternatives --install /usr/bin/pager pager /bin/more 50\nfi\n";
    let steps = run(text);
    assert_eq!(
        actions(&steps),
        [
            &Action::AddGroup {
                name: "shadow".into(),
                gid: Some(42)
            },
            &alt("/usr/bin/pager", "pager", "/bin/more", 50, &[]),
        ]
    );
}

#[test]
fn useradd_and_groupadd_system_accounts() {
    let steps = run("useradd -r -g nogroup -s /bin/false -c 'Proxy user' proxyd\ngroupadd -r proxyg\nuseradd -r -m -d /var/lib/w w\nuseradd plain\n");
    assert_eq!(
        actions(&steps)[..3],
        [
            &Action::AddUser(AddUser {
                name: "proxyd".into(),
                gecos: "Proxy user".into(),
                home: Some("/home/proxyd".into()),
                shell: Some("/bin/false".into()),
                group: Some("nogroup".into()),
                create_home: false,
                ..AddUser::default()
            }),
            &Action::AddGroup {
                name: "proxyg".into(),
                gid: None
            },
            &Action::AddUser(AddUser {
                name: "w".into(),
                home: Some("/var/lib/w".into()),
                create_home: true,
                ..AddUser::default()
            }),
        ]
    );
    assert!(
        matches!(actions(&steps)[3], Action::Skipped { .. }),
        "not a system account"
    );
}

#[test]
fn ucf_and_ucfr_are_read_with_their_options() {
    let steps = run(
        "#!/bin/sh\nset -e\n\
         ucf --three-way --debconf-ok --sum-file /usr/share/x.md5sum -s /usr/share /usr/share/x.conf /etc/x.conf\n\
         ucfr --force p /etc/x.conf\n\
         ucf -n /usr/share/x.conf /etc/x.conf\n\
         ucf --state-dir /tmp/ucf /usr/share/x.conf /etc/x.conf\n\
         ucf x.conf /etc/x.conf\n\
         ucfr p\n",
    );
    assert_eq!(
        actions(&steps)[..2],
        [
            &Action::Ucf(Ucf {
                new: "/usr/share/x.conf".into(),
                dest: "/etc/x.conf".into(),
                three_way: true,
                unapplied: Vec::new(),
                mode: None,
                content: None,
            }),
            &Action::Ucfr {
                package: "p".into(),
                dest: "/etc/x.conf".into(),
            },
        ]
    );
    let lines: Vec<usize> = skipped(&steps).iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [5, 6, 7, 8]);
}

#[test]
fn ucf_from_a_temporary_copy_installs_the_copied_file() {
    // As openssh-server's postinst writes sshd_config: a copy edited only
    // on debconf answers other than the defaults.
    let script = "#!/bin/sh\nset -e\n. /usr/share/debconf/confmodule\n\
         db_get p/question\nanswer=\"$RET\"\n\
         new=\"$(mktemp)\"\n\
         cp -aZ /usr/share/p/p.conf \"$new\"\n\
         if [ \"$answer\" != true ]; then\n\
         sed -i 's/^#A/A/' \"$new\"\nfi\n\
         ucf --three-way \"$new\" /etc/p.conf\n\
         rm -f \"$new\"\n";
    let steps = run(script);
    assert!(actions(&steps).contains(&&Action::Ucf(Ucf {
        new: "/usr/share/p/p.conf".into(),
        dest: "/etc/p.conf".into(),
        three_way: true,
        unapplied: vec![9],
        mode: None,
        content: None,
    })));
    assert_eq!(
        skipped(&steps),
        [(9, "sed -i s/^#A/A/ /tmp/tmp.stele-mktemp".to_string())]
    );
    // An edit that surely runs makes the copy's content unknown.
    let steps = run(
        "#!/bin/sh\nt=$(mktemp)\ncp /usr/share/p/p.conf $t\nsed -i s/a/b/ $t\nucf $t /etc/p.conf\n",
    );
    let s: Vec<usize> = skipped(&steps).iter().map(|(l, _)| *l).collect();
    assert_eq!(s, [4, 5]);
    assert!(!actions(&steps).iter().any(|a| matches!(a, Action::Ucf(_))));
}

#[test]
fn php_modules_are_enabled_through_php_invoke_and_phpenmod() {
    let steps = run_with(
        "php8.2-common",
        "#!/bin/sh\nset -e\nif [ -e /usr/lib/php/php-maintscript-helper ]; then\n\
         . /usr/lib/php/php-maintscript-helper\n\
         for m in ctype exif; do\nphp_invoke enmod 8.2 ALL $m\ndone\nfi\n\
         php_invoke enmod 8.2 cli ffi\nphp_invoke dismod 8.2 ALL ffi\n\
         phpenmod -v 8.1 -s fpm -m a b\nphp_invoke enmod 8.2 ALL ../x\n",
        &["/usr/lib/php/php-maintscript-helper"],
    );
    let php = |version: &str, sapi: &str, module: &str, register: bool, maint: bool| {
        Action::PhpEnmod(PhpEnmod {
            version: version.into(),
            sapi: sapi.into(),
            module: module.into(),
            maint,
            register,
        })
    };
    assert_eq!(
        actions(&steps),
        [
            &php("8.2", "ALL", "ctype", true, true),
            &php("8.2", "ALL", "exif", true, true),
            &php("8.2", "cli", "ffi", false, true),
            &Action::NotNeeded {
                command: "php_invoke dismod 8.2 ALL ffi".into(),
                why: "disables PHP modules: nothing to do on a first install",
            },
            &php("8.1", "fpm", "a", false, true),
            &php("8.1", "fpm", "b", false, true),
            &Action::Skipped {
                command: "php_invoke enmod 8.2 ALL ../x".into(),
                why: "refused: `../x` is not a PHP module name".into(),
            },
        ]
    );
}

#[test]
fn statoverride_modes_may_have_a_leading_zero() {
    // php-common's postinst.
    let steps = run(
        "#!/bin/sh\nset -e\nif ! dpkg-statoverride --list /var/lib/php/sessions >/dev/null; then\n\
         dpkg-statoverride --update --quiet --add root root 01733 /var/lib/php/sessions\nfi\n\
         dpkg-statoverride --add root root 017333 /x\n",
    );
    assert_eq!(
        actions(&steps)[0],
        &Action::File(
            FileOp::StatOverride {
                owner: "root".into(),
                group: "root".into(),
                mode: 0o1733,
                path: "/var/lib/php/sessions".into(),
                update: true,
            },
            0o022
        )
    );
    assert_eq!(
        skipped(&steps).iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        [6]
    );
}

#[test]
fn debconf_answers_are_the_templates_defaults() {
    let templates = "Template: p/ssl\nType: boolean\nDefault: true\nDescription: use SSL?\n\nTemplate: p/name\nType: string\nDescription: a name\n";
    assert_eq!(
        template_default(templates, "p/ssl").as_deref(),
        Some("true")
    );
    assert_eq!(template_default(templates, "p/name").as_deref(), Some(""));
    assert_eq!(template_default(templates, "q/other"), None);
    let script = "#!/bin/sh\nset -e\n. /usr/share/debconf/confmodule\n\
         db_get p/ssl\ncase $RET in\n  true) SSL=on ;;\n  *) SSL=off ;;\nesac\n\
         mkdir /etc/p-$SSL\ndb_get q/other\nmkdir /etc/q-$RET\n";
    let ctx = Context {
        templates: Some(templates),
        ..nothing_known()
    };
    let steps = read(&ctx, script, &["configure"]);
    assert!(steps.iter().any(|s| matches!(&s.action, Action::File(FileOp::MakeDir { path, .. }, _) if path == "/etc/p-on")), "{steps:?}");
    // Another package's question: its answer is not known here.
    assert!(
        skipped(&steps)
            .iter()
            .any(|(l, c)| *l == 11 && c.contains("${RET}")),
        "{steps:?}"
    );
}

#[test]
fn su_tests_of_ownership_are_answered_from_the_tree() {
    let script = "#!/bin/sh\nset -e\nadduser --system --home /var/lib/db --no-create-home --group db\n\
         mkdir -p /var/lib/db\n\
         su -s /bin/sh db -c \"test -O /var/lib/db &&\n  test -G /var/lib/db\" || \\\n  chown db:db /var/lib/db\n\
         su -s /bin/sh db -c 'test -O /srv/db' || chown db:db /srv/db\n";
    let owner = |p: &str| match p {
        "/var/lib/db" => Some((0, 0)),
        "/srv/db" => Some((101, 101)),
        _ => None,
    };
    let ctx = Context {
        owner: &owner,
        ..nothing_known()
    };
    let steps = read(&ctx, script, &["configure"]);
    let chowns: Vec<(usize, bool)> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::File(FileOp::Chown { path, .. }, _) => Some((s.line, path == "/var/lib/db")),
            Action::Skipped { command, .. } if command.contains("chown") => Some((s.line, false)),
            _ => None,
        })
        .collect();
    // The root-owned home is chowned; the other is not decided.
    assert_eq!(chowns, [(7, true), (8, false)], "{steps:?}");
}

/// libwrap0's here-documents, libnss-systemd's edits and marker, a
/// runit service link, systemd's own `systemctl enable` and tmpfiles,
/// and dh_installsystemd's socket snippet on a first install.
#[test]
fn writes_edits_services_and_tmpfiles_as_a_first_install_runs_them() {
    let script = "#!/bin/sh -e\n\
        if [ ! -e /etc/hosts.allow ]; then\ncat > /etc/hosts.allow <<EOF\n# $DPKG_MAINTSCRIPT_PACKAGE\n\nEOF\nfi\n\
        echo one two >> /etc/log.conf\n\
        echo warning > /dev/stderr\n\
        echo -e 'a\\n' > /etc/x\n\
        sed -E -i /etc/nsswitch.conf -e '/^passwd:/ s/$/ systemd/'\n\
        sed -i /etc/other.conf -e '1d'\n\
        rm /etc/marker\n\
        NAME='ssh' ENABLE='yes' /lib/runit-helper/runit-helper postinst \"$@\"\n\
        systemctl ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} enable getty@tty1.service || true\n\
        systemctl try-restart x.service\n\
        if deb-systemd-helper debian-installed 'ssh.socket'; then\n\
        deb-systemd-helper enable 'ssh.socket'\nfi\n\
        deb-systemd-helper update-state 'ssh.socket' >/dev/null || true\n\
        if [ -x \"$(command -v systemd-tmpfiles)\" ]; then\n\
        systemd-tmpfiles --create debian.conf >/dev/null || true\nfi\n\
        if [ -x \"$(command -v absent-tool)\" ]; then\nabsent-tool\nfi\n";
    let steps = run_with("libwrap0", script, &["/bin/systemd-tmpfiles"]);
    let file = |op: FileOp| Action::File(op, 0o022);
    let mut want = vec![
        file(FileOp::Write {
            path: "/etc/hosts.allow".into(),
            text: "# libwrap0\n\n".into(),
            append: false,
        }),
        file(FileOp::Write {
            path: "/etc/log.conf".into(),
            text: "one two\n".into(),
            append: true,
        }),
    ];
    let edits: Vec<&Action> = actions(&steps)
        .into_iter()
        .filter(|a| matches!(a, Action::File(FileOp::Edit { .. }, _)))
        .collect();
    assert_eq!(edits.len(), 1, "one sed followed: {steps:?}");
    want.extend([
        file(FileOp::Remove {
            path: "/etc/marker".into(),
            force: false,
        }),
        file(FileOp::Symlink {
            target: "/etc/sv/ssh".into(),
            link: "/etc/runit/runsvdir/default/ssh".into(),
            force: true,
        }),
        Action::Service(Service::SystemctlEnable("getty@tty1.service".into())),
        Action::Service(Service::UpdateState("ssh.socket".into())),
        Action::Tmpfiles {
            files: vec!["debian.conf".into()],
        },
    ]);
    let followed: Vec<&Action> = actions(&steps)
        .into_iter()
        .filter(|a| {
            !matches!(
                a,
                Action::Skipped { .. }
                    | Action::NotNeeded { .. }
                    | Action::File(FileOp::Edit { .. }, _)
            )
        })
        .collect();
    assert_eq!(followed, want.iter().collect::<Vec<_>>());
    // `echo -e` and a sed command other than `s` are refused with why;
    // nothing else is skipped (the missing tool's branch is not taken).
    let skipped: Vec<usize> = skipped(&steps).iter().map(|(l, _)| *l).collect();
    assert_eq!(skipped, [10, 12], "{steps:?}");
}

/// exim4-config's aliases: two `echo`s, a loop's output appended, then
/// `mv`: none of it is made, so no half-made file is left.
#[test]
fn a_file_finished_by_commands_the_reader_does_not_follow_is_not_made() {
    let steps = run("#!/bin/sh\necho '# /etc/aliases' > /etc/aliases.tmp\n\
         for i in a b; do\necho \"$i: root\"\ndone >> /etc/aliases.tmp\n\
         mv /etc/aliases.tmp /etc/aliases\necho kept > /etc/other\n");
    assert!(
        !actions(&steps)
            .iter()
            .any(|a| matches!(a, Action::File(FileOp::Write { path, .. }, _) if path == "/etc/aliases.tmp")),
        "{steps:?}"
    );
    assert_eq!(
        skipped(&steps),
        [
            (2, "write /etc/aliases.tmp".to_string()),
            (3, ">>/etc/aliases.tmp".to_string()),
            (6, "mv /etc/aliases.tmp /etc/aliases".to_string()),
        ]
    );
    assert!(actions(&steps).contains(&&Action::File(
        FileOp::Write {
            path: "/etc/other".into(),
            text: "kept\n".into(),
            append: false
        },
        0o022
    )));
}

#[test]
fn ucf_installs_what_the_script_wrote_into_its_temporary_file() {
    // sysstat's manage_default_file and postgresql-common's
    // setup_createclusterconf, as a first install runs them.
    let templates = "Template: p/enable\nType: boolean\nDefault: false\n\nTemplate: p/ssl\nType: boolean\nDefault: true\n";
    let script = "#!/bin/sh\nset -e\n\
         db_get p/enable\nENABLED=\"$RET\"\n\
         def_file=`mktemp -t sstatXXXXXXXXX.def`\n\
         cat > \"$def_file\" << EOF\nENABLED=\"$ENABLED\"\nEOF\n\
         ucf --three-way --debconf-ok \"$def_file\" /etc/default/p\n\
         [ -e /etc/default/p ] && chmod 644 /etc/default/p\n\
         rm -f \"$def_file\"\n\
         db_get p/ssl\ncase $RET in true) SSL=on ;; *) SSL=off ;; esac\n\
         CCTMP=`mktemp --tmpdir p.XXXXXX`\n\
         sed -e \"s/^ssl =.*/ssl = $SSL/\" /usr/share/p/cc.conf > $CCTMP\n\
         chmod 644 $CCTMP\n\
         ucf --debconf-ok $CCTMP /etc/p/cc.conf\n";
    let read =
        |p: &str| (p == "/usr/share/p/cc.conf").then(|| String::from("port = 1\nssl = maybe\n"));
    let ctx = Context {
        templates: Some(templates),
        read: &read,
        ..nothing_known()
    };
    let steps = read_script(&ctx, script);
    let ucfs: Vec<(String, Option<String>, Option<u32>)> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Ucf(u) => Some((
                u.dest.clone(),
                u.content
                    .as_ref()
                    .map(|c| String::from_utf8_lossy(c).into_owned()),
                u.mode,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        ucfs,
        [
            (
                "/etc/default/p".to_string(),
                Some("ENABLED=\"false\"\n".to_string()),
                Some(0o600)
            ),
            (
                "/etc/p/cc.conf".to_string(),
                Some("port = 1\nssl = on\n".to_string()),
                Some(0o644)
            ),
        ],
        "{steps:?}"
    );
    // The file ucf installed exists for the rest of the script.
    assert!(
        steps
            .iter()
            .any(|s| s.line == 10 && matches!(&s.action, Action::File(FileOp::Chmod { .. }, _))),
        "{steps:?}"
    );
}

fn read_script(ctx: &Context, script: &str) -> Vec<Step> {
    read(ctx, script, &["configure"])
}
