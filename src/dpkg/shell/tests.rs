//! The reader on its own, with a host that knows no command: what it tells
//! the host, and what it decides itself.

use super::eval::{MAX_DEPTH, MAX_STEPS};
use super::*;

/// What the host was told, one line each.
#[derive(Default)]
struct Log {
    told: Vec<String>,
    files: Vec<(&'static str, Found)>,
    /// `$(text)` → output.
    outputs: Vec<(&'static str, &'static str)>,
    /// The status every command returns.
    status: Option<Status>,
}

impl Host for Log {
    fn command(&mut self, cmd: &Simple, at: &Site) -> Status {
        let mut line = format!("{}: {}", at.line, cmd.argv.join("|"));
        for w in cmd.writes {
            line.push_str(&format!(" {}{}", w.op, w.path.as_deref().unwrap_or("?")));
        }
        if cmd.heredoc {
            line.push_str(" <<");
            if let Some(body) = cmd.body {
                line.push_str(&format!("{body:?}"));
            }
        }
        for (k, v) in cmd.env {
            line.push_str(&format!(" [{k}={}]", v.as_deref().unwrap_or("?")));
        }
        if at.probe {
            line.push_str(" (probe)");
        }
        if let Some(why) = at.doubt {
            line.push_str(&format!(" (doubt: {why})"));
        }
        self.told.push(line);
        self.status.unwrap_or(Status::True)
    }

    fn unfollowed(&mut self, written: &str, why: &str, at: &Site) {
        self.told
            .push(format!("{}: unfollowed `{written}`: {why}", at.line));
    }

    fn output(&self, text: &str) -> Option<String> {
        self.outputs
            .iter()
            .find(|(t, _)| *t == text)
            .map(|(_, o)| o.to_string())
    }

    fn file(&self, path: &str) -> Option<Found> {
        self.files.iter().find(|(p, _)| *p == path).map(|(_, f)| *f)
    }
}

fn read_with(log: &mut Log, text: &str, args: &[&str]) -> Result<(), Unreadable> {
    let run = Invocation {
        args,
        env: &[("GIVEN", "from the environment")],
        path: &["/usr/bin", "/bin"],
    };
    read(text, &run, log)
}

fn told(text: &str) -> Vec<String> {
    let mut log = Log::default();
    read_with(&mut log, text, &["configure", ""]).unwrap();
    log.told
}

#[test]
fn words_are_expanded_as_sh_expands_them() {
    let text = r#"
name=tool
two="a b"
run $name-$1 "$GIVEN" ${unset:-fallback} ${name:+set} $two "$two" "$@"
run ${UNKNOWN:-x}
run "$(uname -s)" `uname`
"#;
    assert_eq!(
        told(text),
        [
            "4: run|tool-configure|from the environment|fallback|set|a|b|a b|configure|",
            "5: unfollowed `run ${UNKNOWN}`: its words cannot be expanded without running something",
            "6: unfollowed `run $(uname -s) $(uname)`: its words cannot be expanded without running something",
        ]
    );
    let mut log = Log {
        outputs: vec![("uname -s", "Linux"), ("uname", "Linux")],
        ..Log::default()
    };
    read_with(&mut log, "run \"$(uname -s)\" `uname`\n", &[]).unwrap();
    assert_eq!(log.told, ["1: run|Linux|Linux"]);
}

#[test]
fn prefixes_and_suffixes_are_removed_as_sh_removes_them() {
    let text = r#"
pkg=postgresql-15
file=archive.tar.gz
run ${pkg##*-} ${pkg#*-} ${file%.*} ${file%%.*} ${file#x} "${#pkg}"
"#;
    assert_eq!(
        told(text),
        ["4: run|15|15|archive.tar|archive|archive.tar.gz|13"]
    );
}

#[test]
fn command_substitutions_of_functions_loops_and_echo_are_followed() {
    // xz-utils' postinst builds its slaves this way.
    let text = r#"
slave () {
	dir=$1 filename=$2 target=$3
	echo "--slave $dir/$filename $filename $dir/$target"
}
run --install /usr/bin/lzma lzma /usr/bin/xz 20 $(
	slave /usr/share/man/man1 lzma.1.gz xz.1.gz
	for util in cat more
	do
		slave /usr/bin lz$util xz$util
	done
)
run "$(echo -n a; echo b)" x$(true)y
run $(echo a | tr a b)
run $(printf a)
run $(ls /)
"#;
    assert_eq!(
        told(text),
        [
            "6: run|--install|/usr/bin/lzma|lzma|/usr/bin/xz|20|--slave|/usr/share/man/man1/lzma.1.gz|lzma.1.gz|/usr/share/man/man1/xz.1.gz|--slave|/usr/bin/lzcat|lzcat|/usr/bin/xzcat|--slave|/usr/bin/lzmore|lzmore|/usr/bin/xzmore",
            "13: run|ab|xy",
            "14: unfollowed `run $(echo a | tr a b)`: its words cannot be expanded without running something",
            "15: unfollowed `run $(printf a)`: its words cannot be expanded without running something",
            "16: unfollowed `run $(ls /)`: its words cannot be expanded without running something",
        ]
    );
}

#[test]
fn grep_of_what_prints_nothing_finds_nothing() {
    let mut log = Log {
        outputs: vec![("update-alternatives --display sar", "")],
        ..Log::default()
    };
    let text = r#"if ! update-alternatives --display sar 2>/dev/null | grep -q '^/usr/bin/sar'; then
    install sar
fi
if update-alternatives --display sar | grep -q x /etc/file; then
    install other
fi
"#;
    read_with(&mut log, text, &[]).unwrap();
    assert_eq!(log.told[0], "2: install|sar");
    // A grep of a file is the host's to answer.
    assert!(
        log.told
            .contains(&String::from("4: grep|-q|x|/etc/file (probe)")),
        "{:?}",
        log.told
    );
    let mut ids = Log {
        outputs: vec![("id -Gn postgres", "postgres ssl-certs")],
        ..Log::default()
    };
    let text = "id -Gn postgres | grep -qw ssl-cert && add one\nid -Gn postgres | grep -q ssl-cert && add two\nid -Gn postgres | grep -q 'ssl.cert' && add three\n";
    read_with(&mut ids, text, &[]).unwrap();
    assert_eq!(ids.told[0], "2: add|two");
    assert!(
        ids.told[1].starts_with("3: id|-Gn|postgres"),
        "{:?}",
        ids.told
    );
}

#[test]
fn loops_cases_functions_and_shift() {
    let text = r#"
greet() {
    hello "$1"
    shift
    hello "$1"
    return 0
    never
}
for w in one two; do greet $w last; done
case "$1" in
    conf*) matched ;;
    *) other ;;
esac
case "x$1" in
    x) empty ;;
    x?*) glob ;;
esac
"#;
    assert_eq!(
        told(text),
        [
            "3: hello|one",
            "5: hello|last",
            "3: hello|two",
            "5: hello|last",
            "11: matched",
            "16: glob",
        ]
    );
}

#[test]
fn conditions_it_can_decide_and_those_it_cannot() {
    let mut log = Log {
        files: vec![
            ("/usr/bin/tool", Found::File { executable: true }),
            ("/etc/conf", Found::Dir),
        ],
        status: Some(Status::Unknown),
        ..Log::default()
    };
    let text = r#"
if [ -x /usr/bin/tool ] && [ ! -d /missing ]; then yes1; else no1; fi
if command -v tool >/dev/null; then yes2; fi
if which absent; then no2; fi
if [ -f /etc/conf ]; then no3; elif test -d /etc/conf; then yes3; fi
if probe arg; then maybe; else otherwise; fi
probe2 && after
while true; do looped; done
exit 0
never
"#;
    read_with(&mut log, text, &[]).unwrap();
    assert_eq!(
        log.told,
        [
            "2: yes1",
            "3: yes2",
            "5: yes3",
            "6: probe|arg (probe)",
            "6: maybe (doubt: under a condition on line 6 the reader cannot decide)",
            "6: otherwise (doubt: under a condition on line 6 the reader cannot decide)",
            "7: probe2",
            "7: after (doubt: runs only if a command the reader cannot follow succeeds or fails)",
            "8: looped (doubt: in a `while`/`until` loop (line 8), which the reader does not follow)",
        ]
    );
}

#[test]
fn file_writes_and_here_documents_go_to_the_host_whatever_the_command() {
    let text = "echo hi > /etc/motd\nf() { :; }\nf >>\"$dir/log\" 2>&1\ncat <<EOF\nbody $(never)\nEOF\nquiet >/dev/null 2>&1 </etc/input\n";
    assert_eq!(
        told(text),
        [
            "1: echo|hi >/etc/motd",
            "3: f >>/log",
            "4: cat <<",
            "7: quiet",
        ]
    );
}

/// Bodies as sh hands them over: expanded and unescaped when the
/// delimiter is unquoted, literal when any of it is quoted, tabs taken
/// off for `<<-` (all of them); several on one line in order; an expansion the reader
/// cannot make leaves the body unknown, not guessed.
#[test]
fn here_document_bodies_are_kept_as_sh_expands_them() {
    let text = "name=web\ncat > /etc/a <<EOF\nhost $name \\$HOME \\\\ \"q\" ${name:-x}\nline \\\ncontinued\nEOF\n\
                cat > /etc/b <<'EOF'\nkept $name \\$x\nEOF\n\
                \tcat <<-END >> /etc/c\n\tone\n\t\ttwo\n\tEND\n\
                cat <<A; cat <<B\na\nA\nb\nB\n\
                cat > /etc/d <<EOF\n$(hostname)\nEOF\n\
                NAME='ssh' ENABLE=yes helper postinst\n";
    assert_eq!(
        told(text),
        [
            "2: cat >/etc/a <<\"host web $HOME \\\\ \\\"q\\\" web\\nline continued\\n\"",
            "7: cat >/etc/b <<\"kept $name \\\\$x\\n\"",
            "10: cat >>/etc/c <<\"one\\ntwo\\n\"",
            "14: cat <<\"a\\n\"",
            "14: cat <<\"b\\n\"",
            "19: cat >/etc/d <<",
            "22: helper|postinst [NAME=ssh] [ENABLE=yes]",
        ]
    );
}

#[test]
fn what_cannot_be_read_at_all() {
    let mut log = Log::default();
    assert_eq!(
        read_with(&mut log, &"#".repeat(MAX_SCRIPT + 1), &[]),
        Err(Unreadable::TooLarge)
    );
    let unreadable = |text: &str| match read_with(&mut Log::default(), text, &[]) {
        Err(Unreadable::Syntax { line, why }) => (line, why),
        other => panic!("{other:?}"),
    };
    assert_eq!(unreadable("run 'open\n"), (1, "an unterminated '".into()));
    assert_eq!(unreadable("ok\nfi\n").0, 2);
    assert_eq!(
        unreadable("cat <<END\nnever ends\n"),
        (3, "here-document `END` never ends".into())
    );
    let deep = format!(
        "{}true{}",
        "if true; then ".repeat(MAX_DEPTH + 1),
        "; fi".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(unreadable(&deep).1, "commands nested too deeply");
    assert!(log.told.is_empty());
}

#[test]
fn work_is_bounded() {
    // Every command the walk evaluates counts, so a runaway loop stops
    // after MAX_STEPS of them, having told the host fewer.
    let ten = "1 2 3 4 5 6 7 8 9 10";
    let text = format!(
        "for a in {ten}; do for b in {ten}; do for c in {ten}; do for d in {ten}; do for e in {ten}; do run; done; done; done; done; done\n"
    );
    let log = told(&text);
    assert!(
        log.len() < MAX_STEPS && log.len() > MAX_STEPS / 3,
        "{}",
        log.len()
    );
    // The limit is named where it was hit.
    let last = log.last().unwrap();
    assert!(
        last.contains("the reader stops after 100000 commands"),
        "{last}"
    );
    // Recursion stops at MAX_DEPTH calls, and says so.
    let log = told("f() { run; f; }\nf\n");
    assert_eq!(log.len(), MAX_DEPTH + 1);
    assert!(
        log[MAX_DEPTH].contains("more than 32 deep"),
        "{}",
        log[MAX_DEPTH]
    );
}

/// What a hostile package's script does to a reader without bounds: each
/// is cut off at its limit, named, in bounded time and memory.
#[test]
fn expansions_nesting_and_patterns_are_bounded() {
    // `${…}` nested 100,000 deep is refused as a whole, not recursed into.
    let deep = format!("echo {}x{}\n", "${a:-".repeat(100_000), "}".repeat(100_000));
    let mut log = Log::default();
    match read_with(&mut log, &deep, &[]) {
        Err(Unreadable::Syntax { why, .. }) => {
            assert!(why.contains("nested more than 32"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // A variable doubled 40 times stops being known at 64 KiB.
    let mut text = String::from("a=xxxxxxxx\n");
    for _ in 0..40 {
        text.push_str("a=$a$a\n");
    }
    text.push_str("run $a\n");
    let log = told(&text);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("unfollowed `run ${a}`"), "{}", log[0]);
    let mut text = String::from("a=xxxxxxxx\n");
    for _ in 0..12 {
        text.push_str("a=$a$a\n");
    }
    text.push_str("run $a$a$a$a$a$a$a$a$a\n");
    let log = told(&text);
    assert!(
        log[0].contains("more than the reader's limit of 64 KiB"),
        "{}",
        log[0]
    );
    // A pattern that makes a recursive matcher backtrack for minutes.
    let pattern = "*a".repeat(40);
    let text = format!(
        "x={}\ncase \"$x\" in\n{pattern}b) run one ;;\n*) run other ;;\nesac\n",
        "a".repeat(200)
    );
    assert_eq!(told(&text), ["4: run|other"]);
}

/// The output of a loop, a group or an `if` into a file is a write the
/// reader does not follow, named with its file; into /dev/null or
/// another descriptor it is nothing.
#[test]
fn compound_commands_writing_files_are_unfollowed() {
    let text = "for i in a b; do\necho $i\ndone >> /etc/list\n{ echo x; } > \"$dir/y\" 2>&1\nif true; then :; fi >/dev/null\n";
    assert_eq!(
        told(text),
        [
            "1: unfollowed `>>/etc/list`: writes the output of a compound command into a file",
            "4: unfollowed `>/y`: writes the output of a compound command into a file",
        ]
    );
}
