//! `steward up --demo`: a built-in generator that plays a small microservice system
//! (frontend, checkout, payments and the orders database) with an injected incident, so
//! a newcomer sees the whole product in about a minute.
//!
//! The scenario covers [`SCENARIO_MINUTES`] minutes of data time ending now, played at
//! one simulated minute per `step` of wall time. At minute [`INCIDENT_MINUTE`] the
//! orders database slows down (checkout's query latency jumps tenfold, and with it the
//! latency of checkout's own API), two minutes later a new error template surges in
//! checkout ("payment failed: database timeout ..."), and from minute [`DISK_MINUTE`]
//! the database's disk fills toward full. The frontend's product pages do not use the
//! orders database and stay fast. After the scenario the generator goes on in real
//! time, one minute of data per minute.
//!
//! Two incidents are expected and nothing else: the slow database (first cause the
//! query latency, with checkout's latency and the new error template as members) and
//! the filling disk (with its exhaustion forecast).

use std::collections::BTreeMap;
use std::time::Duration;

use steward_core::{LogLevel, LogRecord, Sample, SeriesKey, TimestampMs};
use tokio::sync::watch;

use crate::ingest::now_ms;
use crate::store::writer::{Payload, Writer};

/// Minutes of data the scenario plays.
pub const SCENARIO_MINUTES: i64 = 120;
/// The minute the database slows down.
pub const INCIDENT_MINUTE: i64 = 90;
/// The minute the database's disk starts filling.
pub const DISK_MINUTE: i64 = 80;
/// How long the slow-database incident lasts, in minutes.
const INCIDENT_LENGTH: i64 = 12;

/// A small deterministic generator (xorshift64*), so the demo and its tests replay
/// the same data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Roughly normal, mean 0 and deviation 1 (sum of uniforms).
    #[allow(clippy::cast_precision_loss)]
    fn noise(&mut self) -> f64 {
        (0..6)
            .map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64)
            .sum::<f64>()
            - 3.0
    }
}

/// One simulated minute of the system: its logs and metric samples.
#[derive(Debug, Default)]
pub struct Minute {
    /// Log records.
    pub logs: Vec<LogRecord>,
    /// Metric samples.
    pub samples: Vec<(SeriesKey, Sample)>,
}

fn record(ts: TimestampMs, service: &str, level: LogLevel, body: String) -> LogRecord {
    LogRecord {
        timestamp_ms: Some(ts),
        service: Some(service.to_string()),
        level: Some(level),
        body,
        attributes: BTreeMap::new(),
    }
}

/// The scenario, minute by minute. `minute` counts from the scenario's start at
/// `start_ms`; minutes past [`SCENARIO_MINUTES`] go on with normal traffic and the disk
/// still filling.
#[derive(Debug, Clone)]
pub struct Scenario {
    start_ms: TimestampMs,
    rng: Rng,
}

impl Scenario {
    /// A scenario whose first minute begins at `start_ms`.
    pub fn new(start_ms: TimestampMs) -> Scenario {
        Scenario {
            start_ms,
            rng: Rng(0x5EED_CAFE_F00D_u64),
        }
    }

    /// A scenario that ends now.
    pub fn ending_now() -> Scenario {
        let now = now_ms();
        Scenario::new(now - now.rem_euclid(60_000) - SCENARIO_MINUTES * 60_000)
    }

    /// The data of one minute.
    #[allow(clippy::cast_precision_loss)]
    pub fn minute(&mut self, minute: i64) -> Minute {
        let t0 = self.start_ms + minute * 60_000;
        let rng = &mut self.rng;
        let slow_db = (INCIDENT_MINUTE..INCIDENT_MINUTE + INCIDENT_LENGTH).contains(&minute);
        let errors = (INCIDENT_MINUTE + 2..INCIDENT_MINUTE + INCIDENT_LENGTH).contains(&minute);
        let mut out = Minute::default();
        let at = |rng: &mut Rng| t0 + i64::try_from(rng.below(60_000)).unwrap_or(0);

        for _ in 0..40 + rng.below(10) {
            let ms = 20 + rng.below(30);
            let ts = at(rng);
            let body = format!("GET /products/{} 200 {ms} ms", 1000 + rng.below(500));
            out.logs.push(record(ts, "frontend", LogLevel::Info, body));
        }
        let orders = 15 + rng.below(5);
        for _ in 0..orders {
            let ts = at(rng);
            let body = format!(
                "order {} placed by user {}",
                50_000 + rng.below(10_000),
                rng.below(5_000)
            );
            out.logs.push(record(ts, "checkout", LogLevel::Info, body));
        }
        for _ in 0..orders {
            let ts = at(rng);
            let body = format!(
                "charged card ending {:04} amount {}.{:02} EUR",
                rng.below(10_000),
                5 + rng.below(200),
                rng.below(100)
            );
            out.logs.push(record(ts, "payments", LogLevel::Info, body));
        }
        if errors {
            for _ in 0..25 + rng.below(10) {
                let ts = at(rng);
                let body = format!(
                    "payment failed: database timeout after 5000 ms for order {}",
                    50_000 + rng.below(10_000)
                );
                out.logs.push(record(ts, "checkout", LogLevel::Error, body));
            }
        }
        if minute % 5 == 0 {
            let body = format!(
                "checkpoint complete: wrote {} buffers",
                100 + rng.below(900)
            );
            out.logs
                .push(record(t0 + 30_000, "orders-db", LogLevel::Info, body));
        }
        out.logs.sort_by_key(|r| r.timestamp_ms);

        let ts = t0 + 59_000;
        let db_ms = if slow_db {
            240.0 + 20.0 * rng.noise()
        } else {
            12.0 + 1.0 * rng.noise()
        };
        out.samples.push((
            SeriesKey::new("db_query_duration_ms")
                .with_label("service", "checkout")
                .with_label("db", "orders"),
            Sample::new(ts, db_ms),
        ));
        let http_ms = if slow_db {
            350.0 + 30.0 * rng.noise()
        } else {
            45.0 + 3.0 * rng.noise()
        };
        out.samples.push((
            SeriesKey::new("http_server_duration_ms")
                .with_label("service", "checkout")
                .with_label("route", "/api/checkout"),
            Sample::new(ts, http_ms),
        ));
        out.samples.push((
            SeriesKey::new("orders_placed").with_label("service", "checkout"),
            Sample::new(ts, orders as f64),
        ));
        let disk = if minute < DISK_MINUTE {
            0.61 + 0.002 * rng.noise()
        } else {
            // About 0.4% of the disk a minute: full a little over an hour and a half
            // after it starts.
            (0.61 + 0.004 * (minute - DISK_MINUTE) as f64 + 0.001 * rng.noise()).min(1.0)
        };
        out.samples.push((
            SeriesKey::new("disk_usage_ratio")
                .with_label("service", "orders-db")
                .with_label("mount", "/var/lib/postgresql"),
            Sample::new(ts, disk),
        ));
        out
    }
}

/// Plays the scenario into the writer: [`SCENARIO_MINUTES`] minutes at one per `step`,
/// then each minute's data when that minute starts (catching up at once on minutes the
/// playing took), until shutdown. A minute is written whole when it starts, as a
/// client batching a minute would, so its buckets are never closed before its records
/// are in.
pub async fn run(writer: Writer, step: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut scenario = Scenario::ending_now();
    let start_ms = scenario.start_ms;
    for minute in 0.. {
        let data = scenario.minute(minute);
        if writer.write(Payload::Logs(data.logs)).await.is_err()
            || writer.write(Payload::Samples(data.samples)).await.is_err()
        {
            tracing::warn!("demo: the store stopped taking data");
            return;
        }
        if minute + 1 == SCENARIO_MINUTES {
            tracing::info!("demo: scenario played; going on in real time");
        }
        // The played minutes go at `step` each; each later one is written when it
        // starts (at once when its start has already passed).
        let next = minute + 1;
        let wait = if next < SCENARIO_MINUTES {
            step
        } else {
            let starts = start_ms + next * 60_000;
            Duration::from_millis(u64::try_from(starts - now_ms()).unwrap_or(0))
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
