//! Self-describing formats: JSON lines and logfmt.

use std::collections::BTreeMap;

use serde_json::Value;
use steward_core::{LogLevel, LogRecord};

use super::time;

const MESSAGE_KEYS: &[&str] = &["message", "msg", "log", "body", "text", "@message", "event"];
const LEVEL_KEYS: &[&str] = &[
    "level",
    "severity",
    "lvl",
    "loglevel",
    "log.level",
    "severity_text",
    "levelname",
];
const TIME_KEYS: &[&str] = &[
    "time",
    "timestamp",
    "@timestamp",
    "ts",
    "t",
    "datetime",
    "date",
];
const SERVICE_KEYS: &[&str] = &["service", "service.name", "app", "logger", "component"];

fn find<'a, V>(map: &'a BTreeMap<String, V>, keys: &[&str]) -> Option<(&'a String, &'a V)> {
    keys.iter().find_map(|k| {
        map.get_key_value(*k)
            .or_else(|| map.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)))
    })
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn level_of(v: &Value) -> Option<LogLevel> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .and_then(LogLevel::from_otlp_severity),
        _ => None,
    }
}

fn time_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => {
            time::parse_rfc3339(s).or_else(|| s.parse::<f64>().ok().and_then(time::parse_epoch))
        }
        Value::Number(n) => n.as_f64().and_then(time::parse_epoch),
        _ => None,
    }
}

/// A JSON object line. `None` when the line is not a JSON object.
pub(crate) fn parse_json(line: &str) -> Option<LogRecord> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let Value::Object(obj) = serde_json::from_str::<Value>(trimmed).ok()? else {
        return None;
    };
    let map: BTreeMap<String, Value> = obj.into_iter().collect();
    let mut record = LogRecord::default();
    let message_key = find(&map, MESSAGE_KEYS).map(|(k, v)| {
        record.body = value_text(v);
        k.clone()
    });
    let level_key = find(&map, LEVEL_KEYS).map(|(k, v)| {
        record.level = level_of(v);
        k.clone()
    });
    let time_key = find(&map, TIME_KEYS).map(|(k, v)| {
        record.timestamp_ms = time_of(v);
        k.clone()
    });
    if let Some((_, v)) = find(&map, SERVICE_KEYS) {
        record.service = Some(value_text(v));
    }
    for (k, v) in &map {
        if Some(k) != message_key.as_ref()
            && Some(k) != level_key.as_ref()
            && Some(k) != time_key.as_ref()
        {
            record.attributes.insert(k.clone(), value_text(v));
        }
    }
    if message_key.is_none() {
        // No message field: the whole object is the message, so nothing is lost.
        record.body = trimmed.to_string();
    }
    Some(record)
}

/// Splits `a=1 b="two words" c=` into pairs. `None` when the line is not logfmt: some
/// token is not a pair, or there are fewer than two pairs.
pub(crate) fn logfmt_pairs(line: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = line.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() || key.contains('"') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(match n {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key, value));
    }
    (pairs.len() >= 2).then_some(pairs)
}

/// A logfmt line.
pub(crate) fn parse_logfmt(line: &str) -> Option<LogRecord> {
    let pairs = logfmt_pairs(line)?;
    let map: BTreeMap<String, String> = pairs.into_iter().collect();
    let mut record = LogRecord::default();
    let message_key = find(&map, MESSAGE_KEYS).map(|(k, v)| {
        record.body = v.clone();
        k.clone()
    });
    let level_key = find(&map, LEVEL_KEYS).map(|(k, v)| {
        record.level = v.parse().ok();
        k.clone()
    });
    let time_key = find(&map, TIME_KEYS).map(|(k, v)| {
        record.timestamp_ms =
            time::parse_rfc3339(v).or_else(|| v.parse::<f64>().ok().and_then(time::parse_epoch));
        k.clone()
    });
    if let Some((_, v)) = find(&map, SERVICE_KEYS) {
        record.service = Some(v.clone());
    }
    for (k, v) in &map {
        if Some(k) != message_key.as_ref()
            && Some(k) != level_key.as_ref()
            && Some(k) != time_key.as_ref()
        {
            record.attributes.insert(k.clone(), v.clone());
        }
    }
    if message_key.is_none() {
        record.body = line.trim().to_string();
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_by_usual_names() {
        let r = parse_json(
            r#"{"ts":"1970-01-01T00:00:01Z","level":"WARN","msg":"disk 91% full","host":"a"}"#,
        )
        .unwrap();
        assert_eq!(r.body, "disk 91% full");
        assert_eq!(r.level, Some(LogLevel::Warn));
        assert_eq!(r.timestamp_ms, Some(1000));
        assert_eq!(r.attributes["host"], "a");
        assert!(parse_json("not json").is_none());
        assert!(parse_json("[1,2]").is_none());
        assert_eq!(parse_json(r#"{"a":1}"#).unwrap().body, r#"{"a":1}"#);
    }

    #[test]
    fn logfmt_pairs_and_quotes() {
        let r =
            parse_logfmt(r#"time=1970-01-01T00:00:02Z level=error msg="connect failed" retry=3"#)
                .unwrap();
        assert_eq!(r.body, "connect failed");
        assert_eq!(r.level, Some(LogLevel::Error));
        assert_eq!(r.timestamp_ms, Some(2000));
        assert_eq!(r.attributes["retry"], "3");
        assert!(parse_logfmt("just words here").is_none());
        assert!(parse_logfmt("a=1").is_none());
        assert!(parse_logfmt(r#"a=1 b="unterminated"#).is_none());
    }
}
