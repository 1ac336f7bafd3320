//! Packages indexes (deb822 stanzas, one per binary package) and the
//! relationship fields inside them (Depends, Provides, Conflicts, …), as
//! Debian policy §5.1 and §7.1 describe them.

use std::fmt;

use crate::apt::Package;
use crate::oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{index} line {line}: {} has no {field} field; the index is malformed, fetch it again or report it to the repository's maintainers", describe(.package))]
    MissingField {
        index: String,
        line: usize,
        /// The stanza's `Package`, when it has one.
        package: Option<String>,
        field: &'static str,
    },
    #[error("{index} line {line}: package {package} has SHA256 `{value}`, which is not 64 hex digits; the index is malformed, fetch it again or report it to the repository's maintainers")]
    BadSha256 {
        index: String,
        line: usize,
        package: String,
        value: String,
    },
    #[error("{index} line {line}: package {package} has Size `{value}`, which is not a byte count; the index is malformed, fetch it again or report it to the repository's maintainers")]
    BadSize {
        index: String,
        line: usize,
        package: String,
        value: String,
    },
    #[error("{index} line {line}: `{text}` is neither a `Field: value` line nor a continuation line; the index is malformed, fetch it again or check that the URL serves a Packages file")]
    BadLine {
        index: String,
        line: usize,
        text: String,
    },
}

fn describe(package: &Option<String>) -> String {
    match package {
        Some(p) => format!("package {p}"),
        None => "the stanza starting here".to_string(),
    }
}

/// One field of a stanza: name, value (continuation lines joined with
/// `\n`) and the 1-based line it starts on.
struct Field<'a> {
    name: &'a str,
    value: String,
    line: usize,
}

struct Stanza<'a> {
    line: usize,
    text: String,
    fields: Vec<Field<'a>>,
}

impl Stanza<'_> {
    /// Field names are case-insensitive (policy §5.1); the first wins.
    fn get(&self, name: &str) -> Option<&Field<'_>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    fn value(&self, name: &str) -> String {
        self.get(name).map(|f| f.value.clone()).unwrap_or_default()
    }
}

fn split_stanzas<'a>(text: &'a str, index: &str) -> Result<Vec<Stanza<'a>>, ControlError> {
    let mut stanzas = Vec::new();
    let mut current: Option<Stanza<'a>> = None;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            stanzas.extend(current.take());
            continue;
        }
        if line.starts_with('#') {
            continue; // deb822 comment
        }
        let stanza = current.get_or_insert_with(|| Stanza {
            line: line_no,
            text: String::new(),
            fields: Vec::new(),
        });
        stanza.text.push_str(line);
        stanza.text.push('\n');
        if line.starts_with([' ', '\t']) {
            match stanza.fields.last_mut() {
                Some(f) => {
                    f.value.push('\n');
                    f.value.push_str(line.trim_end());
                }
                None => {
                    return Err(ControlError::BadLine {
                        index: index.to_string(),
                        line: line_no,
                        text: line.to_string(),
                    })
                }
            }
        } else if let Some((name, value)) = line
            .split_once(':')
            .filter(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace))
        {
            stanza.fields.push(Field {
                name,
                value: value.trim().to_string(),
                line: line_no,
            });
        } else {
            return Err(ControlError::BadLine {
                index: index.to_string(),
                line: line_no,
                text: line.to_string(),
            });
        }
    }
    stanzas.extend(current);
    Ok(stanzas)
}

/// Parses a Packages index. `name` names the index in errors (e.g.
/// `bookworm main/binary-amd64/Packages`); `source_index` is recorded in
/// every package.
pub(crate) fn parse_packages_index(
    text: &str,
    name: &str,
    source_index: usize,
) -> Result<Vec<Package>, ControlError> {
    let mut packages = Vec::new();
    for stanza in split_stanzas(text, name)? {
        packages.push(package_from(&stanza, name, source_index)?);
    }
    Ok(packages)
}

fn package_from(
    stanza: &Stanza<'_>,
    index: &str,
    source_index: usize,
) -> Result<Package, ControlError> {
    let package_name = stanza.get("Package").map(|f| f.value.clone());
    let required = |field: &'static str| -> Result<&Field<'_>, ControlError> {
        stanza
            .get(field)
            .filter(|f| !f.value.is_empty())
            .ok_or_else(|| ControlError::MissingField {
                index: index.to_string(),
                line: stanza.line,
                package: package_name.clone(),
                field,
            })
    };
    let name = required("Package")?.value.clone();
    let version = required("Version")?.value.clone();
    let architecture = required("Architecture")?.value.clone();
    let filename = required("Filename")?.value.clone();
    let size_field = required("Size")?;
    let size = size_field
        .value
        .parse::<u64>()
        .map_err(|_| ControlError::BadSize {
            index: index.to_string(),
            line: size_field.line,
            package: name.clone(),
            value: size_field.value.clone(),
        })?;
    let sha_field = required("SHA256")?;
    let sha256 = Digest::from_hex(&sha_field.value.to_ascii_lowercase()).map_err(|_| {
        ControlError::BadSha256 {
            index: index.to_string(),
            line: sha_field.line,
            package: name.clone(),
            value: sha_field.value.clone(),
        }
    })?;
    // `Source: name (version)` when the binary's version differs (binNMUs).
    let source = match stanza.value("Source").split_whitespace().next() {
        Some(s) => s.to_string(),
        None => name.clone(),
    };
    Ok(Package {
        version,
        architecture,
        multi_arch: stanza.value("Multi-Arch"),
        essential: stanza.value("Essential") == "yes",
        priority: stanza.value("Priority"),
        source,
        depends: stanza.value("Depends"),
        pre_depends: stanza.value("Pre-Depends"),
        provides: stanza.value("Provides"),
        conflicts: stanza.value("Conflicts"),
        breaks: stanza.value("Breaks"),
        replaces: stanza.value("Replaces"),
        filename,
        size,
        sha256,
        stanza: stanza.text.clone(),
        source_index,
        name,
    })
}

/// A version relation operator (policy §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Op {
    /// `<<`
    Lt,
    /// `<=` (and the obsolete `<`, which meant the same)
    Le,
    /// `=`
    Eq,
    /// `>=` (and the obsolete `>`, which meant the same)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// Whether a version that compares `order` to the relation's version
    /// satisfies the relation.
    pub(crate) fn accepts(self, order: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Lt => order == Less,
            Op::Le => order != Greater,
            Op::Eq => order == Equal,
            Op::Ge => order != Less,
            Op::Gt => order == Greater,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        })
    }
}

/// One package relation: `name[:arch] [(op version)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Relation {
    pub name: String,
    /// `any`, `native` or an architecture name, as written after `:`.
    pub arch_qualifier: Option<String>,
    pub constraint: Option<(Op, String)>,
}

impl Relation {
    /// Whether a package or Provides entry called `self.name` at `version`
    /// (`None` for an unversioned Provides) satisfies this relation. An
    /// unversioned Provides never satisfies a versioned relation (policy
    /// §7.5).
    pub(crate) fn accepts_version(&self, version: Option<&str>) -> bool {
        match (&self.constraint, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((op, wanted)), Some(v)) => op.accepts(crate::dpkg::version::compare(v, wanted)),
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// Writes an OR group as `a | b (>= 1)`.
pub(crate) fn display_group(group: &[Relation]) -> String {
    group
        .iter()
        .map(Relation::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relation `{relation}`: {problem}")]
pub(crate) struct RelationError {
    pub relation: String,
    pub problem: String,
}

/// Parses a relationship field into an AND of OR groups, for a system of
/// architecture `arch`. Relations whose `[arch …]` restriction excludes
/// `arch` are dropped, and so is a group left empty by that (what
/// dpkg-gencontrol does). Build-profile lists `<…>` are ignored: they only
/// matter when building from source.
pub(crate) fn parse_relations(
    field: &str,
    arch: &str,
) -> Result<Vec<Vec<Relation>>, RelationError> {
    let mut groups = Vec::new();
    for group_text in field.split(',') {
        if group_text.trim().is_empty() {
            continue; // policy allows a trailing comma
        }
        let mut group = Vec::new();
        for text in group_text.split('|') {
            if let Some(relation) = parse_one(text.trim(), arch)? {
                group.push(relation);
            }
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    Ok(groups)
}

/// Parses a field that allows no alternatives (Provides, Conflicts,
/// Breaks, Replaces) into a flat list.
pub(crate) fn parse_relation_list(field: &str, arch: &str) -> Result<Vec<Relation>, RelationError> {
    let groups = parse_relations(field, arch)?;
    if let Some(group) = groups.iter().find(|g| g.len() > 1) {
        return Err(RelationError {
            relation: display_group(group),
            problem: "alternatives (`|`) are not allowed in this field".to_string(),
        });
    }
    Ok(groups.into_iter().flatten().collect())
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || "()[]<>:,|".contains(c)
}

fn parse_one(text: &str, arch: &str) -> Result<Option<Relation>, RelationError> {
    let error = |problem: &str| RelationError {
        relation: text.to_string(),
        problem: problem.to_string(),
    };
    let take_word = |s: &str| -> (String, String) {
        let end = s.find(is_delimiter).unwrap_or(s.len());
        (s[..end].to_string(), s[end..].to_string())
    };
    let (name, mut rest) = take_word(text);
    if name.is_empty() {
        return Err(error("no package name"));
    }
    let mut arch_qualifier = None;
    if let Some(after) = rest.strip_prefix(':') {
        let (qualifier, after) = take_word(after);
        if qualifier.is_empty() {
            return Err(error("empty architecture qualifier after `:`"));
        }
        arch_qualifier = Some(qualifier);
        rest = after;
    }
    let mut rest = rest.trim_start();
    let mut constraint = None;
    if let Some(inner) = rest.strip_prefix('(') {
        let Some((inside, after)) = inner.split_once(')') else {
            return Err(error("`(` without `)`"));
        };
        let inside = inside.trim_start();
        // Longest operators first: `<<` and `<=` before the obsolete `<`.
        let ops = [
            ("<<", Op::Lt),
            ("<=", Op::Le),
            (">>", Op::Gt),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Le),
            (">", Op::Ge),
        ];
        let Some((op, version)) = ops
            .iter()
            .find_map(|(s, op)| inside.strip_prefix(s).map(|v| (*op, v.trim())))
        else {
            return Err(error("the version needs an operator (<<, <=, =, >=, >>)"));
        };
        if version.is_empty() || version.contains(char::is_whitespace) {
            return Err(error("the version is empty or contains spaces"));
        }
        constraint = Some((op, version.to_string()));
        rest = after.trim_start();
    }
    let mut applies = true;
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((list, after)) = inner.split_once(']') else {
            return Err(error("`[` without `]`"));
        };
        applies = arch_list_applies(list, arch).map_err(|p| error(&p))?;
        rest = after.trim_start();
    }
    while let Some(inner) = rest.strip_prefix('<') {
        let Some((_, after)) = inner.split_once('>') else {
            return Err(error("`<` without `>`"));
        };
        rest = after.trim_start();
    }
    if !rest.is_empty() {
        return Err(error(&format!("unexpected `{rest}`")));
    }
    Ok(applies.then_some(Relation {
        name,
        arch_qualifier,
        constraint,
    }))
}

/// Whether an architecture restriction list (`amd64 arm64` or `!armel
/// !armhf`) includes `arch`. Mixing positive and negated entries is an
/// error in dpkg too.
fn arch_list_applies(list: &str, arch: &str) -> Result<bool, String> {
    let entries: Vec<&str> = list.split_whitespace().collect();
    if entries.is_empty() {
        return Err("empty architecture list".to_string());
    }
    let negated = entries.iter().filter(|e| e.starts_with('!')).count();
    if negated != 0 && negated != entries.len() {
        return Err("an architecture list must be all negated or none".to_string());
    }
    let matched = entries
        .iter()
        .any(|e| arch_matches(e.trim_start_matches('!'), arch));
    Ok(if negated == 0 { matched } else { !matched })
}

/// Whether `pattern` (an architecture or a wildcard such as `any`,
/// `linux-any`, `any-amd64`) covers `arch`. Debian architecture names
/// without an OS prefix are Linux; the CPU is the name itself except for
/// the ARM EABI variants. This is dpkg's tuple matching reduced to the
/// OS and CPU parts, which is all that Linux architectures differ in.
pub(crate) fn arch_matches(pattern: &str, arch: &str) -> bool {
    if pattern == arch || pattern == "any" {
        return true;
    }
    let (os, cpu) = split_arch(arch);
    let Some((p_os, p_cpu)) = pattern.split_once('-') else {
        return false;
    };
    (p_os == "any" || p_os == os) && (p_cpu == "any" || p_cpu == cpu)
}

fn split_arch(arch: &str) -> (&str, &str) {
    let (os, cpu) = arch.split_once('-').unwrap_or(("linux", arch));
    let cpu = match cpu {
        "armhf" | "armel" => "arm",
        "x32" => "amd64",
        other => other,
    };
    (os, cpu)
}

#[cfg(test)]
mod tests;
