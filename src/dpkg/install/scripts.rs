//! A reader of maintainer scripts that never runs them: it follows the
//! small part of POSIX sh that Debian's generated and hand-written scripts
//! mostly use (literal commands, variables, `for` over word lists, `case`,
//! `if` on tests it can decide, functions the script defines, `&&`/`||`)
//! and names the commands whose effects an image needs. Whatever it cannot
//! follow (command substitution, loops over globs or command output,
//! conditions on the running system) is reported as skipped with the line,
//! never guessed.
//!
//! The script is read as dpkg runs it on a first install: preinst with
//! `install`, postinst with `configure` and no old version. Script-local
//! (lowercase) variables never assigned are empty, as in sh; uppercase
//! ones are environment variables the reader does not know, apart from
//! the `DPKG_*` variables dpkg sets. `getent passwd|group NAME` is false
//! (a package's own accounts do not exist before its first configure),
//! `which`/`command -v` look in the installed tree, and file tests
//! (`[ -e PATH ]`, `-f`, `-d`, `-x`, `-L`) are asked of the installed tree.

use std::collections::BTreeMap;

/// What a file test finds at an absolute path in the installed tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    File { executable: bool },
    Dir,
    Symlink,
}

/// What the reader is told about the system the script would run on.
pub(crate) struct Context<'a> {
    pub package: &'a str,
    /// The package's architecture (`DPKG_MAINTSCRIPT_ARCH`).
    pub arch: &'a str,
    /// `dpkg --print-architecture`, when known.
    pub native_arch: Option<&'a str>,
    pub lookup: &'a dyn Fn(&str) -> Option<Found>,
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
}

/// Scripts larger than this are not read at all.
const MAX_SCRIPT: usize = 1 << 20;
/// Commands evaluated per script, so a loop cannot run away.
const MAX_STEPS: usize = 100_000;
const MAX_DEPTH: usize = 32;

/// Reads `text` as `script` (`preinst`, `postinst`) would run with `args`.
pub(crate) fn read(ctx: &Context, text: &str, args: &[&str]) -> Vec<Step> {
    if text.len() > MAX_SCRIPT {
        return vec![Step {
            line: 1,
            action: Action::Skipped {
                command: String::from("(the whole script)"),
                why: format!("larger than {MAX_SCRIPT} bytes"),
            },
        }];
    }
    let tokens = match lex(text) {
        Ok(t) => t,
        Err((line, why)) => return vec![whole_script_skipped(line, why)],
    };
    let mut p = Parser {
        toks: &tokens,
        i: 0,
        depth: 0,
    };
    let list = match p.list(&[]) {
        Ok(l) if p.i == tokens.len() => l,
        Ok(_) => {
            let line = tokens.get(p.i).map_or(1, |t| t.line);
            return vec![whole_script_skipped(
                line,
                String::from("a construct the reader does not follow"),
            )];
        }
        Err((line, why)) => return vec![whole_script_skipped(line, why)],
    };
    let mut vars = BTreeMap::new();
    for (k, v) in [
        ("DPKG_ROOT", ""),
        ("DPKG_ADMINDIR", "/var/lib/dpkg"),
        ("DPKG_MAINTSCRIPT_PACKAGE", ctx.package),
        ("DPKG_MAINTSCRIPT_ARCH", ctx.arch),
        ("DPKG_RUNNING_VERSION", ""),
        ("DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT", "1"),
    ] {
        vars.insert(k.to_string(), Some(v.to_string()));
    }
    let mut ev = Eval {
        ctx,
        vars,
        funcs: BTreeMap::new(),
        pos: args.iter().map(|s| s.to_string()).collect(),
        steps: Vec::new(),
        doubt: None,
        count: 0,
        depth: 0,
    };
    let _ = ev.list(&list);
    ev.steps
}

fn whole_script_skipped(line: usize, why: String) -> Step {
    Step {
        line,
        action: Action::Skipped {
            command: String::from("(the whole script)"),
            why: format!("cannot be read: {why}"),
        },
    }
}

// ---- lexing ---------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit {
        text: String,
        quoted: bool,
    },
    Param {
        name: String,
        op: Option<(String, Word)>,
        quoted: bool,
    },
    /// `$(...)` or a backquote: its text, for the one substitution known.
    Subst {
        text: String,
    },
}

type Word = Vec<Part>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(Word),
    /// `;` `;;` `&&` `||` `|` `&` `(` `)` newline (as "\n").
    Op(&'static str),
    /// A redirection operator (`>`, `2>&1`, ...) and its target.
    Redir(String, Word),
    /// A here-document: its body is not followed.
    Heredoc,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

type LexError = (usize, String);

fn lex(text: &str) -> Result<Vec<Token>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut pending_heredocs: Vec<(String, bool)> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                i += 2;
                line += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\n' => {
                out.push(Token {
                    tok: Tok::Op("\n"),
                    line,
                });
                i += 1;
                line += 1;
                for (delim, strip_tabs) in pending_heredocs.drain(..) {
                    loop {
                        if i >= chars.len() {
                            return Err((line, format!("here-document `{delim}` never ends")));
                        }
                        let start = i;
                        while i < chars.len() && chars[i] != '\n' {
                            i += 1;
                        }
                        let l: String = chars[start..i].iter().collect();
                        i += 1;
                        line += 1;
                        let l = if strip_tabs {
                            l.trim_start_matches('\t')
                        } else {
                            &l
                        };
                        if l == delim {
                            break;
                        }
                    }
                }
            }
            ';' | '&' | '|' | '(' | ')' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    ";;" => ";;",
                    "&&" => "&&",
                    "||" => "||",
                    _ => match c {
                        ';' => ";",
                        '&' => "&",
                        '|' => "|",
                        '(' => "(",
                        _ => ")",
                    },
                };
                i += op.len();
                out.push(Token {
                    tok: Tok::Op(op),
                    line,
                });
            }
            '<' | '>' => {
                let start_line = line;
                let mut op = String::new();
                while i < chars.len() && matches!(chars[i], '<' | '>' | '&' | '-') {
                    op.push(chars[i]);
                    i += 1;
                    if op.ends_with('&') || op == "<<-" {
                        break;
                    }
                }
                while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                    i += 1;
                }
                let (word, next, lines) = lex_word(&chars, i)?;
                i = next;
                line += lines;
                if op.starts_with("<<") {
                    let delim: String = word
                        .iter()
                        .map(|p| match p {
                            Part::Lit { text, .. } => text.clone(),
                            _ => String::new(),
                        })
                        .collect();
                    pending_heredocs.push((delim, op == "<<-"));
                    out.push(Token {
                        tok: Tok::Heredoc,
                        line: start_line,
                    });
                } else {
                    out.push(Token {
                        tok: Tok::Redir(op, word),
                        line: start_line,
                    });
                }
            }
            _ => {
                // A file descriptor number right before a redirection.
                if c.is_ascii_digit() && matches!(chars.get(i + 1), Some('<' | '>')) {
                    let op_start = i;
                    i += 1;
                    let mut op = String::from(chars[op_start]);
                    while i < chars.len() && matches!(chars[i], '<' | '>' | '&') {
                        op.push(chars[i]);
                        i += 1;
                        if op.ends_with('&') {
                            break;
                        }
                    }
                    while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                        i += 1;
                    }
                    let (word, next, lines) = lex_word(&chars, i)?;
                    out.push(Token {
                        tok: Tok::Redir(op, word),
                        line,
                    });
                    i = next;
                    line += lines;
                    continue;
                }
                let (word, next, lines) = lex_word(&chars, i)?;
                out.push(Token {
                    tok: Tok::Word(word),
                    line,
                });
                i = next;
                line += lines;
            }
        }
    }
    Ok(out)
}

fn push_lit(parts: &mut Word, c: char, quoted: bool) {
    if let Some(Part::Lit { text, quoted: q }) = parts.last_mut() {
        if *q == quoted {
            text.push(c);
            return;
        }
    }
    parts.push(Part::Lit {
        text: c.to_string(),
        quoted,
    });
}

/// One word from `i`: (its parts, where it ends, newlines inside it).
fn lex_word(chars: &[char], mut i: usize) -> Result<(Word, usize, usize), LexError> {
    let mut parts = Vec::new();
    let mut lines = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
            '\\' => {
                match chars.get(i + 1) {
                    Some('\n') => lines += 1,
                    Some(&n) => push_lit(&mut parts, n, true),
                    None => {}
                }
                i += 2;
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or((lines + 1, String::from("an unterminated '")))?;
                let s: String = chars[i + 1..i + 1 + end].iter().collect();
                lines += s.matches('\n').count();
                parts.push(Part::Lit {
                    text: s,
                    quoted: true,
                });
                i += end + 2;
            }
            '"' => {
                i += 1;
                // An empty "" still makes a word.
                parts.push(Part::Lit {
                    text: String::new(),
                    quoted: true,
                });
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err((lines + 1, String::from("an unterminated \"")));
                    };
                    match d {
                        '"' => {
                            i += 1;
                            break;
                        }
                        '\\' => {
                            match chars.get(i + 1) {
                                Some('\n') => lines += 1,
                                Some(&n @ ('$' | '`' | '"' | '\\')) => {
                                    push_lit(&mut parts, n, true)
                                }
                                Some(&n) => {
                                    push_lit(&mut parts, '\\', true);
                                    push_lit(&mut parts, n, true);
                                }
                                None => {}
                            }
                            i += 2;
                        }
                        '$' | '`' => {
                            let (part, next, l) = lex_dollar(chars, i, true)?;
                            parts.push(part);
                            lines += l;
                            i = next;
                        }
                        _ => {
                            if d == '\n' {
                                lines += 1;
                            }
                            push_lit(&mut parts, d, true);
                            i += 1;
                        }
                    }
                }
            }
            '$' | '`' => {
                let (part, next, l) = lex_dollar(chars, i, false)?;
                parts.push(part);
                lines += l;
                i = next;
            }
            _ => {
                push_lit(&mut parts, c, false);
                i += 1;
            }
        }
    }
    Ok((parts, i, lines))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `$NAME`, `${NAME...}`, `$1`, `$@`, `$(...)` or a backquote at `i`.
fn lex_dollar(chars: &[char], i: usize, quoted: bool) -> Result<(Part, usize, usize), LexError> {
    let closing = |open: char, close: char, from: usize| -> Result<usize, LexError> {
        let mut depth = 0;
        for (k, &c) in chars.iter().enumerate().skip(from) {
            if c == open && open != close {
                depth += 1;
            } else if c == close {
                if depth == 0 {
                    return Ok(k);
                }
                depth -= 1;
            }
        }
        Err((1, format!("an unterminated `{open}`")))
    };
    if chars[i] == '`' {
        let end = closing('`', '`', i + 1)?;
        let text: String = chars[i + 1..end].iter().collect();
        let lines = text.matches('\n').count();
        return Ok((Part::Subst { text }, end + 1, lines));
    }
    match chars.get(i + 1) {
        Some('(') => {
            let end = closing('(', ')', i + 2)?;
            let text: String = chars[i + 2..end].iter().collect();
            let lines = text.matches('\n').count();
            Ok((Part::Subst { text }, end + 1, lines))
        }
        Some('{') => {
            let end = closing('{', '}', i + 2)?;
            let inner: String = chars[i + 2..end].iter().collect();
            let name_len = inner
                .char_indices()
                .find(|&(_, c)| !(is_name_char(c) || c == '#' || c == '@'))
                .map_or(inner.len(), |(k, _)| k);
            let name = inner[..name_len].to_string();
            let rest = &inner[name_len..];
            let op = if rest.is_empty() {
                None
            } else {
                let op_len = if rest.starts_with(':') { 2 } else { 1 };
                let op: String = rest.chars().take(op_len).collect();
                let arg: Vec<char> = rest.chars().skip(op_len).collect();
                let (word, _, _) = lex_word_in_braces(&arg)?;
                Some((op, word))
            };
            Ok((
                Part::Param { name, op, quoted },
                end + 1,
                inner.matches('\n').count(),
            ))
        }
        Some(&c) if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '-' | '!') => {
            Ok((
                Part::Param {
                    name: c.to_string(),
                    op: None,
                    quoted,
                },
                i + 2,
                0,
            ))
        }
        Some(&c) if is_name_char(c) => {
            let end = chars[i + 1..]
                .iter()
                .position(|&c| !is_name_char(c))
                .map_or(chars.len(), |k| i + 1 + k);
            Ok((
                Part::Param {
                    name: chars[i + 1..end].iter().collect(),
                    op: None,
                    quoted,
                },
                end,
                0,
            ))
        }
        _ => Ok((
            Part::Lit {
                text: String::from("$"),
                quoted,
            },
            i + 1,
            0,
        )),
    }
}

/// The word of `${NAME:-word}`: quotes and expansions, no splitting.
fn lex_word_in_braces(chars: &[char]) -> Result<(Word, usize, usize), LexError> {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '$' | '`' => {
                let (p, next, _) = lex_dollar(chars, i, false)?;
                parts.push(p);
                i = next;
            }
            '"' | '\'' => {
                let q = chars[i];
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == q)
                    .map_or(chars.len(), |k| i + 1 + k);
                let inner: Vec<char> = chars[i + 1..end].to_vec();
                if q == '"' {
                    let (mut w, _, _) = lex_word_in_braces(&inner)?;
                    for p in &mut w {
                        match p {
                            Part::Lit { quoted, .. } | Part::Param { quoted, .. } => *quoted = true,
                            Part::Subst { .. } => {}
                        }
                    }
                    parts.extend(w);
                } else {
                    parts.push(Part::Lit {
                        text: inner.iter().collect(),
                        quoted: true,
                    });
                }
                i = end + 1;
            }
            c => {
                push_lit(&mut parts, c, false);
                i += 1;
            }
        }
    }
    Ok((parts, chars.len(), 0))
}

// ---- parsing --------------------------------------------------------------

#[derive(Clone, Debug)]
enum Cmd {
    Simple {
        words: Vec<Word>,
        redirs: Vec<(String, Word)>,
        heredoc: bool,
        line: usize,
    },
    If {
        arms: Vec<(List, List)>,
        otherwise: Option<List>,
    },
    For {
        var: String,
        words: Vec<Word>,
        body: List,
        line: usize,
    },
    /// `while`/`until`: never followed, its body read for what it names.
    Loop {
        body: List,
        line: usize,
    },
    Case {
        word: Word,
        arms: Vec<(Vec<Word>, List)>,
        line: usize,
    },
    Func {
        name: String,
        body: List,
    },
    Group(List),
}

#[derive(Clone, Debug)]
struct Pipeline {
    bang: bool,
    cmds: Vec<Cmd>,
}

#[derive(Clone, Debug)]
struct AndOr {
    first: Pipeline,
    rest: Vec<(bool, Pipeline)>,
}

type List = Vec<AndOr>;

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    depth: usize,
}

const RESERVED: [&str; 16] = [
    "if", "then", "elif", "else", "fi", "for", "in", "do", "done", "case", "esac", "while",
    "until", "{", "}", "!",
];

fn literal(word: &Word) -> Option<&str> {
    match word.as_slice() {
        [Part::Lit {
            text,
            quoted: false,
        }] => Some(text),
        _ => None,
    }
}

impl Parser<'_> {
    fn line(&self) -> usize {
        self.toks
            .get(self.i)
            .or(self.toks.last())
            .map_or(1, |t| t.line)
    }

    fn err<T>(&self, why: &str) -> Result<T, LexError> {
        Err((self.line(), why.to_string()))
    }

    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.i).map(|t| &t.tok) {
            Some(Tok::Word(w)) => literal(w),
            _ => None,
        }
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.i).map(|t| &t.tok) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek_op(), Some("\n" | ";")) {
            self.i += 1;
        }
    }

    fn expect_word(&mut self, w: &str) -> Result<(), LexError> {
        self.skip_newlines();
        if self.peek_word() == Some(w) {
            self.i += 1;
            Ok(())
        } else {
            self.err(&format!("expected `{w}`"))
        }
    }

    /// Commands until one of `stops` (a reserved word) or `;;`/`)` or the end.
    fn list(&mut self, stops: &[&str]) -> Result<List, LexError> {
        let mut list = Vec::new();
        loop {
            self.skip_newlines();
            if self.i >= self.toks.len() {
                return Ok(list);
            }
            if let Some(w) = self.peek_word() {
                if stops.contains(&w) {
                    return Ok(list);
                }
            }
            if matches!(self.peek_op(), Some(";;" | ")")) {
                return Ok(list);
            }
            list.push(self.and_or(stops)?);
            if let Some("\n" | ";" | "&") = self.peek_op() {
                self.i += 1;
            }
        }
    }

    fn and_or(&mut self, stops: &[&str]) -> Result<AndOr, LexError> {
        let first = self.pipeline(stops)?;
        let mut rest = Vec::new();
        while let Some(op @ ("&&" | "||")) = self.peek_op() {
            self.i += 1;
            while self.peek_op() == Some("\n") {
                self.i += 1;
            }
            rest.push((op == "&&", self.pipeline(stops)?));
        }
        Ok(AndOr { first, rest })
    }

    fn pipeline(&mut self, stops: &[&str]) -> Result<Pipeline, LexError> {
        let mut bang = false;
        if self.peek_word() == Some("!") {
            bang = true;
            self.i += 1;
        }
        let mut cmds = vec![self.command(stops)?];
        while self.peek_op() == Some("|") {
            self.i += 1;
            while self.peek_op() == Some("\n") {
                self.i += 1;
            }
            cmds.push(self.command(stops)?);
        }
        Ok(Pipeline { bang, cmds })
    }

    fn command(&mut self, stops: &[&str]) -> Result<Cmd, LexError> {
        if self.depth >= MAX_DEPTH {
            return self.err("commands nested too deeply");
        }
        self.depth += 1;
        let r = self.command_inner(stops);
        self.depth -= 1;
        r
    }

    fn command_inner(&mut self, stops: &[&str]) -> Result<Cmd, LexError> {
        let line = self.line();
        match self.peek_word() {
            Some("if") => {
                self.i += 1;
                let mut arms = Vec::new();
                let mut otherwise = None;
                loop {
                    let cond = self.list(&["then"])?;
                    self.expect_word("then")?;
                    let body = self.list(&["elif", "else", "fi"])?;
                    arms.push((cond, body));
                    match self.peek_word() {
                        Some("elif") => self.i += 1,
                        Some("else") => {
                            self.i += 1;
                            otherwise = Some(self.list(&["fi"])?);
                            self.expect_word("fi")?;
                            break;
                        }
                        Some("fi") => {
                            self.i += 1;
                            break;
                        }
                        _ => return self.err("an `if` without `fi`"),
                    }
                }
                self.redirs_after()?;
                Ok(Cmd::If { arms, otherwise })
            }
            Some("for") => {
                self.i += 1;
                let var = match self.toks.get(self.i).map(|t| &t.tok) {
                    Some(Tok::Word(w)) => literal(w).map(str::to_string),
                    _ => None,
                };
                let Some(var) = var else {
                    return self.err("a `for` without a variable name");
                };
                self.i += 1;
                let mut words = Vec::new();
                if self.peek_word() == Some("in") {
                    self.i += 1;
                    while let Some(Tok::Word(w)) = self.toks.get(self.i).map(|t| &t.tok) {
                        words.push(w.clone());
                        self.i += 1;
                    }
                } else {
                    words.push(vec![Part::Param {
                        name: String::from("@"),
                        op: None,
                        quoted: true,
                    }]);
                }
                self.expect_word("do")?;
                let body = self.list(&["done"])?;
                self.expect_word("done")?;
                self.redirs_after()?;
                Ok(Cmd::For {
                    var,
                    words,
                    body,
                    line,
                })
            }
            Some("while" | "until") => {
                self.i += 1;
                let mut body = self.list(&["do"])?;
                self.expect_word("do")?;
                body.extend(self.list(&["done"])?);
                self.expect_word("done")?;
                self.redirs_after()?;
                Ok(Cmd::Loop { body, line })
            }
            Some("case") => {
                self.i += 1;
                let word = match self.toks.get(self.i).map(|t| &t.tok) {
                    Some(Tok::Word(w)) => w.clone(),
                    _ => return self.err("a `case` without a word"),
                };
                self.i += 1;
                self.expect_word("in")?;
                let mut arms = Vec::new();
                loop {
                    self.skip_newlines();
                    if self.peek_word() == Some("esac") {
                        self.i += 1;
                        break;
                    }
                    if self.peek_op() == Some("(") {
                        self.i += 1;
                    }
                    let mut patterns = Vec::new();
                    loop {
                        match self.toks.get(self.i).map(|t| &t.tok) {
                            Some(Tok::Word(w)) => patterns.push(w.clone()),
                            _ => return self.err("a `case` pattern"),
                        }
                        self.i += 1;
                        match self.peek_op() {
                            Some("|") => self.i += 1,
                            Some(")") => {
                                self.i += 1;
                                break;
                            }
                            _ => return self.err("a `case` pattern without `)`"),
                        }
                    }
                    let body = self.list(&["esac"])?;
                    arms.push((patterns, body));
                    if self.peek_op() == Some(";;") {
                        self.i += 1;
                    }
                }
                self.redirs_after()?;
                Ok(Cmd::Case { word, arms, line })
            }
            Some("{") => {
                self.i += 1;
                let body = self.list(&["}"])?;
                self.expect_word("}")?;
                self.redirs_after()?;
                Ok(Cmd::Group(body))
            }
            Some(w) if RESERVED.contains(&w) && !stops.contains(&w) => {
                self.err(&format!("an unexpected `{w}`"))
            }
            _ => {
                if self.peek_op() == Some("(") {
                    // A subshell: its effects are read like a group's.
                    self.i += 1;
                    let body = self.list(&[])?;
                    if self.peek_op() != Some(")") {
                        return self.err("a `(` without `)`");
                    }
                    self.i += 1;
                    self.redirs_after()?;
                    return Ok(Cmd::Group(body));
                }
                self.simple(line)
            }
        }
    }

    /// Redirections after a compound command do not change what it does
    /// to the image (they only route its output).
    fn redirs_after(&mut self) -> Result<(), LexError> {
        while let Some(Tok::Redir(..)) = self.toks.get(self.i).map(|t| &t.tok) {
            self.i += 1;
        }
        Ok(())
    }

    fn simple(&mut self, line: usize) -> Result<Cmd, LexError> {
        let mut words = Vec::new();
        let mut redirs = Vec::new();
        let mut heredoc = false;
        loop {
            match self.toks.get(self.i).map(|t| &t.tok) {
                Some(Tok::Word(w)) => {
                    words.push(w.clone());
                    self.i += 1;
                }
                Some(Tok::Redir(op, w)) => {
                    redirs.push((op.clone(), w.clone()));
                    self.i += 1;
                }
                Some(Tok::Heredoc) => {
                    heredoc = true;
                    self.i += 1;
                }
                Some(Tok::Op("(")) if words.len() == 1 => {
                    // A function definition: NAME () BODY.
                    self.i += 1;
                    if self.peek_op() != Some(")") {
                        return self.err("a function definition without `()`");
                    }
                    self.i += 1;
                    self.skip_newlines();
                    let name = literal(&words[0]).map(str::to_string);
                    let Some(name) = name else {
                        return self.err("a function with an unusual name");
                    };
                    let body = match self.command(&[])? {
                        Cmd::Group(b) => b,
                        _ => return self.err("a function whose body is not `{ ... }`"),
                    };
                    return Ok(Cmd::Func { name, body });
                }
                _ => break,
            }
        }
        if words.is_empty() && redirs.is_empty() {
            return self.err("an empty command");
        }
        Ok(Cmd::Simple {
            words,
            redirs,
            heredoc,
            line,
        })
    }
}

// ---- evaluation -----------------------------------------------------------

/// A condition's outcome: known true, known false, or not decidable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    T,
    F,
    U,
}

impl St {
    fn not(self) -> St {
        match self {
            St::T => St::F,
            St::F => St::T,
            St::U => St::U,
        }
    }
    fn of(b: bool) -> St {
        if b {
            St::T
        } else {
            St::F
        }
    }
}

/// Why evaluation stops early.
enum Flow {
    Exit,
    Return,
    Limit,
}

struct Eval<'a> {
    ctx: &'a Context<'a>,
    /// `None`: assigned where the reader could not follow.
    vars: BTreeMap<String, Option<String>>,
    funcs: BTreeMap<String, List>,
    pos: Vec<String>,
    steps: Vec<Step>,
    /// Set while reading code that runs only under a condition the reader
    /// cannot decide: effects found there are reported as skipped.
    doubt: Option<String>,
    count: usize,
    depth: usize,
}

fn words_text(words: &[Word]) -> String {
    words.iter().map(word_text).collect::<Vec<_>>().join(" ")
}

fn word_text(w: &Word) -> String {
    w.iter()
        .map(|p| match p {
            Part::Lit { text, .. } => text.clone(),
            Part::Param { name, .. } => format!("${{{name}}}"),
            Part::Subst { text } => format!("$({text})"),
        })
        .collect()
}

/// Whether `s` matches the sh pattern `pat` (`*`, `?`, literal rest).
fn glob_match(pat: &[char], s: &[char]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|k| glob_match(rest, &s[k..])),
        Some(('?', rest)) => !s.is_empty() && glob_match(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob_match(rest, &s[1..]),
    }
}

impl Eval<'_> {
    fn push(&mut self, line: usize, action: Action) {
        let action = match (&self.doubt, action) {
            (Some(why), a @ (Action::AltInstall(_) | Action::AltRemove { .. }))
            | (Some(why), a @ (Action::AddUser(_) | Action::AddGroup { .. }))
            | (Some(why), a @ (Action::AddMember { .. } | Action::Sysusers { .. })) => {
                Action::Skipped {
                    command: describe(&a),
                    why: why.clone(),
                }
            }
            (Some(doubt), Action::Skipped { command, why }) => Action::Skipped {
                command,
                why: format!("{why}; {doubt}"),
            },
            (_, a) => a,
        };
        if !self
            .steps
            .iter()
            .any(|s| s.line == line && s.action == action)
        {
            self.steps.push(Step { line, action });
        }
    }

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

    /// The command substitutions whose output is known.
    fn subst(&self, text: &str) -> Option<String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["dpkg", "--print-architecture"] => self.ctx.native_arch.map(str::to_string),
            // Images stele makes are Linux images.
            ["uname"] | ["uname", "-s"] => Some(String::from("Linux")),
            _ => None,
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
                Part::Param { name, op, quoted } => {
                    let value = self.param(name, op.as_ref())?;
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
                Part::Subst { text } => {
                    cur.push_str(&self.subst(text)?);
                    have = true;
                }
            }
        }
        if have {
            fields.push(cur);
        }
        Some(fields)
    }

    fn param(&self, name: &str, op: Option<&(String, Word)>) -> Option<String> {
        let Some((op, arg)) = op else {
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
            _ => None,
        }
    }

    fn expand_all(&self, words: &[Word]) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for w in words {
            out.extend(self.expand(w)?);
        }
        Some(out)
    }

    fn tick(&mut self) -> Result<(), Flow> {
        self.count += 1;
        if self.count > MAX_STEPS {
            return Err(Flow::Limit);
        }
        Ok(())
    }

    fn list(&mut self, list: &List) -> Result<St, Flow> {
        let mut st = St::T;
        for ao in list {
            st = self.and_or(ao)?;
        }
        Ok(st)
    }

    fn and_or(&mut self, ao: &AndOr) -> Result<St, Flow> {
        let mut st = self.pipeline(&ao.first)?;
        for (and, p) in &ao.rest {
            match (st, and) {
                (St::F, true) | (St::T, false) => continue,
                (St::U, _) => {
                    // The rest runs or not: read it under doubt.
                    let saved = self.doubt.clone();
                    self.doubt.get_or_insert_with(|| {
                        String::from(
                            "runs only if a command the reader cannot follow succeeds or fails",
                        )
                    });
                    let s = self.pipeline(p)?;
                    self.doubt = saved;
                    st = if s == St::T && !and { St::T } else { St::U };
                }
                _ => st = self.pipeline(p)?,
            }
        }
        Ok(st)
    }

    fn pipeline(&mut self, p: &Pipeline) -> Result<St, Flow> {
        let mut st = St::T;
        for c in &p.cmds {
            st = self.cmd(c)?;
        }
        // A pipeline's status is its last command's.
        Ok(if p.bang { st.not() } else { st })
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
            Err(Flow::Limit) => Err(Flow::Limit),
        }
    }

    fn cmd(&mut self, cmd: &Cmd) -> Result<St, Flow> {
        self.tick()?;
        match cmd {
            Cmd::Simple {
                words,
                redirs,
                heredoc,
                line,
            } => self.simple(words, redirs, *heredoc, *line),
            Cmd::If { arms, otherwise } => {
                for (k, (cond, body)) in arms.iter().enumerate() {
                    let saved = self.doubt.clone();
                    let st = self.condition(cond)?;
                    self.doubt = saved;
                    match st {
                        St::T => return self.list(body),
                        St::F => continue,
                        St::U => {
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
                            return Ok(St::U);
                        }
                    }
                }
                match otherwise {
                    Some(o) => self.list(o),
                    None => Ok(St::T),
                }
            }
            Cmd::For {
                var,
                words,
                body,
                line,
            } => match self.expand_all(words) {
                Some(items) => {
                    let mut st = St::T;
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
                    Ok(St::U)
                }
            },
            Cmd::Loop { body, line } => {
                let why = format!(
                    "in a `while`/`until` loop (line {line}), which the reader does not follow"
                );
                self.doubtful(why, body)?;
                Ok(St::U)
            }
            Cmd::Case { word, arms, line } => {
                let Some(value) = self.expand(word).map(|f| f.join(" ")) else {
                    let why =
                        format!("in a `case` on a word the reader cannot expand (line {line})");
                    for (_, body) in arms {
                        self.doubtful(why.clone(), body)?;
                    }
                    return Ok(St::U);
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
                                            return Ok(St::U);
                                        }
                                    }
                                }
                            }
                        }
                        if glob_match(&p, &v) {
                            return self.list(body);
                        }
                    }
                }
                Ok(St::T)
            }
            Cmd::Func { name, body } => {
                self.funcs.insert(name.clone(), body.clone());
                Ok(St::T)
            }
            Cmd::Group(body) => self.list(body),
        }
    }

    /// An `if`'s condition: commands there are probes, not effects.
    fn condition(&mut self, cond: &List) -> Result<St, Flow> {
        let saved = self.steps.len();
        let st = self.list(cond)?;
        // What a condition runs is a probe, not an effect: probes the
        // reader cannot follow make the condition undecided, which the
        // branches report.
        let mut k = saved;
        while k < self.steps.len() {
            if matches!(self.steps[k].action, Action::Skipped { .. }) {
                self.steps.remove(k);
            } else {
                k += 1;
            }
        }
        Ok(st)
    }

    fn simple(
        &mut self,
        words: &[Word],
        redirs: &[(String, Word)],
        heredoc: bool,
        line: usize,
    ) -> Result<St, Flow> {
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
            assigns.push((name.to_string(), value));
            k += 1;
        }
        let words = &words[k..];
        if words.is_empty() {
            for (name, value) in assigns {
                let value = if self.doubt.is_some() { None } else { value };
                self.vars.insert(name, value);
            }
            return Ok(St::T);
        }
        let text = words_text(words);
        let Some(argv) = self.expand_all(words) else {
            self.push(
                line,
                Action::Skipped {
                    command: text,
                    why: String::from("its words cannot be expanded without running something"),
                },
            );
            return Ok(St::U);
        };
        if argv.is_empty() {
            return Ok(St::T);
        }
        // A redirection into a file is a file change the reader does not make.
        for (op, target) in redirs {
            let t = self.expand(target).map(|f| f.join(" "));
            let harmless =
                op.ends_with('&') || op.starts_with('<') || t.as_deref() == Some("/dev/null");
            if !harmless {
                self.push(
                    line,
                    Action::Skipped {
                        command: text,
                        why: format!(
                            "writes {}",
                            t.unwrap_or_else(|| String::from("a file named at run time"))
                        ),
                    },
                );
                return Ok(St::U);
            }
        }
        if heredoc {
            self.push(
                line,
                Action::Skipped {
                    command: text,
                    why: String::from("reads a here-document"),
                },
            );
            return Ok(St::U);
        }
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        if let Some(body) = self.funcs.get(args[0]).cloned() {
            if self.depth >= MAX_DEPTH {
                return Err(Flow::Limit);
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
                Err(Flow::Return) => Ok(St::T),
                Err(e) => Err(e),
            };
        }
        self.command(&args, line)
    }

    fn command(&mut self, args: &[&str], line: usize) -> Result<St, Flow> {
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
            "true" | ":" => Ok(St::T),
            "false" => Ok(St::F),
            "set" | "echo" | "printf" | "export" | "local" | "readonly" | "shift" | "trap"
            | "umask" | "cd" | "sleep" => {
                if args[0] == "shift" && self.doubt.is_none() && !self.pos.is_empty() {
                    self.pos.remove(0);
                }
                Ok(St::T)
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
                Ok(St::T)
            }
            "exit" => {
                if self.doubt.is_some() {
                    Ok(St::U)
                } else {
                    Err(Flow::Exit)
                }
            }
            "return" => {
                if self.doubt.is_some() {
                    Ok(St::U)
                } else {
                    Err(Flow::Return)
                }
            }
            "[" | "test" => {
                let mut a: Vec<&str> = args[1..].to_vec();
                if args[0] == "[" {
                    if a.last() != Some(&"]") {
                        return Ok(St::U);
                    }
                    a.pop();
                }
                Ok(self.test(&a))
            }
            "dpkg" => match args {
                [_, "--compare-versions", a, op, b] => Ok(compare_versions(a, op, b)),
                [_, "--print-architecture"] => Ok(St::T),
                _ => {
                    self.push(line, skipped("a dpkg query the reader does not answer"));
                    Ok(St::U)
                }
            },
            "getent" if matches!(args.get(1), Some(&("passwd" | "group"))) && args.len() == 3 => {
                Ok(St::F)
            }
            "which" | "command" => {
                let name = match args {
                    ["which", n] => n,
                    ["command", "-v", n] => n,
                    _ => return Ok(St::U),
                };
                let found = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"]
                    .iter()
                    .any(|d| {
                        matches!(
                            (self.ctx.lookup)(&format!("{d}{name}")),
                            Some(Found::File { executable: true } | Found::Symlink)
                        )
                    });
                Ok(St::of(found))
            }
            "update-alternatives" => {
                match parse_update_alternatives(&args[1..]) {
                    Some(a) => self.push(line, a),
                    None => self.push(
                        line,
                        skipped("update-alternatives with options the reader does not follow"),
                    ),
                }
                Ok(St::T)
            }
            "adduser" | "useradd" | "addgroup" | "groupadd" => {
                match parse_account(args) {
                    Some(a) => self.push(line, a),
                    None => self.push(line, skipped("only system accounts (`--system`, `-r`) and groups with a given id, with literal names, are followed")),
                }
                Ok(St::T)
            }
            "systemd-sysusers" => {
                let files: Vec<&&str> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
                if files.is_empty() {
                    self.push(
                        line,
                        not_needed("every sysusers.d file is applied by stele"),
                    );
                }
                for f in files {
                    self.push(
                        line,
                        Action::Sysusers {
                            file: f.to_string(),
                        },
                    );
                }
                Ok(St::T)
            }
            "deb-systemd-helper" | "deb-systemd-invoke" | "systemctl" | "invoke-rc.d"
            | "update-rc.d" | "service" | "start-stop-daemon" | "initctl" => {
                if args.get(1) == Some(&"--quiet") && args.get(2) == Some(&"was-enabled") {
                    return Ok(St::U);
                }
                self.push(
                    line,
                    not_needed("service integration, not needed in an image"),
                );
                Ok(St::U)
            }
            "dpkg-maintscript-helper" => {
                self.push(
                    line,
                    not_needed(
                        "conffile and path moves for upgrades; nothing to do on a first install",
                    ),
                );
                Ok(St::T)
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
                self.push(
                    line,
                    not_needed("a cache the program rebuilds or does without"),
                );
                Ok(St::T)
            }
            "update-binfmts" => {
                self.push(
                    line,
                    not_needed("binfmt registration belongs to the host kernel"),
                );
                Ok(St::T)
            }
            "ldconfig" => {
                self.push(
                    line,
                    Action::Generated {
                        command: text.clone(),
                        what: "/etc/ld.so.cache, written by stele when libc-bin is installed",
                    },
                );
                Ok(St::T)
            }
            "update-ca-certificates" => {
                self.push(
                    line,
                    Action::Generated {
                        command: text.clone(),
                        what: "the CA bundle and its links in /etc/ssl/certs, written by stele from ca-certificates' files",
                    },
                );
                Ok(St::T)
            }
            "dpkg-trigger" => {
                self.push(line, skipped("dpkg triggers are not run"));
                Ok(St::T)
            }
            "." | "source" => {
                let why = if args.get(1) == Some(&"/usr/share/debconf/confmodule") {
                    "debconf: questions are not asked, defaults only"
                } else {
                    "sources another file"
                };
                self.push(line, skipped(why));
                Ok(St::U)
            }
            "db_get"
            | "db_set"
            | "db_input"
            | "db_go"
            | "db_stop"
            | "db_fset"
            | "db_fget"
            | "db_purge"
            | "db_reset"
            | "db_register"
            | "db_unregister"
            | "db_subst"
            | "db_version"
            | "db_capb"
            | "db_title"
            | "db_x_loadtemplatefile" => {
                self.push(
                    line,
                    skipped("debconf: questions are not asked, defaults only"),
                );
                Ok(St::U)
            }
            "mkdir" | "touch" | "chmod" | "chown" | "chgrp" | "rm" | "rmdir" | "ln" | "mv"
            | "cp" | "sed" | "install" | "mknod" | "setcap" | "dpkg-statoverride" => {
                self.push(
                    line,
                    skipped(&format!(
                        "changes files with `{}`, which the reader does not reproduce",
                        args[0]
                    )),
                );
                Ok(St::U)
            }
            other => {
                self.push(
                    line,
                    Action::Skipped {
                        command: text.clone(),
                        why: format!("a command the reader does not know (`{other}`)"),
                    },
                );
                Ok(St::U)
            }
        }
    }

    /// `test`'s arguments, where the reader can decide them.
    fn test(&self, a: &[&str]) -> St {
        match a {
            [] => St::F,
            ["!", rest @ ..] => self.test(rest).not(),
            [s] => St::of(!s.is_empty()),
            ["-z", s] => St::of(s.is_empty()),
            ["-n", s] => St::of(!s.is_empty()),
            [op, path] if op.len() == 2 && op.starts_with('-') => {
                if !path.starts_with('/') {
                    return St::U;
                }
                let found = (self.ctx.lookup)(path);
                match (*op, found) {
                    ("-L" | "-h", f) => St::of(f == Some(Found::Symlink)),
                    (_, Some(Found::Symlink)) => St::U,
                    ("-e" | "-r", f) => St::of(f.is_some()),
                    ("-f" | "-s", f) => St::of(matches!(f, Some(Found::File { .. }))),
                    ("-d", f) => St::of(f == Some(Found::Dir)),
                    ("-x", f) => St::of(matches!(
                        f,
                        Some(Found::File { executable: true }) | Some(Found::Dir)
                    )),
                    _ => St::U,
                }
            }
            [x, "=" | "==", y] => St::of(x == y),
            [x, "!=", y] => St::of(x != y),
            [x, op, y] if op.starts_with('-') => {
                let (Ok(x), Ok(y)) = (x.parse::<i64>(), y.parse::<i64>()) else {
                    return St::U;
                };
                match *op {
                    "-eq" => St::of(x == y),
                    "-ne" => St::of(x != y),
                    "-gt" => St::of(x > y),
                    "-ge" => St::of(x >= y),
                    "-lt" => St::of(x < y),
                    "-le" => St::of(x <= y),
                    _ => St::U,
                }
            }
            _ => St::U,
        }
    }
}

/// `dpkg --compare-versions A OP B`: an empty version is earlier than any
/// other, except for the `-nl` operators, where it is later.
fn compare_versions(a: &str, op: &str, b: &str) -> St {
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
        (false, false) => crate::apt::version::compare(a, b),
    };
    match op {
        "lt" | "<<" => St::of(ord == Less),
        "le" | "<=" | "<" => St::of(ord != Greater),
        "eq" | "=" => St::of(ord == Equal),
        "ne" => St::of(ord != Equal),
        "ge" | ">=" | ">" => St::of(ord != Less),
        "gt" | ">>" => St::of(ord == Greater),
        _ => St::U,
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
            Cmd::Func { .. } => None,
        }
    }
    cond.first()
        .and_then(|ao| ao.first.cmds.first())
        .and_then(cmd_line)
        .unwrap_or(0)
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
        Action::Generated { command, .. }
        | Action::NotNeeded { command, .. }
        | Action::Skipped { command, .. } => command.clone(),
    }
}

fn parse_update_alternatives(args: &[&str]) -> Option<Action> {
    let mut it = args
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "--quiet" | "--force"));
    match it.next()? {
        "--install" => {
            let link = it.next()?.to_string();
            let name = it.next()?.to_string();
            let path = it.next()?.to_string();
            let priority = it.next()?.parse().ok()?;
            let mut slaves = Vec::new();
            while let Some(opt) = it.next() {
                if opt != "--slave" {
                    return None;
                }
                slaves.push((
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                ));
            }
            let abs = |p: &str| p.starts_with('/');
            if !abs(&link) || !abs(&path) || slaves.iter().any(|(l, _, p)| !abs(l) || !abs(p)) {
                return None;
            }
            Some(Action::AltInstall(AltInstall {
                link,
                name,
                path,
                priority,
                slaves,
            }))
        }
        "--remove" => {
            let name = it.next()?.to_string();
            let path = it.next()?.to_string();
            it.next()
                .is_none()
                .then_some(Action::AltRemove { name, path })
        }
        _ => None,
    }
}

/// `adduser --system`, `addgroup --system`, `useradd -r`, `groupadd -r`
/// and `adduser USER GROUP`, with literal names.
fn parse_account(args: &[&str]) -> Option<Action> {
    let valid = |n: &str| {
        !n.is_empty()
            && n.len() <= 32
            && !n.starts_with('-')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.$".contains(c))
    };
    let tool = args[0];
    let mut system = false;
    let mut user = AddUser {
        create_home: true,
        ..AddUser::default()
    };
    let mut group_only = matches!(tool, "addgroup" | "groupadd");
    let mut names = Vec::new();
    let mut it = args[1..].iter().copied();
    while let Some(a) = it.next() {
        match a {
            "--system" | "-r" => system = true,
            "--group" if tool == "adduser" => user.own_group = true,
            "--group" if tool == "addgroup" => group_only = true,
            "-U" | "--user-group" => user.own_group = true,
            "--quiet"
            | "-q"
            | "--disabled-password"
            | "--disabled-login"
            | "--force-badname"
            | "--allow-bad-names"
            | "--no-log-init"
            | "-l"
            | "--debug"
            | "--allow-badname" => {}
            "--no-create-home" | "-M" => user.create_home = false,
            "--create-home" | "-m" => user.create_home = true,
            "--home" | "-d" => user.home = Some(it.next()?.to_string()),
            "--shell" | "-s" => user.shell = Some(it.next()?.to_string()),
            "--gecos" | "--comment" | "-c" => user.gecos = it.next()?.to_string(),
            "--uid" | "-u" => user.uid = Some(it.next()?.parse().ok()?),
            "--gid" | "-g" => {
                let g = it.next()?;
                match g.parse() {
                    Ok(n) => user.gid = Some(n),
                    Err(_) => user.group = Some(g.to_string()),
                }
            }
            "--ingroup" => user.group = Some(it.next()?.to_string()),
            n if !n.starts_with('-') => names.push(n),
            _ => return None,
        }
    }
    match (tool, names.as_slice()) {
        ("adduser", [u, g]) if !system && valid(u) && valid(g) => Some(Action::AddMember {
            user: u.to_string(),
            group: g.to_string(),
        }),
        (_, [n]) if (system || user.uid.or(user.gid).is_some()) && valid(n) && group_only => {
            Some(Action::AddGroup {
                name: n.to_string(),
                gid: user.uid.or(user.gid),
            })
        }
        (_, [n]) if system && valid(n) => {
            user.name = n.to_string();
            if tool == "useradd" {
                // useradd names /home/NAME but makes it only when told (-m).
                user.create_home = args.contains(&"-m") || args.contains(&"--create-home");
                if user.home.is_none() {
                    user.home = Some(format!("/home/{n}"));
                }
            }
            Some(Action::AddUser(user))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
