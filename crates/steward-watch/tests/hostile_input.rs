//! No input crashes a decoder: every ingest parser is fed valid bodies with random
//! bytes flipped, truncated at every length, and pure noise, and must return (a
//! decoded result or an error) every time. A small in-test mutator stands in for a
//! fuzzer, so it runs with the rest of the suite.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use prost::Message;
use steward_watch::ingest::otlp::proto;
use steward_watch::ingest::remote_write::proto as prom;
use steward_watch::ingest::{
    Encoding, Format, Limits, decompress, jsonl, otlp, remote_write, scrape,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let logs = proto::ExportLogsServiceRequest {
        resource_logs: vec![proto::ResourceLogs {
            resource: Some(proto::Resource {
                attributes: vec![proto::KeyValue {
                    key: "service.name".into(),
                    value: Some(proto::AnyValue {
                        value: Some(proto::any_value::Value::StringValue("svc".into())),
                    }),
                }],
            }),
            scope_logs: vec![proto::ScopeLogs {
                scope: None,
                log_records: vec![proto::LogRecord {
                    time_unix_nano: 1,
                    severity_number: 17,
                    body: Some(proto::AnyValue {
                        value: Some(proto::any_value::Value::ArrayValue(proto::ArrayValue {
                            values: vec![proto::AnyValue {
                                value: Some(proto::any_value::Value::IntValue(-5)),
                            }],
                        })),
                    }),
                    trace_id: vec![1, 2, 3],
                    ..proto::LogRecord::default()
                }],
            }],
        }],
    };
    let write = prom::WriteRequest {
        timeseries: vec![prom::TimeSeries {
            labels: vec![prom::Label {
                name: "__name__".into(),
                value: "up".into(),
            }],
            samples: vec![prom::Sample {
                value: 1.0,
                timestamp: 5,
            }],
        }],
    };
    vec![
        logs.encode_to_vec(),
        write.encode_to_vec(),
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"5","body":{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{"values":[{"doubleValue":"NaN"}]}}}]}}}]}]}]}"#.to_vec(),
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","summary":{"dataPoints":[{"count":"3","sum":1.5,"quantileValues":[{"quantile":0.5,"value":1}]}]}}]}]}]}"#.to_vec(),
        b"{\"ts\":\"2024-01-01T00:00:00.5+02:00\",\"msg\":\"x\",\"level\":3}\nnot json\n".to_vec(),
        b"m{a=\"b\\\"c\",d=\"\\n\"} 1 2\n# HELP x y\nbad{ 1\n".to_vec(),
    ]
}

fn feed(body: &[u8]) {
    for format in [Format::Protobuf, Format::Json] {
        let _ = otlp::decode_logs(body, format);
        let _ = otlp::decode_metrics(body, format);
    }
    let _ = remote_write::decode(body.to_vec().into());
    let _ = jsonl::decode(body);
    let _ = scrape::parse(&String::from_utf8_lossy(body), 0, &[("instance", "x")]);
    let limits = Limits {
        max_body_bytes: 1 << 16,
        max_decoded_bytes: 1 << 16,
    };
    for encoding in [Encoding::Gzip, Encoding::Snappy] {
        let _ = decompress(body.to_vec().into(), encoding, &limits);
    }
}

#[test]
fn mutated_and_truncated_bodies_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF_1234_5678);
    for seed in seeds() {
        for len in 0..=seed.len() {
            feed(&seed[..len]);
        }
        for _ in 0..3_000 {
            let mut body = seed.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % body.len();
                match rng.next() % 3 {
                    0 => body[i] = rng.next() as u8,
                    1 => body.insert(i, rng.next() as u8),
                    _ => {
                        body.remove(i);
                        if body.is_empty() {
                            body.push(0);
                        }
                    }
                }
            }
            feed(&body);
        }
    }
    for _ in 0..2_000 {
        let len = (rng.next() % 512) as usize;
        let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        feed(&noise);
    }
}

#[test]
fn deeply_nested_json_is_refused_not_overflowed() {
    let nested = |depth: usize| {
        let mut body = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
        for _ in 0..depth {
            body.push_str(r#"{"arrayValue":{"values":["#);
        }
        body.push_str(r#"{"stringValue":"x"}"#);
        for _ in 0..depth {
            body.push_str("]}}");
        }
        body.push_str("}]}]}]}");
        body
    };
    // Past steward's own limit on attribute nesting (32 levels)...
    let err = otlp::decode_logs(nested(36).as_bytes(), Format::Json).unwrap_err();
    assert!(err.to_string().contains("nested too deeply"), "{err}");
    // ...and past serde_json's recursion limit: refused either way, never a stack overflow.
    let err = otlp::decode_logs(nested(500).as_bytes(), Format::Json).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}
