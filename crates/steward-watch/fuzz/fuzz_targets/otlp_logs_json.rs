//! OTLP/HTTP logs (JSON) on arbitrary bytes: the decoder never panics and accounts
//! for what it refuses.
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none otlp_logs_json` from crates/steward-watch.
#![no_main]

#[path = "check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;
use steward_core::LogRecord;
use steward_watch::ingest::{Decoded, Format, IngestError, otlp};

/// The one call into the decoder: adapt here when its signature changes.
fn decode(body: &[u8]) -> Result<Decoded<LogRecord>, IngestError> {
    otlp::decode_logs(body, Format::Json)
}

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(decoded) => {
            check::accounted(&decoded);
        }
        Err(e) => check::explained(&e),
    }
});
