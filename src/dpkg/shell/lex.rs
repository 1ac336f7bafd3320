//! Text to tokens: words (literal, quoted and expanded parts kept apart),
//! operators and redirections, with the line each starts on. A
//! here-document's body is kept as a word: expanded as sh does when its
//! delimiter is unquoted (parameters and substitutions, `\$`, `` \` ``,
//! `\\` and `\newline` escapes), literal when any part of the delimiter
//! is quoted, with leading tabs taken off each line for `<<-`.

use super::eval::MAX_DEPTH;
use super::Syntax;

/// A piece of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Part {
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
        /// Inside double quotes: not split into fields.
        quoted: bool,
    },
}

pub(super) type Word = Vec<Part>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Word(Word),
    /// `;` `;;` `&&` `||` `|` `&` `(` `)` newline (as "\n").
    Op(&'static str),
    /// A redirection operator (`>`, `2>&1`, ...) and its target.
    Redir(String, Word),
    /// A here-document: its body, each part quoted (no field splitting).
    Heredoc(Word),
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub tok: Tok,
    pub line: usize,
}

pub(super) fn lex(text: &str) -> Result<Vec<Token>, Syntax> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    // Each here-document met on a line: its delimiter, whether it is
    // `<<-`, whether it is quoted, and the index of its token.
    let mut pending_heredocs: Vec<(String, bool, bool, usize)> = Vec::new();
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
                for (delim, strip_tabs, quoted, at) in pending_heredocs.drain(..) {
                    let body_line = line;
                    let mut body = String::new();
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
                        body.push_str(l);
                        body.push('\n');
                    }
                    let word = if quoted {
                        vec![Part::Lit {
                            text: body,
                            quoted: true,
                        }]
                    } else {
                        heredoc_word(&body).map_err(|(l, why)| (body_line + l - 1, why))?
                    };
                    out[at].tok = Tok::Heredoc(word);
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
                    let quoted = word
                        .iter()
                        .any(|p| matches!(p, Part::Lit { quoted: true, .. }));
                    pending_heredocs.push((delim, op == "<<-", quoted, out.len()));
                    out.push(Token {
                        tok: Tok::Heredoc(Vec::new()),
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
fn lex_word(chars: &[char], mut i: usize) -> Result<(Word, usize, usize), Syntax> {
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
                            let (part, next, l) = lex_dollar(chars, i, true, 0)?;
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
                let (part, next, l) = lex_dollar(chars, i, false, 0)?;
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

/// The body of a here-document with an unquoted delimiter, as a word of
/// quoted parts: only `$`, `` ` `` and `\\` are special, as inside double
/// quotes, but `"` is an ordinary character.
fn heredoc_word(body: &str) -> Result<Word, Syntax> {
    let chars: Vec<char> = body.chars().collect();
    let mut parts = vec![Part::Lit {
        text: String::new(),
        quoted: true,
    }];
    let mut lines = 1;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                match chars.get(i + 1) {
                    Some('\n') => lines += 1,
                    Some(&n @ ('$' | '`' | '\\')) => push_lit(&mut parts, n, true),
                    Some(&n) => {
                        push_lit(&mut parts, '\\', true);
                        push_lit(&mut parts, n, true);
                    }
                    None => push_lit(&mut parts, '\\', true),
                }
                i += 2;
            }
            '$' | '`' => {
                let (part, next, l) =
                    lex_dollar(&chars, i, true, 0).map_err(|(_, why)| (lines, why))?;
                parts.push(part);
                lines += l;
                i = next;
            }
            c => {
                if c == '\n' {
                    lines += 1;
                }
                push_lit(&mut parts, c, true);
                i += 1;
            }
        }
    }
    Ok(parts)
}

pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `$NAME`, `${NAME...}`, `$1`, `$@`, `$(...)` or a backquote at `i`.
/// `depth` counts the `${…}` this one is inside: nesting is bounded, as
/// each level is lexed by recursion.
fn lex_dollar(
    chars: &[char],
    i: usize,
    quoted: bool,
    depth: usize,
) -> Result<(Part, usize, usize), Syntax> {
    if depth >= MAX_DEPTH {
        return Err((1, format!("expansions nested more than {MAX_DEPTH} deep")));
    }
    let closing = |open: char, close: char, from: usize| -> Result<usize, Syntax> {
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
        return Ok((Part::Subst { text, quoted }, end + 1, lines));
    }
    match chars.get(i + 1) {
        Some('(') => {
            let end = closing('(', ')', i + 2)?;
            let text: String = chars[i + 2..end].iter().collect();
            let lines = text.matches('\n').count();
            Ok((Part::Subst { text, quoted }, end + 1, lines))
        }
        Some('{') => {
            let end = closing('{', '}', i + 2)?;
            let inner: String = chars[i + 2..end].iter().collect();
            // `${#NAME}` keeps its `#` in the name; otherwise a name is
            // name characters or one special (`@`, `*`, `#`), and a `#`
            // or `%` after it is the prefix or suffix removal operator.
            let name_len = if inner.starts_with('#') && inner.len() > 1 {
                inner
                    .char_indices()
                    .find(|&(_, c)| !(is_name_char(c) || c == '#' || c == '@'))
                    .map_or(inner.len(), |(k, _)| k)
            } else if inner.starts_with(['@', '*', '#']) {
                1
            } else {
                inner
                    .char_indices()
                    .find(|&(_, c)| !is_name_char(c))
                    .map_or(inner.len(), |(k, _)| k)
            };
            let name = inner[..name_len].to_string();
            let rest = &inner[name_len..];
            let op = if rest.is_empty() {
                None
            } else {
                let op_len =
                    if rest.starts_with(':') || rest.starts_with("##") || rest.starts_with("%%") {
                        2
                    } else {
                        1
                    };
                let op: String = rest.chars().take(op_len).collect();
                let arg: Vec<char> = rest.chars().skip(op_len).collect();
                let (word, _, _) = lex_word_in_braces(&arg, depth + 1)?;
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
fn lex_word_in_braces(chars: &[char], depth: usize) -> Result<(Word, usize, usize), Syntax> {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '$' | '`' => {
                let (p, next, _) = lex_dollar(chars, i, false, depth)?;
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
                    let (mut w, _, _) = lex_word_in_braces(&inner, depth + 1)?;
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
