//! Phrase matching: one Aho-Corasick pass over the normalised text (linear in its length),
//! whole-word checks, longest-match-wins, and clause/word positions for negation.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use super::Theme;
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
    /// All the regexes in one automaton: one pass tells which of them match at all, so
    /// only those are searched for their positions (most messages match none).
    regex_set: Option<regex_automata::meta::Regex>,
    pattern_suffix: Vec<(bool, &'static [&'static str])>,
}

impl Matcher {
    pub fn new(lex: &Lexicon) -> Matcher {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .prefilter(false)
            .build(lex.patterns.iter().map(|p| p.text.as_str()))
            .ok();
        Matcher {
            ac,
            pattern_entry: lex.patterns.iter().map(|p| p.entry).collect(),
            pattern_prefix: lex.patterns.iter().map(|p| p.prefix).collect(),
            pattern_case: lex
                .patterns
                .iter()
                .map(|p| p.case_sensitive.clone())
                .collect(),
            regexes: lex.regexes.clone(),
            regex_set: regex_set(lex),
            pattern_suffix: lex.patterns.iter().map(|p| (p.bare, p.suffixes)).collect(),
        }
    }

    /// All whole-word matches, with matches lying strictly inside a longer one removed
    /// (so "quota system" in an `ignore` entry silences "quota").
    /// Also tells whether an `ignore` phrase swallowed a seller cue ("a discount is off
    /// the table"): the model must not bring that theme back from the words.
    pub fn find(&self, lex: &Lexicon, original: &str, p: &Prepared) -> (Vec<Hit>, bool) {
        let text = p.norm.as_str();
        let mut hits: Vec<Hit> = Vec::new();
        let matching: Vec<usize> = match &self.regex_set {
            Some(set) => {
                let mut patterns = regex_automata::PatternSet::new(set.pattern_len());
                set.which_overlapping_matches(&regex_automata::Input::new(text), &mut patterns);
                patterns.iter().map(|p| p.as_usize()).collect()
            }
            // Too large for one automaton (a huge custom lexicon): search each.
            None => (0..self.regexes.len()).collect(),
        };
        for (re, entry) in matching.into_iter().filter_map(|i| self.regexes.get(i)) {
            for m in re.find_iter(text) {
                if m.end() > m.start() && ends_word(text, m.end()) {
                    hits.push(Hit {
                        entry: *entry,
                        s: m.start(),
                        e: m.end(),
                    });
                }
            }
        }
        let Some(ac) = &self.ac else {
            return (hits, false);
        };
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
            if !starts_word(text, s) {
                continue;
            }
            let end = if self.pattern_prefix[pid] {
                Some(word_end(text, e))
            } else {
                let (bare, suffixes) = self.pattern_suffix[pid];
                if bare && ends_word(text, e) {
                    Some(e)
                } else {
                    // Word forms: the phrase followed by one of its endings, then a word end.
                    suffixes
                        .iter()
                        .find(|suf| text[e..].starts_with(**suf) && ends_word(text, e + suf.len()))
                        .map(|suf| e + suf.len())
                }
            };
            if let Some(e) = end {
                hits.push(Hit {
                    entry: self.pattern_entry[pid],
                    s,
                    e,
                });
            }
        }
        // Longest first at each start; then drop a match lying strictly inside a longer one
        // that speaks for it (see `dominates`). Open spans are kept in a small window: a
        // pattern is at most a few dozen bytes, so this stays linear in the text.
        let is_ignore = |h: &Hit| lex.entries[h.entry].kind == Kind::Ignore;
        hits.sort_by(|a, b| {
            a.s.cmp(&b.s)
                .then(b.e.cmp(&a.e))
                .then(is_ignore(b).cmp(&is_ignore(a)))
        });
        hits.dedup_by(|a, b| a.s == b.s && a.e == b.e && a.entry == b.entry);
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        let mut open: Vec<Hit> = Vec::new();
        let mut refused = false;
        for h in hits {
            open.retain(|o| o.e > h.s);
            // An `ignore` phrase also silences a cue with exactly its span.
            let by = open.iter().find(|o| {
                o.s <= h.s
                    && h.e <= o.e
                    && ((o.e - o.s) > (h.e - h.s) || (is_ignore(o) && !is_ignore(&h)))
                    && dominates(lex, o, &h)
            });
            match by {
                None => kept.push(h),
                Some(o) => {
                    refused |= is_ignore(o)
                        && matches!(lex.entries[h.entry].kind, Kind::Theme(t) if t.is_seller_centric());
                }
            }
            open.push(h);
        }
        (kept, refused)
    }
}

/// All the lexicon's regexes as one automaton. Without literal prefilters: the patterns
/// start with very common words ("get", "need", "their"), where a prefilter only adds a
/// call per occurrence to the one pass the lazy DFA makes anyway.
fn regex_set(lex: &Lexicon) -> Option<regex_automata::meta::Regex> {
    if lex.regexes.is_empty() {
        return None;
    }
    regex_automata::meta::Builder::new()
        .configure(
            regex_automata::meta::Config::new()
                .match_kind(regex_automata::MatchKind::All)
                .auto_prefilter(false)
                .nfa_size_limit(Some(1 << 24)),
        )
        .build_many(
            &lex.regexes
                .iter()
                .map(|(re, _)| re.as_str())
                .collect::<Vec<_>>(),
        )
        .ok()
}

/// Whether a longer match silences a shorter one inside it. An `ignore` phrase silences
/// every cue except deal words and account names ("the renewal is at risk" is not a
/// customer risk, but it is still about a renewal); a phrase silences shorter cues of its
/// own kind, and negation or clause words that are part of it ("not confident"). Cues of
/// different themes on the same side inside each other both count: "worried about
/// downtime" is a concern and a risk. Across sides the longer phrase decides whose world
/// the words are in: "they asked for 15% off" is their ask, not our lever, and "want to get
/// this booked by the 31st" is our push, not their "wants to get" outcome.
fn dominates(lex: &Lexicon, outer: &Hit, inner: &Hit) -> bool {
    let (o, i) = (lex.entries[outer.entry].kind, lex.entries[inner.entry].kind);
    match (o, i) {
        (Kind::Ignore, _) => !matches!(i, Kind::Deal | Kind::Account | Kind::DealState(_)),
        (Kind::Theme(a), Kind::Theme(b)) if a.is_seller_centric() != b.is_seller_centric() => true,
        // Direction decides: "usage down 30%" and "champion left" are a risk, not adoption
        // or shared success.
        (Kind::Theme(Theme::CustomerRisk), Kind::Theme(Theme::Adoption | Theme::SharedSuccess)) => {
            true
        }
        // "never mentioned their rollout": the absence phrase swallows the cue.
        (Kind::Absent, Kind::Theme(_)) => true,
        _ => o == i || matches!(i, Kind::Negation | Kind::Clause),
    }
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

/// Clause and word positions at the places matches start and end, for scoping negation
/// and rules. Computed in one pass without per-byte tables (this runs for every message).
pub(crate) struct Layout {
    /// Sorted (byte position, clause number, words started so far).
    marks: Vec<(usize, u32, u32)>,
}

impl Layout {
    pub fn new(lex: &Lexicon, p: &Prepared, hits: &[Hit]) -> Layout {
        let t = p.norm.as_bytes();
        let n = t.len();
        let mut wanted: Vec<usize> = Vec::with_capacity(hits.len() * 2);
        for h in hits {
            wanted.push(h.s);
            wanted.push(h.e.saturating_sub(1));
        }
        wanted.sort_unstable();
        wanted.dedup();
        // Hits are sorted by start, so clause-word starts come in order too.
        let mut clause_starts = hits
            .iter()
            .filter(|h| lex.entries[h.entry].kind == Kind::Clause)
            .map(|h| h.s)
            .peekable();
        let mut marks = Vec::with_capacity(wanted.len());
        let (mut c, mut w) = (0u32, 0u32);
        let mut prev_word = false;
        let mut next = wanted.iter().copied().peekable();
        let last = wanted.last().copied().unwrap_or(0);
        for (i, &b) in t.iter().enumerate().take(last + 1) {
            let between_digits =
                i > 0 && i + 1 < n && t[i - 1].is_ascii_digit() && t[i + 1].is_ascii_digit();
            let punct_break = match b {
                b'\n' | b';' | b'!' | b'?' | b'(' | b')' | b'>' => true,
                b'.' | b',' | b':' => !between_digits,
                _ => false,
            };
            let mut word_break = false;
            while clause_starts.peek().is_some_and(|&s| s <= i) {
                word_break |= clause_starts.next() == Some(i);
            }
            if punct_break || word_break {
                c += 1;
            }
            // Non-ASCII bytes count as word characters (letters of other scripts).
            let is_word = b.is_ascii_alphanumeric() || b >= 0x80 || b == b'\'';
            if is_word && !prev_word {
                w += 1;
            }
            prev_word = is_word;
            if next.peek() == Some(&i) {
                next.next();
                marks.push((i, c, w));
            }
        }
        Layout { marks }
    }

    fn at(&self, pos: usize) -> (u32, u32) {
        match self.marks.binary_search_by_key(&pos, |m| m.0) {
            Ok(k) => (self.marks[k].1, self.marks[k].2),
            Err(_) => (0, 0),
        }
    }

    /// Clause number of a match boundary (a hit's start or last byte).
    pub fn clause_of(&self, pos: usize) -> u32 {
        self.at(pos).0
    }

    /// True when `neg` ends before `target` starts, in the same clause, at most `max_words`
    /// words apart.
    pub fn governs(&self, neg: &Hit, target: &Hit, max_words: u32) -> bool {
        if neg.e > target.s || neg.e == 0 {
            return false;
        }
        let (nc, _) = self.at(neg.s);
        let (_, nw) = self.at(neg.e - 1);
        let (tc, tw) = self.at(target.s);
        nc == tc && tw.saturating_sub(nw) <= max_words + 1
    }
}
