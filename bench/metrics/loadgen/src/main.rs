//! A Prometheus remote-write load generator, the load of issue 10.
//!
//! `--connections` keep-alive HTTP/1.1 connections (one thread each) POST snappy-compressed
//! `WriteRequest`s of `--series-per-request` series × `--samples-per-series` samples, each
//! series with six labels. The `--series` active series are split into groups of one
//! request each; every connection owns its own groups, so a series is only ever written by
//! one connection and its timestamps always advance. After `--warmup` seconds the
//! generator counts, for `--duration` seconds, the samples of requests that got a 2xx
//! answer; a 429 or 503 is retried after its `Retry-After` (the same body, as Prometheus
//! does), and every other answer is counted as a failure and not retried.
//!
//! With `--verify-url http://HOST:PORT` (a steward API), the generator then reads one
//! series of every group back through `GET /api/v1/series` and checks that it holds
//! every sample of that group's acknowledged requests (`verify_lost` must be 0).
//!
//! The report is one JSON object on stdout (and a readable line on stderr).

// The binary's output is its report.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PHASE_WARMUP: u8 = 0;
const PHASE_MEASURE: u8 = 1;
const PHASE_STOP: u8 = 2;

#[derive(Debug, Clone)]
struct Options {
    host: String,
    port: u16,
    path: String,
    connections: usize,
    series: usize,
    series_per_request: usize,
    samples_per_series: usize,
    interval_ms: i64,
    warmup: Duration,
    duration: Duration,
    /// `host:port` of a steward API to read the series back from.
    verify: Option<(String, u16)>,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut o = Options {
            host: "127.0.0.1".into(),
            port: 9090,
            path: "/api/v1/write".into(),
            connections: 8,
            series: 96_000,
            series_per_request: 1_000,
            samples_per_series: 10,
            interval_ms: 1_000,
            warmup: Duration::from_secs(10),
            duration: Duration::from_secs(30),
            verify: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.into());
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let num = |v: &str| -> Result<u64, String> {
                v.parse::<u64>()
                    .map_err(|e| format!("{flag} {v}: {e}\n{USAGE}"))
            };
            match flag.as_str() {
                "--url" => {
                    let rest = value
                        .strip_prefix("http://")
                        .ok_or_else(|| format!("--url must start with http://: {value}"))?;
                    let (authority, path) = match rest.find('/') {
                        Some(i) => (&rest[..i], &rest[i..]),
                        None => (rest, "/api/v1/write"),
                    };
                    let (host, port) = authority
                        .rsplit_once(':')
                        .ok_or_else(|| format!("--url needs a port: {value}"))?;
                    o.host = host.into();
                    o.port = port
                        .parse()
                        .map_err(|e| format!("--url port {port}: {e}"))?;
                    o.path = path.into();
                }
                "--verify-url" => {
                    let rest = value
                        .strip_prefix("http://")
                        .ok_or_else(|| format!("--verify-url must start with http://: {value}"))?;
                    let authority = rest.split('/').next().unwrap_or(rest);
                    let (host, port) = authority
                        .rsplit_once(':')
                        .ok_or_else(|| format!("--verify-url needs a port: {value}"))?;
                    let port = port
                        .parse()
                        .map_err(|e| format!("--verify-url port {port}: {e}"))?;
                    o.verify = Some((host.to_string(), port));
                }
                "--connections" => o.connections = num(&value)? as usize,
                "--series" => o.series = num(&value)? as usize,
                "--series-per-request" => o.series_per_request = num(&value)? as usize,
                "--samples-per-series" => o.samples_per_series = num(&value)? as usize,
                "--interval-ms" => o.interval_ms = num(&value)? as i64,
                "--warmup" => o.warmup = Duration::from_secs(num(&value)?),
                "--duration" => o.duration = Duration::from_secs(num(&value)?),
                _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
            }
        }
        if o.connections == 0
            || o.series_per_request == 0
            || o.samples_per_series == 0
            || o.series < o.series_per_request
            || o.duration.is_zero()
        {
            return Err(format!("counts and --duration must be positive\n{USAGE}"));
        }
        Ok(o)
    }
}

const USAGE: &str = "usage: metrics-loadgen --url http://HOST:PORT/api/v1/write \
[--connections 8] [--series 96000] [--series-per-request 1000] [--samples-per-series 10] \
[--interval-ms 1000] [--warmup 10] [--duration 30] [--verify-url http://HOST:PORT]";

/// Counters shared by the connections.
#[derive(Debug, Default)]
struct Counters {
    accepted_samples: AtomicU64,
    accepted_requests: AtomicU64,
    failed_requests: AtomicU64,
    retries: AtomicU64,
    connection_errors: AtomicU64,
    body_bytes: AtomicU64,
    /// Samples acknowledged over the whole run, warm-up included.
    total_samples: AtomicU64,
    last_failure: std::sync::Mutex<Option<String>>,
}

fn main() -> ExitCode {
    let opts = match Options::parse() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let groups = opts.series / opts.series_per_request;
    let phase = Arc::new(AtomicU8::new(PHASE_WARMUP));
    let counters = Arc::new(Counters::default());
    // Start a quarter of an hour in the past so that a fast run still stays near "now":
    // both anchors refuse samples too far in the future or the past.
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        - 15 * 60 * 1000;

    let mut workers = Vec::new();
    for c in 0..opts.connections {
        let my_groups: Vec<usize> = (c..groups).step_by(opts.connections).collect();
        if my_groups.is_empty() {
            continue;
        }
        let (opts, phase, counters) = (opts.clone(), phase.clone(), counters.clone());
        workers.push(std::thread::spawn(move || {
            let accepted = connection(&opts, &my_groups, start_ms, &phase, &counters);
            my_groups.into_iter().zip(accepted).collect::<Vec<_>>()
        }));
    }

    std::thread::sleep(opts.warmup);
    phase.store(PHASE_MEASURE, Ordering::SeqCst);
    let t0 = Instant::now();
    std::thread::sleep(opts.duration);
    phase.store(PHASE_STOP, Ordering::SeqCst);
    let elapsed = t0.elapsed().as_secs_f64();
    let mut accepted_rounds: Vec<(usize, i64)> = Vec::new();
    for w in workers {
        if let Ok(groups) = w.join() {
            accepted_rounds.extend(groups);
        }
    }
    let verified = opts
        .verify
        .as_ref()
        .map(|(host, port)| verify(host, *port, &accepted_rounds, &opts));

    let accepted = counters.accepted_samples.load(Ordering::Relaxed);
    let requests = counters.accepted_requests.load(Ordering::Relaxed);
    let bytes = counters.body_bytes.load(Ordering::Relaxed);
    let failed = counters.failed_requests.load(Ordering::Relaxed);
    let retries = counters.retries.load(Ordering::Relaxed);
    let conn_errors = counters.connection_errors.load(Ordering::Relaxed);
    let rate = accepted as f64 / elapsed;
    let mean_body = bytes.checked_div(requests).unwrap_or(0);
    let last_failure = counters
        .last_failure
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_default();
    eprintln!(
        "accepted {rate:.0} samples/s ({accepted} samples, {requests} requests in {elapsed:.1} s), \
         {failed} non-2xx, {retries} retries after 429/503, {conn_errors} connection errors, \
         mean body {mean_body} bytes compressed{}",
        if last_failure.is_empty() {
            String::new()
        } else {
            format!("; last failure: {last_failure}")
        }
    );
    println!(
        "{{\"samples_per_s\":{rate:.0},\"accepted_samples\":{accepted},\"accepted_requests\":{requests},\
\"measured_s\":{elapsed:.3},\"non_2xx\":{failed},\"retries_429_503\":{retries},\
\"connection_errors\":{conn_errors},\"mean_body_bytes\":{mean_body},\"total_samples\":{},\
\"connections\":{},\"series\":{},\"series_per_request\":{},\"samples_per_series\":{}{}}}",
        counters.total_samples.load(Ordering::Relaxed),
        opts.connections,
        groups * opts.series_per_request,
        opts.series_per_request,
        opts.samples_per_series,
        verified.as_ref().map_or_else(String::new, |v| format!(
            ",\"verified_series\":{},\"verified_samples\":{},\"verify_lost\":{},\"verify_errors\":{}",
            v.series, v.samples, v.lost, v.errors
        ))
    );
    if let Some(v) = &verified {
        eprintln!(
            "read back {} series ({} acknowledged samples): {} lost, {} read errors{}",
            v.series,
            v.samples,
            v.lost,
            v.errors,
            v.first_problem
                .as_ref()
                .map_or_else(String::new, |p| format!("; first: {p}"))
        );
    }
    if requests == 0 || verified.is_some_and(|v| v.lost > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One connection: sends the next round of its groups until the run stops.
fn connection(
    opts: &Options,
    groups: &[usize],
    start_ms: i64,
    phase: &AtomicU8,
    counters: &Counters,
) -> Vec<i64> {
    let labels: Vec<Vec<Vec<u8>>> = groups
        .iter()
        .map(|&g| {
            (0..opts.series_per_request)
                .map(|i| encode_labels(g * opts.series_per_request + i))
                .collect()
        })
        .collect();
    let mut rounds = vec![0i64; groups.len()];
    let mut accepted = vec![0i64; groups.len()];
    let mut raw = Vec::with_capacity(512 * 1024);
    let mut encoder = snap::raw::Encoder::new();
    let mut compressed = Vec::new();
    let mut conn: Option<Http> = None;
    let samples_per_request = (opts.series_per_request * opts.samples_per_series) as u64;
    'run: loop {
        for (gi, &g) in groups.iter().enumerate() {
            if phase.load(Ordering::Relaxed) == PHASE_STOP {
                break 'run;
            }
            let first_ts =
                start_ms + rounds[gi] * opts.samples_per_series as i64 * opts.interval_ms;
            rounds[gi] += 1;
            raw.clear();
            encode_request(&mut raw, &labels[gi], g, first_ts, opts);
            compressed.resize(snap::raw::max_compress_len(raw.len()), 0);
            let n = match encoder.compress(&raw, &mut compressed) {
                Ok(n) => n,
                Err(e) => {
                    note_failure(counters, format!("snappy: {e}"));
                    return accepted;
                }
            };
            // Send until the body is accepted, refused for good, or the run ends.
            loop {
                if phase.load(Ordering::Relaxed) == PHASE_STOP {
                    break 'run;
                }
                let http = match conn.as_mut() {
                    Some(h) => h,
                    None => match Http::connect(opts) {
                        Ok(h) => conn.insert(h),
                        Err(e) => {
                            counters.connection_errors.fetch_add(1, Ordering::Relaxed);
                            note_failure(counters, format!("connect: {e}"));
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    },
                };
                let sent_in = phase.load(Ordering::Relaxed);
                match http.post(opts, &compressed[..n]) {
                    Ok(resp) if (200..300).contains(&resp.status) => {
                        accepted[gi] += 1;
                        counters
                            .total_samples
                            .fetch_add(samples_per_request, Ordering::Relaxed);
                        // A request counts when it was sent and answered inside the window.
                        if sent_in == PHASE_MEASURE
                            && phase.load(Ordering::Relaxed) == PHASE_MEASURE
                        {
                            counters
                                .accepted_samples
                                .fetch_add(samples_per_request, Ordering::Relaxed);
                            counters.accepted_requests.fetch_add(1, Ordering::Relaxed);
                            counters.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        break;
                    }
                    Ok(resp) if resp.status == 429 || resp.status == 503 => {
                        counters.retries.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(resp.retry_after.unwrap_or(Duration::from_secs(1)));
                    }
                    Ok(resp) => {
                        counters.failed_requests.fetch_add(1, Ordering::Relaxed);
                        note_failure(
                            counters,
                            format!("HTTP {}: {}", resp.status, resp.body_text()),
                        );
                        break;
                    }
                    Err(e) => {
                        counters.connection_errors.fetch_add(1, Ordering::Relaxed);
                        note_failure(counters, format!("request: {e}"));
                        conn = None;
                    }
                }
            }
        }
    }
    accepted
}

fn note_failure(counters: &Counters, msg: String) {
    if let Ok(mut g) = counters.last_failure.lock() {
        *g = Some(msg);
    }
}

const METRIC_NAMES: [&str; 10] = [
    "http_requests_total",
    "http_request_duration_seconds_sum",
    "process_cpu_seconds_total",
    "node_memory_active_bytes",
    "go_goroutines",
    "db_pool_connections_in_use",
    "queue_depth",
    "node_network_receive_bytes_total",
    "cache_hits_total",
    "disk_used_bytes",
];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];

/// The encoded `Label` fields (tag 1 of `TimeSeries`) of series `s`, sorted by name as
/// Prometheus sends them: `__name__`, `env`, `instance`, `job`, `pod`, `region`.
fn encode_labels(s: usize) -> Vec<u8> {
    let name = METRIC_NAMES[s % METRIC_NAMES.len()];
    let instance = format!("10.{}.{}.{}:9100", (s / 2560) % 256, (s / 10) % 256, s % 10);
    let pod = format!(
        "api-{}-{:05x}",
        (s / 10) % 97,
        (s / 10).wrapping_mul(2_654_435_761) % 0xfffff
    );
    let pairs = [
        ("__name__", name),
        ("env", "production"),
        ("instance", instance.as_str()),
        ("job", "node-exporter"),
        ("pod", pod.as_str()),
        ("region", REGIONS[s % REGIONS.len()]),
    ];
    let mut out = Vec::new();
    for (n, v) in pairs {
        let len =
            1 + varint_len(n.len() as u64) + n.len() + 1 + varint_len(v.len() as u64) + v.len();
        out.push(0x0a);
        put_varint(&mut out, len as u64);
        out.push(0x0a);
        put_varint(&mut out, n.len() as u64);
        out.extend_from_slice(n.as_bytes());
        out.push(0x12);
        put_varint(&mut out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// A `WriteRequest` of one group: each series gets `samples_per_series` samples from
/// `first_ts` on. Values follow the metric's kind: counters rise, gauges wander in a
/// small integer range, the way exporters' values mostly do.
fn encode_request(
    out: &mut Vec<u8>,
    labels: &[Vec<u8>],
    group: usize,
    first_ts: i64,
    opts: &Options,
) {
    let mut sample = Vec::with_capacity(32);
    let mut series = Vec::with_capacity(1024);
    for (i, l) in labels.iter().enumerate() {
        let s = (group * opts.series_per_request + i) as u64;
        series.clear();
        series.extend_from_slice(l);
        for k in 0..opts.samples_per_series {
            let ts = first_ts + k as i64 * opts.interval_ms;
            let step = (ts - 1_600_000_000_000) / opts.interval_ms.max(1);
            let value = if s % 2 == 0 {
                // A counter: rises by a few per interval.
                (step as u64).wrapping_mul(1 + s % 7) as f64
            } else {
                // A gauge: small integers that change now and then.
                (mix(s ^ (step as u64 / 2)) % 1000) as f64
            };
            sample.clear();
            sample.push(0x09);
            sample.extend_from_slice(&value.to_le_bytes());
            sample.push(0x10);
            put_varint(&mut sample, ts as u64);
            series.push(0x12);
            put_varint(&mut series, sample.len() as u64);
            series.extend_from_slice(&sample);
        }
        out.push(0x0a);
        put_varint(out, series.len() as u64);
        out.extend_from_slice(&series);
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// What reading the series back found.
struct Verified {
    series: usize,
    samples: u64,
    lost: u64,
    errors: usize,
    first_problem: Option<String>,
}

/// The labels of series `s` as a `/api/v1/series` query.
fn series_query(s: usize) -> String {
    let name = METRIC_NAMES[s % METRIC_NAMES.len()];
    let instance = format!("10.{}.{}.{}:9100", (s / 2560) % 256, (s / 10) % 256, s % 10);
    let pod = format!(
        "api-{}-{:05x}",
        (s / 10) % 97,
        (s / 10).wrapping_mul(2_654_435_761) % 0xfffff
    );
    format!(
        "/api/v1/series?name={name}&labels=env=production,instance={instance},job=node-exporter,pod={pod},region={}&limit=5",
        REGIONS[s % REGIONS.len()]
    )
}

/// Reads one series per group back and compares its point count with the samples of
/// the group's acknowledged requests.
fn verify(host: &str, port: u16, groups: &[(usize, i64)], opts: &Options) -> Verified {
    let mut v = Verified {
        series: 0,
        samples: 0,
        lost: 0,
        errors: 0,
        first_problem: None,
    };
    let target = Options {
        host: host.to_string(),
        port,
        ..opts.clone()
    };
    for &(group, rounds) in groups {
        if rounds == 0 {
            continue;
        }
        let s = group * opts.series_per_request + (group * 7) % opts.series_per_request;
        let expected = rounds as u64 * opts.samples_per_series as u64;
        let found = Http::connect(&target).and_then(|mut h| h.get(&target, &series_query(s)));
        let points = match found {
            Ok(r) if r.status == 200 => {
                let text = String::from_utf8_lossy(&r.body).to_string();
                // One match is expected; the count is the first "points" field.
                text.split("\"points\":")
                    .nth(1)
                    .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse::<u64>().ok())
            }
            Ok(r) => {
                v.first_problem
                    .get_or_insert(format!("HTTP {}: {}", r.status, r.body_text()));
                None
            }
            Err(e) => {
                v.first_problem.get_or_insert(format!("{e}"));
                None
            }
        };
        v.series += 1;
        v.samples += expected;
        match points {
            Some(n) => {
                if n < expected {
                    v.lost += expected - n;
                    v.first_problem
                        .get_or_insert(format!("series {s}: {n} points, {expected} acknowledged"));
                }
            }
            None => {
                v.errors += 1;
                v.lost += expected;
            }
        }
    }
    v
}

/// A minimal keep-alive HTTP/1.1 client: enough for the 2xx/4xx/5xx answers of a
/// remote-write receiver.
struct Http {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    head: Vec<u8>,
}

struct Response {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Response {
    fn body_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_string()
    }
}

impl Http {
    fn connect(opts: &Options) -> std::io::Result<Http> {
        let stream = TcpStream::connect((opts.host.as_str(), opts.port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Http {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            head: Vec::with_capacity(512),
        })
    }

    fn post(&mut self, opts: &Options, body: &[u8]) -> std::io::Result<Response> {
        self.head.clear();
        write!(
            self.head,
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: steward-metrics-loadgen\r\n\
             Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
             X-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
            opts.path,
            opts.host,
            opts.port,
            body.len()
        )?;
        self.writer.write_all(&self.head)?;
        self.writer.write_all(body)?;
        self.read_response()
    }

    fn get(&mut self, opts: &Options, path: &str) -> std::io::Result<Response> {
        self.head.clear();
        write!(
            self.head,
            "GET {path} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: steward-metrics-loadgen\r\n\r\n",
            opts.host, opts.port
        )?;
        self.writer.write_all(&self.head)?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<Response> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed"));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut content_length = None;
        let mut chunked = false;
        let mut retry_after = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(bad("connection closed in headers"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                } else if name.eq_ignore_ascii_case("retry-after") {
                    retry_after = value.parse::<u64>().ok().map(Duration::from_secs);
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad("bad chunk size"))?;
                let start = body.len();
                body.resize(start + size + 2, 0);
                self.reader.read_exact(&mut body[start..])?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = content_length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
        } else if status != 204 && status != 304 && status >= 200 {
            return Err(bad("response without length"));
        }
        Ok(Response {
            status,
            retry_after,
            body,
        })
    }
}
