//! End to end: the demo scenario (a slow database, a surge of a new error template, a
//! disk filling up) is played faster than real time through the whole pipeline, and
//! the incident comes out with the right members and first cause.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::time::Duration;

use serde_json::Value;
use std::sync::{Arc, Mutex};

use steward_watch::alert::{Webhook, WebhookFormat};
use steward_watch::pipeline::PipelineConfig;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_opens_the_slow_database_incident() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, received) = receiver().await;
    let service = Service::start(WatchOptions {
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
        webhooks: vec![Webhook {
            url: hook,
            format: WebhookFormat::Json,
        }],
        demo: Some(Duration::from_millis(5)),
    })
    .await
    .unwrap();

    // Wait until the whole scenario is stored and analysed.
    let mut incidents = Value::Null;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        incidents = get(&service, "/api/v1/incidents?status=all").await;
        let done = get(&service, "/api/v1/series?name=disk_usage_ratio").await;
        if done["series"][0]["points"].as_u64() >= Some(120) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            incidents = get(&service, "/api/v1/incidents?status=all").await;
            break;
        }
    }
    let all = incidents["incidents"].as_array().unwrap();
    let summary: Vec<String> = all
        .iter()
        .map(|i| {
            let members: Vec<String> = i["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| format!("{} {} @{}", m["kind"], m["series"]["name"], m["start_ms"]))
                .collect();
            format!(
                "#{} {} cause={} [{}]",
                i["id"],
                i["title"],
                i["likely_cause"],
                members.join("; ")
            )
        })
        .collect();
    let db = all
        .iter()
        .find(|i| {
            let cause = &i["members"][i["likely_cause"].as_u64().unwrap() as usize];
            cause["series"]["name"] == "db_query_duration_ms"
        })
        .unwrap_or_else(|| {
            panic!(
                "no incident caused by the database:\n{}",
                summary.join("\n")
            )
        });
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
