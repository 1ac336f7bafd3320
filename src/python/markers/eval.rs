//! A marker judged against one platform: the values PEP 508 defines, as
//! the image's interpreter would report them, and its comparison rules
//! (PEP 440 for versions, else Python's string comparisons).

use std::collections::BTreeSet;

use super::parse::{Expr, Value};
use crate::python::version::{Op, Specifier};

/// Markers are a line of a lock; anything longer is not one.
pub(super) const MAX_MARKER_LEN: usize = 8 << 10;
/// Parentheses nest at most this deep.
pub(super) const MAX_DEPTH: usize = 32;

/// The marker variables of one platform's interpreter.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `python_version` (`3.11`) and the others, by name.
    pub values: std::collections::BTreeMap<String, String>,
    /// `extras` (PEP 751): the extras asked for.
    pub extras: BTreeSet<String>,
    /// `dependency_groups` (PEP 751): the groups asked for.
    pub dependency_groups: BTreeSet<String>,
}

/// Names compare as PEP 503 normalizes them (extras and groups).
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Environment {
    pub(super) fn eval(&self, expr: &Expr) -> bool {
        match expr {
            Expr::And(a, b) => self.eval(a) && self.eval(b),
            Expr::Or(a, b) => self.eval(a) || self.eval(b),
            Expr::Compare(left, op, right) => self.compare(left, op, right),
        }
    }

    fn compare(&self, left: &Value, op: &str, right: &Value) -> bool {
        // Set-valued variables (PEP 751): only membership.
        if let Value::Variable(set) = right {
            let members = match set.as_str() {
                "extras" => Some(&self.extras),
                "dependency_groups" => Some(&self.dependency_groups),
                _ => None,
            };
            if let (Some(members), Value::Literal(item)) = (members, left) {
                let found = members.iter().any(|m| normalize(m) == normalize(item));
                return match op {
                    "in" => found,
                    "not in" => !found,
                    _ => false,
                };
            }
        }
        let value = |v: &Value| match v {
            Value::Literal(s) => s.clone(),
            Value::Variable(name) => self.values.get(name).cloned().unwrap_or_default(),
        };
        let (mut l, mut r) = (value(left), value(right));
        // `extra == "x"`: names compared normalized (PEP 685).
        let is_extra = |v: &Value| matches!(v, Value::Variable(n) if n == "extra");
        if is_extra(left) || is_extra(right) {
            if is_extra(left) && !self.extras.is_empty() {
                return self.extras.iter().any(|e| {
                    let mut env = self.clone();
                    env.values.insert("extra".into(), e.clone());
                    env.extras.clear();
                    env.compare(left, op, right)
                });
            }
            l = normalize(&l);
            r = normalize(&r);
        }
        match op {
            "in" => return r.contains(&l),
            "not in" => return !r.contains(&l),
            _ => {}
        }
        let parsed = Op::parse(op).expect("the lexer only makes comparisons");
        if let Some(answer) = Specifier::new(parsed, &r).contains(&l) {
            return answer;
        }
        match parsed {
            Op::Equal | Op::Arbitrary => l == r,
            Op::NotEqual => l != r,
            Op::Less => l < r,
            Op::LessEqual => l <= r,
            Op::Greater => l > r,
            Op::GreaterEqual => l >= r,
            // `~=` is only defined for versions.
            Op::Compatible => false,
        }
    }
}
