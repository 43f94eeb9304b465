//! The question bank (data in `questions.txt`) and question selection.
//!
//! Selection is deterministic: variety comes from a small hash of `ctx.seed` and the
//! question id, never from a clock or a random source.

use super::{Analysis, Class, LexiconError, Pillar, Question, QuestionContext, Stage, Theme};

/// How many of the person's latest questions must not come back while another fits.
const RECENT_WINDOW: usize = 10;

#[derive(Debug, Clone)]
pub(crate) struct BankQuestion {
    pub id: String,
    pub pillar: Pillar,
    pub answers: Vec<Theme>,
    pub stages: Vec<Stage>,
    pub text: String,
}

impl BankQuestion {
    /// Fills `{account}` / `{account|fallback}`.
    pub fn render(&self, account: Option<&str>) -> Question {
        let mut out = String::with_capacity(self.text.len() + 16);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find("{account") {
            out.push_str(&rest[..open]);
            let after = &rest[open..];
            let Some(close) = after.find('}') else { break };
            let fallback = after[..close]
                .split_once('|')
                .map_or("the customer", |(_, f)| f);
            out.push_str(account.unwrap_or(fallback));
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        // "the customer's team" reads fine; a name ending in s gets a bare apostrophe.
        let out = out.replace("s's ", "s' ");
        Question {
            id: self.id.clone(),
            pillar: self.pillar,
            text: out,
        }
    }
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
        let f: Vec<&str> = l.splitn(5, '|').map(str::trim).collect();
        let [id, pillar, answers, stages, text] = f[..] else {
            return Err(err(
                "expected 5 fields: id | pillar | themes | stages | text".into(),
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
        bank.push(BankQuestion {
            id: id.to_string(),
            pillar,
            answers,
            stages,
            text: text.to_string(),
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
/// counterpart of this signal" (questions are tagged with them).
fn targets(a: &Analysis, stage: Option<Stage>) -> Vec<Theme> {
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
    if let Some(&(_, t)) = seller.first() {
        push(t, &mut out);
    }
    if let Some(s) = stage {
        for &t in s.expected_themes() {
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
    for t in targets(a, stage) {
        let c = counterpart(t);
        if !a.has(c) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// splitmix64 of the seed mixed with an FNV-1a hash of the id: a stable, well-spread tiebreak.
fn mix(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) fn choose(
    bank: &[BankQuestion],
    a: &Analysis,
    ctx: &QuestionContext<'_>,
) -> Vec<Question> {
    let want = match a.class {
        Class::SellerCentric if a.themes.len() >= 2 => 3,
        Class::CustomerCentric => 1,
        _ => 2,
    };
    let recent = &ctx.recent[..ctx.recent.len().min(RECENT_WINDOW)];
    let cost = |q: &BankQuestion, target: Theme| -> u64 {
        let mut c: u64 = 0;
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
        c * 1_000 + mix(ctx.seed, &q.id) % 1_000
    };
    let mut picked: Vec<&BankQuestion> = Vec::new();
    for target in targets(a, ctx.stage) {
        if picked.len() >= want {
            break;
        }
        let best = bank
            .iter()
            .filter(|q| q.answers.contains(&target))
            .filter(|q| !recent.contains(&q.id) && !picked.iter().any(|p| p.id == q.id))
            // A second question should open another pillar of their world when it can.
            .min_by_key(|q| {
                cost(q, target)
                    + if picked.iter().any(|p| p.pillar == q.pillar) {
                        20_000
                    } else {
                        0
                    }
            });
        if let Some(q) = best {
            picked.push(q);
        }
    }
    if picked.is_empty() {
        // Everything that fits was asked recently: repeat the one asked longest ago.
        let oldest = bank.iter().max_by_key(|q| {
            let age = recent
                .iter()
                .position(|r| *r == q.id)
                .unwrap_or(RECENT_WINDOW);
            (age, u64::MAX - mix(ctx.seed, &q.id))
        });
        picked.extend(oldest);
    }
    picked
        .iter()
        .map(|q| q.render(a.account.as_deref()))
        .collect()
}
