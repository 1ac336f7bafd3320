//! RFC 3339 text for an epoch second, without reading any clock or zone:
//! every timestamp stele writes comes from the build's epoch (or, for a
//! lock's source dates, from the signed Release it read). And back: the
//! dates apt Release files and lockfiles carry.

/// `1970-01-01T00:00:00Z` form (UTC, no fraction) of `secs`.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since 1970 of an RFC 3339 date-time (`2024-05-01T12:00:00Z`,
/// a fraction and a `+hh:mm` offset allowed), as CI systems and
/// provenance write them; `None` for anything else or a time before 1970.
pub(crate) fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hh, mm, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // A day the month does not have (`02-30`) is no date.
    if civil_from_days(days_from_civil(y, m as u32, d as u32)) != (y, m as u32, d as u32) {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            let sign = if &rest[..1] == "-" { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, m as u32, d as u32) * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    u64::try_from(secs).ok()
}

/// `19700101T000000Z`: the form snapshot archives name a moment by.
pub(crate) fn compact(secs: u64) -> String {
    rfc3339(secs).replace(['-', ':'], "")
}

/// The seconds of a Release file's `Date` (RFC 2822 as Debian's archive
/// software writes it: `Sun, 09 Sep 2001 01:46:40 UTC`, the zone `UTC`,
/// `GMT`, `Z` or a `+hhmm` offset).
pub(crate) fn parse_rfc2822(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.split_once(',').map_or(text, |(_, rest)| rest).trim();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [day, month, year, time, zone] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS.iter().position(|m| month.eq_ignore_ascii_case(m))? as u32 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next().unwrap_or(Some(0))?);
    let offset: i64 = match zone {
        "UTC" | "GMT" | "Z" | "UT" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let hours: i64 = z[1..3].parse().ok()?;
            let minutes: i64 = z[3..5].parse().ok()?;
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let local = seconds(year.parse().ok()?, month, day.parse().ok()?, (h, m, s))?;
    u64::try_from(local as i64 - offset).ok()
}

/// Seconds since 1970 of a UTC civil time, when it is one.
fn seconds(y: i64, m: u32, d: u32, (h, min, s): (u32, u32, u32)) -> Option<u64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    u64::try_from(days * 86_400 + i64::from(h * 3600 + min * 60 + s)).ok()
}

// Howard Hinnant's civil-to-days algorithm, the inverse of the one below.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::compact(1_000_000_000), "20010909T014640Z");
    }

    #[test]
    fn dates_read_back() {
        for secs in [0, 951_782_400, 1_000_000_000, 1_700_000_000, 4_102_444_799] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(secs)), Some(secs));
        }
        assert_eq!(super::parse_rfc3339("2001-02-30T00:00:00Z"), None);
        // RFC 3339 section 5.6 lets a space stand for the `T`.
        assert_eq!(
            super::parse_rfc3339("2001-09-09 01:46:40Z"),
            Some(1_000_000_000)
        );
        let release = |t| super::parse_rfc2822(t);
        assert_eq!(
            release("Sun, 09 Sep 2001 01:46:40 UTC"),
            Some(1_000_000_000)
        );
        assert_eq!(
            release("Sun, 9 Sep 2001 03:46:40 +0200"),
            Some(1_000_000_000)
        );
        assert_eq!(release("09 Sep 2001 01:46:40 GMT"), Some(1_000_000_000));
        assert_eq!(release("Sun, 09 Sept 2001 01:46:40 UTC"), None);
        assert_eq!(release("Sun, 09 Sep 2001 01:46:40 EST"), None);
        assert_eq!(release(""), None);
    }

    #[test]
    fn parses_what_it_writes_and_ci_forms() {
        for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(secs)), Some(secs));
        }
        assert_eq!(
            super::parse_rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000)
        );
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2023-11-14T22:13:20",
        ] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
