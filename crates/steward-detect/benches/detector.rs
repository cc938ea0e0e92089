//! The streaming detector's speed on a long series, and its memory per series.
//!
//! `cargo bench -p steward-detect --bench detector`
// The memory figure is a report for people, printed beside criterion's own output.
#![allow(clippy::print_stderr)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use steward_detect::{DetectorConfig, StreamingDetector};

/// A long 5-minute series with a daily wave, noise, and a few spikes and shifts.
fn series(len: usize) -> Vec<(i64, f64)> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let t = i as f64 / 288.0;
            let wave = 10.0 * (2.0 * std::f64::consts::PI * t).sin();
            let shift = if (i / 50_000) % 2 == 1 { 5.0 } else { 0.0 };
            let spike = if i % 9_973 == 0 { 30.0 } else { 0.0 };
            (i as i64 * 300_000, 100.0 + wave + noise + shift + spike)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let len = 1_000_000;
    let data = series(len);
    let mut group = c.benchmark_group("streaming_detector");
    group.throughput(Throughput::Elements(len as u64));
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("update", len), &data, |b, data| {
        b.iter(|| {
            let mut d = StreamingDetector::new(DetectorConfig::default());
            let mut acc = 0.0;
            for &(t, v) in data {
                acc += d.update(t, v).score;
            }
            acc
        });
    });
    group.finish();
    let mut d = StreamingDetector::new(DetectorConfig::default());
    for &(t, v) in &data {
        d.update(t, v);
    }
    eprintln!(
        "memory per series after {len} points: {} bytes",
        d.state_bytes()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
