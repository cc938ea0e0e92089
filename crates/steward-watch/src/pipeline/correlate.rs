//! The correlator stage: anomalies that happen close together in time become one
//! incident, with the earliest as its likely cause.

use std::collections::HashMap;

use steward_core::{Anomaly, AnomalyKind, Incident, IncidentStatus, Severity, TimestampMs};

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

/// Time-window correlation: an anomaly that starts within `window_ms` of an open
/// incident's latest activity joins it. Exhaustion warnings are kept apart from
/// anomalies of other kinds: a disk that will fill next week is not part of this
/// minute's outage.
#[derive(Debug)]
pub struct WindowCorrelator {
    window_ms: i64,
    resolve_ms: i64,
    next_id: u64,
    open: Vec<(Incident, TimestampMs)>,
}

impl WindowCorrelator {
    /// A correlator continuing from incidents a store holds.
    pub fn new(window_ms: i64, resolve_ms: i64, open: Vec<Incident>, next_id: u64) -> Self {
        let open = open
            .into_iter()
            .map(|i| {
                let last = i
                    .members
                    .iter()
                    .map(|m| m.end_ms)
                    .max()
                    .unwrap_or(i.opened_ms);
                (i, last)
            })
            .collect();
        WindowCorrelator {
            window_ms,
            resolve_ms,
            next_id: next_id.max(1),
            open,
        }
    }
}

fn is_warning(a: &Anomaly) -> bool {
    a.kind == AnomalyKind::Exhaustion
}

fn refresh(incident: &mut Incident) {
    incident.members.sort_by_key(|m| m.start_ms);
    // The likely cause is the earliest member; among members that began together, a
    // metric is preferred over a log-template rate, since templates usually report
    // the effect (errors) of a cause seen in a metric.
    let mut best = 0;
    for (i, m) in incident.members.iter().enumerate() {
        let cur = &incident.members[best];
        let template = |a: &Anomaly| a.series.name == super::rates::TEMPLATE_RATE;
        if m.start_ms < cur.start_ms
            || (m.start_ms == cur.start_ms && template(cur) && !template(m))
        {
            best = i;
        }
    }
    incident.likely_cause = best;
    let top = incident.members.iter().map(|m| m.score).fold(0.0, f64::max);
    incident.severity = if incident.members.iter().any(is_warning) {
        Severity::High
    } else if top >= 0.95 && incident.members.len() >= 3 {
        Severity::Critical
    } else if top >= 0.8 {
        Severity::High
    } else {
        Severity::Medium
    };
    if let Some(cause) = incident.members.get(best) {
        let more = incident.members.len() - 1;
        incident.title = if more == 0 {
            format!(
                "{} in {}",
                cause.kind.as_str().replace('_', " "),
                cause.series
            )
        } else {
            format!(
                "{} in {} and {more} more",
                cause.kind.as_str().replace('_', " "),
                cause.series
            )
        };
    }
}

impl Correlate for WindowCorrelator {
    fn observe(&mut self, anomaly: &Anomaly) -> Vec<IncidentEvent> {
        // An extension of a member already filed.
        for (incident, last) in &mut self.open {
            if let Some(m) = incident
                .members
                .iter_mut()
                .find(|m| m.series == anomaly.series && m.start_ms == anomaly.start_ms)
            {
                *m = anomaly.clone();
                *last = (*last).max(anomaly.end_ms);
                refresh(incident);
                return Vec::new();
            }
        }
        let joined = self.open.iter_mut().find(|(incident, last)| {
            incident.members.iter().any(is_warning) == is_warning(anomaly)
                && anomaly.start_ms >= incident.opened_ms - self.window_ms
                && anomaly.start_ms <= *last + self.window_ms
        });
        if let Some((incident, last)) = joined {
            incident.members.push(anomaly.clone());
            incident.opened_ms = incident.opened_ms.min(anomaly.start_ms);
            *last = (*last).max(anomaly.end_ms);
            refresh(incident);
            return vec![IncidentEvent::Grew(incident.clone())];
        }
        let mut incident = Incident {
            id: self.next_id,
            title: String::new(),
            status: IncidentStatus::Open,
            severity: Severity::Medium,
            opened_ms: anomaly.start_ms,
            resolved_ms: None,
            members: vec![anomaly.clone()],
            likely_cause: 0,
        };
        self.next_id += 1;
        refresh(&mut incident);
        self.open.push((incident.clone(), anomaly.end_ms));
        vec![IncidentEvent::Opened(incident)]
    }

    fn tick(&mut self, now: TimestampMs) -> Vec<IncidentEvent> {
        let mut events = Vec::new();
        let resolve_ms = self.resolve_ms;
        self.open.retain_mut(|(incident, last)| {
            if now - *last >= resolve_ms {
                incident.status = IncidentStatus::Resolved;
                incident.resolved_ms = Some(*last);
                events.push(IncidentEvent::Resolved(incident.clone()));
                false
            } else {
                true
            }
        });
        events
    }

    fn open(&self) -> Vec<Incident> {
        self.open.iter().map(|(i, _)| i.clone()).collect()
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
    use steward_core::SeriesKey;

    fn anomaly(name: &str, start: i64) -> Anomaly {
        Anomaly {
            series: SeriesKey::new(name),
            kind: AnomalyKind::Spike,
            start_ms: start,
            end_ms: start,
            score: 0.9,
            reason: "spike".into(),
        }
    }

    #[test]
    fn close_anomalies_share_an_incident_and_the_earliest_is_the_cause() {
        let mut c = WindowCorrelator::new(60_000, 300_000, Vec::new(), 1);
        let mut events = c.observe(&anomaly("errors", 10_000));
        events.extend(c.observe(&anomaly("db_latency", 5_000)));
        events.extend(c.observe(&anomaly("unrelated", 1_000_000)));
        assert_eq!(tally(&events)["opened"], 2);
        let first = events[1].incident();
        assert_eq!(first.members.len(), 2);
        assert_eq!(first.cause().unwrap().series.name, "db_latency");
        let resolved = c.tick(400_000);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].incident().status, IncidentStatus::Resolved);
    }
}
