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

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use steward_core::{
    Anomaly, AnomalyKind, Incident, IncidentStatus, SeriesKey, Severity, TimestampMs,
};

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

/// The most distinct label values remembered for an incident's counted members.
const MAX_COUNTED_LABELS: usize = 4_096;
/// The most counted anomalies and series an incident remembers (by hash), so that an
/// update of a counted anomaly is not counted again and a series' next anomaly joins.
/// Past it, anomalies are still counted but not remembered (an update of one may then
/// be counted again). 262,144 covers issue 10's 96,000 series more than twice, and the
/// two sets of 64-bit hashes stay under about 10 MB for the largest incident.
const MAX_COUNTED_KEYS: usize = 1 << 18;

/// What the correlator keeps of a member besides the anomaly: computed once, when it
/// joins, not on every comparison.
#[derive(Debug, Clone)]
struct Member {
    /// The series key as text.
    key: String,
    /// The series' labels with the extra ones.
    labels: BTreeMap<String, String>,
    /// [`upstream_rank`] of the member.
    upstream: u8,
}

#[derive(Debug, Clone)]
struct Open {
    /// Its members sorted by onset, at most `max_members`.
    incident: Incident,
    /// Per kept member, by slot: slots are stable while members move in
    /// `incident.members` (kept sorted), so the indexes below need no renumbering.
    slots: Vec<Option<Member>>,
    /// The slot of each of `incident.members`, in the same order.
    order: Vec<usize>,
    /// Slots free for the next member.
    free: Vec<usize>,
    /// Label name, then value, to the slots of kept members that have it (labels that
    /// weigh something only).
    by_label: HashMap<String, HashMap<String, Vec<usize>>>,
    /// (series key, start) of each kept member to its slot: how an update finds it.
    by_anomaly: HashMap<(String, TimestampMs), usize>,
    /// Kept members per series key.
    kept_series: HashMap<String, u32>,
    /// Labels of counted members (name, then values), up to [`MAX_COUNTED_LABELS`].
    counted_labels: HashMap<String, HashSet<String>>,
    counted_label_values: usize,
    /// Hashes of the series keys of counted members.
    counted_series: HashSet<u64>,
    /// Hashes of (series key, start) of counted anomalies.
    counted: HashSet<u64>,
    /// The highest severity among counted members.
    counted_severity: Severity,
    last_activity: TimestampMs,
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
    open: Vec<Open>,
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

/// How far upstream a set of labels sits: lower is further upstream.
fn upstream_rank(labels: &BTreeMap<String, String>, series: &SeriesKey) -> u8 {
    let text = labels
        .iter()
        .chain(series.labels.iter())
        .map(|(k, v)| format!("{k}={v} "))
        .collect::<String>()
        .to_ascii_lowercase()
        + &series.name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&[
        "disk", "node", "network", "kernel", "infra", "cpu", "memory",
    ]) {
        0
    } else if has(&[
        "db", "database", "postgres", "mysql", "redis", "cache", "queue", "kafka", "nats",
        "storage",
    ]) {
        1
    } else if has(&[
        "gateway", "frontend", "ingress", "lb", "proxy", "edge", "web",
    ]) {
        3
    } else {
        2
    }
}

/// What sharing a label is worth.
fn label_weight(name: &str) -> f64 {
    match name {
        "service" | "host" | "instance" | "job" | "pod" => 2.0,
        "kind" => 0.0,
        _ => 0.5,
    }
}

fn all_labels(a: &Anomaly, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut l = a.series.labels.clone();
    l.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    l
}

fn severity_of(a: &Anomaly) -> Severity {
    if a.kind == AnomalyKind::Exhaustion || a.score >= 0.9 {
        Severity::High
    } else if a.score >= 0.7 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

fn hash_of(key: &str, start: Option<TimestampMs>) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    start.hash(&mut h);
    h.finish()
}

/// The title: the likely cause and how many others joined.
fn title_of(incident: &Incident) -> String {
    let Some(c) = incident.cause() else {
        return String::new();
    };
    let kind = c.kind.as_str().replace('_', " ");
    match incident.member_count() {
        0 | 1 => format!("{kind} in {}", c.series),
        n => format!("{kind} in {} and {} more", c.series, n - 1),
    }
}

/// An anomaly about to be compared with open incidents.
struct Candidate<'a> {
    key: &'a str,
    labels: &'a BTreeMap<String, String>,
    /// Whether the series took part in a resolved incident: only then can it have
    /// learned pairs.
    learned: bool,
}

impl Open {
    fn new(incident: Incident, last_activity: TimestampMs) -> Self {
        Open {
            incident,
            slots: Vec::new(),
            order: Vec::new(),
            free: Vec::new(),
            by_label: HashMap::new(),
            by_anomaly: HashMap::new(),
            kept_series: HashMap::new(),
            counted_labels: HashMap::new(),
            counted_label_values: 0,
            counted_series: HashSet::new(),
            counted: HashSet::new(),
            counted_severity: Severity::Low,
            last_activity,
        }
    }

    /// Keeps `anomaly` in full, in onset order (after members with the same onset).
    fn keep(&mut self, anomaly: Anomaly, key: String, labels: BTreeMap<String, String>) {
        let slot = self.free.pop().unwrap_or(self.slots.len());
        if slot == self.slots.len() {
            self.slots.push(None);
        }
        for (k, v) in &labels {
            if label_weight(k) > 0.0 {
                self.by_label
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .push(slot);
            }
        }
        self.by_anomaly
            .insert((key.clone(), anomaly.start_ms), slot);
        *self.kept_series.entry(key.clone()).or_default() += 1;
        let pos = self
            .incident
            .members
            .partition_point(|m| m.start_ms <= anomaly.start_ms);
        self.slots[slot] = Some(Member {
            upstream: upstream_rank(&labels, &anomaly.series),
            key,
            labels,
        });
        self.incident.members.insert(pos, anomaly);
        self.order.insert(pos, slot);
    }

    /// Moves the kept member with the latest onset to the count.
    fn evict_last(&mut self) {
        let (Some(anomaly), Some(slot)) = (self.incident.members.pop(), self.order.pop()) else {
            return;
        };
        let Some(member) = self.slots[slot].take() else {
            return;
        };
        self.free.push(slot);
        for (k, v) in &member.labels {
            if let Some(values) = self.by_label.get_mut(k) {
                if let Some(slots) = values.get_mut(v) {
                    slots.retain(|&s| s != slot);
                    if slots.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.by_label.remove(k);
                }
            }
        }
        self.by_anomaly
            .remove(&(member.key.clone(), anomaly.start_ms));
        if let Some(n) = self.kept_series.get_mut(&member.key) {
            *n -= 1;
            if *n == 0 {
                self.kept_series.remove(&member.key);
            }
        }
        self.count(&anomaly, &member.key, &member.labels);
    }

    /// Counts a member that is not kept.
    fn count(&mut self, anomaly: &Anomaly, key: &str, labels: &BTreeMap<String, String>) {
        self.incident.more_members += 1;
        self.counted_severity = self.counted_severity.max(severity_of(anomaly));
        if self.counted.len() < MAX_COUNTED_KEYS {
            self.counted.insert(hash_of(key, Some(anomaly.start_ms)));
        }
        if self.counted_series.len() < MAX_COUNTED_KEYS {
            self.counted_series.insert(hash_of(key, None));
        }
        for (k, v) in labels {
            if label_weight(k) <= 0.0 || self.counted_label_values >= MAX_COUNTED_LABELS {
                continue;
            }
            if self
                .counted_labels
                .get(k)
                .is_none_or(|values| !values.contains(v))
            {
                self.counted_labels
                    .entry(k.clone())
                    .or_default()
                    .insert(v.clone());
                self.counted_label_values += 1;
            }
        }
    }

    /// The kept member of an update (same series and start), if there is one.
    fn kept_index(&self, id: &(String, TimestampMs)) -> Option<usize> {
        let slot = *self.by_anomaly.get(id)?;
        self.order.iter().position(|&s| s == slot)
    }

    fn member(&self, slot: usize) -> &Member {
        self.slots[slot]
            .as_ref()
            .unwrap_or_else(|| unreachable!("every slot in `order` holds a member"))
    }
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
        self.open.iter().map(|o| &o.incident)
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
        let Some(o) = self.open.iter_mut().find(|o| o.incident.id == id) else {
            return false;
        };
        if stored.more_members > 0 {
            o.incident.more_members += stored.more_members;
            o.counted_severity = o.counted_severity.max(stored.severity);
            o.incident.severity = o.incident.severity.max(stored.severity);
            o.incident.title = title_of(&o.incident);
        }
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

    /// How related the candidate is to an open incident: the best over its kept
    /// members of shared label weight plus 3 for the same series or the learned
    /// co-occurrence; and, when it has counted members, their labels taken together
    /// plus 3 if one is the same series (counted members are not kept one by one, so
    /// their labels count as one set: an upper bound of the best of them).
    fn affinity(&self, o: &Open, c: &Candidate<'_>, scratch: &mut Vec<f64>) -> f64 {
        scratch.clear();
        scratch.resize(o.slots.len(), 0.0);
        for (k, v) in c.labels {
            let w = label_weight(k);
            if w <= 0.0 {
                continue;
            }
            if let Some(slots) = o.by_label.get(k.as_str()).and_then(|m| m.get(v.as_str())) {
                for &s in slots {
                    scratch[s] += w;
                }
            }
        }
        if c.learned || o.kept_series.contains_key(c.key) {
            for &s in &o.order {
                let other = &o.member(s).key;
                scratch[s] += if other == c.key {
                    3.0
                } else if c.learned {
                    self.co_occurrence(c.key, other)
                } else {
                    0.0
                };
            }
        }
        let mut best = scratch.iter().copied().fold(0.0, f64::max);
        if o.incident.more_members > 0 {
            let mut counted = 0.0;
            for (k, v) in c.labels {
                if o.counted_labels.get(k).is_some_and(|vs| vs.contains(v)) {
                    counted += label_weight(k);
                }
            }
            if o.counted_series.contains(&hash_of(c.key, None)) {
                counted += 3.0;
            }
            best = best.max(counted);
        }
        best
    }

    /// Takes one anomaly (new, or an update of one already seen: same series and start)
    /// with extra labels (service, host, kind) and says what changed.
    pub fn observe(
        &mut self,
        anomaly: Anomaly,
        labels: &BTreeMap<String, String>,
    ) -> Vec<IncidentEvent> {
        let labels = all_labels(&anomaly, labels);
        let activity = anomaly.end_ms.max(anomaly.start_ms);
        let id = (anomaly.series.to_string(), anomaly.start_ms);
        // An update of a member: a kept one is extended in place, a counted one keeps
        // its incident active.
        let counted_hash = hash_of(&id.0, Some(id.1));
        self.joined = None;
        for o in &mut self.open {
            if let Some(i) = o.kept_index(&id) {
                let m = &mut o.incident.members[i];
                m.end_ms = m.end_ms.max(anomaly.end_ms);
                if anomaly.score > m.score {
                    m.score = anomaly.score;
                    m.reason = anomaly.reason.clone();
                }
                o.last_activity = o.last_activity.max(activity);
                self.joined = Some(o.incident.id);
                return Vec::new();
            }
            if o.counted.contains(&counted_hash) {
                o.last_activity = o.last_activity.max(activity);
                self.joined = Some(o.incident.id);
                return Vec::new();
            }
        }
        let (key, _) = id;
        let gap = self.config.join_gap_ms;
        let candidate = Candidate {
            key: &key,
            labels: &labels,
            learned: self.seen.contains_key(&key),
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut best: Option<(f64, usize)> = None;
        for (idx, o) in self.open.iter().enumerate() {
            let overlaps = anomaly.start_ms <= o.last_activity.saturating_add(gap)
                && anomaly.end_ms.saturating_add(gap) >= o.incident.opened_ms;
            if !overlaps {
                continue;
            }
            let aff = self.affinity(o, &candidate, &mut scratch);
            if aff >= self.config.min_affinity && best.is_none_or(|(b, _)| aff > b) {
                best = Some((aff, idx));
            }
        }
        self.scratch = scratch;
        match best {
            Some((_, idx)) => {
                let cap = self.config.max_members.max(1);
                let o = &mut self.open[idx];
                o.last_activity = o.last_activity.max(activity);
                self.joined = Some(o.incident.id);
                let full = o.incident.members.len() >= cap;
                let later_than_kept = o
                    .incident
                    .members
                    .last()
                    .is_some_and(|last| anomaly.start_ms >= last.start_ms);
                if full && later_than_kept {
                    // Counted, not kept: the kept members and the cause stay as they
                    // are, so there is nothing new to tell unless the severity rose.
                    let before = o.incident.severity;
                    o.count(&anomaly, &key, &labels);
                    o.incident.severity = before.max(o.counted_severity);
                    o.incident.title = title_of(&o.incident);
                    return if o.incident.severity > before {
                        vec![IncidentEvent::Grew(o.incident.clone())]
                    } else {
                        Vec::new()
                    };
                }
                // Kept: the incident keeps its earliest members, so one that began
                // before the latest kept one displaces it to the count.
                o.keep(anomaly, key, labels);
                if o.incident.members.len() > cap {
                    o.evict_last();
                }
                self.rank(idx);
                vec![IncidentEvent::Grew(self.open[idx].incident.clone())]
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
                let mut o = Open::new(incident, activity);
                o.keep(anomaly, key, labels);
                self.open.push(o);
                let idx = self.open.len() - 1;
                self.rank(idx);
                vec![IncidentEvent::Opened(self.open[idx].incident.clone())]
            }
        }
    }

    /// Picks the likely cause among the kept members (already in onset order); sets
    /// title and severity.
    fn rank(&mut self, idx: usize) {
        let tie = self.config.tie_ms.max(1);
        let led = &self.led;
        let o = &mut self.open[idx];
        let members = &o.incident.members;
        let first = members.first().map_or(0, |m| m.start_ms);
        let cause = (0..members.len())
            .take_while(|&i| members[i].start_ms - first <= tie)
            .min_by_key(|&i| {
                let m = o.member(o.order[i]);
                (
                    m.upstream,
                    std::cmp::Reverse(led.get(&m.key).copied().unwrap_or(0)),
                    members[i].start_ms,
                )
            })
            .unwrap_or(0);
        o.incident.severity = members
            .iter()
            .map(severity_of)
            .max()
            .unwrap_or(Severity::Low)
            .max(o.counted_severity);
        o.incident.opened_ms = first;
        o.incident.likely_cause = cause;
        o.incident.title = title_of(&o.incident);
    }

    /// Resolves incidents quiet since `now_ms - resolve_after`, learning which series
    /// were anomalous together.
    pub fn tick(&mut self, now_ms: TimestampMs) -> Vec<IncidentEvent> {
        let after = self.config.resolve_after_ms;
        let (done, keep): (Vec<Open>, Vec<Open>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|o| now_ms.saturating_sub(o.last_activity) >= after);
        self.open = keep;
        let mut events = Vec::new();
        for o in done {
            self.learn(&o);
            let mut incident = o.incident;
            incident.status = IncidentStatus::Resolved;
            incident.resolved_ms = Some(o.last_activity.saturating_add(after));
            events.push(IncidentEvent::Resolved(incident));
        }
        events
    }

    /// Learns from a resolved incident's kept members (at most `max_members`, so at
    /// most `max_members²/2` pairs, and none past 64 members).
    fn learn(&mut self, o: &Open) {
        let mut keys: Vec<&str> = o.order.iter().map(|&s| o.member(s).key.as_str()).collect();
        let cause = o
            .order
            .get(o.incident.likely_cause)
            .map(|&s| &o.member(s).key);
        keys.sort_unstable();
        keys.dedup();
        for &k in &keys {
            *self.seen.entry(k.to_string()).or_default() += 1;
        }
        if let Some(c) = cause {
            *self.led.entry(c.clone()).or_default() += 1;
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
mod tests {
    use super::*;

    fn anomaly(
        name: &str,
        service: &str,
        host: &str,
        start_min: i64,
    ) -> (Anomaly, BTreeMap<String, String>) {
        let series = SeriesKey::new(name)
            .with_label("service", service)
            .with_label("host", host);
        let a = Anomaly {
            series,
            kind: AnomalyKind::Spike,
            start_ms: start_min * 60_000,
            end_ms: (start_min + 3) * 60_000,
            score: 0.8,
            reason: "spike".into(),
        };
        (a, BTreeMap::new())
    }

    fn run(
        c: &mut Correlator,
        items: Vec<(Anomaly, BTreeMap<String, String>)>,
        end_min: i64,
    ) -> Vec<Incident> {
        let mut resolved = Vec::new();
        for (a, l) in items {
            for e in c.tick(a.start_ms) {
                if let IncidentEvent::Resolved(i) = e {
                    resolved.push(i);
                }
            }
            c.observe(a, &l);
        }
        for e in c.tick(end_min * 60_000) {
            if let IncidentEvent::Resolved(i) = e {
                resolved.push(i);
            }
        }
        resolved.sort_by_key(|i| i.opened_ms);
        resolved
    }

    fn names(i: &Incident) -> Vec<String> {
        let mut v: Vec<String> = i.members.iter().map(|m| m.series.name.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn groups_by_time_and_shared_labels_and_ranks_the_cause() {
        let mut c = Correlator::new(CorrelatorConfig::default());
        let got = run(
            &mut c,
            vec![
                // Incident 1: the database host's disk, then the db, then the api.
                anomaly("disk_io", "orders-db", "db1", 100),
                anomaly("db_latency", "orders-db", "db1", 101),
                anomaly("api_latency", "orders-db", "web1", 103),
                // Unrelated, same time: another service on another host.
                anomaly("queue_depth", "mailer", "mq1", 102),
                // Incident 2, much later.
                anomaly("api_errors", "cart", "web2", 400),
                anomaly("gateway_5xx", "cart", "edge1", 400),
            ],
            1000,
        );
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(names(&got[0]), ["api_latency", "db_latency", "disk_io"]);
        assert_eq!(
            got[0].cause().map(|a| a.series.name.as_str()),
            Some("disk_io")
        );
        assert_eq!(names(&got[1]), ["queue_depth"]);
        assert_eq!(names(&got[2]), ["api_errors", "gateway_5xx"]);
        // Same onset: the service is upstream of the gateway.
        assert_eq!(
            got[2].cause().map(|a| a.series.name.as_str()),
            Some("api_errors")
        );
        assert!(got.iter().all(|i| i.status == IncidentStatus::Resolved));
    }

    #[test]
    fn learns_co_occurrence_across_unlabelled_series() {
        let mut c = Correlator::new(CorrelatorConfig::default());
        let bare = |name: &str, start_min: i64, service: Option<&str>| {
            let (mut a, _) = anomaly(name, "", "", start_min);
            a.series = SeriesKey::new(name);
            let mut extra = BTreeMap::new();
            if let Some(s) = service {
                extra.insert("service".to_string(), s.to_string());
            }
            (a, extra)
        };
        // Twice the two series fail together under a shared service label...
        for k in 0..2 {
            let t = 1000 * k;
            let got = run(
                &mut c,
                vec![
                    bare("a_rate", t, Some("shop")),
                    bare("b_rate", t + 2, Some("shop")),
                ],
                t + 500,
            );
            assert_eq!(got.len(), 1);
        }
        // ...so later, with no labels at all, they are still grouped; a stranger is not.
        let got = run(
            &mut c,
            vec![
                bare("a_rate", 5000, None),
                bare("b_rate", 5002, None),
                bare("c_rate", 5001, None),
            ],
            6000,
        );
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!(names(&got[0]), ["a_rate", "b_rate"]);
        assert_eq!(names(&got[1]), ["c_rate"]);
    }

    /// The `i`-th of `n` flood anomalies: one per series, all sharing `env` and `job`,
    /// onsets 10 ms apart in a scrambled order whose earliest arrives last.
    fn flood(i: u64, n: u64) -> (Anomaly, BTreeMap<String, String>) {
        let onset = ((i + 1) * 7_919) % n;
        let series = SeriesKey::new("node_network_receive_bytes_total")
            .with_label("env", "prod")
            .with_label("job", "node")
            .with_label("instance", format!("10.0.{}.{}:9100", i / 250, i % 250));
        let start = 1_000_000 + i64::try_from(onset).unwrap() * 10;
        let a = Anomaly {
            series,
            kind: AnomalyKind::Spike,
            start_ms: start,
            end_ms: start + 60_000,
            score: if i == 7 { 0.95 } else { 0.75 },
            reason: format!("spike {i}"),
        };
        let mut extra = BTreeMap::new();
        extra.insert("kind".to_string(), "spike".to_string());
        (a, extra)
    }

    #[test]
    fn a_flood_keeps_the_earliest_members_counts_the_rest_and_raises_few_events() {
        const N: u64 = 50_000;
        let mut c = Correlator::new(CorrelatorConfig::default());
        let cap = c.config.max_members;
        let (mut opened, mut grew) = (0, 0);
        let mut inputs: Vec<_> = (0..N).map(|i| flood(i, N)).collect();
        let earliest = inputs.last().unwrap().0.clone();
        for (a, l) in inputs.drain(..) {
            for e in c.observe(a, &l) {
                match e {
                    IncidentEvent::Opened(i) => {
                        opened += 1;
                        assert!(i.members.len() <= cap);
                    }
                    IncidentEvent::Grew(i) => {
                        grew += 1;
                        assert!(i.members.len() <= cap);
                    }
                    IncidentEvent::Resolved(_) => unreachable!(),
                }
            }
        }
        let open: Vec<Incident> = c.open_incidents().cloned().collect();
        assert_eq!(open.len(), 1);
        let incident = &open[0];
        let incident_id = incident.id;
        // The last one joined (it was kept: the earliest of all).
        assert_eq!(c.joined(), Some(incident_id));
        assert_eq!(opened, 1);
        // One event per change of the kept members (the earliest ones arrive in a
        // scrambled order, so about cap * ln(N / cap) of them), none per counted one.
        assert!(grew < 2_000, "{grew} grew events");
        assert_eq!(incident.members.len(), cap);
        assert_eq!(incident.more_members, N - cap as u64);
        assert_eq!(incident.member_count(), N);
        assert!(
            incident
                .members
                .windows(2)
                .all(|w| w[0].start_ms <= w[1].start_ms)
        );
        assert_eq!(
            incident.members.last().unwrap().start_ms,
            1_000_000 + (cap as i64 - 1) * 10
        );
        assert_eq!(incident.cause(), Some(&earliest));
        assert_eq!(incident.opened_ms, earliest.start_ms);
        // The one medium-high anomaly (score 0.95) was counted, not kept, and still
        // raised the severity.
        assert_eq!(incident.severity, Severity::High);
        assert_eq!(
            incident.title,
            format!("spike in {} and {} more", earliest.series, N - 1)
        );

        // An update of a kept member still extends it, and raises nothing.
        let mut update = earliest.clone();
        update.end_ms += 600_000;
        update.score = 0.99;
        update.reason = "spike, longer".into();
        assert!(c.observe(update.clone(), &flood(N - 1, N).1).is_empty());
        let incident = c.open_incidents().next().unwrap();
        assert_eq!(incident.members[0], update);
        assert_eq!(incident.more_members, N - cap as u64);
        // An update of a counted one is not counted again.
        let (mut counted, extra) = flood(0, N);
        counted.end_ms += 1_000;
        assert!(c.observe(counted, &extra).is_empty());
        assert_eq!(c.joined(), Some(incident_id));
        assert_eq!(
            c.open_incidents().next().unwrap().more_members,
            N - cap as u64
        );

        // Resolving learns from the kept members only: no pairs past 64 members.
        let resolved = c.tick(update.end_ms + c.config.resolve_after_ms);
        assert_eq!(resolved.len(), 1);
        assert_eq!(c.pair_count, 0);
        assert_eq!(c.seen.len(), cap);
    }

    #[test]
    fn a_counted_members_series_and_labels_still_draw_anomalies_in() {
        let mut c = Correlator::new(CorrelatorConfig {
            max_members: 2,
            ..CorrelatorConfig::default()
        });
        c.observe(
            anomaly("disk_io", "orders-db", "db1", 100).0,
            &BTreeMap::new(),
        );
        c.observe(
            anomaly("db_latency", "orders-db", "db1", 101).0,
            &BTreeMap::new(),
        );
        // Shares the service: joins, past the cap, so it is counted.
        let events = c.observe(
            anomaly("api_latency", "orders-db", "web1", 102).0,
            &BTreeMap::new(),
        );
        assert!(events.is_empty(), "{events:?}");
        // Shares only the host of the counted member: joins through it.
        let events = c.observe(anomaly("web_cpu", "nginx", "web1", 103).0, &BTreeMap::new());
        assert!(events.is_empty(), "{events:?}");
        // Earlier than the kept ones: kept, the latest kept one is counted instead, and
        // the cause changes.
        let events = c.observe(anomaly("node_disk", "infra", "db1", 99).0, &BTreeMap::new());
        let [IncidentEvent::Grew(i)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(names(i), ["disk_io", "node_disk"]);
        assert_eq!(i.more_members, 3);
        assert_eq!(i.cause().map(|a| a.series.name.as_str()), Some("node_disk"));
        assert_eq!(i.opened_ms, 99 * 60_000);
        assert_eq!(
            i.title,
            format!("spike in {} and 4 more", i.members[0].series)
        );
        // The displaced member's next anomaly (same series, later start) joins through
        // its series, and an update of it is not counted twice.
        let (mut again, _) = anomaly("db_latency", "", "", 104);
        again.series = anomaly("db_latency", "orders-db", "db1", 0).0.series;
        c.observe(again.clone(), &BTreeMap::new());
        again.end_ms += 60_000;
        c.observe(again, &BTreeMap::new());
        let open: Vec<_> = c.open_incidents().collect();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].more_members, 4);
    }

    #[test]
    fn a_stored_count_is_carried_over_to_the_incident_replayed_from_it() {
        let config = CorrelatorConfig {
            max_members: 2,
            ..CorrelatorConfig::default()
        };
        let mut before = Correlator::new(config.clone());
        for (i, name) in ["disk_io", "db_latency", "api_latency", "api_errors"]
            .iter()
            .enumerate()
        {
            let (mut a, l) = anomaly(name, "orders-db", "db1", 100 + i as i64);
            if i == 3 {
                a.score = 0.95;
            }
            before.observe(a, &l);
        }
        let stored = before.open_incidents().next().unwrap().clone();
        assert_eq!((stored.members.len(), stored.more_members), (2, 2));
        assert_eq!(stored.severity, Severity::High);
        // Through JSON, as the stores keep it; and a body from before the field existed
        // reads as nothing counted.
        let json = serde_json::to_string(&stored).unwrap();
        let read: Incident = serde_json::from_str(&json).unwrap();
        assert_eq!(read, stored);
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old.as_object_mut().unwrap().remove("more_members");
        let old: Incident = serde_json::from_value(old).unwrap();
        assert_eq!(old.more_members, 0);

        let mut after = Correlator::new(config);
        let mut id = None;
        for m in &read.members {
            for e in after.observe(m.clone(), &BTreeMap::new()) {
                if let IncidentEvent::Opened(i) = e {
                    id = Some(i.id);
                }
            }
        }
        assert!(after.carry_over(id.unwrap(), &read));
        let mut restored = after.open_incidents().next().unwrap().clone();
        restored.id = read.id;
        assert_eq!(restored, read);
        assert!(!after.carry_over(99, &read));
    }
}
