//! OTLP/HTTP logs (protobuf) on arbitrary bytes: the decoder never panics, and every
//! log record in a body it takes is either a record or counted as rejected.
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none otlp_logs_proto` from crates/steward-watch.
#![no_main]

#[path = "check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use steward_core::LogRecord;
use steward_watch::ingest::{Decoded, Format, IngestError, otlp};

/// The one call into the decoder: adapt here when its signature changes.
fn decode(body: &[u8]) -> Result<Decoded<LogRecord>, IngestError> {
    otlp::decode_logs(body, Format::Protobuf)
}

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(decoded) => {
            check::accounted(&decoded);
            // The same bytes decoded by prost alone: the records the body holds.
            let request = otlp::proto::ExportLogsServiceRequest::decode(data).unwrap();
            let records: usize = request
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum();
            assert_eq!(
                decoded.items.len() as u64 + decoded.rejected,
                records as u64
            );
        }
        Err(e) => check::explained(&e),
    }
});
