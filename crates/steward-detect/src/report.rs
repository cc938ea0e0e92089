//! A whole series through the detector: every point's score and the anomalous windows.

use serde::Serialize;
use steward_core::{Anomaly, AnomalyKind, Sample, SeriesKey};

use crate::detector::{DetectorConfig, PointScore, StreamingDetector};

/// Every point's verdict, and the anomalies found.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionReport {
    /// One verdict per input sample, in order.
    pub points: Vec<PointScore>,
    /// Runs of anomalous points, earliest first.
    pub anomalies: Vec<Anomaly>,
    /// The score from which a point is anomalous.
    pub threshold: f64,
}

/// How many quiet points may separate two anomalous ones of the same window.
const MAX_GAP: usize = 3;

/// Runs a fresh detector over `samples` and groups points scoring at least `threshold`
/// into anomalies; each anomaly's kind and reason are those of its highest point.
pub fn detect_series(
    series: &SeriesKey,
    samples: &[Sample],
    config: &DetectorConfig,
    threshold: f64,
) -> DetectionReport {
    let mut detector = StreamingDetector::new(config.clone());
    let points: Vec<PointScore> = samples
        .iter()
        .map(|s| detector.update(s.timestamp_ms, s.value))
        .collect();
    let mut anomalies: Vec<Anomaly> = Vec::new();
    let mut last_hit: Option<usize> = None;
    for (i, p) in points.iter().enumerate() {
        if p.score < threshold {
            continue;
        }
        let ts = samples[i].timestamp_ms;
        let joins = last_hit.is_some_and(|j| i - j <= MAX_GAP + 1);
        let reason = p.reason.clone().unwrap_or_else(|| {
            let dir = if samples[i].value >= p.expected {
                "above"
            } else {
                "below"
            };
            format!(
                "{:.4} {dir} the expected {:.4}",
                samples[i].value, p.expected
            )
        });
        let kind = p.kind.unwrap_or(if samples[i].value >= p.expected {
            AnomalyKind::Spike
        } else {
            AnomalyKind::Dip
        });
        match anomalies.last_mut() {
            Some(a) if joins => {
                a.end_ms = ts;
                if p.score > a.score {
                    a.score = p.score;
                    a.kind = kind;
                    a.reason = reason;
                }
            }
            _ => anomalies.push(Anomaly {
                series: series.clone(),
                kind,
                start_ms: ts,
                end_ms: ts,
                score: p.score,
                reason,
            }),
        }
        last_hit = Some(i);
    }
    DetectionReport {
        points,
        anomalies,
        threshold,
    }
}
