//! Application packages named in a diff: the Python distributions two
//! layers hold (their `.dist-info` folders, `NAME-VERSION.dist-info`, as
//! the wheel spec names them), so a changed lock reads as "Python package
//! flask 3.0.0 → 3.1.3", not as two hundred files.

use std::collections::{BTreeMap, BTreeSet};

use super::{Cause, Item};
use crate::source::unpack::LayerEntry;

/// The topic prefix of a package item: the summary names these first.
pub(super) const PACKAGE_TOPIC: &str = "Python package ";

/// `(normalized name, version)` of each `.dist-info` folder in `entries`,
/// by its parent folder (one site-packages may not hold a name twice).
fn distributions(entries: &[LayerEntry]) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for e in entries {
        for (i, part) in e.path.split('/').enumerate() {
            let Some(stem) = part.strip_suffix(".dist-info") else {
                continue;
            };
            let Some((name, version)) = stem.split_once('-') else {
                continue;
            };
            let parent: Vec<&str> = e.path.split('/').take(i).collect();
            let name = crate::python::pylock::normalize(name);
            out.insert((parent.join("/"), name), version.to_string());
            break;
        }
    }
    out
}

/// One item per Python package added, removed or at another version.
pub(super) fn python(a: &[LayerEntry], b: &[LayerEntry]) -> Vec<Item> {
    let (da, db) = (distributions(a), distributions(b));
    let keys: BTreeSet<&(String, String)> = da.keys().chain(db.keys()).collect();
    let mut items = Vec::new();
    for key in keys {
        let (va, vb) = (da.get(key), db.get(key));
        if va == vb {
            continue;
        }
        let name = &key.1;
        let change = match (va, vb) {
            (Some(x), Some(y)) => format!("{x} → {y}"),
            (Some(x), None) => format!("{x} removed"),
            (None, Some(y)) => format!("{y} added"),
            (None, None) => unreachable!("one side has it"),
        };
        items.push(
            Item::new(
                format!("{PACKAGE_TOPIC}{name} (/{})", key.0),
                va.cloned(),
                vb.cloned(),
            )
            .because(Cause::Content)
            .topic(format!("{PACKAGE_TOPIC}{name} {change}")),
        );
    }
    items
}
