//! PEP 508 environment markers (the "Dependency specifiers"
//! specification), as PEP 751 locks use them on packages and
//! `environments`: `lex` splits a marker into tokens, `parse` builds the
//! expression, `eval` judges it against one platform's `Environment`.
//! Limits sit beside the evaluator.

mod eval;
mod lex;
mod parse;

pub use eval::Environment;
pub use parse::Marker;

/// Why a marker could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("marker `{marker}`: {message}")]
pub struct MarkerError {
    pub marker: String,
    pub message: String,
}

#[cfg(test)]
mod tests;
