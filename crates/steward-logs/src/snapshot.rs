//! Snapshots: the miner's state as versioned serde data, so that a restarted service
//! keeps its templates and their ids.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::fxhash::FxHashMap;
use crate::mask::VarKind;
use crate::miner::{
    MinerConfig, Slot, State, Template, TemplateChange, TemplateId, TemplateMiner, WILD, render,
};

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another version of the format.
    #[error(
        "snapshot version {found} is not supported (this build reads version {SNAPSHOT_VERSION})"
    )]
    Version {
        /// The version found.
        found: u32,
    },
    /// Not a snapshot.
    #[error("not a template snapshot: {0}")]
    Decode(#[from] serde_json::Error),
    /// Inconsistent content.
    #[error("inconsistent snapshot: {0}")]
    Invalid(String),
}

/// The miner's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The format version ([`SNAPSHOT_VERSION`]).
    pub version: u32,
    /// The miner's configuration.
    pub config: MinerConfig,
    /// Lines taken.
    pub clock: u64,
    /// The next template id.
    pub next_id: u64,
    /// Templates evicted so far.
    pub evicted: u64,
    /// The live templates.
    pub templates: Vec<SnapshotTemplate>,
    /// Merged ids and the ids they resolve to.
    pub aliases: Vec<(TemplateId, TemplateId)>,
    /// Recent changes.
    pub changes: Vec<TemplateChange>,
    /// The words seen so far at positions that may turn out to be variables, by the
    /// hash of the rest of their template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub word_variants: Vec<(u64, Vec<String>)>,
}

/// One template in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotTemplate {
    /// What users see.
    pub template: Template,
    /// Its positions.
    pub slots: Vec<SnapshotSlot>,
}

/// One position of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSlot {
    /// The masked token, or `None` for a wildcard.
    pub token: Option<String>,
    /// The masked form of the token.
    pub class: String,
    /// 0 word, 1 weak variable, 2 strong variable.
    pub kind: u8,
    /// A weak variable's value while all lines agreed on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// A bracketed variable's text before and after its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<(String, String)>,
}

impl Snapshot {
    /// The snapshot as JSON bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// A snapshot from [`Snapshot::to_bytes`]; checks the version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned = serde_json::from_slice(bytes)?;
        if v.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version { found: v.version });
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

impl TemplateMiner {
    /// The miner's state, to restore later with [`TemplateMiner::restore`].
    pub fn snapshot(&self) -> Snapshot {
        let mut templates: Vec<SnapshotTemplate> = self
            .templates
            .values()
            .map(|state| SnapshotTemplate {
                template: state.public.clone(),
                slots: state
                    .slots
                    .iter()
                    .map(|s| SnapshotSlot {
                        token: (s.tok != WILD).then(|| self.interner.get(s.tok).to_string()),
                        class: self.interner.get(s.class).to_string(),
                        kind: match s.kind {
                            VarKind::None => 0,
                            VarKind::Weak => 1,
                            VarKind::Strong => 2,
                        },
                        raw: s.raw.as_deref().map(str::to_string),
                        shape: s
                            .shape
                            .as_ref()
                            .map(|(p, q)| (p.to_string(), q.to_string())),
                    })
                    .collect(),
            })
            .collect();
        templates.sort_by_key(|t| t.template.id);
        let mut aliases: Vec<(TemplateId, TemplateId)> = self
            .aliases
            .iter()
            .map(|(a, b)| (TemplateId(*a), TemplateId(*b)))
            .collect();
        aliases.sort();
        let mut word_variants: Vec<(u64, Vec<String>)> = self
            .variants
            .iter()
            .map(|(k, words)| {
                (
                    *k,
                    words
                        .iter()
                        .map(|w| self.interner.get(*w).to_string())
                        .collect(),
                )
            })
            .collect();
        word_variants.sort();
        Snapshot {
            version: SNAPSHOT_VERSION,
            word_variants,
            config: self.config.clone(),
            clock: self.clock,
            next_id: self.next_id,
            evicted: self.evicted,
            templates,
            aliases,
            changes: self.changes.iter().cloned().collect(),
        }
    }

    /// A miner in the state of `snapshot`.
    pub fn restore(snapshot: Snapshot) -> Result<TemplateMiner, SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: snapshot.version,
            });
        }
        let mut miner = TemplateMiner::new(snapshot.config);
        miner.clock = snapshot.clock;
        miner.next_id = snapshot.next_id;
        miner.evicted = snapshot.evicted;
        miner.changes = VecDeque::from(snapshot.changes);
        for t in snapshot.templates {
            let id = t.template.id.0;
            if id >= miner.next_id {
                return Err(SnapshotError::Invalid(format!(
                    "template {id} is not below next_id {}",
                    miner.next_id
                )));
            }
            if miner.templates.contains_key(&id) {
                return Err(SnapshotError::Invalid(format!(
                    "template {id} appears twice"
                )));
            }
            let slots: Vec<Slot> = t
                .slots
                .into_iter()
                .map(|s| Slot {
                    tok: s.token.map_or(WILD, |tok| miner.interner.intern(&tok)),
                    class: miner.interner.intern(&s.class),
                    kind: match s.kind {
                        0 => VarKind::None,
                        1 => VarKind::Weak,
                        _ => VarKind::Strong,
                    },
                    raw: s.raw.map(String::into_boxed_str),
                    shape: s
                        .shape
                        .map(|(p, q)| (p.into_boxed_str(), q.into_boxed_str())),
                })
                .collect();
            let first = match slots.first() {
                Some(s) if s.kind == VarKind::None && s.tok != WILD => s.tok,
                _ => WILD,
            };
            let bucket = (u32::try_from(slots.len()).unwrap_or(u32::MAX), first);
            let mut public = t.template;
            public.text = render(&miner.interner, &slots);
            miner.buckets.entry(bucket).or_default().push(id);
            miner.templates.insert(
                id,
                State {
                    public,
                    slots,
                    bucket,
                },
            );
        }
        let mut aliases = FxHashMap::default();
        for (from, to) in snapshot.aliases {
            aliases.insert(from.0, to.0);
        }
        miner.aliases = aliases;
        for (key, words) in snapshot.word_variants {
            let ids = words.iter().map(|w| miner.interner.intern(w)).collect();
            miner.variants.insert(key, ids);
        }
        Ok(miner)
    }
}
