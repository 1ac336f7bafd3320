//! Tokens to commands: lists of and-or chains of pipelines of simple and
//! compound commands (`if`, `for`, `while`/`until`, `case`, groups,
//! subshells, function definitions), nested at most `MAX_DEPTH` deep.

use super::eval::MAX_DEPTH;
use super::lex::{Part, Tok, Token, Word};
use super::Syntax;

#[derive(Clone, Debug)]
pub(super) enum Cmd {
    Simple {
        words: Vec<Word>,
        redirs: Vec<(String, Word)>,
        /// The body of the here-document it reads, if any.
        heredoc: Option<Word>,
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
    /// A compound command whose output goes into files (`done >> FILE`):
    /// those redirections.
    Redirected {
        cmd: Box<Cmd>,
        redirs: Vec<(String, Word)>,
        line: usize,
    },
    Group(List),
}

#[derive(Clone, Debug)]
pub(super) struct Pipeline {
    pub bang: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Clone, Debug)]
pub(super) struct AndOr {
    pub first: Pipeline,
    /// `(true, p)` for `&& p`, `(false, p)` for `|| p`.
    pub rest: Vec<(bool, Pipeline)>,
}

pub(super) type List = Vec<AndOr>;

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    depth: usize,
}

/// The whole script as one list, every token used.
pub(super) fn parse(toks: &[Token]) -> Result<List, Syntax> {
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    let list = p.list(&[])?;
    if p.i < toks.len() {
        return Err((
            toks[p.i].line,
            String::from("a construct the reader does not follow"),
        ));
    }
    Ok(list)
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

    fn err<T>(&self, why: &str) -> Result<T, Syntax> {
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

    fn expect_word(&mut self, w: &str) -> Result<(), Syntax> {
        self.skip_newlines();
        if self.peek_word() == Some(w) {
            self.i += 1;
            Ok(())
        } else {
            self.err(&format!("expected `{w}`"))
        }
    }

    /// Commands until one of `stops` (a reserved word) or `;;`/`)` or the end.
    fn list(&mut self, stops: &[&str]) -> Result<List, Syntax> {
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

    fn and_or(&mut self, stops: &[&str]) -> Result<AndOr, Syntax> {
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

    fn pipeline(&mut self, stops: &[&str]) -> Result<Pipeline, Syntax> {
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

    fn command(&mut self, stops: &[&str]) -> Result<Cmd, Syntax> {
        if self.depth >= MAX_DEPTH {
            return self.err("commands nested too deeply");
        }
        self.depth += 1;
        let r = self.command_inner(stops);
        self.depth -= 1;
        r
    }

    fn command_inner(&mut self, stops: &[&str]) -> Result<Cmd, Syntax> {
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
                let redirs = self.redirs_after();
                Ok(redirected(Cmd::If { arms, otherwise }, redirs, line))
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
                let redirs = self.redirs_after();
                let cmd = Cmd::For {
                    var,
                    words,
                    body,
                    line,
                };
                Ok(redirected(cmd, redirs, line))
            }
            Some("while" | "until") => {
                self.i += 1;
                let mut body = self.list(&["do"])?;
                self.expect_word("do")?;
                body.extend(self.list(&["done"])?);
                self.expect_word("done")?;
                let redirs = self.redirs_after();
                Ok(redirected(Cmd::Loop { body, line }, redirs, line))
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
                let redirs = self.redirs_after();
                Ok(redirected(Cmd::Case { word, arms, line }, redirs, line))
            }
            Some("{") => {
                self.i += 1;
                let body = self.list(&["}"])?;
                self.expect_word("}")?;
                let redirs = self.redirs_after();
                Ok(redirected(Cmd::Group(body), redirs, line))
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
                    let redirs = self.redirs_after();
                    return Ok(redirected(Cmd::Group(body), redirs, line));
                }
                self.simple(line)
            }
        }
    }

    /// The redirections after a compound command.
    fn redirs_after(&mut self) -> Vec<(String, Word)> {
        let mut redirs = Vec::new();
        while let Some(Tok::Redir(op, w)) = self.toks.get(self.i).map(|t| &t.tok) {
            redirs.push((op.clone(), w.clone()));
            self.i += 1;
        }
        redirs
    }

    fn simple(&mut self, line: usize) -> Result<Cmd, Syntax> {
        let mut words = Vec::new();
        let mut redirs = Vec::new();
        let mut heredoc = None;
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
                Some(Tok::Heredoc(body)) => {
                    heredoc = Some(body.clone());
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

/// `cmd`, wrapped when its output goes somewhere: only a file's name
/// matters (the evaluator says it does not follow it).
fn redirected(cmd: Cmd, redirs: Vec<(String, Word)>, line: usize) -> Cmd {
    if redirs.is_empty() {
        return cmd;
    }
    Cmd::Redirected {
        cmd: Box::new(cmd),
        redirs,
        line,
    }
}
