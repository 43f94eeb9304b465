//! Phrase matching: one Aho-Corasick pass over the normalised text (linear in its length),
//! whole-word checks, longest-match-wins, and clause/word positions for negation.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::lexicon::{Kind, Lexicon};
use super::markup::Prepared;

/// One phrase found in the normalised text, `[s, e)` in bytes of `Prepared::norm`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub entry: usize,
    pub s: usize,
    pub e: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    ac: Option<AhoCorasick>,
    pattern_entry: Vec<usize>,
    pattern_prefix: Vec<bool>,
    pattern_case: Vec<Option<String>>,
    regexes: Vec<(regex::Regex, usize)>,
}

impl Matcher {
    pub fn new(lex: &Lexicon) -> Matcher {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(lex.patterns.iter().map(|p| p.text.as_str()))
            .ok();
        Matcher {
            ac,
            pattern_entry: lex.patterns.iter().map(|p| p.entry).collect(),
            pattern_prefix: lex.patterns.iter().map(|p| p.prefix).collect(),
            pattern_case: lex.patterns.iter().map(|p| p.case_sensitive.clone()).collect(),
            regexes: lex.regexes.clone(),
        }
    }

    /// All whole-word matches, with matches lying strictly inside a longer one removed
    /// (so "quota system" in an `ignore` entry silences "quota").
    pub fn find(&self, lex: &Lexicon, original: &str, p: &Prepared) -> Vec<Hit> {
        let text = p.norm.as_str();
        let mut hits: Vec<Hit> = Vec::new();
        for (re, entry) in &self.regexes {
            for m in re.find_iter(text) {
                if m.end() > m.start() && ends_word(text, m.end()) {
                    hits.push(Hit { entry: *entry, s: m.start(), e: m.end() });
                }
            }
        }
        let Some(ac) = &self.ac else { return hits };
        for m in ac.find_overlapping_iter(text) {
            let pid = m.pattern().as_usize();
            let (s, e) = (m.start(), m.end());
            if !text.is_char_boundary(s) || !text.is_char_boundary(e) {
                continue;
            }
            if let Some(exact) = &self.pattern_case[pid] {
                let (os, oe) = p.original_span(s, e);
                if original.get(os..oe) != Some(exact.as_str()) {
                    continue;
                }
            }
            if starts_word(text, s) && (self.pattern_prefix[pid] || ends_word(text, e)) {
                let e = if self.pattern_prefix[pid] { word_end(text, e) } else { e };
                hits.push(Hit { entry: self.pattern_entry[pid], s, e });
            }
        }
        // Longest first at each start; then drop a match lying strictly inside a longer one
        // that speaks for it (see `dominates`). Open spans are kept in a small window: a
        // pattern is at most a few dozen bytes, so this stays linear in the text.
        let is_ignore = |h: &Hit| lex.entries[h.entry].kind == Kind::Ignore;
        hits.sort_by(|a, b| a.s.cmp(&b.s).then(b.e.cmp(&a.e)).then(is_ignore(b).cmp(&is_ignore(a))));
        hits.dedup_by(|a, b| a.s == b.s && a.e == b.e && a.entry == b.entry);
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        let mut open: Vec<Hit> = Vec::new();
        for h in hits {
            open.retain(|o| o.e > h.s);
            // An `ignore` phrase also silences a cue with exactly its span.
            let inside = open.iter().any(|o| {
                o.s <= h.s
                    && h.e <= o.e
                    && ((o.e - o.s) > (h.e - h.s) || (is_ignore(o) && !is_ignore(&h)))
                    && dominates(lex, o, &h)
            });
            if !inside {
                kept.push(h);
            }
            open.push(h);
        }
        kept
    }
}

/// Whether a longer match silences a shorter one inside it. An `ignore` phrase silences
/// everything; a phrase silences shorter cues of its own kind, and negation or clause words
/// that are part of it ("not confident"). Cues of different themes inside each other both
/// count: "worried about downtime" is a concern and a risk.
fn dominates(lex: &Lexicon, outer: &Hit, inner: &Hit) -> bool {
    let (o, i) = (lex.entries[outer.entry].kind, lex.entries[inner.entry].kind);
    o == Kind::Ignore || o == i || matches!(i, Kind::Negation | Kind::Clause)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn starts_word(text: &str, s: usize) -> bool {
    let first = text[s..].chars().next();
    let before = text[..s].chars().next_back();
    match (before, first) {
        (Some(b), Some(f)) => !(is_word_char(b) && is_word_char(f)),
        _ => true,
    }
}

fn ends_word(text: &str, e: usize) -> bool {
    let last = text[..e].chars().next_back();
    let after = text[e..].chars().next();
    match (last, after) {
        (Some(l), Some(a)) => !(is_word_char(l) && is_word_char(a)),
        _ => true,
    }
}

fn word_end(text: &str, mut e: usize) -> usize {
    for c in text[e..].chars() {
        if !is_word_char(c) {
            break;
        }
        e += c.len_utf8();
    }
    e
}

/// Clause and word positions of the normalised text, for scoping negation and rules.
pub(crate) struct Layout {
    /// Clause number of each byte.
    clause: Vec<u32>,
    /// Number of word starts before each byte.
    words: Vec<u32>,
}

impl Layout {
    pub fn new(lex: &Lexicon, p: &Prepared, hits: &[Hit]) -> Layout {
        let t = p.norm.as_bytes();
        let n = t.len();
        let mut breaks = vec![false; n];
        for (i, &c) in t.iter().enumerate() {
            let between_digits = i > 0 && i + 1 < n && t[i - 1].is_ascii_digit() && t[i + 1].is_ascii_digit();
            breaks[i] = match c {
                b'\n' | b';' | b'!' | b'?' | b'(' | b')' | b'>' => true,
                b'.' | b',' | b':' => !between_digits,
                _ => false,
            };
        }
        for h in hits {
            if lex.entries[h.entry].kind == Kind::Clause {
                breaks[h.s] = true;
            }
        }
        let mut clause = Vec::with_capacity(n);
        let mut words = Vec::with_capacity(n);
        let (mut c, mut w) = (0u32, 0u32);
        let mut prev_word = false;
        for (i, &b) in t.iter().enumerate() {
            if breaks[i] {
                c += 1;
            }
            // Non-ASCII bytes count as word characters (letters of other scripts).
            let is_word = b.is_ascii_alphanumeric() || b >= 0x80 || b == b'\'';
            if is_word && !prev_word {
                w += 1;
            }
            prev_word = is_word;
            clause.push(c);
            words.push(w);
        }
        Layout { clause, words }
    }

    pub fn clause_of(&self, pos: usize) -> u32 {
        self.clause.get(pos).copied().unwrap_or(0)
    }

    /// True when `neg` ends before `target` starts, in the same clause, at most `max_words`
    /// words apart.
    pub fn governs(&self, neg: &Hit, target: &Hit, max_words: u32) -> bool {
        if neg.e > target.s || neg.e == 0 {
            return false;
        }
        let same = self.clause_of(neg.s) == self.clause_of(target.s);
        let gap = self.words[target.s].saturating_sub(self.words[neg.e - 1]);
        same && gap <= max_words + 1
    }
}
