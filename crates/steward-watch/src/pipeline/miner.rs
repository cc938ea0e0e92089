//! The miner stage: every log body becomes a template id, and steward keeps its own
//! book of templates (counts, level, services, a sample) under ids that stay stable
//! across restarts.
//!
//! The book maps the miner's ids onto store ids. On start it re-mines each stored
//! template's sample, so a restarted miner files new records under the same store ids
//! as before, whatever ids the miner itself hands out.

use std::collections::{HashMap, HashSet};

use steward_core::{LogLevel, TimestampMs};

use crate::store::TemplateRow;

/// What the miner made of one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    /// The miner's id of the template.
    pub miner_id: u64,
    /// True when the body opened a new template.
    pub is_new: bool,
}

/// A template miner, as the pipeline uses one.
pub trait Miner: Send {
    /// Mines one body.
    fn add(&mut self, body: &str) -> Mined;
    /// The current text of a template (parameters as `<*>`).
    fn text(&self, miner_id: u64) -> Option<String>;
}

/// steward-logs' online template miner.
#[derive(Debug)]
pub struct LogsMiner(steward_logs::TemplateMiner);

impl LogsMiner {
    /// A miner that keeps at most `max_templates`.
    pub fn new(max_templates: usize) -> LogsMiner {
        LogsMiner(steward_logs::TemplateMiner::new(
            steward_logs::MinerConfig {
                max_templates,
                ..steward_logs::MinerConfig::default()
            },
        ))
    }
}

impl Miner for LogsMiner {
    fn add(&mut self, body: &str) -> Mined {
        let m = self.0.add(body);
        Mined {
            miner_id: self.0.resolve_id(m.template_id).0,
            is_new: matches!(m.kind, steward_logs::MatchKind::New),
        }
    }

    fn text(&self, miner_id: u64) -> Option<String> {
        self.0
            .template(steward_logs::TemplateId(miner_id))
            .map(|t| t.text.clone())
    }
}

/// What one record did to the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filed {
    /// The store id of its template.
    pub id: u64,
    /// True when the template was never seen before, in this run or a previous one.
    pub is_new: bool,
}

/// The templates steward knows, under store ids.
pub struct TemplateBook {
    miner: Box<dyn Miner>,
    by_miner: HashMap<u64, u64>,
    rows: HashMap<u64, TemplateRow>,
    levels: HashMap<u64, LogLevel>,
    dirty: HashSet<u64>,
    next_id: u64,
}

impl std::fmt::Debug for TemplateBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateBook")
            .field("templates", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl TemplateBook {
    /// A book over `miner`, warmed with the templates a store already holds.
    pub fn new(mut miner: Box<dyn Miner>, stored: Vec<TemplateRow>) -> TemplateBook {
        let mut by_miner = HashMap::new();
        let mut rows = HashMap::new();
        let mut next_id = 1;
        let mut stored = stored;
        stored.sort_by_key(|t| t.id);
        for row in stored {
            let mined = miner.add(&row.sample);
            by_miner.entry(mined.miner_id).or_insert(row.id);
            next_id = next_id.max(row.id + 1);
            rows.insert(row.id, row);
        }
        let levels = rows
            .iter()
            .filter_map(|(id, r)| Some((*id, r.level.as_deref()?.parse().ok()?)))
            .collect();
        TemplateBook {
            miner,
            by_miner,
            rows,
            levels,
            dirty: HashSet::new(),
            next_id,
        }
    }

    /// Files one record under its template.
    pub fn file(
        &mut self,
        body: &str,
        level: Option<LogLevel>,
        service: &str,
        ts: TimestampMs,
    ) -> Filed {
        let mined = self.miner.add(body);
        let (id, is_new) = match self.by_miner.get(&mined.miner_id) {
            Some(id) => (*id, false),
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.by_miner.insert(mined.miner_id, id);
                (id, true)
            }
        };
        let row = self.rows.entry(id).or_insert_with(|| TemplateRow {
            id,
            text: String::new(),
            level: None,
            count: 0,
            sample: body.to_string(),
            services: Vec::new(),
            first_seen_ms: ts,
            last_seen_ms: ts,
        });
        row.count += 1;
        row.first_seen_ms = row.first_seen_ms.min(ts);
        row.last_seen_ms = row.last_seen_ms.max(ts);
        if let Some(level) = level {
            let known = self.levels.entry(id).or_insert(level);
            if level > *known || row.level.is_none() {
                *known = level.max(*known);
                row.level = Some(known.as_str().to_string());
            }
        }
        if !row.services.iter().any(|s| s == service) && row.services.len() < 64 {
            row.services.push(service.to_string());
            row.services.sort();
        }
        // The text is filled in when the row is written: the miner may still
        // generalise it until then.
        self.dirty.insert(id);
        Filed { id, is_new }
    }

    /// Rows changed since the last call, with their current text.
    pub fn take_dirty(&mut self) -> Vec<TemplateRow> {
        let dirty: Vec<u64> = self.dirty.drain().collect();
        let mut texts: HashMap<u64, String> = HashMap::new();
        for (miner_id, id) in &self.by_miner {
            if dirty.contains(id) {
                if let Some(t) = self.miner.text(*miner_id) {
                    texts.insert(*id, t);
                }
            }
        }
        dirty
            .into_iter()
            .filter_map(|id| {
                let row = self.rows.get_mut(&id)?;
                if let Some(t) = texts.remove(&id) {
                    row.text = t;
                }
                if row.text.is_empty() {
                    row.text.clone_from(&row.sample);
                }
                Some(row.clone())
            })
            .collect()
    }

    /// A row, if known.
    pub fn row(&self, id: u64) -> Option<&TemplateRow> {
        self.rows.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_restart() {
        let mut book = TemplateBook::new(Box::new(LogsMiner::new(1000)), Vec::new());
        let a = book.file("user 1 logged in", Some(LogLevel::Info), "web", 1);
        let b = book.file("disk full on /dev/sda1", Some(LogLevel::Error), "db", 2);
        let a2 = book.file("user 2 logged in", Some(LogLevel::Info), "web", 3);
        assert!(a.is_new && b.is_new && !a2.is_new);
        assert_eq!(a.id, a2.id);
        let rows = book.take_dirty();
        assert_eq!(rows.len(), 2);

        let mut again = TemplateBook::new(Box::new(LogsMiner::new(1000)), rows);
        let b2 = again.file("disk full on /dev/sdb2", Some(LogLevel::Error), "db", 4);
        assert_eq!(
            b2,
            Filed {
                id: b.id,
                is_new: false
            }
        );
        let c = again.file("connection reset by peer", None, "db", 5);
        assert!(c.is_new && c.id > b.id);
    }
}
