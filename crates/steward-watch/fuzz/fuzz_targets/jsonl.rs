//! JSON-lines ingest on arbitrary bytes: never panics, and every non-blank line is
//! either taken or counted as rejected (nothing silently dropped).
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none jsonl` from crates/steward-watch.
#![no_main]

#[path = "check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;
use steward_core::LogRecord;
use steward_watch::ingest::{Decoded, jsonl};

/// The one call into the decoder: adapt here when its signature changes.
fn decode(body: &[u8]) -> Decoded<LogRecord> {
    jsonl::decode(body)
}

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data);
    check::accounted(&decoded);
    let lines = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as u64;
    assert_eq!(decoded.items.len() as u64 + decoded.rejected, lines);
});
