//! `stele diff`: two images compared the way a person debugging a digest
//! mismatch would, top down (index, manifests, configs, layers, then file
//! by file within each layer pair), ending in the likely cause. diffoci
//! does the same for Docker images; the causes named here are the ones
//! that break reproducible builds in practice.
//!
//! Items whose difference follows from another one (a layer's digest when
//! its files differ, a config digest when a field differs) carry no cause,
//! so the cause is named from the differences that explain the rest.

mod config;
mod files;
mod packages;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::image::provenance::SBOM_PATH;
use crate::oci::{Digest, Image};
use crate::source::unpack::{for_each_entry, LayerReadError};
use crate::source::Opened;

/// Why two images differ, from the most to the least telling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// Files or image structure differ.
    Content,
    /// Config fields other than times differ.
    Config,
    Annotations,
    /// The same tar entries in another order.
    Ordering,
    /// Only file mtimes and config or history `created` differ.
    Timestamps,
    /// The same uncompressed layers compressed differently.
    Compression,
    /// The same documents and entries, encoded differently (JSON white
    /// space or key order, tar header format).
    Encoding,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Content => "content",
            Cause::Config => "config",
            Cause::Annotations => "annotations",
            Cause::Ordering => "ordering",
            Cause::Timestamps => "timestamps",
            Cause::Compression => "compression",
            Cause::Encoding => "encoding",
        }
    }
}

/// One difference: what differs and its value on each side (`None`: absent
/// on that side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    pub what: String,
    pub a: Option<String>,
    pub b: Option<String>,
    pub cause: Option<Cause>,
    /// What the summary calls it (`file mtimes`, a file's path, `cmd`).
    #[serde(skip)]
    pub topic: String,
}

impl Item {
    pub fn new(what: impl Into<String>, a: Option<String>, b: Option<String>) -> Item {
        let what = what.into();
        Item {
            topic: what.clone(),
            what,
            a,
            b,
            cause: None,
        }
    }

    pub(crate) fn because(mut self, cause: Cause) -> Item {
        self.cause = Some(cause);
        self
    }

    pub(crate) fn topic(mut self, topic: impl Into<String>) -> Item {
        self.topic = topic.into();
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Section {
    pub title: String,
    pub items: Vec<Item>,
    /// A file section (its content items name files in the summary).
    #[serde(skip)]
    pub files: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub name: String,
    pub digest: Digest,
}

#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub a: Side,
    pub b: Side,
    pub sections: Vec<Section>,
}

impl Diff {
    pub fn identical(&self) -> bool {
        self.a.digest == self.b.digest
    }

    pub fn causes(&self) -> BTreeSet<Cause> {
        self.sections
            .iter()
            .flat_map(|s| &s.items)
            .filter_map(|i| i.cause)
            .collect()
    }

    /// The likely cause in words: `compression only (…)`, `timestamps only
    /// (…)`, `content (…)`, … or several joined.
    pub(crate) fn likely_cause(&self) -> String {
        if self.identical() {
            return "identical".into();
        }
        let causes = self.causes();
        let only = causes.len() == 1;
        let parts: Vec<String> = causes
            .iter()
            .map(|&c| {
                let topics = self.topics(c);
                // "content only" and "ordering only" would say less than
                // the plain words: content explains any other difference,
                // and a reordering is never a matter of degree.
                let what = match c {
                    Cause::Content | Cause::Ordering => c.name().to_string(),
                    _ if only => format!("{} only", c.name()),
                    _ => c.name().to_string(),
                };
                let hint = match c {
                    Cause::Compression => "same DiffIDs, different digests".to_string(),
                    Cause::Ordering => "same entries, different tar order".to_string(),
                    Cause::Content => {
                        let (named, files): (Vec<String>, Vec<String>) = self
                            .file_topics()
                            .into_iter()
                            .partition(|t| t.starts_with(packages::PACKAGE_TOPIC));
                        if !named.is_empty() {
                            // The packages explain their files.
                            list(&named)
                        } else if files.is_empty() {
                            list(&topics)
                        } else {
                            format!(
                                "{} file{} differ{}: {}",
                                files.len(),
                                if files.len() == 1 { "" } else { "s" },
                                if files.len() == 1 { "s" } else { "" },
                                list(&files)
                            )
                        }
                    }
                    _ => list(&topics),
                };
                format!("{what} ({hint})")
            })
            .collect();
        if parts.is_empty() {
            let provenance = self
                .sections
                .iter()
                .flat_map(|s| &s.items)
                .any(|i| i.topic == PROVENANCE_TOPIC);
            return if provenance {
                "provenance only (the recipe or lock changed, nothing they make did)".into()
            } else {
                "the digests differ but nothing compared does".into()
            };
        }
        parts.join("; ")
    }

    /// The first line: identical, or how and why they differ.
    pub(crate) fn summary(&self) -> String {
        if self.identical() {
            format!("identical: both are {}", self.a.digest)
        } else {
            format!("differ: {}", self.likely_cause())
        }
    }

    fn topics(&self, cause: Cause) -> Vec<String> {
        let mut seen = Vec::new();
        for i in self.sections.iter().flat_map(|s| &s.items) {
            if i.cause == Some(cause) && !seen.contains(&i.topic) {
                seen.push(i.topic.clone());
            }
        }
        seen
    }

    fn file_topics(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for s in self.sections.iter().filter(|s| s.files) {
            for i in &s.items {
                if i.cause == Some(Cause::Content) && !seen.contains(&i.topic) {
                    seen.push(i.topic.clone());
                }
            }
        }
        seen
    }
}

/// Up to three names, then how many more.
fn list(names: &[String]) -> String {
    let mut s = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        s.push_str(&format!(" and {} more", names.len() - 3));
    }
    s
}

/// JSON text of a value for display.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compares `a` and `b`. Fails only when a layer cannot be read.
pub fn diff(a: &Opened, b: &Opened) -> Result<Diff, LayerReadError> {
    let mut d = Diff {
        a: Side {
            name: a.name.clone(),
            digest: a.digest().clone(),
        },
        b: Side {
            name: b.name.clone(),
            digest: b.digest().clone(),
        },
        sections: Vec::new(),
    };
    if d.identical() {
        return Ok(d);
    }
    let mut top = Vec::new();
    let pairs = pair_images(a, b, &mut top);
    if let (Some(ia), Some(ib)) = (&a.built.index, &b.built.index) {
        let va = value(&ia.bytes);
        let vb = value(&ib.bytes);
        compare_document_type(&va, &vb, "index media type", &mut top);
        annotations(&va, &vb, &mut top);
    }
    push(&mut d, "index", top);
    for (ia, ib) in pairs {
        compare_images(a, ia, b, ib, &mut d)?;
    }
    if d.causes().is_empty() {
        let mut items = Vec::new();
        items.push(
            Item::new(
                "documents",
                Some(format!("{} bytes", top_size(a))),
                Some(format!("{} bytes", top_size(b))),
            )
            .because(Cause::Encoding)
            .topic("JSON formatting or key order"),
        );
        push(&mut d, "encoding", items);
    }
    Ok(d)
}

fn top_size(o: &Opened) -> usize {
    match &o.built.index {
        Some(i) => i.bytes.len(),
        None => o.built.images[0].manifest.bytes.len(),
    }
}

fn push(d: &mut Diff, title: impl Into<String>, items: Vec<Item>) {
    push_section(d, title, items, false);
}

fn push_section(d: &mut Diff, title: impl Into<String>, items: Vec<Item>, files: bool) {
    if !items.is_empty() {
        d.sections.push(Section {
            title: title.into(),
            items,
            files,
        });
    }
}

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Images paired by platform; platforms on one side only are items.
/// Two single-platform images are paired whatever their platforms (their
/// configs then show the difference).
fn pair_images<'a>(
    a: &'a Opened,
    b: &'a Opened,
    items: &mut Vec<Item>,
) -> Vec<(&'a Image, &'a Image)> {
    let (ia, ib) = (&a.built.images, &b.built.images);
    match (&a.built.index, &b.built.index) {
        (None, None) => return vec![(&ia[0], &ib[0])],
        (Some(_), None) | (None, Some(_)) => {
            let shape = |o: &Opened| match &o.built.index {
                Some(_) => format!("index of {} platforms", o.built.images.len()),
                None => "single manifest".to_string(),
            };
            items.push(Item::new("top", Some(shape(a)), Some(shape(b))).because(Cause::Content));
        }
        (Some(_), Some(_)) => {}
    }
    let by_platform = |images: &'a [Image]| -> BTreeMap<String, &'a Image> {
        images.iter().map(|i| (i.platform.to_string(), i)).collect()
    };
    let (ma, mb) = (by_platform(ia), by_platform(ib));
    let mut pairs = Vec::new();
    for (p, i) in &ma {
        match mb.get(p) {
            Some(j) => pairs.push((*i, *j)),
            None => items.push(
                Item::new(
                    format!("platform {p}"),
                    Some(i.manifest.digest.to_string()),
                    None,
                )
                .because(Cause::Content),
            ),
        }
    }
    for (p, j) in &mb {
        if !ma.contains_key(p) {
            items.push(
                Item::new(
                    format!("platform {p}"),
                    None,
                    Some(j.manifest.digest.to_string()),
                )
                .because(Cause::Content),
            );
        }
    }
    pairs
}

fn compare_document_type(va: &Value, vb: &Value, what: &str, items: &mut Vec<Item>) {
    if va["mediaType"] != vb["mediaType"] {
        items.push(
            Item::new(what, opt(&va["mediaType"]), opt(&vb["mediaType"])).because(Cause::Encoding),
        );
    }
}

pub(crate) fn opt(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        v => Some(show(v)),
    }
}

/// Whether two embedded SBOMs say the same but for their creation time
/// (and the namespace, a hash of the content that time is part of).
fn sbom_differs_only_in_time(a: &[u8], b: &[u8]) -> bool {
    let strip = |bytes: &[u8]| {
        let mut v: Value = serde_json::from_slice(bytes).ok()?;
        let doc = v.as_object_mut()?;
        doc.remove("documentNamespace");
        doc.get_mut("creationInfo")?
            .as_object_mut()?
            .remove("created");
        Some(v)
    };
    matches!((strip(a), strip(b)), (Some(x), Some(y)) if x == y)
}

/// Topic of the recorded recipe and lock digests when both sides have
/// them: they follow from the inputs, so they are no cause of their own
/// (the differences the changed inputs made are).
pub(crate) const PROVENANCE_TOPIC: &str = "recorded recipe or lock digest";

/// How a difference in annotation or label `key` is classified, when both
/// sides have it: the created time is a timestamp, the recorded digests
/// are no cause (see [`PROVENANCE_TOPIC`]).
pub(crate) fn classify_provenance(item: Item, key: &str) -> Item {
    if item.a.is_none() || item.b.is_none() {
        return item;
    }
    if key == crate::oci::model::ANNOTATION_CREATED {
        let topic = item.topic.clone();
        return item.because(Cause::Timestamps).topic(topic);
    }
    if key == crate::image::provenance::KEY_RECIPE_DIGEST
        || key == crate::image::provenance::KEY_LOCK_DIGEST
    {
        return Item {
            cause: None,
            topic: PROVENANCE_TOPIC.into(),
            ..item
        };
    }
    item
}

/// `org.opencontainers.image.created` is a time and the recorded digests
/// follow the inputs (see [`classify_provenance`]); every other
/// annotation is an annotation.
fn annotations(va: &Value, vb: &Value, items: &mut Vec<Item>) {
    let empty = serde_json::Map::new();
    let aa = va["annotations"].as_object().unwrap_or(&empty);
    let ab = vb["annotations"].as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = aa.keys().chain(ab.keys()).collect();
    for k in keys {
        let (x, y) = (aa.get(k), ab.get(k));
        if x != y {
            items.push(classify_provenance(
                Item::new(format!("annotation {k}"), x.map(show), y.map(show))
                    .because(Cause::Annotations)
                    .topic(k.clone()),
                k,
            ));
        }
    }
}

fn compare_images(
    oa: &Opened,
    a: &Image,
    ob: &Opened,
    b: &Image,
    d: &mut Diff,
) -> Result<(), LayerReadError> {
    if a.manifest.digest == b.manifest.digest {
        return Ok(());
    }
    let label = if a.platform == b.platform {
        a.platform.to_string()
    } else {
        format!("{} / {}", a.platform, b.platform)
    };
    let va = value(&a.manifest.bytes);
    let vb = value(&b.manifest.bytes);
    let mut items = Vec::new();
    compare_document_type(&va, &vb, "media type", &mut items);
    if va["artifactType"] != vb["artifactType"] {
        items.push(
            Item::new(
                "artifactType",
                opt(&va["artifactType"]),
                opt(&vb["artifactType"]),
            )
            .because(Cause::Content),
        );
    }
    if va["config"]["mediaType"] != vb["config"]["mediaType"] {
        items.push(
            Item::new(
                "config media type",
                opt(&va["config"]["mediaType"]),
                opt(&vb["config"]["mediaType"]),
            )
            .because(Cause::Encoding),
        );
    }
    if va["subject"] != vb["subject"] {
        items.push(
            Item::new(
                "subject",
                opt(&va["subject"]["digest"]),
                opt(&vb["subject"]["digest"]),
            )
            .because(Cause::Content),
        );
    }
    annotations(&va, &vb, &mut items);
    if a.layers.len() != b.layers.len() {
        items.push(
            Item::new(
                "layer count",
                Some(a.layers.len().to_string()),
                Some(b.layers.len().to_string()),
            )
            .because(Cause::Content),
        );
    }
    push(d, format!("{label} manifest"), items);

    if a.config.digest != b.config.digest {
        let mut items = config::compare(&value(&a.config.bytes), &value(&b.config.bytes));
        if items.is_empty() {
            items.push(
                Item::new(
                    "config document",
                    Some(a.config.digest.to_string()),
                    Some(b.config.digest.to_string()),
                )
                .because(Cause::Encoding)
                .topic("config JSON formatting"),
            );
        }
        push(d, format!("{label} config"), items);
    }

    let n = a.layers.len().max(b.layers.len());
    // A pair of layers compared once: the same pair again (an image that
    // names a layer many times) is told by reference, not read again.
    let mut compared: BTreeMap<(&Digest, &Digest), usize> = BTreeMap::new();
    for i in 0..n {
        let title = format!("{label} layer {}/{n}", i + 1);
        match (a.layers.get(i), b.layers.get(i)) {
            (Some(la), Some(lb)) if la.digest == lb.digest => {
                // The same bytes named as another format (OCI and Docker
                // layer types name the same tar+gzip).
                if la.media_type != lb.media_type {
                    let item = Item::new(
                        "media type",
                        Some(la.media_type.to_string()),
                        Some(lb.media_type.to_string()),
                    )
                    .because(Cause::Encoding)
                    .topic(format!("layer {} media type", i + 1));
                    push(d, title, vec![item]);
                }
            }
            (Some(la), Some(lb)) if compared.contains_key(&(&la.digest, &lb.digest)) => {
                let first = compared[&(&la.digest, &lb.digest)];
                let item = Item::new(
                    "digest",
                    Some(la.digest.to_string()),
                    Some(lb.digest.to_string()),
                )
                .topic(format!("layer {} (as layer {first})", i + 1));
                push(d, title, vec![item]);
            }
            (Some(la), Some(lb)) => {
                compared.insert((&la.digest, &lb.digest), i + 1);
                let mut items = Vec::new();
                items.push(Item::new(
                    "digest",
                    Some(la.digest.to_string()),
                    Some(lb.digest.to_string()),
                ));
                if la.size != lb.size {
                    items.push(Item::new(
                        "size",
                        Some(la.size.to_string()),
                        Some(lb.size.to_string()),
                    ));
                }
                if la.media_type != lb.media_type {
                    items.push(
                        Item::new(
                            "media type",
                            Some(la.media_type.to_string()),
                            Some(lb.media_type.to_string()),
                        )
                        .because(Cause::Compression)
                        .topic(format!("layer {}", i + 1)),
                    );
                }
                // The embedded SBOM's content is kept: its only time is
                // the epoch, which a rebuild with another epoch changes.
                let sbom_key = SBOM_PATH.trim_start_matches('/');
                let keep = |p: &str| p == sbom_key;
                let (mut ea, mut sa) = (Vec::new(), None);
                let da = for_each_entry(&oa.store, la, &keep, &mut |e, c| {
                    sa = sa.take().or(c);
                    ea.push(e)
                })?;
                let (mut eb, mut sb) = (Vec::new(), None);
                let db = for_each_entry(&ob.store, lb, &keep, &mut |e, c| {
                    sb = sb.take().or(c);
                    eb.push(e)
                })?;
                if da == db {
                    items.push(
                        Item::new(
                            "diff_id (unchanged)",
                            Some(da.to_string()),
                            Some(db.to_string()),
                        )
                        .because(Cause::Compression)
                        .topic(format!("layer {}", i + 1)),
                    );
                    push(d, title, items);
                } else {
                    items.push(Item::new(
                        "diff_id",
                        Some(da.to_string()),
                        Some(db.to_string()),
                    ));
                    push(d, title.clone(), items);
                    let mut file_items = packages::python(&ea, &eb);
                    file_items.extend(files::compare(&ea, &eb));
                    if let (Some(x), Some(y)) = (&sa, &sb) {
                        if sbom_differs_only_in_time(x, y) {
                            for item in file_items.iter_mut().filter(|i| i.what == sbom_key) {
                                item.cause = Some(Cause::Timestamps);
                                item.topic = "embedded SBOM created".into();
                            }
                        }
                    }
                    if file_items.is_empty() {
                        file_items.push(
                            Item::new("tar stream", Some(da.to_string()), Some(db.to_string()))
                                .because(Cause::Encoding)
                                .topic("tar headers or padding"),
                        );
                    }
                    push_section(d, format!("{title} files"), file_items, true);
                }
            }
            (Some(la), None) => push(
                d,
                title,
                vec![Item::new("layer", Some(la.digest.to_string()), None).because(Cause::Content)],
            ),
            (None, Some(lb)) => push(
                d,
                title,
                vec![Item::new("layer", None, Some(lb.digest.to_string())).because(Cause::Content)],
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_sbom_of_another_epoch_differs_only_in_time() {
        let doc = |created: &str, version: &str| {
            serde_json::to_vec(&serde_json::json!({
                "creationInfo": {"created": created, "creators": ["Tool: stele"]},
                "documentNamespace": format!("https://stele.example/{created}{version}"),
                "packages": [{"name": "a", "versionInfo": version}],
            }))
            .unwrap()
        };
        assert!(sbom_differs_only_in_time(
            &doc("1970", "1"),
            &doc("2023", "1")
        ));
        assert!(!sbom_differs_only_in_time(
            &doc("1970", "1"),
            &doc("2023", "2")
        ));
        assert!(!sbom_differs_only_in_time(b"not json", b"not json"));
    }
}
