//! Prometheus remote write on arbitrary bytes: the snappy layer and the hand-written
//! protobuf walk behind it never panic, and on every body prost can decode the walk
//! agrees with prost (the reference): the same series, labels sorted, the same
//! samples, and every refused series counted. (Groups, wire types 3 and 4, are the one
//! accepted difference: prost skips them, steward refuses the body with a reason.)
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a remote_write` from crates/steward-watch.
#![no_main]

#[path = "check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use steward_watch::ingest::remote_write::{self, proto};
use steward_watch::ingest::{Encoding, IngestError, Limits, decompress};

/// One accepted series: its labels sorted by name, its samples as `(ms, value bits)`.
type Series = (Vec<(String, String)>, Vec<(i64, u64)>);

/// What a decoder made of one body.
#[derive(Debug, PartialEq)]
struct Answer {
    series: Vec<Series>,
    rejected: u64,
}

/// The one call into steward's decoder (an uncompressed `WriteRequest` in): adapt here
/// when its signature changes.
fn decode(body: &[u8]) -> Result<(Answer, Option<String>), IngestError> {
    let decoded = remote_write::decode(body.to_vec().into())?;
    let series = (0..decoded.series_count())
        .map(|i| {
            let labels = decoded
                .labels(i)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let samples = decoded
                .samples(i)
                .iter()
                .map(|&(t, v)| (t, v.to_bits()))
                .collect();
            (labels, samples)
        })
        .collect();
    let answer = Answer {
        series,
        rejected: decoded.rejected,
    };
    Ok((answer, decoded.first_error))
}

/// The reference: prost's decoding, with the decoder's documented rules applied (a
/// series without a non-empty `__name__`, or with a label name twice, is refused with
/// all its samples, counted as at least one; a series without samples adds nothing).
fn reference(request: proto::WriteRequest) -> Answer {
    let mut answer = Answer {
        series: Vec::new(),
        rejected: 0,
    };
    for ts in request.timeseries {
        let mut labels: Vec<(String, String)> =
            ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
        labels.sort();
        let twice = labels.windows(2).any(|w| w[0].0 == w[1].0);
        let named = labels.iter().any(|(k, v)| k == "__name__" && !v.is_empty());
        if twice || !named {
            answer.rejected += ts.samples.len().max(1) as u64;
        } else if !ts.samples.is_empty() {
            let samples = ts
                .samples
                .iter()
                .map(|s| (s.timestamp, s.value.to_bits()))
                .collect();
            answer.series.push((labels, samples));
        }
    }
    answer
}

fn check(body: &[u8]) {
    let ours = decode(body);
    match &ours {
        Ok((answer, first_error)) => {
            assert_eq!(
                answer.rejected > 0,
                first_error.is_some(),
                "{first_error:?}"
            );
            for (labels, samples) in &answer.series {
                assert!(!samples.is_empty());
                assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "{labels:?}");
            }
        }
        Err(e) => check::explained(e),
    }
    if let Ok(request) = proto::WriteRequest::decode(body) {
        let ours = match ours {
            Ok(ours) => ours,
            // The one difference by design: prost skips deprecated proto2 groups (wire
            // types 3 and 4) in fields it does not know; steward refuses the body with
            // a reason. Prometheus never sends groups.
            Err(IngestError::Malformed(why))
                if why.contains("unsupported wire type 3")
                    || why.contains("unsupported wire type 4") =>
            {
                return;
            }
            Err(e) => panic!("prost decodes the body, steward refuses it: {e}"),
        };
        assert_eq!(ours.0, reference(request), "steward and prost disagree");
    }
}

fuzz_target!(|data: &[u8]| {
    // The bytes as the decompressed protobuf, and as the snappy body on the wire.
    check(data);
    let limits = Limits {
        max_body_bytes: 1 << 20,
        max_decoded_bytes: 1 << 20,
    };
    match decompress(data.to_vec().into(), Encoding::Snappy, &limits) {
        Ok(body) => {
            assert!(body.len() <= limits.max_decoded_bytes);
            check(&body);
        }
        Err(e) => check::explained(&e),
    }
});
