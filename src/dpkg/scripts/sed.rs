//! The simple forms of `sed -i` and `grep -q` that maintainer scripts use
//! on configuration files (libnss-systemd's edits of nsswitch.conf):
//! substitutions `s/RE/REPLACEMENT/[g]`, each with no address or a
//! `/RE/` one, on basic or extended (`-E`, `-r`) expressions. Anything
//! else (other commands, numbered or ranged addresses, flags, alternation,
//! whose POSIX leftmost-longest match the `regex` crate does not give)
//! is refused with the reason, never guessed.

use regex::Regex;

/// The longest sed script or grep pattern followed, in bytes.
const MAX_SCRIPT: usize = 4096;
/// The most substitutions one `sed` call may carry.
const MAX_COMMANDS: usize = 64;

/// A sed script as the reader follows it: substitutions in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    pub commands: Vec<Substitute>,
}

/// `[/ADDRESS/]s/PATTERN/REPLACEMENT/[g]`, the expressions in the
/// `regex` crate's syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Substitute {
    pub address: Option<String>,
    pub pattern: String,
    pub replacement: Vec<Piece>,
    pub global: bool,
}

/// A piece of a replacement: text, or a group of the match (`&` is 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Group(usize),
}

/// `sed` ARGS (after the name): the edit and the files it changes in
/// place.
pub(crate) fn parse_sed(args: &[&str]) -> Result<(Edit, Vec<String>), String> {
    parse(args, true)
}

/// `sed` ARGS (after the name) without `-i`: the edit and the files whose
/// edited text it prints (`sed -e … TEMPLATE > "$tmp"`).
pub(crate) fn parse_sed_printing(args: &[&str]) -> Result<(Edit, Vec<String>), String> {
    parse(args, false)
}

fn parse(args: &[&str], wants_in_place: bool) -> Result<(Edit, Vec<String>), String> {
    let mut extended = false;
    let mut in_place = false;
    let mut scripts: Vec<&str> = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let mut it = args.iter().copied();
    while let Some(a) = it.next() {
        match a {
            "-E" | "-r" | "--regexp-extended" => extended = true,
            "-i" | "--in-place" => in_place = true,
            "-e" => scripts.push(it.next().ok_or("`sed -e` without a script")?),
            _ if a.starts_with("--expression=") => scripts.push(&a["--expression=".len()..]),
            _ if a.starts_with('-') && a.len() > 1 && a[1..].chars().all(|c| "Eri".contains(c)) => {
                extended |= a.contains(['E', 'r']);
                in_place |= a.contains('i');
            }
            _ if a.starts_with('-') && a.len() > 1 => {
                return Err(format!(
                    "`sed` with an option the reader does not follow (`{}`)",
                    a.escape_debug()
                ))
            }
            _ => words.push(a),
        }
    }
    if scripts.is_empty() {
        if words.is_empty() {
            return Err(String::from("`sed` without a script"));
        }
        scripts.push(words.remove(0));
    }
    if in_place != wants_in_place {
        return Err(String::from(if wants_in_place {
            "`sed` without `-i` prints, and changes no file"
        } else {
            "`sed -i` changes files and prints nothing"
        }));
    }
    if words.is_empty() {
        return Err(String::from("`sed` without a file"));
    }
    let mut commands = Vec::new();
    for s in scripts {
        commands.extend(script(s, extended)?);
    }
    if commands.len() > MAX_COMMANDS {
        return Err(format!("more than {MAX_COMMANDS} sed commands"));
    }
    Ok((
        Edit { commands },
        words.into_iter().map(String::from).collect(),
    ))
}

/// `grep` ARGS (after the name) in a condition: the expressions (in the
/// `regex` crate's syntax) and the file, when it is `grep -q` of
/// expressions in one file.
pub(crate) fn parse_grep(args: &[&str]) -> Result<(Vec<String>, String), String> {
    let mut extended = false;
    let (mut quiet, mut fixed) = (false, false);
    let mut patterns: Vec<&str> = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let mut it = args.iter().copied();
    while let Some(a) = it.next() {
        match a {
            "-e" => patterns.push(it.next().ok_or("`grep -e` without a pattern")?),
            _ if a.starts_with('-')
                && a.len() > 1
                && a[1..].chars().all(|c| "qEFs".contains(c)) =>
            {
                quiet |= a.contains('q');
                extended |= a.contains('E');
                fixed |= a.contains('F');
            }
            "--quiet" | "--silent" => quiet = true,
            _ if a.starts_with('-') && a.len() > 1 => {
                return Err(format!(
                    "`grep` with an option the reader does not follow (`{}`)",
                    a.escape_debug()
                ))
            }
            _ => words.push(a),
        }
    }
    if patterns.is_empty() && !words.is_empty() {
        patterns.push(words.remove(0));
    }
    let [file] = words.as_slice() else {
        return Err(String::from("`grep` on other than one file"));
    };
    if !quiet || patterns.is_empty() {
        return Err(String::from("`grep` other than `grep -q PATTERN FILE`"));
    }
    let patterns = patterns
        .into_iter()
        .map(|p| {
            if fixed {
                Ok(regex::escape(p))
            } else {
                translate(p, extended, true)
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((patterns, file.to_string()))
}

/// Whether a line of `text` matches one of `patterns`.
pub(crate) fn grep(patterns: &[String], text: &str) -> bool {
    let res: Vec<Regex> = patterns.iter().filter_map(|p| Regex::new(p).ok()).collect();
    text.lines().any(|l| res.iter().any(|r| r.is_match(l)))
}

/// `text` as `sed -i` leaves it after `edit`, line by line (a last line
/// without a newline stays without one).
pub(crate) fn apply(edit: &Edit, text: &str) -> Result<String, String> {
    let compiled: Vec<(Option<Regex>, Regex, &Substitute)> = edit
        .commands
        .iter()
        .map(|c| {
            let address = c.address.as_deref().map(compile).transpose()?;
            Ok((address, compile(&c.pattern)?, c))
        })
        .collect::<Result<_, String>>()?;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (mut space, newline) = match line.strip_suffix('\n') {
            Some(l) => (l.to_string(), "\n"),
            None => (line.to_string(), ""),
        };
        for (address, pattern, c) in &compiled {
            if address.as_ref().is_some_and(|a| !a.is_match(&space)) {
                continue;
            }
            space = substitute(pattern, c, &space);
        }
        out.push_str(&space);
        out.push_str(newline);
    }
    Ok(out)
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("an expression the reader does not follow: {e}"))
}

fn substitute(pattern: &Regex, c: &Substitute, space: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for caps in pattern.captures_iter(space) {
        let Some(m) = caps.get(0) else { break };
        out.push_str(&space[last..m.start()]);
        for piece in &c.replacement {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |g| g.as_str())),
            }
        }
        last = m.end();
        if !c.global {
            break;
        }
    }
    out.push_str(&space[last..]);
    out
}

/// One `-e` script: substitutions separated by `;` or newlines.
fn script(text: &str, extended: bool) -> Result<Vec<Substitute>, String> {
    if text.len() > MAX_SCRIPT {
        return Err(format!("a sed script longer than {MAX_SCRIPT} bytes"));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let refused = |what: &str| format!("sed {what}, which the reader does not follow");
    loop {
        while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\n' | ';') {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(out);
        }
        let address = if chars[i] == '/' {
            let (re, next) = delimited(&chars, i + 1, '/')?;
            i = next;
            while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                i += 1;
            }
            Some(translate(&re, extended, true)?)
        } else {
            None
        };
        if chars.get(i) != Some(&'s') {
            return Err(refused(
                "commands other than `s` or addresses other than `/RE/`",
            ));
        }
        let delim = *chars
            .get(i + 1)
            .ok_or_else(|| refused("an unfinished `s`"))?;
        if matches!(delim, '\\' | '\n' | ' ') {
            return Err(refused("an `s` with an unusual delimiter"));
        }
        let (pattern, next) = delimited(&chars, i + 2, delim)?;
        let (replacement, next) = delimited(&chars, next, delim)?;
        i = next;
        let mut global = false;
        while i < chars.len() && !matches!(chars[i], ';' | '\n' | ' ' | '\t') {
            match chars[i] {
                'g' => global = true,
                _ => return Err(refused("`s` flags other than `g`")),
            }
            i += 1;
        }
        let pattern = translate(&pattern, extended, false)?;
        let groups = compile(&pattern)?.captures_len() - 1;
        let replacement = pieces(&replacement, groups)?;
        out.push(Substitute {
            address,
            pattern,
            replacement,
            global,
        });
    }
}

/// The text up to an unescaped `delim` from `i` (`\DELIM` becomes the
/// delimiter itself), and where the next part starts.
fn delimited(chars: &[char], mut i: usize, delim: char) -> Result<(String, usize), String> {
    let mut out = String::new();
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1) == Some(&delim) => {
                out.push(delim);
                i += 2;
            }
            '\\' if i + 1 < chars.len() => {
                out.push('\\');
                out.push(chars[i + 1]);
                i += 2;
            }
            c if c == delim => return Ok((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(format!("a sed expression without its closing `{delim}`"))
}

/// A POSIX basic (or, with `extended`, extended) expression in the
/// `regex` crate's syntax. Alternation is taken only where just whether a
/// line matches counts (`matching`): POSIX takes the longest of the
/// alternatives, the crate the first, which changes what `s` replaces.
fn translate(re: &str, extended: bool, matching: bool) -> Result<String, String> {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let alternation =
        || String::from("an expression with alternation, which the reader does not follow");
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' => {
                // A bracket expression: `\` is literal inside; `]` first
                // is a member.
                let start = i;
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    i += 1;
                }
                while i < chars.len() && chars[i] != ']' {
                    if chars[i] == '[' && matches!(chars.get(i + 1), Some(':' | '.' | '=')) {
                        let close = chars[i + 1];
                        i += 2;
                        while i + 1 < chars.len() && !(chars[i] == close && chars[i + 1] == ']') {
                            i += 1;
                        }
                        i += 2;
                        continue;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(String::from("an expression with an unclosed `[`"));
                }
                for &m in &chars[start..=i] {
                    if m == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(m);
                    }
                }
                i += 1;
                continue;
            }
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err(String::from("an expression ending in `\\`"));
                };
                i += 2;
                match n {
                    '|' if !extended && !matching => return Err(alternation()),
                    '|' if !extended => out.push('|'),
                    '(' | ')' | '{' | '}' | '+' | '?' if !extended => out.push(n),
                    's' | 'S' | 'w' | 'W' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(n);
                    }
                    'n' => out.push_str("\\n"),
                    't' => out.push_str("\\t"),
                    c if c.is_ascii_alphanumeric() => {
                        return Err(format!(
                            "an expression with `\\{c}`, which the reader does not follow"
                        ))
                    }
                    c => out.push_str(&regex::escape(&c.to_string())),
                }
                continue;
            }
            '|' if extended && !matching => return Err(alternation()),
            '(' | ')' | '{' | '}' | '+' | '?' | '|' if !extended => {
                out.push('\\');
                out.push(c);
            }
            '^' if !extended && i != 0 => out.push_str("\\^"),
            '$' if !extended && i + 1 != chars.len() => out.push_str("\\$"),
            '*' if !extended && (i == 0 || out.ends_with('(')) => out.push_str("\\*"),
            c => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// A replacement: `&` the whole match, `\1`…`\9` its groups (at most
/// `groups`), `\n` a newline, `\&` and `\\` themselves.
fn pieces(text: &str, groups: usize) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let group = match c {
            '&' => Some(0),
            '\\' => match chars.next() {
                Some(d @ '1'..='9') => Some(d as usize - '0' as usize),
                Some('n') => {
                    lit.push('\n');
                    None
                }
                Some(o) => {
                    lit.push(o);
                    None
                }
                None => return Err(String::from("a replacement ending in `\\`")),
            },
            c => {
                lit.push(c);
                None
            }
        };
        if let Some(g) = group {
            if g > groups {
                return Err(format!(
                    "a replacement naming group {g}, which its expression does not have"
                ));
            }
            if !lit.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut lit)));
            }
            out.push(Piece::Group(g));
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Text(lit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(args: &[&str], text: &str) -> Result<String, String> {
        let (e, files) = parse_sed(args)?;
        assert_eq!(files, ["/etc/f"]);
        apply(&e, text)
    }

    #[test]
    fn libnss_systemds_edits_of_nsswitch_conf() {
        let text = "passwd:         files\ngroup:          files # local\nhosts: files dns\n";
        let args = |a: &'static str, b: &'static str| ["-E", "-i", "/etc/f", "-e", a, "-e", b];
        let once = edit(
            &args(
                r"/^passwd:\s[^#]*$/ s/$/ systemd/",
                r"/^passwd:\s.*#/ s/#/ systemd #/",
            ),
            text,
        )
        .unwrap();
        let twice = edit(
            &args(
                r"/^group:\s[^#]*$/ s/$/ systemd/",
                r"/^group:\s.*#/ s/#/ systemd #/",
            ),
            &once,
        )
        .unwrap();
        assert_eq!(
            twice,
            "passwd:         files systemd\ngroup:          files  systemd # local\nhosts: files dns\n"
        );
        // Alternation is followed where only a match counts.
        let (patterns, file) = parse_grep(&[
            "-q",
            "-E",
            "-e",
            r"^group:[^#]*\s(systemd)(\s|#|$)",
            "-e",
            r"^passwd:[^#]*\s(systemd)(\s|#|$)",
            "/etc/f",
        ])
        .unwrap();
        assert_eq!(file, "/etc/f");
        assert!(grep(&patterns, &twice));
        assert!(!grep(&patterns, text));
        assert!(parse_grep(&["-E", "x", "/etc/f"]).is_err(), "not -q");
        assert!(parse_grep(&["-q", "-r", "x", "/etc"]).is_err());
    }

    #[test]
    fn basic_expressions_groups_and_the_whole_match() {
        assert_eq!(
            edit(&["-i", r"s/\(a*\)b/[\1|&]/g", "/etc/f"], "aab xb\nno").unwrap(),
            "[aa|aab] x[|b]\nno"
        );
        // `+` and `(` are ordinary characters in a basic expression.
        assert_eq!(
            edit(&["-i", "s/(x+)/y/", "/etc/f"], "a(x+)b\n").unwrap(),
            "ayb\n"
        );
        assert_eq!(
            edit(&["-ri", "s/(x+)/<\\1>/", "/etc/f"], "axxb\n").unwrap(),
            "a<xx>b\n"
        );
        assert_eq!(
            edit(&["-i", "s|/usr|/opt|", "/etc/f"], "/usr/bin\n").unwrap(),
            "/opt/bin\n"
        );
    }

    #[test]
    fn what_is_not_followed_is_refused() {
        for args in [
            &["-i", "/x/d", "/etc/f"][..],
            &["-i", "1s/a/b/", "/etc/f"],
            &["-i", "s/a/b/p", "/etc/f"],
            &["-i", "s/a\\|b/c/", "/etc/f"],
            &["-E", "-i", "s/a|b/c/", "/etc/f"],
            &["-i", "s/a/\\1/", "/etc/f"],
            &["-n", "-i", "s/a/b/", "/etc/f"],
            &["-i.bak", "s/a/b/", "/etc/f"],
            &["s/a/b/", "/etc/f"],
            &["-i", "s/a/b", "/etc/f"],
            &["-i", "s/a/b/"],
        ] {
            assert!(parse_sed(args).is_err(), "{args:?} is refused");
        }
    }
}
