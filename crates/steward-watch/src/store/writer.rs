//! The store writer: one thread that turns many small requests into few transactions.
//!
//! Ingest handlers hand their decoded records to [`Writer::write`] and wait. The thread
//! takes whatever has queued up (group commit), writes it in one transaction, answers
//! every waiting handler, and only then passes the records on to the pipeline. So a
//! 200 always means "stored", and when the pipeline falls behind, its full queue holds
//! the writer back, which holds the handlers back: backpressure instead of loss.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;

use steward_core::{LogRecord, Sample, SeriesKey};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, WriteBatch};
use crate::counters::Counters;
use crate::pipeline::PipelineInput;

/// Most records put into one transaction.
const MAX_BATCH_RECORDS: usize = 100_000;
/// Requests that may wait for the writer before handlers wait to enqueue.
const QUEUE: usize = 256;

/// What one request stores.
#[derive(Debug)]
pub enum Payload {
    /// Log records.
    Logs(Vec<LogRecord>),
    /// Metric samples.
    Samples(Vec<(SeriesKey, Sample)>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Logs(v) => v.len(),
            Payload::Samples(v) => v.len(),
        }
    }
}

#[derive(Debug)]
struct Job {
    payload: Payload,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle handlers write through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread. It stops when every handle is dropped, after
    /// finishing what was queued; dropping its pipeline sender then lets the pipeline
    /// finish too.
    pub fn start(
        store: Arc<dyn Store>,
        pipeline: Option<SyncSender<PipelineInput>>,
        counters: Arc<Counters>,
    ) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread_counters = Arc::clone(&counters);
        let handle = std::thread::Builder::new()
            .name("steward-store-writer".into())
            .spawn(move || run(store.as_ref(), rx, pipeline, &thread_counters))?;
        Ok((Writer { tx, counters }, handle))
    }

    /// Stores a payload; returns once it is committed.
    pub async fn write(&self, payload: Payload) -> Result<(), StoreError> {
        if payload.len() == 0 {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.counters.write_queue.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Job { payload, done }).await.is_err() {
            self.counters.write_queue.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::WriterGone);
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Write(message)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}

fn run(
    store: &dyn Store,
    mut rx: mpsc::Receiver<Job>,
    pipeline: Option<SyncSender<PipelineInput>>,
    counters: &Counters,
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
        let mut items = Vec::new();
        let mut waiting = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job.payload {
                Payload::Logs(mut v) if logs.is_empty() => std::mem::swap(&mut logs, &mut v),
                Payload::Logs(v) => logs.extend(v),
                Payload::Samples(mut v) if items.is_empty() => std::mem::swap(&mut items, &mut v),
                Payload::Samples(v) => items.extend(v),
            }
            waiting.push(job.done);
        }

        let result = commit(store, logs, items);
        let (logs, last_id, ids, items) = match result {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!("store write failed: {e}");
                let message = e.to_string();
                for done in waiting {
                    let _ = done.send(Err(message.clone()));
                }
                continue;
            }
        };
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters
            .logs_in
            .fetch_add(logs.len() as u64, Ordering::Relaxed);
        counters
            .samples_in
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        for done in waiting {
            let _ = done.send(Ok(()));
        }

        if let Some(pipeline) = &pipeline {
            let mut inputs = Vec::new();
            if !logs.is_empty() {
                inputs.push(PipelineInput::Logs {
                    records: logs,
                    last_id,
                });
            }
            if !items.is_empty() {
                inputs.push(PipelineInput::Samples { ids, items });
            }
            for input in inputs {
                let n = input.len() as u64;
                counters.pipeline_queue.fetch_add(1, Ordering::Relaxed);
                if pipeline.send(input).is_err() {
                    counters.pipeline_queue.fetch_sub(1, Ordering::Relaxed);
                    counters.dropped.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
    }
}

type Stored = (
    Vec<LogRecord>,
    Option<i64>,
    Vec<super::SeriesId>,
    Vec<(SeriesKey, Sample)>,
);

fn commit(
    store: &dyn Store,
    logs: Vec<LogRecord>,
    items: Vec<(SeriesKey, Sample)>,
) -> Result<Stored, StoreError> {
    let keys: Vec<&SeriesKey> = items.iter().map(|(k, _)| k).collect();
    let ids = store.intern(&keys)?;
    let batch = WriteBatch {
        logs,
        samples: ids
            .iter()
            .zip(&items)
            .map(|(id, (_, s))| (*id, *s))
            .collect(),
    };
    let last_id = store.append(&batch)?;
    Ok((batch.logs, last_id, ids, items))
}
