//! End to end: the demo scenario (a slow database, a surge of a new error template, a
//! disk filling up) is played faster than real time through the whole pipeline, and
//! exactly the injected incidents come out, with the right members and first causes;
//! and a restart in the middle of the scenario carries the open incidents on.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::time::Duration;

use serde_json::Value;
use std::sync::{Arc, Mutex};

use steward_watch::alert::{Webhook, WebhookFormat};
use steward_watch::demo::{INCIDENT_MINUTE, SCENARIO_MINUTES, Scenario};
use steward_watch::pipeline::PipelineConfig;
use steward_watch::store::writer::Payload;
use steward_watch::{Service, WatchOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
use support::get;

/// A webhook receiver: answers 503 to its first request (so the sender must retry),
/// 200 after, and keeps every body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            // Read the head, then as much body as Content-Length says.
            loop {
                let n = stream.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + len {
                        if first {
                            first = false;
                        } else {
                            kept.lock().unwrap().push(
                                serde_json::from_slice(&raw[end + 4..end + 4 + len]).unwrap(),
                            );
                        }
                        break;
                    }
                }
            }
            let answer: &[u8] = if kept.lock().unwrap().is_empty() {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
            };
            let _ = stream.write_all(answer).await;
        }
    });
    (format!("http://{addr}/hooks/steward"), bodies)
}

/// `GET path` on the router; the body as text.
async fn get_text(service: &Service, path: &str) -> String {
    let response = tower::ServiceExt::oneshot(
        steward_watch::http::router(service.state().unwrap().clone()),
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

fn options(dir: &std::path::Path, demo: Option<Duration>, webhooks: Vec<Webhook>) -> WatchOptions {
    WatchOptions {
        listen: "127.0.0.1:0".into(),
        otlp: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
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
        webhooks,
        demo,
    }
}

/// One line per incident: id, title, cause and members.
fn summary(incidents: &Value) -> Vec<String> {
    incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let members: Vec<String> = i["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| format!("{} {} @{}", m["kind"], m["series"], m["start_ms"]))
                .collect();
            format!(
                "#{} {} {} cause={} [{}]",
                i["id"],
                i["status"],
                i["title"],
                i["likely_cause"],
                members.join("; ")
            )
        })
        .collect()
}

/// The name of an incident's likely cause's series.
fn cause(incident: &Value) -> &str {
    let at = incident["likely_cause"].as_u64().unwrap() as usize;
    incident["members"][at]["series"]["name"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_opens_the_injected_incidents_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, received) = receiver().await;
    // 30 ms a simulated minute: the last minutes reach "now" while several pipeline
    // flushes pass, as in `steward up --demo` (where a wall-clock close of buckets
    // ahead of the played data once made every template "dip to 0").
    let service = Service::start(options(
        dir.path(),
        Some(Duration::from_millis(30)),
        vec![Webhook::new(hook, WebhookFormat::Json)],
    ))
    .await
    .unwrap();

    // Wait until the whole scenario is stored and analysed, then a little longer, so
    // buckets the wall clock closes are closed too.
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = get(&service, "/api/v1/series?name=disk_usage_ratio").await;
        if done["series"][0]["points"].as_u64() >= Some(121) {
            tokio::time::sleep(Duration::from_millis(2000)).await;
            break;
        }
    }
    let incidents = get(&service, "/api/v1/incidents?status=all").await;
    let summary = summary(&incidents);
    let all = incidents["incidents"].as_array().unwrap();
    let mut causes: Vec<&str> = all.iter().map(cause).collect();
    causes.sort_unstable();
    assert_eq!(
        causes,
        ["db_query_duration_ms", "disk_usage_ratio"],
        "exactly the two injected incidents, nothing spurious:\n{}",
        summary.join("\n")
    );
    let db = all
        .iter()
        .find(|i| cause(i) == "db_query_duration_ms")
        .unwrap();
    let members = db["members"].as_array().unwrap();
    assert!(
        members.iter().any(|m| m["kind"] == "new_template"
            && m["reason"]
                .as_str()
                .unwrap()
                .contains("payment failed: database timeout")),
        "the new error template is not a member:\n{}",
        summary.join("\n")
    );
    assert!(
        members
            .iter()
            .any(|m| m["series"]["name"] == "http_server_duration_ms"),
        "checkout's latency is not a member:\n{}",
        summary.join("\n")
    );
    let disk = all.iter().find(|i| cause(i) == "disk_usage_ratio").unwrap();
    assert!(
        disk["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "exhaustion"),
        "{}",
        summary.join("\n")
    );
    // No template rate dipped anywhere: services going quiet between writes is no
    // data, not a dip.
    let anomalies = get(&service, "/api/v1/anomalies?limit=1000").await;
    let dips: Vec<&Value> = anomalies["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["series"]["name"] == "steward_template_rate" && a["kind"] != "new_template")
        .collect();
    assert!(dips.is_empty(), "{dips:#?}");

    // The templates page lists the new error template as surging and as new.
    let page = get_text(&service, "/templates").await;
    let section = |name: &str| -> String {
        let start = page.find(&format!("<h2>{name}</h2>")).unwrap();
        let rest = &page[start + 4..];
        rest[..rest.find("<h2>").unwrap_or(rest.len())].to_string()
    };
    for name in ["Surging", "New"] {
        let s = section(name);
        assert!(
            s.contains("payment failed: database timeout"),
            "{name}: {s}"
        );
        assert!(!s.contains("GET /products"), "{name}: {s}");
    }
    assert!(section("Top").contains("GET /products"));
    let forecasts = get(&service, "/api/v1/forecasts").await;
    let disk = &forecasts["forecasts"][0];
    assert_eq!(disk["series"]["name"], "disk_usage_ratio", "{forecasts}");
    assert_eq!(disk["warning"], true, "{forecasts}");
    eprintln!("{}", summary.join("\n"));

    // The webhook heard about the database incident once per change, after a retry.
    let db_id = db["id"].as_u64().unwrap();
    for _ in 0..100 {
        if received
            .lock()
            .unwrap()
            .iter()
            .any(|b| b["incident"]["id"] == db_id)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bodies = received.lock().unwrap().clone();
    let opened: Vec<&Value> = bodies
        .iter()
        .filter(|b| b["incident"]["id"] == db_id && b["event"] == "opened")
        .collect();
    assert_eq!(opened.len(), 1, "{bodies:#?}");
    let keys: std::collections::HashSet<String> = bodies
        .iter()
        .map(|b| {
            format!(
                "{} {} {}",
                b["incident"]["id"],
                b["event"],
                b["incident"]["members"].as_array().unwrap().len()
            )
        })
        .collect();
    assert_eq!(
        keys.len(),
        bodies.len(),
        "a duplicate event was sent: {bodies:#?}"
    );
    service.stop().await.unwrap();
}

/// Writes minutes `range` of the scenario through the service's store writer.
async fn play(service: &Service, scenario: &mut Scenario, range: std::ops::Range<i64>) {
    let writer = service.state().unwrap().writer.clone();
    for minute in range {
        let data = scenario.minute(minute);
        writer.write(Payload::Logs(data.logs)).await.unwrap();
        writer.write(Payload::Samples(data.samples)).await.unwrap();
    }
}

/// Waits until the disk series has `points` points and the pipeline has flushed.
async fn settle(service: &Service, points: u64) {
    for _ in 0..300 {
        let done = get(service, "/api/v1/series?name=disk_usage_ratio").await;
        if done["series"][0]["points"].as_u64() >= Some(points) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_incident_carries_the_open_incidents_on() {
    let dir = tempfile::tempdir().unwrap();
    // The scenario ends an hour ago: data time, not the wall clock, drives it.
    let now = steward_watch::ingest::now_ms();
    let mut scenario =
        Scenario::new(now - now.rem_euclid(60_000) - (SCENARIO_MINUTES + 60) * 60_000);

    // First run: up to a few minutes into the slow database.
    let service = Service::start(options(dir.path(), None, Vec::new()))
        .await
        .unwrap();
    play(&service, &mut scenario, 0..INCIDENT_MINUTE + 6).await;
    settle(&service, (INCIDENT_MINUTE + 6) as u64).await;
    let before = get(&service, "/api/v1/incidents?status=all").await;
    service.stop().await.unwrap();
    let before_lines = summary(&before);
    let before = before["incidents"].as_array().unwrap().clone();
    let db_before = before
        .iter()
        .find(|i| cause(i) == "db_query_duration_ms")
        .unwrap_or_else(|| {
            panic!(
                "no database incident before the restart:\n{}",
                before_lines.join("\n")
            )
        });
    assert_eq!(db_before["status"], "open");

    // Second run over the same store: the rest of the scenario.
    let service = Service::start(options(dir.path(), None, Vec::new()))
        .await
        .unwrap();
    play(
        &service,
        &mut scenario,
        INCIDENT_MINUTE + 6..SCENARIO_MINUTES,
    )
    .await;
    settle(&service, SCENARIO_MINUTES as u64).await;
    let after = get(&service, "/api/v1/incidents?status=all").await;
    service.stop().await.unwrap();
    let after_lines = summary(&after);
    let context = format!(
        "before the restart:\n{}\nafter:\n{}",
        before_lines.join("\n"),
        after_lines.join("\n")
    );
    let after = after["incidents"].as_array().unwrap();

    // No incident was opened a second time (the detectors and forecasts of restored
    // incidents' series start from their stored history, so the disk's exhaustion
    // warning goes on without a gap): one incident per cause, the same ids as before,
    // each with at least its members.
    let mut causes: Vec<&str> = after.iter().map(cause).collect();
    causes.sort_unstable();
    causes.dedup();
    assert_eq!(causes.len(), after.len(), "{context}");
    for old in &before {
        let new = after
            .iter()
            .find(|i| i["id"] == old["id"])
            .unwrap_or_else(|| panic!("incident {} is gone: {context}", old["id"]));
        assert_eq!(cause(new), cause(old), "{context}");
        assert!(
            new["members"].as_array().unwrap().len() >= old["members"].as_array().unwrap().len(),
            "{context}"
        );
    }
    // The database incident went on after the restart: it resolved once quiet (the
    // database recovers at minute INCIDENT_MINUTE + 12) rather than staying open.
    let db_after = after.iter().find(|i| i["id"] == db_before["id"]).unwrap();
    assert_eq!(db_after["status"], "resolved", "{context}");
}
