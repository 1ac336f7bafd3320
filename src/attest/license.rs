//! The license a Debian package declares, from its machine-readable
//! copyright file (DEP-5, "copyright-format 1.0"), as an SPDX license
//! expression. Debian's short names differ from SPDX ids (`GPL-2+` is
//! `GPL-2.0-or-later`, `Expat` is `MIT`); names with no SPDX id become
//! `LicenseRef-debian-<name>`, which the SPDX document then declares.
//! Free-form copyright files state nothing a program can read: `None`.

use std::collections::BTreeSet;

/// SPDX ids Debian copyright files use under the same or a differently
/// cased name, and Debian names that map to another id.
const TABLE: &[(&str, &str)] = &[
    ("0bsd", "0BSD"),
    ("apache-1.0", "Apache-1.0"),
    ("apache-1.1", "Apache-1.1"),
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0"),
    ("artistic-1.0", "Artistic-1.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("boost", "BSL-1.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsl-1.0", "BSL-1.0"),
    ("bzip2-1.0.6", "bzip2-1.0.6"),
    ("cc-by-3.0", "CC-BY-3.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("cc-by-sa-3.0", "CC-BY-SA-3.0"),
    ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("cddl-1.0", "CDDL-1.0"),
    ("curl", "curl"),
    ("epl-1.0", "EPL-1.0"),
    ("epl-2.0", "EPL-2.0"),
    ("expat", "MIT"),
    ("ftl", "FTL"),
    ("ijg", "IJG"),
    ("isc", "ISC"),
    ("libpng", "Libpng"),
    ("libpng-2.0", "libpng-2.0"),
    ("mit", "MIT"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("ofl-1.1", "OFL-1.1"),
    ("openssl", "OpenSSL"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("tcl", "TCL"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("unlicense", "Unlicense"),
    ("wtfpl", "WTFPL"),
    ("x11", "X11"),
    ("zlib", "Zlib"),
    ("zpl-2.1", "ZPL-2.1"),
];

/// The declared license of a package whose `/usr/share/doc/PKG/copyright`
/// is `text`: every `License:` synopsis of the header and `Files`
/// paragraphs, translated, joined with AND (different files, different
/// licenses), sorted so the result does not depend on paragraph order.
pub(crate) fn from_debian_copyright(text: &str) -> Option<String> {
    let paragraphs = paragraphs(text);
    let header = paragraphs.first()?;
    if !field(header, "Format").is_some_and(|f| f.contains("copyright-format")) {
        return None;
    }
    let mut parts = BTreeSet::new();
    for (i, p) in paragraphs.iter().enumerate() {
        // Stand-alone License paragraphs hold license texts, not claims.
        if i != 0 && field(p, "Files").is_none() {
            continue;
        }
        if let Some(synopsis) = field(p, "License") {
            let synopsis = synopsis.lines().next().unwrap_or("").trim();
            if let Some(expr) = from_synopsis(synopsis) {
                parts.insert(expr);
            }
        }
    }
    match parts.len() {
        0 => None,
        1 => parts.pop_first(),
        _ => Some(
            parts
                .iter()
                .map(|p| parenthesize_or(p))
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    }
}

fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            current.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn field<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parenthesize_or(e: &str) -> String {
    if e.contains(" OR ") {
        format!("({e})")
    } else {
        e.to_string()
    }
}

/// A DEP-5 license synopsis as SPDX. In DEP-5 `and` binds tighter than
/// `or`, as in SPDX, except that a comma ends everything before it:
/// `A or B, and C` is `(A OR B) AND C`.
pub(crate) fn from_synopsis(synopsis: &str) -> Option<String> {
    let mut acc: Option<String> = None;
    for (i, segment) in synopsis.split(',').enumerate() {
        let words: Vec<&str> = segment.split_whitespace().collect();
        let (op, rest) = match (i, words.first().map(|w| w.to_ascii_lowercase())) {
            (0, _) => (None, &words[..]),
            (_, Some(w)) if w == "and" || w == "or" => (Some(w.to_ascii_uppercase()), &words[1..]),
            // "A, B" lists alternatives the same way "A or B" does.
            _ => (Some("OR".to_string()), &words[..]),
        };
        let expr = simple_expression(rest)?;
        acc = Some(match (acc, op) {
            (None, _) => expr,
            (Some(a), Some(op)) => format!("({a}) {op} {}", parenthesize_any(&expr)),
            (Some(_), None) => unreachable!("segments after the first have an operator"),
        });
    }
    acc
}

fn parenthesize_any(e: &str) -> String {
    if e.contains(' ') && !e.starts_with('(') {
        format!("({e})")
    } else {
        e.to_string()
    }
}

fn simple_expression(words: &[&str]) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut expect_license = true;
    while i < words.len() {
        let w = words[i];
        let lower = w.to_ascii_lowercase();
        if expect_license {
            let mut name = w.to_string();
            // `GPL-2+ with OpenSSL exception`: an exception Debian names
            // freely; kept whole as one license reference.
            if words
                .get(i + 1)
                .is_some_and(|n| n.eq_ignore_ascii_case("with"))
            {
                let end = words[i..]
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case("exception"))
                    .map_or(words.len(), |p| i + p + 1);
                name = words[i..end].join("-");
                i = end;
            } else {
                i += 1;
            }
            out.push(spdx_id(&name));
            expect_license = false;
        } else if lower == "and" || lower == "or" {
            out.push(lower.to_ascii_uppercase());
            expect_license = true;
            i += 1;
        } else {
            return None;
        }
    }
    if expect_license {
        return None;
    }
    Some(out.join(" "))
}

/// One Debian license short name as an SPDX id (or `LicenseRef-debian-…`).
pub(crate) fn spdx_id(debian: &str) -> String {
    let lower = debian.to_ascii_lowercase();
    if lower == "perl" {
        // Debian's "Perl" is "the same terms as Perl itself".
        return "(Artistic-1.0-Perl OR GPL-1.0-or-later)".into();
    }
    if let Some((_, id)) = TABLE.iter().find(|(k, _)| *k == lower) {
        return id.to_string();
    }
    if let Some(id) = gnu_id(&lower) {
        return id;
    }
    let clean: String = debian
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("LicenseRef-debian-{clean}")
}

/// `GPL-2`, `LGPL-2.1+`, `AGPL-3`, `GFDL-1.3+`, bare `GPL` → SPDX ids.
fn gnu_id(lower: &str) -> Option<String> {
    let (family, rest) = ["agpl", "lgpl", "gpl", "gfdl"]
        .iter()
        .find_map(|f| lower.strip_prefix(f).map(|r| (*f, r)))?;
    let canonical = family.to_ascii_uppercase();
    if rest.is_empty() {
        // No version: any version the licensee chooses.
        let first = if family == "gfdl" {
            "1.1"
        } else if family == "lgpl" {
            "2.0"
        } else if family == "agpl" {
            "3.0"
        } else {
            "1.0"
        };
        return Some(format!("{canonical}-{first}-or-later"));
    }
    let rest = rest.strip_prefix('-')?;
    let (version, later) = match rest.strip_suffix('+') {
        Some(v) => (v, true),
        None => (rest, false),
    };
    let version = match version {
        "1" | "1.0" => "1.0",
        "2" | "2.0" => "2.0",
        "2.1" => "2.1",
        "3" | "3.0" => "3.0",
        "1.1" | "1.2" | "1.3" => version,
        _ => return None,
    };
    Some(format!(
        "{canonical}-{version}-{}",
        if later { "or-later" } else { "only" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_translate() {
        assert_eq!(spdx_id("GPL-2+"), "GPL-2.0-or-later");
        assert_eq!(spdx_id("LGPL-2.1"), "LGPL-2.1-only");
        assert_eq!(spdx_id("Expat"), "MIT");
        assert_eq!(spdx_id("BSD-3-clause"), "BSD-3-Clause");
        assert_eq!(spdx_id("public-domain"), "LicenseRef-debian-public-domain");
        assert_eq!(spdx_id("GPL-9"), "LicenseRef-debian-GPL-9");
    }

    #[test]
    fn synopses_keep_dep5_precedence() {
        assert_eq!(
            from_synopsis("GPL-2+ or Artistic").unwrap(),
            "GPL-2.0-or-later OR Artistic-1.0"
        );
        assert_eq!(
            from_synopsis("GPL-2+ or Artistic, and BSD-3-clause").unwrap(),
            "(GPL-2.0-or-later OR Artistic-1.0) AND BSD-3-Clause"
        );
        assert_eq!(
            from_synopsis("GPL-2+ with OpenSSL exception").unwrap(),
            "LicenseRef-debian-GPL-2--with-OpenSSL-exception"
        );
        assert!(from_synopsis("GPL-2+ or").is_none());
        assert!(from_synopsis("").is_none());
    }

    #[test]
    fn copyright_file_paragraphs() {
        let text = "Format: https://dep5.example/copyright-format/1.0/\nUpstream-Name: x\n\n\
Files: *\nCopyright: 2020 A\nLicense: GPL-2+\n\n\
Files: lib/*\nCopyright: 2021 B\nLicense: Expat\n\n\
Files: doc/*\nLicense: GPL-2+\n\n\
License: GPL-2+\n This program is free software; see /usr/share/common-licenses/GPL-2.\n\n\
License: Expat\n Permission is hereby granted ...\n";
        assert_eq!(
            from_debian_copyright(text).unwrap(),
            "GPL-2.0-or-later AND MIT"
        );
        assert_eq!(
            from_debian_copyright("This package was debianized by someone.\n\nIt is GPL.\n"),
            None
        );
    }
}
