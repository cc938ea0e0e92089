//! The PostgreSQL store (`--store postgres://...`): the same tables as the embedded
//! store, so several steward processes can later share one database.
//!
//! Batches go in with one statement per table (`unnest` over arrays), inside one
//! transaction that commits before [`Store::append`] returns; PostgreSQL's default
//! `synchronous_commit = on` makes that durable.
//!
//! The `postgres` client runs its own small runtime, so it must be created, used and
//! dropped off the async threads: the service opens it in a blocking task, uses it from
//! the writer and pipeline threads and blocking tasks, and drops it in a blocking task.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use postgres::{Client, NoTls};
use steward_core::{Incident, IncidentStatus, LogLevel, LogRecord, SeriesKey, TimestampMs};

use super::{
    AnalysisBatch, Band, LogQuery, Point, SeriesId, SeriesInfo, Store, StoreError, StoreStats,
    StoredAnomaly, StoredLog, TemplateRow, WriteBatch,
};

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS logs (
    id BIGSERIAL PRIMARY KEY,
    ts BIGINT NOT NULL,
    service TEXT,
    level INTEGER,
    body TEXT NOT NULL,
    attributes TEXT
);
CREATE INDEX IF NOT EXISTS logs_ts ON logs(ts);
CREATE TABLE IF NOT EXISTS series (
    id BIGSERIAL PRIMARY KEY,
    selector TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    labels TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    series_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, ts)
);
CREATE TABLE IF NOT EXISTS bands (
    series_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    expected DOUBLE PRECISION NOT NULL,
    lower DOUBLE PRECISION NOT NULL,
    upper DOUBLE PRECISION NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, ts)
);
CREATE TABLE IF NOT EXISTS templates (
    id BIGINT PRIMARY KEY,
    text TEXT NOT NULL,
    level TEXT,
    count BIGINT NOT NULL,
    sample TEXT NOT NULL,
    services TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS anomalies (
    selector TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    series_id BIGINT,
    incident_id BIGINT,
    body TEXT NOT NULL,
    PRIMARY KEY (selector, start_ms)
);
CREATE TABLE IF NOT EXISTS incidents (
    id BIGINT PRIMARY KEY,
    status TEXT NOT NULL,
    opened_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
";

/// The PostgreSQL store.
pub struct PostgresStore {
    writer: Mutex<Client>,
    reader: Mutex<Client>,
    interned: Mutex<HashMap<SeriesKey, SeriesId>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    m.lock().map_err(|_| StoreError::Poisoned)
}

fn rank(level: Option<LogLevel>) -> Option<i32> {
    level.map(|l| match l {
        LogLevel::Trace => 1,
        LogLevel::Debug => 2,
        LogLevel::Info => 3,
        LogLevel::Warn => 4,
        LogLevel::Error => 5,
        LogLevel::Fatal => 6,
    })
}

fn level_of(rank: Option<i32>) -> Option<LogLevel> {
    Some(match rank? {
        1 => LogLevel::Trace,
        2 => LogLevel::Debug,
        3 => LogLevel::Info,
        4 => LogLevel::Warn,
        5 => LogLevel::Error,
        6 => LogLevel::Fatal,
        _ => return None,
    })
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn status_str(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Open => "open",
        IncidentStatus::Resolved => "resolved",
    }
}

impl PostgresStore {
    /// Connects and creates the tables if needed. Call from a blocking thread.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut writer = Client::connect(url, NoTls)?;
        writer.batch_execute(SCHEMA)?;
        let reader = Client::connect(url, NoTls)?;
        Ok(PostgresStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            interned: Mutex::new(HashMap::new()),
        })
    }
}

fn insert_samples(
    tx: &mut postgres::Transaction<'_>,
    samples: &[(SeriesId, steward_core::Sample)],
) -> Result<(), StoreError> {
    if samples.is_empty() {
        return Ok(());
    }
    // Later points of the same series and time win, as in the embedded store; one
    // INSERT may not touch a row twice, so duplicates are folded first.
    let mut latest: HashMap<(SeriesId, i64), f64> = HashMap::with_capacity(samples.len());
    for (id, s) in samples {
        latest.insert((*id, s.timestamp_ms), s.value);
    }
    let (mut ids, mut ts, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for ((id, t), v) in latest {
        ids.push(id);
        ts.push(t);
        values.push(v);
    }
    tx.execute(
        "INSERT INTO samples (series_id, ts, value)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[])
         ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value",
        &[&ids, &ts, &values],
    )?;
    Ok(())
}

impl Store for PostgresStore {
    fn append(&self, batch: &WriteBatch) -> Result<Option<i64>, StoreError> {
        let mut client = lock(&self.writer)?;
        let mut tx = client.transaction()?;
        if !batch.logs.is_empty() {
            let n = batch.logs.len();
            let (mut ts, mut service, mut level, mut body, mut attributes) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for r in &batch.logs {
                ts.push(r.timestamp_ms.unwrap_or(0));
                service.push(r.service.clone());
                level.push(rank(r.level));
                body.push(r.body.clone());
                attributes.push(if r.attributes.is_empty() {
                    None
                } else {
                    Some(serde_json::to_string(&r.attributes)?)
                });
            }
            tx.execute(
                "INSERT INTO logs (ts, service, level, body, attributes)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[])",
                &[&ts, &service, &level, &body, &attributes],
            )?;
        }
        insert_samples(&mut tx, &batch.samples)?;
        let last = if batch.logs.is_empty() {
            None
        } else {
            Some(
                tx.query_one("SELECT currval(pg_get_serial_sequence('logs', 'id'))", &[])?
                    .get::<_, i64>(0),
            )
        };
        tx.commit()?;
        Ok(last)
    }

    fn logs_after(&self, after: i64, limit: usize) -> Result<Vec<StoredLog>, StoreError> {
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT id, ts, service, level, body, attributes FROM logs WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &i64_of(limit as u64)],
        )?;
        rows.iter().map(stored_log).collect()
    }

    fn intern(&self, keys: &[&SeriesKey]) -> Result<Vec<SeriesId>, StoreError> {
        let mut cache = lock(&self.interned)?;
        let mut out = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match cache.get(*key) {
                Some(id) => out.push(*id),
                None => {
                    out.push(0);
                    missing.push(i);
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let mut client = lock(&self.writer)?;
        let mut tx = client.transaction()?;
        for i in missing {
            let key = keys[i];
            if let Some(id) = cache.get(key) {
                out[i] = *id;
                continue;
            }
            let selector = key.to_string();
            tx.execute(
                "INSERT INTO series (selector, name, labels) VALUES ($1, $2, $3)
                 ON CONFLICT (selector) DO NOTHING",
                &[&selector, &key.name, &serde_json::to_string(&key.labels)?],
            )?;
            let id: i64 = tx
                .query_one("SELECT id FROM series WHERE selector = $1", &[&selector])?
                .get(0);
            cache.insert(key.clone(), id);
            out[i] = id;
        }
        tx.commit()?;
        Ok(out)
    }

    fn save_analysis(&self, batch: &AnalysisBatch) -> Result<(), StoreError> {
        let mut client = lock(&self.writer)?;
        let mut tx = client.transaction()?;
        for t in &batch.templates {
            tx.execute(
                "INSERT INTO templates (id, text, level, count, sample, services, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET text = excluded.text, level = excluded.level,
                   count = excluded.count, sample = excluded.sample, services = excluded.services,
                   first_seen = excluded.first_seen, last_seen = excluded.last_seen",
                &[
                    &i64_of(t.id),
                    &t.text,
                    &t.level,
                    &i64_of(t.count),
                    &t.sample,
                    &serde_json::to_string(&t.services)?,
                    &t.first_seen_ms,
                    &t.last_seen_ms,
                ],
            )?;
        }
        insert_samples(&mut tx, &batch.samples)?;
        if !batch.bands.is_empty() {
            let mut latest: HashMap<(SeriesId, i64), Band> = HashMap::new();
            for (id, ts, b) in &batch.bands {
                latest.insert((*id, *ts), *b);
            }
            let (mut ids, mut ts, mut e, mut l, mut u, mut s) = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
            for ((id, t), b) in latest {
                ids.push(id);
                ts.push(t);
                e.push(b.expected);
                l.push(b.lower);
                u.push(b.upper);
                s.push(b.score);
            }
            tx.execute(
                "INSERT INTO bands (series_id, ts, expected, lower, upper, score)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[])
                 ON CONFLICT (series_id, ts) DO UPDATE SET expected = excluded.expected,
                   lower = excluded.lower, upper = excluded.upper, score = excluded.score",
                &[&ids, &ts, &e, &l, &u, &s],
            )?;
        }
        for a in &batch.anomalies {
            tx.execute(
                "INSERT INTO anomalies (selector, start_ms, end_ms, series_id, incident_id, body)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (selector, start_ms) DO UPDATE SET end_ms = excluded.end_ms,
                   incident_id = coalesce(excluded.incident_id, anomalies.incident_id),
                   body = excluded.body",
                &[
                    &a.anomaly.series.to_string(),
                    &a.anomaly.start_ms,
                    &a.anomaly.end_ms,
                    &a.series_id,
                    &a.incident_id.map(i64_of),
                    &serde_json::to_string(&a.anomaly)?,
                ],
            )?;
        }
        for i in &batch.incidents {
            tx.execute(
                "INSERT INTO incidents (id, status, opened_ms, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                   opened_ms = excluded.opened_ms, body = excluded.body",
                &[
                    &i64_of(i.id),
                    &status_str(i.status),
                    &i.opened_ms,
                    &serde_json::to_string(i)?,
                ],
            )?;
            for m in &i.members {
                tx.execute(
                    "UPDATE anomalies SET incident_id = $1 WHERE selector = $2 AND start_ms = $3",
                    &[&i64_of(i.id), &m.series.to_string(), &m.start_ms],
                )?;
            }
        }
        for (name, value) in &batch.state {
            tx.execute(
                "INSERT INTO state (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[name, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut client = lock(&self.reader)?;
        Ok(client
            .query_opt("SELECT value FROM state WHERE name = $1", &[&name])?
            .map(|r| r.get(0)))
    }

    fn search_logs(&self, query: &LogQuery) -> Result<Vec<StoredLog>, StoreError> {
        let q = query.q.as_deref().filter(|q| !q.is_empty()).map(|q| {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let service = query.service.clone().filter(|s| !s.is_empty());
        let level = query.level.as_deref().and_then(|l| rank(l.parse().ok()));
        let limit = i64_of(query.limit.unwrap_or(100).clamp(1, 10_000) as u64);
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT id, ts, service, level, body, attributes FROM logs
             WHERE ($1::text IS NULL OR body ILIKE $1)
               AND ($2::text IS NULL OR service = $2)
               AND ($3::int IS NULL OR level >= $3)
               AND ($4::bigint IS NULL OR ts >= $4)
               AND ($5::bigint IS NULL OR ts < $5)
             ORDER BY id DESC LIMIT $6",
            &[&q, &service, &level, &query.from, &query.to, &limit],
        )?;
        rows.iter().map(stored_log).collect()
    }

    fn series(
        &self,
        name: Option<&str>,
        labels: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        let pattern = name.map_or_else(
            || "%".to_string(),
            |n| {
                format!(
                    "%{}%",
                    n.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )
            },
        );
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT s.id, s.name, s.labels, count(p.ts), max(p.ts),
                (SELECT value FROM samples q WHERE q.series_id = s.id ORDER BY ts DESC LIMIT 1)
             FROM series s LEFT JOIN samples p ON p.series_id = s.id
             WHERE s.name LIKE $1 GROUP BY s.id ORDER BY s.selector",
            &[&pattern],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let label_json: String = r.get(2);
            let key = SeriesKey {
                name: r.get(1),
                labels: serde_json::from_str(&label_json)?,
            };
            if !labels.iter().all(|(k, v)| key.label(k) == Some(v.as_str())) {
                continue;
            }
            out.push(SeriesInfo {
                id: r.get(0),
                selector: key.to_string(),
                key,
                points: u64_of(r.get(3)),
                last_ms: r.get(4),
                last_value: r.get(5),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn series_key(&self, id: SeriesId) -> Result<Option<SeriesKey>, StoreError> {
        let mut client = lock(&self.reader)?;
        client
            .query_opt("SELECT name, labels FROM series WHERE id = $1", &[&id])?
            .map(|r| {
                let labels: String = r.get(1);
                Ok(SeriesKey {
                    name: r.get(0),
                    labels: serde_json::from_str(&labels)?,
                })
            })
            .transpose()
    }

    fn points(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
        max_points: usize,
    ) -> Result<Vec<Point>, StoreError> {
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT p.ts, p.value, b.expected, b.lower, b.upper, b.score
             FROM samples p LEFT JOIN bands b ON b.series_id = p.series_id AND b.ts = p.ts
             WHERE p.series_id = $1 AND p.ts >= $2 AND p.ts < $3 ORDER BY p.ts",
            &[&id, &from, &to],
        )?;
        let points = rows
            .iter()
            .map(|r| {
                let band = match (r.get(2), r.get(3), r.get(4), r.get(5)) {
                    (Some(expected), Some(lower), Some(upper), Some(score)) => Some(Band {
                        expected,
                        lower,
                        upper,
                        score,
                    }),
                    _ => None,
                };
                Point {
                    timestamp_ms: r.get(0),
                    value: r.get(1),
                    band,
                }
            })
            .collect();
        Ok(super::sqlite::thin(points, max_points.max(1)))
    }

    fn templates(&self, limit: usize) -> Result<Vec<TemplateRow>, StoreError> {
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT id, text, level, count, sample, services, first_seen, last_seen
             FROM templates ORDER BY count DESC, id LIMIT $1",
            &[&i64_of(limit as u64)],
        )?;
        rows.iter().map(template_row).collect()
    }

    fn template(&self, id: u64) -> Result<Option<TemplateRow>, StoreError> {
        let mut client = lock(&self.reader)?;
        client
            .query_opt(
                "SELECT id, text, level, count, sample, services, first_seen, last_seen
                 FROM templates WHERE id = $1",
                &[&i64_of(id)],
            )?
            .as_ref()
            .map(template_row)
            .transpose()
    }

    fn anomalies(
        &self,
        from: TimestampMs,
        to: TimestampMs,
        limit: usize,
    ) -> Result<Vec<StoredAnomaly>, StoreError> {
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT series_id, incident_id, body FROM anomalies
             WHERE end_ms >= $1 AND start_ms < $2 ORDER BY start_ms DESC LIMIT $3",
            &[&from, &to, &i64_of(limit as u64)],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let body: String = r.get(2);
            out.push(StoredAnomaly {
                series_id: r.get(0),
                incident_id: r.get::<_, Option<i64>>(1).map(u64_of),
                anomaly: serde_json::from_str(&body)?,
            });
        }
        Ok(out)
    }

    fn incidents(
        &self,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut client = lock(&self.reader)?;
        let status = status.map(status_str);
        let rows = client.query(
            "SELECT body FROM incidents WHERE $1::text IS NULL OR status = $1
             ORDER BY opened_ms DESC, id DESC LIMIT $2",
            &[&status, &i64_of(limit as u64)],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let body: String = r.get(0);
            out.push(serde_json::from_str(&body)?);
        }
        Ok(out)
    }

    fn incident(&self, id: u64) -> Result<Option<Incident>, StoreError> {
        let mut client = lock(&self.reader)?;
        let row = client.query_opt("SELECT body FROM incidents WHERE id = $1", &[&i64_of(id)])?;
        match row {
            Some(r) => {
                let body: String = r.get(0);
                Ok(Some(serde_json::from_str(&body)?))
            }
            None => Ok(None),
        }
    }

    fn prune_logs(&self, before: TimestampMs) -> Result<u64, StoreError> {
        let mut client = lock(&self.writer)?;
        Ok(client.execute("DELETE FROM logs WHERE ts < $1", &[&before])?)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut client = lock(&self.reader)?;
        let row = client.query_one(
            "SELECT (SELECT count(*) FROM logs), (SELECT count(*) FROM series), (SELECT count(*) FROM samples)",
            &[],
        )?;
        Ok(StoreStats {
            logs: u64_of(row.get(0)),
            series: u64_of(row.get(1)),
            samples: u64_of(row.get(2)),
        })
    }
}

fn template_row(r: &postgres::Row) -> Result<TemplateRow, StoreError> {
    let services: String = r.get(5);
    Ok(TemplateRow {
        id: u64_of(r.get(0)),
        text: r.get(1),
        level: r.get(2),
        count: u64_of(r.get(3)),
        sample: r.get(4),
        services: serde_json::from_str(&services)?,
        first_seen_ms: r.get(6),
        last_seen_ms: r.get(7),
    })
}

/// A row of `SELECT id, ts, service, level, body, attributes FROM logs`.
fn stored_log(r: &postgres::Row) -> Result<StoredLog, StoreError> {
    let attributes: Option<String> = r.get(5);
    Ok(StoredLog {
        id: r.get(0),
        record: LogRecord {
            timestamp_ms: Some(r.get(1)),
            service: r.get(2),
            level: level_of(r.get(3)),
            body: r.get(4),
            attributes: match attributes {
                Some(a) => serde_json::from_str(&a)?,
                None => Default::default(),
            },
        },
    })
}
