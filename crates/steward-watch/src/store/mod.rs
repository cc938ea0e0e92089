//! Storage: raw logs, series points, templates, anomalies and incidents.
//!
//! [`Store`] is what the rest of the service writes to and reads from; [`sqlite`] is the
//! embedded implementation in the data directory, [`postgres`] the shared one. Writes
//! come in batches from one thread at a time (the [`writer`]), so an implementation can
//! make each batch one transaction; a batch is durable when [`Store::append`] returns,
//! which is what lets the ingest paths acknowledge only what is stored.
//!
//! Metric points do not go through [`Store::append`]: [`metrics::MetricStore`] keeps
//! them in steward-tsdb's head behind its write-ahead log (the acknowledgement point)
//! and hands closed Gorilla chunks to the store as one blob each
//! ([`Store::save_chunks`]). The service reads through the `MetricStore`, which
//! answers points from persisted chunks plus the open head.
//!
//! **Architecture Invariant:** a label set is interned to a [`SeriesId`] once, by
//! steward-tsdb; the store's series table copies those ids ([`Store::define_series`]);
//! points travel and are stored by id.

pub mod metrics;
pub mod persister;
pub mod postgres;
pub mod sqlite;
pub mod writer;

use serde::{Deserialize, Serialize};
use steward_core::{Anomaly, Incident, IncidentStatus, LogRecord, SeriesKey, TimestampMs};

/// The compact id a series key is interned to.
pub type SeriesId = i64;

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// A stored value could not be (de)serialised.
    #[error("stored value: {0}")]
    Json(#[from] serde_json::Error),
    /// The store's lock was poisoned by a panic elsewhere.
    #[error("store lock poisoned")]
    Poisoned,
    /// The writer thread could not store a batch; the message is the store's error.
    #[error("store write failed: {0}")]
    Write(String),
    /// The writer thread has stopped.
    #[error("the store writer has stopped")]
    WriterGone,
    /// The writer's queue is full: the pipeline or the disk is behind. Nothing was
    /// stored; the client should send the request again later.
    #[error("ingest is behind; retry later")]
    Busy,
    /// The time-series head or its write-ahead log failed.
    #[error("time-series store: {0}")]
    Tsdb(#[from] steward_tsdb::TsdbError),
}

/// Records to store in one transaction.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Raw log records.
    pub logs: Vec<LogRecord>,
}

/// One closed Gorilla chunk of a series, stored as one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    /// The series.
    pub series: SeriesId,
    /// Its first timestamp.
    pub min_ts: TimestampMs,
    /// Its last timestamp.
    pub max_ts: TimestampMs,
    /// How many samples it holds.
    pub samples: u32,
    /// The encoded chunk (steward-tsdb's XOR chunk format).
    pub bytes: Vec<u8>,
}

/// A stored log record and its row id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLog {
    /// The row id: increases with arrival.
    pub id: i64,
    /// The record.
    #[serde(flatten)]
    pub record: LogRecord,
}

/// A search over raw logs. Every field narrows it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogQuery {
    /// Text the body must contain (case-insensitive for ASCII).
    pub q: Option<String>,
    /// The service that wrote it.
    pub service: Option<String>,
    /// The lowest level.
    pub level: Option<String>,
    /// Earliest timestamp, inclusive (ms).
    pub from: Option<TimestampMs>,
    /// Latest timestamp, exclusive (ms).
    pub to: Option<TimestampMs>,
    /// The most records returned, newest first (default 100, at most 10 000).
    pub limit: Option<usize>,
}

/// A series, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesInfo {
    /// Its id.
    pub id: SeriesId,
    /// Its key.
    pub key: SeriesKey,
    /// Prometheus syntax of the key.
    pub selector: String,
    /// Number of stored points.
    pub points: u64,
    /// Timestamp of the last point.
    pub last_ms: Option<TimestampMs>,
    /// Value of the last point.
    pub last_value: Option<f64>,
}

/// One point of a series and, where the detectors have seen it, its expected band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// When.
    pub timestamp_ms: TimestampMs,
    /// The value.
    pub value: f64,
    /// What the detector expected, if it has scored this point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    /// For a downsampled point (one per step, `value` the step's mean): the step's
    /// smallest value, so a dip between points stays visible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// For a downsampled point: the step's largest value (a spike stays visible).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// For a downsampled point: how many samples the step holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// Points of one series over a range, raw or one per step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoints {
    /// The step the points were rolled up to, in ms; `None` when they are the raw
    /// samples.
    pub step_ms: Option<i64>,
    /// The points, oldest first.
    pub points: Vec<Point>,
}

/// A detector's view of one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// The expected value.
    pub expected: f64,
    /// The lower edge of the normal band.
    pub lower: f64,
    /// The upper edge.
    pub upper: f64,
    /// The anomaly score in `[0, 1]`.
    pub score: f64,
}

/// A log template as the miner knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRow {
    /// The miner's id.
    pub id: u64,
    /// The template text, parameters as `<*>`.
    pub text: String,
    /// The highest level a record of it was written at.
    pub level: Option<String>,
    /// Records matched so far.
    pub count: u64,
    /// One raw record that matched.
    pub sample: String,
    /// The services that wrote it.
    pub services: Vec<String>,
    /// First record's timestamp.
    pub first_seen_ms: TimestampMs,
    /// Last record's timestamp.
    pub last_seen_ms: TimestampMs,
}

/// A stored anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAnomaly {
    /// The series it was found in, if interned.
    pub series_id: Option<SeriesId>,
    /// The incident it belongs to, once correlated.
    pub incident_id: Option<u64>,
    /// The anomaly.
    #[serde(flatten)]
    pub anomaly: Anomaly,
}

/// What the pipeline writes at once: its findings and its state.
#[derive(Debug, Default)]
pub struct AnalysisBatch {
    /// Templates that changed.
    pub templates: Vec<TemplateRow>,
    /// Detector bands of points (the pipeline keeps about one per series per minute).
    pub bands: Vec<(SeriesId, TimestampMs, Band)>,
    /// Anomalies opened or extended (matched by series and start).
    pub anomalies: Vec<StoredAnomaly>,
    /// Incidents opened or changed (matched by id).
    pub incidents: Vec<Incident>,
    /// Named state blobs (the miner's snapshot, detector state).
    pub state: Vec<(String, Vec<u8>)>,
}

/// Counts of what a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Raw log records.
    pub logs: u64,
    /// Series.
    pub series: u64,
    /// Points.
    pub samples: u64,
}

/// A place the service keeps its data. Implementations are used from blocking
/// threads; every write method is one transaction, durable when it returns.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Stores raw logs; returns the id of the last log row written, if any.
    fn append(&self, batch: &WriteBatch) -> Result<Option<i64>, StoreError>;
    /// Log rows with ids above `after`, oldest first, at most `limit`: what the
    /// pipeline replays after a restart.
    fn logs_after(&self, after: i64, limit: usize) -> Result<Vec<StoredLog>, StoreError>;
    /// The ids of these keys, creating those not seen before. Only the
    /// [`metrics::MetricStore`] interns; a plain store answers from its series table
    /// and refuses keys it does not know.
    fn intern(&self, keys: &[&SeriesKey]) -> Result<Vec<SeriesId>, StoreError> {
        let _ = keys;
        Err(StoreError::Write(
            "series are interned by the metric store".into(),
        ))
    }
    /// Copies series definitions (ids given by steward-tsdb's interner); an id
    /// already defined is left as it is.
    fn define_series(&self, defs: &[(SeriesId, SeriesKey)]) -> Result<(), StoreError>;
    /// The highest series id defined, if any.
    fn highest_series_id(&self) -> Result<Option<SeriesId>, StoreError>;
    /// Stores closed chunks in one transaction (a chunk stored again replaces itself).
    fn save_chunks(&self, chunks: &[StoredChunk]) -> Result<(), StoreError>;
    /// The chunks of one series that overlap `[from, to)`, oldest first.
    fn chunks(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<StoredChunk>, StoreError>;
    /// The stored detector bands of one series in `[from, to)`.
    fn bands(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<(TimestampMs, Band)>, StoreError>;
    /// Stores the pipeline's findings and state.
    fn save_analysis(&self, batch: &AnalysisBatch) -> Result<(), StoreError>;
    /// A named state blob.
    fn state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Raw logs matching a query, newest first.
    fn search_logs(&self, query: &LogQuery) -> Result<Vec<StoredLog>, StoreError>;
    /// Series whose name contains `name` and that carry every given label, up to `limit`.
    fn series(
        &self,
        name: Option<&str>,
        labels: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<SeriesInfo>, StoreError>;
    /// One series' key.
    fn series_key(&self, id: SeriesId) -> Result<Option<SeriesKey>, StoreError>;
    /// Points of one series in `[from, to)`, oldest first: the raw samples when there
    /// are at most `max_points`, else downsampled to at most `max_points` steps (see
    /// [`Store::points_by_step`]).
    fn points(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
        max_points: usize,
    ) -> Result<Vec<Point>, StoreError> {
        Ok(self.points_by_step(id, from, to, None, max_points)?.points)
    }
    /// Points of one series in `[from, to)`, oldest first. With `step_ms`, one point per
    /// step that holds samples (its mean, min, max and count); without, the raw samples
    /// when there are at most `max_points`, else one point per step of the smallest
    /// step that gives at most `max_points`. A plain store answers from its persisted
    /// chunks; the [`metrics::MetricStore`] adds the open head.
    fn points_by_step(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
        step_ms: Option<i64>,
        max_points: usize,
    ) -> Result<SeriesPoints, StoreError> {
        let chunks = self.chunks(id, from, to)?;
        let bands = self.bands(id, from, to)?;
        Ok(metrics::points_of(
            &chunks, None, &bands, from, to, step_ms, max_points,
        ))
    }
    /// Templates, most frequent first.
    fn templates(&self, limit: usize) -> Result<Vec<TemplateRow>, StoreError>;
    /// One template.
    fn template(&self, id: u64) -> Result<Option<TemplateRow>, StoreError>;
    /// Anomalies that overlap `[from, to)`, newest first.
    fn anomalies(
        &self,
        from: TimestampMs,
        to: TimestampMs,
        limit: usize,
    ) -> Result<Vec<StoredAnomaly>, StoreError>;
    /// Incidents, newest first, optionally only open or resolved ones.
    fn incidents(
        &self,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError>;
    /// One incident.
    fn incident(&self, id: u64) -> Result<Option<Incident>, StoreError>;
    /// Deletes raw logs older than `before`; returns how many.
    fn prune_logs(&self, before: TimestampMs) -> Result<u64, StoreError>;
    /// What the store holds.
    fn stats(&self) -> Result<StoreStats, StoreError>;
}
