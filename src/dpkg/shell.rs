//! A reader of POSIX sh that never runs anything. It follows the small part
//! of the language that Debian's generated and hand-written maintainer
//! scripts mostly use (literal commands, variables and their `${…:-…}`
//! forms, `for` over word lists, `case`, `if` on tests it can decide,
//! functions the script defines, `&&`/`||`, `shift`, `exit`), and tells
//! its `Host` about every other simple command, with its words expanded.
//! What it cannot follow (a command substitution whose output it is not
//! told, a loop over globs or command output, a condition on the running
//! system) it says, with the line, and never guesses.
//!
//! `lex` turns text into tokens, `parse` tokens into commands, `eval`
//! walks the commands within the limits it names (`eval::MAX_SCRIPT`,
//! `MAX_STEPS`, `MAX_DEPTH`). The reader knows nothing of dpkg: the
//! script's arguments and environment and the path `command -v` searches
//! are given to it, and the host decides what a command means, what a
//! command substitution prints and what a file test finds.
//!
//! Variables never assigned are empty when their name is lowercase, as in
//! sh; uppercase ones are the environment, which the reader does not know
//! beyond what it is given.

mod eval;
mod lex;
mod parse;

pub(crate) use eval::MAX_SCRIPT;

/// What a file test finds at an absolute path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    File { executable: bool },
    Dir,
    Symlink,
}

/// A command's exit status, which is also a condition's outcome, as far
/// as the reader can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    True,
    False,
    /// Depends on something the reader does not know.
    Unknown,
}

impl Status {
    pub(crate) fn of(b: bool) -> Status {
        if b {
            Status::True
        } else {
            Status::False
        }
    }

    fn not(self) -> Status {
        match self {
            Status::True => Status::False,
            Status::False => Status::True,
            Status::Unknown => Status::Unknown,
        }
    }
}

/// A simple command as it would run.
pub(crate) struct Simple<'a> {
    /// The command name and its arguments, expanded.
    pub argv: &'a [&'a str],
    /// The words as the script writes them (each expansion as `${NAME}`).
    pub written: &'a str,
    /// Its redirections that write a file, in order (not those to
    /// `/dev/null` or another descriptor, nor input).
    pub writes: &'a [FileWrite],
    /// Whether it reads a here-document.
    pub heredoc: bool,
    /// That here-document's body as sh hands it to the command, when the
    /// reader can expand it.
    pub body: Option<&'a str>,
    /// The `NAME=value` words before it: its own environment (None for a
    /// value the reader cannot expand).
    pub env: &'a [(String, Option<String>)],
}

/// A redirection that writes a file: `>`, `>>`, `2>` and kin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileWrite {
    pub op: String,
    /// The file, when its name can be expanded.
    pub path: Option<String>,
}

/// Where the reader is when it meets a command.
pub(crate) struct Site<'a> {
    pub line: usize,
    /// Why the command may not run at all, when it runs only under a
    /// condition (or after a command) the reader cannot decide.
    pub doubt: Option<&'a str>,
    /// Inside an `if`'s condition: what runs there is asked, not done.
    pub probe: bool,
    /// The file mode creation mask in force (`umask`; 022 at the start).
    pub umask: u32,
}

/// Whoever knows what the commands a script runs mean.
pub(crate) trait Host {
    /// A simple command the reader does not implement itself, and what it
    /// returns.
    fn command(&mut self, cmd: &Simple, at: &Site) -> Status;
    /// A command the reader cannot follow, as the script writes it.
    fn unfollowed(&mut self, written: &str, why: &str, at: &Site);
    /// What the command substitution `$(text)` prints, when that is known.
    fn output(&self, text: &str) -> Option<String>;
    /// What is at the absolute `path`, for `[ -e … ]` and kin.
    fn file(&self, path: &str) -> Option<Found>;
    /// A shell variable the last command told of set, as debconf's
    /// `db_get` sets `RET` (None: to a value the reader cannot know);
    /// taken once.
    fn assigned(&mut self) -> Option<(String, Option<String>)> {
        None
    }
}

/// How a script is started.
pub(crate) struct Invocation<'a> {
    /// `$1`, `$2`, …
    pub args: &'a [&'a str],
    /// The variables set before it starts.
    pub env: &'a [(&'a str, &'a str)],
    /// The directories `command -v NAME` and `which NAME` search, in order.
    pub path: &'a [&'a str],
}

/// Why a script is not read at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// It is larger than `MAX_SCRIPT` bytes.
    TooLarge,
    /// Text the lexer or the parser does not follow, at `line`.
    Syntax { line: usize, why: String },
}

/// A line and what the reader does not follow there.
type Syntax = (usize, String);

/// Reads `text` as it would run when started as `run` says, telling `host`
/// what it meets. Nothing is told when the script cannot be read at all.
pub(crate) fn read(text: &str, run: &Invocation, host: &mut dyn Host) -> Result<(), Unreadable> {
    if text.len() > MAX_SCRIPT {
        return Err(Unreadable::TooLarge);
    }
    let syntax = |(line, why): Syntax| Unreadable::Syntax { line, why };
    let tokens = lex::lex(text).map_err(syntax)?;
    let list = parse::parse(&tokens).map_err(syntax)?;
    eval::eval(&list, run, host);
    Ok(())
}

#[cfg(test)]
mod tests;
