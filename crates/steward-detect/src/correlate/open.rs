//! One open incident: its kept members (the earliest by onset, in full, with indexes by
//! label and by anomaly), its counted members (only their labels, series and anomalies
//! as hashed sets), and what follows from them: how related a new anomaly is, the
//! likely cause, the severity and the title. Which incident an anomaly joins, and what
//! is learned across incidents, is the correlator's business, not this module's.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use steward_core::{Anomaly, AnomalyKind, Incident, SeriesKey, Severity, TimestampMs};

/// The most distinct label values remembered for an incident's counted members.
const MAX_COUNTED_LABELS: usize = 4_096;
/// The most counted anomalies and series an incident remembers (by hash), so that an
/// update of a counted anomaly is not counted again and a series' next anomaly joins.
/// Past it, anomalies are still counted but not remembered (an update of one may then
/// be counted again). 262,144 covers issue 10's 96,000 series more than twice, and the
/// two sets of 64-bit hashes stay under about 10 MB for the largest incident.
const MAX_COUNTED_KEYS: usize = 1 << 18;

/// What sharing a label is worth.
fn label_weight(name: &str) -> f64 {
    match name {
        "service" | "host" | "instance" | "job" | "pod" => 2.0,
        "kind" => 0.0,
        _ => 0.5,
    }
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

/// The severity one anomaly alone gives an incident.
pub(super) fn severity_of(a: &Anomaly) -> Severity {
    if a.kind == AnomalyKind::Exhaustion || a.score >= 0.9 {
        Severity::High
    } else if a.score >= 0.7 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// How a counted anomaly (series key and start) is remembered.
pub(super) fn counted_hash(key: &str, start: TimestampMs) -> u64 {
    hash_of(key, Some(start))
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
pub(super) struct Candidate<'a> {
    /// The series key as text.
    pub(super) key: &'a str,
    /// The series' labels with the extra ones.
    pub(super) labels: &'a BTreeMap<String, String>,
    /// Whether the series took part in a resolved incident: only then can it have
    /// learned pairs.
    pub(super) learned: bool,
}

/// What joining did to an incident.
pub(super) enum Joined {
    /// The anomaly is kept in full: the members changed.
    Kept,
    /// The incident was full and the anomaly is only counted; `severity_rose` says
    /// whether that raised the incident's severity.
    Counted { severity_rose: bool },
}

/// What the incident keeps of a member besides the anomaly: computed once, when it
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

/// An incident still open, with its indexes.
#[derive(Debug, Clone)]
pub(super) struct OpenIncident {
    /// Its members sorted by onset, at most the correlator's `max_members`.
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

impl OpenIncident {
    /// A new incident holding its first anomaly.
    pub(super) fn open(
        incident: Incident,
        anomaly: Anomaly,
        key: String,
        labels: BTreeMap<String, String>,
        activity: TimestampMs,
    ) -> Self {
        let mut o = OpenIncident {
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
            last_activity: activity,
        };
        o.keep(anomaly, key, labels);
        o
    }

    pub(super) fn incident(&self) -> &Incident {
        &self.incident
    }

    /// The incident, once it is no longer open.
    pub(super) fn into_incident(self) -> Incident {
        self.incident
    }

    pub(super) fn last_activity(&self) -> TimestampMs {
        self.last_activity
    }

    /// Whether an anomaly from `start_ms` to `end_ms` is close enough in time to join,
    /// give or take `gap_ms`.
    pub(super) fn overlaps(&self, start_ms: TimestampMs, end_ms: TimestampMs, gap_ms: i64) -> bool {
        start_ms <= self.last_activity.saturating_add(gap_ms)
            && end_ms.saturating_add(gap_ms) >= self.incident.opened_ms
    }

    /// Takes an update of one of its members (`id`: the same series key and start;
    /// `counted_hash`: [`counted_hash`] of it): a kept member is extended in place, a
    /// counted one only keeps the incident active. Returns false when the anomaly is
    /// not one of its members.
    pub(super) fn update(
        &mut self,
        id: &(String, TimestampMs),
        counted_hash: u64,
        anomaly: &Anomaly,
    ) -> bool {
        let activity = anomaly.end_ms.max(anomaly.start_ms);
        if let Some(i) = self.kept_index(id) {
            let m = &mut self.incident.members[i];
            m.end_ms = m.end_ms.max(anomaly.end_ms);
            if anomaly.score > m.score {
                m.score = anomaly.score;
                m.reason = anomaly.reason.clone();
            }
        } else if !self.counted.contains(&counted_hash) {
            return false;
        }
        self.last_activity = self.last_activity.max(activity);
        true
    }

    /// How related the candidate is: the best over the kept members of shared label
    /// weight plus 3 for the same series or `co_occurrence` of the two series; and,
    /// when there are counted members, their labels taken together plus 3 if one is
    /// the same series (counted members are not kept one by one, so their labels
    /// count as one set: an upper bound of the best of them). `scratch` is reused
    /// from call to call.
    pub(super) fn affinity(
        &self,
        c: &Candidate<'_>,
        co_occurrence: impl Fn(&str, &str) -> f64,
        scratch: &mut Vec<f64>,
    ) -> f64 {
        scratch.clear();
        scratch.resize(self.slots.len(), 0.0);
        for (k, v) in c.labels {
            let w = label_weight(k);
            if w <= 0.0 {
                continue;
            }
            if let Some(slots) = self
                .by_label
                .get(k.as_str())
                .and_then(|m| m.get(v.as_str()))
            {
                for &s in slots {
                    scratch[s] += w;
                }
            }
        }
        if c.learned || self.kept_series.contains_key(c.key) {
            for &s in &self.order {
                let other = &self.member(s).key;
                scratch[s] += if other == c.key {
                    3.0
                } else if c.learned {
                    co_occurrence(c.key, other)
                } else {
                    0.0
                };
            }
        }
        let mut best = scratch.iter().copied().fold(0.0, f64::max);
        if self.incident.more_members > 0 {
            let mut counted = 0.0;
            for (k, v) in c.labels {
                if self.counted_labels.get(k).is_some_and(|vs| vs.contains(v)) {
                    counted += label_weight(k);
                }
            }
            if self.counted_series.contains(&hash_of(c.key, None)) {
                counted += 3.0;
            }
            best = best.max(counted);
        }
        best
    }

    /// Takes a new member. The incident keeps its earliest `cap` members: a later one
    /// than every kept member of a full incident is only counted, an earlier one
    /// displaces the latest kept one to the count. After [`Joined::Kept`] the caller
    /// ranks the cause again ([`OpenIncident::rank`]).
    pub(super) fn join(
        &mut self,
        anomaly: Anomaly,
        key: String,
        labels: BTreeMap<String, String>,
        cap: usize,
    ) -> Joined {
        self.last_activity = self.last_activity.max(anomaly.end_ms.max(anomaly.start_ms));
        let full = self.incident.members.len() >= cap;
        let later_than_kept = self
            .incident
            .members
            .last()
            .is_some_and(|last| anomaly.start_ms >= last.start_ms);
        if full && later_than_kept {
            let before = self.incident.severity;
            self.count(&anomaly, &key, &labels);
            self.incident.severity = before.max(self.counted_severity);
            self.incident.title = title_of(&self.incident);
            return Joined::Counted {
                severity_rose: self.incident.severity > before,
            };
        }
        self.keep(anomaly, key, labels);
        if self.incident.members.len() > cap {
            self.evict_last();
        }
        Joined::Kept
    }

    /// Adds what a stored copy of this incident counted but did not keep: its count
    /// and the severity it may have raised.
    pub(super) fn carry_over(&mut self, stored: &Incident) {
        if stored.more_members == 0 {
            return;
        }
        self.incident.more_members += stored.more_members;
        self.counted_severity = self.counted_severity.max(stored.severity);
        self.incident.severity = self.incident.severity.max(stored.severity);
        self.incident.title = title_of(&self.incident);
    }

    /// Picks the likely cause among the kept members (in onset order): among onsets
    /// within `tie_ms` of the first, the most upstream, then the one that `led` most
    /// past incidents, then the earliest. Sets the title and severity.
    pub(super) fn rank(&mut self, tie_ms: i64, led: impl Fn(&str) -> u32) {
        let members = &self.incident.members;
        let first = members.first().map_or(0, |m| m.start_ms);
        let cause = (0..members.len())
            .take_while(|&i| members[i].start_ms - first <= tie_ms)
            .min_by_key(|&i| {
                let m = self.member(self.order[i]);
                (
                    m.upstream,
                    std::cmp::Reverse(led(&m.key)),
                    members[i].start_ms,
                )
            })
            .unwrap_or(0);
        self.incident.severity = members
            .iter()
            .map(severity_of)
            .max()
            .unwrap_or(Severity::Low)
            .max(self.counted_severity);
        self.incident.opened_ms = first;
        self.incident.likely_cause = cause;
        self.incident.title = title_of(&self.incident);
    }

    /// The series keys of the kept members, in onset order.
    pub(super) fn kept_keys(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|&s| self.member(s).key.as_str())
    }

    /// The series key of the likely cause.
    pub(super) fn cause_key(&self) -> Option<&str> {
        self.order
            .get(self.incident.likely_cause)
            .map(|&s| self.member(s).key.as_str())
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
            self.counted.insert(counted_hash(key, anomaly.start_ms));
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
