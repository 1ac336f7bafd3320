//! Script lines whose result stele writes itself, from the installed
//! files (`install::generated`), so the report says they were reproduced
//! rather than skipped: the reader cannot follow them (loops over a
//! debconf answer, `$(stat …)`), but their outcome on a first install is
//! known and made. Each rule names a span of one package's script by the
//! lines that open and close it, so a script that no longer has them is
//! reported as the reader found it.

/// A span of `script` in `package`, from the first line holding `from`
/// up to (not including) the next line holding `to`, and what stele
/// makes of it.
struct Rule {
    package: &'static str,
    script: &'static str,
    from: &'static str,
    to: &'static str,
    what: &'static str,
}

const RULES: [Rule; 2] = [
    Rule {
        package: "ca-certificates",
        script: "postinst",
        from: "if [ ! -e /usr/local/share/ca-certificates ]",
        to: ". /usr/share/debconf/confmodule",
        what: "/usr/local/share/ca-certificates, made by stele with /usr/local's mode and group, as this postinst makes it",
    },
    Rule {
        package: "ca-certificates",
        script: "postinst",
        from: "test -f /etc/ca-certificates.conf",
        to: "update-ca-certificates",
        what: "/etc/ca-certificates.conf, written by stele as this postinst writes it on a first install: debconf's default, every certificate trusted",
    },
];

/// The lines (1-based, half-open) each rule for `package`'s `script`
/// spans in `text`, and what they make.
pub(super) fn spans(package: &str, script: &str, text: &str) -> Vec<(usize, usize, &'static str)> {
    let lines: Vec<&str> = text.lines().collect();
    RULES
        .iter()
        .filter(|r| r.package == package && r.script == script)
        .filter_map(|r| {
            let from = lines.iter().position(|l| l.contains(r.from))?;
            let to = from + lines[from..].iter().position(|l| l.contains(r.to))?;
            Some((from + 1, to + 1, r.what))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_found_by_their_lines_and_only_for_their_package() {
        let text = "set -e\nif [ ! -e /usr/local/share/ca-certificates ]; then\n  chgrp x y\nfi\n. /usr/share/debconf/confmodule\nif test -f /etc/ca-certificates.conf; then\n  read line\nfi\nupdate-ca-certificates\n";
        let s = spans("ca-certificates", "postinst", text);
        assert_eq!(
            s.iter().map(|(a, b, _)| (*a, *b)).collect::<Vec<_>>(),
            [(2, 5), (6, 9)]
        );
        assert!(spans("ca-certificates", "preinst", text).is_empty());
        assert!(spans("other", "postinst", text).is_empty());
        assert!(spans("ca-certificates", "postinst", "set -e\n").is_empty());
    }
}
