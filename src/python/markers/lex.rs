//! Tokens of a marker: names, quoted strings, comparison operators,
//! `and`/`or`/`not`/`in`, parentheses.

use super::eval::MAX_MARKER_LEN;
use super::MarkerError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Token {
    /// A marker variable (`python_version`, `sys_platform`, …).
    Name(String),
    /// A quoted string, without its quotes.
    Str(String),
    /// `==`, `!=`, `<=`, `>=`, `<`, `>`, `~=`, `===`, `in`, `not in`.
    Op(String),
    And,
    Or,
    Open,
    Close,
}

pub(super) fn lex(marker: &str) -> Result<Vec<Token>, MarkerError> {
    let err = |message: String| MarkerError {
        marker: marker.to_string(),
        message,
    };
    if marker.len() > MAX_MARKER_LEN {
        return Err(err(format!(
            "longer than {MAX_MARKER_LEN} bytes; no lock needs a marker this long"
        )));
    }
    let bytes = marker.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b'\'' | b'"' => {
                let end = marker[i + 1..]
                    .find(b as char)
                    .ok_or_else(|| err(format!("the string at byte {i} is not closed")))?;
                tokens.push(Token::Str(marker[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'=' | b'!' | b'<' | b'>' | b'~' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|c| b"=!<>~".contains(c))
                    .count();
                let op = &marker[i..i + len];
                if !matches!(op, "==" | "!=" | "<=" | ">=" | "<" | ">" | "~=" | "===") {
                    return Err(err(format!("`{op}` is not a comparison")));
                }
                tokens.push(Token::Op(op.to_string()));
                i += len;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'.')
                    .count();
                let word = &marker[i..i + len];
                i += len;
                match word {
                    "and" => tokens.push(Token::And),
                    "or" => tokens.push(Token::Or),
                    "in" => tokens.push(Token::Op("in".into())),
                    "not" => {
                        // Only `not in` exists in markers.
                        let rest = marker[i..].trim_start();
                        if !rest.starts_with("in")
                            || rest[2..].starts_with(|c: char| c.is_ascii_alphanumeric())
                        {
                            return Err(err("`not` must be followed by `in`".into()));
                        }
                        i = marker.len() - rest.len() + 2;
                        tokens.push(Token::Op("not in".into()));
                    }
                    _ => tokens.push(Token::Name(word.to_string())),
                }
            }
            _ => {
                return Err(err(format!(
                    "unexpected `{}` at byte {i}",
                    marker[i..].chars().next().unwrap_or('?')
                )))
            }
        }
    }
    Ok(tokens)
}
