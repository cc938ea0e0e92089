//! Log records and their levels.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TimestampMs;

/// The level a log line was written at, normalised across formats.
///
/// Formats spell levels many ways (`WARN`, `warning`, `W`, syslog severities 0–7, OTLP
/// severity numbers 1–24); every reader maps them onto these six.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Fine-grained tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the program survived.
    Warn,
    /// An operation failed.
    Error,
    /// The program or a component cannot go on.
    Fatal,
}

impl LogLevel {
    /// The level as steward prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }

    /// Maps an OpenTelemetry severity number (1–24) onto a level.
    pub fn from_otlp_severity(number: i32) -> Option<LogLevel> {
        Some(match number {
            1..=4 => LogLevel::Trace,
            5..=8 => LogLevel::Debug,
            9..=12 => LogLevel::Info,
            13..=16 => LogLevel::Warn,
            17..=20 => LogLevel::Error,
            21..=24 => LogLevel::Fatal,
            _ => return None,
        })
    }

    /// Maps a syslog severity (0 emergency … 7 debug) onto a level.
    pub fn from_syslog_severity(severity: u8) -> Option<LogLevel> {
        Some(match severity {
            0..=2 => LogLevel::Fatal,
            3 => LogLevel::Error,
            4 => LogLevel::Warn,
            5 | 6 => LogLevel::Info,
            7 => LogLevel::Debug,
            _ => return None,
        })
    }

    /// True for warn, error and fatal: the levels whose new templates are events.
    pub fn is_problem(self) -> bool {
        self >= LogLevel::Warn
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a level name that no known spelling matches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?}")]
pub struct UnknownLogLevel(pub String);

impl FromStr for LogLevel {
    type Err = UnknownLogLevel;

    /// Accepts the spellings seen in the wild, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "trace" | "trc" | "t" | "finest" | "finer" => LogLevel::Trace,
            "debug" | "dbg" | "d" | "fine" | "verbose" => LogLevel::Debug,
            "info" | "inf" | "i" | "information" | "informational" | "notice" | "normal" => {
                LogLevel::Info
            }
            "warn" | "warning" | "wrn" | "w" => LogLevel::Warn,
            "error" | "err" | "e" | "severe" | "failure" | "fail" => LogLevel::Error,
            "fatal" | "critical" | "crit" | "emerg" | "emergency" | "alert" | "panic" | "f" => {
                LogLevel::Fatal
            }
            _ => return Err(UnknownLogLevel(s.to_string())),
        })
    }
}

/// One log record, whatever format it arrived in.
///
/// `body` is the message a template miner reads: for a Loghub-style line it is the
/// `Content` field after the header, for JSON the message field, for OTLP the body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogRecord {
    /// When the record was written, if the format says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<TimestampMs>,
    /// The service that wrote it (OTLP `service.name`, a config label, or the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The level, if the format carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    /// The message itself.
    pub body: String,
    /// Every other field the format carried (header fields, JSON keys, OTLP attributes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl LogRecord {
    /// A record with only a body.
    pub fn from_body(body: impl Into<String>) -> LogRecord {
        LogRecord {
            body: body.into(),
            ..LogRecord::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_spellings_map_to_levels() {
        assert_eq!("WARNING".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert_eq!("crit".parse::<LogLevel>(), Ok(LogLevel::Fatal));
        assert_eq!("Info".parse::<LogLevel>(), Ok(LogLevel::Info));
        assert!("loud".parse::<LogLevel>().is_err());
    }

    #[test]
    fn otlp_and_syslog_severities_map_to_levels() {
        assert_eq!(LogLevel::from_otlp_severity(17), Some(LogLevel::Error));
        assert_eq!(LogLevel::from_otlp_severity(0), None);
        assert_eq!(LogLevel::from_syslog_severity(4), Some(LogLevel::Warn));
        assert!(LogLevel::Warn.is_problem() && !LogLevel::Info.is_problem());
    }
}
