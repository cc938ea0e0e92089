//! Timestamps as people write them in CSV files, and back.
//!
//! Written by hand rather than with chrono or jiff: steward needs four input forms and
//! two output forms, all in UTC, and the civil-date arithmetic is a dozen lines.

use steward_core::TimestampMs;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a timestamp: RFC 3339 (`2024-05-01T14:05:00Z`, with an offset or fraction),
/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (taken as UTC), a date alone, or a Unix time in
/// seconds or milliseconds (a number above 10^11 is taken as milliseconds).
pub fn parse_timestamp(text: &str) -> Option<TimestampMs> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !s[1..].contains('-')
    {
        let v: f64 = s.parse().ok()?;
        if !v.is_finite() {
            return None;
        }
        let ms = if v.abs() >= 1e11 { v } else { v * 1000.0 };
        return Some(ms.round() as i64);
    }
    let bytes = s.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let y = digits(&s[0..4])?;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, d) * 86_400_000;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    if rest.len() < 5 || rest.as_bytes()[2] != b':' {
        return None;
    }
    let h = digits(&rest[0..2])?;
    let mi = digits(&rest[3..5])?;
    let mut tail = &rest[5..];
    let mut sec = 0;
    if let Some(t) = tail.strip_prefix(':') {
        sec = digits(t.get(0..2)?)?;
        tail = &t[2..];
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    ms += (h * 3600 + mi * 60 + sec) * 1000;
    if let Some(t) = tail.strip_prefix(['.', ',']) {
        let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let frac = &t[..end];
        if frac.is_empty() {
            return None;
        }
        let mut f = 0i64;
        for (i, b) in frac.bytes().take(3).enumerate() {
            f += i64::from(b - b'0') * [100, 10, 1][i];
        }
        ms += f;
        tail = &t[end..];
    }
    match tail {
        "" | "Z" | "z" => Some(ms),
        _ => {
            let sign = match tail.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let off = tail[1..].replace(':', "");
            if off.len() != 4 {
                return None;
            }
            let oh = digits(&off[0..2])?;
            let om = digits(&off[2..4])?;
            Some(ms - sign * (oh * 3600 + om * 60) * 1000)
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the form NAB and most CSV exports use.
pub fn format_timestamp(ms: TimestampMs) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `HH:MM` in UTC, for reasons ("level shift up 38% at 14:05").
pub fn format_clock(ms: TimestampMs) -> String {
    let rem = ms.rem_euclid(86_400_000) / 1000;
    format!("{:02}:{:02}", rem / 3600, rem / 60 % 60)
}

/// Parses a duration such as `7d`, `12h`, `30m`, `45s`, `2w` or `1500ms`, in
/// milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let s = text.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_ms = match unit.trim() {
        "ms" => 1.0,
        "s" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        "d" => 86_400e3,
        "w" => 7.0 * 86_400e3,
        _ => return None,
    };
    let v = n * unit_ms;
    (v.is_finite() && (0.0..9e18).contains(&v)).then_some(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_agree() {
        let want = 1_714_572_300_000; // 2024-05-01 14:05:00 UTC
        assert_eq!(parse_timestamp("2024-05-01 14:05:00"), Some(want));
        assert_eq!(parse_timestamp("2024-05-01T14:05:00Z"), Some(want));
        assert_eq!(parse_timestamp("2024-05-01T16:05:00+02:00"), Some(want));
        assert_eq!(parse_timestamp("2024-05-01 14:05:00.000000"), Some(want));
        assert_eq!(parse_timestamp("1714572300"), Some(want));
        assert_eq!(parse_timestamp("1714572300000"), Some(want));
        assert_eq!(format_timestamp(want), "2024-05-01 14:05:00");
        assert_eq!(format_clock(want), "14:05");
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-13-01"), None);
        assert_eq!(parse_timestamp("2024-05-01T1"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_duration("12h"), Some(12 * 3_600_000));
        assert_eq!(parse_duration("1500ms"), Some(1500));
        assert_eq!(parse_duration("7 parsecs"), None);
    }
}
