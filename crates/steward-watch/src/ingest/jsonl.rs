//! JSON lines over HTTP: `POST /ingest/logs`, one JSON object per line.
//!
//! The common field names of structured loggers are understood: the message is
//! `message`, `msg`, `body` or `log`; the time `timestamp`, `ts`, `time` or
//! `@timestamp` (epoch seconds, milliseconds, micro- or nanoseconds, or RFC 3339); the
//! level `level`, `severity` or `lvl`; the service `service`, `service.name` or `app`.
//! Every other key becomes an attribute. A line that is not a JSON object or has no
//! message is rejected and counted; the others are taken.

use std::collections::BTreeMap;

use serde_json::Value;
use steward_core::{LogRecord, TimestampMs};

use super::{Decoded, now_ms};

const MESSAGE_KEYS: [&str; 4] = ["message", "msg", "body", "log"];
const TIME_KEYS: [&str; 4] = ["timestamp", "ts", "time", "@timestamp"];
const LEVEL_KEYS: [&str; 3] = ["level", "severity", "lvl"];
const SERVICE_KEYS: [&str; 3] = ["service", "service.name", "app"];

/// Decodes a body of JSON lines. Never fails: bad lines are counted in the result.
pub fn decode(body: &[u8]) -> Decoded<LogRecord> {
    let mut out = Decoded::default();
    let now = now_ms();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match record(line, now) {
            Ok(record) => out.items.push(record),
            Err(why) => out.reject(|| format!("line {}: {why}", i + 1)),
        }
    }
    out
}

fn record(line: &[u8], now: TimestampMs) -> Result<LogRecord, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("expected a JSON object".into());
    };
    let take = |obj: &mut serde_json::Map<String, Value>, keys: &[&str]| {
        keys.iter().find_map(|k| obj.remove(*k))
    };
    let body = match take(&mut obj, &MESSAGE_KEYS) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => return Err("no message field (message, msg, body or log)".into()),
    };
    let timestamp_ms = match take(&mut obj, &TIME_KEYS) {
        None => now,
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(epoch_to_ms)
            .ok_or("timestamp out of range")?,
        Some(Value::String(s)) => parse_time(&s).ok_or_else(|| format!("bad timestamp {s:?}"))?,
        Some(_) => return Err("timestamp must be a number or a string".into()),
    };
    let level = match take(&mut obj, &LEVEL_KEYS) {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .and_then(steward_core::LogLevel::from_syslog_severity),
        _ => None,
    };
    let service = match take(&mut obj, &SERVICE_KEYS) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let attributes: BTreeMap<String, String> = obj
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    Ok(LogRecord {
        timestamp_ms: Some(timestamp_ms),
        service,
        level,
        body,
        attributes,
    })
}

/// Reads an epoch number in whichever unit its size suggests.
#[allow(clippy::cast_possible_truncation)]
fn epoch_to_ms(n: f64) -> Option<TimestampMs> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1e3
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1e3
    } else {
        n / 1e6
    };
    (ms < 9.0e15).then_some(ms as i64)
}

/// Parses an epoch number written as text, or RFC 3339 (`2024-05-01T12:00:00.250Z`,
/// `2024-05-01 12:00:00+02:00`).
pub fn parse_time(s: &str) -> Option<TimestampMs> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return epoch_to_ms(n);
    }
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = &frac[..digits.min(3)];
        millis = first3.parse::<i64>().ok()? * 10_i64.pow(3 - u32::try_from(first3.len()).ok()?);
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let tz = rest[1..].replace(':', "");
            if tz.len() != 4 || !tz.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (tz[..2].parse::<i64>().ok()? * 60 + tz[2..].parse::<i64>().ok()?)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::LogLevel;

    #[test]
    fn lines_become_records_and_bad_lines_are_counted() {
        let body = b"{\"ts\":1700000000.5,\"level\":\"error\",\"service\":\"cart\",\"msg\":\"boom\",\"order\":7}\n\n\
            not json\n{\"level\":\"info\"}\n{\"message\":\"ok\",\"time\":\"2023-11-14T22:13:20.250Z\"}\n";
        let decoded = decode(body);
        assert_eq!(decoded.items.len(), 2);
        assert_eq!(decoded.rejected, 2);
        assert!(
            decoded
                .first_error
                .unwrap()
                .starts_with("line 3: invalid JSON")
        );
        let first = &decoded.items[0];
        assert_eq!(first.timestamp_ms, Some(1_700_000_000_500));
        assert_eq!(first.level, Some(LogLevel::Error));
        assert_eq!(first.service.as_deref(), Some("cart"));
        assert_eq!(first.attributes["order"], "7");
        assert_eq!(decoded.items[1].timestamp_ms, Some(1_700_000_000_250));
    }

    #[test]
    fn rfc3339_with_offsets() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("2000-03-01 00:00:00.1"), Some(951_868_800_100));
        assert_eq!(parse_time("2000-13-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
