//! steward's time-series storage core: the metric path of `steward up` at scale.
//!
//! - [`chunk`]: Gorilla-compressed chunks (delta-of-delta timestamps, XOR values), the
//!   layout of Prometheus's XOR chunk; [`ChunkAppender`] writes one, [`ChunkIter`]
//!   decodes one.
//! - [`SeriesInterner`]: a label set becomes a compact [`SeriesId`] on first sight and is
//!   found again by hash without allocating.
//! - [`Head`]: the open chunk of every series, cut at [`ChunkLimits`]; closed chunks wait
//!   as [`ClosedChunk`]s (series, min and max timestamp, bytes) for the store to persist
//!   as one blob each.
//! - [`Tsdb`]: the head behind a write-ahead log. A batch is acknowledged only once its
//!   log write is durable (group commit: several batches, one sync); opening replays
//!   the log, and marking chunks persisted lets the log drop its old segments.
//! - [`rollup`]: min/max/sum/count per time step over decoded chunks, for long ranges.
//!
//! The write path, as the store's writer thread runs it:
//!
//! ```
//! use steward_tsdb::{Row, Tsdb, TsdbOptions};
//!
//! # fn main() -> Result<(), steward_tsdb::TsdbError> {
//! # let tmp = tempfile::tempdir().map_err(|e| steward_tsdb::TsdbError::Io { path: ".".into(), source: e })?;
//! let (mut db, report) = Tsdb::open(tmp.path().join("wal"), TsdbOptions::default())?;
//! assert!(report.corruption.is_empty());
//!
//! // Labels borrowed from the decoded request, sorted by name: no allocation on a hit.
//! let id = db.intern([("__name__", "up"), ("job", "api")])?;
//! let batch = [Row::new(id, 1_700_000_000_000, 1.0), Row::new(id, 1_700_000_015_000, 1.0)];
//! // Several requests' batches, one fsync; answer 2xx only after this returns Ok.
//! let outcomes = db.append_group(&[&batch])?;
//! assert_eq!(outcomes[0].appended, 2);
//!
//! // Later (or at shutdown, after `close_all`): persist closed chunks, then say so.
//! db.close_all();
//! let closed = db.take_closed();
//! for chunk in &closed {
//!     let m = chunk.meta; // store (m.series, m.min_ts, m.max_ts, chunk.bytes) as one blob
//!     assert_eq!((m.min_ts, m.max_ts, m.samples), (1_700_000_000_000, 1_700_000_015_000, 2));
//! }
//! let metas: Vec<_> = closed.iter().map(|c| c.meta).collect();
//! db.mark_persisted(&metas)?;
//! # Ok(())
//! # }
//! ```
//!
//! **Architecture Invariant:** nothing here panics on input: chunk bytes, log files and
//! label sets that are malformed come back as errors or reported flaws.
//!
//! **API Boundary:** this crate knows files and bytes, not SQL: where a closed chunk
//! goes is the store's business (steward-watch).

#![deny(missing_docs)]

pub mod chunk;
pub mod head;
pub mod interner;
pub mod rollup;
pub mod wal;

mod bits;
mod db;

pub use chunk::{ChunkAppender, ChunkIter};
pub use db::{ReplayReport, Tsdb, TsdbOptions};
pub use head::{AppendOutcome, ChunkLimits, ChunkMeta, ClosedChunk, Head, Row};
pub use interner::{Interned, Labels, SeriesInterner};
pub use rollup::{Rollup, rollup, rollup_chunks};
pub use wal::{Corruption, SyncPolicy};

/// The compact id a label set is interned to. Dense from 0, stable for as long as the
/// write-ahead log (or the store that copied the definitions) keeps it.
pub type SeriesId = u32;

/// What is wrong with a chunk or a sample for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk holds 65 535 samples already.
    #[error("the chunk is full")]
    Full,
    /// A timestamp before the chunk's last one.
    #[error("timestamp {ts} is before the chunk's last timestamp {last}")]
    OutOfOrder {
        /// The chunk's last timestamp.
        last: i64,
        /// The refused timestamp.
        ts: i64,
    },
    /// The bytes end or go wrong before the declared number of samples.
    #[error("chunk cut short or malformed after {decoded} of {declared} samples")]
    Truncated {
        /// Samples decoded before the flaw.
        decoded: usize,
        /// Samples the header declares.
        declared: usize,
    },
}

/// What is wrong with a label set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The same label name twice.
    #[error("label name {0:?} appears twice")]
    DuplicateName(String),
    /// A definition from the log whose labels are not sorted.
    #[error("label names are not sorted")]
    Unsorted,
    /// An id defined twice with different label sets, or a set defined with two ids.
    #[error("series id {id} conflicts with the definition of id {existing}")]
    Conflict {
        /// The id being defined.
        id: SeriesId,
        /// The id the set or slot already has.
        existing: SeriesId,
    },
    /// More than 65 535 labels.
    #[error("{0} labels in one set")]
    TooManyLabels(usize),
    /// A label set longer than 4 GiB.
    #[error("label set too long")]
    TooLong,
    /// Every id is taken.
    #[error("too many series")]
    TooManySeries,
}

/// What went wrong in the database.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A label set was refused.
    #[error(transparent)]
    Labels(#[from] LabelError),
    /// An earlier log write failed; the database must be reopened (replayed) before it
    /// takes writes again, because the log may end in a torn record.
    #[error("the write-ahead log failed earlier; reopen the database")]
    WalBroken,
}
