//! Variable masking: which parts of a token are values rather than words.
//!
//! The miner groups lines by their masked tokens, so masking decides most of what a
//! template is. The rules are generic (numbers, hex, IPs, UUIDs, MAC addresses, paths,
//! URLs, durations and sizes, dates and times, booleans); there is no per-dataset rule.
//! A value is replaced by `<*>` and the punctuation around it is kept, so
//! `(TID 42).` becomes `(TID <*>).`, as Loghub's corrected templates write it.
//!
//! Two strengths of variable are told apart. A **strong** variable (a number, an
//! address, a path) is always a parameter. A **weak** one (an identifier mixing letters
//! and digits, such as `rdd_2_3` or `ssh2`) is masked for grouping, but the template
//! shows it literally while every line of the template has the same value.

/// What masking found in one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum VarKind {
    /// No variable part: the token is a word.
    None,
    /// An identifier with digits in it: masked for grouping only.
    Weak,
    /// A value: always a parameter.
    Strong,
}

/// The mask text.
pub(crate) const WILDCARD: &str = "<*>";

const OPENERS: &[u8] = b"([{<\"'";
const CLOSERS: &[u8] = b")]}>\"',;:.!?";

/// Bits of [`BYTE_CLASS`]: what a byte can make of a token. ASCII whitespace, where
/// tokens end (`split_ascii_whitespace`'s set).
pub(crate) const SPACE: u16 = 1 << 0;
const DIGIT: u16 = 1 << 1;
const SLASH: u16 = 1 << 2;
const BACKSLASH: u16 = 1 << 3;
const DOT: u16 = 1 << 4;
const EQUALS: u16 = 1 << 5;
const COLON: u16 = 1 << 6;
const DASH: u16 = 1 << 7;
/// Anything but a digit and the separators of numeric values (`/ : . - , +`).
const OTHER: u16 = 1 << 8;
/// A digit, `/`, `\`, `.` or `=`: a token without any is a word and skips masking.
pub(crate) const VALUE_HINT: u16 = DIGIT | SLASH | BACKSLASH | DOT | EQUALS;

/// The class bits of every byte, so that a token's ends and the checks that can apply
/// to it are found with one table lookup per byte.
pub(crate) static BYTE_CLASS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b' ' | b'\t' | b'\n' | b'\x0C' | b'\r' => SPACE | OTHER,
            b'0'..=b'9' => DIGIT,
            b'/' => SLASH,
            b'\\' => BACKSLASH | OTHER,
            b'.' => DOT,
            b'=' => EQUALS | OTHER,
            b':' => COLON,
            b'-' => DASH,
            b',' | b'+' => 0,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// The union of the class bits of a text's bytes.
#[inline]
pub(crate) fn classes(b: &[u8]) -> u16 {
    b.iter().fold(0, |acc, &c| acc | BYTE_CLASS[usize::from(c)])
}

/// Masks `token` into `out` (cleared first) and says what it found. (The miner's
/// tokenizer does the word check itself and calls [`mask_value_token`].)
#[cfg(test)]
pub(crate) fn mask_token(token: &str, out: &mut String) -> VarKind {
    out.clear();
    // Fast path: a token with no digit, no slash and no special word is a word.
    if classes(token.as_bytes()) & VALUE_HINT == 0 {
        if is_boolean(token) {
            out.push_str(WILDCARD);
            return VarKind::Strong;
        }
        out.push_str(token);
        return VarKind::None;
    }
    mask_value_token(token, out)
}

/// Masks a token that has a digit, `/`, `\`, `.` or `=` (the caller has checked),
/// appending to `out`.
pub(crate) fn mask_value_token(token: &str, out: &mut String) -> VarKind {
    let bytes = token.as_bytes();
    // The most common value of all, a plain number, skips every pattern below.
    if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) {
        out.push_str(WILDCARD);
        return VarKind::Strong;
    }
    // Peel brackets and trailing punctuation so that `(10.0.0.1)` or `1.5s,` are
    // judged by their core and keep their punctuation.
    let mut start = 0;
    while start < bytes.len() && OPENERS.contains(&bytes[start]) {
        start += 1;
    }
    let mut end = bytes.len();
    while end > start && CLOSERS.contains(&bytes[end - 1]) {
        end -= 1;
    }
    let mut core = &token[start..end];
    // A path takes a trailing dot with it (`/a/job.jar.`), as Loghub's rules read it.
    if may_be_path(core.as_bytes()) && is_path(core) {
        while end < bytes.len() && bytes[end] == b'.' {
            end += 1;
        }
        core = &token[start..end];
    }
    if !core.is_empty() && is_whole_value(core) {
        out.push_str(&token[..start]);
        out.push_str(WILDCARD);
        out.push_str(&token[end..]);
        return VarKind::Strong;
    }
    if bytes.contains(&b'=') {
        if let Some(kind) = mask_key_value(token, out) {
            return kind;
        }
    }
    mask_segments(token, out)
}

/// `key=value`: the key stays, the value is masked. A value without digits is a weak
/// variable (`tty=ssh` stays as written while it does not vary). Appends to `out`.
fn mask_key_value(token: &str, out: &mut String) -> Option<VarKind> {
    let eq = token.find('=')?;
    let key = &token[..eq];
    let value = &token[eq + 1..];
    if key.is_empty()
        || value.is_empty()
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        || !key.as_bytes()[0].is_ascii_alphabetic()
    {
        return None;
    }
    // Trailing punctuation (`x=1,`) stays outside the value.
    let trimmed = value.trim_end_matches([',', ';', ')', ']', '}', '.']);
    if trimmed.is_empty() {
        return None;
    }
    out.push_str(key);
    out.push('=');
    // The value is masked in place, after the key, so no buffer is allocated for it.
    let value_start = out.len();
    let kind = if classes(trimmed.as_bytes()) & VALUE_HINT != 0 {
        mask_value_token(trimmed, out)
    } else if is_boolean(trimmed) {
        out.push_str(WILDCARD);
        VarKind::Strong
    } else {
        out.push_str(trimmed);
        VarKind::None
    }
    .max(VarKind::Weak);
    // A value is one variable, however it masked (`rhost=<*>` for any host), unless
    // it has structure of its own (`headroom=<memory:<*>, vCores:<*>>`).
    if !(trimmed.starts_with(['<', '[', '(', '{']) && out[value_start..].contains(WILDCARD)) {
        out.truncate(value_start);
        out.push_str(WILDCARD);
    }
    out.push_str(&value[trimmed.len()..]);
    Some(kind)
}

/// True, false and friends are values (Loghub's correction rules mask them too).
pub(crate) fn is_boolean(token: &str) -> bool {
    token.eq_ignore_ascii_case("true") || token.eq_ignore_ascii_case("false")
}

/// A core that is one value as a whole: URL, path, IP (with port), UUID, MAC, number
/// with an optional unit, hex, or a date or time made of numbers and separators.
fn is_whole_value(core: &str) -> bool {
    let b = core.as_bytes();
    // One pass to learn which checks can apply: this runs for every token with a digit.
    let class = classes(b);
    let has = |bit: u16| class & bit != 0;
    let (digit, slash, colon, dot, dash, other) = (
        has(DIGIT),
        has(SLASH),
        has(COLON),
        has(DOT),
        has(DASH),
        has(OTHER),
    );
    if digit && !other {
        // Dates, times, versions, ranges, IPs: digits joined by separators only.
        return true;
    }
    if is_number_with_unit(b) || is_hex(b) {
        return true;
    }
    if colon && core.contains("://") {
        return true;
    }
    if slash && (is_path(core) || is_name_version(b)) {
        return true;
    }
    if (dot || colon) && is_ip_like(core) {
        return true;
    }
    if dash && is_uuid(b) {
        return true;
    }
    if colon && (is_mac(b) || is_host_port(b)) {
        return true;
    }
    dot && is_hostname(b)
}

/// `cp-1.slowvm1.tcloud-pg0.utah.cloudlab.us`: three or more dotted labels ending in a
/// common top-level domain.
fn is_hostname(b: &[u8]) -> bool {
    const TLDS: &[&str] = &[
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "io",
        "us",
        "uk",
        "de",
        "cn",
        "jp",
        "fr",
        "ru",
        "in",
        "info",
        "biz",
        "local",
        "internal",
        "lan",
        "localdomain",
    ];
    // Labels are checked as they are split, with no list built: this runs for every
    // dotted token.
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in b.split(|c| *c == b'.') {
        if label.is_empty()
            || !label
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 3 && TLDS.iter().any(|tld| tld.as_bytes() == last)
}

/// Whether `core` can start a path at all (`/`, `./`, `../`, `~/`, `C:\`): a first-byte
/// check before [`is_path`].
#[inline]
fn may_be_path(b: &[u8]) -> bool {
    matches!(b.first(), Some(b'/' | b'.' | b'~')) || b.get(1) == Some(&b':')
}

fn is_path(core: &str) -> bool {
    let b = core.as_bytes();
    let rest = if let Some(r) = core.strip_prefix("./") {
        r
    } else if let Some(r) = core.strip_prefix("../") {
        r
    } else if let Some(r) = core.strip_prefix("~/") {
        r
    } else if b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
        return true;
    } else if let Some(r) = core.strip_prefix('/') {
        r
    } else {
        return false;
    };
    !rest.is_empty()
        && rest.bytes().any(|c| c.is_ascii_alphanumeric())
        && rest.bytes().all(|c| !c.is_ascii_whitespace())
}

/// IPv4 with optional port or prefix, `host/ip:port`, IPv6.
fn is_ip_like(core: &str) -> bool {
    let core = core.trim_start_matches('/');
    let candidate = match core.rfind('/') {
        Some(i) if i + 1 < core.len() => &core[i + 1..],
        _ => core,
    };
    let (ip, port) = candidate.split_once(':').unwrap_or((candidate, "0"));
    if is_ipv4(ip.as_bytes()) && !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) {
        return true;
    }
    is_ipv6(core.as_bytes())
}

/// `msra-sa-41:9000`: a host name and a port.
fn is_host_port(b: &[u8]) -> bool {
    let Some(colon) = b.iter().rposition(|c| *c == b':') else {
        return false;
    };
    let (host, port) = (&b[..colon], &b[colon + 1..]);
    !host.is_empty()
        && (1..=5).contains(&port.len())
        && port.iter().all(u8::is_ascii_digit)
        && host[0].is_ascii_alphanumeric()
        && (host == b"localhost"
            || host
                .iter()
                .any(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.')))
        && host
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}

/// `HTTP/1.1`, `Mozilla/5.0`: a name and a version.
fn is_name_version(b: &[u8]) -> bool {
    let Some(slash) = b.iter().position(|c| *c == b'/') else {
        return false;
    };
    let (name, version) = (&b[..slash], &b[slash + 1..]);
    !name.is_empty()
        && name.iter().all(u8::is_ascii_alphabetic)
        && version.first().is_some_and(u8::is_ascii_digit)
        && version.iter().all(|c| c.is_ascii_digit() || *c == b'.')
}

fn is_ipv4(b: &[u8]) -> bool {
    let mut parts = 0;
    let mut digits = 0;
    for &c in b {
        if c.is_ascii_digit() {
            digits += 1;
            if digits > 3 {
                return false;
            }
        } else if c == b'.' {
            if digits == 0 {
                return false;
            }
            parts += 1;
            digits = 0;
        } else {
            return false;
        }
    }
    parts == 3 && digits > 0
}

fn is_ipv6(b: &[u8]) -> bool {
    let colons = b.iter().filter(|c| **c == b':').count();
    colons >= 2
        && b.iter().any(u8::is_ascii_hexdigit)
        && b.iter()
            .all(|c| c.is_ascii_hexdigit() || *c == b':' || *c == b'.')
        && b.windows(3).all(|w| w != b":::")
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_mac(b: &[u8]) -> bool {
    b.len() == 17
        && b.iter().enumerate().all(|(i, c)| {
            if i % 3 == 2 {
                *c == b':' || *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// `42`, `-7`, `3.14`, `1e-9`, `250ms`, `1.5s`, `64KB`, `99%`.
fn is_number_with_unit(b: &[u8]) -> bool {
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b',') {
        i += 1;
    }
    if i == digits_start || !b[digits_start].is_ascii_digit() {
        return false;
    }
    if i + 1 < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if b[j] == b'-' || b[j] == b'+' {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start && j == b.len() {
            return true;
        }
    }
    let unit = &b[i..];
    unit.len() <= 3 && unit.iter().all(|c| c.is_ascii_alphabetic() || *c == b'%')
}

/// `0x1f`, or a run of at least eight hex digits with both a digit and a letter.
fn is_hex(b: &[u8]) -> bool {
    if b.len() > 2 && (b.starts_with(b"0x") || b.starts_with(b"0X")) {
        return b[2..].iter().all(u8::is_ascii_hexdigit);
    }
    b.len() >= 8
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Masks the identifier runs of a token one by one, keeping the punctuation between
/// them; an embedded path (`chdir(/a/b)`, `file=/a/b`) is one value.
/// Appends to `out`.
fn mask_segments(token: &str, out: &mut String) -> VarKind {
    let base = out.len();
    let b = token.as_bytes();
    let mut kind = VarKind::None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        // An embedded path starts at a slash after a delimiter and runs to a closer.
        if c == b'/'
            && (i == 0 || matches!(b[i - 1], b'(' | b'=' | b':' | b'[' | b'"' | b'\'' | b','))
            && i + 1 < b.len()
            && is_word_byte(b[i + 1])
        {
            let mut j = i + 1;
            while j < b.len() && !matches!(b[j], b')' | b']' | b'"' | b'\'' | b',' | b';') {
                j += 1;
            }
            push_wildcard(out, base);
            kind = VarKind::Strong;
            i = j;
            continue;
        }
        // An embedded UUID (`network-vif-plugged:3f25…`) is one value.
        if is_word_byte(c)
            && (i == 0 || !is_word_byte(b[i - 1]))
            && b.len() >= i + 36
            && is_uuid(&b[i..i + 36])
        {
            push_wildcard(out, base);
            kind = VarKind::Strong;
            i += 36;
            continue;
        }
        let signed = c == b'-'
            && i + 1 < b.len()
            && b[i + 1].is_ascii_digit()
            && (i == 0 || b[i - 1] == b'_' || !is_word_byte(b[i - 1]));
        if is_word_byte(c) || signed {
            let start = i;
            i += 1;
            while i < b.len()
                && (is_word_byte(b[i])
                    || (b[i] == b'-'
                        && b[i - 1] == b'_'
                        && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            // An IPv4 address inside a token (`host/10.0.0.1:80`) is one value.
            let mut run_end = i;
            if b[start..i].iter().all(u8::is_ascii_digit) {
                let mut j = i;
                let mut dots = 0;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                    if b[j] == b'.' {
                        dots += 1;
                    }
                    j += 1;
                }
                if dots == 3 && is_ipv4(&b[start..j]) {
                    run_end = j;
                }
            }
            i = run_end;
            let run = &token[start..run_end];
            let run_kind = classify_run(run.as_bytes());
            match run_kind {
                VarKind::None => out.push_str(run),
                _ => push_wildcard(out, base),
            }
            kind = kind.max(run_kind);
        } else {
            // Copy one (possibly multi-byte) character.
            let ch_len = token[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&token[i..i + ch_len]);
            i += ch_len;
        }
    }
    // A token that is only values and joining punctuation is one value: `<*>:<*>`
    // (an address and port), `<*>-<*>-<*>` (a date), `<*>.<*>` (a version).
    if kind != VarKind::None && only_values_and_joiners(&out[base..]) {
        out.truncate(base);
        out.push_str(WILDCARD);
    }
    kind
}

/// Whether masked text starts and ends with `<*>` and has only joining punctuation
/// between its `<*>`s.
fn only_values_and_joiners(masked: &str) -> bool {
    if !masked.starts_with(WILDCARD) || !masked.ends_with(WILDCARD) {
        return false;
    }
    let mut rest = masked.as_bytes();
    while let Some(&c) = rest.first() {
        if let Some(after) = rest.strip_prefix(WILDCARD.as_bytes()) {
            rest = after;
        } else if matches!(
            c,
            b'.' | b':' | b'-' | b'/' | b'@' | b'#' | b'+' | b'_' | b','
        ) {
            rest = &rest[1..];
        } else {
            return false;
        }
    }
    true
}

/// Appends `<*>` unless the output (from `base`) already ends with one: adjacent
/// values are one.
fn push_wildcard(out: &mut String, base: usize) {
    if !out[base..].ends_with(WILDCARD) {
        out.push_str(WILDCARD);
    }
}

/// Judges one identifier run (letters, digits, underscores, maybe a leading minus).
fn classify_run(run: &[u8]) -> VarKind {
    let digits = run.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return VarKind::None;
    }
    if is_number_with_unit(run) || is_hex(run) {
        return VarKind::Strong;
    }
    let letters = run.iter().filter(|c| c.is_ascii_alphabetic()).count();
    // Mostly digits (`blk_-42`, `job_1445_0001`, `a1b2c3`): a value.
    if digits >= 4 && digits * 2 >= letters {
        return VarKind::Strong;
    }
    VarKind::Weak
}

/// Units of size that follow a number as a word of their own (`12 KB`): with the
/// number they are one quantity.
pub(crate) fn is_size_unit(token: &str) -> bool {
    const UNITS: &[&str] = &[
        "B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "kB",
    ];
    let t = token.trim_end_matches([',', ')', ';', '.']);
    UNITS.contains(&t)
}

/// English month and weekday abbreviations: parts of a timestamp when they stand next
/// to numbers.
pub(crate) fn is_date_word(token: &str) -> bool {
    const WORDS: &[&[u8; 3]] = &[
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec", b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun",
    ];
    let b = token.as_bytes();
    // Cheap rejections first: this runs for every word next to a number.
    if b.len() < 3
        || b.len() > 10
        || !matches!(
            b[0] | 0x20,
            b'j' | b'f' | b'm' | b'a' | b's' | b'o' | b'n' | b'd' | b't' | b'w'
        )
    {
        return false;
    }
    // The first byte is a letter, so only the end is trimmed (`Sunday,`); byte by byte,
    // as a non-ASCII byte is never an ASCII letter.
    let last = b
        .iter()
        .rposition(u8::is_ascii_alphabetic)
        .map_or(0, |i| i + 1);
    let tb = &b[..last];
    if tb.len() < 3 || !tb.is_ascii() {
        return false;
    }
    let head = [
        tb[0].to_ascii_lowercase(),
        tb[1].to_ascii_lowercase(),
        tb[2].to_ascii_lowercase(),
    ];
    WORDS.iter().any(|w| **w == head) && (tb.len() == 3 || is_full_date_word(tb))
}

fn is_full_date_word(t: &[u8]) -> bool {
    const FULL: &[&str] = &[
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    FULL.iter().any(|w| t.eq_ignore_ascii_case(w.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str) -> (String, VarKind) {
        let mut out = String::new();
        let k = mask_token(t, &mut out);
        (out, k)
    }

    #[test]
    fn masks_values_and_keeps_punctuation() {
        let cases = [
            ("hello", "hello"),
            ("42", "<*>"),
            ("(TID", "(TID"),
            ("42).", "<*>)."),
            ("10.1.2.3:8080", "<*>"),
            ("/10.1.2.3:8080", "<*>"),
            ("[10.1.2.3]", "[<*>]"),
            ("/var/log/x.log", "<*>"),
            ("http://a.b/c?d=1", "<*>"),
            ("size=1024", "size=<*>"),
            ("chdir(/p/gb1/x)", "chdir(<*>)"),
            ("core.2275", "core.<*>"),
            ("blk_-1608999687919862906", "<*>"),
            ("rdd_2_3", "<*>"),
            ("jk2_init()", "<*>()"),
            ("12:34:56", "<*>"),
            ("2005-06-03", "<*>"),
            ("250ms", "<*>"),
            ("0xdeadbeef", "<*>"),
            ("true", "<*>"),
            ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", "<*>"),
            ("node-123", "node-<*>"),
            ("headroom=<memory:0,", "headroom=<memory:<*>,"),
            ("msra-sa-41/10.190.173.170:9000", "<*>"),
        ];
        for (input, want) in cases {
            assert_eq!(m(input).0, want, "masking {input:?}");
        }
        assert_eq!(m("ssh2").1, VarKind::Weak);
        assert_eq!(m("port").1, VarKind::None);
    }

    #[test]
    fn date_words() {
        assert!(is_date_word("Jul"));
        assert!(is_date_word("Sunday,"));
        assert!(!is_date_word("Mayday"));
        assert!(!is_date_word("user"));
    }
}
