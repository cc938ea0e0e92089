//! steward's own health: the counters `/metrics` exposes.
//!
//! Every ingest path, the store writer and the pipeline count what they do here, with
//! relaxed atomics: the numbers are for people and dashboards, not for synchronisation.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a request was refused with a 4xx answer: each reason is a label of
/// `steward_requests_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The body, or what it decompressed to, passed its cap.
    TooLarge,
    /// The body is not valid for its content type.
    Malformed,
    /// A content type or content encoding steward does not read.
    Unsupported,
}

impl RejectReason {
    const ALL: [RejectReason; 3] = [
        RejectReason::TooLarge,
        RejectReason::Malformed,
        RejectReason::Unsupported,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::TooLarge => "too_large",
            RejectReason::Malformed => "malformed",
            RejectReason::Unsupported => "unsupported",
        }
    }
}

/// Upper bounds, in seconds, of the detector latency histogram's buckets (sample
/// acknowledged to sample scored: queueing in the pipeline included).
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The counters. One instance lives for the whole process, shared by `Arc`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Log records accepted and stored.
    pub logs_in: AtomicU64,
    /// Metric samples accepted and stored.
    pub samples_in: AtomicU64,
    /// Log records rejected one by one (reported in partial success).
    pub logs_rejected: AtomicU64,
    /// Samples rejected one by one.
    pub samples_rejected: AtomicU64,
    /// Records or samples that were acknowledged but did not reach the pipeline. Must
    /// stay 0: the pipeline applies backpressure instead.
    pub dropped: AtomicU64,
    /// Ingest requests refused with 503 because the writer's queue was full.
    pub refused: AtomicU64,
    /// Series whose detector state is in memory.
    pub detector_series: AtomicU64,
    /// Detector states evicted to the store (series gone quiet).
    pub detector_evicted: AtomicU64,
    /// Detector states restored from the store.
    pub detector_restored: AtomicU64,
    /// Forecast fits put off because the pipeline's fit budget was spent.
    pub forecasts_deferred: AtomicU64,
    requests_rejected: [AtomicU64; 3],
    /// Batches waiting for the store writer.
    pub write_queue: AtomicU64,
    /// Batches waiting for the pipeline.
    pub pipeline_queue: AtomicU64,
    /// Store transactions committed.
    pub commits: AtomicU64,
    /// Anomalies found.
    pub anomalies: AtomicU64,
    /// Incidents opened.
    pub incidents_opened: AtomicU64,
    /// Webhook deliveries that succeeded.
    pub alerts_sent: AtomicU64,
    /// Webhook deliveries that failed after their retries.
    pub alerts_failed: AtomicU64,
    /// Incident events not sent again because they were already sent.
    pub alerts_deduplicated: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
}

impl Counters {
    /// Counts one request refused for `reason`.
    pub fn reject(&self, reason: RejectReason) {
        let i = RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.requests_rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests were refused for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.requests_rejected[i].load(Ordering::Relaxed))
    }

    /// Records the detector latency of one sample, from acknowledged to scored.
    pub fn observe_detector_latency(&self, elapsed: std::time::Duration) {
        self.observe_detector_latency_n(elapsed, 1);
    }

    /// Records the same detector latency for `n` samples (a series' batch).
    pub fn observe_detector_latency_n(&self, elapsed: std::time::Duration, n: u64) {
        if n == 0 {
            return;
        }
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(n, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(n, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns
            .fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
    }

    /// The detector latency at quantile `q` (0..1), in seconds: the upper bound of the
    /// histogram bucket it falls in (`None` before any sample was scored).
    pub fn detector_latency_quantile(&self, q: f64) -> Option<f64> {
        let count = self.latency_count.load(Ordering::Relaxed);
        if count == 0 {
            return None;
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rank = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(*bound);
            }
        }
        Some(f64::INFINITY)
    }

    /// The counters in Prometheus's text exposition format.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "steward_records_in_total",
            "counter",
            "Records accepted and stored, by kind.",
            &[
                ("{kind=\"log\"}".into(), get(&self.logs_in)),
                ("{kind=\"sample\"}".into(), get(&self.samples_in)),
            ],
        );
        metric(
            "steward_records_rejected_total",
            "counter",
            "Records rejected one by one inside an accepted request, by kind.",
            &[
                ("{kind=\"log\"}".into(), get(&self.logs_rejected)),
                ("{kind=\"sample\"}".into(), get(&self.samples_rejected)),
            ],
        );
        let rejected: Vec<_> = RejectReason::ALL
            .iter()
            .map(|r| (format!("{{reason=\"{}\"}}", r.as_str()), self.rejected(*r)))
            .collect();
        metric(
            "steward_requests_rejected_total",
            "counter",
            "Requests refused with a 4xx answer, by reason.",
            &rejected,
        );
        metric(
            "steward_records_dropped_total",
            "counter",
            "Acknowledged records that did not reach the pipeline (always 0).",
            &[(String::new(), get(&self.dropped))],
        );
        metric(
            "steward_refused_total",
            "counter",
            "Ingest requests refused with 503 and Retry-After because ingest was behind.",
            &[(String::new(), get(&self.refused))],
        );
        metric(
            "steward_detector_series",
            "gauge",
            "Series whose detector state is in memory.",
            &[(String::new(), get(&self.detector_series))],
        );
        metric(
            "steward_detector_states_total",
            "counter",
            "Detector states of quiet series moved to the store and back.",
            &[
                ("{op=\"evicted\"}".into(), get(&self.detector_evicted)),
                ("{op=\"restored\"}".into(), get(&self.detector_restored)),
            ],
        );
        metric(
            "steward_forecasts_deferred_total",
            "counter",
            "Forecast fits put off for a moment because the per-second fit budget was spent.",
            &[(String::new(), get(&self.forecasts_deferred))],
        );
        metric(
            "steward_queue_depth",
            "gauge",
            "Batches waiting, by stage.",
            &[
                ("{stage=\"store\"}".into(), get(&self.write_queue)),
                ("{stage=\"pipeline\"}".into(), get(&self.pipeline_queue)),
            ],
        );
        metric(
            "steward_store_commits_total",
            "counter",
            "Store transactions committed.",
            &[(String::new(), get(&self.commits))],
        );
        metric(
            "steward_anomalies_total",
            "counter",
            "Anomalies found.",
            &[(String::new(), get(&self.anomalies))],
        );
        metric(
            "steward_incidents_opened_total",
            "counter",
            "Incidents opened.",
            &[(String::new(), get(&self.incidents_opened))],
        );
        metric(
            "steward_alerts_total",
            "counter",
            "Webhook deliveries, by outcome.",
            &[
                ("{outcome=\"sent\"}".into(), get(&self.alerts_sent)),
                ("{outcome=\"failed\"}".into(), get(&self.alerts_failed)),
                (
                    "{outcome=\"deduplicated\"}".into(),
                    get(&self.alerts_deduplicated),
                ),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP steward_detector_latency_seconds Time from a sample being acknowledged to its anomaly score.\n# TYPE steward_detector_latency_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += get(bucket);
            let _ = writeln!(
                out,
                "steward_detector_latency_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "steward_detector_latency_seconds_bucket{{le=\"+Inf\"}} {count}\nsteward_detector_latency_seconds_sum {}\nsteward_detector_latency_seconds_count {count}",
            get(&self.latency_sum_ns) as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "# HELP steward_detector_latency_quantile_seconds Detector latency at p50 and p99 (upper bound of the histogram bucket).\n# TYPE steward_detector_latency_quantile_seconds gauge"
        );
        for q in [0.5, 0.99] {
            if let Some(v) = self.detector_latency_quantile(q) {
                let _ = writeln!(
                    out,
                    "steward_detector_latency_quantile_seconds{{quantile=\"{q}\"}} {v}"
                );
            }
        }
        out
    }
}
