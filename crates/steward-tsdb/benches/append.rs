//! Append throughput on one core and bytes per sample, under issue 10's load shape:
//! 96,000 series with six labels, batches of 1,000 series × 10 samples.
//!
//! `cargo bench -p steward-tsdb --bench append`
//!
//! Besides criterion's timings, the bench prints (to stderr) the encoded bytes per
//! sample for several kinds of data and the head's memory per series.

#![allow(clippy::print_stderr, clippy::unwrap_used)] // a bench reports on stderr and may fail loudly

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use steward_tsdb::{
    ChunkAppender, ChunkIter, ChunkLimits, Head, Row, SeriesInterner, SyncPolicy, Tsdb, TsdbOptions,
};

const SERIES: usize = 96_000;
const PER_REQUEST: usize = 1_000;
const SAMPLES: usize = 10;
const GROUPS: usize = SERIES / PER_REQUEST;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// The label set of series `s`, as the load generator sends it.
fn labels(s: usize) -> Vec<(String, String)> {
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
    vec![
        ("__name__".into(), NAMES[s % NAMES.len()].into()),
        ("env".into(), "production".into()),
        (
            "instance".into(),
            format!("10.{}.{}.{}:9100", (s / 2560) % 256, (s / 10) % 256, s % 10),
        ),
        ("job".into(), "node-exporter".into()),
        (
            "pod".into(),
            format!(
                "api-{}-{:05x}",
                (s / 10) % 97,
                (s / 10).wrapping_mul(2_654_435_761) % 0xfffff
            ),
        ),
        (
            "region".into(),
            ["eu-west-1", "us-east-1", "ap-south-1"][s % 3].into(),
        ),
    ]
}

/// The load generator's values: counters rise, gauges wander over small integers.
fn value(s: usize, step: i64) -> f64 {
    if s % 2 == 0 {
        (step as u64).wrapping_mul(1 + s as u64 % 7) as f64
    } else {
        (mix(s as u64 ^ (step as u64 / 2)) % 1000) as f64
    }
}

/// Fills `rows` with round `round` of group `g`: 1,000 series × 10 samples, 1 s apart.
fn fill(rows: &mut Vec<Row>, g: usize, round: i64) {
    rows.clear();
    let t0 = 1_700_000_000_000 + round * SAMPLES as i64 * 1000;
    for i in 0..PER_REQUEST {
        let s = g * PER_REQUEST + i;
        for k in 0..SAMPLES as i64 {
            let step = round * SAMPLES as i64 + k;
            rows.push(Row::new(s as u32, t0 + k * 1000, value(s, step)));
        }
    }
}

fn head_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements((PER_REQUEST * SAMPLES) as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));

    group.bench_function(BenchmarkId::new("head", "1000x10"), |b| {
        let mut head = Head::new(ChunkLimits::default());
        head.set_series_bound(SERIES);
        let mut rows = Vec::with_capacity(PER_REQUEST * SAMPLES);
        let mut n = 0usize;
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                fill(&mut rows, n % GROUPS, (n / GROUPS) as i64);
                n += 1;
                let t = Instant::now();
                black_box(head.append(&rows, 0));
                // The store takes closed chunks as they come.
                black_box(head.take_closed());
                spent += t.elapsed();
            }
            spent
        });
    });

    for (name, sync, group_of) in [
        ("tsdb_no_sync", SyncPolicy::Never, 1),
        ("tsdb_fsync_group8", SyncPolicy::Always, 8),
    ] {
        group.throughput(Throughput::Elements(
            (PER_REQUEST * SAMPLES * group_of) as u64,
        ));
        group.bench_function(BenchmarkId::new(name, format!("{group_of}x1000x10")), |b| {
            let dir = tempfile::tempdir().unwrap();
            let (mut db, _) = Tsdb::open(
                dir.path(),
                TsdbOptions {
                    sync,
                    ..TsdbOptions::default()
                },
            )
            .unwrap();
            for s in 0..SERIES {
                let l = labels(s);
                db.intern(l.iter().map(|(a, b)| (a.as_str(), b.as_str())))
                    .unwrap();
            }
            db.sync().unwrap();
            let mut batches: Vec<Vec<Row>> =
                vec![Vec::with_capacity(PER_REQUEST * SAMPLES); group_of];
            let mut n = 0usize;
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    for rows in &mut batches {
                        fill(rows, n % GROUPS, (n / GROUPS) as i64);
                        n += 1;
                    }
                    let refs: Vec<&[Row]> = batches.iter().map(Vec::as_slice).collect();
                    let t = Instant::now();
                    black_box(db.append_group(&refs).unwrap());
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

fn intern(c: &mut Criterion) {
    let sets: Vec<Vec<(String, String)>> = (0..SERIES).map(labels).collect();
    let mut interner = SeriesInterner::new();
    for l in &sets {
        interner
            .intern(l.iter().map(|(a, b)| (a.as_str(), b.as_str())))
            .unwrap();
    }
    eprintln!(
        "interner: {} series, {:.0} bytes per series (arena and tables)",
        interner.len(),
        interner.heap_bytes() as f64 / interner.len() as f64
    );
    // The decoder's view: pairs borrowed from one contiguous body, as a remote-write
    // request's label bytes are (separate heap strings would measure cache misses).
    let mut text = String::new();
    let mut spans = Vec::new();
    for l in &sets {
        for (a, b) in l {
            let a0 = text.len();
            text.push_str(a);
            let b0 = text.len();
            text.push_str(b);
            spans.push((a0..b0, b0..text.len()));
        }
    }
    let borrowed: Vec<Vec<(&str, &str)>> = spans
        .chunks(6)
        .map(|c| {
            c.iter()
                .map(|(a, b)| (&text[a.clone()], &text[b.clone()]))
                .collect()
        })
        .collect();
    let mut group = c.benchmark_group("intern");
    group.throughput(Throughput::Elements(PER_REQUEST as u64));
    group.bench_function("hit_1000_six_labels", |b| {
        let mut g = 0;
        b.iter(|| {
            g = (g + 1) % GROUPS;
            let mut acc = 0u64;
            for l in &borrowed[g * PER_REQUEST..(g + 1) * PER_REQUEST] {
                acc += u64::from(interner.intern(l.iter().copied()).unwrap().id());
            }
            acc
        });
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk");
    let samples: Vec<(i64, f64)> = (0..120)
        .map(|i| (1_700_000_000_000 + i * 15_000, value(1, i)))
        .collect();
    group.throughput(Throughput::Elements(120));
    group.bench_function("encode_120", |b| {
        b.iter(|| {
            let mut c = ChunkAppender::new();
            for &(t, v) in &samples {
                c.append(t, v).unwrap();
            }
            c.to_bytes()
        });
    });
    let mut c120 = ChunkAppender::new();
    for &(t, v) in &samples {
        c120.append(t, v).unwrap();
    }
    let bytes = c120.to_bytes();
    group.bench_function("decode_120", |b| {
        b.iter(|| {
            ChunkIter::new(black_box(&bytes))
                .map(|s| s.unwrap().1)
                .sum::<f64>()
        });
    });
    group.finish();
}

/// A series' value at a step.
type ValueFn = fn(usize, i64) -> f64;

/// Bytes per sample of full 120-sample chunks for several kinds of data.
fn report_sizes() {
    let kinds: [(&str, i64, ValueFn); 5] = [
        ("loadgen mix (counters + integer gauges), 1 s", 1_000, value),
        ("counter +1..7 per step, 15 s", 15_000, |s, i| {
            (i as u64 * (1 + s as u64 % 7)) as f64
        }),
        ("constant, 15 s", 15_000, |_, _| 1.0),
        ("gauge of 2-decimal floats, 15 s", 15_000, |s, i| {
            (mix(s as u64 ^ i as u64) % 10_000) as f64 / 100.0
        }),
        ("random f64 bits, 15 s", 15_000, |s, i| {
            f64::from_bits(mix(s as u64 * 1_000_003 + i as u64) >> 2)
        }),
    ];
    for (name, step, f) in kinds {
        let (mut bytes, mut n) = (0usize, 0usize);
        for s in 0..1_000 {
            let mut c = ChunkAppender::new();
            for i in 0..120 {
                // 1 % of samples scrape late by a few ms, as real scrapes do.
                let jitter = if mix(s as u64 * 31 + i as u64) % 100 == 0 {
                    7
                } else {
                    0
                };
                c.append(1_700_000_000_000 + i * step + jitter, f(s, i))
                    .unwrap();
            }
            bytes += c.to_bytes().len();
            n += 120;
        }
        eprintln!("bytes per sample, {name}: {:.2}", bytes as f64 / n as f64);
    }
    let mut head = Head::new(ChunkLimits::default());
    head.set_series_bound(SERIES);
    let mut rows = Vec::new();
    for n in 0..GROUPS * 6 {
        fill(&mut rows, n % GROUPS, (n / GROUPS) as i64);
        head.append(&rows, 0);
    }
    head.take_closed();
    eprintln!(
        "head: {} open chunks of 60 samples, {:.0} bytes per series",
        head.open_chunks(),
        head.heap_bytes() as f64 / SERIES as f64
    );
}

/// How fast a log replays on open (the restart after `kill -9`), and its bytes per sample.
fn report_replay() {
    let dir = tempfile::tempdir().unwrap();
    let opts = TsdbOptions {
        sync: SyncPolicy::Never,
        ..TsdbOptions::default()
    };
    let mut samples = 0usize;
    {
        let (mut db, _) = Tsdb::open(dir.path(), opts).unwrap();
        for s in 0..SERIES {
            let l = labels(s);
            db.intern(l.iter().map(|(a, b)| (a.as_str(), b.as_str())))
                .unwrap();
        }
        let mut rows = Vec::new();
        // Six rounds: 60 samples per series, all in open chunks, none persisted.
        for n in 0..GROUPS * 6 {
            fill(&mut rows, n % GROUPS, (n / GROUPS) as i64);
            samples += db.append(&rows).unwrap().appended;
        }
    }
    let wal_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let t = Instant::now();
    let (_db, report) = Tsdb::open(dir.path(), opts).unwrap();
    let spent = t.elapsed().as_secs_f64();
    eprintln!(
        "replay: {} samples of {} series in {spent:.2} s ({:.1} M samples/s); log {:.1} bytes per sample",
        report.samples,
        report.series,
        report.samples as f64 / spent / 1e6,
        wal_bytes as f64 / samples as f64
    );
}

fn all(c: &mut Criterion) {
    report_replay();
    report_sizes();
    codec(c);
    intern(c);
    head_append(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
