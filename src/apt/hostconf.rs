//! The machine's own apt configuration as a source of mirror URLs and
//! keyrings (`mirror = "host"` in a recipe). Everything is read below a
//! root directory the caller passes (the CLI passes `/`), so tests and
//! image builders can point it at a fake tree.

use std::fs;
use std::path::{Path, PathBuf};

use super::release::{Keyring, ReleaseError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceType {
    Deb,
    DebSrc,
}

/// Where a source's signing keys come from (`Signed-By` / `signed-by=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignedBy {
    /// A keyring file, as written in the configuration (absolute on the
    /// configured machine; [`load_keyring`] resolves it below the root).
    Path(PathBuf),
    /// An ASCII-armored key block written inline in a `.sources` file.
    Inline(String),
}

/// One (type, URI, suite) triple from the host's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSource {
    pub source_type: SourceType,
    /// The mirror base URL as configured, without a trailing `/`.
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
    /// `Architectures` / `arch=`; empty means apt's default.
    pub architectures: Vec<String>,
    pub signed_by: Option<SignedBy>,
    /// `file:line` of the entry, for messages.
    pub origin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HostConfError {
    #[error("reading apt configuration {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{origin}: {message}; fix the apt source entry or name the mirror in the recipe instead of `host`")]
    Syntax { origin: String, message: String },
    #[error("no trusted keys for {origin}: it has no Signed-By and neither {root}/etc/apt/trusted.gpg.d/ nor {root}/etc/apt/trusted.gpg holds a keyring; add Signed-By to the source")]
    NoKeyring { origin: String, root: PathBuf },
    #[error(transparent)]
    Keyring(#[from] ReleaseError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HostConfError + '_ {
    move |source| HostConfError::Io {
        path: path.to_path_buf(),
        error: source,
    }
}

/// Every source entry configured below `root`, in apt's reading order:
/// `etc/apt/sources.list`, then `etc/apt/sources.list.d/` files (`*.list`
/// one-line format, `*.sources` deb822) sorted by name. Disabled entries
/// (`Enabled: no`) are left out; files with other extensions are ignored,
/// as apt ignores them.
pub fn host_sources(root: &Path) -> Result<Vec<HostSource>, HostConfError> {
    let mut out = Vec::new();
    let main_list = root.join("etc/apt/sources.list");
    if main_list.is_file() {
        let text = fs::read_to_string(&main_list).map_err(io_err(&main_list))?;
        out.extend(parse_one_line(&text, &main_list.display().to_string())?);
    }
    let dir = root.join("etc/apt/sources.list.d");
    let mut files = Vec::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry.map_err(io_err(&dir))?.path();
                files.push(path);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&dir)(e)),
    }
    files.sort();
    for path in files {
        let name = path.display().to_string();
        let deb822 = match path.extension().and_then(|e| e.to_str()) {
            Some("sources") => true,
            Some("list") => false,
            _ => continue,
        };
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        if deb822 {
            out.extend(parse_deb822(&text, &name)?);
        } else {
            out.extend(parse_one_line(&text, &name)?);
        }
    }
    Ok(out)
}

/// The first binary (`deb`) source for `suite`; `deb-src` entries are
/// skipped.
pub fn find_host_source<'a>(sources: &'a [HostSource], suite: &str) -> Option<&'a HostSource> {
    sources
        .iter()
        .find(|s| s.source_type == SourceType::Deb && s.suite == suite)
}

/// The keys a source trusts: its `Signed-By` keyring, else apt's default
/// set: every `etc/apt/trusted.gpg.d/*.gpg` (binary) and `*.asc`
/// (armored) in name order, then `etc/apt/trusted.gpg`. Paths are resolved
/// below `root`.
pub fn load_keyring(root: &Path, source: &HostSource) -> Result<Keyring, HostConfError> {
    match &source.signed_by {
        Some(SignedBy::Inline(text)) => Ok(Keyring::parse(
            text.as_bytes(),
            &format!("Signed-By of {}", source.origin),
        )?),
        Some(SignedBy::Path(path)) => {
            let full = under_root(root, path);
            let bytes = fs::read(&full).map_err(io_err(&full))?;
            Ok(Keyring::parse(&bytes, &full.display().to_string())?)
        }
        None => {
            let ring = default_keyring(root)?;
            if ring.is_empty() {
                return Err(HostConfError::NoKeyring {
                    origin: source.origin.clone(),
                    root: root.to_path_buf(),
                });
            }
            Ok(ring)
        }
    }
}

/// apt's default trusted keys below `root` (possibly empty).
pub(crate) fn default_keyring(root: &Path) -> Result<Keyring, HostConfError> {
    let mut ring = Keyring::new();
    let dir = root.join("etc/apt/trusted.gpg.d");
    let mut files = Vec::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry.map_err(io_err(&dir))?.path();
                if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("gpg" | "asc")
                ) {
                    files.push(path);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&dir)(e)),
    }
    files.sort();
    let legacy = root.join("etc/apt/trusted.gpg");
    if legacy.is_file() {
        files.push(legacy);
    }
    for path in files {
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        // apt skips empty keyring files rather than failing on them.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        ring.extend(Keyring::parse(&bytes, &path.display().to_string())?);
    }
    Ok(ring)
}

fn under_root(root: &Path, path: &Path) -> PathBuf {
    let relative = path.strip_prefix("/").unwrap_or(path);
    root.join(relative)
}

fn parse_signed_by(value: &str, origin: &str) -> Result<SignedBy, HostConfError> {
    let value = value.trim();
    if value.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        return Ok(SignedBy::Inline(value.to_string()));
    }
    if value.starts_with('/') && !value.contains(char::is_whitespace) && !value.contains(',') {
        return Ok(SignedBy::Path(PathBuf::from(value)));
    }
    Err(HostConfError::Syntax {
        origin: origin.to_string(),
        message: format!(
            "Signed-By `{value}` is not one absolute keyring path or an inline key block (fingerprint lists are not supported)"
        ),
    })
}

/// `deb [opt=val …] URI suite [component …]`, one entry per line.
fn parse_one_line(text: &str, file: &str) -> Result<Vec<HostSource>, HostConfError> {
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let origin = format!("{file}:{}", idx + 1);
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let syntax = |message: String| HostConfError::Syntax {
            origin: origin.clone(),
            message,
        };
        let (kind, mut rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| syntax(format!("`{line}` has no URI")))?;
        let source_type = match kind {
            "deb" => SourceType::Deb,
            "deb-src" => SourceType::DebSrc,
            other => return Err(syntax(format!("unknown entry type `{other}`"))),
        };
        let mut architectures = Vec::new();
        let mut signed_by = None;
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('[') {
            let (options, tail) = after
                .split_once(']')
                .ok_or_else(|| syntax("`[` options are not closed by `]`".into()))?;
            for option in options.split_whitespace() {
                let (key, value) = option
                    .split_once('=')
                    .ok_or_else(|| syntax(format!("option `{option}` is not key=value")))?;
                match key {
                    "arch" => architectures = value.split(',').map(str::to_string).collect(),
                    "signed-by" => signed_by = Some(parse_signed_by(value, &origin)?),
                    // Other options (trusted=, lang=, …) do not affect what
                    // stele fetches; signatures are always checked.
                    _ => {}
                }
            }
            rest = tail;
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            return Err(syntax(format!("`{line}` needs a URI and a suite")));
        };
        out.push(HostSource {
            source_type,
            uri: uri.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
            components: words.map(str::to_string).collect(),
            architectures,
            signed_by,
            origin,
        });
    }
    Ok(out)
}

/// deb822 paragraphs; each expands to one entry per type × URI × suite.
fn parse_deb822(text: &str, file: &str) -> Result<Vec<HostSource>, HostConfError> {
    let mut out = Vec::new();
    // (line number, field name, value lines)
    let mut paragraph: Vec<(usize, String, String)> = Vec::new();
    let mut start = 0;
    let lines: Vec<&str> = text.lines().collect();
    for idx in 0..=lines.len() {
        let line = lines.get(idx).map(|l| l.trim_end());
        let line_no = idx + 1;
        match line {
            Some(l) if l.starts_with('#') => continue,
            Some(l) if !l.is_empty() => {
                if l.starts_with(' ') || l.starts_with('\t') {
                    let Some(last) = paragraph.last_mut() else {
                        return Err(HostConfError::Syntax {
                            origin: format!("{file}:{line_no}"),
                            message: "continuation line before any field".into(),
                        });
                    };
                    // A lone ` .` stands for an empty line inside a value.
                    let content = l.trim();
                    last.2.push('\n');
                    last.2.push_str(if content == "." { "" } else { content });
                } else {
                    let (key, value) = l.split_once(':').ok_or_else(|| HostConfError::Syntax {
                        origin: format!("{file}:{line_no}"),
                        message: format!("`{l}` is not a `Field: value` line"),
                    })?;
                    if paragraph.is_empty() {
                        start = line_no;
                    }
                    paragraph.push((line_no, key.trim().to_string(), value.trim().to_string()));
                }
            }
            _ => {
                if !paragraph.is_empty() {
                    out.extend(deb822_entries(&paragraph, &format!("{file}:{start}"))?);
                    paragraph.clear();
                }
            }
        }
    }
    Ok(out)
}

fn deb822_entries(
    paragraph: &[(usize, String, String)],
    origin: &str,
) -> Result<Vec<HostSource>, HostConfError> {
    // Field names are case-insensitive in deb822.
    let get = |name: &str| {
        paragraph
            .iter()
            .find(|(_, k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, _, v)| v.as_str())
    };
    let words = |name: &str| -> Vec<String> {
        get(name)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    if get("Enabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("no")) {
        return Ok(Vec::new());
    }
    let syntax = |message: String| HostConfError::Syntax {
        origin: origin.to_string(),
        message,
    };
    let mut types = Vec::new();
    for t in words("Types") {
        types.push(match t.as_str() {
            "deb" => SourceType::Deb,
            "deb-src" => SourceType::DebSrc,
            other => return Err(syntax(format!("unknown type `{other}` in Types"))),
        });
    }
    let (uris, suites) = (words("URIs"), words("Suites"));
    if types.is_empty() || uris.is_empty() || suites.is_empty() {
        return Err(syntax(
            "a source needs Types, URIs and Suites fields".to_string(),
        ));
    }
    let signed_by = get("Signed-By")
        .map(|v| parse_signed_by(v, origin))
        .transpose()?;
    let mut out = Vec::new();
    for source_type in &types {
        for uri in &uris {
            for suite in &suites {
                out.push(HostSource {
                    source_type: source_type.clone(),
                    uri: uri.trim_end_matches('/').to_string(),
                    suite: suite.clone(),
                    components: words("Components"),
                    architectures: words("Architectures"),
                    signed_by: signed_by.clone(),
                    origin: origin.to_string(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn reads_both_formats_in_apt_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "etc/apt/sources.list",
            "# comment\ndeb [arch=amd64,arm64 signed-by=/k/one.gpg] http://127.0.0.1:1/a/ one main contrib # trailing\ndeb-src http://127.0.0.1:1/a one main\n",
        );
        write(
            root,
            "etc/apt/sources.list.d/b.sources",
            "Types: deb deb-src\nURIs: http://127.0.0.1:2/b\n# a comment inside\nSuites: two two-updates\nComponents: main\nArchitectures: arm64\nSigned-By: /k/two.gpg\n\nEnabled: no\nTypes: deb\nURIs: http://127.0.0.1:2/off\nSuites: off\n",
        );
        write(
            root,
            "etc/apt/sources.list.d/a.list",
            "deb http://127.0.0.1:3/c three main\n",
        );
        write(root, "etc/apt/sources.list.d/c.sources.disabled", "garbage");
        let s = host_sources(root).unwrap();
        let summary: Vec<String> = s
            .iter()
            .map(|s| {
                format!(
                    "{:?} {} {} {}",
                    s.source_type,
                    s.uri,
                    s.suite,
                    s.components.join(",")
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "Deb http://127.0.0.1:1/a one main,contrib",
                "DebSrc http://127.0.0.1:1/a one main",
                "Deb http://127.0.0.1:3/c three main",
                "Deb http://127.0.0.1:2/b two main",
                "Deb http://127.0.0.1:2/b two-updates main",
                "DebSrc http://127.0.0.1:2/b two main",
                "DebSrc http://127.0.0.1:2/b two-updates main",
            ]
        );
        assert_eq!(s[0].architectures, ["amd64", "arm64"]);
        assert_eq!(s[0].signed_by, Some(SignedBy::Path("/k/one.gpg".into())));
        assert!(
            s[0].origin.ends_with("etc/apt/sources.list:2"),
            "{}",
            s[0].origin
        );
        assert!(s[3].origin.ends_with("b.sources:1"), "{}", s[3].origin);
        assert_eq!(s[3].architectures, ["arm64"]);

        let found = find_host_source(&s, "two-updates").unwrap();
        assert_eq!(found.source_type, SourceType::Deb);
        assert_eq!(found.uri, "http://127.0.0.1:2/b");
        assert!(find_host_source(&s, "off").is_none());
        assert!(find_host_source(&s, "four").is_none());
    }

    #[test]
    fn inline_signed_by_keeps_the_block() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/apt/sources.list.d/x.sources",
            "Types: deb\nURIs: http://127.0.0.1:9/x\nSuites: s\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n",
        );
        let s = host_sources(dir.path()).unwrap();
        assert_eq!(
            s[0].signed_by,
            Some(SignedBy::Inline(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----"
                    .into()
            ))
        );
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/apt/sources.list",
            "\n\ndeb [arch=amd64 http://127.0.0.1:1/a one main\n",
        );
        let e = host_sources(dir.path()).unwrap_err().to_string();
        assert!(e.contains("sources.list:3"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/apt/sources.list.d/y.sources",
            "Types: deb\nURIs: http://127.0.0.1:1/a\n",
        );
        let e = host_sources(dir.path()).unwrap_err().to_string();
        assert!(e.contains("y.sources:1") && e.contains("Suites"), "{e}");
    }

    /// The machine's own configuration, when it has one: it must parse, and
    /// each binary source's keyring must load.
    #[test]
    fn reads_the_hosts_configuration() {
        let root = Path::new("/");
        if !root.join("etc/apt").is_dir() {
            eprintln!("skipped: no /etc/apt on this machine");
            return;
        }
        let sources = host_sources(root).unwrap();
        for s in sources.iter().filter(|s| s.source_type == SourceType::Deb) {
            match load_keyring(root, s) {
                Ok(ring) => assert!(!ring.is_empty(), "{}", s.origin),
                Err(HostConfError::NoKeyring { .. }) => eprintln!("{}: no keyring", s.origin),
                Err(e) => panic!("{e}"),
            }
        }
        eprintln!("{} host sources", sources.len());
    }

    #[test]
    fn missing_configuration_is_empty_and_default_keyring_error_names_source() {
        let dir = tempfile::tempdir().unwrap();
        assert!(host_sources(dir.path()).unwrap().is_empty());
        let source = HostSource {
            source_type: SourceType::Deb,
            uri: "http://127.0.0.1:1/a".into(),
            suite: "s".into(),
            components: vec!["main".into()],
            architectures: vec![],
            signed_by: None,
            origin: "f:1".into(),
        };
        let e = load_keyring(dir.path(), &source).unwrap_err();
        assert!(matches!(e, HostConfError::NoKeyring { .. }), "{e}");
        let missing = HostSource {
            signed_by: Some(SignedBy::Path("/nope.gpg".into())),
            ..source
        };
        let e = load_keyring(dir.path(), &missing).unwrap_err().to_string();
        assert!(e.contains("nope.gpg"), "{e}");
    }
}
