//! The PostgreSQL store behind the same API: logs, series and incidents written through
//! `--store postgres://...` are read back, also after a restart. Needs a local
//! PostgreSQL (scripts/deps/00-services.sh starts it); each run makes its own database
//! and drops it after. Skipped when no server answers.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::{Value, json};
use steward_watch::pipeline::PipelineConfig;
use steward_watch::{Service, WatchOptions};
use tower::ServiceExt;

fn admin_url() -> String {
    std::env::var("STEWARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database `db` on the test server, its URL; `None` (the test skips) when no
/// server answers, except under scripts/test, where that is a failure.
#[allow(clippy::print_stderr)] // the skip is told to whoever runs the test
fn create_database(db: &str) -> Option<String> {
    let admin = admin_url();
    let created = (|| -> Result<(), postgres::Error> {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)?;
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))?;
        c.batch_execute(&format!("CREATE DATABASE {db}"))
    })();
    if let Err(e) = created {
        // scripts/test sets this: there, a missing dependency is a failure, not a skip.
        assert!(
            std::env::var_os("STEWARD_REQUIRE_INTEGRATION").is_none(),
            "scripts/test requires this test: a dependency is missing (scripts/deps/ installs it, and starts the services)"
        );
        eprintln!("skipped: no PostgreSQL at {admin}: {e}");
        return None;
    }
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{db}"))
}

fn drop_database(db: &str) {
    let mut c = postgres::Client::connect(&admin_url(), postgres::NoTls).unwrap();
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
}

fn options(url: &str, dir: &std::path::Path) -> WatchOptions {
    WatchOptions {
        listen: "127.0.0.1:0".into(),
        otlp: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        store: url.into(),
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
    }
}

async fn call(service: &Service, request: Request<Body>) -> Value {
    let state = service.state().unwrap().clone();
    let response = steward_watch::http::router(state)
        .oneshot(request)
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_round_trips_and_survives_restart() {
    let db = format!("steward_watch_test_{}", std::process::id());
    let Some(url) = tokio::task::spawn_blocking({
        let db = db.clone();
        move || create_database(&db)
    })
    .await
    .unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    let service = Service::start(options(&url, dir.path())).await.unwrap();
    let lines = "{\"service\":\"pg\",\"level\":\"error\",\"msg\":\"disk quota exceeded for tenant 7\"}\n\
                 {\"service\":\"pg\",\"level\":\"info\",\"msg\":\"vacuum finished\"}\n";
    let answer = call(
        &service,
        Request::post("/ingest/logs")
            .body(Body::from(lines))
            .unwrap(),
    )
    .await;
    assert_eq!(answer["accepted"], 2);
    let metrics = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "pool_usage_ratio", "gauge": {"dataPoints": [
            {"timeUnixNano": "1800000000000000000", "asDouble": 0.5},
            {"timeUnixNano": "1800000060000000000", "asDouble": 0.6}
        ]}}
    ]}]}]});
    call(
        &service,
        Request::post("/v1/metrics")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(metrics.to_string()))
            .unwrap(),
    )
    .await;
    // The error line is a new error template: an anomaly and an incident.
    let mut incidents = Value::Null;
    for _ in 0..50 {
        incidents = call(
            &service,
            Request::get("/api/v1/incidents")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        if incidents["incidents"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        incidents["incidents"][0]["members"][0]["kind"], "new_template",
        "{incidents}"
    );
    service.stop().await.unwrap();

    let service = Service::start(options(&url, dir.path())).await.unwrap();
    let found = call(
        &service,
        Request::get("/api/v1/logs?q=QUOTA&service=pg")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(found["logs"][0]["body"], "disk quota exceeded for tenant 7");
    assert_eq!(found["logs"][0]["level"], "error");
    let series = call(
        &service,
        Request::get("/api/v1/series?name=pool_usage")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(series["series"][0]["points"], 2);
    assert_eq!(series["series"][0]["last_value"], 0.6);
    let templates = call(
        &service,
        Request::get("/api/v1/templates")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(templates["templates"].as_array().unwrap().len(), 2);
    let incidents = call(
        &service,
        Request::get("/api/v1/incidents")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(incidents["incidents"].as_array().unwrap().len(), 1);
    service.stop().await.unwrap();

    tokio::task::spawn_blocking(move || drop_database(&db))
        .await
        .unwrap();
}

/// An incident that kept some members and counted the rest reads back whole.
#[test]
fn postgres_store_keeps_an_incidents_count_of_members_not_kept() {
    use steward_core::{Anomaly, AnomalyKind, Incident, IncidentStatus, SeriesKey, Severity};
    use steward_watch::store::Store;
    use steward_watch::store::postgres::PostgresStore;

    let db = format!("steward_watch_count_test_{}", std::process::id());
    let Some(url) = create_database(&db) else {
        return;
    };
    let member = |name: &str, start_ms| Anomaly {
        series: SeriesKey::new(name).with_label("job", "node"),
        kind: AnomalyKind::Spike,
        start_ms,
        end_ms: start_ms + 60_000,
        score: 0.8,
        reason: "spike".into(),
    };
    let incident = Incident {
        id: 5,
        title: "spike in a{job=\"node\"} and 4001 more".into(),
        status: IncidentStatus::Open,
        severity: Severity::High,
        opened_ms: 1_000,
        resolved_ms: None,
        members: vec![member("a", 1_000), member("b", 2_000)],
        likely_cause: 0,
        more_members: 4_000,
    };
    {
        let store = PostgresStore::open(&url).unwrap();
        store
            .save_analysis(&steward_watch::store::AnalysisBatch {
                incidents: vec![incident.clone()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.incident(5).unwrap(), Some(incident.clone()));
        assert_eq!(
            store.incidents(Some(IncidentStatus::Open), 10).unwrap(),
            [incident]
        );
    }
    drop_database(&db);
}
