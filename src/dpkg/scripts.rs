//! What maintainer scripts would do, read and never run: each preinst and
//! postinst is read by the `shell` reader as dpkg runs it on a first
//! install (preinst with `install`, postinst with `configure` and no old
//! version, the `DPKG_*` variables dpkg sets), and every command it meets
//! is given its meaning for an image here: an effect to make (an
//! alternative, an account, a sysusers.d file to apply), a file stele
//! generates itself, something an image does not need, or something
//! skipped, with why. `commands` knows dpkg's and Debian's commands;
//! `adduser` and `update_alternatives` read their arguments.
//!
//! What the reader is told of the system: `getent passwd|group NAME` is
//! false (a package's own accounts do not exist before its first
//! configure), `which`/`command -v` and file tests (`[ -e PATH ]`, `-f`,
//! `-d`, `-x`, `-L`) ask the installed tree, `dpkg --print-architecture`
//! prints the image's architecture and `uname` prints `Linux`. An effect
//! found where the reader cannot tell whether it runs is reported as
//! skipped, with the reason.

mod adduser;
mod commands;
mod files;
mod postgresql;
pub(crate) mod sed;
mod ucf;
mod update_alternatives;

pub(crate) use files::{FileOp, Mode};
pub(crate) use ucf::Ucf;

use super::shell::{self, Found, Host, Invocation, Simple, Site, Status, Unreadable};

/// What the reader is told about the system the script would run on.
pub(crate) struct Context<'a> {
    pub package: &'a str,
    /// The package's architecture (`DPKG_MAINTSCRIPT_ARCH`).
    pub arch: &'a str,
    /// `dpkg --print-architecture`, when known.
    pub native_arch: Option<&'a str>,
    pub lookup: &'a dyn Fn(&str) -> Option<Found>,
    /// The names in the folder at an absolute path, sorted, when it is one.
    pub list: &'a dyn Fn(&str) -> Option<Vec<String>>,
    /// The absolute paths an installed package holds, as `dpkg -L`
    /// lists them (sorted); None when no such package is installed.
    pub files: &'a dyn Fn(&str) -> Option<Vec<String>>,
    /// Whether an earlier package registered the alternative `name`.
    pub alternative: &'a dyn Fn(&str) -> bool,
    /// An account made before this script: for `("passwd", USER)` the
    /// user's groups (primary first), for `("group", GROUP)` none; None
    /// when there is no such account.
    pub account: &'a dyn Fn(&str, &str) -> Option<Vec<String>>,
    /// The package's debconf templates (its `templates` control member).
    pub templates: Option<&'a str>,
    /// The owner (uid, gid) of what is at an absolute path.
    pub owner: &'a dyn Fn(&str) -> Option<(u32, u32)>,
    /// The text of the file at an absolute path, when it is one the
    /// reader may read (`grep -q`).
    pub read: &'a dyn Fn(&str) -> Option<String>,
}

/// One thing a script does that is worth reporting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub line: usize,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    AltInstall(AltInstall),
    AltRemove {
        name: String,
        path: String,
    },
    AddUser(AddUser),
    AddGroup {
        name: String,
        gid: Option<u32>,
    },
    /// `adduser USER GROUP`.
    AddMember {
        user: String,
        group: String,
    },
    /// `shadowconfig on`: the shadow files are made from the accounts.
    ShadowOn,
    /// A service enabled as a first install enables it.
    Service(Service),
    /// A plain file command (`mkdir`, `chown`, `ln -s`, …), and the umask
    /// in force where it runs.
    File(FileOp, u32),
    /// `ucf NEW DEST`: a configuration file ucf installs.
    Ucf(Ucf),
    /// `ucfr PACKAGE DEST`: ucf's record of the package that owns DEST.
    Ucfr {
        package: String,
        dest: String,
    },
    /// `php_invoke enmod VERSION SAPI MODULE` (php-maintscript-helper) or
    /// `phpenmod`: a PHP module enabled.
    PhpEnmod(PhpEnmod),
    /// `systemd-tmpfiles --create FILE…`: tmpfiles.d files (names or
    /// paths) whose lines stele applies to the tree.
    Tmpfiles {
        files: Vec<String>,
    },
    /// `systemd-sysusers FILE`: the package's sysusers.d file, which stele
    /// applies from the tree.
    Sysusers {
        file: String,
    },
    /// A command whose result stele generates itself from the installed
    /// files (`install`'s generated files), whatever the script asks.
    Generated {
        command: String,
        what: &'static str,
    },
    /// A command whose effect an image does not need.
    NotNeeded {
        command: String,
        why: &'static str,
    },
    /// Something the reader recognized (or not) and did not reproduce.
    Skipped {
        command: String,
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// `deb-systemd-helper enable UNIT`: the links its `[Install]` names.
    Enable(String),
    /// `deb-systemd-helper update-state UNIT`: the state of those links,
    /// not the links.
    UpdateState(String),
    /// `systemctl enable UNIT`: the links, without deb-systemd-helper's
    /// state.
    SystemctlEnable(String),
    /// `update-rc.d NAME defaults`: the rc?.d links its LSB header names.
    RcDefaults(String),
}

/// A PHP module enabled as php-common's phpenmod enables it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PhpEnmod {
    /// A PHP version (`8.2`), or `ALL`: every one in /usr/lib/php.
    pub version: String,
    /// A SAPI (`cli`, `fpm`, …), or `ALL`: every one in /usr/lib/php/VERSION/sapi.
    pub sapi: String,
    pub module: String,
    /// `-m`: enabled by a maintainer script (`enabled_by_maint`), not
    /// the administrator (`enabled_by_admin`).
    pub maint: bool,
    /// `-r`: the module is recorded in /var/lib/php/modules/VERSION/registry.
    pub register: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AltInstall {
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    /// (link, name, path) per `--slave`.
    pub slaves: Vec<(String, String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AddUser {
    pub name: String,
    pub uid: Option<u32>,
    pub gecos: String,
    pub home: Option<String>,
    pub shell: Option<String>,
    /// `--group`: a group of the user's name is its primary group.
    pub own_group: bool,
    /// `--ingroup` / `--gid`.
    pub group: Option<String>,
    pub gid: Option<u32>,
    pub create_home: bool,
    /// `--force-badname` / `--allow-bad-names`: upper case and `.` allowed.
    pub bad_names: bool,
}

/// Where `which` and `command -v` look: the directories of the `PATH` dpkg
/// requires for maintainer scripts that packages install into.
const COMMAND_PATH: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Reads `text` as the maintainer script would run with `args`.
pub(crate) fn read(ctx: &Context, text: &str, args: &[&str]) -> Vec<Step> {
    let env = [
        ("DPKG_ROOT", ""),
        ("DPKG_ADMINDIR", "/var/lib/dpkg"),
        ("DPKG_MAINTSCRIPT_PACKAGE", ctx.package),
        ("DPKG_MAINTSCRIPT_ARCH", ctx.arch),
        ("DPKG_RUNNING_VERSION", ""),
        ("DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT", "1"),
    ];
    let run = Invocation {
        args,
        env: &env,
        path: &COMMAND_PATH,
    };
    let mut reader = Reader {
        ctx,
        steps: Vec::new(),
        temp: None,
        sourced: Vec::new(),
        assign: None,
    };
    let (line, why) = match shell::read(text, &run, &mut reader) {
        Ok(()) => return unfinished_writes(reader.steps),
        Err(Unreadable::TooLarge) => (1, format!("larger than {} bytes", shell::MAX_SCRIPT)),
        Err(Unreadable::Syntax { line, why }) => (line, format!("cannot be read: {why}")),
    };
    vec![Step {
        line,
        action: Action::Skipped {
            command: String::from("(the whole script)"),
            why,
        },
    }]
}

/// A file the script writes or edits and later changes with a command the
/// reader does not follow (exim4-config's `/etc/aliases.tmp`, filled by a
/// loop's output and moved with `mv`) would be left half made: its writes
/// are skipped instead, naming that command's line.
fn unfinished_writes(mut steps: Vec<Step>) -> Vec<Step> {
    let names = |command: &str, path: &str| {
        command
            .split_whitespace()
            .any(|w| w.trim_start_matches(['>', '<', '|', '&', '0', '1', '2']) == path)
    };
    for k in 0..steps.len() {
        let path = match &steps[k].action {
            Action::File(FileOp::Write { path, .. } | FileOp::Edit { path, .. }, _) => path,
            _ => continue,
        };
        let later = steps[k + 1..].iter().find(|s| match &s.action {
            Action::Skipped { command, .. } => names(command, path),
            _ => false,
        });
        if let Some(later) = later {
            let why = format!(
                "the file is changed later (line {}) by a command the reader does not follow",
                later.line
            );
            steps[k].action = Action::Skipped {
                command: describe(&steps[k].action),
                why,
            };
        }
    }
    steps
}

/// The shell reader's host: what each command means, recorded as steps.
struct Reader<'a> {
    ctx: &'a Context<'a>,
    steps: Vec<Step>,
    /// What `MKTEMP` holds, once the script has written it.
    temp: Option<Temp>,
    /// The libraries of functions the script sourced that the reader
    /// knows (`postgresql::FUNCTIONS`).
    sourced: Vec<&'static str>,
    /// A variable the last command set (`db_get`'s `RET`).
    assign: Option<(String, Option<String>)>,
}

/// A temporary file as far as the reader follows it.
struct Temp {
    /// The installed file it is a copy of, and whether the copy kept
    /// that file's mode; None once the script changed it in a way the
    /// reader does not follow.
    copy: Option<(String, bool)>,
    /// Lines of edits made only under a condition the reader cannot
    /// decide, which the copy is taken without.
    doubtful: Vec<usize>,
    /// What the script wrote into it (a here-document, a `sed` of an
    /// installed file) and its mode (mktemp's 0600 until a `chmod`).
    written: Option<(Vec<u8>, u32)>,
}

/// What `$(mktemp)` prints to the reader: a file no package ships, which
/// the reader follows only as a copy of another (see `Reader::temps`).
pub(crate) const MKTEMP: &str = "/tmp/tmp.stele-mktemp";

impl Reader<'_> {
    /// Records what a command at `at` does. Where it may not run at all,
    /// an effect is skipped for that reason; what a condition asks is not
    /// an effect, and what it cannot follow only makes the condition
    /// undecided, which the branches report.
    fn record(&mut self, at: &Site, action: Action) {
        let action = match (at.doubt, action) {
            (
                Some(why),
                a @ (Action::AltInstall(_)
                | Action::AltRemove { .. }
                | Action::AddUser(_)
                | Action::AddGroup { .. }
                | Action::AddMember { .. }
                | Action::File(..)
                | Action::ShadowOn
                | Action::Service(_)
                | Action::Ucf(_)
                | Action::PhpEnmod(_)
                | Action::Ucfr { .. }
                | Action::Tmpfiles { .. }
                | Action::Sysusers { .. }),
            ) => Action::Skipped {
                command: describe(&a),
                why: why.to_string(),
            },
            (Some(doubt), Action::Skipped { command, why }) => Action::Skipped {
                command,
                why: format!("{why}; {doubt}"),
            },
            (_, a) => a,
        };
        if at.probe && matches!(action, Action::Skipped { .. }) {
            return;
        }
        let line = at.line;
        if !self
            .steps
            .iter()
            .any(|s| s.line == line && s.action == action)
        {
            self.steps.push(Step { line, action });
        }
    }
}

impl Reader<'_> {
    /// An account as `Context::account` answers, with those this script
    /// made so far (read in order, so earlier lines' accounts exist).
    fn account(&self, kind: &str, name: &str) -> Option<Vec<String>> {
        let mut found = (self.ctx.account)(kind, name);
        for step in &self.steps {
            match (&step.action, kind) {
                (Action::AddUser(u), "passwd") if u.name == name => {
                    let primary = if u.own_group {
                        u.name.clone()
                    } else {
                        u.group.clone().unwrap_or_else(|| String::from("nogroup"))
                    };
                    found = Some(vec![primary]);
                }
                (Action::AddUser(u), "group") if u.own_group && u.name == name => {
                    found = Some(Vec::new());
                }
                (Action::AddGroup { name: g, .. }, "group") if g == name => {
                    found = Some(Vec::new());
                }
                (Action::AddMember { user, group }, "passwd") if user == name => {
                    if let Some(groups) = found.as_mut().filter(|g| !g.contains(group)) {
                        groups.push(group.clone());
                    }
                }
                _ => {}
            }
        }
        found
    }
}

impl Host for Reader<'_> {
    fn command(&mut self, cmd: &Simple, at: &Site) -> Status {
        commands::run(self, cmd, at)
    }

    fn unfollowed(&mut self, written: &str, why: &str, at: &Site) {
        let action = Action::Skipped {
            command: written.to_string(),
            why: why.to_string(),
        };
        self.record(at, action);
    }

    fn output(&self, text: &str) -> Option<String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["dpkg", "--print-architecture"] => self.ctx.native_arch.map(str::to_string),
            // Images stele makes are Linux images.
            ["uname"] | ["uname", "-s"] => Some(String::from("Linux")),
            ["mktemp"] => Some(String::from(MKTEMP)),
            // A temporary file named after a template (`-t`, `--tmpdir`,
            // `sstatXXXXXXXXX.def`): not a folder (`-d`), not a dry run.
            ["mktemp", rest @ ..]
                if rest.iter().all(|a| {
                    matches!(*a, "-t" | "-q" | "--tmpdir")
                        || a.starts_with("--tmpdir=")
                        || !a.starts_with('-') && a.contains("XXX") && is_file_name(a)
                }) =>
            {
                Some(String::from(MKTEMP))
            }
            // A name nothing registered: update-alternatives prints only
            // an error (on stderr).
            ["update-alternatives", "--display" | "--query" | "--list", name]
                if !(self.ctx.alternative)(name) =>
            {
                Some(String::new())
            }
            ["id", "-Gn", user] => self.account("passwd", user).map(|groups| groups.join(" ")),
            // Where a command is, as dh_installtmpfiles' snippets ask
            // (`[ -x "$(command -v systemd-tmpfiles)" ]`): nothing when
            // it is not installed.
            ["command", "-v", name] | ["which", name] if is_file_name(name) => Some(
                COMMAND_PATH
                    .iter()
                    .map(|d| format!("{d}/{name}"))
                    .find(|p| {
                        matches!(
                            (self.ctx.lookup)(p),
                            Some(Found::File { executable: true } | Found::Symlink)
                        )
                    })
                    .unwrap_or_default(),
            ),
            // The modules php-common's helpers registered so far.
            ["phpquery", "-M", "-v", version] if is_file_name(version) => {
                (self.ctx.list)(&format!("/var/lib/php/modules/{version}/registry"))
                    .map(|names| names.join("\n"))
            }
            _ => None,
        }
    }

    fn file(&self, path: &str) -> Option<Found> {
        // A file ucf installed earlier in this script exists from then on
        // (sysstat's `[ -e "$DEFAULT" ] && chmod 644 "$DEFAULT"`).
        let installed = self.steps.iter().any(|s| match &s.action {
            Action::Ucf(u) => u.dest == path,
            _ => false,
        });
        if installed {
            return Some(Found::File { executable: false });
        }
        (self.ctx.lookup)(path)
    }

    fn assigned(&mut self) -> Option<(String, Option<String>)> {
        self.assign.take()
    }
}

/// The default answer of the debconf question `name` in `templates`
/// (`Default:`, the untranslated one; empty when the template has none),
/// or None when the package does not define the question.
pub(crate) fn template_default(templates: &str, name: &str) -> Option<String> {
    for stanza in templates.split("\n\n") {
        let mut found = false;
        let mut default = String::new();
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Template:") {
                found = v.trim() == name;
            } else if let Some(v) = line.strip_prefix("Default:") {
                default = v.trim().to_string();
            }
        }
        if found {
            return Some(default);
        }
    }
    None
}

/// Whether `name` is one file name (a unit, an init script, …): no `/`,
/// blank or control character, not `.` or `..`.
pub(crate) fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
}

/// How a report names an effect.
pub(crate) fn describe(a: &Action) -> String {
    match a {
        Action::AltInstall(i) => format!(
            "update-alternatives --install {} {} {} {}",
            i.link, i.name, i.path, i.priority
        ),
        Action::AltRemove { name, path } => format!("update-alternatives --remove {name} {path}"),
        Action::AddUser(u) => format!("adduser --system {}", u.name),
        Action::AddGroup { name, .. } => format!("addgroup --system {name}"),
        Action::AddMember { user, group } => format!("adduser {user} {group}"),
        Action::Sysusers { file } => format!("systemd-sysusers {file}"),
        Action::Tmpfiles { files } => format!("systemd-tmpfiles --create {}", files.join(" ")),
        Action::Ucf(u) => format!("ucf {} {}", u.new, u.dest),
        Action::Ucfr { package, dest } => format!("ucfr {package} {dest}"),
        Action::PhpEnmod(e) => format!(
            "phpenmod -v {} -s {}{}{} {}",
            e.version,
            e.sapi,
            if e.maint { " -m" } else { "" },
            if e.register { " -r" } else { "" },
            e.module
        ),
        Action::File(op, _) => files::describe(op),
        Action::ShadowOn => String::from("shadowconfig on"),
        Action::Service(Service::Enable(u)) => format!("deb-systemd-helper enable {u}"),
        Action::Service(Service::UpdateState(u)) => {
            format!("deb-systemd-helper update-state {u}")
        }
        Action::Service(Service::SystemctlEnable(u)) => format!("systemctl enable {u}"),
        Action::Service(Service::RcDefaults(n)) => format!("update-rc.d {n} defaults"),
        Action::Generated { command, .. }
        | Action::NotNeeded { command, .. }
        | Action::Skipped { command, .. } => command.clone(),
    }
}

#[cfg(test)]
mod tests;
