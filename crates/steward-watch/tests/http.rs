//! The service's HTTP surface, driven without a socket (`tower::ServiceExt::oneshot`)
//! against a real store in a temporary directory.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use prost::Message;
use serde_json::{Value, json};
use steward_watch::http::router;
use steward_watch::ingest::otlp::proto;
use steward_watch::ingest::remote_write::proto as prom;
use steward_watch::pipeline::PipelineConfig;
use steward_watch::{Service, WatchOptions};
use tower::ServiceExt;

struct Harness {
    service: Option<Service>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    async fn with(tweak: impl FnOnce(&mut WatchOptions)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut options = WatchOptions {
            listen: "127.0.0.1:0".into(),
            otlp: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            store: "embedded".into(),
            retention_days: 7,
            limits: Default::default(),
            pipeline: PipelineConfig {
                flush_every: Duration::from_millis(100),
                ..PipelineConfig::default()
            },
            scrape: Vec::new(),
            scrape_interval: Duration::from_secs(15),
            tail: Vec::new(),
            webhooks: Vec::new(),
            demo: None,
        };
        tweak(&mut options);
        let service = Service::start(options).await.unwrap();
        Harness {
            service: Some(service),
            _dir: dir,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let state = self.service.as_ref().unwrap().state().unwrap().clone();
        let response = router(state).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    /// Posts a remote-write request, snappy-compressed as Prometheus sends it, and
    /// expects it stored (204).
    async fn remote_write(&self, write: &prom::WriteRequest) {
        let (status, body) = self.remote_write_answer(write).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// Posts a remote-write request and returns the answer.
    async fn remote_write_answer(&self, write: &prom::WriteRequest) -> (StatusCode, Value) {
        let compressed = snap::raw::Encoder::new()
            .compress_vec(&write.encode_to_vec())
            .unwrap();
        let (status, body) = self
            .send(
                Request::post("/api/v1/write")
                    .header(header::CONTENT_TYPE, "application/x-protobuf")
                    .header(header::CONTENT_ENCODING, "snappy")
                    .body(Body::from(compressed))
                    .unwrap(),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, body) = self
            .send(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, value)
    }

    async fn post(&self, uri: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// POSTs a JSON body (OTLP/HTTP's JSON encoding).
    async fn post_json(&self, uri: &str, body: &Value) -> (StatusCode, Vec<u8>) {
        self.post(uri, "application/json", body.to_string().into_bytes())
            .await
    }

    async fn metrics(&self) -> String {
        let (_, body) = self
            .send(Request::get("/metrics").body(Body::empty()).unwrap())
            .await;
        String::from_utf8(body).unwrap()
    }

    /// Polls `uri` until `check` holds (the pipeline writes about every 100 ms here).
    async fn eventually(&self, uri: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            let (_, v) = self.get(uri).await;
            if check(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{uri} never satisfied the check; last: {}",
            self.get(uri).await.1
        );
    }

    async fn stop(mut self) {
        self.service.take().unwrap().stop().await.unwrap();
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn string_value(s: &str) -> Option<proto::AnyValue> {
    Some(proto::AnyValue {
        value: Some(proto::any_value::Value::StringValue(s.into())),
    })
}

fn logs_request(
    service: &str,
    bodies: &[(&str, i32)],
    t0_ms: i64,
) -> proto::ExportLogsServiceRequest {
    proto::ExportLogsServiceRequest {
        resource_logs: vec![proto::ResourceLogs {
            resource: Some(proto::Resource {
                attributes: vec![proto::KeyValue {
                    key: "service.name".into(),
                    value: string_value(service),
                }],
            }),
            scope_logs: vec![proto::ScopeLogs {
                scope: None,
                log_records: bodies
                    .iter()
                    .enumerate()
                    .map(|(i, (body, severity))| proto::LogRecord {
                        time_unix_nano: u64::try_from(t0_ms + i as i64).unwrap() * 1_000_000,
                        severity_number: *severity,
                        body: if body.is_empty() {
                            None
                        } else {
                            string_value(body)
                        },
                        ..proto::LogRecord::default()
                    })
                    .collect(),
            }],
        }],
    }
}

#[tokio::test]
async fn otlp_json_logs_are_stored_and_searchable() {
    let h = Harness::new().await;
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1700000000000000000", "severityText": "INFO", "body": {"stringValue": "order 17 placed"}},
            {"timeUnixNano": "1700000001000000000", "severityNumber": 17, "body": {"stringValue": "payment declined for order 18"}}
        ]}]
    }]});
    let (status, answer) = h.post_json("/v1/logs", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, b"{}");

    let (status, found) = h.get("/api/v1/logs?q=DECLINED&service=checkout").await;
    assert_eq!(status, StatusCode::OK);
    let logs = found["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["body"], "payment declined for order 18");
    assert_eq!(logs[0]["level"], "error");
    assert_eq!(logs[0]["timestamp_ms"], 1_700_000_001_000_i64);

    let (_, ranged) = h
        .get("/api/v1/logs?from=1700000000000&to=1700000000001")
        .await;
    assert_eq!(ranged["logs"].as_array().map(Vec::len), Some(1), "{ranged}");
    let (_, by_level) = h.get("/api/v1/logs?level=warn").await;
    assert_eq!(by_level["logs"].as_array().unwrap().len(), 1);
    assert!(
        h.metrics()
            .await
            .contains("steward_records_in_total{kind=\"log\"} 2")
    );
    h.stop().await;
}

#[tokio::test]
async fn otlp_protobuf_gzip_with_partial_success() {
    let h = Harness::new().await;
    let request = logs_request(
        "cart",
        &[("item added", 9), ("", 9), ("item removed", 9)],
        1_700_000_000_000,
    );
    let (status, answer) = h
        .send(
            Request::post("/v1/logs")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(gzip(&request.encode_to_vec())))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = proto::ExportLogsServiceResponse::decode(&answer[..]).unwrap();
    let partial = answer.partial_success.unwrap();
    assert_eq!(partial.rejected_log_records, 1);
    assert_eq!(partial.error_message, "log record has no body");
    let (_, found) = h.get("/api/v1/logs?service=cart").await;
    assert_eq!(found["logs"].as_array().unwrap().len(), 2);
    assert!(
        h.metrics()
            .await
            .contains("steward_records_rejected_total{kind=\"log\"} 1")
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_4xx_with_reasons_and_are_counted() {
    let h = Harness::with(|o| {
        o.limits.max_body_bytes = 64 * 1024;
        o.limits.max_decoded_bytes = 256 * 1024;
    })
    .await;
    let (status, body) = h
        .post(
            "/v1/logs",
            "application/json",
            b"{\"resourceLogs\": 3}".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("resourceLogs"),
        "{body}"
    );

    let (status, body) = h
        .post("/v1/logs", "application/x-protobuf", vec![0xff; 10])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let status_msg = proto::Status::decode(&body[..]).unwrap();
    assert!(status_msg.message.contains("protobuf"), "{status_msg:?}");

    let (status, _) = h.post("/v1/logs", "text/plain", b"hello".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, _) = h
        .post("/v1/logs", "application/json", vec![b' '; 100 * 1024])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A gzip bomb: 1 KiB on the wire, 1 MiB decompressed, over the 256 KiB cap.
    let (status, body) = h
        .send(
            Request::post("/v1/logs")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(gzip(&vec![b' '; 1 << 20])))
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&body)
    );

    let (status, body) = h
        .post(
            "/ingest/logs",
            "application/x-ndjson",
            b"nope\n{\"level\":\"info\"}\n".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("all 2 lines rejected"),
        "{body}"
    );

    let metrics = h.metrics().await;
    assert!(
        metrics.contains("steward_requests_rejected_total{reason=\"malformed\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("steward_requests_rejected_total{reason=\"too_large\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("steward_requests_rejected_total{reason=\"unsupported\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("steward_records_dropped_total 0"),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test]
async fn json_lines_are_ingested_with_a_count_of_bad_lines() {
    let h = Harness::new().await;
    let body = b"{\"ts\":1700000000,\"level\":\"warn\",\"service\":\"db\",\"msg\":\"slow query 1200 ms\",\"table\":\"orders\"}\n\
        not json\n{\"message\":\"vacuum done\",\"service\":\"db\"}\n";
    let (status, answer) = h
        .post("/ingest/logs", "application/x-ndjson", body.to_vec())
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"], 1);
    assert!(
        answer["first_error"]
            .as_str()
            .unwrap()
            .starts_with("line 2")
    );
    let (_, found) = h.get("/api/v1/logs?q=slow&service=db").await;
    let logs = found["logs"].as_array().unwrap();
    assert_eq!(logs[0]["attributes"]["table"], "orders");
    h.stop().await;
}

#[tokio::test]
async fn metrics_from_otlp_and_remote_write_become_series() {
    let h = Harness::new().await;
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "http_server_requests", "sum": {"isMonotonic": true, "dataPoints": [
                {"timeUnixNano": "1700000000000000000", "asInt": "10"},
                {"timeUnixNano": "1700000060000000000", "asInt": "25"}
            ]}}
        ]}]
    }]});
    let (status, _) = h.post_json("/v1/metrics", &body).await;
    assert_eq!(status, StatusCode::OK);
    // The same points again: not stored twice, and the exporter is told so.
    let (status, answer) = h.post_json("/v1/metrics", &body).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedDataPoints"], 2,
        "{answer}"
    );
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("last timestamp"),
        "{answer}"
    );

    let write = prom::WriteRequest {
        timeseries: vec![prom::TimeSeries {
            labels: vec![
                prom::Label {
                    name: "__name__".into(),
                    value: "node_filesystem_usage_ratio".into(),
                },
                prom::Label {
                    name: "mount".into(),
                    value: "/data".into(),
                },
            ],
            samples: (0..5)
                .map(|i| prom::Sample {
                    value: 0.5 + 0.01 * f64::from(i),
                    timestamp: 1_700_000_000_000 + i64::from(i) * 60_000,
                })
                .collect(),
        }],
    };
    h.remote_write(&write).await;
    // Sent again with one new sample: the new one is stored, the four resent ones are
    // not, and the sender is told with a 400 (not retried), as Prometheus answers.
    let mut again = write.clone();
    again.timeseries[0].samples.push(prom::Sample {
        value: 0.6,
        timestamp: 1_700_000_000_000 + 5 * 60_000,
    });
    again.timeseries[0].samples.remove(0);
    let (status, answer) = h.remote_write_answer(&again).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["stored"], 1, "{answer}");
    assert_eq!(answer["not_stored"], 4, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("4 of 5 samples not stored: 4 at or before")),
        "{answer}"
    );

    let (_, listed) = h.get("/api/v1/series?name=filesystem").await;
    let series = listed["series"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(
        series[0]["selector"],
        "node_filesystem_usage_ratio{mount=\"/data\"}"
    );
    assert_eq!(series[0]["points"], 6);
    let id = series[0]["id"].as_i64().unwrap();
    let (_, points) = h.get(&format!("/api/v1/series/{id}")).await;
    assert_eq!(points["points"].as_array().unwrap().len(), 6);
    assert_eq!(points["points"][4]["value"], 0.54);
    assert_eq!(points["points"][5]["value"], 0.6);

    let (_, api) = h.get("/api/v1/series?service=api").await;
    assert_eq!(api["series"][0]["last_value"], 25.0);
    h.stop().await;
}

#[tokio::test]
async fn health_metrics_and_openapi_answer() {
    let h = Harness::new().await;
    let (status, health) = h.get("/healthz").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (_, doc) = h.get("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/logs",
        "/api/v1/logs",
        "/api/v1/incidents",
        "/api/v1/series/{id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let metrics = h.metrics().await;
    for name in [
        "steward_records_in_total",
        "steward_records_dropped_total",
        "steward_queue_depth",
        "steward_detector_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    let (status, _) = h.get("/api/v1/incidents/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.get("/api/v1/incidents?status=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test]
async fn a_new_error_template_opens_an_incident() {
    let h = Harness::new().await;
    let t0 = 1_700_000_000_000;
    let normal: Vec<(String, i32)> = (0..50)
        .map(|i| (format!("GET /items/{i} 200 in {} ms", 10 + i % 7), 9))
        .collect();
    let normal: Vec<(&str, i32)> = normal.iter().map(|(b, s)| (b.as_str(), *s)).collect();
    let request = logs_request("web", &normal, t0);
    let (status, _) = h
        .post(
            "/v1/logs",
            "application/x-protobuf",
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let request = logs_request(
        "web",
        &[("connection pool exhausted after 30000 ms", 17)],
        t0 + 60_000,
    );
    h.post(
        "/v1/logs",
        "application/x-protobuf",
        request.encode_to_vec(),
    )
    .await;

    let incidents = h
        .eventually("/api/v1/incidents?status=open", |v| {
            v["incidents"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    let incident = &incidents["incidents"][0];
    assert_eq!(incident["members"][0]["kind"], "new_template");
    assert!(
        incident["members"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("connection pool exhausted")
    );
    let id = incident["id"].as_u64().unwrap();
    // The anomaly is linked to its incident (every anomaly is, also those an incident
    // only counts once it keeps its most members).
    let (_, anomalies) = h.get("/api/v1/anomalies").await;
    assert_eq!(anomalies["anomalies"][0]["incident_id"], id, "{anomalies}");
    let (_, detail) = h.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(detail["templates"][0]["level"], "error");
    assert_eq!(
        detail["templates"][0]["sample"],
        "connection pool exhausted after 30000 ms"
    );

    let templates = h
        .eventually("/api/v1/templates", |v| {
            v["templates"].as_array().is_some_and(|a| a.len() >= 2)
        })
        .await;
    let top = &templates["templates"][0];
    assert_eq!(top["count"], 50);
    assert!(top["text"].as_str().unwrap().contains("<*>"), "{top}");
    h.stop().await;
}

#[tokio::test]
async fn scraped_targets_and_tailed_files_come_in() {
    // A target serving one page of the text format.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let page = "# TYPE jobs_queued gauge\njobs_queued{queue=\"mail\"} 42\n";
            let _ = s
                .write_all(
                    format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{page}").as_bytes(),
                )
                .await;
        }
    });
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("worker.log");
    std::fs::write(&file, "before start\n").unwrap();
    let h = Harness::with(|o| {
        o.scrape = vec![target.into()];
        o.scrape_interval = Duration::from_millis(200);
        o.tail = vec![file.clone().into()];
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    writeln!(f, "2024-05-01 12:00:00 WARN queue mail is backing up").unwrap();
    drop(f);

    let series = h
        .eventually("/api/v1/series?name=jobs_queued", |v| {
            v["series"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(series["series"][0]["last_value"], 42.0);
    assert!(
        series["series"][0]["key"]["labels"]["instance"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let (_, up) = h.get("/api/v1/series?name=up").await;
    assert_eq!(up["series"][0]["last_value"], 1.0);
    let found = h
        .eventually("/api/v1/logs?service=worker", |v| {
            v["logs"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    let logs_found = found["logs"].as_array().unwrap();
    assert_eq!(logs_found.len(), 1, "{found}");
    assert_eq!(logs_found[0]["level"], "warn");
    h.stop().await;
}

/// A long range read with a small point budget comes back one point per step, and a
/// one-sample spike stays visible in its step's max instead of being thinned away.
#[tokio::test]
async fn long_ranges_are_downsampled_with_spikes_kept() {
    let h = Harness::new().await;
    const START: i64 = 1_700_000_000_000;
    const N: i64 = 10_000;
    const SPIKE: i64 = 5_003;
    let write = prom::WriteRequest {
        timeseries: vec![prom::TimeSeries {
            labels: vec![prom::Label {
                name: "__name__".into(),
                value: "queue_depth".into(),
            }],
            samples: (0..N)
                .map(|i| prom::Sample {
                    value: if i == SPIKE { 100.0 } else { 1.0 },
                    timestamp: START + i * 15_000,
                })
                .collect(),
        }],
    };
    h.remote_write(&write).await;
    let (_, listed) = h.get("/api/v1/series?name=queue_depth").await;
    let id = listed["series"][0]["id"].as_i64().unwrap();

    // Automatic: more samples than max_points.
    let (status, body) = h.get(&format!("/api/v1/series/{id}?max_points=100")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let step = body["step_ms"].as_i64().expect("a step was chosen");
    let points = body["points"].as_array().unwrap();
    assert!(points.len() <= 100 && points.len() > 50, "{}", points.len());
    let total: u64 = points.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(total, N as u64, "every sample is in some step");
    let spike_ts = START + SPIKE * 15_000;
    let spiked: Vec<&Value> = points
        .iter()
        .filter(|p| p["max"].as_f64() == Some(100.0))
        .collect();
    assert_eq!(spiked.len(), 1, "exactly one step holds the spike");
    let s = spiked[0];
    let start = s["timestamp_ms"].as_i64().unwrap();
    assert!(start <= spike_ts && spike_ts < start + step);
    let count = s["count"].as_f64().unwrap();
    let mean = (count - 1.0 + 100.0) / count;
    assert!((s["value"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert_eq!(s["min"], 1.0);
    for p in points.iter().filter(|p| p["max"].as_f64() != Some(100.0)) {
        assert_eq!(
            (p["min"].as_f64(), p["value"].as_f64()),
            (Some(1.0), Some(1.0))
        );
    }

    // Explicit step: one hour holds 240 samples at 15 s.
    let (status, body) = h
        .get(&format!(
            "/api/v1/series/{id}?step=1h&max_points=1000&from={START}&to={}",
            START + 24 * 3_600_000
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["step_ms"], 3_600_000);
    let points = body["points"].as_array().unwrap();
    assert!(
        points
            .iter()
            .all(|p| p["timestamp_ms"].as_i64().unwrap() % 3_600_000 == 0)
    );
    let inner = &points[1..points.len() - 1];
    assert!(inner.iter().all(|p| p["count"] == 240), "{inner:?}");

    // A short range stays raw.
    let (_, body) = h
        .get(&format!(
            "/api/v1/series/{id}?from={START}&to={}",
            START + 10 * 15_000
        ))
        .await;
    assert_eq!(body["step_ms"], Value::Null);
    assert_eq!(body["points"].as_array().unwrap().len(), 10);
    assert!(body["points"][0].get("count").is_none());

    for bad in ["0", "-5", "5x", "m", "99999999999999999999d"] {
        let (status, body) = h.get(&format!("/api/v1/series/{id}?step={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "step={bad}");
        assert!(body.to_string().contains("step"), "{body}");
    }
    let (status, body) = h
        .get(&format!("/api/v1/series/{id}?step=1000&max_points=100"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("max_points"), "{body}");

    let (_, doc) = h.get("/openapi.json").await;
    let params = doc["paths"]["/api/v1/series/{id}"].to_string();
    assert!(params.contains("\"step\""), "{params}");
    h.stop().await;
}
