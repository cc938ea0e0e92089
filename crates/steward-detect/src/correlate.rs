//! Incident correlation: anomalies from many series grouped into incidents.
//!
//! An anomaly joins an open incident when it overlaps it in time (give or take the
//! join gap) and is related to one of its members: the same service or host, other
//! shared labels, or a pair of series that were anomalous together in past incidents
//! (learned co-occurrence). The likely first cause is the member with the earliest
//! onset; onsets within the tie tolerance are ranked by how far upstream their labels
//! sit (host and datastore before service, service before gateway) and then by how
//! often that series led in past incidents.
//!
//! An incident keeps its earliest members (by onset, up to
//! [`CorrelatorConfig::max_members`]) in full and only counts the others, the way alert
//! grouping in paging tools caps what one incident carries: a flood of anomalies that
//! all share a label (every series of one job) then costs each anomaly a bounded amount
//! of work and raises an event only when the kept members, the cause or the severity
//! change. Counted members still draw related anomalies in, through their labels and
//! series taken as one set.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use steward_core::{Anomaly, Incident, IncidentStatus, TimestampMs};

mod open;
use open::{Candidate, Joined, OpenIncident, counted_hash, severity_of};

/// How the correlator groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CorrelatorConfig {
    /// An anomaly starting up to this long after an incident's last activity may join.
    pub join_gap_ms: i64,
    /// An incident resolves after this long without activity.
    pub resolve_after_ms: i64,
    /// Onsets closer than this are treated as simultaneous when ranking the cause.
    pub tie_ms: i64,
    /// The affinity needed to join: a shared service or host is 2, another shared label
    /// 0.5, a learned co-occurrence up to 3.
    pub min_affinity: f64,
    /// The most series pairs remembered for co-occurrence.
    pub max_pairs: usize,
    /// The most members an incident keeps in full: the earliest by onset. Anomalies
    /// that join past it are counted in [`Incident::more_members`], not kept.
    pub max_members: usize,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            join_gap_ms: 10 * 60_000,
            resolve_after_ms: 30 * 60_000,
            tie_ms: 60_000,
            min_affinity: 2.0,
            max_pairs: 100_000,
            // Enough for the cause and its neighbourhood (a person reads the first few
            // dozen, a dashboard charts fewer), small enough that the work each
            // anomaly costs (affinity and ranking over the kept members) stays in
            // microseconds and an incident's JSON (a webhook body, a store row) in
            // tens of kilobytes.
            max_members: 128,
        }
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "incident", rename_all = "lowercase")]
pub enum IncidentEvent {
    /// A new incident.
    Opened(Incident),
    /// An open incident's kept members, likely cause or severity changed. An anomaly
    /// that is only counted (the incident is full) raises no event: the count rides
    /// along on the next one and in [`Correlator::open_incidents`].
    Grew(Incident),
    /// An incident was quiet for the resolve interval.
    Resolved(Incident),
}

/// Groups anomalies from many series into incidents. Feed it with [`Correlator::observe`]
/// and let time pass with [`Correlator::tick`].
///
/// The work an anomaly costs is bounded by the number of open incidents it overlaps
/// times [`CorrelatorConfig::max_members`], however many anomalies have joined: an
/// incident keeps its earliest members in full and only counts the rest.
#[derive(Debug, Clone, Default)]
pub struct Correlator {
    config: CorrelatorConfig,
    open: Vec<OpenIncident>,
    next_id: u64,
    /// Incidents each series took part in.
    seen: HashMap<String, u32>,
    /// Incidents each series was the first cause of.
    led: HashMap<String, u32>,
    /// Incidents each pair of series shared: the lesser key, then the greater.
    pairs: HashMap<String, HashMap<String, u32>>,
    /// How many pairs `pairs` holds.
    pair_count: usize,
    /// Per-slot affinity, reused from anomaly to anomaly.
    scratch: Vec<f64>,
    /// The incident the last observed anomaly belongs to.
    joined: Option<u64>,
}

fn all_labels(a: &Anomaly, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut l = a.series.labels.clone();
    l.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    l
}

impl Correlator {
    /// A correlator with nothing learned.
    pub fn new(config: CorrelatorConfig) -> Self {
        Correlator {
            config,
            ..Correlator::default()
        }
    }

    /// Incidents still open.
    pub fn open_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.open.iter().map(OpenIncident::incident)
    }

    /// The incident the anomaly last passed to [`Correlator::observe`] belongs to
    /// (opened, joined, or updated as a member), kept or only counted: how a caller
    /// that stores every anomaly links the counted ones too.
    pub fn joined(&self) -> Option<u64> {
        self.joined
    }

    /// Carries over what a stored incident counted but did not keep (its
    /// `more_members`, and the severity they may have raised) to open incident `id`:
    /// one formed again by replaying the stored incident's kept members after a
    /// restart. Returns whether `id` is open. Which anomalies were counted is not
    /// stored, so an update of one after the restart is counted again.
    pub fn carry_over(&mut self, id: u64, stored: &Incident) -> bool {
        let Some(o) = self.open.iter_mut().find(|o| o.incident().id == id) else {
            return false;
        };
        o.carry_over(stored);
        true
    }

    /// How often two series were anomalous together, if learned.
    fn together(&self, a: &str, b: &str) -> Option<u32> {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        self.pairs.get(lo)?.get(hi).copied()
    }

    /// The learned co-occurrence of two different series.
    fn co_occurrence(&self, a: &str, b: &str) -> f64 {
        let Some(together) = self.together(a, b) else {
            return 0.0;
        };
        let least = self
            .seen
            .get(a)
            .copied()
            .unwrap_or(0)
            .min(self.seen.get(b).copied().unwrap_or(0))
            .max(1);
        // Learned co-occurrence: how often the rarer of the two was anomalous with
        // the other, trusted once seen at least twice.
        if together >= 2 {
            3.0 * f64::from(together) / f64::from(least)
        } else {
            0.0
        }
    }

    /// Takes one anomaly (new, or an update of one already seen: same series and start)
    /// with extra labels (service, host, kind) and says what changed.
    pub fn observe(
        &mut self,
        anomaly: Anomaly,
        labels: &BTreeMap<String, String>,
    ) -> Vec<IncidentEvent> {
        let labels = all_labels(&anomaly, labels);
        let key = anomaly.series.to_string();
        self.joined = None;
        // An update of a member: a kept one is extended in place, a counted one keeps
        // its incident active.
        let id = (key, anomaly.start_ms);
        let hash = counted_hash(&id.0, id.1);
        for o in &mut self.open {
            if o.update(&id, hash, &anomaly) {
                self.joined = Some(o.incident().id);
                return Vec::new();
            }
        }
        let (key, _) = id;
        let candidate = Candidate {
            key: &key,
            labels: &labels,
            learned: self.seen.contains_key(&key),
        };
        let gap = self.config.join_gap_ms;
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut best: Option<(f64, usize)> = None;
        for (idx, o) in self.open.iter().enumerate() {
            if !o.overlaps(anomaly.start_ms, anomaly.end_ms, gap) {
                continue;
            }
            let aff = o.affinity(&candidate, |a, b| self.co_occurrence(a, b), &mut scratch);
            if aff >= self.config.min_affinity && best.is_none_or(|(b, _)| aff > b) {
                best = Some((aff, idx));
            }
        }
        self.scratch = scratch;
        let idx = match best {
            Some((_, idx)) => {
                let o = &mut self.open[idx];
                self.joined = Some(o.incident().id);
                match o.join(anomaly, key, labels, self.config.max_members.max(1)) {
                    // Counted, not kept: the kept members and the cause stay as they
                    // are, so there is nothing new to tell unless the severity rose.
                    Joined::Counted { severity_rose } => {
                        return if severity_rose {
                            vec![IncidentEvent::Grew(o.incident().clone())]
                        } else {
                            Vec::new()
                        };
                    }
                    Joined::Kept => idx,
                }
            }
            None => {
                self.next_id += 1;
                self.joined = Some(self.next_id);
                let incident = Incident {
                    id: self.next_id,
                    title: String::new(),
                    status: IncidentStatus::Open,
                    severity: severity_of(&anomaly),
                    opened_ms: anomaly.start_ms,
                    resolved_ms: None,
                    members: Vec::new(),
                    likely_cause: 0,
                    more_members: 0,
                };
                let activity = anomaly.end_ms.max(anomaly.start_ms);
                self.open
                    .push(OpenIncident::open(incident, anomaly, key, labels, activity));
                self.open.len() - 1
            }
        };
        let led = &self.led;
        let o = &mut self.open[idx];
        o.rank(self.config.tie_ms.max(1), |key| {
            led.get(key).copied().unwrap_or(0)
        });
        let incident = o.incident().clone();
        vec![if best.is_some() {
            IncidentEvent::Grew(incident)
        } else {
            IncidentEvent::Opened(incident)
        }]
    }

    /// Resolves incidents quiet since `now_ms - resolve_after`, learning which series
    /// were anomalous together.
    pub fn tick(&mut self, now_ms: TimestampMs) -> Vec<IncidentEvent> {
        let after = self.config.resolve_after_ms;
        let (done, keep): (Vec<OpenIncident>, Vec<OpenIncident>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|o| now_ms.saturating_sub(o.last_activity()) >= after);
        self.open = keep;
        let mut events = Vec::new();
        for o in done {
            self.learn(&o);
            let resolved_ms = o.last_activity().saturating_add(after);
            let mut incident = o.into_incident();
            incident.status = IncidentStatus::Resolved;
            incident.resolved_ms = Some(resolved_ms);
            events.push(IncidentEvent::Resolved(incident));
        }
        events
    }

    /// Learns from a resolved incident's kept members (at most `max_members`, so at
    /// most `max_members²/2` pairs, and none past 64 members).
    fn learn(&mut self, o: &OpenIncident) {
        let mut keys: Vec<&str> = o.kept_keys().collect();
        keys.sort_unstable();
        keys.dedup();
        for &k in &keys {
            *self.seen.entry(k.to_string()).or_default() += 1;
        }
        if let Some(c) = o.cause_key() {
            *self.led.entry(c.to_string()).or_default() += 1;
        }
        if self.pair_count + keys.len() * keys.len() > self.config.max_pairs {
            // Forget pairs seen only once, so memory stays bounded.
            for partners in self.pairs.values_mut() {
                partners.retain(|_, n| *n > 1);
            }
            self.pairs.retain(|_, partners| !partners.is_empty());
            self.pair_count = self.pairs.values().map(HashMap::len).sum();
        }
        if keys.len() <= 64 {
            for (i, a) in keys.iter().enumerate() {
                for b in &keys[i + 1..] {
                    // `keys` is sorted: `a` is the lesser.
                    let n = self
                        .pairs
                        .entry((*a).to_string())
                        .or_default()
                        .entry((*b).to_string())
                        .or_insert(0);
                    if *n == 0 {
                        self.pair_count += 1;
                    }
                    *n += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
