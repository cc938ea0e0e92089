//! Incident correlation: anomalies from many series grouped into incidents.
//!
//! An anomaly joins an open incident when it overlaps it in time (give or take the
//! join gap) and is related to one of its members: the same service or host, other
//! shared labels, or a pair of series that were anomalous together in past incidents
//! (learned co-occurrence). The likely first cause is the member with the earliest
//! onset; onsets within the tie tolerance are ranked by how far upstream their labels
//! sit (host and datastore before service, service before gateway) and then by how
//! often that series led in past incidents.

use std::collections::{BTreeMap, HashMap};

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
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            join_gap_ms: 10 * 60_000,
            resolve_after_ms: 30 * 60_000,
            tie_ms: 60_000,
            min_affinity: 2.0,
            max_pairs: 100_000,
        }
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "incident", rename_all = "lowercase")]
pub enum IncidentEvent {
    /// A new incident.
    Opened(Incident),
    /// An open incident gained a member (the likely cause may have changed).
    Grew(Incident),
    /// An incident was quiet for the resolve interval.
    Resolved(Incident),
}

#[derive(Debug, Clone)]
struct Open {
    incident: Incident,
    labels: Vec<BTreeMap<String, String>>,
    last_activity: TimestampMs,
}

/// Groups anomalies from many series into incidents. Feed it with [`Correlator::observe`]
/// and let time pass with [`Correlator::tick`].
#[derive(Debug, Clone, Default)]
pub struct Correlator {
    config: CorrelatorConfig,
    open: Vec<Open>,
    next_id: u64,
    /// Incidents each series took part in.
    seen: HashMap<String, u32>,
    /// Incidents each series was the first cause of.
    led: HashMap<String, u32>,
    /// Incidents each pair of series shared (keys ordered).
    pairs: HashMap<(String, String), u32>,
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

fn pair_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
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

    fn affinity(
        &self,
        a: &Anomaly,
        labels: &BTreeMap<String, String>,
        other: &Anomaly,
        other_labels: &BTreeMap<String, String>,
    ) -> f64 {
        let mut s = 0.0;
        for (k, v) in labels {
            if other_labels.get(k) == Some(v) {
                s += match k.as_str() {
                    "service" | "host" | "instance" | "job" | "pod" => 2.0,
                    "kind" => 0.0,
                    _ => 0.5,
                };
            }
        }
        let (ka, kb) = (a.series.to_string(), other.series.to_string());
        if ka == kb {
            s += 3.0;
        } else if let Some(&together) = self.pairs.get(&pair_key(&ka, &kb)) {
            let least = self
                .seen
                .get(&ka)
                .copied()
                .unwrap_or(0)
                .min(self.seen.get(&kb).copied().unwrap_or(0))
                .max(1);
            // Learned co-occurrence: how often the rarer of the two was anomalous with
            // the other, trusted once seen at least twice.
            if together >= 2 {
                s += 3.0 * f64::from(together) / f64::from(least);
            }
        }
        s
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
        // An update of a member: extend it in place.
        for o in &mut self.open {
            if let Some(m) = o
                .incident
                .members
                .iter_mut()
                .find(|m| m.series == anomaly.series && m.start_ms == anomaly.start_ms)
            {
                m.end_ms = m.end_ms.max(anomaly.end_ms);
                if anomaly.score > m.score {
                    m.score = anomaly.score;
                    m.reason = anomaly.reason.clone();
                }
                o.last_activity = o.last_activity.max(activity);
                return Vec::new();
            }
        }
        let gap = self.config.join_gap_ms;
        let mut best: Option<(f64, usize)> = None;
        for (idx, o) in self.open.iter().enumerate() {
            let overlaps = anomaly.start_ms <= o.last_activity.saturating_add(gap)
                && anomaly.end_ms.saturating_add(gap) >= o.incident.opened_ms;
            if !overlaps {
                continue;
            }
            let aff = o
                .incident
                .members
                .iter()
                .zip(&o.labels)
                .map(|(m, ml)| self.affinity(&anomaly, &labels, m, ml))
                .fold(0.0, f64::max);
            if aff >= self.config.min_affinity && best.is_none_or(|(b, _)| aff > b) {
                best = Some((aff, idx));
            }
        }
        match best {
            Some((_, idx)) => {
                let o = &mut self.open[idx];
                o.incident.members.push(anomaly);
                o.labels.push(labels);
                o.last_activity = o.last_activity.max(activity);
                self.rank(idx);
                vec![IncidentEvent::Grew(self.open[idx].incident.clone())]
            }
            None => {
                self.next_id += 1;
                let incident = Incident {
                    id: self.next_id,
                    title: String::new(),
                    status: IncidentStatus::Open,
                    severity: severity_of(&anomaly),
                    opened_ms: anomaly.start_ms,
                    resolved_ms: None,
                    members: vec![anomaly],
                    likely_cause: 0,
                };
                self.open.push(Open {
                    incident,
                    labels: vec![labels],
                    last_activity: activity,
                });
                let idx = self.open.len() - 1;
                self.rank(idx);
                vec![IncidentEvent::Opened(self.open[idx].incident.clone())]
            }
        }
    }

    /// Orders members by onset and picks the likely cause; sets title and severity.
    fn rank(&mut self, idx: usize) {
        let tie = self.config.tie_ms.max(1);
        let led = &self.led;
        let o = &mut self.open[idx];
        let mut order: Vec<usize> = (0..o.incident.members.len()).collect();
        order.sort_by_key(|&i| o.incident.members[i].start_ms);
        let members: Vec<Anomaly> = order
            .iter()
            .map(|&i| o.incident.members[i].clone())
            .collect();
        let labels: Vec<BTreeMap<String, String>> =
            order.iter().map(|&i| o.labels[i].clone()).collect();
        let first = members.first().map_or(0, |m| m.start_ms);
        let cause = (0..members.len())
            .filter(|&i| members[i].start_ms - first <= tie)
            .min_by_key(|&i| {
                (
                    upstream_rank(&labels[i], &members[i].series),
                    std::cmp::Reverse(
                        led.get(&members[i].series.to_string())
                            .copied()
                            .unwrap_or(0),
                    ),
                    members[i].start_ms,
                )
            })
            .unwrap_or(0);
        o.incident.severity = members
            .iter()
            .map(severity_of)
            .max()
            .unwrap_or(Severity::Low);
        o.incident.opened_ms = first;
        o.incident.title = match members.get(cause) {
            Some(c) if members.len() > 1 => format!(
                "{} in {} and {} more",
                c.kind.as_str().replace('_', " "),
                c.series,
                members.len() - 1
            ),
            Some(c) => format!("{} in {}", c.kind.as_str().replace('_', " "), c.series),
            None => String::new(),
        };
        o.incident.members = members;
        o.labels = labels;
        o.incident.likely_cause = cause;
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
        for mut o in done {
            self.learn(&o.incident);
            o.incident.status = IncidentStatus::Resolved;
            o.incident.resolved_ms = Some(o.last_activity.saturating_add(after));
            events.push(IncidentEvent::Resolved(o.incident));
        }
        events
    }

    fn learn(&mut self, incident: &Incident) {
        let mut keys: Vec<String> = incident
            .members
            .iter()
            .map(|m| m.series.to_string())
            .collect();
        keys.sort();
        keys.dedup();
        for k in &keys {
            *self.seen.entry(k.clone()).or_default() += 1;
        }
        if let Some(c) = incident.cause() {
            *self.led.entry(c.series.to_string()).or_default() += 1;
        }
        if self.pairs.len() + keys.len() * keys.len() > self.config.max_pairs {
            // Forget pairs seen only once, so memory stays bounded.
            self.pairs.retain(|_, n| *n > 1);
        }
        if keys.len() <= 64 {
            for (i, a) in keys.iter().enumerate() {
                for b in &keys[i + 1..] {
                    *self.pairs.entry(pair_key(a, b)).or_default() += 1;
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
}
