//! The dashboard in a real browser: Debian's headless Chromium loads every page of a
//! service playing the demo scenario; the pages must log no console error, show the
//! injected incident, and a screenshot of each is saved under the target directory.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use steward_watch::pipeline::PipelineConfig;
use steward_watch::{Service, WatchOptions};

mod support;
use support::get;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Loads a page; returns its DOM and the browser's log lines about the page.
fn browse(url: &str, screenshot: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Failed to load resource"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_render_the_incident_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        // scripts/deps/20-watch.sh installs it; without it there is nothing to drive.
        // scripts/test sets this: there, a missing dependency is a failure, not a skip.
        assert!(
            std::env::var_os("STEWARD_REQUIRE_INTEGRATION").is_none(),
            "scripts/test requires this test: a dependency is missing (scripts/deps/ installs it, and starts the services)"
        );
        eprintln!("skipped: {CHROMIUM} is not installed (scripts/deps/20-watch.sh installs it)");
        return;
    }
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
        scrape: Vec::new(),
        scrape_interval: Duration::from_secs(15),
        tail: Vec::new(),
        webhooks: Vec::new(),
        demo: Some(Duration::from_millis(5)),
    })
    .await
    .unwrap();
    let mut incident = Value::Null;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let all = get(&service, "/api/v1/incidents?status=all").await;
        if let Some(i) = all["incidents"].as_array().and_then(|a| {
            a.iter().find(|i| {
                i["title"]
                    .as_str()
                    .unwrap_or("")
                    .contains("db_query_duration_ms")
            })
        }) {
            incident = i.clone();
            break;
        }
    }
    let id = incident["id"]
        .as_u64()
        .expect("the demo's database incident never opened");
    let series = get(&service, "/api/v1/series?name=disk_usage_ratio").await;
    let disk = series["series"][0]["id"].as_i64().unwrap();

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let base = format!("http://{}", service.api_addr);
    let pages = [
        (
            "overview",
            "/".to_string(),
            vec!["Open incidents", "db_query_duration_ms"],
        ),
        (
            "incident",
            format!("/incidents/{id}"),
            vec![
                "Likely cause",
                "db_query_duration_ms",
                "payment failed: database timeout",
                "<svg",
                "class=\"anomaly\"",
            ],
        ),
        (
            "templates",
            "/templates".to_string(),
            vec!["Surging", "payment failed"],
        ),
        (
            "series",
            format!("/series?id={disk}"),
            vec!["disk_usage_ratio", "<polyline"],
        ),
        (
            "forecasts",
            "/forecasts".to_string(),
            vec!["disk_usage_ratio", "warning"],
        ),
    ];
    for (name, path, expected) in pages {
        let shot = shots.join(format!("{name}.png"));
        let url = format!("{base}{path}");
        let (dom, console) = tokio::task::spawn_blocking({
            let shot = shot.clone();
            move || browse(&url, &shot)
        })
        .await
        .unwrap();
        assert!(console.is_empty(), "{path}: console messages: {console:#?}");
        for needle in expected {
            assert!(dom.contains(needle), "{path}: {needle:?} not on the page");
        }
        let png = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            png > 10_000,
            "{path}: screenshot {} is {png} bytes",
            shot.display()
        );
        eprintln!("{path}: screenshot {}", shot.display());
    }
    service.stop().await.unwrap();
}
