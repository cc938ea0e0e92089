//! The correlator stage: anomalies that happen close together in time become one
//! incident, with the earliest as its likely cause.

use std::collections::{BTreeMap, HashMap};

use steward_core::{Anomaly, Incident, IncidentStatus, TimestampMs};

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
    /// The incident the anomaly last passed to `observe` belongs to, whether it is
    /// kept among the incident's members or only counted.
    fn joined(&self) -> Option<u64> {
        None
    }
}

/// steward-detect's correlator: anomalies that overlap in time and share a service or
/// host (or have been anomalous together before) become one incident.
///
/// Its incident ids start at 1 in every run, so they are mapped to ids past the
/// highest one the store holds: a restart never overwrites an earlier incident.
/// Incidents still open when the last run stopped are restored
/// ([`DetectCorrelator::restore`]) so they grow or resolve instead of being opened
/// again.
#[derive(Debug)]
pub struct DetectCorrelator {
    inner: steward_detect::Correlator,
    /// steward-detect's id of each open incident to the id steward stores.
    ids: HashMap<u64, u64>,
    /// The last id handed out.
    last_id: u64,
    /// Restored incidents whose members all joined another restored one on replay:
    /// they take no new member and resolve when quiet, as they would have.
    orphans: Vec<(Incident, TimestampMs)>,
    resolve_after_ms: i64,
}

/// The labels the correlator matches anomalies by: the series' and the kind.
fn labels_of(anomaly: &Anomaly) -> BTreeMap<String, String> {
    let mut labels = anomaly.series.labels.clone();
    labels.insert("kind".into(), anomaly.kind.as_str().into());
    labels
}

/// When an incident was last active: its latest member's end.
fn last_activity(incident: &Incident) -> TimestampMs {
    incident
        .members
        .iter()
        .map(|m| m.end_ms.max(m.start_ms))
        .max()
        .unwrap_or(incident.opened_ms)
}

impl DetectCorrelator {
    /// A correlator whose incidents get ids above `highest_stored`.
    pub fn new(config: steward_detect::CorrelatorConfig, highest_stored: u64) -> Self {
        DetectCorrelator {
            resolve_after_ms: config.resolve_after_ms,
            inner: steward_detect::Correlator::new(config),
            ids: HashMap::new(),
            last_id: highest_stored,
            orphans: Vec::new(),
        }
    }

    /// Takes back the incidents a previous run left open, with their ids.
    ///
    /// steward-detect's correlator has no way to be handed an incident, so each one's
    /// members are replayed into it, earliest first, and the incident it forms is
    /// given the stored id. Replay groups as the live run did in all but rare cases
    /// (a member that joined through co-occurrence learned before the restart): a
    /// member that now opens an incident of its own keeps a new id, and a restored
    /// incident whose members all joined another is kept as it was until it resolves.
    pub fn restore(&mut self, mut open: Vec<Incident>) {
        open.sort_by_key(|i| (i.opened_ms, i.id));
        for incident in open {
            self.last_id = self.last_id.max(incident.id);
            let mut members = incident.members.clone();
            members.sort_by_key(|m| m.start_ms);
            let mut mapped = false;
            let mut formed_id = 0;
            for member in members {
                let labels = labels_of(&member);
                for event in self.inner.observe(member, &labels) {
                    if let steward_detect::IncidentEvent::Opened(formed) = event {
                        if mapped {
                            tracing::warn!(
                                "incident {}: a member no longer correlates and opens its own incident",
                                incident.id
                            );
                        } else {
                            self.ids.insert(formed.id, incident.id);
                            mapped = true;
                            formed_id = formed.id;
                        }
                    }
                }
            }
            if mapped {
                // Members counted past the cap were not stored one by one: their
                // number (and the severity they raised) carries over.
                self.inner.carry_over(formed_id, &incident);
            } else {
                let last = last_activity(&incident);
                self.orphans.push((incident, last));
            }
        }
    }

    fn outer_id(&mut self, inner: u64) -> u64 {
        let last_id = &mut self.last_id;
        *self.ids.entry(inner).or_insert_with(|| {
            *last_id += 1;
            *last_id
        })
    }

    fn convert(&mut self, events: Vec<steward_detect::IncidentEvent>) -> Vec<IncidentEvent> {
        use steward_detect::IncidentEvent as E;
        events
            .into_iter()
            .map(|e| {
                let (make, mut incident): (fn(Incident) -> IncidentEvent, Incident) = match e {
                    E::Opened(i) => (IncidentEvent::Opened, i),
                    E::Grew(i) => (IncidentEvent::Grew, i),
                    E::Resolved(i) => (IncidentEvent::Resolved, i),
                };
                let inner = incident.id;
                incident.id = self.outer_id(inner);
                if incident.status == IncidentStatus::Resolved {
                    self.ids.remove(&inner);
                }
                make(incident)
            })
            .collect()
    }
}

impl Correlate for DetectCorrelator {
    fn observe(&mut self, anomaly: &Anomaly) -> Vec<IncidentEvent> {
        let events = self.inner.observe(anomaly.clone(), &labels_of(anomaly));
        self.convert(events)
    }

    fn tick(&mut self, now: TimestampMs) -> Vec<IncidentEvent> {
        let events = self.inner.tick(now);
        let mut out = self.convert(events);
        let after = self.resolve_after_ms;
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|(_, last)| now.saturating_sub(*last) >= after);
        self.orphans = keep;
        for (mut incident, last) in done {
            incident.status = IncidentStatus::Resolved;
            incident.resolved_ms = Some(last.saturating_add(after));
            out.push(IncidentEvent::Resolved(incident));
        }
        out
    }

    fn open(&self) -> Vec<Incident> {
        self.inner
            .open_incidents()
            .map(|i| {
                let mut i = i.clone();
                i.id = self.ids.get(&i.id).copied().unwrap_or(i.id);
                i
            })
            .chain(self.orphans.iter().map(|(i, _)| i.clone()))
            .collect()
    }

    fn joined(&self) -> Option<u64> {
        let inner = self.inner.joined()?;
        self.ids.get(&inner).copied()
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
    use steward_core::{AnomalyKind, SeriesKey};

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

    #[test]
    fn a_restored_incident_keeps_its_id_and_grows_or_resolves() {
        let config = steward_detect::CorrelatorConfig::default();
        let resolve = config.resolve_after_ms;
        let mut before = DetectCorrelator::new(config.clone(), 6);
        before.observe(&anomaly("db_latency", 5_000));
        before.observe(&anomaly("errors", 10_000));
        let open = before.open();
        assert_eq!(open[0].id, 7);

        // The next run: the store's highest id is 7, and 7 is open.
        let mut after = DetectCorrelator::new(config, 7);
        after.restore(open.clone());
        assert_eq!(after.open(), open);
        let events = after.observe(&anomaly("checkout_latency", 20_000));
        assert_eq!(tally(&events).get("opened"), None, "{events:?}");
        assert_eq!(events[0].incident().id, 7);
        assert_eq!(events[0].incident().members.len(), 3);
        assert_eq!(
            events[0].incident().cause().unwrap().series.name,
            "db_latency"
        );
        // An unrelated anomaly much later opens a new incident with a new id.
        let mut other = anomaly("queue_depth", 10 * resolve);
        other.series = SeriesKey::new("queue_depth").with_label("service", "mailer");
        let resolved = after.tick(20_000 + resolve);
        assert_eq!(resolved[0].incident().id, 7);
        assert_eq!(resolved[0].incident().status, IncidentStatus::Resolved);
        let opened = after.observe(&other);
        assert_eq!(opened[0].incident().id, 8);
    }

    #[test]
    fn a_restored_incident_keeps_its_count_of_members_not_kept() {
        let config = steward_detect::CorrelatorConfig {
            max_members: 2,
            ..steward_detect::CorrelatorConfig::default()
        };
        let mut before = DetectCorrelator::new(config.clone(), 0);
        let mut events = Vec::new();
        for (i, name) in ["db_latency", "errors", "checkout_latency", "cart_errors"]
            .iter()
            .enumerate()
        {
            events.extend(before.observe(&anomaly(name, 5_000 + 1_000 * i as i64)));
        }
        // The last two joined a full incident: counted, and no event for either.
        assert_eq!(tally(&events)["opened"], 1);
        assert_eq!(tally(&events)["grew"], 1);
        let open = before.open();
        assert_eq!((open[0].members.len(), open[0].more_members), (2, 2));
        assert_eq!(open[0].member_count(), 4);

        let mut after = DetectCorrelator::new(config, 1);
        after.restore(open.clone());
        assert_eq!(after.open(), open);
        after.observe(&anomaly("payment_errors", 20_000));
        assert_eq!(after.open()[0].more_members, 3);
        // Counted, not kept, and still linked to its incident by its stored id.
        assert_eq!(after.joined(), Some(open[0].id));
        assert!(
            after.open()[0].title.ends_with("and 4 more"),
            "{:?}",
            after.open()
        );
    }
}
