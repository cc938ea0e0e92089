//! The metric write path on one core, end to end short of HTTP: snappy-decompress a
//! remote-write body of issue 10's load (1,000 series × 10 samples, six labels, about
//! 52 KB), walk its protobuf borrowing label strings from the body, intern each label
//! set (allocation-free on a hit), and append the rows through the write-ahead log with
//! group commit (8 bodies per fsync, as 8 connections would share one).
//!
//! `cargo bench -p steward-tsdb --bench ingest`
//!
//! The decoder here is a sketch for the ingest path (steward-watch owns the real one):
//! it shows that nothing on the way from body to log needs an owned string.

#![allow(clippy::print_stderr, clippy::unwrap_used)] // a bench reports on stderr and may fail loudly

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use steward_tsdb::{Row, SyncPolicy, Tsdb, TsdbOptions};

const SERIES: usize = 96_000;
const PER_REQUEST: usize = 1_000;
const SAMPLES: usize = 10;
const GROUPS: usize = SERIES / PER_REQUEST;
const GROUP_COMMIT: usize = 8;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

fn put_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A body as `bench/metrics/loadgen` builds it (same labels and values).
fn body(g: usize, round: i64) -> Vec<u8> {
    const NAMES: [&str; 10] = [
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
    let mut req = Vec::new();
    for i in 0..PER_REQUEST {
        let s = g * PER_REQUEST + i;
        let instance = format!("10.{}.{}.{}:9100", (s / 2560) % 256, (s / 10) % 256, s % 10);
        let pod = format!(
            "api-{}-{:05x}",
            (s / 10) % 97,
            (s / 10).wrapping_mul(2_654_435_761) % 0xfffff
        );
        let pairs = [
            ("__name__", NAMES[s % NAMES.len()]),
            ("env", "production"),
            ("instance", instance.as_str()),
            ("job", "node-exporter"),
            ("pod", pod.as_str()),
            ("region", ["eu-west-1", "us-east-1", "ap-south-1"][s % 3]),
        ];
        let mut ts_msg = Vec::new();
        for (n, v) in pairs {
            let mut label = Vec::new();
            put_field(&mut label, 0x0a, n.as_bytes());
            put_field(&mut label, 0x12, v.as_bytes());
            put_field(&mut ts_msg, 0x0a, &label);
        }
        for k in 0..SAMPLES as i64 {
            let step = round * SAMPLES as i64 + k;
            let ts = 1_700_000_000_000 + step * 1000;
            let value = if s % 2 == 0 {
                (step as u64).wrapping_mul(1 + s as u64 % 7) as f64
            } else {
                (mix(s as u64 ^ (step as u64 / 2)) % 1000) as f64
            };
            let mut sample = vec![0x09];
            sample.extend_from_slice(&value.to_le_bytes());
            sample.push(0x10);
            put_varint(&mut sample, ts as u64);
            put_field(&mut ts_msg, 0x12, &sample);
        }
        put_field(&mut req, 0x0a, &ts_msg);
    }
    snap::raw::Encoder::new().compress_vec(&req).unwrap()
}

/// A protobuf reader over a borrowed buffer; `None` on malformed input.
struct Pb<'a> {
    buf: &'a [u8],
}

impl<'a> Pb<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next field: its number and, for length-delimited fields, its bytes; for
    /// the others, their raw value (varint or fixed64 bits).
    fn field(&mut self) -> Option<(u64, Result<&'a [u8], u64>)> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Err(self.varint()?),
            1 => {
                let (b, rest) = self.buf.split_at_checked(8)?;
                self.buf = rest;
                Err(u64::from_le_bytes(b.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let (b, rest) = self.buf.split_at_checked(len)?;
                self.buf = rest;
                Ok(b)
            }
            5 => {
                let (_, rest) = self.buf.split_at_checked(4)?;
                self.buf = rest;
                Err(0)
            }
            _ => return None,
        };
        Some((key >> 3, value))
    }
}

/// Decodes a `WriteRequest` into rows, interning label sets borrowed from `raw`.
fn decode_into(raw: &[u8], db: &mut Tsdb, rows: &mut Vec<Row>) -> Option<()> {
    let mut req = Pb { buf: raw };
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
    let mut samples: Vec<(i64, f64)> = Vec::with_capacity(16);
    while !req.buf.is_empty() {
        let (1, Ok(series)) = req.field()? else {
            continue;
        };
        labels.clear();
        samples.clear();
        let mut ts = Pb { buf: series };
        while !ts.buf.is_empty() {
            match ts.field()? {
                (1, Ok(label)) => {
                    let mut l = Pb { buf: label };
                    let (mut name, mut value) = ("", "");
                    while !l.buf.is_empty() {
                        match l.field()? {
                            (1, Ok(b)) => name = std::str::from_utf8(b).ok()?,
                            (2, Ok(b)) => value = std::str::from_utf8(b).ok()?,
                            _ => {}
                        }
                    }
                    labels.push((name, value));
                }
                (2, Ok(sample)) => {
                    let mut s = Pb { buf: sample };
                    let (mut t, mut v) = (0i64, 0f64);
                    while !s.buf.is_empty() {
                        match s.field()? {
                            (1, Err(bits)) => v = f64::from_bits(bits),
                            (2, Err(x)) => t = x as i64,
                            _ => {}
                        }
                    }
                    samples.push((t, v));
                }
                _ => {}
            }
        }
        let id = db.intern(labels.iter().copied()).ok()?;
        rows.extend(samples.iter().map(|&(t, v)| Row::new(id, t, v)));
    }
    Some(())
}

fn ingest(c: &mut Criterion) {
    // Two rounds of every group, so that the measured appends meet known series.
    let bodies: Vec<Vec<u8>> = (0..GROUPS * 4)
        .map(|n| body(n % GROUPS, (n / GROUPS) as i64))
        .collect();
    let mean = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    eprintln!("remote-write body: {mean} bytes compressed on average");
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(
        (PER_REQUEST * SAMPLES * GROUP_COMMIT) as u64,
    ));
    for (name, sync) in [
        ("decode_intern_append_fsync", SyncPolicy::Always),
        ("decode_intern_append_no_sync", SyncPolicy::Never),
    ] {
        group.bench_function(name, |b| {
            let dir = tempfile::tempdir().unwrap();
            let (mut db, _) = Tsdb::open(
                dir.path(),
                TsdbOptions {
                    sync,
                    ..TsdbOptions::default()
                },
            )
            .unwrap();
            let mut decoder = snap::raw::Decoder::new();
            let mut raw: Vec<Vec<u8>> = vec![Vec::new(); GROUP_COMMIT];
            let mut rows: Vec<Vec<Row>> = vec![Vec::new(); GROUP_COMMIT];
            let mut n = 0usize;
            let mut round = 0i64;
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    // Keep timestamps advancing past the prepared rounds: shift them
                    // per lap instead of building new bodies inside the timing.
                    let t = Instant::now();
                    for k in 0..GROUP_COMMIT {
                        let body = &bodies[n % bodies.len()];
                        if n > 0 && n % bodies.len() == 0 {
                            round += 1;
                        }
                        n += 1;
                        let len = snap::raw::decompress_len(body).unwrap();
                        raw[k].resize(len, 0);
                        decoder.decompress(body, &mut raw[k]).unwrap();
                        rows[k].clear();
                        decode_into(&raw[k], &mut db, &mut rows[k]).unwrap();
                        let shift = round * 4 * SAMPLES as i64 * 1000;
                        for r in &mut rows[k] {
                            r.timestamp_ms += shift;
                        }
                    }
                    let refs: Vec<&[Row]> = rows.iter().map(Vec::as_slice).collect();
                    let out = db.append_group(&refs).unwrap();
                    black_box(out);
                    let closed = db.take_closed();
                    let metas: Vec<_> = closed.iter().map(|c| c.meta).collect();
                    db.mark_persisted(&metas).unwrap();
                    spent += t.elapsed();
                }
                spent
            });
        });
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
