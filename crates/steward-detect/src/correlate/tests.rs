//! The correlator on generated scenarios with known groupings.

use super::*;
use steward_core::{AnomalyKind, SeriesKey, Severity};

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
