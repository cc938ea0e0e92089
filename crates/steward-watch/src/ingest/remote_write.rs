//! Prometheus remote write: `POST /api/v1/write`, a snappy-compressed `WriteRequest`.
//!
//! The messages are declared by hand with prost's derive (`prometheus/prompb/types.proto`
//! and `remote.proto`, version 1); metadata and exemplars are skipped.

use prost::Message;
use steward_core::{Sample, SeriesKey};

use super::{Decoded, IngestError};

/// The remote-write wire types.
#[allow(missing_docs)]
pub mod proto {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// Decodes an uncompressed `WriteRequest`. A series without a `__name__` label is
/// rejected with all its samples.
pub fn decode(body: &[u8]) -> Result<Decoded<(SeriesKey, Sample)>, IngestError> {
    let request = proto::WriteRequest::decode(body)
        .map_err(|e| IngestError::Malformed(format!("invalid remote-write protobuf: {e}")))?;
    let mut out = Decoded::default();
    for series in request.timeseries {
        let Some(name) = series
            .labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value.clone())
            .filter(|n| !n.is_empty())
        else {
            for _ in 0..series.samples.len().max(1) {
                out.reject(|| "series has no __name__ label".into());
            }
            continue;
        };
        let mut key = SeriesKey::new(name);
        for label in series.labels {
            if label.name != "__name__" {
                key.labels.insert(label.name, label.value);
            }
        }
        for s in series.samples {
            out.items
                .push((key.clone(), Sample::new(s.timestamp, s.value)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_request_round_trips_through_snappy() {
        let request = proto::WriteRequest {
            timeseries: vec![
                proto::TimeSeries {
                    labels: vec![
                        proto::Label {
                            name: "__name__".into(),
                            value: "up".into(),
                        },
                        proto::Label {
                            name: "job".into(),
                            value: "api".into(),
                        },
                    ],
                    samples: vec![
                        proto::Sample {
                            value: 1.0,
                            timestamp: 1000,
                        },
                        proto::Sample {
                            value: 0.0,
                            timestamp: 2000,
                        },
                    ],
                },
                proto::TimeSeries {
                    labels: vec![proto::Label {
                        name: "job".into(),
                        value: "x".into(),
                    }],
                    samples: vec![proto::Sample {
                        value: 1.0,
                        timestamp: 1000,
                    }],
                },
            ],
        };
        let compressed = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        let body = crate::ingest::decompress(
            compressed.into(),
            crate::ingest::Encoding::Snappy,
            &crate::ingest::Limits::default(),
        )
        .unwrap();
        let decoded = decode(&body).unwrap();
        assert_eq!(decoded.items.len(), 2);
        assert_eq!(decoded.items[1].0.to_string(), r#"up{job="api"}"#);
        assert_eq!(decoded.items[1].1, Sample::new(2000, 0.0));
        assert_eq!(decoded.rejected, 1);
    }
}
