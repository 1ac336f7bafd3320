//! Canonical JSON: object keys sorted by byte order, no insignificant white
//! space, serde_json's number and string escaping. serde_json's `Value` keeps
//! maps in a BTreeMap (the `preserve_order` feature must stay off), so going
//! through `Value` sorts every level, including oci-spec's HashMap fields.

use serde::Serialize;

pub fn to_canonical_vec<T: Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("in-memory structs always serialize");
    serde_json::to_vec(&value).expect("a Value always serializes")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn keys_sorted_at_every_level() {
        let mut inner = HashMap::new();
        for k in ["z", "a", "m", "b"] {
            inner.insert(k.to_string(), 1);
        }
        let mut outer = HashMap::new();
        outer.insert("y", inner.clone());
        outer.insert("c", inner);
        let text = String::from_utf8(super::to_canonical_vec(&outer)).unwrap();
        assert_eq!(
            text,
            r#"{"c":{"a":1,"b":1,"m":1,"z":1},"y":{"a":1,"b":1,"m":1,"z":1}}"#
        );
    }
}
