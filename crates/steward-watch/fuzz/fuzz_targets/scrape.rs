//! The Prometheus text exposition parser (scraping) on arbitrary text: never panics,
//! and every line that is not blank or a comment is either a sample or counted as
//! rejected (nothing silently dropped).
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none scrape` from crates/steward-watch.
#![no_main]

#[path = "check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;
use steward_core::{Sample, SeriesKey};
use steward_watch::ingest::{Decoded, scrape};

/// The one call into the parser: adapt here when its signature changes.
fn parse(page: &str) -> Decoded<(SeriesKey, Sample)> {
    scrape::parse(
        page,
        1_700_000_000_000,
        &[("job", "fuzz"), ("instance", "x:1")],
    )
}

fuzz_target!(|data: &[u8]| {
    let page = String::from_utf8_lossy(data);
    let decoded = parse(&page);
    check::accounted(&decoded);
    check::named(&decoded.items);
    let lines = page
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count() as u64;
    assert_eq!(decoded.items.len() as u64 + decoded.rejected, lines);
    for (key, _) in &decoded.items {
        assert!(key.labels.contains_key("job"), "{key:?}");
    }
});
