//! Anomalies found in one series, and incidents made of many.

use serde::{Deserialize, Serialize};

use crate::{SeriesKey, Severity, TimestampMs};

/// What shape an anomaly has: the first word of its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A short excursion above the expected band.
    Spike,
    /// A short excursion below the expected band.
    Dip,
    /// The level moved and stayed.
    LevelShift,
    /// The slope changed.
    TrendChange,
    /// The usual daily or weekly pattern did not repeat.
    SeasonalBreak,
    /// A log template never seen before, at warning level or above.
    NewTemplate,
    /// A resource is forecast to run out within the warning horizon.
    Exhaustion,
}

impl AnomalyKind {
    /// The kind as steward prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Spike => "spike",
            AnomalyKind::Dip => "dip",
            AnomalyKind::LevelShift => "level_shift",
            AnomalyKind::TrendChange => "trend_change",
            AnomalyKind::SeasonalBreak => "seasonal_break",
            AnomalyKind::NewTemplate => "new_template",
            AnomalyKind::Exhaustion => "exhaustion",
        }
    }
}

/// An anomaly in one series: a window of time in which it left its expected band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The series it was found in.
    pub series: SeriesKey,
    /// Its shape.
    pub kind: AnomalyKind,
    /// The first point that was anomalous.
    pub start_ms: TimestampMs,
    /// The last point that was anomalous so far.
    pub end_ms: TimestampMs,
    /// The highest anomaly score in the window, in `[0, 1]`.
    pub score: f64,
    /// A sentence a person reads: "level shift up 38% at 14:05".
    pub reason: String,
}

/// Whether an incident is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Members are still anomalous, or were recently.
    Open,
    /// Every member has been quiet for the resolve interval.
    Resolved,
}

/// Anomalies from many series that belong to one event, with the one most likely to be
/// its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id, unique within a store.
    pub id: u64,
    /// A one-line title built from the likely cause.
    pub title: String,
    /// Open or resolved.
    pub status: IncidentStatus,
    /// The highest severity of its members.
    pub severity: Severity,
    /// When its first member began.
    pub opened_ms: TimestampMs,
    /// When it resolved, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_ms: Option<TimestampMs>,
    /// Its anomalies, earliest first.
    pub members: Vec<Anomaly>,
    /// Index into `members` of the likely first cause.
    pub likely_cause: usize,
    /// Anomalies that joined once `members` was full: counted, not kept. An incident
    /// keeps its earliest members in full and only the number of the rest, so a flood
    /// of anomalies costs each one a bounded amount of work and storage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_members: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Incident {
    /// The member most likely to have caused the rest.
    pub fn cause(&self) -> Option<&Anomaly> {
        self.members.get(self.likely_cause)
    }

    /// How many anomalies joined: those kept in `members` and those only counted.
    pub fn member_count(&self) -> u64 {
        self.members.len() as u64 + self.more_members
    }
}
