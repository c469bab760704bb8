//! Record: one line of the audit log — its canonical form, its hash, secret redaction, and the
//! parsed [`AuditRecord`] that readers get back.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::event::AuditEvent;

/// The file name of the log inside the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// How a `log_recovered` record names one torn line: its length and SHA-256.
pub fn describe_torn(line: &[u8]) -> Value {
    json!({ "bytes": line.len(), "sha256": hex::encode(Sha256::digest(line)) })
}

/// The `prev` of the first record: there is no previous hash.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Keys the log itself owns; an event's fields cannot override them.
pub const RESERVED_KEYS: [&str; 7] = ["seq", "ts", "run", "event", "actor", "prev", "hash"];

/// One parsed record of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// 1-based line number in `audit.jsonl`.
    pub line: usize,
    pub seq: u64,
    pub ts: String,
    pub run: String,
    pub event: String,
    pub actor: String,
    /// The event's own fields (everything but the reserved keys).
    pub fields: Map<String, Value>,
    pub prev: String,
    pub hash: String,
}

impl AuditRecord {
    /// The event field `key` as a string, if it is one.
    pub fn field_str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// The record's event as a variant; `None` for a name this version does not know.
    pub fn kind(&self) -> Option<AuditEvent> {
        self.event.parse().ok()
    }

    /// The environment the event concerns (its `environment` field), if any.
    pub fn environment(&self) -> Option<&str> {
        self.field_str("environment")
    }

    /// The record as the JSON object stored on its line.
    pub fn to_json(&self) -> Value {
        let mut object = self.fields.clone();
        object.insert("seq".into(), self.seq.into());
        object.insert("ts".into(), self.ts.clone().into());
        object.insert("run".into(), self.run.clone().into());
        object.insert("event".into(), self.event.clone().into());
        object.insert("actor".into(), self.actor.clone().into());
        object.insert("prev".into(), self.prev.clone().into());
        object.insert("hash".into(), self.hash.clone().into());
        Value::Object(object)
    }

    /// Reads a stored object back; the error names the first reserved key that is missing or
    /// of the wrong type.
    pub fn from_json(line: usize, mut object: Map<String, Value>) -> Result<Self, &'static str> {
        let mut take_string = |key: &'static str| match object.remove(key) {
            Some(Value::String(text)) => Ok(text),
            _ => Err(key),
        };
        let ts = take_string("ts")?;
        let run = take_string("run")?;
        let event = take_string("event")?;
        let actor = take_string("actor")?;
        let prev = take_string("prev")?;
        let hash = take_string("hash")?;
        let seq = object.remove("seq").and_then(|v| v.as_u64()).ok_or("seq")?;
        Ok(AuditRecord {
            line,
            seq,
            ts,
            run,
            event,
            actor,
            fields: object,
            prev,
            hash,
        })
    }
}

/// The canonical serialization of a record without its `hash`: keys sorted by byte order, no
/// whitespace, serde_json's string escaping. (`serde_json::Map` is a `BTreeMap` here, so
/// serializing it sorts the keys.)
pub fn canonical(object_without_hash: &Map<String, Value>) -> String {
    Value::Object(object_without_hash.clone()).to_string()
}

/// Hex SHA-256 of the canonical text.
pub fn hash_hex(canonical_text: &str) -> String {
    hex::encode(Sha256::digest(canonical_text.as_bytes()))
}

/// The stored line (without its newline): the canonical text with `"hash"` appended as the
/// last key, so an auditor can also check a line byte for byte by cutting the hash off.
pub fn line_with_hash(canonical_text: &str, hash: &str) -> String {
    let body = canonical_text.strip_suffix('}').unwrap_or(canonical_text);
    let separator = if body.len() > 1 { "," } else { "" };
    format!("{body}{separator}\"hash\":\"{hash}\"}}")
}

/// Replaces every secret value in every string (keys included, at any depth) by `***`.
pub fn redact(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(text) => *text = redact_text(text, secrets),
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, secrets)),
        Value::Object(object) => {
            let entries = std::mem::take(object);
            for (key, mut item) in entries {
                redact(&mut item, secrets);
                object.insert(redact_text(&key, secrets), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Replaces secret values in one string; `secrets` is sorted longest first by the caller so a
/// secret that contains another is replaced whole.
pub fn redact_text(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_string(), |acc, secret| {
            acc.replace(secret.as_str(), "***")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_text_sorts_keys_without_whitespace() {
        let Value::Object(object) = json!({"b": 1, "a": {"d": [1, "x"], "c": true}}) else {
            panic!("not an object")
        };
        assert_eq!(canonical(&object), r#"{"a":{"c":true,"d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn stored_line_ends_with_the_hash() {
        let line = line_with_hash(r#"{"a":1}"#, "ab");
        assert_eq!(line, r#"{"a":1,"hash":"ab"}"#);
        assert_eq!(line_with_hash("{}", "ab"), r#"{"hash":"ab"}"#);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn redaction_reaches_nested_strings_and_keys() {
        let mut value = json!({"cmd": "curl -H tok123", "nested": [{"tok123": "x tok123 y"}]});
        redact(&mut value, &["tok123".to_string()]);
        assert_eq!(
            value,
            json!({"cmd": "curl -H ***", "nested": [{"***": "x *** y"}]})
        );
    }

    #[test]
    fn record_round_trips_through_json() {
        let Value::Object(object) = json!({
            "seq": 3, "ts": "t", "run": "r", "event": "e", "actor": "a",
            "prev": GENESIS_HASH, "hash": "h", "environment": "staging"
        }) else {
            panic!("not an object")
        };
        let record = AuditRecord::from_json(1, object.clone()).unwrap();
        assert_eq!(record.environment(), Some("staging"));
        assert_eq!(record.to_json(), Value::Object(object));
    }

    #[test]
    fn record_names_a_missing_key() {
        let Value::Object(object) = json!({"seq": 1}) else {
            panic!("not an object")
        };
        assert_eq!(AuditRecord::from_json(1, object), Err("ts"));
    }
}
