//! `*` and `?` matching, as sh's `case` and glob(3) do it for patterns
//! without bracket classes, in time bounded by the pattern's length times
//! the name's, whatever the pattern: a recursive matcher backtracks
//! exponentially on `*a*a*a…b` (the pattern of a hostile package).

/// The most work one match may cost (pattern length × name length); a
/// larger match is not decided.
pub(crate) const MAX_MATCH_WORK: usize = 1 << 22;

/// Whether `name` matches `pattern`, where `star` matches any run and
/// `any` one item; `None` when the match would cost more than
/// `MAX_MATCH_WORK`.
pub(crate) fn matches<T: Copy + Eq>(pattern: &[T], name: &[T], star: T, any: T) -> Option<bool> {
    if pattern.len().saturating_mul(name.len()) > MAX_MATCH_WORK {
        return None;
    }
    // The greedy two-pointer walk: on a mismatch, go back to the last `*`
    // and let it take one more item. Each `*` only ever moves forward, so
    // the walk is at most pattern × name steps.
    let (mut p, mut n) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == star {
            resume = Some((p, n));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == any || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = resume {
            p = sp + 1;
            n = sn + 1;
            resume = Some((sp, sn + 1));
        } else {
            return Some(false);
        }
    }
    Some(pattern[p..].iter().all(|&c| c == star))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> Option<bool> {
        matches(p.as_bytes(), s.as_bytes(), b'*', b'?')
    }

    #[test]
    fn stars_and_questions() {
        assert_eq!(m("*", ""), Some(true));
        assert_eq!(m("a*c", "abbbc"), Some(true));
        assert_eq!(m("a*c", "abbbd"), Some(false));
        assert_eq!(m("?b*", "abzz"), Some(true));
        assert_eq!(m("*.conf", "x.conf"), Some(true));
        assert_eq!(m("*.conf", "x.conf.bak"), Some(false));
        assert_eq!(m("configure|abort-*", "configure"), Some(false));
        assert_eq!(m("a*b*c", "aXbYbZc"), Some(true));
        assert_eq!(m("", "a"), Some(false));
    }

    /// The pattern that makes a recursive matcher take minutes is decided
    /// at once; one too large to decide cheaply is not decided.
    #[test]
    fn a_backtracking_pattern_is_quick_and_a_huge_one_undecided() {
        let pattern = format!("{}b", "*a".repeat(30));
        let name = "a".repeat(60);
        assert_eq!(m(&pattern, &name), Some(false));
        let big = "*a".repeat(5000);
        assert_eq!(m(&big, &"a".repeat(5000)), None);
    }
}
