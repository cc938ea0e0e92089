//! Writes a seed corpus for every target into `corpus/<target>/`: real requests of each
//! format, so the fuzzer starts from bodies the decoders take instead of finding the
//! protobuf framing by chance. `cargo run --example seeds` from this directory.
#![allow(clippy::unwrap_used)] // a tool: a failed write should stop it loudly

use std::path::Path;

use prost::Message;
use steward_watch::ingest::otlp::proto;
use steward_watch::ingest::remote_write::proto as prom;

fn any(s: &str) -> proto::AnyValue {
    proto::AnyValue {
        value: Some(proto::any_value::Value::StringValue(s.into())),
    }
}

fn string(s: &str) -> Option<proto::AnyValue> {
    Some(any(s))
}

fn kv(key: &str, value: Option<proto::AnyValue>) -> proto::KeyValue {
    proto::KeyValue {
        key: key.into(),
        value,
    }
}

fn resource() -> Option<proto::Resource> {
    Some(proto::Resource {
        attributes: vec![kv("service.name", string("checkout"))],
    })
}

fn remote_write() -> Vec<u8> {
    let label = |name: &str, value: &str| prom::Label {
        name: name.into(),
        value: value.into(),
    };
    prom::WriteRequest {
        timeseries: vec![
            prom::TimeSeries {
                labels: vec![
                    label("__name__", "http_requests_total"),
                    label("job", "api"),
                ],
                samples: vec![
                    prom::Sample {
                        value: 1.0,
                        timestamp: 1_700_000_000_000,
                    },
                    prom::Sample {
                        value: f64::NAN,
                        timestamp: 1_700_000_001_000,
                    },
                ],
            },
            prom::TimeSeries {
                labels: vec![label("job", "no-name")],
                samples: vec![prom::Sample {
                    value: 2.0,
                    timestamp: -1,
                }],
            },
        ],
    }
    .encode_to_vec()
}

fn metrics() -> proto::ExportMetricsServiceRequest {
    use proto::metric::Data;
    let number = |v: f64| proto::NumberDataPoint {
        attributes: vec![kv("route", string("/pay"))],
        start_time_unix_nano: 1,
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(proto::number_data_point::Value::AsDouble(v)),
    };
    let metric = |name: &str, data| proto::Metric {
        name: name.into(),
        description: String::new(),
        unit: String::new(),
        data: Some(data),
    };
    proto::ExportMetricsServiceRequest {
        resource_metrics: vec![proto::ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![proto::ScopeMetrics {
                scope: None,
                metrics: vec![
                    metric(
                        "cpu",
                        Data::Gauge(proto::Gauge {
                            data_points: vec![number(0.5)],
                        }),
                    ),
                    metric(
                        "requests",
                        Data::Sum(proto::Sum {
                            data_points: vec![proto::NumberDataPoint {
                                value: Some(proto::number_data_point::Value::AsInt(7)),
                                ..number(0.0)
                            }],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "latency",
                        Data::Histogram(proto::Histogram {
                            data_points: vec![proto::HistogramDataPoint {
                                attributes: vec![],
                                start_time_unix_nano: 0,
                                time_unix_nano: 1_700_000_000_000_000_000,
                                count: 3,
                                sum: Some(1.5),
                                bucket_counts: vec![1, 2, 0],
                                explicit_bounds: vec![0.1, 1.0],
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "size",
                        Data::ExponentialHistogram(proto::ExponentialHistogram {
                            data_points: vec![proto::ExponentialHistogramDataPoint {
                                attributes: vec![],
                                start_time_unix_nano: 0,
                                time_unix_nano: 0,
                                count: 2,
                                sum: None,
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "rtt",
                        Data::Summary(proto::Summary {
                            data_points: vec![proto::SummaryDataPoint {
                                attributes: vec![],
                                start_time_unix_nano: 0,
                                time_unix_nano: 1_700_000_000_000_000_000,
                                count: 4,
                                sum: 2.0,
                                quantile_values: vec![proto::ValueAtQuantile {
                                    quantile: 0.99,
                                    value: 0.9,
                                }],
                            }],
                        }),
                    ),
                    proto::Metric {
                        name: String::new(),
                        description: String::new(),
                        unit: String::new(),
                        data: None,
                    },
                ],
            }],
        }],
    }
}

fn logs() -> proto::ExportLogsServiceRequest {
    proto::ExportLogsServiceRequest {
        resource_logs: vec![proto::ResourceLogs {
            resource: resource(),
            scope_logs: vec![proto::ScopeLogs {
                scope: None,
                log_records: vec![
                    proto::LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000,
                        severity_number: 17,
                        body: string("payment declined for order 18"),
                        attributes: vec![kv(
                            "nested",
                            Some(proto::AnyValue {
                                value: Some(proto::any_value::Value::ArrayValue(
                                    proto::ArrayValue {
                                        values: vec![any("a")],
                                    },
                                )),
                            }),
                        )],
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        ..proto::LogRecord::default()
                    },
                    proto::LogRecord::default(),
                ],
            }],
        }],
    }
}

const METRICS_JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeMetrics":[{"metrics":[{"name":"cpu","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":0.5,"attributes":[{"key":"core","value":{"intValue":"1"}}]}]}},{"name":"requests","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"timeUnixNano":1700000000000000000,"asInt":"7"}]}},{"name":"latency","histogram":{"dataPoints":[{"count":"3","sum":1.5,"bucketCounts":["1","2"],"explicitBounds":[0.1]}]}},{"name":"rtt","summary":{"dataPoints":[{"count":"4","sum":2,"quantileValues":[{"quantile":0.99,"value":0.9}]}]}}]}]}]}"#;
const LOGS_JSON: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","severityText":"INFO","body":{"stringValue":"order 17 placed"},"traceId":"5b8efff798038103d269b633813fc60c"},{"time_unix_nano":1700000001000000000,"severity_number":17,"body":{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":true}}]}}}]}]}]}"#;
const JSONL: &str = r#"{"ts":"2024-01-02T03:04:05Z","level":"error","msg":"db timeout","service":"api","user":7}
{"timestamp":1700000000123,"message":"ok"}
not json
{"@timestamp":1700000000.5,"log":"x","lvl":"WARN","app":"web"}
"#;
const SCRAPE: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
http_request_duration_seconds_bucket{le="+Inf"} 144320
rpc_duration_seconds{quantile="0.5"} NaN
broken{ 1
"#;

fn write(target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

fn main() {
    let rw = remote_write();
    let snappy = snap::raw::Encoder::new().compress_vec(&rw).unwrap();
    write("remote_write", &[("proto", rw), ("snappy", snappy)]);
    write(
        "otlp_metrics_proto",
        &[("all-kinds", metrics().encode_to_vec())],
    );
    write("otlp_logs_proto", &[("records", logs().encode_to_vec())]);
    write("otlp_metrics_json", &[("all-kinds", METRICS_JSON.into())]);
    write("otlp_logs_json", &[("records", LOGS_JSON.into())]);
    write("jsonl", &[("lines", JSONL.into())]);
    write("scrape", &[("page", SCRAPE.into())]);
}
