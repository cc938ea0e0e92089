//! The online template miner.
//!
//! A member of the Drain family: lines are masked ([`crate::mask`]), split into tokens,
//! and looked up in a fixed-depth index keyed by token count and first token; within a
//! bucket the template with the most equal tokens wins if it is similar enough, and the
//! positions where it differs become wildcards. What it adds to Drain:
//!
//! - an exact-signature cache in front of the index, so a line whose masked tokens were
//!   seen before costs one hash lookup;
//! - masking that keeps punctuation and tells strong values from weak identifiers;
//! - a guard against merging lines that differ in a word the template has always had
//!   (`VM Paused` vs `VM Resumed`), unless the word sits where values sit;
//! - a merge step: when a template generalises, the templates of its bucket that now
//!   fit it are folded into it (the survivor keeps its id; the other ids become aliases).
//!
//! Template identity is stable: a template that generalises keeps its id and the change
//! is recorded in [`TemplateMiner::changes`].

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fxhash::FxHashMap;
use crate::mask::{self, VarKind, WILDCARD};

/// The id of a template: stable for the template's life, through generalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TemplateId(pub u64);

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How the miner is tuned. One default serves every kind of log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MinerConfig {
    /// The most templates kept; past it the least recently seen is evicted.
    pub max_templates: usize,
    /// The share of a template's tokens a line must equal to join it, in `[0, 1]`.
    pub similarity: f64,
    /// Lines with more tokens than this have their tail folded into the last token.
    pub max_tokens: usize,
    /// How many recent template changes [`TemplateMiner::changes`] keeps.
    pub max_changes: usize,
    /// How many different words must be seen at one position of otherwise equal lines
    /// before the position is taken for a variable (`VM Started`, `VM Paused`… stay
    /// apart below it; user names pass it quickly).
    pub word_variants: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            max_templates: 50_000,
            similarity: 0.5,
            max_tokens: 512,
            max_changes: 10_000,
            word_variants: 5,
        }
    }
}

/// What adding a line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchKind {
    /// The line started a new template.
    New,
    /// The line fitted an existing template unchanged.
    Existing,
    /// The line joined a template, which generalised to take it.
    Generalised {
        /// The template's text before.
        previous: String,
    },
}

/// The template a line belongs to and the line's values for its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a> {
    /// The template's id.
    pub template_id: TemplateId,
    /// The line's tokens where the template has a variable, in order: slices of the
    /// added line, so that no value is copied.
    pub params: Vec<&'a str>,
    /// New, existing or generalised.
    pub kind: MatchKind,
}

/// A template as users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Its id.
    pub id: TemplateId,
    /// The text, with `<*>` for each variable.
    pub text: String,
    /// How many lines it took (including lines of templates merged into it).
    pub count: u64,
    /// The first line it took.
    pub sample: String,
    /// The miner's line counter when it was created.
    pub first_seen: u64,
    /// The miner's line counter when it last took a line.
    pub last_seen: u64,
}

/// One recorded change of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateChange {
    /// The template that changed (the survivor, for a merge).
    pub id: TemplateId,
    /// The miner's line counter at the change.
    pub at: u64,
    /// What changed.
    pub kind: ChangeKind,
}

/// What happened to a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ChangeKind {
    /// Its text generalised.
    Generalised {
        /// The text before.
        previous: String,
        /// The text after.
        text: String,
    },
    /// Another template was folded into it; that id now resolves to this one.
    Merged {
        /// The id that was folded in.
        from: TemplateId,
    },
    /// It was evicted by the memory bound.
    Evicted,
}

/// The sentinel token id of a wildcard slot.
pub(crate) const WILD: u32 = u32::MAX;

/// One position of a template.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The interned token (exact for a weak variable, masked otherwise), its class
    /// (see `class`) once generalised to it, or [`WILD`].
    pub(crate) tok: u32,
    /// The interned masked form: a slot whose `tok` is its class accepts any token of
    /// that class (`user=<*>` takes `user=root` and `user=admin`).
    pub(crate) class: u32,
    /// What masking found in the token.
    pub(crate) kind: VarKind,
    /// For a weak variable: the raw value while all lines agree on it.
    pub(crate) raw: Option<Box<str>>,
    /// A variable with brackets that every line has had (`(<*>)`): the text before
    /// and after the value.
    pub(crate) shape: Option<(Box<str>, Box<str>)>,
}

/// The brackets around a token's value: `(`, `)` for `(host)` and `()`.
pub(crate) fn shape_of(text: &str) -> Option<(&str, &str)> {
    const OPEN: &[char] = &['(', '[', '{', '<', '"', '\''];
    const CLOSE: &[char] = &[')', ']', '}', '>', '"', '\'', ',', ';', ':', '.'];
    if let Some((prefix, suffix)) = text.split_once(WILDCARD) {
        let bracketed =
            prefix.chars().all(|c| OPEN.contains(&c)) && suffix.chars().all(|c| CLOSE.contains(&c));
        return (bracketed && (!prefix.is_empty() || !suffix.is_empty()))
            .then_some((prefix, suffix));
    }
    let body = text.trim_start_matches(OPEN);
    let prefix = &text[..text.len() - body.len()];
    let inner = body.trim_end_matches(CLOSE);
    let suffix = &body[inner.len()..];
    (!prefix.is_empty() || !suffix.is_empty()).then_some((prefix, suffix))
}

impl Slot {
    /// Whether the template shows a variable here.
    fn is_param(&self) -> bool {
        self.tok == WILD
            || self.kind == VarKind::Strong
            || (self.kind == VarKind::Weak && self.raw.is_none())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) public: Template,
    pub(crate) slots: Vec<Slot>,
    pub(crate) bucket: (u32, u32),
}

/// Strings to small ids, so token comparison is integer comparison.
#[derive(Debug, Default, Clone)]
pub(crate) struct Interner {
    map: FxHashMap<Box<str>, u32>,
    strings: Vec<Box<str>>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.map.get(s) {
            return id;
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(WILD - 1);
        self.strings.push(s.into());
        self.map.insert(s.into(), id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or(WILDCARD, |s| s)
    }
}

/// One token of the line being added.
#[derive(Debug, Clone, Copy)]
struct LineToken<'a> {
    raw: &'a str,
    /// The interned token, or [`UNRESOLVED`] until the slow path interns it.
    tok: u32,
    /// The interned class, or [`UNRESOLVED`].
    class: u32,
    kind: VarKind,
    /// Where the masked text is in the miner's `masked` buffer.
    masked: (u32, u32),
}

/// A token id not interned yet: the fast path compares text and interns nothing.
const UNRESOLVED: u32 = u32::MAX - 1;

/// The start of a token's masked range when its masked text is its raw text.
const SAME_AS_RAW: u32 = u32::MAX;

/// A token's masked text, from the line's buffer of masked texts.
fn masked_of<'t>(masked: &'t str, t: &'t LineToken<'_>) -> &'t str {
    if t.masked.0 == SAME_AS_RAW {
        t.raw
    } else {
        masked
            .get(t.masked.0 as usize..t.masked.1 as usize)
            .unwrap_or(t.raw)
    }
}

impl Slot {
    /// Whether the slot takes this token as it is.
    #[inline]
    fn accepts(&self, t: &LineToken<'_>) -> bool {
        self.tok == WILD
            || self.tok == t.tok
            || self.tok == t.class
            || self.shape.as_ref().is_some_and(|(p, s)| {
                t.raw.len() >= p.len() + s.len() && t.raw.starts_with(&**p) && t.raw.ends_with(&**s)
            })
    }
}

/// The online template miner. See the module documentation.
#[derive(Debug, Clone)]
pub struct TemplateMiner {
    pub(crate) config: MinerConfig,
    pub(crate) interner: Interner,
    pub(crate) templates: FxHashMap<u64, State>,
    pub(crate) buckets: FxHashMap<(u32, u32), Vec<u64>>,
    /// Line signatures seen before: key hash to the template chosen, the check hash and
    /// the generation of the line's length class at the time (see `generations`).
    exact: FxHashMap<u64, CachedChoice>,
    /// For each token count, a stamp that moves whenever a template of that length is
    /// created, widened, merged or evicted. A cached choice holds only while its stamp
    /// is current, so the cache returns exactly what the full search would (and a
    /// restored miner, which starts with no cache, chooses alike).
    generations: Vec<u64>,
    /// The last stamp handed out.
    generation_clock: u64,
    pub(crate) aliases: FxHashMap<u64, u64>,
    pub(crate) changes: VecDeque<TemplateChange>,
    pub(crate) next_id: u64,
    pub(crate) clock: u64,
    pub(crate) evicted: u64,
    /// Words seen at one position of otherwise equal templates, by skeleton hash.
    pub(crate) variants: FxHashMap<u64, Vec<u32>>,
    /// The interned `<*>`.
    wildcard: u32,
    /// The token buffer, kept between lines for its allocation (always empty).
    buffer: Vec<LineToken<'static>>,
    /// The masked text of the current line's tokens, end to end.
    masked: String,
}

const EXACT_CACHE_MAX: usize = 1 << 20;

/// The seed of the check hash of [`Signature`] (any fixed value: snapshots do not carry
/// the cache).
const SIGNATURE_SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// A choice of template remembered for a line signature.
#[derive(Debug, Clone, Copy)]
struct CachedChoice {
    id: u64,
    check: u64,
    generation: u64,
}

/// Marks the templates of `n` tokens as changed: cached choices for lines of that
/// length no longer hold.
fn touch(generations: &mut Vec<u64>, clock: &mut u64, n: usize) {
    *clock += 1;
    if generations.len() <= n {
        generations.resize(n + 1, 0);
    }
    generations[n] = *clock;
}

/// A line's signature: see [`TemplateMiner::signature`].
#[derive(Debug, Clone, Copy)]
struct Signature {
    key: u64,
    check: u64,
}

impl TemplateMiner {
    /// A miner with no templates.
    pub fn new(config: MinerConfig) -> Self {
        let mut interner = Interner::default();
        let wildcard = interner.intern(WILDCARD);
        TemplateMiner {
            config,
            interner,
            wildcard,
            buffer: Vec::new(),
            masked: String::new(),
            templates: FxHashMap::default(),
            buckets: FxHashMap::default(),
            exact: FxHashMap::default(),
            generations: Vec::new(),
            generation_clock: 0,
            aliases: FxHashMap::default(),
            changes: VecDeque::new(),
            next_id: 1,
            clock: 0,
            evicted: 0,
            variants: FxHashMap::default(),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// Changes the memory bound (for a miner restored from a snapshot taken with
    /// another); takes effect at the next new template.
    pub fn set_max_templates(&mut self, max_templates: usize) {
        self.config.max_templates = max_templates.max(1);
    }

    /// Adds one message (the content of a log line, without its header) and returns its
    /// template and parameters.
    // `filter_map(|_| None)` on an empty vector changes the element's lifetime and
    // keeps the allocation; `filter` could not change the type.
    #[allow(clippy::unnecessary_filter_map)]
    pub fn add<'a>(&mut self, content: &'a str) -> Match<'a> {
        self.clock += 1;
        // The token buffer's allocation is reused from line to line (it is empty
        // between lines, so moving it across lifetimes moves no token).
        let buffer: Vec<LineToken<'_>> = std::mem::take(&mut self.buffer)
            .into_iter()
            .filter_map(|_| None)
            .collect();
        self.masked.clear();
        let mut tokens = self.tokenize(content, buffer);
        let m = self.add_tokens(content, &mut tokens);
        tokens.clear();
        self.buffer = tokens.into_iter().filter_map(|_| None).collect();
        m
    }

    fn add_tokens<'a>(&mut self, content: &'a str, tokens: &mut [LineToken<'a>]) -> Match<'a> {
        let signature = self.signature(tokens);
        if let Some(&CachedChoice {
            id,
            check,
            generation,
        }) = self.exact.get(&signature.key)
        {
            // A line with these token texts chose this template, and no template of its
            // length has changed since: the choice stands. The second, independent hash
            // stands in for comparing the texts token by token.
            if check == signature.check
                && self.generations.get(tokens.len()).copied() == Some(generation)
            {
                if let Some(state) = self.templates.get(&id) {
                    if !weak_differs(&state.slots, tokens) {
                        return self.take(id, tokens, content, None);
                    }
                }
            }
        }
        // The slow path works on interned ids.
        for t in tokens.iter_mut() {
            if t.class == UNRESOLVED {
                t.class = self.interner.intern(masked_of(&self.masked, t));
            }
            if t.tok == UNRESOLVED {
                // A weak variable (`ee0`, `tty=NODEVssh`) groups by its exact text
                // until enough different values are seen at its position.
                t.tok = if t.kind == VarKind::Weak {
                    self.interner.intern(t.raw)
                } else {
                    self.interner.intern(masked_of(&self.masked, t))
                };
            }
        }
        let tokens: &[LineToken<'a>] = tokens;
        let bucket = bucket_of(tokens);
        let best = self.best_candidate(bucket, tokens);
        let id = match best {
            Some(id) => {
                let previous = self.generalise(id, tokens);
                if previous.is_some() {
                    self.merge_into(id);
                }
                let m = self.take(id, tokens, content, previous);
                self.cache(signature, id);
                return m;
            }
            None => self.create(bucket, tokens, content),
        };
        self.cache(signature, id);
        self.evict_if_full(id);
        Match {
            template_id: TemplateId(id),
            params: params_of(self.templates.get(&id).map(|s| &s.slots[..]), tokens),
            kind: MatchKind::New,
        }
    }

    /// The template with this id (an id merged into another resolves to the survivor).
    pub fn template(&self, id: TemplateId) -> Option<&Template> {
        self.templates.get(&self.resolve(id.0)).map(|s| &s.public)
    }

    /// The id a (possibly merged) id now stands for.
    pub fn resolve_id(&self, id: TemplateId) -> TemplateId {
        TemplateId(self.resolve(id.0))
    }

    /// Every live template, in no particular order.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.templates.values().map(|s| &s.public)
    }

    /// How many live templates there are.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether there is no template yet.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// How many templates the memory bound has evicted.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Recent template changes, oldest first (at most `max_changes`).
    pub fn changes(&self) -> impl Iterator<Item = &TemplateChange> {
        self.changes.iter()
    }

    /// How many lines the miner has taken.
    pub fn lines(&self) -> u64 {
        self.clock
    }

    fn resolve(&self, mut id: u64) -> u64 {
        // Aliases are compressed on every merge, so this loop runs at most twice.
        for _ in 0..64 {
            match self.aliases.get(&id) {
                Some(&next) => id = next,
                None => break,
            }
        }
        id
    }

    fn tokenize<'a>(
        &mut self,
        content: &'a str,
        mut tokens: Vec<LineToken<'a>>,
    ) -> Vec<LineToken<'a>> {
        let max = self.config.max_tokens.max(1);
        let bytes = content.as_bytes();
        let mut i = 0;
        // One pass over the bytes finds each token's end and whether it may hold a
        // value (a digit, `/`, `\`, `.`, `=`); only those tokens go to the masker.
        while i < bytes.len() {
            if mask::BYTE_CLASS[usize::from(bytes[i])] & mask::SPACE != 0 {
                i += 1;
                continue;
            }
            let start = i;
            let mut hints = 0u16;
            while i < bytes.len() {
                let class = mask::BYTE_CLASS[usize::from(bytes[i])];
                if class & mask::SPACE != 0 {
                    break;
                }
                hints |= class;
                i += 1;
            }
            let raw = if tokens.len() + 1 == max {
                // Fold the tail into one last token, so a huge line stays bounded.
                let tail = content[start..].trim_end();
                hints = mask::classes(tail.as_bytes());
                tail
            } else {
                &content[start..i]
            };
            let masked_start = u32::try_from(self.masked.len()).unwrap_or(u32::MAX);
            let (kind, (start, end)) = if hints & mask::VALUE_HINT != 0 {
                // Masked straight into the line's buffer of masked texts.
                let kind = mask::mask_value_token(raw, &mut self.masked);
                let end = u32::try_from(self.masked.len()).unwrap_or(u32::MAX);
                (kind, (masked_start, end))
            } else if mask::is_boolean(raw) {
                self.masked.push_str(WILDCARD);
                let end = u32::try_from(self.masked.len()).unwrap_or(u32::MAX);
                (VarKind::Strong, (masked_start, end))
            } else {
                // A word masks to itself: its text is `raw`, with no copy.
                (VarKind::None, (SAME_AS_RAW, 0))
            };
            tokens.push(LineToken {
                raw,
                tok: UNRESOLVED,
                class: UNRESOLVED,
                kind,
                masked: (start, end),
            });
            if tokens.len() == max {
                break;
            }
        }
        // A word after `user`, `host` and the like is a name, not part of the message.
        let mut previous_named = false;
        for i in 1..tokens.len() {
            // `invalid user user from`: the second `user` is the name, `from` is not.
            let named = !previous_named
                && tokens[i].kind != VarKind::Strong
                && names_next(tokens[i - 1].raw);
            if named {
                tokens[i].kind = VarKind::Weak;
                tokens[i].tok = self.wildcard;
                tokens[i].class = self.wildcard;
            }
            previous_named = named;
        }
        // `12 KB`: a size unit after a number is part of the value.
        let wildcard = self.wildcard;
        for i in 1..tokens.len() {
            if tokens[i].kind == VarKind::None
                && self.class_text(&tokens[i - 1]) == WILDCARD
                && mask::is_size_unit(tokens[i].raw)
            {
                // The unit stays as written while it does not vary (`<*> MB`), and
                // generalises to its class (`<*>`) when it does (`<*> B`, `<*> KB`).
                let raw = tokens[i].raw;
                let unit_len = raw.trim_end_matches([',', ')', ';', '.']).len();
                let masked = format!("{WILDCARD}{}", &raw[unit_len..]);
                tokens[i].kind = VarKind::Strong;
                tokens[i].class = self.interner.intern(&masked);
            }
        }
        // Month and weekday names next to numbers are parts of a timestamp.
        // Two passes, so that `Sun Jul 24` masks `Sun` through `Jul` (the second only
        // when the first masked something).
        for _ in 0..2 {
            let mut masked_any = false;
            for i in 0..tokens.len() {
                if tokens[i].kind == VarKind::None {
                    let near_number = (i > 0 && tokens[i - 1].kind == VarKind::Strong)
                        || tokens.get(i + 1).is_some_and(|t| t.kind == VarKind::Strong);
                    if near_number && mask::is_date_word(tokens[i].raw) {
                        tokens[i].kind = VarKind::Strong;
                        tokens[i].tok = wildcard;
                        tokens[i].class = wildcard;
                        masked_any = true;
                    }
                }
            }
            if !masked_any {
                break;
            }
        }
        tokens
    }

    /// A token's masked text.
    fn masked_text<'t>(&'t self, t: &'t LineToken<'_>) -> &'t str {
        masked_of(&self.masked, t)
    }

    /// The text a token's id stands for (its exact text for a weak variable).
    fn tok_text<'t>(&'t self, t: &'t LineToken<'_>) -> &'t str {
        if t.tok != UNRESOLVED {
            self.interner.get(t.tok)
        } else if t.kind == VarKind::Weak {
            t.raw
        } else {
            self.masked_text(t)
        }
    }

    /// The text of a token's class.
    fn class_text<'t>(&'t self, t: &'t LineToken<'_>) -> &'t str {
        if t.class != UNRESOLVED {
            self.interner.get(t.class)
        } else {
            self.masked_text(t)
        }
    }

    /// Two independent hashes of the line's token texts (Fx and foldhash, 128 bits in
    /// all): the key of the exact-signature cache and the check that stands in for
    /// comparing texts. A false match needs both to collide at once.
    fn signature(&self, tokens: &[LineToken<'_>]) -> Signature {
        use std::hash::{BuildHasher, Hasher};
        let mut key = crate::fxhash::FxHasher::default();
        let mut check = foldhash::fast::FixedState::with_seed(SIGNATURE_SEED).build_hasher();
        key.write_usize(tokens.len());
        check.write_usize(tokens.len());
        for t in tokens {
            let text = self.tok_text(t).as_bytes();
            key.write(text);
            key.write_u8(0xff);
            check.write(text);
            check.write_u8(0xff);
        }
        Signature {
            key: key.finish(),
            check: check.finish(),
        }
    }

    fn best_candidate(&mut self, bucket: (u32, u32), tokens: &[LineToken<'_>]) -> Option<u64> {
        let ids = self.buckets.get(&bucket)?;
        let n = tokens.len();
        let mut best: Option<(f64, usize, u64)> = None;
        // The closest template that differs from the line in exactly one word.
        let mut sibling: Option<(usize, u64, usize)> = None;
        for &id in ids {
            let Some(state) = self.templates.get(&id) else {
                continue;
            };
            let mut equal = 0usize;
            let mut wild = 0usize;
            let mut word_diffs = 0usize;
            let mut word_at = 0usize;
            for (i, (slot, t)) in state.slots.iter().zip(tokens).enumerate() {
                if slot.tok == t.tok {
                    equal += 1;
                } else if slot.accepts(t) {
                    wild += 1;
                } else if (is_wordlike(slot.kind, self.interner.get(slot.tok))
                    && is_wordlike(t.kind, t.raw))
                    || is_structure(self.interner.get(slot.tok))
                    || is_structure(t.raw)
                    || (slot.kind == VarKind::Strong
                        && t.kind == VarKind::Strong
                        && slot.class != t.class
                        && self.interner.get(slot.class).len() > WILDCARD.len()
                        && self.interner.get(t.class).len() > WILDCARD.len())
                {
                    // Two words, or two values in different dress (`(uid=<*>)`,
                    // `LOGIN(uid=<*>)`): the template's identity differs here.
                    word_diffs += 1;
                    word_at = i;
                }
            }
            if word_diffs > 0 {
                if word_diffs == 1
                    && equal + wild + 1 == n
                    && sibling.is_none_or(|(e, _, _)| equal > e)
                {
                    sibling = Some((equal, id, word_at));
                }
                continue;
            }
            // A line that fits the template as it is belongs to it, however many of its
            // slots are wildcards.
            let sim = if equal + wild == n {
                1.0 + 1e-3
            } else {
                equal as f64 / n as f64
            };
            if sim + 1e-9 >= self.config.similarity
                && best.is_none_or(|(s, w, _)| sim > s || (sim == s && wild > w))
            {
                best = Some((sim, wild, id));
            }
        }
        if let Some((_, _, id)) = best {
            return Some(id);
        }
        let (_, id, at) = sibling?;
        self.word_varies(id, at, tokens[at].tok).then_some(id)
    }

    /// Records that a word was seen at position `at` of lines otherwise equal to
    /// template `id`, and says whether enough different words have been seen there
    /// for the position to be a variable.
    fn word_varies(&mut self, id: u64, at: usize, word: u32) -> bool {
        use std::hash::Hasher;
        let Some(state) = self.templates.get(&id) else {
            return false;
        };
        let mut h = crate::fxhash::FxHasher::default();
        h.write_usize(state.slots.len());
        h.write_usize(at);
        // Keyed by text, not by interned ids, so that a snapshot carries it over.
        for (i, slot) in state.slots.iter().enumerate() {
            if i != at {
                if slot.tok == WILD {
                    h.write_u8(0xfe);
                } else {
                    h.write(self.interner.get(slot.tok).as_bytes());
                }
                h.write_u8(0xff);
            }
        }
        let own = state.slots[at].tok;
        let key = h.finish();
        if self.variants.len() >= EXACT_CACHE_MAX {
            self.variants.clear();
        }
        let threshold = self.config.word_variants.max(2);
        let seen = self.variants.entry(key).or_default();
        for w in [own, word] {
            if !seen.contains(&w) && seen.len() < threshold {
                seen.push(w);
            }
        }
        seen.len() >= threshold
    }

    /// Turns the slots where the line differs into wildcards; returns the text before
    /// when the template's text changed.
    fn generalise(&mut self, id: u64, tokens: &[LineToken<'_>]) -> Option<String> {
        let state = self.templates.get_mut(&id)?;
        let mut changed = false;
        for (slot, t) in state.slots.iter_mut().zip(tokens) {
            if slot.tok == WILD {
                continue;
            }
            if !slot.accepts(t) {
                let old_text = match &slot.raw {
                    Some(raw) => raw.to_string(),
                    None => self.interner.get(slot.tok).to_string(),
                };
                let shape = shape_of(&old_text).filter(|s| Some(*s) == shape_of(t.raw));
                if slot.class == t.class {
                    slot.tok = slot.class;
                } else if let Some((prefix, suffix)) = shape {
                    slot.tok = self.interner.intern(&format!("{prefix}{WILDCARD}{suffix}"));
                    slot.class = slot.tok;
                    slot.shape = Some((prefix.into(), suffix.into()));
                } else {
                    slot.tok = WILD;
                    slot.shape = None;
                }
                slot.kind = slot.kind.max(t.kind);
                slot.raw = None;
                changed = true;
            } else if slot.kind == VarKind::Weak && slot.raw.as_deref().is_some_and(|r| r != t.raw)
            {
                slot.raw = None;
                changed = true;
            }
        }
        if !changed {
            return None;
        }
        // A slot that widened changes which lines the template takes, shown or not.
        touch(
            &mut self.generations,
            &mut self.generation_clock,
            state.slots.len(),
        );
        let text = render(&self.interner, &state.slots);
        if text == state.public.text {
            return None;
        }
        let previous = std::mem::replace(&mut state.public.text, text.clone());
        let change = TemplateChange {
            id: TemplateId(id),
            at: self.clock,
            kind: ChangeKind::Generalised {
                previous: previous.clone(),
                text,
            },
        };
        self.record(change);
        Some(previous)
    }

    /// Folds into `id` every other template of its bucket that its pattern now covers.
    fn merge_into(&mut self, id: u64) {
        let Some(state) = self.templates.get(&id) else {
            return;
        };
        let bucket = state.bucket;
        let pattern: Vec<Slot> = state.slots.clone();
        let interner = &self.interner;
        let covers = |p: &Slot, s: &Slot| {
            p.tok == WILD
                || (s.tok != WILD
                    && (s.tok == p.tok
                        || s.class == p.tok
                        || p.shape.as_ref().is_some_and(|(pre, suf)| {
                            let text = s.raw.as_deref().unwrap_or_else(|| interner.get(s.tok));
                            text.starts_with(&**pre) && text.ends_with(&**suf)
                        })))
        };
        let Some(ids) = self.buckets.get(&bucket) else {
            return;
        };
        let covered: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&other| other != id)
            .filter(|other| {
                self.templates
                    .get(other)
                    .is_some_and(|o| o.slots.iter().zip(&pattern).all(|(s, p)| covers(p, s)))
            })
            .collect();
        for other in covered {
            let Some(gone) = self.templates.remove(&other) else {
                continue;
            };
            touch(
                &mut self.generations,
                &mut self.generation_clock,
                gone.slots.len(),
            );
            if let Some(list) = self.buckets.get_mut(&bucket) {
                list.retain(|&x| x != other);
            }
            if let Some(survivor) = self.templates.get_mut(&id) {
                survivor.public.count += gone.public.count;
                survivor.public.first_seen = survivor.public.first_seen.min(gone.public.first_seen);
                survivor.public.last_seen = survivor.public.last_seen.max(gone.public.last_seen);
                for (slot, o) in survivor.slots.iter_mut().zip(&gone.slots) {
                    if slot.kind == VarKind::Weak && slot.raw != o.raw {
                        slot.raw = None;
                    }
                }
                survivor.public.text = render(&self.interner, &survivor.slots);
            }
            for target in self.aliases.values_mut() {
                if *target == other {
                    *target = id;
                }
            }
            self.aliases.insert(other, id);
            self.record(TemplateChange {
                id: TemplateId(id),
                at: self.clock,
                kind: ChangeKind::Merged {
                    from: TemplateId(other),
                },
            });
        }
    }

    fn take<'a>(
        &mut self,
        id: u64,
        tokens: &[LineToken<'a>],
        _content: &str,
        previous: Option<String>,
    ) -> Match<'a> {
        let clock = self.clock;
        let Some(state) = self.templates.get_mut(&id) else {
            return Match {
                template_id: TemplateId(id),
                params: Vec::new(),
                kind: MatchKind::Existing,
            };
        };
        state.public.count += 1;
        state.public.last_seen = clock;
        Match {
            template_id: TemplateId(id),
            params: params_of(Some(&state.slots), tokens),
            kind: match previous {
                Some(previous) => MatchKind::Generalised { previous },
                None => MatchKind::Existing,
            },
        }
    }

    fn create(&mut self, bucket: (u32, u32), tokens: &[LineToken<'_>], content: &str) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let slots: Vec<Slot> = tokens
            .iter()
            .map(|t| Slot {
                tok: t.tok,
                class: t.class,
                kind: t.kind,
                shape: None,
                raw: (t.kind == VarKind::Weak).then(|| t.raw.into()),
            })
            .collect();
        let text = render(&self.interner, &slots);
        let state = State {
            public: Template {
                id: TemplateId(id),
                text,
                count: 1,
                sample: content.to_string(),
                first_seen: self.clock,
                last_seen: self.clock,
            },
            slots,
            bucket,
        };
        touch(
            &mut self.generations,
            &mut self.generation_clock,
            state.slots.len(),
        );
        self.templates.insert(id, state);
        self.buckets.entry(bucket).or_default().push(id);
        id
    }

    fn cache(&mut self, signature: Signature, id: u64) {
        if self.exact.len() >= EXACT_CACHE_MAX {
            self.exact.clear();
        }
        let Some(state) = self.templates.get(&id) else {
            return;
        };
        let n = state.slots.len();
        if self.generations.len() <= n {
            self.generations.resize(n + 1, 0);
        }
        self.exact.insert(
            signature.key,
            CachedChoice {
                id,
                check: signature.check,
                generation: self.generations[n],
            },
        );
    }

    fn record(&mut self, change: TemplateChange) {
        if self.config.max_changes == 0 {
            return;
        }
        while self.changes.len() >= self.config.max_changes {
            self.changes.pop_front();
        }
        self.changes.push_back(change);
    }

    /// Keeps at most `max_templates`: evicts the least recently seen (never `keep`, the
    /// template that just took a line), a hundredth of the bound at a time so that the
    /// scan for the oldest is paid rarely.
    fn evict_if_full(&mut self, keep: u64) {
        let max = self.config.max_templates.max(1);
        if self.templates.len() <= max {
            return;
        }
        let target = max - max / 100;
        let mut by_age: Vec<(u64, u64)> = self
            .templates
            .iter()
            .filter(|(id, _)| **id != keep)
            .map(|(id, s)| (s.public.last_seen, *id))
            .collect();
        by_age.sort_unstable();
        let excess = self.templates.len().saturating_sub(target.max(1));
        for &(_, id) in by_age.iter().take(excess) {
            if let Some(state) = self.templates.remove(&id) {
                if let Some(list) = self.buckets.get_mut(&state.bucket) {
                    list.retain(|&x| x != id);
                }
                self.evicted += 1;
                touch(
                    &mut self.generations,
                    &mut self.generation_clock,
                    state.slots.len(),
                );
                self.record(TemplateChange {
                    id: TemplateId(id),
                    at: self.clock,
                    kind: ChangeKind::Evicted,
                });
            }
        }
        self.aliases
            .retain(|_, target| self.templates.contains_key(target));
        self.exact
            .retain(|_, choice| self.templates.contains_key(&choice.id));
    }
}

impl Default for TemplateMiner {
    fn default() -> Self {
        TemplateMiner::new(MinerConfig::default())
    }
}

/// Whether a token takes part in a template's identity like a word: words, weak
/// identifiers, and punctuation-only tokens such as `****` or `-`.
fn is_wordlike(kind: VarKind, text: &str) -> bool {
    if text.contains(WILDCARD) {
        return false;
    }
    kind != VarKind::Strong || !text.bytes().any(|c| c.is_ascii_alphanumeric())
}

/// Punctuation of two or more characters (`****`, `=>`, `--`): part of the message's
/// layout, never a value. (A lone `-` is often a missing value, so it is not.)
fn is_structure(text: &str) -> bool {
    text.len() >= 2
        && !text.contains(WILDCARD)
        && !text.bytes().any(|c| c.is_ascii_alphanumeric())
        // `()`, `[]`, `""`: an empty value in brackets, not layout.
        && !text.bytes().all(|c| b"()[]{}<>\"',;:.".contains(&c))
}

/// Words after which a word is a name: `user root`, `host db1`.
fn names_next(previous: &str) -> bool {
    const NAMING: &[&str] = &[
        "user",
        "username",
        "users",
        "login",
        "account",
        "host",
        "hostname",
        "domain",
        "file",
        "filename",
        "directory",
        "dir",
        "path",
        "table",
        "database",
        "db",
        "queue",
        "topic",
    ];
    if previous.len() < 2
        || previous.len() > 10
        || !matches!(
            previous.as_bytes()[0] | 0x20,
            b'u' | b'l' | b'a' | b'h' | b'd' | b'f' | b'p' | b't' | b'q'
        )
    {
        return false;
    }
    let word = previous.trim_end_matches([':', '=']);
    NAMING.iter().any(|n| word.eq_ignore_ascii_case(n))
}

fn bucket_of(tokens: &[LineToken<'_>]) -> (u32, u32) {
    let first = match tokens.first() {
        Some(t) if t.kind == VarKind::None => t.tok,
        _ => WILD,
    };
    (u32::try_from(tokens.len()).unwrap_or(u32::MAX), first)
}

fn weak_differs(slots: &[Slot], tokens: &[LineToken<'_>]) -> bool {
    slots
        .iter()
        .zip(tokens)
        .any(|(s, t)| s.raw.as_deref().is_some_and(|r| r != t.raw))
}

fn params_of<'a>(slots: Option<&[Slot]>, tokens: &[LineToken<'a>]) -> Vec<&'a str> {
    let Some(slots) = slots else {
        return Vec::new();
    };
    slots
        .iter()
        .zip(tokens)
        .filter(|(s, _)| s.is_param())
        .map(|(_, t)| t.raw)
        .collect()
}

pub(crate) fn render(interner: &Interner, slots: &[Slot]) -> String {
    let mut text = String::new();
    for (i, slot) in slots.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        if slot.tok == WILD {
            text.push_str(WILDCARD);
        } else if let (VarKind::Weak, Some(raw)) = (slot.kind, slot.raw.as_deref()) {
            text.push_str(raw);
        } else {
            text.push_str(interner.get(slot.tok));
        }
    }
    text
}
