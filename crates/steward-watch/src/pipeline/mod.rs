//! The pipeline: what steward learns from what it stored.
//!
//! One thread takes stored batches from the store writer, in order:
//! logs go through the template miner ([`miner`]) into per-template rates ([`rates`]);
//! those rates and every metric sample go through a streaming detector per series
//! ([`detectors`]) and, for resources, a forecast ([`forecast`]); anomalies go to the
//! correlator ([`correlate`]), whose incident events go to the store and the alert
//! sinks. Findings and state are written back to the store in one transaction about
//! once a second.
//!
//! **Architecture Invariant:** the pipeline only sees records that are already stored,
//! and its input queue is bounded: when it falls behind, ingest slows down; nothing
//! acknowledged is ever dropped.

pub mod correlate;
pub mod detectors;
pub mod forecast;
pub mod miner;
pub mod rates;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_core::{Anomaly, AnomalyKind, LogRecord, Sample, SeriesKey, TimestampMs};
use steward_tsdb::Row;

use crate::counters::Counters;
use crate::ingest::now_ms;
use crate::store::metrics::MetricStore;
use crate::store::{AnalysisBatch, SeriesId, Store, StoreError, StoredAnomaly};
use correlate::{Correlate, DetectCorrelator, IncidentEvent};
use detectors::{DetectorFactory, DetectorStage, Streaming};
use forecast::{FitBudget, Forecast, Tracker};
use miner::{LogsMiner, TemplateBook};
use rates::RateAggregator;

/// Batches the pipeline may have queued before the store writer waits. A metric batch
/// holds up to the writer's group (a few hundred thousand rows of 16 bytes).
const QUEUE: usize = 4;

/// Band rows kept per series: one per this many milliseconds of data time (the band
/// of the first point scored in each), not one per point.
const BAND_STEP_MS: i64 = 60_000;

/// A stored batch on its way through the pipeline.
#[derive(Debug)]
pub enum PipelineInput {
    /// Log records.
    Logs {
        /// The records, in row order.
        records: Vec<LogRecord>,
        /// The store's id of the last one, the pipeline's cursor once they are mined.
        last_id: Option<i64>,
    },
    /// Stored samples, grouped by series as they arrived.
    Samples {
        /// The rows (series id, timestamp, value).
        rows: Vec<Row>,
        /// When the writer acknowledged them: the start of the detector latency.
        acked_at: Instant,
    },
}

impl PipelineInput {
    /// Records or samples in the batch.
    pub fn len(&self) -> usize {
        match self {
            PipelineInput::Logs { records, .. } => records.len(),
            PipelineInput::Samples { rows, .. } => rows.len(),
        }
    }

    /// True when the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the pipeline judges what it sees.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Width of a template-rate bucket.
    pub bucket_ms: i64,
    /// How long after its end a bucket waits for late records.
    pub grace_ms: i64,
    /// How often findings are written and quiet incidents resolved.
    pub flush_every: Duration,
    /// The anomaly score from which a point is reported.
    pub threshold: f64,
    /// How far ahead a resource may run out before steward warns.
    pub horizon_ms: i64,
    /// Anomalies this close in time join one incident.
    pub correlation_window_ms: i64,
    /// An incident resolves when its members have been quiet this long.
    pub resolve_ms: i64,
    /// Anomalous points this far apart are separate anomalies.
    pub gap_ms: i64,
    /// The most templates the miner keeps.
    pub max_templates: usize,
    /// Whether metric samples and template rates go through the detectors and
    /// forecasts (`detect.enabled`); off, the service only stores them.
    pub detect: bool,
    /// A series idle this long (data time) has its detector evicted to the store
    /// (`detect.idle_evict`).
    pub idle_evict_ms: i64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            bucket_ms: 60_000,
            grace_ms: 5_000,
            flush_every: Duration::from_secs(1),
            threshold: 0.5,
            horizon_ms: 7 * 86_400_000,
            // steward-detect's own join gap: a resource warning that follows the level
            // shift of the same series by a few minutes is one incident, not two.
            correlation_window_ms: 10 * 60_000,
            resolve_ms: 15 * 60_000,
            gap_ms: 5 * 60_000,
            max_templates: 50_000,
            detect: true,
            idle_evict_ms: 15 * 60_000,
        }
    }
}

impl PipelineConfig {
    /// The pipeline settings of a steward configuration.
    pub fn from_config(config: &steward_core::config::Config) -> PipelineConfig {
        PipelineConfig {
            threshold: config.detect.threshold,
            horizon_ms: parse_duration_ms(&config.detect.horizon).unwrap_or(7 * 86_400_000),
            max_templates: config.logs.max_templates,
            detect: config.detect.enabled,
            idle_evict_ms: parse_duration_ms(&config.detect.idle_evict).unwrap_or(15 * 60_000),
            ..PipelineConfig::default()
        }
    }
}

pub use steward_core::config::parse_duration_ms;

/// What the pipeline shares with the HTTP side while it runs.
#[derive(Debug, Default)]
pub struct Shared {
    forecasts: Mutex<BTreeMap<SeriesId, Forecast>>,
}

impl Shared {
    /// Current forecasts, soonest exhaustion first.
    pub fn forecasts(&self) -> Vec<Forecast> {
        let mut out: Vec<Forecast> = self
            .forecasts
            .lock()
            .map(|f| f.values().cloned().collect())
            .unwrap_or_default();
        out.sort_by_key(|f| (!f.warning, f.exhausted_at_ms.unwrap_or(i64::MAX)));
        out
    }

    /// The forecast of one series.
    pub fn forecast(&self, id: SeriesId) -> Option<Forecast> {
        self.forecasts.lock().ok()?.get(&id).cloned()
    }
}

/// Starts the pipeline thread. Send it stored batches; drop the sender to stop it
/// (it writes what it has before it ends).
pub fn start(
    metrics: Arc<MetricStore>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    config: PipelineConfig,
    events: Option<tokio::sync::mpsc::UnboundedSender<IncidentEvent>>,
) -> Result<(SyncSender<PipelineInput>, std::thread::JoinHandle<()>), StoreError> {
    let store: Arc<dyn Store> = Arc::clone(&metrics) as Arc<dyn Store>;
    let templates = store.templates(config.max_templates)?;
    let highest = store.incidents(None, 1)?.first().map_or(0, |i| i.id);
    let mut correlator = DetectCorrelator::new(
        steward_detect::CorrelatorConfig {
            join_gap_ms: config.correlation_window_ms,
            resolve_after_ms: config.resolve_ms,
            ..steward_detect::CorrelatorConfig::default()
        },
        highest,
    );
    // Incidents open when the last run stopped go on growing or resolve.
    let open = store.incidents(Some(steward_core::IncidentStatus::Open), 10_000)?;
    let warm: HashSet<SeriesKey> = open
        .iter()
        .flat_map(|i| i.members.iter().map(|m| m.series.clone()))
        .collect();
    correlator.restore(open);
    let factory: DetectorFactory =
        Box::new(|k, saved| Box::new(Streaming::for_series_or_saved(k, saved)));
    let mut pipeline = Pipeline {
        book: TemplateBook::new(Box::new(LogsMiner::new(config.max_templates)), templates),
        rates: RateAggregator::new(config.bucket_ms, config.grace_ms),
        detectors: DetectorStage::new(
            factory,
            config.threshold,
            config.gap_ms,
            Arc::clone(&counters),
        ),
        correlator: Box::new(correlator),
        trackers: Vec::new(),
        fit_budget: FitBudget::new(FitBudget::PER_SECOND),
        warm,
        band_step: Vec::new(),
        exhaustion: HashMap::new(),
        pending: AnalysisBatch::default(),
        anomalies: BTreeMap::new(),
        incidents: BTreeMap::new(),
        data_now: i64::MIN,
        last_logs: Instant::now(),
        last_eviction: Instant::now(),
        cursor: 0,
        saved_cursor: -1,
        store,
        metrics,
        counters,
        shared,
        events,
        config,
    };
    pipeline.replay()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name("steward-pipeline".into())
        .spawn(move || pipeline.run(&rx))
        .map_err(|e| StoreError::Write(format!("cannot start pipeline thread: {e}")))?;
    Ok((tx, handle))
}

struct Pipeline {
    book: TemplateBook,
    rates: RateAggregator,
    detectors: DetectorStage,
    correlator: Box<dyn Correlate>,
    /// Per series id: `None` until seen, then its forecast tracker if it has a limit.
    trackers: Vec<Option<Option<Tracker>>>,
    /// The forecaster's fits per second, shared by every tracker.
    fit_budget: FitBudget,
    /// Series of incidents restored from the last run, not yet seen in this one.
    warm: HashSet<SeriesKey>,
    /// Per series id: the band step of the last band kept.
    band_step: Vec<i64>,
    exhaustion: HashMap<SeriesId, Anomaly>,
    pending: AnalysisBatch,
    anomalies: BTreeMap<(String, TimestampMs), StoredAnomaly>,
    incidents: BTreeMap<u64, steward_core::Incident>,
    data_now: TimestampMs,
    /// When idle detectors were last looked for.
    last_eviction: Instant,
    /// When the last batch of logs came in (wall clock).
    last_logs: Instant,
    /// The id of the last stored log row the miner has seen.
    cursor: i64,
    /// The cursor as last written.
    saved_cursor: i64,
    store: Arc<dyn Store>,
    metrics: Arc<MetricStore>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    events: Option<tokio::sync::mpsc::UnboundedSender<IncidentEvent>>,
    config: PipelineConfig,
}

/// The key of a series, looked up in the head the first time it is needed.
fn fill_key<'k>(
    metrics: &MetricStore,
    id: SeriesId,
    key: &'k mut Option<SeriesKey>,
) -> &'k SeriesKey {
    key.get_or_insert_with(|| {
        metrics
            .key(id)
            .unwrap_or_else(|| SeriesKey::new(format!("series_{id}")))
    })
}

/// The state key of the pipeline's log cursor.
const CURSOR: &str = "pipeline.log_cursor";

impl Pipeline {
    /// Mines the log rows stored after the cursor the last run saved: records that
    /// were acknowledged (so stored) but not yet mined when the process stopped, even
    /// by `kill -9`. Runs before the writer starts, so nothing races it.
    fn replay(&mut self) -> Result<(), StoreError> {
        let saved = self
            .store
            .state(CURSOR)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(i64::from_le_bytes);
        let Some(mut cursor) = saved else {
            // A new store (or one from before the cursor existed): start from its end.
            let newest = self.store.search_logs(&crate::store::LogQuery {
                limit: Some(1),
                ..crate::store::LogQuery::default()
            })?;
            self.cursor = newest.first().map_or(0, |l| l.id);
            return Ok(());
        };
        let mut replayed = 0;
        loop {
            let page = self.store.logs_after(cursor, 10_000)?;
            let Some(last) = page.last() else { break };
            cursor = last.id;
            replayed += page.len();
            let records: Vec<LogRecord> = page.into_iter().map(|l| l.record).collect();
            self.logs(&records);
        }
        self.cursor = cursor;
        if replayed > 0 {
            tracing::info!("pipeline: mined {replayed} stored records the last run had not");
            self.flush();
        }
        Ok(())
    }

    fn run(&mut self, rx: &Receiver<PipelineInput>) {
        let mut last_flush = Instant::now();
        loop {
            match rx.recv_timeout(self.config.flush_every) {
                Ok(input) => {
                    self.counters
                        .pipeline_queue
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    match input {
                        PipelineInput::Logs { records, last_id } => {
                            self.logs(&records);
                            if let Some(id) = last_id {
                                self.cursor = self.cursor.max(id);
                            }
                        }
                        PipelineInput::Samples { rows, acked_at } => {
                            self.samples(&rows, acked_at);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // What the detectors learned outlives the process.
                    let saved = self.detectors.save_all();
                    self.pending.state.extend(
                        saved
                            .into_iter()
                            .map(|(id, b)| (detectors::state_name(id), b)),
                    );
                    self.flush();
                    return;
                }
            }
            if last_flush.elapsed() >= self.config.flush_every {
                self.flush();
                last_flush = Instant::now();
            }
        }
    }

    fn logs(&mut self, logs: &[LogRecord]) {
        self.last_logs = Instant::now();
        let now = now_ms();
        for r in logs {
            let service = r.service.as_deref().unwrap_or("unknown");
            let ts = r.timestamp_ms.unwrap_or(now);
            self.data_now = self.data_now.max(ts);
            let filed = self.book.file(&r.body, r.level, service, ts);
            let problem = r.level.is_some_and(|l| l.is_problem());
            self.rates.add(service, filed.id, ts, problem);
            if filed.is_new {
                if let Some(level) = r.level.filter(|l| l.is_problem()) {
                    let anomaly = Anomaly {
                        series: RateAggregator::key(service, filed.id),
                        kind: AnomalyKind::NewTemplate,
                        start_ms: ts,
                        end_ms: ts,
                        score: 1.0,
                        reason: format!("new {level} template in {service}: {}", r.body),
                    };
                    self.counters
                        .anomalies
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.found(None, anomaly);
                }
            }
        }
        self.close_rates();
    }

    /// Scores stored samples, a series' run of rows at a time (a remote-write
    /// request carries each series' samples together): its key, tracker and detector
    /// are looked up once per run.
    fn samples(&mut self, rows: &[Row], acked_at: Instant) {
        if !self.config.detect {
            if let Some(last) = rows.iter().map(|r| r.timestamp_ms).max() {
                self.data_now = self.data_now.max(last);
            }
            return;
        }
        // Keys of series seen for the first time, fetched under one lock of the head
        // (the writer holds it while it syncs the log): not one lock per new series.
        let unseen: Vec<SeriesId> = rows
            .iter()
            .map(|r| SeriesId::from(r.series))
            .filter(|&id| {
                usize::try_from(id)
                    .ok()
                    .and_then(|slot| self.trackers.get(slot))
                    .is_none_or(Option::is_none)
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut keys: HashMap<SeriesId, SeriesKey> = if unseen.is_empty() {
            HashMap::new()
        } else {
            unseen
                .iter()
                .copied()
                .zip(self.metrics.keys(&unseen))
                .filter_map(|(id, k)| Some((id, k?)))
                .collect()
        };
        let mut rest = rows;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .position(|r| r.series != first.series)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(n);
            rest = tail;
            let id = SeriesId::from(first.series);
            let mut key = keys.remove(&id);
            for r in run {
                self.data_now = self.data_now.max(r.timestamp_ms);
                let sample = Sample::new(r.timestamp_ms, r.value);
                self.score(id, &mut key, sample);
            }
            self.counters
                .observe_detector_latency_n(acked_at.elapsed(), run.len() as u64);
        }
        self.counters.forecasts_deferred.store(
            self.fit_budget.deferred,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn close_rates(&mut self) {
        let points = self.rates.close();
        if points.is_empty() {
            return;
        }
        // Template rates are series like any other: stored in the head (one log
        // sync per flush), then scored.
        let rows = match self.metrics.append_keyed(&points) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("cannot store template-rate points: {e}");
                return;
            }
        };
        if !self.config.detect {
            return;
        }
        for (row, (key, sample)) in rows.iter().zip(points) {
            self.score(SeriesId::from(row.series), &mut Some(key), sample);
        }
    }

    /// Scores one sample; `key` is the series' key if the caller has it, filled from
    /// the head when a new tracker or detector needs it.
    fn score(&mut self, id: SeriesId, key: &mut Option<SeriesKey>, sample: Sample) {
        let (ts, value) = (sample.timestamp_ms, sample.value);
        let Ok(slot) = usize::try_from(id) else {
            return;
        };
        if self.trackers.len() <= slot {
            self.trackers.resize_with(slot + 1, || None);
            self.band_step.resize(slot + 1, i64::MIN);
        }
        if self.trackers[slot].is_none() {
            let k = fill_key(&self.metrics, id, key);
            self.trackers[slot] = Some(forecast::limit_for(k, value).map(Tracker::new));
            if self.warm.remove(k) {
                let k = k.clone();
                self.warm_up(id, slot, &k, ts);
            }
        }
        let forecast = match self.trackers[slot].as_mut() {
            Some(Some(tracker)) => {
                let k = fill_key(&self.metrics, id, key);
                tracker.update(
                    id,
                    k,
                    ts,
                    value,
                    self.config.horizon_ms,
                    &mut self.fit_budget,
                )
            }
            _ => None,
        };
        if let Some(f) = forecast {
            self.forecast(id, f);
        }
        let metrics = &self.metrics;
        let store = &self.store;
        let saved = || store.state(&detectors::state_name(id)).ok().flatten();
        let Some(scored) =
            self.detectors
                .update(id, || fill_key(metrics, id, key).clone(), saved, ts, value)
        else {
            return;
        };
        let step = ts.div_euclid(BAND_STEP_MS);
        if self.band_step[slot] != step || scored.anomaly.is_some() {
            self.band_step[slot] = step;
            self.pending.bands.push((id, ts, scored.band));
        }
        if let Some(anomaly) = scored.anomaly {
            self.found(Some(id), anomaly);
        }
    }

    /// Feeds the forecast of a series of a restored incident its stored history before
    /// `before`, so a resource warning goes on where the last run stopped instead of
    /// after a warm-up longer than the resolve interval (which would resolve the
    /// incident and open it again). Detectors need no such help: their state is saved
    /// at shutdown. The history is only remembered, not forecast: the first live point
    /// is due a forecast at once.
    fn warm_up(&mut self, id: SeriesId, slot: usize, key: &SeriesKey, before: TimestampMs) {
        const HISTORY_MS: i64 = 6 * 3_600_000;
        let Some(Some(tracker)) = self.trackers[slot].as_mut() else {
            return;
        };
        let points = match self.metrics.points(id, before - HISTORY_MS, before, 10_000) {
            Ok(points) => points,
            Err(e) => {
                tracing::warn!("cannot read the history of {key}: {e}");
                return;
            }
        };
        for p in points {
            let _ = tracker.remember(p.timestamp_ms, p.value);
        }
    }

    fn forecast(&mut self, id: SeriesId, f: Forecast) {
        if f.warning {
            let eta = f
                .exhausted_at_ms
                .map_or_else(String::new, |at| forecast::human_duration(at - f.as_of_ms));
            let reason = format!(
                "forecast to reach {} in {eta} (now {:.3}, {:+.3}/h)",
                f.limit, f.current, f.slope_per_hour
            );
            let anomaly = match self.exhaustion.get_mut(&id) {
                Some(open) => {
                    open.end_ms = f.as_of_ms;
                    open.reason = reason;
                    open.clone()
                }
                None => {
                    let a = Anomaly {
                        series: f.series.clone(),
                        kind: AnomalyKind::Exhaustion,
                        start_ms: f.as_of_ms,
                        end_ms: f.as_of_ms,
                        score: 1.0,
                        reason,
                    };
                    self.counters
                        .anomalies
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.exhaustion.insert(id, a.clone());
                    a
                }
            };
            self.found(Some(id), anomaly);
        } else {
            self.exhaustion.remove(&id);
        }
        if let Ok(mut all) = self.shared.forecasts.lock() {
            all.insert(id, f);
        }
    }

    fn found(&mut self, series_id: Option<SeriesId>, anomaly: Anomaly) {
        let events = self.correlator.observe(&anomaly);
        // Linked here, not only through the incident's members: an incident keeps a
        // bounded number of members and counts the rest.
        let incident_id = self.correlator.joined();
        self.anomalies.insert(
            (anomaly.series.to_string(), anomaly.start_ms),
            StoredAnomaly {
                series_id,
                incident_id,
                anomaly,
            },
        );
        self.handle(events);
    }

    fn handle(&mut self, events: Vec<IncidentEvent>) {
        for event in events {
            if matches!(event, IncidentEvent::Opened(_)) {
                self.counters
                    .incidents_opened
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let incident = event.incident();
            tracing::info!(
                "incident {} {}: {}",
                incident.id,
                event.name(),
                incident.title
            );
            self.incidents.insert(incident.id, incident.clone());
            if let Some(tx) = &self.events {
                let _ = tx.send(event);
            }
        }
    }

    fn flush(&mut self) {
        let now = now_ms();
        // Live data gone quiet: let wall-clock time close buckets of quiet templates.
        // Only once no logs came for a grace period: while logs flow, their own clock
        // closes buckets, and data played faster than real time toward now (a backlog,
        // the demo) must not have its buckets closed empty ahead of it.
        let quiet =
            self.last_logs.elapsed().as_millis() >= u128::from(self.config.grace_ms.unsigned_abs());
        if quiet && self.data_now != i64::MIN && (now - self.data_now).abs() < 10 * 60_000 {
            self.rates.advance(now);
            self.data_now = self.data_now.max(now - self.config.grace_ms);
        }
        self.close_rates();
        if self.data_now != i64::MIN {
            let events = self.correlator.tick(self.data_now);
            self.handle(events);
        }
        for incident in self.correlator.open() {
            self.incidents.insert(incident.id, incident);
        }
        if self.last_eviction.elapsed() >= Duration::from_secs(60) && self.data_now != i64::MIN {
            self.last_eviction = Instant::now();
            let evicted = self
                .detectors
                .evict_idle(self.data_now.saturating_sub(self.config.idle_evict_ms));
            if !evicted.is_empty() {
                self.counters
                    .detector_evicted
                    .fetch_add(evicted.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.pending.state.extend(
                    evicted
                        .into_iter()
                        .map(|(id, b)| (detectors::state_name(id), b)),
                );
            }
        }
        let mut batch = std::mem::take(&mut self.pending);
        batch.templates = self.book.take_dirty();
        batch
            .state
            .push((CURSOR.to_string(), self.cursor.to_le_bytes().to_vec()));
        batch.anomalies = std::mem::take(&mut self.anomalies).into_values().collect();
        batch.incidents = std::mem::take(&mut self.incidents).into_values().collect();
        if batch.templates.is_empty()
            && batch.state.len() == 1
            && self.cursor == self.saved_cursor
            && batch.bands.is_empty()
            && batch.anomalies.is_empty()
            && batch.incidents.is_empty()
        {
            return;
        }
        match self.store.save_analysis(&batch) {
            Ok(()) => self.saved_cursor = self.cursor,
            Err(e) => tracing::error!("cannot store the pipeline's findings: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("7d"), Some(604_800_000));
        assert_eq!(parse_duration_ms("90s"), Some(90_000));
        assert_eq!(parse_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration_ms("soon"), None);
    }
}
