//! Acknowledged remote-write samples survive `kill -9` of the service at full rate.
//!
//! The child is this test binary run again with an environment variable: it starts the
//! real service (`Service::start`, the embedded store) and prints its address. The
//! parent drives remote write at it from several connections as fast as it answers,
//! kills it with SIGKILL mid-ingest, starts it again on the same data directory, and
//! reads every series back through `/api/v1/series` and `/api/v1/series/{id}`: every
//! sample of every request that got a 2xx must be there.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test fails loudly; the child reports on stdout

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;
use steward_watch::ingest::remote_write::proto;
use steward_watch::pipeline::PipelineConfig;
use steward_watch::{Service, WatchOptions};

const CHILD_ENV: &str = "STEWARD_WATCH_KILL9_DIR";
const CONNECTIONS: usize = 3;
const SERIES_PER_CONNECTION: usize = 100;
const SAMPLES_PER_SERIES: usize = 5;
const T0: i64 = 1_700_000_000_000;

/// The child: the service, until it is killed.
#[test]
fn child_service() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only runs when the parent starts it
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let options = WatchOptions {
            listen: "127.0.0.1:0".into(),
            otlp: "127.0.0.1:0".into(),
            data_dir: dir.into(),
            store: "embedded".into(),
            retention_days: 7,
            limits: Default::default(),
            pipeline: PipelineConfig::default(),
            scrape: Vec::new(),
            scrape_interval: Duration::from_secs(15),
            tail: Vec::new(),
            webhooks: Vec::new(),
            demo: None,
        };
        let service = Service::start(options).await.unwrap();
        println!("listening {}", service.api_addr);
        std::io::stdout().flush().unwrap();
        std::future::pending::<()>().await;
    });
}

fn start_child(dir: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_service",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        // The harness may have written "test child_service ... " before it.
        let line = line.unwrap();
        if let Some((_, addr)) = line.split_once("listening ") {
            return (child, addr.trim().parse().unwrap());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the child service did not start");
}

/// One HTTP/1.1 request on a fresh connection; the status and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    let text_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&response[..text_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let mut body = response[text_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let len =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16).unwrap();
        if len == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + len]);
        data = &data[eol + 2 + len + 2..];
    }
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, b"").unwrap();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The value of series `s` at round `r`, sample `k`: every sample is distinct.
fn value(s: usize, r: i64, k: usize) -> f64 {
    (s * 1_000_000) as f64 + (r * SAMPLES_PER_SERIES as i64 + k as i64) as f64
}

fn ts(r: i64, k: usize) -> i64 {
    T0 + (r * SAMPLES_PER_SERIES as i64 + k as i64) * 1_000
}

fn request(conn: usize, round: i64) -> Vec<u8> {
    let timeseries = (0..SERIES_PER_CONNECTION)
        .map(|i| {
            let s = conn * SERIES_PER_CONNECTION + i;
            proto::TimeSeries {
                labels: vec![
                    proto::Label {
                        name: "__name__".into(),
                        value: "kill9_metric".into(),
                    },
                    proto::Label {
                        name: "s".into(),
                        value: s.to_string(),
                    },
                ],
                samples: (0..SAMPLES_PER_SERIES)
                    .map(|k| proto::Sample {
                        value: value(s, round, k),
                        timestamp: ts(round, k),
                    })
                    .collect(),
            }
        })
        .collect();
    let raw = proto::WriteRequest { timeseries }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

#[test]
fn acknowledged_remote_write_survives_kill_9() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_child(dir.path());

    // Each connection sends its rounds in order and records the last acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..CONNECTIONS)
        .map(|conn| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut acked: Vec<i64> = Vec::new();
                let mut round = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let body = request(conn, round);
                    match http(addr, "POST", "/api/v1/write", &body) {
                        Ok((204, _)) => {
                            acked.push(round);
                            round += 1;
                        }
                        // Refused for now: the same body again, as Prometheus does.
                        Ok((503 | 429, _)) => std::thread::sleep(Duration::from_millis(20)),
                        Ok((status, body)) => {
                            panic!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        }
                        // The kill: this request's fate is unknown, so it is not counted.
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2_500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Vec<i64>> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let total: usize = acked.iter().map(Vec::len).sum();
    eprintln!("killed after {total} acknowledged requests");
    assert!(
        total > 10,
        "too few requests acknowledged before the kill: {total}"
    );

    let (mut child, addr) = start_child(dir.path());
    eprintln!("restarted");
    let listed = get_json(addr, "/api/v1/series?name=kill9_metric&limit=10000");
    let mut ids: BTreeMap<usize, i64> = BTreeMap::new();
    for s in listed["series"].as_array().unwrap() {
        let n: usize = s["key"]["labels"]["s"].as_str().unwrap().parse().unwrap();
        ids.insert(n, s["id"].as_i64().unwrap());
    }
    let mut checked = 0usize;
    for (conn, rounds) in acked.iter().enumerate() {
        for i in 0..SERIES_PER_CONNECTION {
            let s = conn * SERIES_PER_CONNECTION + i;
            if rounds.is_empty() {
                continue;
            }
            let id = ids
                .get(&s)
                .unwrap_or_else(|| panic!("series {s} not listed after restart"));
            let got = get_json(addr, &format!("/api/v1/series/{id}?max_points=20000"));
            let points: BTreeSet<(i64, u64)> = got["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["timestamp_ms"].as_i64().unwrap(),
                        p["value"].as_f64().unwrap().to_bits(),
                    )
                })
                .collect();
            for &r in rounds {
                for k in 0..SAMPLES_PER_SERIES {
                    assert!(
                        points.contains(&(ts(r, k), value(s, r, k).to_bits())),
                        "series {s}: acknowledged round {r} sample {k} lost after kill -9"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(
        checked,
        total * SERIES_PER_CONNECTION * SAMPLES_PER_SERIES,
        "every acknowledged sample was checked"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
