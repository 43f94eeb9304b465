//! The learned half of the engine: one logistic regression per output (deal update and the
//! 13 themes) over the message's word uni- and bigrams, words inside a negation's reach,
//! and the lexicon's own findings (cue sums per theme, negated cues, deal cues, account,
//! situation). Trained by `cusp train` (`train.rs`); the weights are data (`model.txt`).
//!
//! Explainable by construction: a theme is shown only with words that support it, the
//! lexicon cues of that theme when there are any, otherwise the n-grams present that add
//! most to its score. Clear negation wins over the model: a seller theme whose every cue is
//! negated ("not pushing them on price") is never shown.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::classify::{FIRE, Signals, finish};
use super::{Analysis, DealState, Evidence, Theme, ThemeHit};

/// Outputs: index 0 is the deal update, then `Theme::ALL` in order.
pub(crate) const OUTPUTS: usize = 14;
/// First line of a model file.
pub(crate) const MAGIC: &str = "cusp-model 1";
/// Weights are stored in thousandths.
pub(crate) const SCALE: f32 = 1000.0;
/// n-gram spans shown for a theme the model decided without lexicon cues.
const MODEL_EVIDENCE: usize = 3;
/// A feature's value is capped here, so a repeated word counts a little, not without limit.
pub(crate) const MAX_REPEAT: f32 = 3.0;
/// Log-odds the words present must add to a theme the lexicon has no cue for.
const BARE_SUPPORT: f32 = 1.5;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model line {line}: {reason}")]
    Invalid { line: usize, reason: String },
}

/// Where features go: the trainer wants names, inference only hashes.
pub(crate) trait Sink {
    /// A feature named by the concatenation of `parts`, with its value and, for words, the
    /// normalised byte span it covers.
    fn emit(&mut self, parts: &[&str], value: f32, span: Option<(usize, usize)>);

    /// `emit` when the caller already holds `hash_parts(parts)`: the word features are
    /// hashed in one pass over each word, and inference needs nothing else.
    fn emit_hashed(&mut self, hash: u64, parts: &[&str], value: f32, span: Option<(usize, usize)>) {
        let _ = hash;
        self.emit(parts, value, span);
    }
}

/// An FNV-1a state: adding parts one after another hashes their concatenation, so a prefix
/// such as `w:` is hashed once for all words.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

const FNV_PRIME: u64 = 0x0100_0000_01b3;

impl Fnv {
    const START: Fnv = Fnv(0xcbf2_9ce4_8422_2325);

    const fn add(self, bytes: &[u8]) -> Fnv {
        let mut h = self.0;
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u64;
            h = h.wrapping_mul(FNV_PRIME);
            i += 1;
        }
        Fnv(h)
    }
}

/// `Fnv::add(bytes)` on several states at once: one pass over a word for every feature
/// that ends with it (the independent multiplications overlap in the CPU).
fn add_to_each<const N: usize>(mut states: [Fnv; N], bytes: &[u8]) -> [Fnv; N] {
    for &b in bytes {
        for h in &mut states {
            h.0 = (h.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
    states
}

/// FNV-1a over the concatenated parts: the same number for a name and for its pieces.
pub(crate) fn hash_parts(parts: &[&str]) -> u64 {
    parts.iter().fold(Fnv::START, |h, p| h.add(p.as_bytes())).0
}

/// The hash states after each word feature's prefix.
const FIRST: Fnv = Fnv::START.add(b"s:");
const WORD: Fnv = Fnv::START.add(b"w:");
const STEM: Fnv = Fnv::START.add(b"t:");
const NEGATED: Fnv = Fnv::START.add(b"n:");
const BIGRAM: Fnv = Fnv::START.add(b"b:");

/// Words that open a negation's reach (until the clause ends).
fn is_negator(w: &str) -> bool {
    matches!(
        w,
        "not"
            | "no"
            | "never"
            | "without"
            | "nothing"
            | "nobody"
            | "none"
            | "nor"
            | "neither"
            | "cannot"
            | "dont"
            | "didnt"
            | "doesnt"
            | "wont"
            | "isnt"
            | "wasnt"
            | "havent"
            | "hasnt"
    ) || w.ends_with("n't")
}

/// Words too common to explain anything on their own.
fn is_function_word(w: &str) -> bool {
    w.len() < 3
        || matches!(
            w,
            "the"
                | "and"
                | "for"
                | "are"
                | "was"
                | "were"
                | "this"
                | "that"
                | "with"
                | "they"
                | "their"
                | "them"
                | "our"
                | "you"
                | "she"
                | "her"
                | "his"
                | "from"
                | "but"
                | "not"
                | "just"
                | "has"
                | "have"
                | "had"
                | "its"
                | "it's"
                | "out"
                | "what"
                | "who"
                | "how"
                | "will"
                | "would"
                | "can"
                | "about"
                | "into"
                | "then"
                | "there"
        )
}

/// Words that end a clause (and a negation's reach).
fn is_clause_word(w: &str) -> bool {
    matches!(
        w,
        "but" | "so" | "though" | "tho" | "although" | "however" | "instead" | "while" | "yet"
    )
}

/// A crude stem, so word forms unseen in training share weight ("worries", "worried").
fn stem(w: &str) -> &str {
    for suf in ["ing", "ied", "ies", "ed", "es", "ly", "s"] {
        if let Some(s) = w.strip_suffix(suf)
            && s.len() >= 3
        {
            return s;
        }
    }
    w
}

fn length_bucket(words: usize) -> &'static str {
    match words {
        0..=6 => "0",
        7..=14 => "1",
        15..=30 => "2",
        31..=60 => "3",
        61..=120 => "4",
        _ => "5",
    }
}

/// The layout of a message, counted in the same pass as its words: team posts (quota
/// tables, rotas, leaderboards, tool notices) are many short lines of numbers or fields.
#[derive(Default)]
struct Shape {
    lines: u32,
    /// Lines with a number in them.
    numeric: u32,
    /// Lines that start with a short `label:`.
    fields: u32,
    line_words: u32,
    line_numeric: bool,
    line_field: bool,
}

impl Shape {
    fn mark(&mut self, b: u8) {
        match b {
            b'\n' => self.end_line(),
            b':' if self.line_words > 0 && self.line_words <= 3 => self.line_field = true,
            _ => {}
        }
    }

    fn word(&mut self, w: &str) {
        self.line_words += 1;
        // Every number was written `0` by the normaliser.
        self.line_numeric |= w.contains('0');
    }

    fn end_line(&mut self) {
        if self.line_words > 0 {
            self.lines += 1;
            self.numeric += u32::from(self.line_numeric);
            self.fields += u32::from(self.line_field);
        }
        self.line_words = 0;
        self.line_numeric = false;
        self.line_field = false;
    }

    fn is_table(&self) -> bool {
        self.lines >= 3 && self.numeric * 2 >= self.lines
    }

    fn emit(&mut self, sink: &mut impl Sink) {
        self.end_line();
        let lines = match self.lines {
            0 | 1 => "g:l1",
            2 | 3 => "g:l2",
            4..=6 => "g:l4",
            _ => "g:l7",
        };
        sink.emit(&[lines], 1.0, None);
        if self.is_table() {
            sink.emit(&["g:table"], 1.0, None);
        }
        if self.fields >= 2 {
            sink.emit(&["g:card"], 1.0, None);
        }
    }
}

/// Every feature of one message, in a fixed order.
pub(crate) fn extract(sig: &Signals, sink: &mut impl Sink) {
    let norm = sig.p.norm.as_str();
    let bytes = norm.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80 || b == b'\'';
    let mut prev: Option<(usize, usize)> = None;
    // The hash of "b:" + the previous word + " ", when there is a previous word.
    let mut bigram = BIGRAM;
    let mut negated = false;
    let mut words = 0usize;
    let mut shape = Shape::default();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !is_word(b) {
            shape.mark(b);
            if matches!(
                b,
                b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\n' | b'(' | b')'
            ) {
                prev = None;
                negated = false;
            }
            i += 1;
            continue;
        }
        let s = i;
        while i < bytes.len() && is_word(bytes[i]) {
            i += 1;
        }
        let w = norm[s..i].trim_matches('\'');
        if w.is_empty() {
            continue;
        }
        words += 1;
        shape.word(w);
        let [first, word, neg, pair, next_pair] =
            add_to_each([FIRST, WORD, NEGATED, bigram, BIGRAM], w.as_bytes());
        if words == 1 {
            sink.emit_hashed(first.0, &["s:", w], 1.0, Some((s, i)));
        }
        if is_clause_word(w) {
            negated = false;
        }
        sink.emit_hashed(word.0, &["w:", w], 1.0, Some((s, i)));
        let st = stem(w);
        if st.len() < w.len() {
            let h = STEM.add(st.as_bytes()).0;
            sink.emit_hashed(h, &["t:", st], 1.0, Some((s, i)));
        }
        if negated {
            sink.emit_hashed(neg.0, &["n:", w], 1.0, Some((s, i)));
        }
        if let Some((ps, pe)) = prev {
            sink.emit_hashed(
                pair.0,
                &["b:", norm[ps..pe].trim_matches('\''), " ", w],
                1.0,
                Some((ps, i)),
            );
        }
        if is_negator(w) {
            negated = true;
        }
        prev = Some((s, i));
        bigram = next_pair.add(b" ");
    }
    sink.emit(&["len:", length_bucket(words)], 1.0, None);
    let question = norm.contains('?');
    if question {
        sink.emit(&["q:?"], 1.0, None);
    }
    shape.emit(sink);
    // Pairs a linear model cannot add up: a question about a named account is usually a
    // deal (asking the team for help on it), a question without one is usually not; deal
    // words beside an account; off-topic or table-shaped posts that name no account.
    let account = sig.account.is_some();
    let pairs = [
        (question && account, "x:q+acct"),
        (question && !account, "x:q-acct"),
        (account && sig.deal > 0.0, "x:acct+deal"),
        (!account && sig.not_deal > 0.0, "x:off-acct"),
        (!account && shape.is_table(), "x:table-acct"),
    ];
    for (on, name) in pairs {
        if on {
            sink.emit(&[name], 1.0, None);
        }
    }
    for t in Theme::ALL {
        let s = sig.sum(t);
        if s > 0.0 {
            sink.emit(&["L:", t.id()], s.min(2.0), None);
        }
        if s >= FIRE {
            sink.emit(&["F:", t.id()], 1.0, None);
        }
        let n = sig.negated_sum(t);
        if n > 0.0 {
            sink.emit(&["N:", t.id()], n.min(2.0), None);
        }
    }
    if sig.deal > 0.0 {
        sink.emit(&["D:deal"], sig.deal.min(3.0), None);
    }
    if sig.not_deal > 0.0 {
        sink.emit(&["D:off"], sig.not_deal.min(3.0), None);
    }
    if sig.account.is_some() {
        sink.emit(&["D:account"], 1.0, None);
    }
    if sig.account_known {
        sink.emit(&["D:known"], 1.0, None);
    }
    if sig.deal_score() >= 2.0 {
        sink.emit(&["D:rule"], 1.0, None);
    }
    for s in [
        DealState::Discovery,
        DealState::AtRisk,
        DealState::Won,
        DealState::Lost,
    ] {
        if sig.situations.iter().any(|(k, _)| *k == s) {
            sink.emit(&["S:", s.as_str()], 1.0, None);
        }
    }
}

/// The key is already a hash.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Index = HashMap<u64, u32, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// `param` and `input` lines, kept as written (they say how to retrain).
    pub header: Vec<String>,
    pub names: Vec<String>,
    index: Index,
    /// `names.len() * OUTPUTS`, row-major.
    pub weights: Vec<f32>,
    pub bias: [f32; OUTPUTS],
    pub thresholds: [f32; OUTPUTS],
    /// Probability a theme needs when the lexicon found no cue of it.
    pub bare_threshold: f32,
    /// Below this probability a theme the lexicon fires on is dropped.
    pub veto_threshold: f32,
}

/// A known feature's row, value and (for words) normalised span.
type Emitted = (u32, f32, Option<(usize, usize)>);

struct Scorer<'m> {
    model: &'m Model,
    z: [f32; OUTPUTS],
    /// Known features as emitted (a word may repeat).
    features: Vec<Emitted>,
    /// Rows of the word features present, once each (first place), with value and span.
    present: Vec<(u32, f32, (usize, usize))>,
}

impl Sink for Scorer<'_> {
    fn emit(&mut self, parts: &[&str], value: f32, span: Option<(usize, usize)>) {
        self.emit_hashed(hash_parts(parts), parts, value, span);
    }

    fn emit_hashed(
        &mut self,
        hash: u64,
        _parts: &[&str],
        value: f32,
        span: Option<(usize, usize)>,
    ) {
        if let Some(&row) = self.model.index.get(&hash) {
            self.features.push((row, value, span));
        }
    }
}

impl Model {
    pub fn new(
        header: Vec<String>,
        names: Vec<String>,
        weights: Vec<f32>,
        bias: [f32; OUTPUTS],
        thresholds: [f32; OUTPUTS],
        bare_threshold: f32,
        veto_threshold: f32,
    ) -> Model {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (hash_parts(&[n]), i as u32))
            .collect();
        Model {
            header,
            names,
            index,
            weights,
            bias,
            thresholds,
            bare_threshold,
            veto_threshold,
        }
    }

    /// Reads the text format written by `to_text`. Errors name the line.
    pub fn parse(src: &str) -> Result<Model, ModelError> {
        let mut lines = src.lines().enumerate();
        let bad = |line: usize, reason: &str| ModelError::Invalid {
            line: line + 1,
            reason: reason.to_string(),
        };
        match lines.next() {
            Some((_, l)) if l.trim() == MAGIC => {}
            _ => return Err(bad(0, "not a cusp model (expected `cusp-model 1`)")),
        }
        let mut header = Vec::new();
        let mut bias = None;
        let mut thresholds = None;
        let mut bare = None;
        let mut veto = None;
        let mut names = Vec::new();
        let mut weights = Vec::new();
        let numbers = |line: usize, s: &str, scale: f32| -> Result<[f32; OUTPUTS], ModelError> {
            let v: Vec<f32> = s
                .split_whitespace()
                .map(|x| x.parse::<i32>().map(|n| n as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(|_| bad(line, "expected whole numbers"))?;
            v.try_into()
                .map_err(|_| bad(line, "expected 14 numbers (deal update and 13 themes)"))
        };
        let one = |line: usize, s: &str| -> Result<f32, ModelError> {
            s.trim()
                .parse::<i32>()
                .map(|n| n as f32 / SCALE)
                .map_err(|_| bad(line, "expected a whole number"))
        };
        for (line, l) in lines {
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if l.starts_with("param ") || l.starts_with("input ") {
                header.push(l.to_string());
            } else if let Some(rest) = l.strip_prefix("bias ") {
                bias = Some(numbers(line, rest, SCALE)?);
            } else if let Some(rest) = l.strip_prefix("bare_threshold ") {
                bare = Some(one(line, rest)?);
            } else if let Some(rest) = l.strip_prefix("veto_threshold ") {
                veto = Some(one(line, rest)?);
            } else if let Some(rest) = l.strip_prefix("threshold ") {
                thresholds = Some(numbers(line, rest, SCALE)?);
            } else if let Some((name, rest)) = l.split_once('\t') {
                names.push(name.to_string());
                weights.extend(numbers(line, rest, SCALE)?);
            } else {
                return Err(bad(line, "expected `feature<TAB>14 numbers`"));
            }
        }
        let bias = bias.ok_or_else(|| bad(0, "missing `bias` line"))?;
        let thresholds = thresholds.ok_or_else(|| bad(0, "missing `threshold` line"))?;
        let bare = bare.ok_or_else(|| bad(0, "missing `bare_threshold` line"))?;
        let veto = veto.ok_or_else(|| bad(0, "missing `veto_threshold` line"))?;
        Ok(Model::new(
            header, names, weights, bias, thresholds, bare, veto,
        ))
    }

    pub fn to_text(&self) -> String {
        let q = |v: &[f32]| {
            v.iter()
                .map(|w| ((w * SCALE).round() as i32).to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut out = String::with_capacity(self.names.len() * 48);
        out.push_str(MAGIC);
        out.push_str("\n# Written by `cusp train`; do not edit (docs/engine.md, \"The model\").\n");
        for h in &self.header {
            out.push_str(h);
            out.push('\n');
        }
        out.push_str("threshold ");
        out.push_str(&q(&self.thresholds));
        out.push_str("\nbare_threshold ");
        out.push_str(&q(&[self.bare_threshold]));
        out.push_str("\nveto_threshold ");
        out.push_str(&q(&[self.veto_threshold]));
        out.push_str("\nbias ");
        out.push_str(&q(&self.bias));
        out.push('\n');
        for (i, n) in self.names.iter().enumerate() {
            out.push_str(n);
            out.push('\t');
            out.push_str(&q(&self.weights[i * OUTPUTS..(i + 1) * OUTPUTS]));
            out.push('\n');
        }
        out
    }

    /// The raw scores (log-odds) of every output.
    fn score<'m>(&'m self, sig: &Signals) -> Scorer<'m> {
        let mut s = Scorer {
            model: self,
            z: self.bias,
            features: Vec::with_capacity(96),
            present: Vec::new(),
        };
        extract(sig, &mut s);
        // As in training: a repeated feature counts up to `MAX_REPEAT` times, at its first
        // place.
        s.features
            .sort_unstable_by_key(|(row, _, span)| (*row, span.map_or(0, |p| p.0)));
        s.features.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1 = (first.1 + later.1).min(MAX_REPEAT);
            }
            same
        });
        for (row, value, span) in &s.features {
            let w = &self.weights[*row as usize * OUTPUTS..(*row as usize + 1) * OUTPUTS];
            for (z, w) in s.z.iter_mut().zip(w) {
                *z += value * w;
            }
            if let Some(span) = span {
                s.present.push((*row, *value, *span));
            }
        }
        s
    }

    /// The model's reading: deal update and themes, with lexicon rules around it.
    pub fn decide(&self, sig: &Signals, text: &str) -> Analysis {
        let s = self.score(sig);
        // Nothing to read (empty, only markup or emoji): the lexicon's reading stands.
        if s.present.is_empty() {
            return super::classify::decide(sig, text);
        }
        let prob = |k: usize| 1.0 / (1.0 + (-s.z[k]).exp());
        let is_deal_update = prob(0) >= self.thresholds[0];
        let mut themes = Vec::new();
        let mut weights = Vec::new();
        for (k, theme) in Theme::ALL.into_iter().enumerate() {
            let k = k + 1;
            let sum = sig.sum(theme);
            // Without a lexicon cue the words alone must be surer; a theme the lexicon fires
            // on is only dropped when the model is quite sure it is not there.
            let needed = if sum >= FIRE {
                self.thresholds[k].min(self.veto_threshold)
            } else if sum > 0.0 {
                self.thresholds[k]
            } else {
                self.thresholds[k].max(self.bare_threshold)
            };
            if prob(k) < needed {
                continue;
            }
            // Clear negation wins: every cue of this seller theme was negated.
            if theme.is_seller_centric() && sum == 0.0 && sig.negated_sum(theme) > 0.0 {
                continue;
            }
            let evidence = if sum > 0.0 {
                sig.evidence(text, theme)
            } else if theme.is_seller_centric() && sig.refused {
                // A refusal the lexicon read ("off the table", "said no") is not the lever.
                continue;
            } else {
                self.word_evidence(&s, sig, text, k)
            };
            // A theme is only shown with words that support it.
            if evidence.is_empty() {
                continue;
            }
            themes.push(ThemeHit { theme, evidence });
            weights.push((theme, sum));
        }
        finish(sig, themes, &weights, is_deal_update)
    }

    /// The n-grams present that add most to output `k`, as evidence spans.
    fn word_evidence(&self, s: &Scorer<'_>, sig: &Signals, text: &str, k: usize) -> Vec<Evidence> {
        let mut best: Vec<(f32, (usize, usize))> = s
            .present
            .iter()
            .map(|(row, v, span)| (v * self.weights[*row as usize * OUTPUTS + k], *span))
            .filter(|(c, (s, e))| *c > 0.05 && !is_function_word(&sig.p.norm[*s..*e]))
            .collect();
        // The words themselves must carry the theme, not the bias and a few stray words.
        if best.iter().map(|(c, _)| c).sum::<f32>() < BARE_SUPPORT {
            return Vec::new();
        }
        best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (_, span) in best {
            // One span per place: a bigram and its words are the same evidence.
            if spans.iter().any(|o| o.0 < span.1 && span.0 < o.1) {
                continue;
            }
            spans.push(span);
            if spans.len() == MODEL_EVIDENCE {
                break;
            }
        }
        spans.sort_unstable();
        spans
            .into_iter()
            .map(|(ns, ne)| {
                let (start, end) = sig.p.original_span(ns, ne);
                Evidence {
                    text: text[start..end].to_string(),
                    start,
                    end,
                }
            })
            .collect()
    }
}
