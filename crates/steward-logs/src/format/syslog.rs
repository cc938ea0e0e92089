//! Syslog (RFC 3164 and RFC 5424) and the nginx/Apache access formats.

use steward_core::{LogLevel, LogRecord};

use super::time;

/// `<PRI>` at the start of a line: (facility, severity level) and the rest.
fn priority(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let end = rest.find('>')?;
    if end == 0 || end > 3 {
        return None;
    }
    let pri: u8 = rest[..end].parse().ok()?;
    (pri <= 191).then_some((pri, &rest[end + 1..]))
}

fn nil(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`.
pub(crate) fn parse_5424(line: &str) -> Option<LogRecord> {
    let (pri, rest) = priority(line)?;
    let rest = rest.strip_prefix("1 ")?;
    let mut parts = rest.splitn(6, ' ');
    let stamp = parts.next()?;
    let host = parts.next()?;
    let app = parts.next()?;
    let procid = parts.next()?;
    let msgid = parts.next()?;
    let tail = parts.next().unwrap_or("");
    let (sd, msg) = split_structured_data(tail)?;
    let mut record = LogRecord {
        timestamp_ms: time::parse_rfc3339(stamp),
        level: LogLevel::from_syslog_severity(pri % 8),
        service: nil(app),
        body: msg.strip_prefix('\u{feff}').unwrap_or(msg).to_string(),
        ..LogRecord::default()
    };
    for (k, v) in [
        ("host", host),
        ("procid", procid),
        ("msgid", msgid),
        ("structured_data", sd),
    ] {
        if let Some(v) = nil(v) {
            record.attributes.insert(k.into(), v);
        }
    }
    record
        .attributes
        .insert("facility".into(), (pri / 8).to_string());
    Some(record)
}

/// `-` or one or more `[id k="v"]` elements, then the message.
fn split_structured_data(tail: &str) -> Option<(&str, &str)> {
    if let Some(msg) = tail.strip_prefix('-') {
        return Some(("-", msg.strip_prefix(' ').unwrap_or(msg)));
    }
    if !tail.starts_with('[') {
        return None;
    }
    let bytes = tail.as_bytes();
    let mut i = 0;
    let mut in_quotes = false;
    let mut depth = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'[' if !in_quotes => depth += 1,
            b']' if !in_quotes => {
                depth -= 1;
                if depth == 0 && bytes.get(i + 1) != Some(&b'[') {
                    let msg = tail.get(i + 1..)?;
                    return Some((&tail[..=i], msg.strip_prefix(' ').unwrap_or(msg)));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// RFC 3164: `[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`. The year is not in the line,
/// so the timestamp stays an attribute.
pub(crate) fn parse_3164(line: &str) -> Option<LogRecord> {
    let (pri, rest) = match priority(line) {
        Some((p, r)) => (Some(p), r),
        None => (None, line),
    };
    if rest.len() < 16 {
        return None;
    }
    let stamp = rest.get(..15)?;
    time::month_number(stamp)?;
    let b = stamp.as_bytes();
    if b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let rest = rest.get(16..)?;
    let (host, rest) = rest.split_once(' ')?;
    let (tag, msg) = match rest.split_once(": ") {
        Some((tag, msg)) if !tag.contains(' ') => (Some(tag), msg),
        _ => (None, rest),
    };
    let mut record = LogRecord {
        level: pri.and_then(|p| LogLevel::from_syslog_severity(p % 8)),
        body: msg.to_string(),
        ..LogRecord::default()
    };
    record.attributes.insert("time".into(), stamp.to_string());
    record.attributes.insert("host".into(), host.to_string());
    if let Some(tag) = tag {
        let (app, pid) = match tag.split_once('[') {
            Some((app, pid)) => (app, Some(pid.trim_end_matches(']'))),
            None => (tag, None),
        };
        record.service = Some(app.to_string());
        if let Some(pid) = pid {
            record.attributes.insert("pid".into(), pid.to_string());
        }
    }
    Some(record)
}

/// Combined or common access log:
/// `IP IDENT USER [dd/Mon/yyyy:hh:mm:ss +zzzz] "REQUEST" STATUS SIZE ["REFERER" "AGENT"]`.
/// The body is the request, status and size; the level follows the status.
pub(crate) fn parse_access(line: &str) -> Option<LogRecord> {
    let (addr, rest) = line.split_once(' ')?;
    let (ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] ")?;
    let rest = rest.strip_prefix('"')?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut fields = rest.splitn(3, ' ');
    let status = fields.next()?;
    let size = fields.next().unwrap_or("-");
    let tail = fields.next().unwrap_or("");
    let status_code: u16 = status.parse().ok()?;
    let mut record = LogRecord {
        timestamp_ms: time::parse_clf(stamp),
        level: Some(match status_code {
            500.. => LogLevel::Error,
            400..=499 => LogLevel::Warn,
            _ => LogLevel::Info,
        }),
        body: format!("{request} {status} {size}"),
        ..LogRecord::default()
    };
    let quoted: Vec<&str> = tail.split('"').skip(1).step_by(2).collect();
    for (k, v) in [
        ("remote_addr", addr),
        ("ident", ident),
        ("user", user),
        ("status", status),
        ("bytes", size),
    ] {
        if let Some(v) = nil(v) {
            record.attributes.insert(k.into(), v);
        }
    }
    if let Some(r) = quoted.first().and_then(|r| nil(r)) {
        record.attributes.insert("referer".into(), r);
    }
    if let Some(a) = quoted.get(1).and_then(|a| nil(a)) {
        record.attributes.insert("user_agent".into(), a);
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424() {
        let r = parse_5424(r#"<165>1 2003-10-11T22:14:15.003Z host1 evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#).unwrap();
        assert_eq!(r.body, "An application event");
        assert_eq!(r.level, Some(LogLevel::Info));
        assert_eq!(r.service.as_deref(), Some("evntslog"));
        assert_eq!(r.attributes["msgid"], "ID47");
        assert!(
            parse_5424("<34>1 2003-10-11T22:14:15Z h a - - - hi").is_some_and(|r| r.body == "hi")
        );
    }

    #[test]
    fn rfc3164() {
        let r = parse_3164("<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed").unwrap();
        assert_eq!(r.body, "'su root' failed");
        assert_eq!(r.level, Some(LogLevel::Fatal));
        assert_eq!(r.service.as_deref(), Some("su"));
        assert_eq!(r.attributes["pid"], "42");
        assert!(parse_3164("Jun  9 06:06:20 combo kernel: hi").is_some());
        assert!(parse_3164("hello world this is not syslog").is_none());
    }

    #[test]
    fn access_combined_and_common() {
        let r = parse_access(r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 404 2326 "http://x/" "Mozilla/4.08""#).unwrap();
        assert_eq!(r.body, "GET /a.gif HTTP/1.0 404 2326");
        assert_eq!(r.level, Some(LogLevel::Warn));
        assert_eq!(r.attributes["user_agent"], "Mozilla/4.08");
        assert_eq!(r.timestamp_ms, Some(971_211_336_000));
        let r = parse_access(r#"::1 - - [10/Oct/2000:13:55:36 +0000] "POST /x HTTP/1.1" 200 -"#)
            .unwrap();
        assert_eq!(r.level, Some(LogLevel::Info));
        assert!(parse_access("no").is_none());
    }
}
