//! Metric series and their points.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TimestampMs;

/// The identity of one time series: a metric name and a sorted label set, as
/// Prometheus names them (`http_requests_total{service="cart",code="500"}`).
///
/// Log-template rates are series too: their name is `steward_template_rate` and their
/// labels carry the service and the template id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The metric name.
    pub name: String,
    /// Labels, sorted by name so that equal sets compare and hash equal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl SeriesKey {
    /// A key with no labels.
    pub fn new(name: impl Into<String>) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    /// The same key with one more label.
    #[must_use]
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> SeriesKey {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// The value of a label, if the key has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

impl fmt::Display for SeriesKey {
    /// Prints the key in Prometheus's exposition syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (name, value)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}=\"")?;
            for c in value.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the value was observed.
    pub timestamp_ms: TimestampMs,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A point at a time.
    pub fn new(timestamp_ms: TimestampMs, value: f64) -> Sample {
        Sample {
            timestamp_ms,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prints_as_prometheus_selector() {
        let key = SeriesKey::new("up")
            .with_label("job", "api")
            .with_label("instance", "a\"b");
        assert_eq!(key.to_string(), r#"up{instance="a\"b",job="api"}"#);
        assert_eq!(SeriesKey::new("up").to_string(), "up");
    }
}
