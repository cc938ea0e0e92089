//! Just enough timestamp parsing for the formats: RFC 3339 / ISO 8601, epoch numbers,
//! and the `dd/Mon/yyyy:hh:mm:ss +zzzz` of access logs. No time zone database: offsets
//! are taken as written.

use steward_core::TimestampMs;

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The month number of an English month abbreviation.
pub(crate) fn month_number(s: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = s.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .and_then(|i| u32::try_from(i + 1).ok())
}

#[allow(clippy::too_many_arguments)] // a civil date-time is eight numbers
fn to_ms(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    ms: u32,
    offset_min: i64,
) -> Option<TimestampMs> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs =
        days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s) - offset_min * 60;
    Some(secs * 1000 + i64::from(ms))
}

/// `2024-05-01T12:00:00Z`, `2024-05-01 12:00:00.123+02:00`, and without a zone (UTC).
pub(crate) fn parse_rfc3339(s: &str) -> Option<TimestampMs> {
    let s = s.trim();
    if s.len() < 19 || !s.is_ascii() {
        return None;
    }
    let y: i64 = num(&s[0..4])?.into();
    if &s[4..5] != "-" || &s[7..8] != "-" || !matches!(&s[10..11], "T" | "t" | " ") {
        return None;
    }
    let mo = num(&s[5..7])?;
    let d = num(&s[8..10])?;
    let h = num(&s[11..13])?;
    let mi = num(&s[14..16])?;
    let sec = num(&s[17..19])?;
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = &frac[..digits];
        let padded: String = f.chars().chain("000".chars()).take(3).collect();
        ms = num(&padded)?;
        rest = &frac[digits..];
    }
    let offset = parse_offset(rest)?;
    to_ms(y, mo, d, h, mi, sec, ms, offset)
}

/// `Z`, empty, `+02:00`, `-0700`.
fn parse_offset(s: &str) -> Option<i64> {
    match s {
        "" | "Z" | "z" => Some(0),
        _ => {
            let sign = match s.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return None;
            }
            let h = i64::from(num(&digits[..2])?);
            let m = i64::from(num(&digits[2..])?);
            Some(sign * (h * 60 + m))
        }
    }
}

/// An epoch number: seconds (possibly fractional) or milliseconds, told apart by size.
pub(crate) fn parse_epoch(v: f64) -> Option<TimestampMs> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ms = if v > 1e11 { v } else { v * 1000.0 };
    if ms > 1e15 {
        return None;
    }
    Some(ms as TimestampMs)
}

/// `10/Oct/2000:13:55:36 -0700`, as access logs write it.
pub(crate) fn parse_clf(s: &str) -> Option<TimestampMs> {
    let (stamp, zone) = s.split_once(' ').unwrap_or((s, "+0000"));
    let mut parts = stamp.splitn(3, '/');
    let d = num(parts.next()?)?;
    let mo = month_number(parts.next()?)?;
    let rest = parts.next()?;
    let mut t = rest.split(':');
    let y: i64 = num(t.next()?)?.into();
    let h = num(t.next()?)?;
    let mi = num(t.next()?)?;
    let sec = num(t.next()?)?;
    to_ms(y, mo, d, h, mi, sec, 0, parse_offset(zone)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00.5+01:00"), Some(500));
        assert_eq!(parse_rfc3339("2000-03-01 00:00:00"), Some(951_868_800_000));
        assert_eq!(parse_clf("01/Jan/1970:00:00:02 +0000"), Some(2000));
        assert_eq!(parse_epoch(1.5), Some(1500));
        assert_eq!(parse_epoch(1_700_000_000_123.0), Some(1_700_000_000_123));
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
