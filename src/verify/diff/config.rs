//! Config fields compared by what they mean: env and labels key by key,
//! ports and volumes as sets, history entry by entry, times apart from
//! everything else. Fields stele does not know are compared leaf by leaf,
//! so nothing that differs goes unreported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{opt, show, Cause, Item};

/// Config keys (`config.*` of the image config) with the names users know.
const SCALARS: &[(&str, &str)] = &[
    ("Entrypoint", "entrypoint"),
    ("Cmd", "cmd"),
    ("User", "user"),
    ("WorkingDir", "workdir"),
    ("StopSignal", "stop signal"),
];

/// Top-level keys naming the platform.
const PLATFORM: &[&str] = &["architecture", "os", "variant", "os.version", "os.features"];

pub fn compare(a: &Value, b: &Value) -> Vec<Item> {
    let mut items = Vec::new();
    let empty = Map::new();
    let oa = a.as_object().unwrap_or(&empty);
    let ob = b.as_object().unwrap_or(&empty);

    if oa.get("created") != ob.get("created") {
        items.push(
            Item::new(
                "created",
                oa.get("created").map(show),
                ob.get("created").map(show),
            )
            .because(Cause::Timestamps)
            .topic("config created"),
        );
    }
    for key in PLATFORM.iter().chain(&["author"]) {
        if oa.get(*key) != ob.get(*key) {
            items.push(
                Item::new(*key, oa.get(*key).map(show), ob.get(*key).map(show))
                    .because(Cause::Config),
            );
        }
    }

    let ca = oa
        .get("config")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let cb = ob
        .get("config")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (key, name) in SCALARS {
        if ca.get(*key) != cb.get(*key) {
            items.push(
                Item::new(*name, ca.get(*key).map(show), cb.get(*key).map(show))
                    .because(Cause::Config),
            );
        }
    }
    env(ca.get("Env"), cb.get("Env"), &mut items);
    let before = items.len();
    keyed("label", ca.get("Labels"), cb.get("Labels"), &mut items);
    // The provenance labels are classified as their annotations are.
    for item in &mut items[before..] {
        if let Some(key) = item.what.strip_prefix("label ") {
            let key = key.to_string();
            *item = super::classify_provenance(item.clone(), &key);
        }
    }
    set(
        "port",
        ca.get("ExposedPorts"),
        cb.get("ExposedPorts"),
        &mut items,
    );
    set("volume", ca.get("Volumes"), cb.get("Volumes"), &mut items);
    let handled: BTreeSet<&str> = SCALARS
        .iter()
        .map(|(k, _)| *k)
        .chain(["Env", "Labels", "ExposedPorts", "Volumes"])
        .collect();
    leaves_except("config", ca, cb, &handled, &mut items);

    history(oa.get("history"), ob.get("history"), &mut items);

    // rootfs.diff_ids are the layers' business: the layer sections say
    // how they differ.
    let handled: BTreeSet<&str> = PLATFORM
        .iter()
        .copied()
        .chain(["created", "author", "config", "history", "rootfs"])
        .collect();
    leaves_except("", oa, ob, &handled, &mut items);
    let diff_ids = |o: &Map<String, Value>| {
        o.get("rootfs")
            .and_then(|r| r["diff_ids"].as_array())
            .map(|l| {
                l.iter()
                    .map(|d| crate::verify::fsck::short(&show(d)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
    };
    if diff_ids(oa) != diff_ids(ob) {
        // No cause: the layer sections explain it.
        items.push(Item::new("rootfs.diff_ids", diff_ids(oa), diff_ids(ob)));
    }
    if oa.get("rootfs").map(|r| &r["type"]) != ob.get("rootfs").map(|r| &r["type"]) {
        items.push(
            Item::new(
                "rootfs.type",
                oa.get("rootfs").and_then(|r| opt(&r["type"])),
                ob.get("rootfs").and_then(|r| opt(&r["type"])),
            )
            .because(Cause::Config),
        );
    }
    items
}

/// `KEY=VALUE` lists compared by key; the same variables in another order
/// are one item, since a later variable may refer to an earlier one.
fn env(a: Option<&Value>, b: Option<&Value>, items: &mut Vec<Item>) {
    let parse = |v: Option<&Value>| -> Vec<(String, String)> {
        v.and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|e| {
                        let s = show(e);
                        match s.split_once('=') {
                            Some((k, v)) => (k.to_string(), v.to_string()),
                            None => (s, String::new()),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (la, lb) = (parse(a), parse(b));
    let ma: BTreeMap<&String, &String> = la.iter().map(|(k, v)| (k, v)).collect();
    let mb: BTreeMap<&String, &String> = lb.iter().map(|(k, v)| (k, v)).collect();
    let keys: BTreeSet<&String> = ma.keys().chain(mb.keys()).copied().collect();
    let before = items.len();
    for k in keys {
        if ma.get(k) != mb.get(k) {
            items.push(
                Item::new(
                    format!("env {k}"),
                    ma.get(k).map(|v| v.to_string()),
                    mb.get(k).map(|v| v.to_string()),
                )
                .because(Cause::Config),
            );
        }
    }
    if items.len() == before && la != lb {
        let names = |l: &[(String, String)]| {
            l.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        items.push(
            Item::new("env order", Some(names(&la)), Some(names(&lb))).because(Cause::Config),
        );
    }
}

fn keyed(what: &str, a: Option<&Value>, b: Option<&Value>, items: &mut Vec<Item>) {
    let empty = Map::new();
    let ma = a.and_then(Value::as_object).unwrap_or(&empty);
    let mb = b.and_then(Value::as_object).unwrap_or(&empty);
    let keys: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    for k in keys {
        if ma.get(k) != mb.get(k) {
            items.push(
                Item::new(
                    format!("{what} {k}"),
                    ma.get(k).map(show),
                    mb.get(k).map(show),
                )
                .because(Cause::Config),
            );
        }
    }
}

/// `ExposedPorts` and `Volumes` are objects whose keys are the values.
fn set(what: &str, a: Option<&Value>, b: Option<&Value>, items: &mut Vec<Item>) {
    let keys = |v: Option<&Value>| -> BTreeSet<String> {
        v.and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (sa, sb) = (keys(a), keys(b));
    for k in sa.difference(&sb) {
        items.push(Item::new(format!("{what} {k}"), Some(k.clone()), None).because(Cause::Config));
    }
    for k in sb.difference(&sa) {
        items.push(Item::new(format!("{what} {k}"), None, Some(k.clone())).because(Cause::Config));
    }
}

fn history(a: Option<&Value>, b: Option<&Value>, items: &mut Vec<Item>) {
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let (la, lb) = (list(a), list(b));
    for i in 0..la.len().max(lb.len()) {
        match (la.get(i), lb.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                let empty = Map::new();
                let ox = x.as_object().unwrap_or(&empty);
                let oy = y.as_object().unwrap_or(&empty);
                let keys: BTreeSet<&String> = ox.keys().chain(oy.keys()).collect();
                for k in keys {
                    if ox.get(k) != oy.get(k) {
                        let item = Item::new(
                            format!("history[{i}].{k}"),
                            ox.get(k).map(show),
                            oy.get(k).map(show),
                        );
                        items.push(if k == "created" {
                            item.because(Cause::Timestamps).topic("history created")
                        } else {
                            item.because(Cause::Config).topic("history")
                        });
                    }
                }
            }
            (x, y) => items.push(
                Item::new(format!("history[{i}]"), x.map(show), y.map(show))
                    .because(Cause::Config)
                    .topic("history"),
            ),
        }
    }
}

/// Every leaf below the keys not `handled`, compared by its path.
fn leaves_except(
    prefix: &str,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    handled: &BTreeSet<&str>,
    items: &mut Vec<Item>,
) {
    let mut la = BTreeMap::new();
    let mut lb = BTreeMap::new();
    for (k, v) in a.iter().filter(|(k, _)| !handled.contains(k.as_str())) {
        flatten(&join(prefix, k), v, &mut la);
    }
    for (k, v) in b.iter().filter(|(k, _)| !handled.contains(k.as_str())) {
        flatten(&join(prefix, k), v, &mut lb);
    }
    let keys: BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
    for k in keys {
        if la.get(k) != lb.get(k) {
            items.push(
                Item::new(k.clone(), la.get(k).cloned(), lb.get(k).cloned()).because(Cause::Config),
            );
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn flatten(path: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(&join(path, k), v, out);
            }
        }
        other => {
            out.insert(path.to_string(), show(other));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(created: &str, cmd: &[&str], env: &[&str]) -> Value {
        json!({
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": cmd, "Env": env, "Labels": {"a": "1"}, "ExposedPorts": {"80/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"created": created, "created_by": "stele"}],
        })
    }

    #[test]
    fn times_are_told_from_settings() {
        let a = config("2023-01-01T00:00:00Z", &["x"], &["A=1", "B=2"]);
        let b = config("2024-01-01T00:00:00Z", &["x"], &["A=1", "B=2"]);
        let items = compare(&a, &b);
        assert!(!items.is_empty());
        assert!(
            items.iter().all(|i| i.cause == Some(Cause::Timestamps)),
            "{items:?}"
        );
        let c = config("2023-01-01T00:00:00Z", &["y"], &["B=2", "A=1"]);
        let items = compare(&a, &c);
        let whats: Vec<&str> = items.iter().map(|i| i.what.as_str()).collect();
        assert_eq!(whats, ["cmd", "env order"]);
        assert!(items.iter().all(|i| i.cause == Some(Cause::Config)));
    }

    #[test]
    fn unknown_fields_and_sets_are_reported() {
        let a = config("t", &[], &[]);
        let mut b = a.clone();
        b["config"]["Healthcheck"] = json!({"Test": ["CMD", "true"]});
        b["config"]["ExposedPorts"] = json!({"443/tcp": {}});
        b["config"]["Labels"]["a"] = json!("2");
        let items = compare(&a, &b);
        let whats: Vec<&str> = items.iter().map(|i| i.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "label a",
                "port 80/tcp",
                "port 443/tcp",
                "config.Healthcheck.Test"
            ]
        );
        assert_eq!(items[1].a.as_deref(), Some("80/tcp"));
        assert_eq!(items[1].b, None);
    }
}
