//! A compiled header format: the format's literal separators matched directly, with no
//! regular expression on the hot path.
//!
//! Loghub header formats use a small part of regular-expression syntax: `<Field>`s,
//! literal text with `\[`-style escapes, runs of spaces (one or more whitespace
//! characters) and optional groups `(...)?`. A format within that part compiles to a
//! short program that this module runs with the same meaning as the regex
//! `^lit(?P<f0>.*?)lit…$` that [`super::header`] builds: every field is lazy (the
//! shortest that lets the rest match), whitespace runs are greedy, an optional group
//! is tried first with, then without. A field's end is looked for only where the next
//! literal occurs, so a line costs about one `find` per separator.
//!
//! Hand-written rather than a crate: the regex crate is the general tool and stays as
//! the fallback (formats outside this subset, lines with a newline, and lines whose
//! backtracking would exceed a step budget, which keeps the worst case linear).

/// One instruction of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inst {
    /// This exact text.
    Literal(Box<str>),
    /// One or more whitespace characters (the regex `\s+`).
    Space,
    /// Field number `n`: any text, as little as lets the rest match.
    Field(usize),
    /// An optional group: try the next instruction, else jump to the one given.
    Split(usize),
    /// The end of the line.
    End,
}

/// A format compiled to instructions.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    program: Vec<Inst>,
    fields: usize,
    /// For each instruction: the bytes a match of it can start with, when that is a
    /// short list (literals and groups of literals). A field before it ends only there.
    first_bytes: Vec<Option<Box<[u8]>>>,
}

/// Why a line was not decided: the caller falls back to the regular expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Undecided;

/// One piece of a format's text, as [`super::header`] splits it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Piece<'a> {
    /// Literal format text (Loghub's regex syntax).
    Text(&'a str),
    /// A `<Field>`.
    Field,
}

impl Pattern {
    /// Compiles the pieces of a format, or `None` when its literal text uses regex
    /// syntax beyond escapes, space runs and `(...)?` groups.
    pub(crate) fn compile(pieces: &[Piece<'_>]) -> Option<Pattern> {
        let mut program = Vec::new();
        // Open groups: where each group's `Split` is in the program.
        let mut open: Vec<usize> = Vec::new();
        let mut literal = String::new();
        let mut fields = 0;
        for piece in pieces {
            match piece {
                Piece::Field => {
                    flush(&mut literal, &mut program);
                    program.push(Inst::Field(fields));
                    fields += 1;
                }
                Piece::Text(text) => {
                    let mut chars = text.chars().peekable();
                    while let Some(c) = chars.next() {
                        match c {
                            ' ' => {
                                while chars.peek() == Some(&' ') {
                                    chars.next();
                                }
                                flush(&mut literal, &mut program);
                                program.push(Inst::Space);
                            }
                            '\\' => match chars.next() {
                                Some(e) if e.is_ascii_punctuation() => literal.push(e),
                                // `\s`, `\d` and the like are classes, not literals.
                                _ => return None,
                            },
                            '(' => {
                                flush(&mut literal, &mut program);
                                open.push(program.len());
                                program.push(Inst::Split(0));
                            }
                            ')' => {
                                flush(&mut literal, &mut program);
                                let split = open.pop()?;
                                if chars.next_if_eq(&'?').is_some() {
                                    // `?` then `?` (lazy) or `+` would change the meaning.
                                    if matches!(chars.peek(), Some('?' | '+')) {
                                        return None;
                                    }
                                    program[split] = Inst::Split(program.len());
                                } else {
                                    // A group that is not optional is its content; a
                                    // quantifier after it is beyond this subset.
                                    if matches!(chars.peek(), Some('*' | '+' | '{')) {
                                        return None;
                                    }
                                    program.remove(split);
                                    // Later splits inside the group moved back by one.
                                    for inst in &mut program[split..] {
                                        if let Inst::Split(target) = inst {
                                            *target -= 1;
                                        }
                                    }
                                }
                            }
                            '.' | '^' | '$' | '*' | '+' | '?' | '{' | '}' | '|' | '[' | ']' => {
                                return None;
                            }
                            _ => literal.push(c),
                        }
                    }
                }
            }
        }
        if !open.is_empty() {
            return None;
        }
        flush(&mut literal, &mut program);
        program.push(Inst::End);
        let first_bytes = (0..program.len())
            .map(|pc| {
                let mut bytes = Vec::new();
                first_bytes(&program, pc, &mut bytes).then(|| bytes.into_boxed_slice())
            })
            .collect();
        Some(Pattern {
            program,
            fields,
            first_bytes,
        })
    }

    /// The byte ranges of the fields in `line`, or `Ok(None)` when the line does not
    /// match. `Err` when the line is left to the regex (see the module documentation).
    pub(crate) fn split(
        &self,
        line: &str,
        spans: &mut Vec<(usize, usize)>,
    ) -> Result<bool, Undecided> {
        if line.contains('\n') {
            // The regex's `.` stops at a newline and its `\s` takes one: rare enough
            // to leave to it.
            return Err(Undecided);
        }
        spans.clear();
        spans.resize(self.fields, (0, 0));
        // Each instruction tried at each place costs a step; a budget linear in the
        // line bounds the backtracking.
        let mut budget = 64 + 8 * line.len();
        self.run(line, 0, 0, spans, &mut budget)
    }

    fn run(
        &self,
        line: &str,
        pc: usize,
        pos: usize,
        spans: &mut [(usize, usize)],
        budget: &mut usize,
    ) -> Result<bool, Undecided> {
        *budget = budget.checked_sub(1).ok_or(Undecided)?;
        let Some(inst) = self.program.get(pc) else {
            return Ok(false);
        };
        let rest = &line[pos..];
        match inst {
            Inst::End => Ok(pos == line.len()),
            Inst::Literal(text) => {
                if rest.starts_with(&**text) {
                    self.run(line, pc + 1, pos + text.len(), spans, budget)
                } else {
                    Ok(false)
                }
            }
            Inst::Space => {
                let run = whitespace_run(rest);
                // Greedy: the longest run first, then shorter ones.
                let mut end = pos + run;
                while end > pos {
                    if self.run(line, pc + 1, end, spans, budget)? {
                        return Ok(true);
                    }
                    end -= rest[..end - pos]
                        .chars()
                        .next_back()
                        .map_or(1, char::len_utf8);
                }
                Ok(false)
            }
            Inst::Split(skip) => {
                if self.run(line, pc + 1, pos, spans, budget)? {
                    return Ok(true);
                }
                // Without the group its fields are empty, as the regex leaves them.
                for inst in self.program.get(pc + 1..*skip).unwrap_or_default() {
                    if let Inst::Field(n) = inst {
                        if let Some(span) = spans.get_mut(*n) {
                            *span = (0, 0);
                        }
                    }
                }
                self.run(line, *skip, pos, spans, budget)
            }
            Inst::Field(n) => self.field(line, pc, *n, pos, spans, budget),
        }
    }

    /// A lazy field: its possible ends in increasing order, looked for only where the
    /// next instruction can match.
    fn field(
        &self,
        line: &str,
        pc: usize,
        n: usize,
        pos: usize,
        spans: &mut [(usize, usize)],
        budget: &mut usize,
    ) -> Result<bool, Undecided> {
        let mut try_end = |end: usize, budget: &mut usize| -> Result<bool, Undecided> {
            if let Some(span) = spans.get_mut(n) {
                *span = (pos, end);
            }
            self.run(line, pc + 1, end, spans, budget)
        };
        match self.program.get(pc + 1) {
            // The last field takes the rest of the line.
            Some(Inst::End) => try_end(line.len(), budget),
            Some(Inst::Literal(text)) => {
                // Candidates are where the literal's first byte is (a byte scan is
                // cheaper than a substring search on lines this short).
                let bytes = line.as_bytes();
                let first = text.as_bytes()[0];
                let mut at = pos;
                while let Some(found) = if first.is_ascii() {
                    // `find` of an ASCII `char` is a word-at-a-time memchr.
                    line[at..].find(char::from(first))
                } else {
                    bytes[at..].iter().position(|&b| b == first)
                } {
                    let end = at + found;
                    if line[end..].starts_with(&**text) && try_end(end, budget)? {
                        return Ok(true);
                    }
                    at = end + 1;
                    *budget = budget.checked_sub(1).ok_or(Undecided)?;
                }
                Ok(false)
            }
            Some(Inst::Space) => {
                let bytes = line.as_bytes();
                let mut at = pos;
                while let Some(found) = space_candidate(&bytes[at..]) {
                    at += found;
                    let b = bytes[at];
                    if b < 0x80 {
                        if (b.is_ascii_whitespace() || b == 0x0B) && try_end(at, budget)? {
                            return Ok(true);
                        }
                        at += 1;
                    } else {
                        // Unicode whitespace (the regex's `\s` is Unicode-aware).
                        let c = line[at..].chars().next().unwrap_or(' ');
                        if c.is_whitespace() && try_end(at, budget)? {
                            return Ok(true);
                        }
                        at += c.len_utf8();
                    }
                }
                Ok(false)
            }
            _ => {
                if let Some(Some(firsts)) = self.first_bytes.get(pc + 1) {
                    // A group of literals next: only where one of them can start.
                    let bytes = line.as_bytes();
                    for (at, b) in bytes.iter().enumerate().skip(pos) {
                        if firsts.contains(b) && try_end(at, budget)? {
                            return Ok(true);
                        }
                    }
                    return Ok(false);
                }
                // Another field next: every place, shortest first.
                for (i, _) in line[pos..].char_indices() {
                    if try_end(pos + i, budget)? {
                        return Ok(true);
                    }
                }
                try_end(line.len(), budget)
            }
        }
    }
}

/// The first byte that may start whitespace: a control character or space (`<= 0x20`)
/// or a non-ASCII byte. Eight bytes at a time, since fields are mostly long runs of
/// neither (hand-written: a dozen lines, where a SIMD crate would be a dependency).
fn space_candidate(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Bytes below 0x21 set their high bit in the first term; a borrow only runs
        // upward from such a byte, so the lowest flagged byte is exact.
        let flagged = (w.wrapping_sub(ONES * 0x21) & !w & HIGH) | (w & HIGH);
        if flagged != 0 {
            return Some(i + (flagged.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&b| b <= 0x20 || b >= 0x80)
        .map(|p| i + p)
}

/// The length in bytes of the whitespace (Unicode's, as the regex's `\s`) that `text`
/// starts with.
fn whitespace_run(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut len = 0;
    while len < bytes.len() {
        let b = bytes[len];
        if b < 0x80 {
            if !(b.is_ascii_whitespace() || b == 0x0B) {
                break;
            }
            len += 1;
        } else {
            match text[len..].chars().next() {
                Some(c) if c.is_whitespace() => len += c.len_utf8(),
                _ => break,
            }
        }
    }
    len
}

/// Collects the bytes that a match starting at instruction `pc` can begin with; false
/// when that is not a fixed list (a field, whitespace or the end can come first).
fn first_bytes(program: &[Inst], pc: usize, out: &mut Vec<u8>) -> bool {
    match program.get(pc) {
        Some(Inst::Literal(text)) => {
            out.push(text.as_bytes()[0]);
            true
        }
        Some(Inst::Split(skip)) => {
            *skip > pc && first_bytes(program, pc + 1, out) && first_bytes(program, *skip, out)
        }
        _ => false,
    }
}

/// Moves pending literal text into the program.
fn flush(literal: &mut String, program: &mut Vec<Inst>) {
    if !literal.is_empty() {
        program.push(Inst::Literal(std::mem::take(literal).into_boxed_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_candidates_are_found_at_every_offset() {
        let naive = |b: &[u8]| b.iter().position(|&c| c <= 0x20 || c >= 0x80);
        let texts: &[&[u8]] = &[
            b"",
            b"abcdefghijklmnopqrstuvwxyz",
            b"abcdefgh ijklmnop",
            b"abc\x1fdefghijklmnop",
            b"abcdefghijk\tlmnop",
            b"abcdefghijklmno\xc2\xa0p",
            b"\x00bcdefgh",
            b"!!!!!!!!!!!!!!!!!!!!\x20",
            b"~~~~~~~~~~~~~~~~\x7f~~~~~~ ",
        ];
        for text in texts {
            for from in 0..=text.len() {
                assert_eq!(
                    space_candidate(&text[from..]),
                    naive(&text[from..]),
                    "{text:?} from {from}"
                );
            }
        }
    }
}
