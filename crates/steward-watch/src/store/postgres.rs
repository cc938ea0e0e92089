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
    AnalysisBatch, Band, LogQuery, SeriesId, SeriesInfo, Store, StoreError, StoreStats,
    StoredAnomaly, StoredChunk, StoredLog, TemplateRow, WriteBatch,
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
CREATE TABLE IF NOT EXISTS metric_series (
    id BIGINT PRIMARY KEY,
    selector TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    series_id BIGINT NOT NULL,
    min_ts BIGINT NOT NULL,
    max_ts BIGINT NOT NULL,
    samples INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (series_id, min_ts)
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
        })
    }
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

    fn define_series(&self, defs: &[(SeriesId, SeriesKey)]) -> Result<(), StoreError> {
        if defs.is_empty() {
            return Ok(());
        }
        let (mut ids, mut selectors, mut names, mut labels) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, key) in defs {
            ids.push(*id);
            selectors.push(key.to_string());
            names.push(key.name.clone());
            labels.push(serde_json::to_string(&key.labels)?);
        }
        let mut client = lock(&self.writer)?;
        client.execute(
            "INSERT INTO metric_series (id, selector, name, labels)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT (id) DO NOTHING",
            &[&ids, &selectors, &names, &labels],
        )?;
        Ok(())
    }

    fn highest_series_id(&self) -> Result<Option<SeriesId>, StoreError> {
        let mut client = lock(&self.reader)?;
        Ok(client
            .query_one("SELECT max(id) FROM metric_series", &[])?
            .get(0))
    }

    fn save_chunks(&self, chunks: &[StoredChunk]) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        // One INSERT may not touch a row twice: the later copy of a chunk wins.
        let mut latest: HashMap<(SeriesId, i64), &StoredChunk> = HashMap::new();
        for c in chunks {
            latest.insert((c.series, c.min_ts), c);
        }
        let (mut ids, mut mins, mut maxs, mut counts, mut data) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in latest.values() {
            ids.push(c.series);
            mins.push(c.min_ts);
            maxs.push(c.max_ts);
            counts.push(i32::try_from(c.samples).unwrap_or(i32::MAX));
            data.push(c.bytes.as_slice());
        }
        let mut client = lock(&self.writer)?;
        client.execute(
            "INSERT INTO chunks (series_id, min_ts, max_ts, samples, data)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::bytea[])
             ON CONFLICT (series_id, min_ts) DO UPDATE SET max_ts = excluded.max_ts,
               samples = excluded.samples, data = excluded.data",
            &[&ids, &mins, &maxs, &counts, &data],
        )?;
        Ok(())
    }

    fn chunks(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT min_ts, max_ts, samples, data FROM chunks
             WHERE series_id = $1 AND min_ts < $3 AND max_ts >= $2 ORDER BY min_ts",
            &[&id, &from, &to],
        )?;
        Ok(rows
            .iter()
            .map(|r| StoredChunk {
                series: id,
                min_ts: r.get(0),
                max_ts: r.get(1),
                samples: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                bytes: r.get(3),
            })
            .collect())
    }

    fn bands(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<(TimestampMs, Band)>, StoreError> {
        let mut client = lock(&self.reader)?;
        let rows = client.query(
            "SELECT ts, expected, lower, upper, score FROM bands
             WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts",
            &[&id, &from, &to],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    Band {
                        expected: r.get(1),
                        lower: r.get(2),
                        upper: r.get(3),
                        score: r.get(4),
                    },
                )
            })
            .collect())
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
            "SELECT s.id, s.name, s.labels, coalesce(sum(c.samples), 0)::bigint, max(c.max_ts),
                (SELECT data FROM chunks q WHERE q.series_id = s.id ORDER BY min_ts DESC LIMIT 1)
             FROM metric_series s LEFT JOIN chunks c ON c.series_id = s.id
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
                last_value: r.get::<_, Option<Vec<u8>>>(5).and_then(|data| {
                    steward_tsdb::ChunkIter::new(&data)
                        .map_while(Result::ok)
                        .last()
                        .map(|(_, v)| v)
                }),
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
            .query_opt(
                "SELECT name, labels FROM metric_series WHERE id = $1",
                &[&id],
            )?
            .map(|r| {
                let labels: String = r.get(1);
                Ok(SeriesKey {
                    name: r.get(0),
                    labels: serde_json::from_str(&labels)?,
                })
            })
            .transpose()
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
            "SELECT (SELECT count(*) FROM logs), (SELECT count(*) FROM metric_series), (SELECT coalesce(sum(samples), 0)::bigint FROM chunks)",
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
