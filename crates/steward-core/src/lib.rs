//! steward's shared vocabulary.
//!
//! Every job crate speaks in these types: a [`LogRecord`] is one log line or OTLP log
//! record, a [`Sample`] one point of a [`SeriesKey`], an [`Anomaly`] what a detector
//! found in one series, an [`Incident`] what the correlator made of many anomalies, and
//! a [`Finding`] one result of an audit or a tuning run. [`config`] holds the one
//! configuration every command reads.
//!
//! **Architecture Invariant:** this crate imports no other steward crate and does no
//! I/O beyond reading the configuration file it is handed.
#![deny(missing_docs)]

pub mod config;
mod finding;
mod incident;
mod log;
mod series;

pub use finding::{Finding, Location, Severity};
pub use incident::{Anomaly, AnomalyKind, Incident, IncidentStatus};
pub use log::{LogLevel, LogRecord};
pub use series::{Sample, SeriesKey};

/// Milliseconds since the Unix epoch, UTC: the one clock every record carries.
pub type TimestampMs = i64;
