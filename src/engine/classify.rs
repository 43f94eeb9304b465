//! From phrase matches to themes, class, score and the deal-update decision.

use super::lexicon::Kind;
use super::markup::{Prepared, prepare};
use super::matcher::{Hit, Layout};
use super::{Analysis, Class, DealState, Evidence, Inner, Theme, ThemeHit, account, deal_state};

/// A theme fires when its cues add up to this much (weak cues need support).
pub(crate) const FIRE: f32 = 1.0;
/// Words a negation may reach forward within its clause.
const NEGATION_REACH: u32 = 7;
/// Stakeholder cues at least this strong survive next to a push for signature.
const STRONG_STAKEHOLDER: f32 = 1.5;
/// Deal evidence needed to call a message a deal update.
const DEAL_THRESHOLD: f32 = 2.0;
const ACCOUNT_DEAL_WEIGHT: f32 = 1.5;

#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub theme: Theme,
    pub weight: f32,
    /// Normalised span (for clause lookups); `None` for emoji cues.
    pub norm: Option<(usize, usize)>,
    pub orig: (usize, usize),
}

/// What the lexicon found in one message: the input of both the rule decision and the
/// learned model (`model.rs`).
pub(crate) struct Signals {
    pub p: Prepared,
    /// Theme cues that count (after negation and the stakeholder rule).
    pub found: Vec<Found>,
    /// Seller cues cancelled by a negation ("not pushing them on price").
    pub negated: Vec<Found>,
    /// Customer cues inside a negation's reach ("they never mentioned their rollout").
    pub negated_customer: Vec<Found>,
    pub deal: f32,
    pub not_deal: f32,
    /// The account and its byte span in the original text.
    pub account: Option<(String, usize, usize)>,
    pub account_known: bool,
    /// An `ignore` phrase swallowed a seller cue ("a discount is off the table").
    pub refused: bool,
    /// DealState cues (`won`, `lost`, `at_risk`, `discovery` entries) not negated.
    pub situations: Vec<(DealState, f32)>,
}

impl Signals {
    /// Sum of the weights of the counting cues of `theme`.
    pub fn sum(&self, theme: Theme) -> f32 {
        self.found
            .iter()
            .filter(|f| f.theme == theme)
            .map(|f| f.weight)
            .sum()
    }

    pub fn negated_sum(&self, theme: Theme) -> f32 {
        self.negated
            .iter()
            .chain(&self.negated_customer)
            .filter(|f| f.theme == theme)
            .map(|f| f.weight)
            .sum()
    }

    /// The lexicon's own deal-update score (see `docs/engine.md`).
    pub fn deal_score(&self) -> f32 {
        let mut s = self.deal.min(3.0) - self.not_deal;
        if self.account.is_some() {
            s += ACCOUNT_DEAL_WEIGHT;
            if Theme::ALL.iter().any(|t| self.sum(*t) >= FIRE) {
                s += 0.5;
            }
        }
        s
    }

    /// Evidence spans of the lexicon cues of `theme`, sorted, deduplicated, at most 16.
    pub fn evidence(&self, text: &str, theme: Theme) -> Vec<Evidence> {
        let mut spans: Vec<(usize, usize)> = self
            .found
            .iter()
            .filter(|f| f.theme == theme)
            .map(|f| f.orig)
            .collect();
        spans.sort_unstable();
        spans.dedup();
        spans
            .into_iter()
            .take(16)
            .map(|(start, end)| Evidence {
                text: text[start..end].to_string(),
                start,
                end,
            })
            .collect()
    }
}

pub(super) fn analyze(inner: &Inner, text: &str) -> Analysis {
    let sig = signals(inner, text);
    match &inner.model {
        Some(model) => model.decide(&sig, text),
        None => decide(&sig, text),
    }
}

pub(crate) fn signals(inner: &Inner, text: &str) -> Signals {
    let p = prepare(text);
    let lex = &inner.lex;
    let (hits, refused) = inner.matcher.find(lex, text, &p);
    // Clause positions are only needed for negation and the stakeholder rule; most messages
    // need neither, so the layout is built on first use.
    let layout_cell: std::cell::OnceCell<Layout> = std::cell::OnceCell::new();
    let layout = || layout_cell.get_or_init(|| Layout::new(lex, &p, &hits));
    let negations: Vec<&Hit> = hits
        .iter()
        .filter(|h| matches!(lex.entries[h.entry].kind, Kind::Negation | Kind::Absent))
        .collect();

    let mut found: Vec<Found> = Vec::new();
    let mut negated_cues: Vec<Found> = Vec::new();
    let mut negated_customer: Vec<Found> = Vec::new();
    let mut deal = 0.0f32;
    let mut not_deal = 0.0f32;
    let mut known_account: Option<(String, usize, usize)> = None;
    let mut situations: Vec<(DealState, f32)> = Vec::new();
    // Negations are few; scanning back from each cue keeps this linear in practice. The
    // window index avoids quadratic work on pathological texts full of negations.
    let mut neg_idx = 0usize;
    for h in &hits {
        let entry = &lex.entries[h.entry];
        match entry.kind {
            Kind::Theme(theme) => {
                while neg_idx < negations.len() && negations[neg_idx].e <= h.s {
                    neg_idx += 1;
                }
                let governing = negations[..neg_idx]
                    .iter()
                    .rev()
                    .take(3)
                    .find(|n| layout().governs(n, h, NEGATION_REACH));
                let governed = governing.is_some();
                let absent = governing.is_some_and(|n| lex.entries[n.entry].kind == Kind::Absent);
                let f = Found {
                    theme,
                    weight: entry.weight,
                    norm: Some((h.s, h.e)),
                    orig: p.original_span(h.s, h.e),
                };
                // Only seller cues are cancelled by the rules: "not confident" is still about
                // confidence. Negated customer cues are kept and also told to the model,
                // which learns when a negation empties them ("never mentioned their rollout").
                if absent || (governed && theme.is_seller_centric()) {
                    negated_cues.push(f);
                } else {
                    if governed {
                        negated_customer.push(f.clone());
                    }
                    found.push(f);
                }
            }
            Kind::Deal => deal += entry.weight,
            Kind::NotDeal => not_deal += entry.weight,
            Kind::DealState(s) => {
                while neg_idx < negations.len() && negations[neg_idx].e <= h.s {
                    neg_idx += 1;
                }
                // "not signed yet" is not a win.
                let governed = negations[..neg_idx]
                    .iter()
                    .rev()
                    .take(3)
                    .any(|n| layout().governs(n, h, NEGATION_REACH));
                if !governed {
                    situations.push((s, entry.weight));
                }
            }
            Kind::Account if known_account.is_none() => {
                let (s, e) = p.original_span(h.s, h.e);
                known_account = Some((text[s..e].to_string(), s, e));
            }
            _ => {}
        }
    }
    emoji_cues(inner, &p, &mut found, &mut deal);
    let account_known = known_account.is_some();
    let account = known_account.or_else(|| account::detect(&p, text, &inner.common));
    // Words of the company's own name are not cues ("Pemberton Legal wants…"); a cue that
    // spans the whole name is still a cue ("pushing Lindqvist for signature").
    if let Some((_, s, e)) = &account {
        found.retain(|f| f.orig.1 <= *s || f.orig.0 >= *e || (f.orig.0 < *s && f.orig.1 > *e));
    }
    super::trend::apply(&p, text, &mut found);
    let has = |t: Theme| found.iter().any(|f| f.theme == t);
    if has(Theme::Stakeholders) && (has(Theme::ClosingPush) || has(Theme::QuotaPressure)) {
        drop_pushed_stakeholders(layout(), &mut found);
    }
    Signals {
        p,
        found,
        negated: negated_cues,
        negated_customer,
        deal,
        not_deal,
        account,
        account_known,
        situations,
        refused,
    }
}

/// The lexicon-only decision: a theme fires when its cues add up to `FIRE`.
pub(crate) fn decide(sig: &Signals, text: &str) -> Analysis {
    let fired: Vec<(Theme, f32)> = Theme::ALL
        .into_iter()
        .map(|t| (t, sig.sum(t)))
        .filter(|(_, s)| *s >= FIRE)
        .collect();
    let themes = fired
        .iter()
        .map(|(theme, _)| ThemeHit {
            theme: *theme,
            evidence: sig.evidence(text, *theme),
        })
        .collect();
    finish(sig, themes, &fired, sig.deal_score() >= DEAL_THRESHOLD)
}

/// Class and score from the themes shown, each weighing its cue sum capped at 2 (so one
/// repeated word cannot outweigh everything else); a neutral message scores 0.5.
pub(crate) fn finish(
    sig: &Signals,
    themes: Vec<ThemeHit>,
    weights: &[(Theme, f32)],
    is_deal_update: bool,
) -> Analysis {
    let (mut cust, mut sell) = (0.0f32, 0.0f32);
    for (t, w) in weights {
        let w = w.clamp(FIRE, 2.0);
        if t.is_seller_centric() {
            sell += w;
        } else {
            cust += w;
        }
    }
    let has_seller = themes
        .iter()
        .any(|t: &ThemeHit| t.theme.is_seller_centric());
    let has_customer = themes.iter().any(|t| !t.theme.is_seller_centric());
    let class = match (has_customer, has_seller) {
        (false, false) => Class::Neutral,
        (true, false) => Class::CustomerCentric,
        (false, true) => Class::SellerCentric,
        (true, true) => Class::Balanced,
    };
    let score = if cust + sell > 0.0 {
        f64::from(cust / (cust + sell))
    } else {
        0.5
    };
    Analysis {
        is_deal_update,
        account: sig.account.as_ref().map(|(name, _, _)| name.clone()),
        themes,
        class,
        score,
        deal_state: deal_state::detect(sig, is_deal_update),
    }
}

fn emoji_cues(inner: &Inner, p: &Prepared, found: &mut Vec<Found>, deal: &mut f32) {
    // A repeated emoji is one cue said loudly, not several cues: "closed won :fire::fire:"
    // must not add up to pressure.
    let mut seen: Vec<usize> = Vec::new();
    for (name, s, e) in &p.emojis {
        for (_, entry) in inner.lex.emojis.iter().filter(|(n, _)| n == name) {
            if seen.contains(entry) {
                continue;
            }
            seen.push(*entry);
            let entry = &inner.lex.entries[*entry];
            match entry.kind {
                Kind::Theme(theme) => found.push(Found {
                    theme,
                    weight: entry.weight,
                    norm: None,
                    orig: (*s, *e),
                }),
                Kind::Deal => *deal += entry.weight,
                _ => {}
            }
        }
    }
}

/// A customer role named only as someone to push for a signature is not `stakeholders`
/// ("get their CFO to sign by the 30th so I hit my number").
fn drop_pushed_stakeholders(layout: &Layout, found: &mut Vec<Found>) {
    let fires = |t: Theme| {
        found
            .iter()
            .filter(|f| f.theme == t)
            .map(|f| f.weight)
            .sum::<f32>()
            >= FIRE
    };
    let push_fires = [Theme::ClosingPush, Theme::QuotaPressure].map(fires);
    let pushed: Vec<u32> = found
        .iter()
        .filter(|f| {
            (f.theme == Theme::ClosingPush && push_fires[0])
                || (f.theme == Theme::QuotaPressure && push_fires[1])
        })
        .filter_map(|f| f.norm.map(|(s, _)| layout.clause_of(s)))
        .collect();
    if pushed.is_empty() {
        return;
    }
    found.retain(|f| {
        let Some((s, _)) = f.norm else { return true };
        !(f.theme == Theme::Stakeholders
            && f.weight < STRONG_STAKEHOLDER
            && pushed.contains(&layout.clause_of(s)))
    });
}
