//! End to end: the demo scenario (a slow database, a surge of a new error template, a
//! disk filling up) is played faster than real time through the whole pipeline, and
//! the incident comes out with the right members and first cause.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::time::Duration;

use serde_json::Value;
use steward_watch::pipeline::PipelineConfig;
use steward_watch::{Service, WatchOptions};

async fn get(service: &Service, path: &str) -> Value {
    let state = service.state().unwrap().clone();
    let response = tower::ServiceExt::oneshot(
        steward_watch::http::router(state),
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_opens_the_slow_database_incident() {
    let dir = tempfile::tempdir().unwrap();
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
    service.stop().await.unwrap();
}
