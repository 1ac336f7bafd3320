//! Commands to what they would do: the walk over a parsed script, with
//! variables, functions and positional parameters, deciding conditions
//! where it can and telling the host everything else. Its work is bounded
//! by the limits below, whatever the script.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::lex::{is_name_char, Part, Word};
use super::parse::{AndOr, Cmd, List, Pipeline};
use super::{FileWrite, Found, Host, Invocation, Simple, Site, Status};

/// Scripts larger than this are not read at all.
pub(crate) const MAX_SCRIPT: usize = 1 << 20;
/// Commands evaluated per script, so a loop cannot run away.
pub(super) const MAX_STEPS: usize = 100_000;
/// How deep commands nest in the text, and function calls at run time.
pub(super) const MAX_DEPTH: usize = 32;
/// The longest value a word or a variable may expand to; a longer one
/// (`a=$a$a` doubled forty times) is not expanded.
pub(crate) const MAX_VALUE: usize = 64 * 1024;

/// Walks `list` as the script started by `run` would run it.
pub(super) fn eval(list: &List, run: &Invocation, host: &mut dyn Host) {
    let mut ev = Eval {
        host,
        path: run.path,
        vars: run
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect(),
        funcs: BTreeMap::new(),
        pos: run.args.iter().map(|s| s.to_string()).collect(),
        doubt: None,
        probe: false,
        count: 0,
        depth: 0,
        line: 1,
        oversize: Cell::new(false),
        umask: 0o022,
        out: None,
        captured: Rc::new(Cell::new(0)),
    };
    // Whatever stops the walk (`exit`, a limit) leaves what was told so far;
    // a limit is named where it was hit.
    if let Err(Flow::Limit(why)) = ev.list(list) {
        let line = ev.line;
        ev.tell(line, |host, at| {
            host.unfollowed("(the rest of the script)", &why, at)
        });
    }
}

/// Why evaluation stops early.
enum Flow {
    Exit,
    Return,
    /// A limit of the reader was reached: why, naming it.
    Limit(String),
}

struct Eval<'a> {
    host: &'a mut dyn Host,
    /// Where `command -v` and `which` look.
    path: &'a [&'a str],
    /// `None`: assigned where the reader could not follow.
    vars: BTreeMap<String, Option<String>>,
    /// Shared, so a call does not copy the body.
    funcs: BTreeMap<String, Rc<List>>,
    /// The positional parameters, `$1` on.
    pos: Vec<String>,
    /// Set while reading code that runs only under a condition the reader
    /// cannot decide; the host is told, with every command met there.
    doubt: Option<String>,
    /// Set while reading an `if`'s condition.
    probe: bool,
    /// Commands evaluated so far.
    count: usize,
    /// Function calls open.
    depth: usize,
    /// The line of the last command met, for a limit's report.
    line: usize,
    /// Set when an expansion was refused for being longer than `MAX_VALUE`.
    oversize: Cell<bool>,
    /// `umask`, as far as the reader can tell.
    umask: u32,
    /// Inside a command substitution the reader follows itself: what
    /// `echo` prints so far. Anything it cannot follow there ends the
    /// substitution as unknown (`Flow::Limit`).
    out: Option<String>,
    /// Commands evaluated in command substitutions, shared by all of them
    /// so their work is bounded as the script's is.
    captured: Rc<Cell<usize>>,
}

/// The host of a command substitution the reader follows: it answers
/// file tests and known outputs as the script's host does, and any
/// command it would be told of makes the substitution unknown.
struct Capture<'a> {
    outer: &'a dyn Host,
    failed: bool,
}

impl Host for Capture<'_> {
    fn command(&mut self, _: &Simple, _: &Site) -> Status {
        self.failed = true;
        Status::Unknown
    }

    fn unfollowed(&mut self, _: &str, _: &str, _: &Site) {
        self.failed = true;
    }

    fn output(&self, text: &str) -> Option<String> {
        self.outer.output(text)
    }

    fn file(&self, path: &str) -> Option<Found> {
        self.outer.file(path)
    }
}

fn words_text(words: &[Word]) -> String {
    words.iter().map(word_text).collect::<Vec<_>>().join(" ")
}

fn word_text(w: &Word) -> String {
    w.iter()
        .map(|p| match p {
            Part::Lit { text, .. } => text.clone(),
            Part::Param { name, .. } => format!("${{{name}}}"),
            Part::Subst { text, .. } => format!("$({text})"),
        })
        .collect()
}

/// Whether `s` matches the sh pattern `pat` (`*`, `?`, literal rest);
/// `None` when deciding it would cost more than the matcher's bound.
fn glob_match(pat: &[char], s: &[char]) -> Option<bool> {
    crate::dpkg::wildcard::matches(pat, s, '*', '?')
}

impl Eval<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if let Ok(n) = name.parse::<usize>() {
            return Some(if n == 0 {
                String::from("sh")
            } else {
                self.pos.get(n - 1).cloned().unwrap_or_default()
            });
        }
        match name {
            "#" => return Some(self.pos.len().to_string()),
            "?" => return Some(String::from("0")),
            "*" | "@" => return Some(self.pos.join(" ")),
            _ => {}
        }
        match self.vars.get(name) {
            Some(v) => v.clone(),
            None if name.chars().any(|c| c.is_ascii_uppercase()) => None,
            None => Some(String::new()),
        }
    }

    /// The fields a word expands to (`None`: it cannot be expanded).
    /// Unquoted expansions are split on blanks; globs are refused.
    fn expand(&self, word: &Word) -> Option<Vec<String>> {
        let mut fields: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut have = false;
        for part in word {
            match part {
                Part::Lit { text, quoted } => {
                    if !quoted && text.contains(['*', '?', '[']) && text != "[" {
                        return None;
                    }
                    cur.push_str(text);
                    have = true;
                }
                Part::Param {
                    name,
                    op: None,
                    quoted: true,
                } if name == "@" => {
                    // "$@": one field per argument.
                    if let Some((last, init)) = self.pos.split_last() {
                        for a in init {
                            cur.push_str(a);
                            fields.push(std::mem::take(&mut cur));
                        }
                        cur.push_str(last);
                        have = true;
                    }
                }
                Part::Param { .. } | Part::Subst { .. } => {
                    let (value, quoted) = match part {
                        Part::Param { name, op, quoted } => {
                            (self.param(name, op.as_ref())?, quoted)
                        }
                        Part::Subst { text, quoted } => {
                            let out = match self.host.output(text) {
                                Some(out) => out,
                                None => self.capture(text)?,
                            };
                            (out, quoted)
                        }
                        Part::Lit { .. } => unreachable!("matched above"),
                    };
                    if value.len() + cur.len() > MAX_VALUE {
                        self.oversize.set(true);
                        return None;
                    }
                    if *quoted {
                        cur.push_str(&value);
                        have = true;
                    } else {
                        let split = value.split([' ', '\t', '\n']);
                        let starts_blank = value.starts_with([' ', '\t', '\n']);
                        if starts_blank && have {
                            fields.push(std::mem::take(&mut cur));
                            have = false;
                        }
                        let mut first = true;
                        for piece in split {
                            if piece.is_empty() {
                                continue;
                            }
                            if !first {
                                fields.push(std::mem::take(&mut cur));
                            }
                            cur.push_str(piece);
                            have = true;
                            first = false;
                        }
                        if value.ends_with([' ', '\t', '\n']) && have {
                            fields.push(std::mem::take(&mut cur));
                            have = false;
                        }
                    }
                }
            }
            if cur.len() > MAX_VALUE {
                self.oversize.set(true);
                return None;
            }
        }
        if have {
            fields.push(cur);
        }
        if fields.iter().map(String::len).sum::<usize>() > MAX_VALUE {
            self.oversize.set(true);
            return None;
        }
        Some(fields)
    }

    fn param(&self, name: &str, op: Option<&(String, Word)>) -> Option<String> {
        let Some((op, arg)) = op else {
            if let Some(of) = name.strip_prefix('#').filter(|n| !n.is_empty()) {
                return self.var(of).map(|v| v.chars().count().to_string());
            }
            return self.var(name);
        };
        let value = self.var(name);
        let set = self.vars.contains_key(name) || name.parse::<usize>().is_ok();
        let arg_text = || self.expand(arg).map(|f| f.join(" "));
        match op.as_str() {
            ":-" => match value {
                Some(v) if !v.is_empty() => Some(v),
                Some(_) => arg_text(),
                None => None,
            },
            "-" => match value {
                Some(v) if set => Some(v),
                Some(_) => arg_text(),
                None => None,
            },
            ":+" => match value {
                Some(v) if !v.is_empty() => arg_text(),
                Some(_) => Some(String::new()),
                None => None,
            },
            "+" => match value {
                Some(_) if set => arg_text(),
                Some(_) => Some(String::new()),
                None => None,
            },
            "#" | "##" | "%" | "%%" => {
                let value: Vec<char> = value?.chars().collect();
                let pat: Vec<char> = self.pattern(arg)?.chars().collect();
                let n = value.len();
                // Prefixes shortest first for `#`, longest first for `##`;
                // suffixes likewise for `%` and `%%`.
                let cuts: Vec<usize> = match op.as_str() {
                    "#" | "%%" => (0..=n).collect(),
                    _ => (0..=n).rev().collect(),
                };
                for k in cuts {
                    let (piece, rest) = if op.starts_with('#') {
                        (&value[..k], &value[k..])
                    } else {
                        (&value[k..], &value[..k])
                    };
                    if glob_match(&pat, piece)? {
                        return Some(rest.iter().collect());
                    }
                }
                Some(value.iter().collect())
            }
            _ => None,
        }
    }

    /// What `$(text)` prints, when it only calls the script's functions,
    /// loops and `echo` with words the reader can expand: it is read as
    /// a subshell with the variables and functions of this point.
    fn capture(&self, text: &str) -> Option<String> {
        if self.depth >= MAX_DEPTH || self.doubt.is_some() {
            return None;
        }
        let tokens = super::lex::lex(text).ok()?;
        let list = super::parse::parse(&tokens).ok()?;
        let mut host = Capture {
            outer: &*self.host,
            failed: false,
        };
        let mut sub = Eval {
            host: &mut host,
            path: self.path,
            vars: self.vars.clone(),
            funcs: self.funcs.clone(),
            pos: self.pos.clone(),
            doubt: None,
            probe: false,
            count: 0,
            depth: self.depth + 1,
            line: self.line,
            oversize: Cell::new(false),
            umask: self.umask,
            out: Some(String::new()),
            captured: Rc::clone(&self.captured),
        };
        let r = sub.list(&list);
        let out = sub.out.take().unwrap_or_default();
        let oversize = sub.oversize.get();
        if host.failed || oversize || matches!(r, Err(Flow::Limit(_))) {
            return None;
        }
        // `$(…)` drops the output's trailing newlines.
        Some(out.trim_end_matches('\n').to_string())
    }

    /// A word as a pattern (`${v#PATTERN}`): its glob characters kept,
    /// not split. A quoted `*` counts as a glob too, which no Debian
    /// script relies on otherwise.
    fn pattern(&self, word: &Word) -> Option<String> {
        let mut out = String::new();
        for part in word {
            match part {
                Part::Lit { text, .. } => out.push_str(text),
                Part::Param { name, op, .. } => out.push_str(&self.param(name, op.as_ref())?),
                Part::Subst { text, .. } => out.push_str(&self.host.output(text)?),
            }
            if out.len() > MAX_VALUE {
                self.oversize.set(true);
                return None;
            }
        }
        Some(out)
    }

    fn expand_all(&self, words: &[Word]) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for w in words {
            out.extend(self.expand(w)?);
        }
        Some(out)
    }

    fn tick(&mut self) -> Result<(), Flow> {
        if self.out.is_some() {
            self.captured.set(self.captured.get() + 1);
            if self.captured.get() > MAX_STEPS {
                return Err(Flow::Limit(format!(
                    "the reader follows at most {MAX_STEPS} commands in command substitutions"
                )));
            }
        }
        self.count += 1;
        if self.count > MAX_STEPS {
            return Err(Flow::Limit(format!(
                "the reader stops after {MAX_STEPS} commands"
            )));
        }
        Ok(())
    }

    fn list(&mut self, list: &List) -> Result<Status, Flow> {
        let mut st = Status::True;
        for ao in list {
            st = self.and_or(ao)?;
        }
        Ok(st)
    }

    fn and_or(&mut self, ao: &AndOr) -> Result<Status, Flow> {
        let mut st = self.pipeline(&ao.first)?;
        for (and, p) in &ao.rest {
            match (st, and) {
                (Status::False, true) | (Status::True, false) => continue,
                (Status::Unknown, _) => {
                    // The rest runs or not: read it under doubt.
                    let saved = self.doubt.clone();
                    self.doubt.get_or_insert_with(|| {
                        String::from(
                            "runs only if a command the reader cannot follow succeeds or fails",
                        )
                    });
                    let s = self.pipeline(p)?;
                    self.doubt = saved;
                    st = if s == Status::True && !and {
                        Status::True
                    } else {
                        Status::Unknown
                    };
                }
                _ => st = self.pipeline(p)?,
            }
        }
        Ok(st)
    }

    fn pipeline(&mut self, p: &Pipeline) -> Result<Status, Flow> {
        if self.out.is_some() && p.cmds.len() > 1 {
            return Err(Flow::Limit(String::from(
                "a pipeline in a command substitution",
            )));
        }
        if let Some(st) = self.grep_of_known(p) {
            self.tick()?;
            return Ok(if p.bang { st.not() } else { st });
        }
        let mut st = Status::True;
        for c in &p.cmds {
            st = self.cmd(c)?;
        }
        // A pipeline's status is its last command's.
        Ok(if p.bang { st.not() } else { st })
    }

    /// `CMD | grep -q PATTERN` where the host knows what CMD prints:
    /// nothing (sysstat's `update-alternatives --display sar | grep -q …`
    /// on a first install) matches no pattern; other output is searched
    /// for a literal pattern (`id -Gn postgres | grep -qw ssl-cert`), with
    /// `-w` and `-x` as grep reads them.
    fn grep_of_known(&self, p: &Pipeline) -> Option<Status> {
        let [Cmd::Simple { words: first, .. }, Cmd::Simple {
            words: grep,
            redirs,
            ..
        }] = p.cmds.as_slice()
        else {
            return None;
        };
        let grep = self.expand_all(grep)?;
        if grep.first().map(String::as_str) != Some("grep") || !redirs.is_empty() {
            return None;
        }
        let mut flags = String::new();
        let mut operands = Vec::new();
        for a in &grep[1..] {
            match a.strip_prefix('-') {
                Some("-quiet") => flags.push('q'),
                Some(f) if !f.is_empty() && !f.starts_with('-') => flags.push_str(f),
                Some(_) => return None,
                None => operands.push(a.as_str()),
            }
        }
        // One operand, the pattern: grep reads what the pipe gives it.
        let [pattern] = operands.as_slice() else {
            return None;
        };
        if !flags.contains('q') || !flags.chars().all(|c| "qwxsEF".contains(c)) {
            return None;
        }
        let text = self.expand_all(first)?.join(" ");
        let out = self.host.output(&text)?;
        if out.is_empty() {
            return Some(Status::False);
        }
        if pattern.is_empty() || pattern.contains(|c| ".[]*^$\\+?(){}|".contains(c)) {
            return None;
        }
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let found = out.lines().any(|line| {
            if flags.contains('x') {
                return line == *pattern;
            }
            line.match_indices(pattern).any(|(k, m)| {
                !flags.contains('w')
                    || (!line[..k].chars().next_back().is_some_and(word)
                        && !line[k + m.len()..].chars().next().is_some_and(word))
            })
        });
        Some(Status::of(found))
    }

    /// Reads `body` as code that may or may not run.
    fn doubtful(&mut self, why: String, body: &List) -> Result<(), Flow> {
        let saved = self.doubt.clone();
        if self.doubt.is_none() {
            self.doubt = Some(why);
        }
        let r = self.list(body);
        self.doubt = saved;
        match r {
            Ok(_) | Err(Flow::Exit | Flow::Return) => Ok(()),
            Err(limit @ Flow::Limit(_)) => Err(limit),
        }
    }

    fn cmd(&mut self, cmd: &Cmd) -> Result<Status, Flow> {
        self.tick()?;
        match cmd {
            Cmd::Simple {
                words,
                redirs,
                heredoc,
                line,
            } => self.simple(words, redirs, heredoc.as_ref(), *line),
            Cmd::If { arms, otherwise } => {
                for (k, (cond, body)) in arms.iter().enumerate() {
                    let saved = self.doubt.clone();
                    let st = self.condition(cond)?;
                    self.doubt = saved;
                    match st {
                        Status::True => return self.list(body),
                        Status::False => continue,
                        Status::Unknown => {
                            let line = cond_line(cond);
                            let why = format!(
                                "under a condition on line {line} the reader cannot decide"
                            );
                            self.doubtful(why.clone(), body)?;
                            for (c, b) in &arms[k + 1..] {
                                self.doubtful(why.clone(), c)?;
                                self.doubtful(why.clone(), b)?;
                            }
                            if let Some(o) = otherwise {
                                self.doubtful(why, o)?;
                            }
                            return Ok(Status::Unknown);
                        }
                    }
                }
                match otherwise {
                    Some(o) => self.list(o),
                    None => Ok(Status::True),
                }
            }
            Cmd::For {
                var,
                words,
                body,
                line,
            } => match self.expand_all(words) {
                Some(items) => {
                    let mut st = Status::True;
                    for item in items {
                        self.vars.insert(var.clone(), Some(item));
                        st = self.list(body)?;
                    }
                    Ok(st)
                }
                None => {
                    self.vars.insert(var.clone(), None);
                    let why =
                        format!("in a `for` over words the reader cannot expand (line {line})");
                    self.doubtful(why, body)?;
                    Ok(Status::Unknown)
                }
            },
            Cmd::Loop { body, line } => {
                let why = format!(
                    "in a `while`/`until` loop (line {line}), which the reader does not follow"
                );
                self.doubtful(why, body)?;
                Ok(Status::Unknown)
            }
            Cmd::Case { word, arms, line } => {
                let Some(value) = self.expand(word).map(|f| f.join(" ")) else {
                    let why =
                        format!("in a `case` on a word the reader cannot expand (line {line})");
                    for (_, body) in arms {
                        self.doubtful(why.clone(), body)?;
                    }
                    return Ok(Status::Unknown);
                };
                let v: Vec<char> = value.chars().collect();
                for (pats, body) in arms {
                    for pat in pats {
                        // A pattern's quoted parts match literally; ours
                        // only needs `*` and `?` from unquoted parts.
                        let mut p = Vec::new();
                        for part in pat {
                            match part {
                                Part::Lit { text, .. } => p.extend(text.chars()),
                                other => {
                                    match self.expand(&vec![other.clone()]) {
                                        Some(f) => p.extend(f.join(" ").chars()),
                                        None => {
                                            let why = format!("in a `case` arm the reader cannot match (line {line})");
                                            self.doubtful(why, body)?;
                                            return Ok(Status::Unknown);
                                        }
                                    }
                                }
                            }
                        }
                        match glob_match(&p, &v) {
                            Some(true) => return self.list(body),
                            Some(false) => {}
                            None => {
                                let why = format!("in a `case` arm whose pattern is too costly to match (line {line})");
                                self.doubtful(why, body)?;
                                return Ok(Status::Unknown);
                            }
                        }
                    }
                }
                Ok(Status::True)
            }
            Cmd::Func { name, body } => {
                self.funcs.insert(name.clone(), Rc::new(body.clone()));
                Ok(Status::True)
            }
            Cmd::Group(body) => self.list(body),
            Cmd::Redirected { cmd, redirs, line } => {
                let status = self.cmd(cmd)?;
                // What the command prints goes into a file: content the
                // reader does not know.
                for (op, target) in redirs {
                    let path = self.expand(target).map(|f| f.join(" "));
                    if op.ends_with('&')
                        || op.starts_with('<')
                        || path.as_deref() == Some("/dev/null")
                    {
                        continue;
                    }
                    let written = format!("{op}{}", path.unwrap_or_else(|| word_text(target)));
                    self.tell(*line, |host, at| {
                        host.unfollowed(
                            &written,
                            "writes the output of a compound command into a file",
                            at,
                        )
                    });
                }
                Ok(status)
            }
        }
    }

    /// An `if`'s condition: what runs there is a probe, and the host is
    /// told so.
    fn condition(&mut self, cond: &List) -> Result<Status, Flow> {
        let saved = self.probe;
        self.probe = true;
        let st = self.list(cond);
        self.probe = saved;
        st
    }

    /// A variable the host's last command set (debconf's `RET`): known
    /// only where the command surely ran.
    fn take_assignment(&mut self) {
        if let Some((name, value)) = self.host.assigned() {
            let value = if self.doubt.is_some() { None } else { value };
            self.vars.insert(name, value);
        }
    }

    /// Tells the host something met at `line`.
    fn tell<R>(&mut self, line: usize, f: impl FnOnce(&mut dyn Host, &Site) -> R) -> R {
        let at = Site {
            line,
            doubt: self.doubt.as_deref(),
            probe: self.probe,
            umask: self.umask,
        };
        f(&mut *self.host, &at)
    }

    fn simple(
        &mut self,
        words: &[Word],
        redirs: &[(String, Word)],
        heredoc: Option<&Word>,
        line: usize,
    ) -> Result<Status, Flow> {
        self.line = line;
        // Leading NAME=value words are assignments.
        let mut k = 0;
        let mut assigns = Vec::new();
        while k < words.len() {
            let Some(Part::Lit {
                text,
                quoted: false,
            }) = words[k].first()
            else {
                break;
            };
            let Some((name, first)) = text.split_once('=') else {
                break;
            };
            if name.is_empty() || !name.chars().all(is_name_char) {
                break;
            }
            let mut rest = words[k].clone();
            rest[0] = Part::Lit {
                text: first.to_string(),
                quoted: true,
            };
            for p in &mut rest {
                if let Part::Param { quoted, .. } = p {
                    *quoted = true; // no field splitting in assignments
                }
            }
            let value = self.expand(&rest).map(|f| f.join(" "));
            // A value too long to keep is unknown from here on.
            self.oversize.set(false);
            assigns.push((name.to_string(), value));
            k += 1;
        }
        let words = &words[k..];
        if words.is_empty() {
            for (name, value) in assigns {
                let value = if self.doubt.is_some() { None } else { value };
                self.vars.insert(name, value);
            }
            return Ok(Status::True);
        }
        let written = words_text(words);
        let Some(argv) = self.expand_all(words) else {
            let why = if self.oversize.replace(false) {
                "its words expand to more than the reader's limit of 64 KiB"
            } else {
                "its words cannot be expanded without running something"
            };
            self.tell(line, |host, at| host.unfollowed(&written, why, at));
            return Ok(Status::Unknown);
        };
        if argv.is_empty() {
            return Ok(Status::True);
        }
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        if self.out.is_some() && (!redirs.is_empty() || heredoc.is_some() || self.doubt.is_some()) {
            return Err(Flow::Limit(String::from(
                "a redirection or a condition in a command substitution",
            )));
        }
        // Output into a file, or a here-document's input: the host says
        // what that means, whatever the command.
        let writes: Vec<FileWrite> = redirs
            .iter()
            .map(|(op, target)| FileWrite {
                op: op.clone(),
                path: self.expand(target).map(|f| f.join(" ")),
            })
            .filter(|w| {
                !(w.op.ends_with('&')
                    || w.op.starts_with('<')
                    || w.path.as_deref() == Some("/dev/null"))
            })
            .collect();
        if !writes.is_empty() || heredoc.is_some() {
            // Every part of a body is quoted: one field, or none when it
            // is empty.
            let body = heredoc.and_then(|w| self.expand(w)).map(|f| f.concat());
            self.oversize.set(false);
            let cmd = Simple {
                argv: &args,
                written: &written,
                writes: &writes,
                heredoc: heredoc.is_some(),
                body: body.as_deref(),
                env: &assigns,
            };
            let st = self.tell(line, |host, at| host.command(&cmd, at));
            self.take_assignment();
            return Ok(st);
        }
        if let Some(body) = self.funcs.get(args[0]).cloned() {
            if self.depth >= MAX_DEPTH {
                return Err(Flow::Limit(format!(
                    "functions call each other more than {MAX_DEPTH} deep"
                )));
            }
            let saved = std::mem::replace(
                &mut self.pos,
                args[1..].iter().map(|s| s.to_string()).collect(),
            );
            self.depth += 1;
            let r = self.list(&body);
            self.depth -= 1;
            self.pos = saved;
            return match r {
                Ok(st) => Ok(st),
                Err(Flow::Return) => Ok(Status::True),
                Err(e) => Err(e),
            };
        }
        self.command(&args, &written, &assigns, line)
    }

    /// The commands the reader implements itself: builtins that change
    /// nothing outside the shell, `test`, and the search of the path.
    /// Every other command is the host's.
    fn command(
        &mut self,
        args: &[&str],
        written: &str,
        env: &[(String, Option<String>)],
        line: usize,
    ) -> Result<Status, Flow> {
        match args[0] {
            "true" | ":" => Ok(Status::True),
            "false" => Ok(Status::False),
            "umask" => {
                if let [_, mask] = args {
                    match u32::from_str_radix(mask, 8) {
                        Ok(m) if m <= 0o777 && self.doubt.is_none() => self.umask = m,
                        // A mask the reader cannot tell makes what follows
                        // created with a mode it does not know.
                        _ => {
                            self.doubt = Some(format!(
                                "after a `umask` the reader cannot follow (line {line})"
                            ))
                        }
                    }
                }
                Ok(Status::True)
            }
            "echo" if self.out.is_some() => {
                let (newline, words) = match args.get(1) {
                    Some(&"-n") => (false, &args[2..]),
                    Some(o)
                        if o.len() > 1
                            && o.starts_with('-')
                            && o[1..].chars().all(|c| matches!(c, 'n' | 'e' | 'E'))
                            || args.iter().any(|a| a.contains('\\')) =>
                    {
                        return Err(Flow::Limit(String::from(
                            "an `echo` whose options or escapes differ between shells",
                        )))
                    }
                    _ => (true, &args[1..]),
                };
                let out = self.out.as_mut().expect("capturing");
                out.push_str(&words.join(" "));
                if newline {
                    out.push('\n');
                }
                if out.len() > MAX_VALUE {
                    self.oversize.set(true);
                }
                Ok(Status::True)
            }
            "printf" if self.out.is_some() => Err(Flow::Limit(String::from(
                "a `printf` in a command substitution",
            ))),
            "set" | "echo" | "printf" | "export" | "local" | "readonly" | "shift" | "trap"
            | "cd" | "sleep" => {
                if args[0] == "shift" && self.doubt.is_none() && !self.pos.is_empty() {
                    self.pos.remove(0);
                }
                Ok(Status::True)
            }
            "unset" => {
                for v in &args[1..] {
                    if !v.starts_with('-') {
                        let value = if self.doubt.is_some() {
                            None
                        } else {
                            Some(String::new())
                        };
                        self.vars.insert(v.to_string(), value);
                    }
                }
                Ok(Status::True)
            }
            "exit" => {
                if self.doubt.is_some() {
                    Ok(Status::Unknown)
                } else {
                    Err(Flow::Exit)
                }
            }
            "return" => {
                if self.doubt.is_some() {
                    Ok(Status::Unknown)
                } else {
                    Err(Flow::Return)
                }
            }
            "[" | "test" => {
                let mut a: Vec<&str> = args[1..].to_vec();
                if args[0] == "[" {
                    if a.last() != Some(&"]") {
                        return Ok(Status::Unknown);
                    }
                    a.pop();
                }
                Ok(self.test(&a))
            }
            "which" | "command" => {
                let name = match args {
                    ["which", n] => n,
                    ["command", "-v", n] => n,
                    _ => return Ok(Status::Unknown),
                };
                let found = self.path.iter().any(|d| {
                    matches!(
                        self.host.file(&format!("{d}/{name}")),
                        Some(Found::File { executable: true } | Found::Symlink)
                    )
                });
                Ok(Status::of(found))
            }
            _ => {
                let cmd = Simple {
                    argv: args,
                    written,
                    writes: &[],
                    heredoc: false,
                    body: None,
                    env,
                };
                let st = self.tell(line, |host, at| host.command(&cmd, at));
                self.take_assignment();
                Ok(st)
            }
        }
    }

    /// `test`'s arguments, where the reader can decide them.
    fn test(&self, a: &[&str]) -> Status {
        match a {
            [] => Status::False,
            ["!", rest @ ..] => self.test(rest).not(),
            [s] => Status::of(!s.is_empty()),
            ["-z", s] => Status::of(s.is_empty()),
            ["-n", s] => Status::of(!s.is_empty()),
            // No file has an empty name (`[ -x "$(command -v absent)" ]`).
            [op, ""] if matches!(*op, "-e" | "-f" | "-d" | "-x" | "-r" | "-s" | "-L" | "-h") => {
                Status::False
            }
            [op, path] if op.len() == 2 && op.starts_with('-') => {
                if !path.starts_with('/') {
                    return Status::Unknown;
                }
                let found = self.host.file(path);
                match (*op, found) {
                    ("-L" | "-h", f) => Status::of(f == Some(Found::Symlink)),
                    (_, Some(Found::Symlink)) => Status::Unknown,
                    ("-e" | "-r", f) => Status::of(f.is_some()),
                    ("-f" | "-s", f) => Status::of(matches!(f, Some(Found::File { .. }))),
                    ("-d", f) => Status::of(f == Some(Found::Dir)),
                    ("-x", f) => Status::of(matches!(
                        f,
                        Some(Found::File { executable: true }) | Some(Found::Dir)
                    )),
                    _ => Status::Unknown,
                }
            }
            [x, "=" | "==", y] => Status::of(x == y),
            [x, "!=", y] => Status::of(x != y),
            [x, op, y] if op.starts_with('-') => {
                let (Ok(x), Ok(y)) = (x.parse::<i64>(), y.parse::<i64>()) else {
                    return Status::Unknown;
                };
                match *op {
                    "-eq" => Status::of(x == y),
                    "-ne" => Status::of(x != y),
                    "-gt" => Status::of(x > y),
                    "-ge" => Status::of(x >= y),
                    "-lt" => Status::of(x < y),
                    "-le" => Status::of(x <= y),
                    _ => Status::Unknown,
                }
            }
            _ => Status::Unknown,
        }
    }
}

fn cond_line(cond: &List) -> usize {
    fn cmd_line(c: &Cmd) -> Option<usize> {
        match c {
            Cmd::Simple { line, .. }
            | Cmd::For { line, .. }
            | Cmd::Loop { line, .. }
            | Cmd::Case { line, .. } => Some(*line),
            Cmd::If { arms, .. } => arms.first().map(|(c, _)| cond_line(c)),
            Cmd::Group(l) => Some(cond_line(l)),
            Cmd::Redirected { line, .. } => Some(*line),
            Cmd::Func { .. } => None,
        }
    }
    cond.first()
        .and_then(|ao| ao.first.cmds.first())
        .and_then(cmd_line)
        .unwrap_or(0)
}
