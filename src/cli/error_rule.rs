//! The error rule the CLI's chain printing relies on: a cause is
//! interpolated into a message or attached as its source, never both, so
//! `print_error` prints every message of a chain once and hides none.
//! Checked on the crate's own source: every type deriving `Error`, each
//! variant's `#[error(...)]` against the field that is its source.

use std::path::Path;

use syn::parse::ParseStream;
use syn::{Attribute, Fields, Item, LitStr, Meta};

/// Every variant (or struct) of `file`'s error types whose message names
/// its own source, as `Type::Variant: why`.
fn interpolated_sources(file: &syn::File) -> Vec<String> {
    let mut found = Vec::new();
    visit(&file.items, &mut found);
    found
}

fn visit(items: &[Item], found: &mut Vec<String>) {
    for item in items {
        match item {
            Item::Enum(e) if derives_error(&e.attrs) => {
                for v in &e.variants {
                    check(
                        &format!("{}::{}", e.ident, v.ident),
                        &v.attrs,
                        &v.fields,
                        found,
                    );
                }
            }
            Item::Struct(s) if derives_error(&s.attrs) => {
                check(&s.ident.to_string(), &s.attrs, &s.fields, found);
            }
            Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    visit(items, found);
                }
            }
            _ => {}
        }
    }
}

fn derives_error(attrs: &[Attribute]) -> bool {
    let mut error = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = a.parse_nested_meta(|m| {
            error |= m.path.segments.last().is_some_and(|s| s.ident == "Error");
            Ok(())
        });
    }
    error
}

/// The source field: marked `#[source]` or `#[from]`, else one named
/// `source` (thiserror's rule). Named by its name, or its index in a
/// tuple variant.
fn source_field(fields: &Fields) -> Option<String> {
    let name = |i: usize, f: &syn::Field| {
        f.ident
            .as_ref()
            .map_or_else(|| i.to_string(), |id| id.to_string())
    };
    let marked = fields.iter().enumerate().find(|(_, f)| {
        f.attrs
            .iter()
            .any(|a| a.path().is_ident("source") || a.path().is_ident("from"))
    });
    match marked {
        Some((i, f)) => Some(name(i, f)),
        None => fields
            .iter()
            .enumerate()
            .map(|(i, f)| name(i, f))
            .find(|n| n == "source"),
    }
}

fn check(place: &str, attrs: &[Attribute], fields: &Fields, found: &mut Vec<String>) {
    let Some(source) = source_field(fields) else {
        return;
    };
    for a in attrs.iter().filter(|a| a.path().is_ident("error")) {
        let Meta::List(list) = &a.meta else {
            continue;
        };
        let tokens = list.tokens.to_string();
        if tokens == "transparent" {
            continue;
        }
        let Ok(format) = list.parse_args_with(|input: ParseStream| {
            let format: LitStr = input.parse()?;
            // The arguments after the format string are read as text below.
            input.step(|cursor| {
                let mut rest = *cursor;
                while let Some((_, next)) = rest.token_tree() {
                    rest = next;
                }
                Ok(((), rest))
            })?;
            Ok(format)
        }) else {
            found.push(format!("{place}: its #[error] is not a format string"));
            continue;
        };
        if placeholders(&format.value()).any(|p| p == source) {
            found.push(format!(
                "{place}: the message interpolates `{source}`, its source"
            ));
        }
        // Further arguments name fields as `.field`.
        let compact: String = tokens.chars().filter(|c| !c.is_whitespace()).collect();
        let literal: String = format
            .token()
            .to_string()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let args = compact.strip_prefix(&literal).unwrap_or("");
        let needle = format!(".{source}");
        let named = args.match_indices(&needle).any(|(at, _)| {
            !args[at + needle.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        });
        if named {
            found.push(format!(
                "{place}: an argument of the message uses `{source}`, its source"
            ));
        }
    }
}

/// The names (or indexes) a format string interpolates: `{name}`,
/// `{0:?}`, not `{{`.
fn placeholders(format: &str) -> impl Iterator<Item = &str> {
    let mut names = Vec::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(escaped) = rest.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let end = rest.find('}').unwrap_or(rest.len());
        let inner = &rest[..end];
        names.push(inner.split(':').next().unwrap_or("").trim());
        rest = &rest[end.min(rest.len())..];
    }
    names.into_iter()
}

#[test]
fn no_error_interpolates_its_own_source() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut types = 0;
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(&src).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let file =
            syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        types += text.matches("thiserror::Error)]").count();
        let shown = entry
            .path()
            .strip_prefix(&src)
            .unwrap()
            .display()
            .to_string();
        found.extend(
            interpolated_sources(&file)
                .into_iter()
                .map(|f| format!("src/{shown}: {f}")),
        );
    }
    assert!(
        types > 30,
        "only {types} error types found under {}",
        src.display()
    );
    assert!(
        found.is_empty(),
        "interpolate the cause or attach it as #[source], never both:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_each_way_of_doing_both() {
    let text = r#"
        #[derive(Debug, thiserror::Error)]
        pub enum E {
            #[error("reading {path}: {source}")]
            Named { path: String, source: std::io::Error },
            #[error("writing: {0}")]
            Tuple(#[from] std::io::Error),
            #[error("{0:?} failed")]
            Debugged(#[source] std::io::Error),
            #[error("{}", .cause.to_string())]
            Argument { #[source] cause: std::io::Error },
            #[error("reading {path}")]
            Attached { path: String, #[source] error: std::io::Error },
            #[error("reading {path}: {error}")]
            Interpolated { path: String, error: std::io::Error },
            #[error("{{source}} is literal text, {sources} another field")]
            Escaped { sources: String, source: std::io::Error },
            #[error(transparent)]
            Transparent(#[from] std::fmt::Error),
        }
        mod inner {
            #[derive(Debug, Error)]
            #[error("bad: {source}")]
            pub struct S { source: std::io::Error }
        }
    "#;
    let found = interpolated_sources(&syn::parse_file(text).unwrap());
    assert_eq!(
        found,
        [
            "E::Named: the message interpolates `source`, its source",
            "E::Tuple: the message interpolates `0`, its source",
            "E::Debugged: the message interpolates `0`, its source",
            "E::Argument: an argument of the message uses `cause`, its source",
            "S: the message interpolates `source`, its source",
        ]
    );
}

#[test]
fn every_message_of_a_chain_is_printed_once() {
    // A context that repeats its cause's words still shows the cause: the
    // rule above is what keeps messages from repeating, not the printer.
    let cause = std::io::Error::other("disk full");
    let err = anyhow::Error::new(cause)
        .context("writing /out/index.json: disk full")
        .context("writing the layout");
    assert_eq!(
        super::error_lines(&err),
        [
            "error: writing the layout",
            "  caused by: writing /out/index.json: disk full",
            "  caused by: disk full",
        ]
    );
}
