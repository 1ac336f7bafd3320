//! The grammar of PEP 508 markers: `or` of `and` of comparisons or
//! parenthesized markers; a comparison has a variable or a string on
//! each side.

use super::eval::{Environment, MAX_DEPTH};
use super::lex::{lex, Token};
use super::MarkerError;

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Value {
    Variable(String),
    Literal(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Expr {
    Compare(Value, String, Value),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// A parsed marker and its text (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    text: String,
    expr: Expr,
}

/// The variables PEP 508 and PEP 751 define; any other name is a typo
/// that would otherwise silently compare as a string.
const VARIABLES: [&str; 15] = [
    "os_name",
    "sys_platform",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_version",
    "python_full_version",
    "implementation_name",
    "implementation_version",
    "extra",
    "extras",
    "dependency_groups",
    // Old spellings some tools still write.
    "os.name",
];

impl Marker {
    pub fn parse(text: &str) -> Result<Marker, MarkerError> {
        let tokens = lex(text)?;
        let mut p = Parser {
            text,
            tokens: &tokens,
            at: 0,
        };
        let expr = p.or(0)?;
        if p.at != tokens.len() {
            return Err(p.err("text after the end of the marker"));
        }
        Ok(Marker {
            text: text.to_string(),
            expr,
        })
    }

    /// Whether the marker holds in `env`.
    pub fn holds(&self, env: &Environment) -> bool {
        env.eval(&self.expr)
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> MarkerError {
        MarkerError {
            marker: self.text.to_string(),
            message: message.to_string(),
        }
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }

    fn or(&mut self, depth: usize) -> Result<Expr, MarkerError> {
        let mut left = self.and(depth)?;
        while self.tokens.get(self.at) == Some(&Token::Or) {
            self.at += 1;
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, MarkerError> {
        let mut left = self.atom(depth)?;
        while self.tokens.get(self.at) == Some(&Token::And) {
            self.at += 1;
            let right = self.atom(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn atom(&mut self, depth: usize) -> Result<Expr, MarkerError> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_DEPTH} parentheses")));
        }
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or(depth + 1)?;
            if self.next() != Some(&Token::Close) {
                return Err(self.err("a `(` is not closed"));
            }
            return Ok(inner);
        }
        let left = self.value()?;
        let op = match self.next() {
            Some(Token::Op(op)) => op.clone(),
            _ => return Err(self.err("expected a comparison operator")),
        };
        let right = self.value()?;
        if matches!((&left, &right), (Value::Literal(_), Value::Literal(_))) {
            return Err(self.err("a comparison needs a marker variable on one side"));
        }
        Ok(Expr::Compare(left, op, right))
    }

    fn value(&mut self) -> Result<Value, MarkerError> {
        match self.next().cloned() {
            Some(Token::Str(s)) => Ok(Value::Literal(s)),
            Some(Token::Name(n)) if VARIABLES.contains(&n.as_str()) => {
                Ok(Value::Variable(n.replace('.', "_")))
            }
            Some(Token::Name(n)) => Err(self.err(&format!(
                "`{n}` is not a marker variable (PEP 508 names {})",
                VARIABLES[..14].join(", ")
            ))),
            _ => Err(self.err("expected a marker variable or a quoted string")),
        }
    }
}
