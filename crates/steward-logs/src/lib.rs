//! steward's log side: reading log lines in their many formats, masking the variable
//! parts of messages, and mining templates online, one line at a time.
//!
//! - [`format`]: Loghub header formats, JSON lines, logfmt, syslog, access logs, `auto`.
//! - [`TemplateMiner`]: the online miner (Drain family, see [`miner`]), with stable
//!   template ids, a memory bound and versioned snapshots ([`Snapshot`]).
//! - [`score`] and [`bench`]: GA, PA, FGA, FTA on labelled Loghub data.
//!
//! **Architecture Invariant:** this crate depends on `steward-core` only among steward
//! crates, and does no I/O except in [`bench`], which reads the data it is pointed at.
#![deny(missing_docs)]

pub mod bench;
pub mod format;
mod fxhash;
mod mask;
pub mod miner;
pub mod score;
mod snapshot;

pub use format::{Format, LineParser, ParseStats};
pub use miner::{
    ChangeKind, Match, MatchKind, MinerConfig, Template, TemplateChange, TemplateId, TemplateMiner,
};
pub use snapshot::{Snapshot, SnapshotError};
