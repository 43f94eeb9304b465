//! The question bank (data in `questions.txt`) and question selection.
//!
//! Selection is deterministic: variety comes from a small hash of `ctx.seed` and the
//! question id, never from a clock or a random source. Questions are filled with what the
//! message names (`slots.rs`) and fitted to the situation it describes (`situation.rs`);
//! every question carries the reason it was asked.

use std::cell::OnceCell;
use std::collections::HashSet;

use serde::Serialize;

use super::situation::{Situation, situation, situation_of};
use super::slots::{CRM_LABELS, Filled, SlotKind, Slots, clean, extract_from, words};
use super::{Analysis, Class, LexiconError, Pillar, Question, QuestionContext, Stage, Theme};

/// How many of the person's latest questions must not come back while another fits.
const RECENT_WINDOW: usize = 10;
/// How many of the next gaps compete for each pick, and what being one further down costs.
const TARGET_WINDOW: usize = 3;
const RANK_COST: u64 = 30_000;
/// BRIEF.md: short questions.
pub(crate) const MAX_WORDS: usize = 25;

/// Why a question was asked: the gap it aims at, the seller signal it turns around, the
/// situation read from the message, and the message's words it uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct QuestionReason {
    /// The customer-centric theme the question explores (`None` for a fallback question).
    pub gap: Option<Theme>,
    /// The seller-centric signal it answers, when it was asked because of one.
    pub signal: Option<Theme>,
    pub situation: Situation,
    /// The slots filled from the message, in the order they appear in the question.
    pub used: Vec<SlotUse>,
}

/// One slot of a question filled from the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotUse {
    pub slot: SlotKind,
    /// As written in the question ("head of security", "the 30% drop in usage").
    pub text: String,
    /// The message's own words it was made from ("Head of Security"; "usage", "30%").
    pub words: Vec<String>,
}

impl QuestionReason {
    /// True when the question names something the message said beyond the account: a
    /// filled slot other than the account, one of whose words is in the question.
    pub fn is_specific(&self, question: &str) -> bool {
        let q = question.to_lowercase();
        self.used.iter().any(|u| {
            u.slot != SlotKind::Account
                && u.words
                    .iter()
                    .any(|w| w.len() >= 2 && q.contains(&w.to_lowercase()))
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BankQuestion {
    pub id: String,
    pub pillar: Pillar,
    pub answers: Vec<Theme>,
    pub stages: Vec<Stage>,
    pub situations: Vec<Situation>,
    /// Situations listed by name, not through a group (`open`, `any`): asked there first.
    pub named: Vec<Situation>,
    /// Slots other than the account the text names.
    pub slots: Vec<SlotKind>,
    pub text: String,
    /// `text` cut into literal parts and placeholders once, at load (`pieces`).
    parts: Vec<Part>,
    /// FNV-1a of `id`, the per-question half of the tiebreak (`mix`).
    id_hash: u64,
}

/// A piece of a question text: literal words, the account, or another slot (`None`: a
/// name that is no slot), each placeholder with its fallback.
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Account(Option<String>),
    Slot(Option<SlotKind>, Option<String>),
}

fn parts(text: &str) -> Vec<Part> {
    pieces(text)
        .into_iter()
        .map(|p| match p {
            Ok(lit) => Part::Text(lit.to_string()),
            Err(ph) if ph.name == "account" => Part::Account(ph.fallback.map(str::to_string)),
            Err(ph) => Part::Slot(SlotKind::parse(ph.name), ph.fallback.map(str::to_string)),
        })
        .collect()
}

/// A placeholder of a question text: `{name}` or `{name|fallback}`.
struct Placeholder<'a> {
    name: &'a str,
    fallback: Option<&'a str>,
}

/// Splits a question text into literal parts and placeholders.
fn pieces(text: &str) -> Vec<Result<&str, Placeholder<'_>>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(Ok(&rest[..open]));
        let inner = &after[..close];
        let (name, fallback) = match inner.split_once('|') {
            Some((n, f)) => (n.trim(), Some(f)),
            None => (inner.trim(), None),
        };
        out.push(Err(Placeholder { name, fallback }));
        rest = &after[close + 1..];
    }
    out.push(Ok(rest));
    out
}

/// Words that make an "account" a heading or a field of a pasted card, not a name.
const HEADING_WORDS: &[&str] = &[
    "commit",
    "forecast",
    "pipeline",
    "update",
    "updated",
    "opportunity",
    "opp",
    "win",
    "won",
    "loss",
    "lost",
    "deal",
    "stage",
    "renewal",
    "upside",
    "best",
    "case",
    "notes",
    "recap",
    "summary",
    "weekly",
    "monday",
    "friday",
];
/// Single words that are an industry, not a company ("Health", "Mfg").
const GENERIC_NAMES: &[&str] = &[
    "health",
    "healthcare",
    "retail",
    "mfg",
    "manufacturing",
    "city",
    "gov",
    "government",
    "bank",
    "energy",
    "labs",
    "group",
    "systems",
    "logistics",
    "st",
    "co",
    "inc",
    "corp",
    "university",
    "school",
    "county",
    "hospital",
    "clinic",
    "insurance",
    "capital",
];

/// An account name fit to print, or `None`: not a CRM field label or a forecast heading,
/// no trailing punctuation, the part before a dash ("Acme – Expansion" → "Acme"), and a
/// name written all in lower case gets capitals ("union quay" → "Union Quay").
fn printable_account(account: Option<&str>) -> Option<String> {
    let a = account?;
    let a = a
        .split(['\u{2013}', '\u{2014}', '|', '\u{25b8}', '>'])
        .next()
        .unwrap_or(a);
    let a = a.split(" - ").next().unwrap_or(a);
    let a = a
        .trim()
        .trim_end_matches([':', ',', '.', ';', '!', '?', '-'])
        .trim();
    let words: Vec<String> = a.split_whitespace().map(str::to_lowercase).collect();
    let bad = words.is_empty()
        || words
            .iter()
            .any(|w| CRM_LABELS.contains(&w.as_str()) || HEADING_WORDS.contains(&w.as_str()))
        || (words.len() == 1 && GENERIC_NAMES.contains(&words[0].as_str()))
        || a.chars().count() < 3
        || a.chars()
            .any(|c| matches!(c, '<' | '>' | '*' | '`' | '|' | ':' | '@' | '#'));
    if bad {
        return None;
    }
    if a.chars().any(char::is_uppercase) {
        return Some(a.to_string());
    }
    Some(
        a.split_whitespace()
            .map(|w| {
                let mut cs = w.chars();
                cs.next()
                    .map(|c| c.to_uppercase().chain(cs).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

impl BankQuestion {
    /// Fills the placeholders with the account and the message's slots (fallbacks where
    /// the message names nothing). `None` when the filled text breaks the word limit.
    fn fill(&self, account: Option<&str>, slots: Option<&Slots>) -> Option<(String, Vec<SlotUse>)> {
        self.fill_printed(printable_account(account).as_deref(), slots)
    }

    /// `fill` with the account already made printable (`printable_account`).
    fn fill_printed(
        &self,
        account: Option<&str>,
        slots: Option<&Slots>,
    ) -> Option<(String, Vec<SlotUse>)> {
        let mut out = String::with_capacity(self.text.len() + 32);
        let mut used = Vec::new();
        for p in &self.parts {
            match p {
                Part::Text(lit) => out.push_str(lit),
                Part::Account(fallback) => match account {
                    Some(a) => {
                        out.push_str(a);
                        used.push(SlotUse {
                            slot: SlotKind::Account,
                            text: a.to_string(),
                            words: vec![a.to_string()],
                        });
                    }
                    None => out.push_str(fallback.as_deref().unwrap_or("the customer")),
                },
                Part::Slot(kind, fallback) => {
                    let filled: Option<&Filled> = kind
                        .zip(slots)
                        .and_then(|(k, s)| s.get(k).map(|f| (k, f)))
                        .map(|(k, f)| {
                            used.push(SlotUse {
                                slot: k,
                                text: f.text.clone(),
                                words: f.words.clone(),
                            });
                            f
                        });
                    match filled {
                        Some(f) => out.push_str(&f.text),
                        None => out.push_str(fallback.as_deref().unwrap_or("")),
                    }
                }
            }
        }
        // "the customer's team" reads fine; a name ending in s gets a bare apostrophe.
        if out.contains("s's ") {
            out = out.replace("s's ", "s' ");
        }
        if let Some(first) = out.chars().next()
            && first.is_lowercase()
        {
            out = first.to_uppercase().chain(out.chars().skip(1)).collect();
        }
        (out.split_whitespace().count() <= MAX_WORDS).then_some((out, used))
    }

    /// The question with the account filled and generic wording for every other slot.
    pub fn render(&self, account: Option<&str>) -> Question {
        let text = self
            .fill(account, None)
            .or_else(|| self.fill(None, None))
            .map(|(t, _)| t)
            .unwrap_or_else(|| self.text.clone());
        Question {
            id: self.id.clone(),
            pillar: self.pillar,
            text,
            reason: QuestionReason::default(),
        }
    }

    fn fits(&self, s: Situation) -> bool {
        self.situations.contains(&s)
    }

    /// The slots `fill_printed` would use, in order, without building the text: ranking
    /// needs only these, so only the questions that may be picked are filled.
    fn slots_used(&self, account: Option<&str>, slots: &Slots) -> Vec<SlotKind> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(_) => None,
                Part::Account(_) => account.map(|_| SlotKind::Account),
                Part::Slot(kind, _) => kind.filter(|&k| slots.get(k).is_some()),
            })
            .collect()
    }
}

/// A question's filled text and the slots it used.
type Filling = (String, Vec<SlotUse>);

/// The bank filled for one message, each question at most once and only when asked for:
/// a filled text depends on the question, the account and the slots, never on the picks.
struct Fills<'b> {
    bank: &'b [BankQuestion],
    account: Option<String>,
    slots: Slots,
    used: Vec<OnceCell<Option<Vec<SlotKind>>>>,
    filled: Vec<OnceCell<Option<Filling>>>,
}

impl<'b> Fills<'b> {
    fn new(bank: &'b [BankQuestion], account: Option<&str>, slots: Slots) -> Self {
        Fills {
            bank,
            account: printable_account(account),
            slots,
            used: bank.iter().map(|_| OnceCell::new()).collect(),
            filled: bank.iter().map(|_| OnceCell::new()).collect(),
        }
    }

    /// The slots question `i` would use, or `None` when it names slots and the message
    /// fills none of them: it would only repeat a generic question in other words.
    fn used(&self, i: usize) -> Option<&[SlotKind]> {
        self.used[i]
            .get_or_init(|| {
                let q = &self.bank[i];
                let used = q.slots_used(self.account.as_deref(), &self.slots);
                let filled = used.iter().any(|&k| k != SlotKind::Account);
                (q.slots.is_empty() || filled).then_some(used)
            })
            .as_deref()
    }

    /// Question `i` filled, or `None` when it does not fit (see `used`, and the word limit).
    fn filled(&self, i: usize) -> Option<&Filling> {
        self.filled[i]
            .get_or_init(|| {
                self.used(i)?;
                self.bank[i].fill_printed(self.account.as_deref(), Some(&self.slots))
            })
            .as_ref()
    }
}

fn parse_situations(field: &str) -> Result<(Vec<Situation>, Vec<Situation>), String> {
    let mut all = Vec::new();
    let mut named = Vec::new();
    for tok in field.split(',').map(str::trim) {
        match tok {
            "any" => all.extend(Situation::ALL),
            "open" => all.extend(Situation::ALL.into_iter().filter(|s| s.is_open())),
            other => {
                let s = Situation::parse(other)
                    .ok_or_else(|| format!("unknown situation `{other}`"))?;
                all.push(s);
                named.push(s);
            }
        }
    }
    all.sort_by_key(|s| *s as u8);
    all.dedup();
    Ok((all, named))
}

pub(crate) fn parse_bank(src: &str) -> Result<Vec<BankQuestion>, LexiconError> {
    let mut bank = Vec::new();
    for (idx, raw) in src.lines().enumerate() {
        let line = idx + 1;
        let err = |reason: String| LexiconError::Invalid { line, reason };
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.splitn(6, '|').map(str::trim).collect();
        let [id, pillar, answers, stages, situations, text] = f[..] else {
            return Err(err(
                "expected 6 fields: id | pillar | themes | stages | situations | text".into(),
            ));
        };
        let pillar = match pillar {
            "care" => Pillar::Care,
            "understand" => Pillar::Understand,
            "serve" => Pillar::Serve,
            "purpose" => Pillar::Purpose,
            other => return Err(err(format!("unknown pillar `{other}`"))),
        };
        let answers = answers
            .split(',')
            .map(|t| Theme::from_id(t.trim()).ok_or_else(|| err(format!("unknown theme `{t}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        let stages = if stages == "-" {
            Vec::new()
        } else {
            stages
                .split(',')
                .map(|s| Stage::parse(s.trim()).ok_or_else(|| err(format!("unknown stage `{s}`"))))
                .collect::<Result<Vec<_>, _>>()?
        };
        let (situations, named) = parse_situations(situations).map_err(err)?;
        let mut slots = Vec::new();
        for p in pieces(text) {
            if let Err(ph) = p {
                if ph.name == "account" {
                    continue;
                }
                let kind = SlotKind::parse(ph.name)
                    .ok_or_else(|| err(format!("unknown slot `{{{}}}`", ph.name)))?;
                if ph.fallback.is_none_or(|f| f.trim().is_empty()) {
                    return Err(err(format!(
                        "slot `{{{}}}` needs a fallback: `{{{}|…}}`",
                        ph.name, ph.name
                    )));
                }
                slots.push(kind);
            }
        }
        bank.push(BankQuestion {
            id: id.to_string(),
            pillar,
            answers,
            stages,
            situations,
            named,
            slots,
            text: text.to_string(),
            parts: parts(text),
            id_hash: fnv1a(id),
        });
    }
    Ok(bank)
}

/// The customer-centric counterpart a seller signal should be turned towards.
fn counterpart(t: Theme) -> Theme {
    match t {
        Theme::ClosingPush => Theme::DecisionConfidence,
        Theme::DiscountLever => Theme::Enablement,
        Theme::ProductPitch | Theme::QuotaPressure => Theme::CustomerOutcome,
        other => other,
    }
}

const DEFAULT_ORDER: [Theme; 9] = [
    Theme::CustomerOutcome,
    Theme::Stakeholders,
    Theme::CustomerConcern,
    Theme::DecisionProcess,
    Theme::DecisionConfidence,
    Theme::CustomerRisk,
    Theme::Enablement,
    Theme::Adoption,
    Theme::SharedSuccess,
];

/// What to ask about, most important first. Seller themes stand for "ask about the
/// counterpart of this signal" (questions are tagged with them). After a decision (won,
/// lost) and for existing customers the situation's own themes come first: a seller signal
/// in "lost it on price" is not what is worth asking about.
fn targets(a: &Analysis, stage: Option<Stage>, situation: Option<Situation>) -> Vec<Theme> {
    let mut seller: Vec<(usize, Theme)> = a
        .themes
        .iter()
        .filter(|h| h.theme.is_seller_centric())
        .map(|h| (h.evidence.len(), h.theme))
        .collect();
    // Strongest first; ties keep the taxonomy order (stable sort).
    seller.sort_by_key(|x| std::cmp::Reverse(x.0));
    let mut out: Vec<Theme> = Vec::new();
    let push = |t: Theme, out: &mut Vec<Theme>| {
        if !out.contains(&t) && (t.is_seller_centric() || !a.has(t)) {
            out.push(t);
        }
    };
    let settled = situation.is_some_and(|s| !s.is_open());
    if settled {
        for &t in situation.map_or(&[][..], |s| s.expected_themes()) {
            push(t, &mut out);
        }
    }
    if let Some(&(_, t)) = seller.first() {
        push(t, &mut out);
    }
    if let Some(s) = stage {
        for &t in s.expected_themes() {
            push(t, &mut out);
        }
    }
    if !settled {
        for &t in situation.map_or(&[][..], |s| s.expected_themes()) {
            push(t, &mut out);
        }
    }
    if a.lacks_outcome_and_people() {
        push(Theme::CustomerOutcome, &mut out);
        push(Theme::Stakeholders, &mut out);
    }
    for &(_, t) in seller.iter().skip(1) {
        push(t, &mut out);
    }
    for t in DEFAULT_ORDER {
        push(t, &mut out);
    }
    out
}

pub(crate) fn gaps(a: &Analysis, stage: Option<Stage>) -> Vec<Theme> {
    let mut out = Vec::new();
    for t in targets(a, stage, None) {
        let c = counterpart(t);
        if !a.has(c) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn fnv1a(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64 of the seed mixed with an FNV-1a hash of the id: a stable, well-spread tiebreak.
fn mix(seed: u64, q: &BankQuestion) -> u64 {
    let mut z = seed ^ q.id_hash;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The situation questions are fitted to: a closed CRM stage is authoritative; otherwise
/// the message's words, and the stage when the words say nothing particular.
pub(crate) fn effective_situation(a: &Analysis, ctx: &QuestionContext<'_>) -> Situation {
    effective_situation_with(a, ctx, || situation(ctx.text, a))
}

/// `effective_situation`, reading the message's own situation with `read` (only when
/// needed): question selection passes the words it has already read.
fn effective_situation_with(
    a: &Analysis,
    ctx: &QuestionContext<'_>,
    read: impl FnOnce() -> Situation,
) -> Situation {
    match ctx.stage {
        Some(s @ (Stage::ClosedWon | Stage::ClosedLost)) => Situation::from_stage(s),
        stage => {
            let read = if ctx.text.trim().is_empty() {
                Situation::Active
            } else {
                read()
            };
            // The classifier's own reading of where the deal stands fills in when the
            // question patterns found nothing more specific.
            let read = match (read, a.deal_state) {
                (Situation::Active, Some(state)) => Situation::from(state),
                (read, _) => read,
            };
            match (read, stage) {
                (Situation::Active, Some(s)) => Situation::from_stage(s),
                (read, _) => read,
            }
        }
    }
}

/// A bank question filled for this message.
struct Candidate<'b> {
    q: &'b BankQuestion,
    text: String,
    used: Vec<SlotUse>,
    target: Theme,
}

impl Candidate<'_> {
    fn specific(&self) -> bool {
        self.used.iter().any(|u| u.slot != SlotKind::Account)
    }
}

pub(crate) fn choose(
    bank: &[BankQuestion],
    common: &HashSet<String>,
    a: &Analysis,
    ctx: &QuestionContext<'_>,
) -> Vec<Question> {
    let want = match a.class {
        Class::SellerCentric if a.themes.len() >= 2 => 3,
        Class::CustomerCentric => 1,
        _ => 2,
    };
    // The message is cleaned and split into words once, for its situation and its slots.
    let cleaned = clean(ctx.text);
    let toks = words(&cleaned);
    let sit = effective_situation_with(a, ctx, || situation_of(ctx.text, &cleaned, &toks, a));
    let fills = Fills::new(
        bank,
        a.account.as_deref(),
        extract_from(&toks, a.account.as_deref(), common),
    );
    let recent = &ctx.recent[..ctx.recent.len().min(RECENT_WINDOW)];
    // The questions that answer each theme, fit the situation and were not asked recently,
    // in bank order: each pick then looks at a few dozen questions, not the whole bank.
    let mut answering: [Vec<usize>; Theme::ALL.len()] = Default::default();
    for (i, q) in bank.iter().enumerate() {
        if !q.fits(sit) || recent.contains(&q.id) {
            continue;
        }
        for (k, t) in Theme::ALL.iter().enumerate() {
            if q.answers.contains(t) {
                answering[k].push(i);
            }
        }
    }
    let cost =
        |q: &BankQuestion, target: Theme, used: &[SlotKind], picked: &[Candidate<'_>]| -> u64 {
            let mut c: u64 = 200;
            if ctx.unhelpful.contains(&q.id) {
                c += 1_000;
            }
            match ctx.stage {
                Some(s) if q.stages.contains(&s) => {}
                Some(_) if !q.stages.is_empty() => c += 300,
                Some(_) => c += 100,
                None => {}
            }
            if q.answers.first() != Some(&target) {
                c += 50;
            }
            // A second question should open another pillar of their world when it can.
            if picked.iter().any(|p| p.q.pillar == q.pillar) {
                c += 20;
            }
            // What the message names makes a question specific to it; naming the same thing
            // twice in one nudge does not.
            let named = used.iter().filter(|&&k| k != SlotKind::Account).count();
            if used.iter().any(|&k| {
                k != SlotKind::Account && picked.iter().any(|p| p.used.iter().any(|v| v.slot == k))
            }) {
                c += 70;
            }
            // What they worry about, what changed, who they compare us with: their own words
            // weigh a little more than a role or a date.
            let own_words = used.iter().any(|k| {
                matches!(
                    k,
                    SlotKind::Concern | SlotKind::Worry | SlotKind::Trend | SlotKind::Competitor
                )
            });
            c -= 60 * (named.min(1) as u64)
                + 10 * (named.saturating_sub(1).min(2) as u64)
                + if own_words { 40 } else { 0 };
            // Questions written for this situation come before general ones that fit it.
            if sit != Situation::Active && q.named.contains(&sit) {
                c -= 30;
            }
            c * 1_000 + mix(ctx.seed, q) % 1_000
        };
    // The questions that may answer `target`, with their cost, in bank order; ranked on
    // the slots they would use, before any text is built. `fills.filled` still decides
    // whether one fits the word limit.
    let candidates = |target: Theme, picked: &[Candidate<'_>]| -> Vec<(u64, usize)> {
        let k = Theme::ALL.iter().position(|t| *t == target).unwrap_or(0);
        answering[k]
            .iter()
            .map(|&i| (i, &bank[i]))
            .filter(|(_, q)| !picked.iter().any(|p| p.q.id == q.id))
            .filter_map(|(i, q)| Some((cost(q, target, fills.used(i)?, picked), i)))
            .collect()
    };
    // The first of the cheapest that fills: the same pick as filling every candidate and
    // taking the first one of least cost.
    let cheapest_filled = |mut ranked: Vec<(u64, usize, Theme)>| {
        // A stable sort keeps the bank order among equal costs.
        ranked.sort_by_key(|&(cost, _, _)| cost);
        ranked
            .into_iter()
            .find_map(|(_, i, t)| fills.filled(i).map(|f| (i, f, t)))
    };
    let mut picked: Vec<Candidate<'_>> = Vec::new();
    // A seller signal's question already explores its counterpart: do not ask about the
    // same customer theme twice.
    let mut covered: Vec<Theme> = Vec::new();
    let all_targets = targets(a, ctx.stage, Some(sit));
    let mut open: Vec<Theme> = all_targets.clone();
    while picked.len() < want {
        open.retain(|t| !covered.contains(t) && !picked.iter().any(|p| p.target == *t));
        // The best question for one of the next few gaps; a later gap costs a little more,
        // so a question about what the message said can win over a generic one.
        let mut ranked: Vec<(u64, usize, Theme)> = Vec::new();
        let mut empty: Vec<Theme> = Vec::new();
        for (rank, &target) in open.iter().take(TARGET_WINDOW).enumerate() {
            let found = candidates(target, &picked);
            if !found.iter().any(|&(_, i)| fills.filled(i).is_some()) {
                empty.push(target);
            }
            ranked.extend(
                found
                    .into_iter()
                    .map(|(cost, i)| (cost + rank as u64 * RANK_COST, i, target)),
            );
        }
        open.retain(|t| !empty.contains(t));
        let Some((i, (text, used), target)) = cheapest_filled(ranked) else {
            if open.is_empty() {
                break;
            }
            continue;
        };
        if target.is_seller_centric() {
            covered.push(counterpart(target));
        }
        picked.push(Candidate {
            q: &bank[i],
            text: text.clone(),
            used: used.clone(),
            target,
        });
    }
    // Ask about something the message said when any fitting question can: if none of the
    // picks names it, the last pick gives way to the best specific question for one of
    // the first gaps.
    if !picked.iter().any(Candidate::specific) {
        let keep = picked.len().saturating_sub(1);
        let kept: Vec<&str> = picked[..keep].iter().map(|p| p.q.id.as_str()).collect();
        let ranked: Vec<(u64, usize, Theme)> = all_targets
            .iter()
            .take(5)
            .filter(|t| !picked[..keep].iter().any(|p| p.target == **t))
            .flat_map(|&t| {
                candidates(t, &picked[..keep])
                    .into_iter()
                    .filter(|&(_, i)| {
                        fills
                            .used(i)
                            .is_some_and(|u| u.iter().any(|&k| k != SlotKind::Account))
                    })
                    .filter(|&(_, i)| !kept.contains(&bank[i].id.as_str()))
                    .map(move |(cost, i)| (cost, i, t))
            })
            .collect();
        if let Some((i, (text, used), target)) = cheapest_filled(ranked) {
            picked.truncate(keep);
            picked.push(Candidate {
                q: &bank[i],
                text: text.clone(),
                used: used.clone(),
                target,
            });
        }
    }
    if picked.is_empty() {
        // Everything that fits was asked recently: repeat the one asked longest ago.
        let oldest = bank
            .iter()
            .enumerate()
            .filter(|(_, q)| q.fits(sit))
            .filter_map(|(i, q)| fills.filled(i).map(|f| (q, f)))
            .max_by_key(|(q, _)| {
                let age = recent
                    .iter()
                    .position(|r| *r == q.id)
                    .unwrap_or(RECENT_WINDOW);
                (age, u64::MAX - mix(ctx.seed, q))
            });
        if let Some((q, (text, used))) = oldest {
            return vec![Question {
                id: q.id.clone(),
                pillar: q.pillar,
                text: text.clone(),
                reason: QuestionReason {
                    gap: None,
                    signal: None,
                    situation: sit,
                    used: used.clone(),
                },
            }];
        }
    }
    picked
        .into_iter()
        .map(|c| {
            let (gap, signal) = if c.target.is_seller_centric() {
                (Some(counterpart(c.target)), Some(c.target))
            } else {
                (Some(c.target), None)
            };
            Question {
                id: c.q.id.clone(),
                pillar: c.q.pillar,
                text: c.text,
                reason: QuestionReason {
                    gap,
                    signal,
                    situation: sit,
                    used: c.used,
                },
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::{BUILTIN_QUESTIONS, Engine};

    fn ask(text: &str) -> Vec<Question> {
        let e = Engine::builtin();
        let a = e.analyze(text);
        e.choose_questions(
            &a,
            &QuestionContext {
                text,
                seed: 11,
                ..QuestionContext::default()
            },
        )
    }

    #[test]
    fn the_role_and_the_step_named_fill_the_question() {
        let qs = ask(
            "Globex: their Head of Security wants the SOC 2 report before the pilot, need them to sign by Friday",
        );
        assert!(
            qs.iter().any(|q| q.reason.is_specific(&q.text)),
            "nothing specific: {qs:#?}"
        );
        let texts: Vec<&str> = qs.iter().map(|q| q.text.as_str()).collect();
        assert!(
            texts.iter().any(|t| t.contains("head of security")
                || t.contains("pilot")
                || t.contains("Friday")),
            "{texts:?}"
        );
        for q in &qs {
            assert_eq!(q.reason.situation, Situation::Active);
            assert!(q.reason.gap.is_some());
            for u in &q.reason.used {
                assert!(q.text.contains(&u.text), "{u:?} not in {}", q.text);
            }
        }
    }

    #[test]
    fn an_at_risk_renewal_a_lost_and_a_won_deal_get_questions_that_fit() {
        let risk = ask(
            "Hooli renewal: champion left last month, new VP hasn't seen the value yet, usage down 30%",
        );
        let lost = ask("Globex closed lost, they went with Salesforce on price");
        let won = ask("Initech signed the order form today :tada:");
        for (qs, sit) in [
            (&risk, Situation::AtRisk),
            (&lost, Situation::Lost),
            (&won, Situation::Won),
        ] {
            assert!(!qs.is_empty());
            for q in qs {
                assert_eq!(q.reason.situation, sit, "{q:?}");
                let t = q.text.to_lowercase();
                assert!(
                    !t.contains("if this works")
                        && !t.contains("six months")
                        && !t.contains("to decide"),
                    "{sit:?}: {}",
                    q.text
                );
            }
        }
        assert!(
            lost.iter().any(|q| q.text.contains("Salesforce")),
            "a lost deal asks about the winner: {lost:?}"
        );
        let bank = parse_bank(BUILTIN_QUESTIONS).unwrap();
        for q in &won {
            let b = bank.iter().find(|b| b.id == q.id).unwrap();
            assert!(b.situations.contains(&Situation::Won), "{}", q.id);
        }
    }

    #[test]
    fn no_markup_labels_or_emoji_reach_a_question() {
        for text in [
            "Opp: Acme Corp\nStage: Proposal\nOwner: <@U123>\nNext step: security review :fire: by 12/20",
            "*Globex* :rotating_light: their _CFO_ is worried about `migration` and <https://x.y|the rollout plan> 🔥",
            "Commit – Dec / Salesforce ▸ Opportunity updated / Amount: $0",
        ] {
            for q in ask(text) {
                let banned = ['<', '>', '*', '_', '`', '{', '}', '|', '~'];
                assert!(!q.text.chars().any(|c| banned.contains(&c)), "{}", q.text);
                assert!(!q.text.chars().any(|c| (c as u32) >= 0x2190), "{}", q.text);
                for bad in ["Opp", "Owner", "Stage", "Commit", "$0"] {
                    assert!(!q.text.contains(bad), "{bad} in {}", q.text);
                }
                assert!(q.text.split_whitespace().count() <= MAX_WORDS);
                assert!(q.text.ends_with('?'));
            }
        }
    }

    #[test]
    fn the_bank_checks_slots_and_situations() {
        let ok = "q_x | care | customer_concern | - | open | What would ease their worry about {concern|this}?";
        assert_eq!(parse_bank(ok).unwrap()[0].slots, vec![SlotKind::Concern]);
        for (bad, why) in [
            (
                "q_x | care | customer_concern | - | open | What about {concern}?",
                "fallback",
            ),
            (
                "q_x | care | customer_concern | - | open | What about {colour|x}?",
                "unknown slot",
            ),
            (
                "q_x | care | customer_concern | - | sunny | What?",
                "unknown situation",
            ),
            ("q_x | care | customer_concern | - | What?", "6 fields"),
        ] {
            let e = parse_bank(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let bank = parse_bank(BUILTIN_QUESTIONS).unwrap();
        for s in Situation::ALL {
            assert!(
                bank.iter().filter(|q| q.fits(s)).count() >= 8,
                "too few for {s:?}"
            );
        }
        // Generic wording reads as a question too (the reflection modal shows it).
        for q in &bank {
            let r = q.render(None);
            assert!(!r.text.contains('{') && r.text.ends_with('?'), "{}", q.id);
        }
    }

    #[test]
    fn team_questions_name_nothing_of_one_deal() {
        let e = Engine::builtin();
        let team = e.team_questions();
        assert!(team.len() >= 12);
        let bank = parse_bank(BUILTIN_QUESTIONS).unwrap();
        for q in &team {
            let b = bank.iter().find(|b| b.id == q.id).unwrap();
            assert!(b.slots.is_empty() && !b.text.contains('{'), "{}", q.id);
        }
        assert!(
            !team.iter().any(|q| q.id == "q_people_17"),
            "only for a customer at risk"
        );
        // The questions of the week before slots and situations are all still there.
        for id in [
            "q_people_02",
            "q_concern_01",
            "q_concern_07",
            "q_adopt_01",
            "q_enable_01",
        ] {
            assert!(team.iter().any(|q| q.id == id), "{id}");
        }
    }

    #[test]
    fn a_printed_account_is_a_name() {
        assert_eq!(printable_account(Some("Opp")), None);
        assert_eq!(printable_account(Some("Commit – Dec")), None);
        assert_eq!(
            printable_account(Some("Mistral Wind – SCADA Analytics")).as_deref(),
            Some("Mistral Wind")
        );
        assert_eq!(
            printable_account(Some("union quay")).as_deref(),
            Some("Union Quay")
        );
        assert_eq!(printable_account(Some("Health")), None);
        assert_eq!(
            printable_account(Some("Globex:")).as_deref(),
            Some("Globex")
        );
    }
}
