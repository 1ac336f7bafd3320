//! Python versions and version specifiers as PEP 440 orders and matches
//! them (the "Version specifiers" specification): what `requires-python`
//! and the version comparisons of PEP 508 markers are judged by.

use std::cmp::Ordering;
use std::fmt;

/// A PEP 440 version, normalized (`1.0RC1` and `1.0rc1` are one version).
#[derive(Clone, Debug)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// `a` = 0, `b` = 1, `rc` = 2, and the number.
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    /// The local label's parts (`+ubuntu.1`), lowercased.
    local: Vec<String>,
}

impl Version {
    /// Parses `text` as PEP 440 allows it to be written (case-insensitive,
    /// an optional `v`, `.`/`-`/`_` between parts, `alpha`/`c`/`rev`
    /// spellings); `None` when it is not a version.
    pub fn parse(text: &str) -> Option<Version> {
        let lower = text.trim().to_ascii_lowercase();
        let mut s = lower.strip_prefix('v').unwrap_or(&lower);
        let (public, local) = match s.split_once('+') {
            Some((p, l)) => (p, Some(l)),
            None => (s, None),
        };
        s = public;
        let mut epoch = 0;
        if let Some((e, rest)) = s.split_once('!') {
            epoch = e.parse().ok()?;
            s = rest;
        }
        let digits = s.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.');
        let release_len = digits.count();
        let release_text = s[..release_len].trim_end_matches('.');
        let mut rest = &s[release_text.len()..];
        let release: Vec<u64> = release_text
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if release.is_empty() {
            return None;
        }
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        loop {
            if rest.is_empty() {
                break;
            }
            let sep_less = rest.strip_prefix(['.', '-', '_']).unwrap_or(rest);
            let word_len = sep_less
                .bytes()
                .take_while(|b| b.is_ascii_alphabetic())
                .count();
            let word = &sep_less[..word_len];
            let after = &sep_less[word_len..];
            let after_sep = after.strip_prefix(['.', '-', '_']).unwrap_or(after);
            let num_len = after_sep.bytes().take_while(u8::is_ascii_digit).count();
            let number = after_sep[..num_len].parse::<u64>().ok();
            let consumed_to = if num_len > 0 {
                &after_sep[num_len..]
            } else {
                after
            };
            let kind = match word {
                "a" | "alpha" => Some(0),
                "b" | "beta" => Some(1),
                "c" | "rc" | "pre" | "preview" => Some(2),
                _ => None,
            };
            if let Some(k) = kind {
                if pre.is_some() || post.is_some() || dev.is_some() {
                    return None;
                }
                pre = Some((k, number.unwrap_or(0)));
            } else if matches!(word, "post" | "rev" | "r") {
                if post.is_some() || dev.is_some() {
                    return None;
                }
                post = Some(number.unwrap_or(0));
            } else if word == "dev" {
                if dev.is_some() {
                    return None;
                }
                dev = Some(number.unwrap_or(0));
            } else if word.is_empty() && rest.starts_with('-') && num_len > 0 && post.is_none() {
                // `1.0-1`: the implicit post-release.
                post = number;
            } else {
                return None;
            }
            rest = consumed_to;
        }
        let local = match local {
            Some("") => return None,
            Some(l) => l.split(['.', '-', '_']).map(str::to_string).collect(),
            None => Vec::new(),
        };
        if local
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return None;
        }
        Some(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    pub fn release(&self) -> &[u64] {
        &self.release
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn without_local(&self) -> Version {
        Version {
            local: Vec::new(),
            ..self.clone()
        }
    }

    /// The comparison key of everything but the release, as PEP 440
    /// orders it: a dev release of a final version before its
    /// pre-releases, a final release after them, post-releases after it.
    fn suffix_key(&self) -> (i8, u64, i8, u64, i8, u64) {
        let (pre_rank, pre_n) = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0),
            (None, _, _) => (3, 0),
            (Some((k, n)), _, _) => (k as i8, n),
        };
        let (post_rank, post_n) = self.post.map_or((-1, 0), |n| (0, n));
        let (dev_rank, dev_n) = self.dev.map_or((1, 0), |n| (0, n));
        (pre_rank, pre_n, post_rank, post_n, dev_rank, dev_n)
    }
}

fn cmp_release(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

fn cmp_local(a: &[String], b: &[String]) -> Ordering {
    // Numeric parts sort after alphanumeric ones, and by value.
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| cmp_release(&self.release, &other.release))
            .then_with(|| self.suffix_key().cmp(&other.suffix_key()))
            .then_with(|| cmp_local(&self.local, &other.local))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        let release: Vec<String> = self.release.iter().map(u64::to_string).collect();
        f.write_str(&release.join("."))?;
        if let Some((k, n)) = self.pre {
            write!(f, "{}{n}", ["a", "b", "rc"][k as usize])?;
        }
        if let Some(n) = self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = self.dev {
            write!(f, ".dev{n}")?;
        }
        if !self.local.is_empty() {
            write!(f, "+{}", self.local.join("."))?;
        }
        Ok(())
    }
}

/// One clause of a specifier set: `>=3.8`, `==2.*`, `~=1.4.2`.
#[derive(Clone, Debug)]
pub struct Specifier {
    op: Op,
    version: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Compatible,
    Equal,
    NotEqual,
    LessEqual,
    GreaterEqual,
    Less,
    Greater,
    Arbitrary,
}

impl Op {
    pub(crate) fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "~=" => Op::Compatible,
            "==" => Op::Equal,
            "!=" => Op::NotEqual,
            "<=" => Op::LessEqual,
            ">=" => Op::GreaterEqual,
            "<" => Op::Less,
            ">" => Op::Greater,
            "===" => Op::Arbitrary,
            _ => return None,
        })
    }
}

impl Specifier {
    pub(crate) fn new(op: Op, version: &str) -> Specifier {
        Specifier {
            op,
            version: version.trim().to_string(),
        }
    }

    /// Whether `candidate` satisfies this clause; `None` when either side
    /// is not a version the operator can compare (the caller falls back
    /// to comparing strings, as PEP 508 says).
    pub fn contains(&self, candidate: &str) -> Option<bool> {
        if self.op == Op::Arbitrary {
            return Some(candidate.trim().eq_ignore_ascii_case(&self.version));
        }
        let c = Version::parse(candidate)?;
        if let Some(prefix) = self.version.strip_suffix(".*") {
            let p = Version::parse(prefix)?;
            let matches = {
                let c = c.without_local();
                let n = p.release.len();
                let mut head = c.release.clone();
                head.resize(head.len().max(n), 0);
                c.epoch == p.epoch && head[..n] == p.release[..]
            };
            return match self.op {
                Op::Equal => Some(matches),
                Op::NotEqual => Some(!matches),
                _ => None,
            };
        }
        let v = Version::parse(&self.version)?;
        // A specifier without a local label ignores the candidate's.
        let c_cmp = if v.local.is_empty() {
            c.without_local()
        } else {
            c.clone()
        };
        Some(match self.op {
            Op::Equal => c_cmp == v,
            Op::NotEqual => c_cmp != v,
            Op::LessEqual => c_cmp <= v,
            Op::GreaterEqual => c_cmp >= v,
            // `<V` excludes V's own pre-releases unless V is one.
            Op::Less => {
                c_cmp < v
                    && !(!v.is_prerelease()
                        && c.is_prerelease()
                        && cmp_release(&c.release, &v.release) == Ordering::Equal
                        && c.epoch == v.epoch)
            }
            // `>V` excludes V's post-releases unless V is one.
            Op::Greater => {
                c_cmp > v
                    && !(v.post.is_none()
                        && c.post.is_some()
                        && cmp_release(&c.release, &v.release) == Ordering::Equal
                        && c.epoch == v.epoch)
            }
            Op::Compatible => {
                if v.release.len() < 2 {
                    return None;
                }
                let prefix = &v.release[..v.release.len() - 1];
                let mut head = c.release.clone();
                head.resize(head.len().max(prefix.len()), 0);
                c_cmp >= v && head[..prefix.len()] == *prefix && c.epoch == v.epoch
            }
            Op::Arbitrary => unreachable!("handled above"),
        })
    }
}

impl fmt::Display for Specifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Compatible => "~=",
            Op::Equal => "==",
            Op::NotEqual => "!=",
            Op::LessEqual => "<=",
            Op::GreaterEqual => ">=",
            Op::Less => "<",
            Op::Greater => ">",
            Op::Arbitrary => "===",
        };
        write!(f, "{op}{}", self.version)
    }
}

/// A comma-separated specifier set (`>=3.8,!=3.9.*`): every clause must
/// hold.
#[derive(Clone, Debug)]
pub struct SpecifierSet(Vec<Specifier>);

impl SpecifierSet {
    /// `None` when a clause is not `OP VERSION`.
    pub fn parse(text: &str) -> Option<SpecifierSet> {
        let mut clauses = Vec::new();
        for clause in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let op_len = clause.bytes().take_while(|b| b"~=!<>".contains(b)).count();
            let op = Op::parse(&clause[..op_len])?;
            let version = clause[op_len..].trim();
            if version.is_empty() {
                return None;
            }
            clauses.push(Specifier::new(op, version));
        }
        Some(SpecifierSet(clauses))
    }

    /// Whether `version` satisfies every clause (a clause that cannot
    /// compare it does not hold).
    pub fn contains(&self, version: &str) -> bool {
        self.0.iter().all(|s| s.contains(version) == Some(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn orders_as_pep_440_does() {
        let ordered = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.1.dev1",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0"), v("1.0.0"));
        assert_eq!(v("1.0RC1"), v("1.0rc1"));
        assert_eq!(v("1.0-1"), v("1.0.post1"));
        assert_eq!(v("v2.0-alpha.3").to_string(), "2.0a3");
        for bad in ["", "abc", "1.0+", "1.0 x", "1..0x"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn specifiers_match_as_pip_does() {
        let set = |s: &str| SpecifierSet::parse(s).unwrap();
        assert!(set(">=3.8").contains("3.11.2"));
        assert!(!set(">=3.12").contains("3.11.2"));
        assert!(set(">=3.8,!=3.9.*").contains("3.11"));
        assert!(!set(">=3.8,!=3.11.*").contains("3.11.2"));
        assert!(set("~=3.1").contains("3.11"));
        assert!(!set("~=3.1.0").contains("3.2"));
        assert!(set("==3.11.*").contains("3.11.2"));
        assert!(!set("<3.11").contains("3.11.0rc1"));
        assert!(set("<3.11").contains("3.10.9"));
        assert!(!set(">3.11").contains("3.11.post1"));
        assert!(set("==1.0").contains("1.0+local"));
        assert!(SpecifierSet::parse(">=").is_none());
        assert!(SpecifierSet::parse("=>3").is_none());
    }
}
