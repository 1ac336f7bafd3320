//! Debian version ordering, exactly as dpkg orders versions
//! (deb-version(7); `verrevcmp` in dpkg's lib/dpkg/version.c).
//!
//! A version is `[epoch:]upstream[-revision]`. Epochs compare numerically;
//! upstream and revision compare with the same rule: alternately a run of
//! non-digits, compared character by character where `~` sorts before
//! everything (even the end of the string), letters before non-letters, and
//! a run of digits compared numerically (so leading zeros do not count).
//! A missing revision equals `0`, so `1.0` and `1.0-0` are the same version.

use std::cmp::Ordering;
use std::fmt;

/// A parsed Debian version. Equality and ordering are dpkg's, not the
/// strings': `1.0`, `0:1.00` and `1.0-0` are equal.
#[derive(Clone, Debug)]
pub struct Version {
    /// The epoch's digits as written (`""` when there is none).
    pub epoch: String,
    pub upstream: String,
    /// The revision (`""` when there is none).
    pub revision: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{version}` is not a Debian version: {problem}; see deb-version(7) for the syntax")]
pub struct VersionError {
    pub version: String,
    pub problem: &'static str,
}

impl Version {
    /// Parses `text` as dpkg does, refusing what dpkg refuses outright
    /// (empty parts, embedded spaces, a non-numeric epoch). Like dpkg it
    /// accepts, rather than rejects, an upstream part that does not start
    /// with a digit: real archives carry a few.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let error = |problem| VersionError {
            version: text.to_string(),
            problem,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(error("it is empty"));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(error("it contains whitespace"));
        }
        let version = Version::split(trimmed);
        if trimmed.contains(':')
            && (version.epoch.is_empty() || !version.epoch.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(error("the epoch (before `:`) is not a number"));
        }
        if version.upstream.is_empty() {
            return Err(error("the upstream version is empty"));
        }
        if trimmed.contains('-') && version.revision.is_empty() {
            return Err(error("the revision (after the last `-`) is empty"));
        }
        Ok(version)
    }

    /// Splits without validation: the epoch is what precedes the first `:`
    /// when that is all digits, the revision what follows the last `-`.
    /// Total, so `compare` orders any two strings.
    fn split(text: &str) -> Version {
        let text = text.trim();
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) if e.bytes().all(|b| b.is_ascii_digit()) => (e, rest),
            _ => ("", text),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        Version {
            epoch: epoch.to_string(),
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.epoch.is_empty() {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        compare_numbers(self.epoch.as_bytes(), other.epoch.as_bytes())
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// Orders two version strings as `dpkg --compare-versions` does. Strings
/// that are not valid versions are still ordered (see `Version::split`).
pub fn compare(a: &str, b: &str) -> Ordering {
    Version::split(a).cmp(&Version::split(b))
}

/// A character's weight in a non-digit run; 0 stands for a digit or the
/// end of the string, which therefore sort after `~` and before the rest.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// Numeric comparison of two digit strings of any length.
fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's `verrevcmp` on an upstream or revision part.
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let is_digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !is_digit(a, i)) || (j < b.len() && !is_digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        let start_a = i;
        while is_digit(a, i) {
            i += 1;
        }
        let start_b = j;
        while is_digit(b, j) {
            j += 1;
        }
        let order = compare_numbers(&a[start_a..i], &b[start_b..j]);
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn table_of_pairs() {
        use Ordering::{Equal as Eq, Greater as Gt, Less as Lt};
        let table: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", Eq),
            ("1.0", "1.1", Lt),
            ("1.10", "1.9", Gt),
            ("1.0", "1.00", Eq),
            ("1.001", "1.1", Eq),
            ("007", "7", Eq),
            ("1.0", "1.0-0", Eq),
            ("1.0-1", "1.0", Gt),
            ("1.0-1", "1.0-2", Lt),
            ("1.0-10", "1.0-9", Gt),
            ("1.0-1", "1.0-1.1", Lt),
            ("1:1.0", "2.0", Gt),
            ("0:1.0", "1.0", Eq),
            ("00:1.0", "1.0", Eq),
            ("1:0.1", "1:0.2", Lt),
            ("2:1.0", "10:0.1", Lt),
            ("1.0~rc1", "1.0", Lt),
            ("1.0~rc1", "1.0~rc2", Lt),
            ("1.0~~", "1.0~", Lt),
            ("1.0~~a", "1.0~~", Gt),
            ("1.0~", "1.0", Lt),
            ("1.0~beta", "1.0~alpha", Gt),
            ("1.0-1~bpo1", "1.0-1", Lt),
            ("1.0+1", "1.0", Gt),
            ("1.0+dfsg", "1.0", Gt),
            ("1.0+b1", "1.0.1", Lt),
            ("1.0.1", "1.0+1", Gt),
            ("1.0a", "1.0", Gt),
            ("1.0a", "1.0+", Lt),
            ("1.0a", "1.0.", Lt),
            ("1.0A", "1.0a", Lt),
            ("1.0z", "1.0.", Lt),
            ("1.0", "1.0.0", Lt),
            ("1.2.3-1+deb12u1", "1.2.3-1", Gt),
            ("1.2.3-1+deb12u1", "1.2.3-1+deb12u2", Lt),
            ("1.2.3-1+deb12u10", "1.2.3-1+deb12u9", Gt),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Lt),
            ("1.2-3-4", "1.2-3", Gt),
            ("1-2-3", "1-2-3", Eq),
            ("3.0.11-1~deb12u2", "3.0.11-1", Lt),
            ("99999999999999999999", "99999999999999999998", Gt),
            ("1:99999999999999999999", "2:0", Lt),
        ];
        for &(a, b, want) in table {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parse_splits_and_refuses_what_dpkg_refuses() {
        let v = Version::parse("2:1.2-3-4").unwrap();
        assert_eq!(
            (v.epoch.as_str(), v.upstream.as_str(), v.revision.as_str()),
            ("2", "1.2-3", "4")
        );
        assert_eq!(v.to_string(), "2:1.2-3-4");
        let v = Version::parse(" 1.0 ").unwrap();
        assert_eq!(
            (v.epoch.as_str(), v.upstream.as_str(), v.revision.as_str()),
            ("", "1.0", "")
        );
        for bad in ["", "  ", "1.0 1", "a:1.0", ":1.0", "1:", "1.0-", "-1"] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let e = Version::parse("x:1").unwrap_err().to_string();
        assert!(e.contains("`x:1`") && e.contains("epoch"), "{e}");
        assert_eq!(
            Version::parse("1.0").unwrap(),
            Version::parse("0:1.00-0").unwrap()
        );
        assert!(Version::parse("1.0~rc1").unwrap() < Version::parse("1.0").unwrap());
    }

    /// A small deterministic generator, so failures reproduce.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    const PIECES: &[&str] = &[
        "0", "00", "1", "01", "2", "9", "10", "a", "b", "Z", "~", "~~", "+", ".", "rc", "dfsg",
        "+b", "~rc",
    ];

    fn random_part(rng: &mut XorShift, first_digit: bool) -> String {
        let mut s = String::new();
        if first_digit {
            s.push_str(rng.pick(&["0", "1", "2", "10", "007"]));
        }
        for _ in 0..rng.next() % 5 {
            s.push_str(rng.pick(PIECES));
        }
        if s.is_empty() {
            s.push('0');
        }
        s
    }

    fn random_version(rng: &mut XorShift) -> String {
        let mut v = String::new();
        if rng.next() % 4 == 0 {
            v.push_str(rng.pick(&["0:", "1:", "2:", "01:"]));
        }
        v.push_str(&random_part(rng, true));
        if rng.next() % 2 == 0 {
            if rng.next() % 5 == 0 {
                v.push_str("-1"); // a hyphen inside upstream
            }
            v.push('-');
            v.push_str(&random_part(rng, false));
        }
        v
    }

    /// A version near `v`, so the pair exercises the interesting rules
    /// rather than differing in the first character.
    fn mutate(rng: &mut XorShift, v: &str) -> String {
        let mut s = v.to_string();
        match rng.next() % 4 {
            0 => s.push_str(rng.pick(PIECES)),
            1 => {
                let cut = (rng.next() % (s.len() as u64 + 1)) as usize;
                s.truncate(cut);
                s.push_str(rng.pick(&["1", "~", "+1", ".0", "a", "-1"]));
            }
            2 => s = random_version(rng),
            _ => {}
        }
        match Version::parse(&s) {
            Ok(_) if !s.ends_with(':') => s,
            _ => v.to_string(),
        }
    }

    fn dpkg(a: &str, op: &str, b: &str) -> bool {
        let out = Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .output()
            .expect("running dpkg");
        match out.status.code() {
            Some(0) => true,
            Some(1) => false,
            _ => panic!(
                "dpkg --compare-versions {a} {op} {b}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    #[test]
    fn agrees_with_dpkg_on_generated_pairs() {
        if Command::new("dpkg").arg("--version").output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "dpkg is required when CI=true"
            );
            eprintln!("skipping: dpkg is not installed");
            return;
        }
        let mut rng = XorShift(0x5eed_1e55_c0ff_ee11);
        let mut seen = [0usize; 3];
        for _ in 0..400 {
            let a = random_version(&mut rng);
            let b = mutate(&mut rng, &a);
            let ours = compare(&a, &b);
            let theirs = if dpkg(&a, "lt", &b) {
                Ordering::Less
            } else if dpkg(&a, "eq", &b) {
                Ordering::Equal
            } else {
                Ordering::Greater
            };
            assert_eq!(ours, theirs, "compare({a:?}, {b:?}) disagrees with dpkg");
            seen[(ours as i8 + 1) as usize] += 1;
        }
        // The generator must exercise every outcome, or the check is weak.
        assert!(seen.iter().all(|&n| n >= 20), "outcomes lt/eq/gt: {seen:?}");
    }
}
