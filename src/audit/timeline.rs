//! Timeline: one readable line per audit record for `pipe audit show` — time, run, actor,
//! event, then the environment and the event's own fields.

use serde_json::Value;

use super::record::AuditRecord;

/// Fields shown first and without their key, because they already read as a sentence.
const SUMMARY_KEYS: [&str; 3] = ["summary", "message", "reason"];

/// `2026-11-23 23:59:01  run R  alice  rollback_triggered  staging: error_rate 5% > 1% …`
pub fn timeline_line(record: &AuditRecord) -> String {
    let mut line = format!(
        "{}  run {}  {}  {}",
        short_time(&record.ts),
        record.run,
        record.actor,
        record.event
    );
    let details = details(record);
    match (record.environment(), details.is_empty()) {
        (Some(environment), true) => line.push_str(&format!("  {environment}")),
        (Some(environment), false) => line.push_str(&format!("  {environment}: {details}")),
        (None, false) => line.push_str(&format!("  {details}")),
        (None, true) => {}
    }
    line
}

/// `2026-11-23T23:59:01.123Z` → `2026-11-23 23:59:01`; anything else is shown as stored.
fn short_time(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(time) => time
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => ts.to_string(),
    }
}

/// The summary fields as they are, then every other field as `key=value` in key order.
pub(super) fn details(record: &AuditRecord) -> String {
    let summaries = SUMMARY_KEYS
        .iter()
        .filter_map(|key| record.field_str(key))
        .map(str::to_string);
    let others = record
        .fields
        .iter()
        .filter(|(key, _)| key.as_str() != "environment" && !SUMMARY_KEYS.contains(&key.as_str()))
        .map(|(key, value)| format!("{key}={}", plain(value)));
    summaries.chain(others).collect::<Vec<_>>().join("  ")
}

/// A string without quotes; anything else as compact JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn record(fields: Value) -> AuditRecord {
        let Value::Object(fields) = fields else {
            panic!("not an object")
        };
        AuditRecord {
            line: 1,
            seq: 1,
            ts: "2026-11-23T23:59:01.123Z".into(),
            run: "20261123-235900".into(),
            event: "rollback_triggered".into(),
            actor: "alice".into(),
            fields,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn shows_environment_then_summary_then_fields() {
        let line = timeline_line(&record(json!({
            "environment": "staging",
            "summary": "error_rate 5% > 1% held 1.0s over 3 samples",
            "samples": 3
        })));
        assert_eq!(
            line,
            "2026-11-23 23:59:01  run 20261123-235900  alice  rollback_triggered  \
             staging: error_rate 5% > 1% held 1.0s over 3 samples  samples=3"
        );
    }

    #[test]
    fn shows_a_bare_event() {
        let line = timeline_line(&record(Value::Object(Map::new())));
        assert_eq!(
            line,
            "2026-11-23 23:59:01  run 20261123-235900  alice  rollback_triggered"
        );
    }
}
