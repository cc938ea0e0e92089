//! The store writer: one thread that turns many small requests into few commits.
//!
//! Ingest handlers hand their decoded records to the [`Writer`] and wait. The thread
//! takes whatever has queued up (group commit): metric samples are interned and
//! appended to steward-tsdb's head with one log sync for the whole group, log records
//! go to the store in one transaction. It answers every waiting handler, and only
//! then passes the records on to the pipeline. So a 2xx always means "stored".
//!
//! Backpressure instead of loss: when the pipeline falls behind, its full queue holds
//! the writer back, and HTTP handlers ([`Writer::try_write`]) are refused at once
//! (503 with `Retry-After`, counted in `/metrics`) once it has been held longer than
//! [`HOLD_LIMIT`], or while the writer's own queue is full, rather than queueing
//! behind a stalled pipeline until their clients time out. Short holds are the
//! normal state of a pipeline working at full speed: the queue rides them out, since
//! a refusal costs its client a whole second of `Retry-After`. Internal producers (scrape, tail, the demo) use
//! [`Writer::write`], which waits for room.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use steward_core::{LogRecord, Sample, SeriesKey};
use steward_tsdb::Row;
use tokio::sync::{mpsc, oneshot};

use super::metrics::{MetricStore, intern_keyed};
use super::{Store, StoreError, WriteBatch};
use crate::counters::Counters;
use crate::ingest::remote_write::RemoteWrite;
use crate::pipeline::PipelineInput;

/// Most records put into one commit.
const MAX_BATCH_RECORDS: usize = 200_000;
/// Requests that may wait for the writer; past this, HTTP ingest is refused.
const QUEUE: usize = 32;
/// How long the writer may wait for room in the pipeline's queue before new requests
/// are refused.
const HOLD_LIMIT: Duration = Duration::from_secs(1);

/// What one request stores.
#[derive(Debug)]
pub enum Payload {
    /// Log records.
    Logs(Vec<LogRecord>),
    /// Metric samples by key (OTLP, scrape, the demo).
    Samples(Vec<(SeriesKey, Sample)>),
    /// A decoded remote-write body: labels borrowed from it, interned by the writer.
    RemoteWrite(RemoteWrite),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Logs(v) => v.len(),
            Payload::Samples(v) => v.len(),
            Payload::RemoteWrite(w) => w.len(),
        }
    }
}

/// The records of one payload that were not stored, by why; the caller tells its
/// sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotStored {
    /// Samples at or before their series' last timestamp (out of order, or sent again).
    pub out_of_order: u64,
    /// Samples of series steward-tsdb refused (past the series limit, or labels too
    /// many or too long).
    pub refused_series: u64,
}

impl NotStored {
    /// Every record not stored.
    pub fn total(&self) -> u64 {
        self.out_of_order + self.refused_series
    }

    /// Why, in words: `None` when everything was stored.
    pub fn reason(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.out_of_order > 0 {
            why.push(format!(
                "{} at or before their series' last timestamp (out of order, or sent again)",
                self.out_of_order
            ));
        }
        if self.refused_series > 0 {
            why.push(format!(
                "{} of series refused by the store (past its series limit, or labels too many or too long)",
                self.refused_series
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

#[derive(Debug)]
struct Job {
    payload: Payload,
    done: oneshot::Sender<Result<NotStored, String>>,
}

/// The handle handlers write through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    /// Whether the writer thread is waiting for room in the pipeline's queue.
    hold: Arc<Hold>,
}

impl Writer {
    /// Starts the writer thread. It stops when every handle is dropped, after
    /// finishing what was queued; dropping its pipeline sender then lets the pipeline
    /// finish too, and dropping `persister` tells the chunk persister to close and
    /// store every chunk.
    pub fn start(
        metrics: Arc<MetricStore>,
        pipeline: Option<SyncSender<PipelineInput>>,
        counters: Arc<Counters>,
        persister: Option<std::sync::mpsc::Sender<()>>,
    ) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread_counters = Arc::clone(&counters);
        let hold = Arc::new(Hold {
            since: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let thread_hold = Arc::clone(&hold);
        let handle = std::thread::Builder::new()
            .name("steward-store-writer".into())
            .spawn(move || {
                run(&metrics, rx, pipeline, &thread_counters, &thread_hold);
                drop(persister);
            })?;
        Ok((Writer { tx, counters, hold }, handle))
    }

    /// Stores a payload; returns once it is committed. Waits while the queue is full.
    pub async fn write(&self, payload: Payload) -> Result<NotStored, StoreError> {
        if payload.len() == 0 {
            return Ok(NotStored::default());
        }
        let (done, wait) = oneshot::channel();
        self.counters.write_queue.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Job { payload, done }).await.is_err() {
            self.counters.write_queue.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::WriterGone);
        }
        Self::wait(wait).await
    }

    /// Stores a payload like [`Writer::write`], but when the queue is full, or the
    /// writer is held by a full pipeline, refuses it at once with [`StoreError::Busy`]
    /// (counted in `steward_refused_total`): the ingest handlers answer that with 503
    /// and `Retry-After`.
    pub async fn try_write(&self, payload: Payload) -> Result<NotStored, StoreError> {
        if payload.len() == 0 {
            return Ok(NotStored::default());
        }
        if self.hold.too_long() {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Busy);
        }
        let (done, wait) = oneshot::channel();
        match self.tx.try_send(Job { payload, done }) {
            Ok(()) => {
                self.counters.write_queue.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Busy);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(StoreError::WriterGone),
        }
        Self::wait(wait).await
    }

    async fn wait(
        wait: oneshot::Receiver<Result<NotStored, String>>,
    ) -> Result<NotStored, StoreError> {
        match wait.await {
            Ok(Ok(not_stored)) => Ok(not_stored),
            Ok(Err(message)) => Err(StoreError::Write(message)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}

/// When the writer thread started waiting for the pipeline: set by the thread, read by
/// the handlers.
#[derive(Debug)]
struct Hold {
    /// Microseconds after `epoch`; 0 when not waiting.
    since: AtomicU64,
    epoch: Instant,
}

impl Hold {
    fn start(&self) {
        // At least 1: 0 means not held.
        let now = micros(self.epoch.elapsed()).max(1);
        self.since.store(now, Ordering::Relaxed);
    }

    fn end(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    /// Whether the writer has waited for the pipeline longer than [`HOLD_LIMIT`].
    fn too_long(&self) -> bool {
        let since = self.since.load(Ordering::Relaxed);
        since != 0 && micros(self.epoch.elapsed()).saturating_sub(since) > micros(HOLD_LIMIT)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn run(
    metrics: &MetricStore,
    mut rx: mpsc::Receiver<Job>,
    pipeline: Option<SyncSender<PipelineInput>>,
    counters: &Counters,
    hold: &Hold,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut records = first.payload.len();
        let mut jobs = vec![first];
        while records < MAX_BATCH_RECORDS {
            match rx.try_recv() {
                Ok(job) => {
                    records += job.payload.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        counters
            .write_queue
            .fetch_sub(jobs.len() as u64, Ordering::Relaxed);

        let mut logs = Vec::new();
        let mut log_waiting = Vec::new();
        let mut metric_jobs = Vec::new();
        for job in jobs {
            match job.payload {
                Payload::Logs(mut v) => {
                    if logs.is_empty() {
                        std::mem::swap(&mut logs, &mut v);
                    } else {
                        logs.extend(v);
                    }
                    log_waiting.push(job.done);
                }
                payload => metric_jobs.push((payload, job.done)),
            }
        }

        let rows = if metric_jobs.is_empty() {
            Vec::new()
        } else {
            commit_samples(metrics, metric_jobs, counters)
        };
        let (logs, last_id) = if logs.is_empty() {
            (logs, None)
        } else {
            commit_logs(metrics, logs, log_waiting, counters)
        };

        if let Some(pipeline) = &pipeline {
            let mut inputs = Vec::new();
            if !logs.is_empty() {
                inputs.push(PipelineInput::Logs {
                    records: logs,
                    last_id,
                });
            }
            if !rows.is_empty() {
                inputs.push(PipelineInput::Samples {
                    rows,
                    acked_at: Instant::now(),
                });
            }
            for input in inputs {
                let n = input.len() as u64;
                counters.pipeline_queue.fetch_add(1, Ordering::Relaxed);
                let sent = match pipeline.try_send(input) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(input)) => {
                        // Wait for room (nothing stored is dropped), refusing new
                        // requests meanwhile.
                        hold.start();
                        let sent = pipeline.send(input).map_err(|_| ());
                        hold.end();
                        sent
                    }
                    Err(TrySendError::Disconnected(_)) => Err(()),
                };
                if sent.is_err() {
                    counters.pipeline_queue.fetch_sub(1, Ordering::Relaxed);
                    counters.dropped.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Interns and appends every metric job with one log sync, answers them, and returns
/// the rows stored (for the pipeline).
fn commit_samples(
    metrics: &MetricStore,
    jobs: Vec<(Payload, oneshot::Sender<Result<NotStored, String>>)>,
    counters: &Counters,
) -> Vec<Row> {
    // Per job: samples of series steward-tsdb refused, then those at or before their
    // series' last timestamp; each job's caller is told its own counts.
    let mut not_stored: Vec<NotStored> = Vec::with_capacity(jobs.len());
    // Interned rows the append refused: not among the samples stored.
    let mut refused_at_append = 0u64;
    let result = (|| -> Result<Vec<Row>, StoreError> {
        let mut head = metrics.lock()?;
        let mut batches: Vec<Vec<Row>> = Vec::with_capacity(jobs.len());
        for (payload, _) in &jobs {
            let mut rows = Vec::new();
            let mut job_refused = 0;
            match payload {
                Payload::RemoteWrite(w) => w.rows(&mut head.db, &mut rows, &mut job_refused)?,
                Payload::Samples(items) => {
                    intern_keyed(&mut head.db, items, &mut rows, &mut job_refused)?;
                }
                Payload::Logs(_) => {}
            }
            not_stored.push(NotStored {
                out_of_order: 0,
                refused_series: job_refused,
            });
            batches.push(rows);
        }
        let refs: Vec<&[Row]> = batches.iter().map(Vec::as_slice).collect();
        let outcomes = head.db.append_group(&refs)?;
        drop(head);
        for (job, o) in not_stored.iter_mut().zip(&outcomes) {
            job.out_of_order += o.out_of_order as u64;
            job.refused_series += o.unknown_series as u64;
            refused_at_append += o.refused() as u64;
        }
        Ok(batches.concat())
    })();
    let rows = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("metric write failed: {e}");
            let message = e.to_string();
            for (_, done) in jobs {
                let _ = done.send(Err(message.clone()));
            }
            return Vec::new();
        }
    };
    // The new series' definitions are in the log already; copying them into the
    // store's series table before answering makes them listed by the API at once. A
    // failure here is retried with the next batch (and at start).
    if let Err(e) = metrics.define_pending() {
        tracing::error!("cannot copy new series definitions to the store: {e}");
    }
    counters.commits.fetch_add(1, Ordering::Relaxed);
    // Samples at or before their series' last timestamp (a resend, or out of order)
    // are not stored; they are counted, as Prometheus counts them, and each request's
    // count goes back to its handler (OTLP reports it as partial success).
    let not_stored_total: u64 = not_stored.iter().map(NotStored::total).sum();
    counters.samples_in.fetch_add(
        (rows.len() as u64).saturating_sub(refused_at_append),
        Ordering::Relaxed,
    );
    counters
        .samples_rejected
        .fetch_add(not_stored_total, Ordering::Relaxed);
    for ((_, done), job) in jobs.into_iter().zip(not_stored) {
        let _ = done.send(Ok(job));
    }
    rows
}

fn commit_logs(
    store: &dyn Store,
    logs: Vec<LogRecord>,
    waiting: Vec<oneshot::Sender<Result<NotStored, String>>>,
    counters: &Counters,
) -> (Vec<LogRecord>, Option<i64>) {
    let batch = WriteBatch { logs };
    match store.append(&batch) {
        Ok(last_id) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters
                .logs_in
                .fetch_add(batch.logs.len() as u64, Ordering::Relaxed);
            for done in waiting {
                let _ = done.send(Ok(NotStored::default()));
            }
            (batch.logs, last_id)
        }
        Err(e) => {
            tracing::error!("store write failed: {e}");
            let message = e.to_string();
            for done in waiting {
                let _ = done.send(Err(message.clone()));
            }
            (Vec::new(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn samples(n: i64, from: i64) -> Payload {
        Payload::Samples(
            (0..n)
                .map(|i| (SeriesKey::new("queue_depth"), Sample::new(from + i, 1.0)))
                .collect(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_writer_refuses_at_once_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let (metrics, _) =
            MetricStore::open(inner, &dir.path().join("wal"), Default::default()).unwrap();
        let counters = Arc::new(Counters::default());
        // A pipeline with room for one batch that nobody reads yet.
        let (pipe_tx, pipe_rx) = std::sync::mpsc::sync_channel(1);
        let (writer, handle) = Writer::start(
            Arc::new(metrics),
            Some(pipe_tx),
            Arc::clone(&counters),
            None,
        )
        .unwrap();
        // The first batch fills the pipeline's queue, the second holds the writer.
        writer.try_write(samples(10, 0)).await.unwrap();
        writer.try_write(samples(10, 1_000)).await.unwrap();
        // The answer comes before the hand-over to the pipeline: wait for the hold to
        // pass its limit. A short hold is ridden out, not refused.
        let start = Instant::now();
        while !writer.hold.too_long() {
            assert!(start.elapsed().as_secs() < 10, "the writer never held");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(start.elapsed() >= HOLD_LIMIT / 2);
        assert!(matches!(
            writer.try_write(samples(10, 10_000)).await,
            Err(StoreError::Busy)
        ));
        assert_eq!(counters.refused.load(Ordering::Relaxed), 1);
        // Reading the pipeline lets the held batch through: both acknowledged batches
        // reach it, nothing dropped, and the writer takes requests again.
        let first = pipe_rx.recv().unwrap();
        let second = pipe_rx.recv().unwrap();
        assert_eq!(first.len() + second.len(), 20);
        while writer.hold.since.load(Ordering::Relaxed) != 0 {
            tokio::task::yield_now().await;
        }
        writer.try_write(samples(10, 20_000)).await.unwrap();
        assert_eq!(pipe_rx.recv().unwrap().len(), 10);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
        drop(writer);
        handle.join().unwrap();
    }
}
