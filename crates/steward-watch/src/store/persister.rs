//! The chunk persister: one thread that moves closed chunks from the head to the store.
//!
//! It runs beside the writer so that the acknowledgement path (log write, sync, answer)
//! never waits on a store transaction. About once a second it stores what the head has
//! closed; every minute it closes the chunks of series that have been quiet for
//! longer than `idle_close` (by wall clock), so their samples reach the store and the
//! log can drop its old segments. When the writer stops it closes every chunk and
//! stores them, so a clean shutdown leaves an empty head.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::metrics::MetricStore;
use crate::ingest::now_ms;

/// How often closed chunks are stored.
const EVERY: Duration = Duration::from_secs(1);
/// How often quiet series are looked for.
const IDLE_SCAN: Duration = Duration::from_secs(60);

/// Starts the persister. It ends once every sender of `stop` is dropped (the writer
/// thread holds the only one), after storing every chunk.
pub fn start(
    metrics: Arc<MetricStore>,
    stop: Receiver<()>,
    idle_close: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("steward-chunk-persister".into())
        .spawn(move || run(&metrics, &stop, idle_close))
}

fn run(metrics: &MetricStore, stop: &Receiver<()>, idle_close: Duration) {
    let mut last_scan = Instant::now();
    loop {
        let last = match stop.recv_timeout(EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !last && last_scan.elapsed() >= IDLE_SCAN {
            last_scan = Instant::now();
            let idle_ms = i64::try_from(idle_close.as_millis()).unwrap_or(i64::MAX);
            if let Err(e) = metrics.close_idle(now_ms().saturating_sub(idle_ms)) {
                tracing::error!("cannot close idle chunks: {e}");
            }
        }
        if let Err(e) = metrics.persist(last) {
            // The chunks stay in the unsaved list (readable) and in the log
            // (replayed after a restart); the next round tries again.
            tracing::error!("cannot store closed chunks: {e}");
        }
        if last {
            return;
        }
    }
}
