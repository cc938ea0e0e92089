//! A real Prometheus (Debian's package) scrapes a tiny exporter every second and
//! remote-writes to `steward up`; steward must list the exporter's series with
//! Prometheus's target labels and hold every scraped value, in order, at the scrape's
//! time, and Prometheus's own counters must show nothing failed, retried or dropped.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use steward_watch::Service;
use support::{get, http_get, watch_options};

const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Scrapes each exporter series must have reached steward through remote write.
const POINTS_WANTED: usize = 4;
const DEADLINE: Duration = Duration::from_secs(25);

/// The exporter's series and their value at scrape `n` (1-based): each scrape gives
/// every series a value it never had before, so a stored point names its scrape.
const EXPORTED: [(&str, &str, &str); 3] = [
    (
        "steward_it_requests_total",
        "counter",
        r#"method="get",code="200""#,
    ),
    (
        "steward_it_requests_total",
        "counter",
        r#"method="post",code="500""#,
    ),
    ("steward_it_queue_depth", "gauge", r#"queue="emails""#),
];

fn exported_value(series: usize, n: u64) -> f64 {
    let n = n as f64;
    match series {
        0 => 100.0 + 7.0 * n,
        1 => n,
        _ => 0.5 * n + 0.25,
    }
}

/// What the exporter served: the wall time (ms) of each scrape, in order.
type Served = Arc<Mutex<Vec<i64>>>;

/// Serves `/metrics` in the text exposition format on a free port.
async fn start_exporter(
    stop: tokio::sync::watch::Receiver<bool>,
) -> (SocketAddr, Served, tokio::task::JoinHandle<()>) {
    let served: Served = Arc::default();
    let page = {
        let served = Arc::clone(&served);
        move || {
            let mut served = served.lock().unwrap();
            served.push(steward_watch::ingest::now_ms());
            let n = served.len() as u64;
            let mut text = String::new();
            for (i, (name, kind, labels)) in EXPORTED.iter().enumerate() {
                if i == 0 || EXPORTED[i - 1].0 != *name {
                    text += &format!("# HELP {name} A test series.\n# TYPE {name} {kind}\n");
                }
                text += &format!("{name}{{{labels}}} {}\n", exported_value(i, n));
            }
            text
        }
    };
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = page();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut stop = stop;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
    (addr, served, task)
}

/// A Prometheus server started for this test; killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, exporter: SocketAddr, steward: SocketAddr) -> Prometheus {
        // Port 0 cannot be passed to Prometheus: take a free port and hand it over.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: ['{exporter}']
remote_write:
  - url: http://{steward}/api/v1/write
    queue_config:
      batch_send_deadline: 100ms
      min_backoff: 50ms
"
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Prometheus { child, addr, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Prometheus's own `/metrics`, as `selector -> value`.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, body) = http_get(self.addr, "/metrics").await.unwrap();
        assert_eq!(status, 200, "Prometheus /metrics: {body:.200}");
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (selector, value) = l.rsplit_once(' ')?;
                Some((selector.to_string(), value.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The name of a `name{labels}` selector.
fn metric_name(selector: &str) -> &str {
    selector.split('{').next().unwrap_or(selector)
}

/// The exporter's series as steward lists them, keyed by their exporter index, with
/// their points (oldest first).
async fn stored(service: &Service, exporter: SocketAddr) -> BTreeMap<usize, (Value, Vec<Value>)> {
    let mut found = BTreeMap::new();
    let listed = get(service, "/api/v1/series?name=steward_it_&limit=100").await;
    for series in listed["series"].as_array().into_iter().flatten() {
        let key = &series["key"];
        let Some(i) = EXPORTED.iter().position(|(name, _, labels)| {
            key["name"] == *name
                && labels.split(',').all(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    key["labels"][k] == v.trim_matches('"')
                })
        }) else {
            panic!("steward lists a series the exporter never served: {series}");
        };
        assert_eq!(key["labels"]["job"], "exporter", "{series}");
        assert_eq!(key["labels"]["instance"], exporter.to_string(), "{series}");
        let id = series["id"].as_i64().unwrap();
        let points = get(service, &format!("/api/v1/series/{id}?max_points=20000")).await;
        let points = points["points"].as_array().cloned().unwrap_or_default();
        assert!(found.insert(i, (series.clone(), points)).is_none());
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_writes_an_exporters_series_to_steward() {
    if !Path::new(PROMETHEUS).exists() {
        // scripts/test sets this: there, a missing dependency is a failure, not a skip.
        assert!(
            std::env::var_os("STEWARD_REQUIRE_INTEGRATION").is_none(),
            "scripts/test requires this test: {PROMETHEUS} is missing (scripts/deps/30-prometheus.sh installs it)"
        );
        eprintln!(
            "skipped: {PROMETHEUS} is not installed (scripts/deps/30-prometheus.sh installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(watch_options(&dir.path().join("steward")))
        .await
        .unwrap();
    let (stop_exporter, stop) = tokio::sync::watch::channel(false);
    let (exporter, served, exporter_task) = start_exporter(stop).await;
    let prometheus = Prometheus::start(dir.path(), exporter, service.api_addr);

    // Wait until every exporter series has its first POINTS_WANTED scrapes in steward.
    let started = Instant::now();
    let series = loop {
        let series = stored(&service, exporter).await;
        if series.len() == EXPORTED.len() && series.values().all(|(_, p)| p.len() >= POINTS_WANTED)
        {
            break series;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "steward did not get {POINTS_WANTED} points of each exporter series in {DEADLINE:?}; \
             the exporter was scraped {} times; steward holds {series:?}\nPrometheus log:\n{}",
            served.lock().unwrap().len(),
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Every stored point is one scrape's value, at that scrape's time: none missing,
    // none repeated, starting at the first scrape Prometheus made.
    let served = served.lock().unwrap().clone();
    for (i, (info, points)) in &series {
        for (k, point) in points.iter().enumerate() {
            let n = k + 1;
            assert!(
                n <= served.len(),
                "{info}: more points than scrapes: {points:?}"
            );
            assert_eq!(
                point["value"].as_f64(),
                Some(exported_value(*i, n as u64)),
                "{info}: point {k} is not scrape {n}'s value: {points:?}"
            );
            // Prometheus stamps a sample with the time it started the scrape, just
            // before the request reaches the exporter.
            let stamped = point["timestamp_ms"].as_i64().unwrap();
            let drift = served[k] - stamped;
            assert!(
                (0..1_000).contains(&drift),
                "{info}: point {k} stamped {stamped}, served at {}: {points:?}",
                served[k]
            );
        }
        let last = points.last().unwrap();
        assert_eq!(info["last_value"], last["value"], "{info}");
    }
    // Prometheus's own series about the target come through too.
    let up = get(&service, "/api/v1/series?name=up&labels=job=exporter").await;
    let up = up["series"].as_array().unwrap();
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["last_value"], 1.0, "{up:?}");

    // Prometheus's side: samples were sent, and none failed, was retried or dropped.
    // Its counters move after the answer arrives: wait until they cover what steward holds.
    let held = series.values().map(|(_, p)| p.len()).sum::<usize>() as f64;
    let metrics = loop {
        let metrics = prometheus.metrics().await;
        let sent = metrics
            .iter()
            .filter(|(s, _)| metric_name(s) == "prometheus_remote_storage_samples_total")
            .map(|(_, v)| v)
            .sum::<f64>();
        if sent >= held {
            break metrics;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "Prometheus counts {sent} samples sent, steward holds {held}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for must in [
        "prometheus_remote_storage_samples_failed_total",
        "prometheus_remote_storage_samples_retried_total",
        "prometheus_remote_storage_samples_dropped_total",
    ] {
        assert!(
            metrics.keys().any(|s| metric_name(s) == must),
            "Prometheus no longer exposes {must}"
        );
    }
    let bad: Vec<_> = metrics
        .iter()
        .filter(|(s, _)| {
            let name = metric_name(s);
            name.starts_with("prometheus_remote_storage_")
                && ["_failed_total", "_retried_total", "_dropped_total"]
                    .iter()
                    .any(|suffix| name.ends_with(suffix))
                || name == "prometheus_remote_storage_enqueue_retries_total"
        })
        .filter(|(_, v)| **v != 0.0)
        .collect();
    assert!(
        bad.is_empty(),
        "Prometheus counted failures: {bad:?}\nPrometheus log:\n{}",
        prometheus.log()
    );
    // And steward refused nothing.
    let (_, steward_metrics) = http_get(service.api_addr, "/metrics").await.unwrap();
    for line in [
        "steward_records_rejected_total{kind=\"sample\"} 0",
        "steward_records_dropped_total 0",
    ] {
        assert!(
            steward_metrics.lines().any(|l| l == line),
            "steward's /metrics lacks {line:?}:\n{steward_metrics}"
        );
    }

    drop(prometheus);
    let _ = stop_exporter.send(true);
    exporter_task.await.unwrap();
    service.stop().await.unwrap();
}
