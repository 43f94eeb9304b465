//! From phrase matches to themes, class, score and the deal-update decision.

use super::lexicon::Kind;
use super::markup::{Prepared, prepare};
use super::matcher::{Hit, Layout};
use super::{Analysis, Class, Evidence, Inner, Theme, ThemeHit, account};

/// A theme fires when its cues add up to this much (weak cues need support).
const FIRE: f32 = 1.0;
/// Words a negation may reach forward within its clause.
const NEGATION_REACH: u32 = 7;
/// Stakeholder cues at least this strong survive next to a push for signature.
const STRONG_STAKEHOLDER: f32 = 1.5;
/// Deal evidence needed to call a message a deal update.
const DEAL_THRESHOLD: f32 = 2.0;
const ACCOUNT_DEAL_WEIGHT: f32 = 1.5;

struct Found {
    theme: Theme,
    weight: f32,
    /// Normalised span (for clause lookups); `None` for emoji cues.
    norm: Option<(usize, usize)>,
    orig: (usize, usize),
}

pub(super) fn analyze(inner: &Inner, text: &str) -> Analysis {
    let p = prepare(text);
    let lex = &inner.lex;
    let hits = inner.matcher.find(lex, text, &p);
    // Clause positions are only needed for negation and the stakeholder rule; most messages
    // need neither, so the layout is built on first use.
    let layout_cell: std::cell::OnceCell<Layout> = std::cell::OnceCell::new();
    let layout = || layout_cell.get_or_init(|| Layout::new(lex, &p, &hits));
    let negations: Vec<&Hit> = hits
        .iter()
        .filter(|h| lex.entries[h.entry].kind == Kind::Negation)
        .collect();

    let mut found: Vec<Found> = Vec::new();
    let mut deal = 0.0f32;
    let mut not_deal = 0.0f32;
    let mut known_account: Option<(String, usize, usize)> = None;
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
                // Only seller cues are cancelled: "not confident" is still about confidence.
                let negated = theme.is_seller_centric()
                    && negations[..neg_idx]
                        .iter()
                        .rev()
                        .take(3)
                        .any(|n| layout().governs(n, h, NEGATION_REACH));
                if !negated {
                    found.push(Found {
                        theme,
                        weight: entry.weight,
                        norm: Some((h.s, h.e)),
                        orig: p.original_span(h.s, h.e),
                    });
                }
            }
            Kind::Deal => deal += entry.weight,
            Kind::NotDeal => not_deal += entry.weight,
            Kind::Account if known_account.is_none() => {
                let (s, e) = p.original_span(h.s, h.e);
                known_account = Some((text[s..e].to_string(), s, e));
            }
            _ => {}
        }
    }
    emoji_cues(inner, &p, &mut found, &mut deal);
    let account = known_account.or_else(|| account::detect(&p, text, &inner.common));
    // Words of the company's own name are not cues ("Pemberton Legal wants…"); a cue that
    // spans the whole name is still a cue ("pushing Lindqvist for signature").
    if let Some((_, s, e)) = &account {
        found.retain(|f| f.orig.1 <= *s || f.orig.0 >= *e || (f.orig.0 < *s && f.orig.1 > *e));
    }
    let has = |t: Theme| found.iter().any(|f| f.theme == t);
    if has(Theme::Stakeholders) && (has(Theme::ClosingPush) || has(Theme::QuotaPressure)) {
        drop_pushed_stakeholders(layout(), &mut found);
    }

    let mut themes: Vec<ThemeHit> = Vec::new();
    let (mut cust, mut sell) = (0.0f32, 0.0f32);
    for theme in Theme::ALL {
        let sum: f32 = found
            .iter()
            .filter(|f| f.theme == theme)
            .map(|f| f.weight)
            .sum();
        if sum < FIRE {
            continue;
        }
        let mut spans: Vec<(usize, usize)> = found
            .iter()
            .filter(|f| f.theme == theme)
            .map(|f| f.orig)
            .collect();
        spans.sort_unstable();
        spans.dedup();
        let evidence = spans
            .into_iter()
            .take(16)
            .map(|(start, end)| Evidence {
                text: text[start..end].to_string(),
                start,
                end,
            })
            .collect();
        // Capped so one repeated word cannot outweigh everything else.
        let w = sum.min(2.0);
        if theme.is_seller_centric() {
            sell += w;
        } else {
            cust += w;
        }
        themes.push(ThemeHit { theme, evidence });
    }
    let has_seller = themes.iter().any(|t| t.theme.is_seller_centric());
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

    let account = account.map(|(name, _, _)| name);
    let mut deal_score = deal.min(3.0) - not_deal;
    if account.is_some() {
        deal_score += ACCOUNT_DEAL_WEIGHT;
        if !themes.is_empty() {
            deal_score += 0.5;
        }
    }
    Analysis {
        is_deal_update: deal_score >= DEAL_THRESHOLD,
        account,
        themes,
        class,
        score,
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
