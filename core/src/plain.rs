//! Plain JSON stored as BSON, and back, without interpretation.
//!
//! The `bson` crate's own JSON conversions read extended JSON: an object such as
//! `{"$binary": {...}}` or `{"$numberDecimal": "1.5"}` becomes a BSON binary or decimal, which
//! then no longer reads back as the JSON a client sent (and cannot be decoded into
//! `serde_json::Value` at all). Everything chat3 stores that came from JSON (meta, event
//! envelopes, update data) goes through [`to_bson`] / [`to_json`] instead: objects become
//! documents key for key, integers become int64, other numbers doubles, and nothing else.
//!
//! [`check_meta`] is the edge rule for client metadata: what passes it is stored and read back
//! as the same JSON everywhere (API reads, events, updates, socket frames).

use bson::{Bson, Document};
use chat3_sdk::Meta;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// Deepest nesting of a meta value: `{"k": 1}` has depth 1, `{"k": {"a": [1]}}` depth 3.
pub const MAX_META_DEPTH: usize = 16;
/// Largest meta object, as compact JSON.
pub const MAX_META_BYTES: usize = 32 * 1024;
/// Longest key inside a meta value, in characters.
pub const MAX_NESTED_KEY_CHARS: usize = 100;
/// Top-level meta keys (`meta.<key>` in filters): `^[A-Za-z0-9_]{1,100}$`.
pub const MAX_META_KEY_CHARS: usize = 100;

/// JSON as BSON, literally (see the module docs). Integers outside i64 become doubles; meta
/// is refused before that by [`check_meta`], and the server's own numbers always fit.
pub fn to_bson(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(to_bson).collect()),
        Value::Object(o) => Bson::Document(object_to_document(o)),
    }
}

/// A JSON object as a document, literally.
pub fn object_to_document(o: &Map<String, Value>) -> Document {
    o.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect()
}

/// BSON as JSON, literally: the inverse of [`to_bson`] for what it writes. Never fails: types
/// chat3 never writes (dates, ids, binaries of older data) come out as relaxed extended JSON.
pub fn to_json(b: &Bson) -> Value {
    match b {
        Bson::Null => Value::Null,
        Bson::Boolean(v) => Value::Bool(*v),
        Bson::Int32(i) => Value::from(*i),
        Bson::Int64(i) => Value::from(*i),
        Bson::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Bson::Document(d) => Value::Object(document_to_object(d)),
        other => other.clone().into_relaxed_extjson(),
    }
}

/// A document as a JSON object, literally.
pub fn document_to_object(d: &Document) -> Map<String, Value> {
    d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()
}

/// Any serializable value stored as a plain document (it must serialize to a JSON object).
pub fn to_document<T: Serialize>(value: &T) -> Result<Document> {
    match serde_json::to_value(value) {
        Ok(Value::Object(o)) => Ok(object_to_document(&o)),
        Ok(_) => Err(Error::Internal(
            "only objects are stored as documents".into(),
        )),
        Err(e) => Err(Error::Internal(format!("not encodable: {e}"))),
    }
}

/// A plain document read back into a typed value.
pub fn from_document<T: DeserializeOwned>(d: &Document) -> Result<T> {
    serde_json::from_value(Value::Object(document_to_object(d)))
        .map_err(|e| Error::Internal(format!("stored document is unreadable: {e}")))
}

fn invalid_meta(path: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid {
        code: "validation_error",
        message: format!("{path}: {why}"),
        details: Some(serde_json::json!({ "field": path, "problem": why.to_string() })),
    }
}

/// A top-level meta key: `^[A-Za-z0-9_]{1,100}$`.
pub fn is_meta_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_META_KEY_CHARS
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks client metadata (`field` names it in errors, e.g. `meta`): top-level keys
/// `^[A-Za-z0-9_]{1,100}$`; keys inside values 1-100 characters, not starting with `$`, without `.`
/// or control characters (MongoDB gives those meanings); at most [`MAX_META_DEPTH`] levels and
/// [`MAX_META_BYTES`] of JSON; integers within 64-bit signed range. Anything else is a 400.
pub fn check_meta(field: &str, meta: &Meta) -> Result<()> {
    for (k, v) in meta {
        if !is_meta_key(k) {
            return Err(invalid_meta(
                &format!("{field}.{}", printable(k)),
                "keys must match ^[A-Za-z0-9_]{1,100}$",
            ));
        }
        check_value(&format!("{field}.{k}"), v, 2)?;
    }
    let size = serde_json::to_vec(meta)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_META_BYTES {
        return Err(invalid_meta(
            field,
            format!("at most {MAX_META_BYTES} bytes of JSON (got {size})"),
        ));
    }
    Ok(())
}

fn check_value(path: &str, v: &Value, depth: usize) -> Result<()> {
    match v {
        Value::Number(n) if !within_i64(n) => {
            Err(invalid_meta(path, "numbers must be within -2^63..2^63-1"))
        }
        Value::Array(_) | Value::Object(_) if depth > MAX_META_DEPTH => Err(invalid_meta(
            path,
            format!("nested deeper than {MAX_META_DEPTH} levels"),
        )),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_value(&format!("{path}[{i}]"), x, depth + 1)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            if k.is_empty()
                || k.chars().count() > MAX_NESTED_KEY_CHARS
                || k.starts_with('$')
                || k.contains('.')
                || k.chars().any(char::is_control)
            {
                return Err(invalid_meta(
                    &format!("{path}.{}", printable(k)),
                    "keys must be 1-100 characters, not start with '$', and contain no '.' or control characters",
                ));
            }
            check_value(&format!("{path}.{k}"), x, depth + 1)
        }),
        _ => Ok(()),
    }
}

/// True for numbers in -2^63..2^63-1 (integers beyond it cannot be stored exactly; the same
/// bound for other numbers keeps the rule one that a JSON Schema can state). A number parsed as
/// a double must lie strictly inside: an integer just below -2^63 parses as the double -2^63,
/// and would read back as another number than the one sent.
fn within_i64(n: &Number) -> bool {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_i64() {
        return true;
    }
    if n.is_u64() {
        return false;
    }
    n.as_f64().is_some_and(|f| f > -TWO_63 && f < TWO_63)
}

/// A key as it can be shown in an error message (control characters escaped, bounded).
fn printable(k: &str) -> String {
    let shown: String = k.chars().take(40).flat_map(char::escape_debug).collect();
    if k.chars().count() > 40 {
        format!("{shown}...")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Meta {
        match v {
            Value::Object(o) => o.into_iter().collect(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn extended_json_lookalikes_round_trip_as_plain_json() {
        let v = json!({
            "k": {"$binary": {"base64": "AAAA", "subType": "00"}},
            "d": {"$numberDecimal": "1.5"},
            "o": {"$oid": "5f0000000000000000000000"},
            "n": [1, -2, 1.5, 1e300, null, true, "x\u{0}y", -9223372036854775808i64],
        });
        let b = to_bson(&v);
        assert!(matches!(&b, Bson::Document(d) if d.get_document("k").is_ok()));
        assert_eq!(to_json(&b), v);
        let Value::Object(o) = &v else { unreachable!() };
        let raw = bson::to_vec(&object_to_document(o)).unwrap_or_default();
        let back: Document = bson::from_slice(&raw).unwrap_or_default();
        assert_eq!(Value::Object(document_to_object(&back)), v);
    }

    #[test]
    fn meta_keys_follow_the_filter_field_rule() {
        assert!(check_meta("meta", &obj(json!({"title_1": {"a-b c": [1]}}))).is_ok());
        for bad in [
            json!({"a.b": 1}),
            json!({"$set": 1}),
            json!({"": 1}),
            json!({"a\u{0}": 1}),
            json!({"k": {"$binary": {"base64": "AAAA", "subType": "00"}}}),
            json!({"k": {"a.b": 1}}),
            json!({"k": [{"x\u{0}": 1}]}),
            json!({"k": 18446744073709551615u64}),
            json!({"k": 1e19}),
            json!({"k": [-1e300]}),
            serde_json::from_str::<Value>(r#"{"k": -9223372036854775809}"#).unwrap_or_default(),
        ] {
            assert!(
                check_meta("meta", &obj(bad.clone())).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn meta_depth_and_size_are_bounded() {
        let mut deep = json!(1);
        for _ in 0..MAX_META_DEPTH - 1 {
            deep = json!([deep]);
        }
        assert!(check_meta("meta", &obj(json!({ "k": deep.clone() }))).is_ok());
        let deeper = json!({ "k": [deep] });
        let e = check_meta("meta", &obj(deeper))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("nested deeper")));
        let big = json!({ "k": "x".repeat(MAX_META_BYTES) });
        assert!(check_meta("meta", &obj(big)).is_err());
    }
}
