//! Every format parser on arbitrary bytes: never panics, never drops the line.
//! `cargo +nightly fuzz run formats` from crates/steward-logs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_logs::format::{Format, LineParser};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line may be a header format; the rest are log lines.
    let (spec, body) = text.split_once('\n').unwrap_or(("", &text));
    let mut formats = vec![
        Format::Auto,
        Format::Raw,
        Format::Json,
        Format::Logfmt,
        Format::Syslog,
        Format::Access,
    ];
    if let Ok(f) = spec.parse::<Format>() {
        formats.push(f);
    }
    for format in formats {
        let mut parser = LineParser::new(format);
        for line in body.lines() {
            let record = parser.parse(line);
            let _ = record.body.len();
        }
        assert_eq!(parser.stats().lines, body.lines().count() as u64);
    }
    let sample: Vec<&str> = body.lines().take(20).collect();
    let _ = steward_logs::format::detect(&sample);
});
