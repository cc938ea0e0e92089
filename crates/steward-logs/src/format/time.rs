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

/// Whether a header field's name says it holds (part of) the date or time.
pub(crate) fn is_stamp_field(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "timestamp",
        "datetime",
        "date",
        "time",
        "month",
        "day",
        "year",
    ];
    NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// The time that a header's date and time fields say, given as (name, value) in format
/// order: a field that is a whole timestamp on its own (`Timestamp`, `Datetime`,
/// `Time`, `Date`, in that order), else all of them read together (`<Date> <Time>`).
/// Without a year (`Jun 14 15:16:01`) there is no timestamp: none is guessed. Header
/// times carry no zone and are taken as UTC.
pub(crate) fn parse_header_stamp(fields: &[(&str, &str)]) -> Option<TimestampMs> {
    for name in ["timestamp", "datetime", "time", "date"] {
        for (field, value) in fields {
            if field.eq_ignore_ascii_case(name) {
                if let Some(ms) = parse_instant(value) {
                    return Some(ms);
                }
            }
        }
    }
    if fields.len() < 2 {
        return None;
    }
    let joined = fields
        .iter()
        .map(|(_, value)| *value)
        .collect::<Vec<_>>()
        .join(" ");
    parse_instant(&joined)
}

/// A complete date and time written in one of the common ways: RFC 3339 / ISO 8601,
/// access-log time, epoch seconds or milliseconds (9 to 13 digits), or numbers in
/// year-month-day order with a time (`2005-06-03-15.42.50.675872`, `081109 203615`,
/// `17/06/09 20:10:40`, two-digit years being 20yy), or a month name with day, time
/// and year in any order (`Sun Dec 04 04:47:44 2005`).
pub(crate) fn parse_instant(s: &str) -> Option<TimestampMs> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return if (9..=13).contains(&s.len()) {
            parse_epoch(s.parse().ok()?)
        } else {
            None
        };
    }
    parse_rfc3339(s)
        .or_else(|| parse_clf(s))
        .or_else(|| parse_loose(s))
}

/// One number of a date-time and the separator before it.
#[derive(Debug, Clone, Copy)]
struct Num<'a> {
    digits: &'a str,
    after: u8,
}

/// The numbered and named parts of a date-time, with no fixed layout (see
/// [`parse_instant`]).
fn parse_loose(s: &str) -> Option<TimestampMs> {
    let b = s.as_bytes();
    let mut nums: Vec<Num<'_>> = Vec::new();
    let mut month = None;
    let mut i = 0;
    let mut sep = b' ';
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            nums.push(Num {
                digits: &s[start..i],
                after: sep,
            });
        } else if b[i].is_ascii_alphabetic() {
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word = &s[start..i];
            if let Some(m) = month_number(word).filter(|_| is_month_name(word)) {
                if month.replace(m).is_some() {
                    return None;
                }
            } else if !is_weekday_name(word) {
                // Any other word (`PM`, a zone name) would change the meaning.
                return None;
            }
        } else {
            sep = b[i];
            i += 1;
            continue;
        }
        sep = b' ';
    }
    let n = |k: usize| nums.get(k).and_then(|x| num(x.digits));
    match month {
        Some(mo) => {
            // The time is three numbers joined by colons; the rest are day and year.
            let t = (0..nums.len().saturating_sub(2))
                .find(|&k| nums[k + 1].after == b':' && nums[k + 2].after == b':')?;
            let (ms, fraction) = fraction_after(&nums, t + 2);
            let mut day = None;
            let mut year = None;
            for (k, x) in nums.iter().enumerate() {
                if (t..=t + 2).contains(&k) || Some(k) == fraction {
                    continue;
                }
                match x.digits.len() {
                    1 | 2 if day.is_none() => day = num(x.digits),
                    4 if year.is_none() => year = num(x.digits),
                    _ => return None,
                }
            }
            to_ms(
                i64::from(year?),
                mo,
                day?,
                n(t)?,
                n(t + 1)?,
                n(t + 2)?,
                ms,
                0,
            )
        }
        None => {
            // Split run-together numbers: `081109` is yy mm dd, `203615` hh mm ss.
            let mut parts: Vec<&str> = Vec::new();
            let mut fraction = None;
            for (k, x) in nums.iter().enumerate() {
                let d = x.digits;
                if parts.len() >= 6 {
                    if fraction.is_none() && matches!(x.after, b'.' | b',') && k == nums.len() - 1 {
                        fraction = Some(d);
                        continue;
                    }
                    return None;
                }
                match d.len() {
                    6 if parts.len() % 3 == 0 => {
                        parts.extend([&d[..2], &d[2..4], &d[4..]]);
                    }
                    8 if k == 0 => parts.extend([&d[..4], &d[4..6], &d[6..]]),
                    _ => parts.push(d),
                }
            }
            if parts.len() != 6 {
                return None;
            }
            let year = match parts[0].len() {
                4 => i64::from(num(parts[0])?),
                2 => 2000 + i64::from(num(parts[0])?),
                _ => return None,
            };
            if parts[1..].iter().any(|p| p.len() > 2) {
                return None;
            }
            let ms = fraction.map_or(Some(0), millis)?;
            let p = |k: usize| num(parts[k]);
            to_ms(year, p(1)?, p(2)?, p(3)?, p(4)?, p(5)?, ms, 0)
        }
    }
}

/// The milliseconds of the number after the seconds at `k`, if it is a fraction
/// (`44.123`, `47,978`), and its index.
fn fraction_after(nums: &[Num<'_>], k: usize) -> (u32, Option<usize>) {
    match nums.get(k + 1) {
        Some(x) if matches!(x.after, b'.' | b',') => match millis(x.digits) {
            Some(ms) => (ms, Some(k + 1)),
            None => (0, None),
        },
        _ => (0, None),
    }
}

/// The first three digits of a decimal fraction, as milliseconds.
fn millis(digits: &str) -> Option<u32> {
    let mut ms = 0;
    let mut taken = 0;
    for c in digits.bytes().take(3) {
        ms = ms * 10 + u32::from(c.checked_sub(b'0').filter(|d| *d <= 9)?);
        taken += 1;
    }
    while taken < 3 {
        ms *= 10;
        taken += 1;
    }
    Some(ms)
}

/// A month written as a word: its three-letter abbreviation or its full name.
fn is_month_name(word: &str) -> bool {
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    word.len() == 3 || FULL.iter().any(|m| word.eq_ignore_ascii_case(m))
}

/// A weekday written as a word, which a date-time may carry and which adds nothing.
fn is_weekday_name(word: &str) -> bool {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    DAYS.iter().any(|d| {
        word.eq_ignore_ascii_case(d) || (word.len() == 3 && d[..3].eq_ignore_ascii_case(word))
    })
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
