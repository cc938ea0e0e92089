//! The correlator stage: anomalies that happen close together in time become one
//! incident, with the earliest as its likely cause.

use std::collections::HashMap;

use steward_core::{Anomaly, Incident, TimestampMs};

/// What happened to an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentEvent {
    /// A new incident.
    Opened(Incident),
    /// A new member joined.
    Grew(Incident),
    /// Every member has been quiet for the resolve interval.
    Resolved(Incident),
}

impl IncidentEvent {
    /// The incident as it now is.
    pub fn incident(&self) -> &Incident {
        match self {
            IncidentEvent::Opened(i) | IncidentEvent::Grew(i) | IncidentEvent::Resolved(i) => i,
        }
    }

    /// `opened`, `grew` or `resolved`.
    pub fn name(&self) -> &'static str {
        match self {
            IncidentEvent::Opened(_) => "opened",
            IncidentEvent::Grew(_) => "grew",
            IncidentEvent::Resolved(_) => "resolved",
        }
    }
}

/// Groups anomalies into incidents.
pub trait Correlate: Send {
    /// Takes an anomaly that opened or was extended.
    fn observe(&mut self, anomaly: &Anomaly) -> Vec<IncidentEvent>;
    /// Resolves incidents that have gone quiet by `now` (data time).
    fn tick(&mut self, now: TimestampMs) -> Vec<IncidentEvent>;
    /// The incidents still open.
    fn open(&self) -> Vec<Incident>;
}

/// steward-detect's correlator: anomalies that overlap in time and share a service or
/// host (or have been anomalous together before) become one incident.
///
/// Its incident ids start at 1 in every run; they are offset past the highest id the
/// store already holds, so a restart never overwrites an earlier incident.
#[derive(Debug)]
pub struct DetectCorrelator {
    inner: steward_detect::Correlator,
    base: u64,
}

impl DetectCorrelator {
    /// A correlator whose incidents get ids above `highest_stored`.
    pub fn new(config: steward_detect::CorrelatorConfig, highest_stored: u64) -> Self {
        DetectCorrelator {
            inner: steward_detect::Correlator::new(config),
            base: highest_stored,
        }
    }

    fn convert(&self, events: Vec<steward_detect::IncidentEvent>) -> Vec<IncidentEvent> {
        use steward_detect::IncidentEvent as E;
        events
            .into_iter()
            .map(|e| {
                let (make, mut incident): (fn(Incident) -> IncidentEvent, Incident) = match e {
                    E::Opened(i) => (IncidentEvent::Opened, i),
                    E::Grew(i) => (IncidentEvent::Grew, i),
                    E::Resolved(i) => (IncidentEvent::Resolved, i),
                };
                incident.id += self.base;
                make(incident)
            })
            .collect()
    }
}

impl Correlate for DetectCorrelator {
    fn observe(&mut self, anomaly: &Anomaly) -> Vec<IncidentEvent> {
        let mut labels = anomaly.series.labels.clone();
        labels.insert("kind".into(), anomaly.kind.as_str().into());
        let events = self.inner.observe(anomaly.clone(), &labels);
        self.convert(events)
    }

    fn tick(&mut self, now: TimestampMs) -> Vec<IncidentEvent> {
        let events = self.inner.tick(now);
        self.convert(events)
    }

    fn open(&self) -> Vec<Incident> {
        self.inner
            .open_incidents()
            .map(|i| {
                let mut i = i.clone();
                i.id += self.base;
                i
            })
            .collect()
    }
}

/// Counts of events by kind, for tests and logs.
pub fn tally(events: &[IncidentEvent]) -> HashMap<&'static str, usize> {
    let mut out = HashMap::new();
    for e in events {
        *out.entry(e.name()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::{AnomalyKind, IncidentStatus, SeriesKey};

    fn anomaly(name: &str, start: i64) -> Anomaly {
        Anomaly {
            series: SeriesKey::new(name).with_label("service", "checkout"),
            kind: AnomalyKind::Spike,
            start_ms: start,
            end_ms: start,
            score: 0.9,
            reason: "spike".into(),
        }
    }

    #[test]
    fn anomalies_of_one_service_share_an_incident_with_ids_past_the_store() {
        let config = steward_detect::CorrelatorConfig::default();
        let resolve = config.resolve_after_ms;
        let mut c = DetectCorrelator::new(config, 41);
        let mut events = c.observe(&anomaly("db_latency", 5_000));
        events.extend(c.observe(&anomaly("errors", 10_000)));
        assert_eq!(tally(&events)["opened"], 1);
        let incident = events.last().unwrap().incident();
        assert_eq!(incident.id, 42);
        assert_eq!(incident.members.len(), 2);
        assert_eq!(incident.cause().unwrap().series.name, "db_latency");
        assert_eq!(c.open().len(), 1);
        let resolved = c.tick(10_000 + resolve);
        assert_eq!(resolved[0].incident().status, IncidentStatus::Resolved);
    }
}
