//! Two layers' entries compared by path: added, removed, and for entries on
//! both sides every field that differs. An entry whose only difference is
//! its mtime is a timestamp difference; the same entries in another order
//! are an ordering difference.

use std::collections::{BTreeMap, BTreeSet};

use super::{Cause, Item};
use crate::source::unpack::{EntryKind, LayerEntry};

pub fn compare(a: &[LayerEntry], b: &[LayerEntry]) -> Vec<Item> {
    // A path written twice in one layer: the later entry is what unpacks.
    let ma: BTreeMap<&str, &LayerEntry> = a.iter().map(|e| (e.path.as_str(), e)).collect();
    let mb: BTreeMap<&str, &LayerEntry> = b.iter().map(|e| (e.path.as_str(), e)).collect();
    let paths: BTreeSet<&str> = ma.keys().chain(mb.keys()).copied().collect();
    let mut items = Vec::new();
    for p in paths {
        match (ma.get(p), mb.get(p)) {
            (Some(x), None) => items.push(
                Item::new(p, Some(describe(x)), None)
                    .because(Cause::Content)
                    .topic(p),
            ),
            (None, Some(y)) => items.push(
                Item::new(p, None, Some(describe(y)))
                    .because(Cause::Content)
                    .topic(p),
            ),
            (Some(x), Some(y)) => {
                if let Some(item) = changed(p, x, y) {
                    items.push(item);
                }
            }
            (None, None) => {}
        }
    }
    if let Some(item) = order(a, b, &ma, &mb) {
        items.push(item);
    }
    items
}

fn kind_name(k: &EntryKind) -> String {
    match k {
        EntryKind::Dir => "directory".into(),
        EntryKind::File { .. } => "file".into(),
        EntryKind::Symlink(_) => "symlink".into(),
        EntryKind::Hardlink(_) => "hard link".into(),
        EntryKind::Whiteout => "whiteout".into(),
        EntryKind::Opaque => "opaque whiteout".into(),
        EntryKind::Other(c) => format!("special ({c})"),
    }
}

fn describe(e: &LayerEntry) -> String {
    let what = match &e.kind {
        EntryKind::File { size, digest } => format!("file {size} bytes {digest}"),
        EntryKind::Symlink(t) => format!("symlink -> {t}"),
        EntryKind::Hardlink(t) => format!("hard link to {t}"),
        k => kind_name(k),
    };
    format!(
        "{what}, mode {:04o}, owner {}:{}, mtime {}",
        e.mode & 0o7777,
        e.uid,
        e.gid,
        e.mtime
    )
}

/// The fields of `x` and `y` that differ, as one item; `None` when none do.
fn changed(path: &str, x: &LayerEntry, y: &LayerEntry) -> Option<Item> {
    let mut da = Vec::new();
    let mut db = Vec::new();
    let mut content = false;
    let mut field = |name: &str, a: String, b: String, is_content: bool| {
        if a != b {
            da.push(format!("{name} {a}"));
            db.push(format!("{name} {b}"));
            content |= is_content;
        }
    };
    match (&x.kind, &y.kind) {
        (
            EntryKind::File {
                size: sa,
                digest: ga,
            },
            EntryKind::File {
                size: sb,
                digest: gb,
            },
        ) => {
            field("content", ga.to_string(), gb.to_string(), true);
            field("size", sa.to_string(), sb.to_string(), true);
        }
        (EntryKind::Symlink(ta), EntryKind::Symlink(tb))
        | (EntryKind::Hardlink(ta), EntryKind::Hardlink(tb)) => {
            field("link target", ta.clone(), tb.clone(), true);
        }
        (ka, kb) => field("type", kind_name(ka), kind_name(kb), true),
    }
    field(
        "mode",
        format!("{:04o}", x.mode & 0o7777),
        format!("{:04o}", y.mode & 0o7777),
        true,
    );
    field(
        "owner",
        format!("{}:{}", x.uid, x.gid),
        format!("{}:{}", y.uid, y.gid),
        true,
    );
    let xattrs = |e: &LayerEntry| {
        e.xattrs
            .iter()
            .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
            .join(",")
    };
    field("xattrs", xattrs(x), xattrs(y), true);
    field("mtime", x.mtime.to_string(), y.mtime.to_string(), false);
    if da.is_empty() {
        return None;
    }
    let item = Item::new(path, Some(da.join(", ")), Some(db.join(", ")));
    Some(if content {
        item.because(Cause::Content).topic(path)
    } else {
        item.because(Cause::Timestamps).topic("file mtimes")
    })
}

/// The entries both layers hold, in each layer's stream order: an item at
/// the first place they part, if they do.
fn order(
    a: &[LayerEntry],
    b: &[LayerEntry],
    ma: &BTreeMap<&str, &LayerEntry>,
    mb: &BTreeMap<&str, &LayerEntry>,
) -> Option<Item> {
    let sa: Vec<&str> = a
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| mb.contains_key(p))
        .collect();
    let sb: Vec<&str> = b
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| ma.contains_key(p))
        .collect();
    let at = sa.iter().zip(&sb).position(|(x, y)| x != y)?;
    Some(
        Item::new(
            "entry order",
            Some(format!("#{}: {}", at + 1, sa[at])),
            Some(format!("#{}: {}", at + 1, sb[at])),
        )
        .because(Cause::Ordering)
        .topic("tar order"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;

    fn file(path: &str, data: &[u8], mtime: u64) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::File {
                size: data.len() as u64,
                digest: Digest::of(data),
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }

    #[test]
    fn mtimes_order_and_content_are_told_apart() {
        let a = vec![file("a", b"1", 5), file("b", b"2", 5)];
        let same = compare(&a, &a);
        assert!(same.is_empty(), "{same:?}");

        let later = vec![file("a", b"1", 6), file("b", b"2", 6)];
        let items = compare(&a, &later);
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|i| i.cause == Some(Cause::Timestamps)));
        assert_eq!(items[0].a.as_deref(), Some("mtime 5"));

        let swapped = vec![file("b", b"2", 5), file("a", b"1", 5)];
        let items = compare(&a, &swapped);
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0].cause, Some(Cause::Ordering));
        assert_eq!(items[0].a.as_deref(), Some("#1: a"));

        let mut edited = a.clone();
        edited[1] = file("b", b"22", 5);
        edited.push(file("c", b"", 5));
        let items = compare(&a, &edited);
        let whats: Vec<(&str, Option<Cause>)> =
            items.iter().map(|i| (i.what.as_str(), i.cause)).collect();
        assert_eq!(
            whats,
            [("b", Some(Cause::Content)), ("c", Some(Cause::Content))]
        );
        assert!(items[0].a.as_ref().unwrap().contains("size 1"));
        assert_eq!(items[1].a, None);
    }
}
