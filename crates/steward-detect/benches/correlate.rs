//! The correlator under a flood: anomalies from many series that all share their
//! `env` and `job` labels (issue 10's remote-write load, a detector on every series),
//! so every one joins the same open incident.
//!
//! `cargo bench -p steward-detect --bench correlate -- [anomalies] [seconds]`
//!
//! Feeds `anomalies` (default 50,000) through `Correlator::observe` and prints the
//! time taken at checkpoints; stops early once `seconds` (default 300) have passed,
//! so the quadratic correlator this replaced can be timed too. Not criterion: one
//! pass is the measurement, and the first correlator took minutes for it.
// The figures are a report for people.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use steward_core::{Anomaly, AnomalyKind, SeriesKey};
use steward_detect::{Correlator, CorrelatorConfig, IncidentEvent};

/// The `i`-th anomaly of the flood: one per series, onsets over five minutes with a
/// little disorder (detectors on different series report a few seconds apart).
fn flood(i: u64) -> (Anomaly, BTreeMap<String, String>) {
    let series = SeriesKey::new("node_network_receive_bytes_total")
        .with_label("env", "prod")
        .with_label("job", "node")
        .with_label("instance", format!("10.0.{}.{}:9100", i / 250, i % 250))
        .with_label("device", format!("eth{}", i % 4));
    let jitter = i64::try_from((i * 7_919) % 5_000).unwrap_or(0);
    let start = 1_700_000_000_000 + i64::try_from(i * 6).unwrap_or(0) + jitter;
    let anomaly = Anomaly {
        series,
        kind: AnomalyKind::Spike,
        start_ms: start,
        end_ms: start + 60_000,
        score: 0.75,
        reason: "spike".into(),
    };
    let mut extra = BTreeMap::new();
    extra.insert("kind".to_string(), "spike".to_string());
    (anomaly, extra)
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    // Test runners (cargo-nextest with `--all-targets`) ask every bench binary what it
    // holds, libtest's way: this one holds one benchmark and no test.
    if raw.iter().any(|a| a == "--list") {
        if !raw.iter().any(|a| a == "--ignored") {
            println!("flood: benchmark");
        }
        return;
    }
    let args: Vec<u64> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let total = args.first().copied().unwrap_or(50_000);
    let budget = Duration::from_secs(args.get(1).copied().unwrap_or(300));
    let inputs: Vec<_> = (0..total).map(flood).collect();
    let mut c = Correlator::new(CorrelatorConfig::default());
    let mut events = 0usize;
    let mut carried = 0usize;
    let started = Instant::now();
    let mut last = started;
    for (i, (a, l)) in inputs.into_iter().enumerate() {
        for e in c.observe(a, &l) {
            events += 1;
            if let IncidentEvent::Opened(inc) | IncidentEvent::Grew(inc) = &e {
                carried += inc.members.len();
            }
        }
        let done = i + 1;
        if done % 5_000 == 0 || done as u64 == total {
            let now = Instant::now();
            println!(
                "{done:>7} anomalies: {:>9.3} s total, last 5,000 at {:>8.2} µs each",
                (now - started).as_secs_f64(),
                (now - last).as_secs_f64() * 1e6 / 5_000.0
            );
            last = now;
            if now - started > budget {
                println!("stopped: over the {} s budget", budget.as_secs());
                break;
            }
        }
    }
    let observed = started.elapsed();
    let open: Vec<_> = c.open_incidents().cloned().collect();
    let t = Instant::now();
    let resolved = c.tick(i64::MAX / 2);
    println!(
        "observe: {:.3} s; {} open incident(s), {} stored member(s); {events} event(s) carrying {carried} member copies; resolve and learn: {:.3} s ({} resolved)",
        observed.as_secs_f64(),
        open.len(),
        open.iter().map(|i| i.members.len()).sum::<usize>(),
        t.elapsed().as_secs_f64(),
        resolved.len(),
    );
}
