//! The embedded store: one SQLite database in the data directory.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`: a committed transaction
//! is in the WAL file before [`Store::append`] returns, so it survives the process
//! being killed (`kill -9`), though not the machine losing power mid-write. Writes take
//! one connection, reads another, and WAL lets them run at the same time.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use steward_core::{Incident, IncidentStatus, LogLevel, LogRecord, SeriesKey, TimestampMs};

use super::{
    AnalysisBatch, Band, LogQuery, SeriesId, SeriesInfo, Store, StoreError, StoreStats,
    StoredAnomaly, StoredChunk, StoredLog, TemplateRow, WriteBatch,
};

/// The file name of the database inside the data directory.
pub const FILE_NAME: &str = "steward.db";

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    service TEXT,
    level INTEGER,
    body TEXT NOT NULL,
    attributes TEXT
);
CREATE INDEX IF NOT EXISTS logs_ts ON logs(ts);
CREATE TABLE IF NOT EXISTS metric_series (
    id INTEGER PRIMARY KEY,
    selector TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_series_name ON metric_series(name);
CREATE TABLE IF NOT EXISTS chunks (
    series_id INTEGER NOT NULL,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (series_id, min_ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bands (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    expected REAL NOT NULL,
    lower REAL NOT NULL,
    upper REAL NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    level TEXT,
    count INTEGER NOT NULL,
    sample TEXT NOT NULL,
    services TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS anomalies (
    selector TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    series_id INTEGER,
    incident_id INTEGER,
    body TEXT NOT NULL,
    PRIMARY KEY (selector, start_ms)
);
CREATE INDEX IF NOT EXISTS anomalies_end ON anomalies(end_ms);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// The embedded SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    m.lock().map_err(|_| StoreError::Poisoned)
}

fn level_rank(level: Option<LogLevel>) -> Option<i64> {
    level.map(|l| match l {
        LogLevel::Trace => 1,
        LogLevel::Debug => 2,
        LogLevel::Info => 3,
        LogLevel::Warn => 4,
        LogLevel::Error => 5,
        LogLevel::Fatal => 6,
    })
}

fn level_of_rank(rank: Option<i64>) -> Option<LogLevel> {
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

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = dir.join(FILE_NAME);
        let writer = Connection::open(&path)?;
        writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        writer.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536;",
        )?;
        writer.execute_batch(SCHEMA)?;
        let reader = Connection::open(&path)?;
        reader.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = 1;")?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }
}

/// Rows per multi-row log INSERT (5 parameters each, well under SQLite's limit).
const LOG_ROWS: usize = 64;

fn multi_row_insert(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO logs (ts, service, level, body, attributes) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?)");
    }
    sql
}

/// Binds a record's columns, borrowing its strings rather than copying them.
fn push_log<'a>(args: &mut Vec<ToSqlOutput<'a>>, r: &'a LogRecord) -> Result<(), StoreError> {
    let text = |s: &'a str| ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()));
    let null = || ToSqlOutput::Owned(SqlValue::Null);
    args.push(ToSqlOutput::Owned(SqlValue::Integer(
        r.timestamp_ms.unwrap_or(0),
    )));
    args.push(r.service.as_deref().map_or_else(null, text));
    args.push(level_rank(r.level).map_or_else(null, |l| ToSqlOutput::Owned(SqlValue::Integer(l))));
    args.push(text(&r.body));
    args.push(if r.attributes.is_empty() {
        null()
    } else {
        ToSqlOutput::Owned(SqlValue::Text(serde_json::to_string(&r.attributes)?))
    });
    Ok(())
}

impl Store for SqliteStore {
    fn append(&self, batch: &WriteBatch) -> Result<Option<i64>, StoreError> {
        let mut conn = lock(&self.writer)?;
        let tx = conn.transaction()?;
        {
            // Many rows per statement: SQLite's per-statement overhead is paid once
            // per LOG_ROWS records instead of once per record.
            let mut full = tx.prepare_cached(&multi_row_insert(LOG_ROWS))?;
            let mut chunks = batch.logs.chunks_exact(LOG_ROWS);
            let mut args: Vec<ToSqlOutput<'_>> = Vec::with_capacity(LOG_ROWS * 5);
            for chunk in chunks.by_ref() {
                args.clear();
                for r in chunk {
                    push_log(&mut args, r)?;
                }
                full.execute(params_from_iter(args.drain(..)))?;
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let mut partial = tx.prepare_cached(&multi_row_insert(rest.len()))?;
                args.clear();
                for r in rest {
                    push_log(&mut args, r)?;
                }
                partial.execute(params_from_iter(args.drain(..)))?;
            }
        }
        let last = (!batch.logs.is_empty()).then(|| tx.last_insert_rowid());
        tx.commit()?;
        Ok(last)
    }

    fn logs_after(&self, after: i64, limit: usize) -> Result<Vec<StoredLog>, StoreError> {
        let conn = lock(&self.reader)?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, ts, service, level, body, attributes FROM logs WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        log_rows(&mut stmt, params![after, to_i64(limit as u64)])
    }

    fn define_series(&self, defs: &[(SeriesId, SeriesKey)]) -> Result<(), StoreError> {
        if defs.is_empty() {
            return Ok(());
        }
        let mut conn = lock(&self.writer)?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO metric_series (id, selector, name, labels) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (id, key) in defs {
                insert.execute(params![
                    id,
                    key.to_string(),
                    key.name,
                    serde_json::to_string(&key.labels)?
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn highest_series_id(&self) -> Result<Option<SeriesId>, StoreError> {
        let conn = lock(&self.reader)?;
        Ok(conn.query_row("SELECT max(id) FROM metric_series", [], |r| r.get(0))?)
    }

    fn save_chunks(&self, chunks: &[StoredChunk]) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer)?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO chunks (series_id, min_ts, max_ts, samples, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for c in chunks {
                insert.execute(params![c.series, c.min_ts, c.max_ts, c.samples, c.bytes])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn chunks(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let conn = lock(&self.reader)?;
        let mut stmt = conn.prepare_cached(
            "SELECT min_ts, max_ts, samples, data FROM chunks
             WHERE series_id = ?1 AND min_ts < ?3 AND max_ts >= ?2 ORDER BY min_ts",
        )?;
        let rows = stmt.query_map(params![id, from, to], |r| {
            Ok(StoredChunk {
                series: id,
                min_ts: r.get(0)?,
                max_ts: r.get(1)?,
                samples: r.get(2)?,
                bytes: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn bands(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<(TimestampMs, Band)>, StoreError> {
        let conn = lock(&self.reader)?;
        let mut stmt = conn.prepare_cached(
            "SELECT ts, expected, lower, upper, score FROM bands
             WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
        )?;
        let rows = stmt.query_map(params![id, from, to], |r| {
            Ok((
                r.get(0)?,
                Band {
                    expected: r.get(1)?,
                    lower: r.get(2)?,
                    upper: r.get(3)?,
                    score: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn save_analysis(&self, batch: &AnalysisBatch) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer)?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO templates (id, text, level, count, sample, services, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for t in &batch.templates {
                stmt.execute(params![
                    to_i64(t.id),
                    t.text,
                    t.level,
                    to_i64(t.count),
                    t.sample,
                    serde_json::to_string(&t.services)?,
                    t.first_seen_ms,
                    t.last_seen_ms
                ])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO bands (series_id, ts, expected, lower, upper, score)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (id, ts, b) in &batch.bands {
                stmt.execute(params![id, ts, b.expected, b.lower, b.upper, b.score])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO anomalies (selector, start_ms, end_ms, series_id, incident_id, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (selector, start_ms) DO UPDATE SET end_ms = excluded.end_ms,
                   incident_id = coalesce(excluded.incident_id, anomalies.incident_id),
                   body = excluded.body",
            )?;
            for a in &batch.anomalies {
                stmt.execute(params![
                    a.anomaly.series.to_string(),
                    a.anomaly.start_ms,
                    a.anomaly.end_ms,
                    a.series_id,
                    a.incident_id.map(to_i64),
                    serde_json::to_string(&a.anomaly)?
                ])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO incidents (id, status, opened_ms, body) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut link = tx.prepare_cached(
                "UPDATE anomalies SET incident_id = ?1 WHERE selector = ?2 AND start_ms = ?3",
            )?;
            for i in &batch.incidents {
                let status = match i.status {
                    IncidentStatus::Open => "open",
                    IncidentStatus::Resolved => "resolved",
                };
                stmt.execute(params![
                    to_i64(i.id),
                    status,
                    i.opened_ms,
                    serde_json::to_string(i)?
                ])?;
                for m in &i.members {
                    link.execute(params![to_i64(i.id), m.series.to_string(), m.start_ms])?;
                }
            }
        }
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR REPLACE INTO state (name, value) VALUES (?1, ?2)")?;
            for (name, value) in &batch.state {
                stmt.execute(params![name, value])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = lock(&self.reader)?;
        Ok(conn
            .query_row("SELECT value FROM state WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn search_logs(&self, query: &LogQuery) -> Result<Vec<StoredLog>, StoreError> {
        let mut sql =
            String::from("SELECT id, ts, service, level, body, attributes FROM logs WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            sql.push_str(" AND body LIKE ? ESCAPE '\\'");
            args.push(SqlValue::Text(format!("%{escaped}%")));
        }
        if let Some(service) = query.service.as_deref().filter(|s| !s.is_empty()) {
            sql.push_str(" AND service = ?");
            args.push(SqlValue::Text(service.to_string()));
        }
        if let Some(level) = query.level.as_deref().filter(|s| !s.is_empty()) {
            if let Some(rank) = level_rank(level.parse().ok()) {
                sql.push_str(" AND level >= ?");
                args.push(SqlValue::Integer(rank));
            }
        }
        if let Some(from) = query.from {
            sql.push_str(" AND ts >= ?");
            args.push(SqlValue::Integer(from));
        }
        if let Some(to) = query.to {
            sql.push_str(" AND ts < ?");
            args.push(SqlValue::Integer(to));
        }
        let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(SqlValue::Integer(to_i64(limit as u64)));
        let conn = lock(&self.reader)?;
        let mut stmt = conn.prepare_cached(&sql)?;
        log_rows(&mut stmt, params_from_iter(args))
    }

    fn series(
        &self,
        name: Option<&str>,
        labels: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        let conn = lock(&self.reader)?;
        let mut stmt = conn.prepare_cached(
            "SELECT s.id, s.name, s.labels,
                (SELECT coalesce(sum(samples), 0) FROM chunks c WHERE c.series_id = s.id),
                (SELECT max(max_ts) FROM chunks c WHERE c.series_id = s.id)
             FROM metric_series s WHERE s.name LIKE ?1 ESCAPE '\\' ORDER BY s.selector",
        )?;
        let pattern = match name {
            Some(n) => format!(
                "%{}%",
                n.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            ),
            None => "%".into(),
        };
        let rows = stmt.query_map([pattern], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, label_json, points, last_ms) = row?;
            let key = SeriesKey {
                name,
                labels: serde_json::from_str(&label_json)?,
            };
            if !labels.iter().all(|(k, v)| key.label(k) == Some(v.as_str())) {
                continue;
            }
            out.push(SeriesInfo {
                id,
                selector: key.to_string(),
                key,
                points: to_u64(points),
                last_ms,
                last_value: None,
            });
            if out.len() >= limit {
                break;
            }
        }
        drop(stmt);
        drop(conn);
        for info in &mut out {
            if let Some(ts) = info.last_ms {
                let last = self.chunks(info.id, ts, ts.saturating_add(1))?;
                info.last_value = last.last().and_then(|c| {
                    steward_tsdb::ChunkIter::new(&c.bytes)
                        .map_while(Result::ok)
                        .last()
                        .map(|(_, v)| v)
                });
            }
        }
        Ok(out)
    }

    fn series_key(&self, id: SeriesId) -> Result<Option<SeriesKey>, StoreError> {
        let conn = lock(&self.reader)?;
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT name, labels FROM metric_series WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(name, labels)| {
            Ok(SeriesKey {
                name,
                labels: serde_json::from_str(&labels)?,
            })
        })
        .transpose()
    }

    fn templates(&self, limit: usize) -> Result<Vec<TemplateRow>, StoreError> {
        let conn = lock(&self.reader)?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, text, level, count, sample, services, first_seen, last_seen
             FROM templates ORDER BY count DESC, id LIMIT ?1",
        )?;
        let rows = stmt.query_map([to_i64(limit as u64)], template_row)?;
        rows.map(|r| r?.map_err(StoreError::from))
            .collect::<Result<Vec<_>, _>>()
    }

    fn template(&self, id: u64) -> Result<Option<TemplateRow>, StoreError> {
        let conn = lock(&self.reader)?;
        let row = conn
            .query_row(
                "SELECT id, text, level, count, sample, services, first_seen, last_seen
                 FROM templates WHERE id = ?1",
                [to_i64(id)],
                template_row,
            )
            .optional()?;
        row.transpose().map_err(StoreError::from)
    }

    fn anomalies(
        &self,
        from: TimestampMs,
        to: TimestampMs,
        limit: usize,
    ) -> Result<Vec<StoredAnomaly>, StoreError> {
        let conn = lock(&self.reader)?;
        let mut stmt = conn.prepare_cached(
            "SELECT series_id, incident_id, body FROM anomalies
             WHERE end_ms >= ?1 AND start_ms < ?2 ORDER BY start_ms DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from, to, to_i64(limit as u64)], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (series_id, incident_id, body) = row?;
            out.push(StoredAnomaly {
                series_id,
                incident_id: incident_id.map(to_u64),
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
        let conn = lock(&self.reader)?;
        let status = status.map(|s| match s {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
        });
        let mut stmt = conn.prepare_cached(
            "SELECT body FROM incidents WHERE ?1 IS NULL OR status = ?1
             ORDER BY opened_ms DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![status, to_i64(limit as u64)], |r| {
            r.get::<_, String>(0)
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    fn incident(&self, id: u64) -> Result<Option<Incident>, StoreError> {
        let conn = lock(&self.reader)?;
        let body: Option<String> = conn
            .query_row(
                "SELECT body FROM incidents WHERE id = ?1",
                [to_i64(id)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    fn prune_logs(&self, before: TimestampMs) -> Result<u64, StoreError> {
        let conn = lock(&self.writer)?;
        let n = conn.execute("DELETE FROM logs WHERE ts < ?1", [before])?;
        Ok(n as u64)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let conn = lock(&self.reader)?;
        let count = |table: &str| -> Result<u64, StoreError> {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(to_u64(n))
        };
        Ok(StoreStats {
            logs: count("logs")?,
            series: count("metric_series")?,
            samples: {
                let n: i64 =
                    conn.query_row("SELECT coalesce(sum(samples), 0) FROM chunks", [], |r| {
                        r.get(0)
                    })?;
                to_u64(n)
            },
        })
    }
}

type TemplateResult = Result<TemplateRow, serde_json::Error>;

fn template_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TemplateResult> {
    let services: String = r.get(5)?;
    let services = match serde_json::from_str(&services) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(TemplateRow {
        id: to_u64(r.get(0)?),
        text: r.get(1)?,
        level: r.get(2)?,
        count: to_u64(r.get(3)?),
        sample: r.get(4)?,
        services,
        first_seen_ms: r.get(6)?,
        last_seen_ms: r.get(7)?,
    }))
}

/// The stored logs a query over `id, ts, service, level, body, attributes` returns.
fn log_rows(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredLog>, StoreError> {
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, ts, service, level, body, attributes) = row?;
        out.push(StoredLog {
            id,
            record: LogRecord {
                timestamp_ms: Some(ts),
                service,
                level: level_of_rank(level),
                body,
                attributes: match attributes {
                    Some(a) => serde_json::from_str(&a)?,
                    None => Default::default(),
                },
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_by_time_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut a = LogRecord::from_body("a");
        a.timestamp_ms = Some(1_700_000_000_000);
        let mut b = LogRecord::from_body("b");
        b.timestamp_ms = Some(1_700_000_001_000);
        store.append(&WriteBatch { logs: vec![a, b] }).unwrap();
        let found = store
            .search_logs(&LogQuery {
                from: Some(1_700_000_000_000),
                to: Some(1_700_000_000_001),
                ..LogQuery::default()
            })
            .unwrap();
        assert_eq!(found.len(), 1);
        let q = store
            .search_logs(&LogQuery {
                q: Some("A".into()),
                ..LogQuery::default()
            })
            .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(store.search_logs(&LogQuery::default()).unwrap().len(), 2);
    }

    #[test]
    fn an_incidents_count_of_members_not_kept_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let member = |name: &str, start_ms| steward_core::Anomaly {
            series: SeriesKey::new(name).with_label("job", "node"),
            kind: steward_core::AnomalyKind::Spike,
            start_ms,
            end_ms: start_ms + 60_000,
            score: 0.8,
            reason: "spike".into(),
        };
        let incident = Incident {
            id: 3,
            title: "spike in a{job=\"node\"} and 4001 more".into(),
            status: IncidentStatus::Open,
            severity: steward_core::Severity::High,
            opened_ms: 1_000,
            resolved_ms: None,
            members: vec![member("a", 1_000), member("b", 2_000)],
            likely_cause: 0,
            more_members: 4_000,
        };
        store
            .save_analysis(&AnalysisBatch {
                incidents: vec![incident.clone()],
                ..AnalysisBatch::default()
            })
            .unwrap();
        assert_eq!(store.incident(3).unwrap(), Some(incident.clone()));
        assert_eq!(
            store.incidents(Some(IncidentStatus::Open), 10).unwrap(),
            [incident]
        );
    }
}
