//! A load generator for `steward up`: OTLP/HTTP log exports (protobuf) over several
//! keep-alive connections, reporting accepted records per second, request latency and
//! the server's resident memory over the run.
//!
//! ```text
//! cargo run --release -p steward-watch --example otlp_load -- \
//!     --target 127.0.0.1:4318 --connections 8 --batch 1000 --warmup 10 --seconds 60 --pid PID
//! ```
//!
//! The bodies are built before the run (64 different requests of `--batch` records
//! each, from 40 templates across 6 services, realistic parameters), so the generator
//! spends its time sending, not encoding. It prints one JSON document.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use steward_watch::ingest::otlp::proto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SERVICES: [&str; 6] = [
    "frontend",
    "checkout",
    "payments",
    "inventory",
    "search",
    "auth",
];
const TEMPLATES: [&str; 8] = [
    "GET /api/products/{} 200 {} ms",
    "user {} logged in from 10.0.{}.{}",
    "order {} placed with {} items total {} EUR",
    "cache miss for key session:{} after {} ms",
    "connection {} closed by peer after {} requests",
    "query on orders took {} ms rows={}",
    "retrying request {} to upstream (attempt {})",
    "worker {} processed batch {} in {} ms",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn body(rng: &mut Rng, template: &str, variant: usize) -> String {
    let mut out = String::new();
    let mut parts = template.split("{}").peekable();
    while let Some(part) = parts.next() {
        out.push_str(part);
        if parts.peek().is_some() {
            out.push_str(&(rng.next() % 100_000).to_string());
        }
    }
    // 40 templates: 8 shapes, each in 5 wordings.
    if variant > 0 {
        out.push_str(&format!(
            " [{}]",
            ["shard", "zone", "pool", "tenant"][variant - 1]
        ));
    }
    out
}

fn request(rng: &mut Rng, batch: usize, now_ns: u64) -> Vec<u8> {
    let mut resource_logs = Vec::new();
    for service in SERVICES {
        let records = (0..batch / SERVICES.len())
            .map(|i| {
                let t = TEMPLATES[(rng.next() % TEMPLATES.len() as u64) as usize];
                let variant = (rng.next() % 5) as usize;
                proto::LogRecord {
                    time_unix_nano: now_ns + i as u64 * 1_000,
                    severity_number: if rng.next() % 50 == 0 { 17 } else { 9 },
                    body: Some(proto::AnyValue {
                        value: Some(proto::any_value::Value::StringValue(body(rng, t, variant))),
                    }),
                    attributes: vec![proto::KeyValue {
                        key: "thread".into(),
                        value: Some(proto::AnyValue {
                            value: Some(proto::any_value::Value::StringValue(format!(
                                "worker-{}",
                                rng.next() % 16
                            ))),
                        }),
                    }],
                    ..proto::LogRecord::default()
                }
            })
            .collect();
        resource_logs.push(proto::ResourceLogs {
            resource: Some(proto::Resource {
                attributes: vec![proto::KeyValue {
                    key: "service.name".into(),
                    value: Some(proto::AnyValue {
                        value: Some(proto::any_value::Value::StringValue(service.into())),
                    }),
                }],
            }),
            scope_logs: vec![proto::ScopeLogs {
                scope: None,
                log_records: records,
            }],
        });
    }
    proto::ExportLogsServiceRequest { resource_logs }.encode_to_vec()
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Sends one request on a keep-alive connection; returns the status.
async fn send(
    stream: &mut TcpStream,
    host: &str,
    body: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    buf.clear();
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = arg(&args, "--target", "127.0.0.1:4318");
    let connections: usize = arg(&args, "--connections", "8").parse().unwrap();
    let batch: usize = arg(&args, "--batch", "1000").parse().unwrap();
    let warmup: u64 = arg(&args, "--warmup", "10").parse().unwrap();
    let seconds: u64 = arg(&args, "--seconds", "60").parse().unwrap();
    let pid = arg(&args, "--pid", "");

    let now_ns = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let bodies: Arc<Vec<Vec<u8>>> =
        Arc::new((0..64).map(|_| request(&mut rng, batch, now_ns)).collect());
    let per_request = (batch / SERVICES.len() * SERVICES.len()) as u64;
    let body_bytes = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (target, bodies, measuring, stop, accepted, failed, latencies) = (
            target.clone(),
            Arc::clone(&bodies),
            Arc::clone(&measuring),
            Arc::clone(&stop),
            Arc::clone(&accepted),
            Arc::clone(&failed),
            Arc::clone(&latencies),
        );
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&target).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            let mut mine = Vec::new();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let status = send(&mut stream, &target, &bodies[i % bodies.len()], &mut buf).await;
                i += 1;
                let on = measuring.load(Ordering::Relaxed);
                match status {
                    Ok(200) => {
                        if on {
                            accepted.fetch_add(per_request, Ordering::Relaxed);
                            mine.push(
                                u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX),
                            );
                        }
                    }
                    Ok(_) | Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if status.is_err() {
                            stream = TcpStream::connect(&target).await.unwrap();
                        }
                    }
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }

    tokio::time::sleep(Duration::from_secs(warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let cpu_before = cpu_seconds(&pid);
    let mut rss = Vec::new();
    let mut per_second = Vec::new();
    let mut last = 0;
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = accepted.load(Ordering::Relaxed);
        per_second.push(now - last);
        last = now;
        if let Some(kib) = rss_kib(&pid) {
            rss.push(kib);
        }
    }
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(&pid)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let total = accepted.load(Ordering::Relaxed);
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let third = rss.len() / 3;
    let report = serde_json::json!({
        "connections": connections,
        "records_per_request": per_request,
        "request_bytes": body_bytes,
        "seconds": elapsed,
        "records_accepted": total,
        "records_per_second": total as f64 / elapsed,
        "slowest_second": per_second.iter().min(),
        "fastest_second": per_second.iter().max(),
        "failed_requests": failed.load(Ordering::Relaxed),
        "server_cpu_seconds": cpu,
        "server_cpu_cores_used": cpu.map(|c| c / elapsed),
        "server_cpu_us_per_record": cpu.map(|c| c * 1e6 / total.max(1) as f64),
        "latency_ms": { "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0) },
        "rss_mib": {
            "first_third_max": rss[..third].iter().max().map(|k| k / 1024),
            "last_third_max": rss[rss.len() - third..].iter().max().map(|k| k / 1024),
            "max": rss.iter().max().map(|k| k / 1024),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
