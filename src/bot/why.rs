//! "Why?": what cusp noticed in a message (themes and the words that showed them) and the
//! gaps its questions aimed at. The words are message text, and cusp stores themes, not
//! text (BRIEF.md principle 4), so the explanation travels in the nudge's own "Why?"
//! button — posted in the thread where the words already are — and comes back signed when
//! someone clicks it. Nothing here touches the database.

use serde::{Deserialize, Serialize};

use crate::engine::{Analysis, Class, Stage, Theme};
use crate::slack::blocks::{self, MAX_BUTTON_VALUE_CHARS};

/// Words kept per theme in the button value; the first ones are the clearest evidence.
const WORDS_PER_THEME: usize = 4;
/// Characters kept of one evidence span.
const WORD_CHARS: usize = 60;

/// How cusp read a message: enough to explain a nudge and to correct it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub deal_update: bool,
    /// Themes in taxonomy order, each with the words that showed it.
    pub themes: Vec<Noticed>,
    /// The customer-centric gaps the questions aimed at, most important first.
    pub aimed_at: Vec<Theme>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noticed {
    pub theme: Theme,
    pub words: Vec<String>,
}

impl Reading {
    /// The one place a nudge's explanation is built. `aimed_at` is what the questions
    /// explore: [`aimed_gaps`] reads it from the chosen questions' own reasons.
    pub fn of(analysis: &Analysis, aimed_at: &[Theme]) -> Reading {
        let themes = analysis
            .themes
            .iter()
            .map(|hit| {
                let mut words: Vec<String> = Vec::new();
                for e in &hit.evidence {
                    let w = e.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    if !w.is_empty() && !words.iter().any(|k| k.eq_ignore_ascii_case(&w)) {
                        words.push(blocks::truncate(&w, WORD_CHARS));
                    }
                }
                words.truncate(WORDS_PER_THEME);
                Noticed {
                    theme: hit.theme,
                    words,
                }
            })
            .collect();
        Reading {
            deal_update: analysis.is_deal_update,
            themes,
            aimed_at: aimed_at.to_vec(),
        }
    }

    pub fn theme_ids(&self) -> Vec<Theme> {
        self.themes.iter().map(|n| n.theme).collect()
    }
}

/// The gaps the chosen questions aim at, in their order and without repeats (each
/// question's own `reason.gap`); when none carries one, the analysis' top gaps.
pub fn aimed_gaps(
    analysis: &Analysis,
    stage: Option<Stage>,
    questions: &[crate::engine::Question],
) -> Vec<Theme> {
    let mut gaps: Vec<Theme> = Vec::new();
    for gap in questions.iter().filter_map(|q| q.reason.gap) {
        if !gaps.contains(&gap) {
            gaps.push(gap);
        }
    }
    if gaps.is_empty() {
        gaps = analysis.gaps(stage);
        gaps.truncate(questions.len().max(1));
    }
    gaps
}

/// A class follows from themes (BRIEF.md): none → neutral, only seller-centric → seller,
/// only customer-centric → customer, both → balanced.
pub fn class_of(themes: &[Theme]) -> Class {
    let seller = themes.iter().any(|t| t.is_seller_centric());
    let customer = themes.iter().any(|t| !t.is_seller_centric());
    match (customer, seller) {
        (false, false) => Class::Neutral,
        (true, false) => Class::CustomerCentric,
        (false, true) => Class::SellerCentric,
        (true, true) => Class::Balanced,
    }
}

/// A theme as people read it (modal options ≤ 75 characters).
pub fn theme_label(theme: Theme) -> &'static str {
    match theme {
        Theme::QuotaPressure => "Quota pressure (our number, our quarter)",
        Theme::ClosingPush => "Closing push (pushing for the signature)",
        Theme::DiscountLever => "Discount as the lever",
        Theme::ProductPitch => "Product pitch (features, the demo)",
        Theme::CustomerConcern => "Their concerns and feelings",
        Theme::CustomerOutcome => "Their outcome (the result they need)",
        Theme::Stakeholders => "Their people (who is involved on their side)",
        Theme::DecisionProcess => "How they decide (criteria, approvals, steps)",
        Theme::CustomerRisk => "Their risks (what could go wrong for them)",
        Theme::Enablement => "Helping them buy (business case, mutual plan)",
        Theme::Adoption => "Adoption (rollout, training, change)",
        Theme::DecisionConfidence => "Their confidence in the decision",
        Theme::SharedSuccess => "Shared success (measurable value for them)",
    }
}

/// The compact wire form inside the button: `{"d":true,"t":[["closing_push",["sign by
/// Friday"]]],"g":["customer_outcome"]}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhyWire {
    d: bool,
    t: Vec<(String, Vec<String>)>,
    g: Vec<String>,
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

fn to_wire(r: &Reading) -> WhyWire {
    WhyWire {
        d: r.deal_update,
        t: r.themes
            .iter()
            .map(|n| (n.theme.id().to_owned(), n.words.clone()))
            .collect(),
        g: r.aimed_at.iter().map(|t| t.id().to_owned()).collect(),
    }
}

fn encode(wire: &WhyWire) -> String {
    serde_json::to_string(wire).unwrap_or_default()
}

/// The "Why?" button's value: always valid JSON of at most 2,000 characters (Slack's
/// button `value` limit). When the words do not fit, the last words of the wordiest
/// themes go first, then gaps, then themes — the JSON is never cut mid-way.
pub fn why_value(reading: &Reading) -> String {
    let mut wire = to_wire(reading);
    loop {
        let out = encode(&wire);
        if char_len(&out) <= MAX_BUTTON_VALUE_CHARS {
            return out;
        }
        if let Some((_, words)) = wire
            .t
            .iter_mut()
            .filter(|(_, w)| !w.is_empty())
            .max_by_key(|(_, w)| w.len())
        {
            words.pop();
        } else if wire.g.pop().is_none() && wire.t.pop().is_none() {
            return encode(&wire);
        }
    }
}

/// Reads a "Why?" value back. Slack signs the payload, but a value is still checked: a
/// malformed one is an error naming the problem, never a panic.
pub fn parse_why(value: &str) -> Result<Reading, String> {
    let wire: WhyWire =
        serde_json::from_str(value).map_err(|e| format!("malformed \"Why?\" value: {e}"))?;
    let themes = wire
        .t
        .into_iter()
        .map(|(id, words)| {
            Ok(Noticed {
                theme: theme(&id)?,
                words,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let aimed_at = wire
        .g
        .iter()
        .map(|id| theme(id))
        .collect::<Result<_, _>>()?;
    Ok(Reading {
        deal_update: wire.d,
        themes,
        aimed_at,
    })
}

pub(crate) fn theme(id: &str) -> Result<Theme, String> {
    Theme::from_id(id).ok_or_else(|| format!("unknown theme `{}`", blocks::truncate(id, 40)))
}

fn lower_first(label: &str) -> String {
    let mut chars = label.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The ephemeral explanation (mrkdwn). Message words are escaped so they cannot form
/// mentions or links.
pub fn why_text(r: &Reading) -> String {
    let mut out = format!(
        "*Why I asked:* I read your message as {}.\n",
        if r.deal_update {
            "a deal update"
        } else {
            "not a deal update"
        }
    );
    if r.themes.is_empty() {
        out.push_str("*What I noticed:* no CUSP theme, only that it is about a deal.\n");
    } else {
        out.push_str("*What I noticed:*\n");
        for n in &r.themes {
            let words: Vec<String> = n
                .words
                .iter()
                .map(|w| format!("“{}”", blocks::escape_mrkdwn(w)))
                .collect();
            if words.is_empty() {
                out.push_str(&format!("• {}\n", theme_label(n.theme)));
            } else {
                out.push_str(&format!(
                    "• {}: {}\n",
                    theme_label(n.theme),
                    words.join(", ")
                ));
            }
        }
    }
    if r.aimed_at.is_empty() {
        out.push_str("*What my questions aim at:* going deeper on what you wrote.\n");
    } else {
        let gaps: Vec<String> = r
            .aimed_at
            .iter()
            .map(|t| lower_first(theme_label(*t)))
            .collect();
        out.push_str(&format!(
            "*What my questions aim at:* {} — the update doesn't show {} yet.\n",
            gaps.join("; "),
            if gaps.len() == 1 { "this" } else { "these" }
        ));
    }
    out.push_str("Read it wrong? *Not quite right* lets you tell me.");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    const SELLER: &str =
        "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";

    #[test]
    fn a_reading_round_trips_through_the_button_value() {
        let engine = Engine::builtin();
        let a = engine.analyze(SELLER);
        let ctx = crate::engine::QuestionContext {
            text: SELLER,
            ..Default::default()
        };
        let questions = engine.choose_questions(&a, &ctx);
        let r = Reading::of(&a, &aimed_gaps(&a, None, &questions));
        assert!(!r.themes.is_empty() && !r.aimed_at.is_empty(), "{r:?}");
        // The gaps are the chosen questions' own, in their order.
        let first_gap = questions.iter().find_map(|q| q.reason.gap).unwrap();
        assert_eq!(r.aimed_at[0], first_gap, "{r:?}");
        assert!(r.themes.iter().all(|n| !n.words.is_empty()));
        assert_eq!(parse_why(&why_value(&r)).unwrap(), r);
        let text = why_text(&r);
        assert!(text.contains("a deal update"), "{text}");
        // Gaps are written lowercase inside the sentence.
        let readable = theme_label(first_gap).to_lowercase();
        assert!(
            text.to_lowercase().contains(&readable),
            "{readable} missing in {text}"
        );
    }

    #[test]
    fn a_huge_reading_is_cut_to_valid_json_within_the_limit() {
        let long = "ß\"<&".repeat(200);
        let r = Reading {
            deal_update: true,
            themes: Theme::ALL
                .iter()
                .map(|t| Noticed {
                    theme: *t,
                    words: vec![long.clone(); 4],
                })
                .collect(),
            aimed_at: Theme::ALL.to_vec(),
        };
        let value = why_value(&r);
        assert!(value.chars().count() <= MAX_BUTTON_VALUE_CHARS);
        let back = parse_why(&value).unwrap();
        assert_eq!(
            back.themes.len(),
            Theme::ALL.len(),
            "themes outlive their words"
        );
        assert!(back.themes.iter().any(|n| !n.words.is_empty()));
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"d":true,"t":[["rockets",[]]],"g":[]}"#,
            r#"{"d":1}"#,
        ] {
            assert!(parse_why(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn words_are_escaped_in_the_explanation() {
        let r = Reading {
            deal_update: false,
            themes: vec![Noticed {
                theme: Theme::ClosingPush,
                words: vec!["<!channel> sign".into()],
            }],
            aimed_at: vec![],
        };
        let text = why_text(&r);
        assert!(
            text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
            "{text}"
        );
        assert!(text.contains("not a deal update"));
    }

    #[test]
    fn class_follows_the_brief_rule() {
        assert_eq!(class_of(&[]), Class::Neutral);
        assert_eq!(class_of(&[Theme::ClosingPush]), Class::SellerCentric);
        assert_eq!(class_of(&[Theme::Adoption]), Class::CustomerCentric);
        assert_eq!(
            class_of(&[Theme::Adoption, Theme::DiscountLever]),
            Class::Balanced
        );
        for t in Theme::ALL {
            assert!(theme_label(t).chars().count() <= blocks::MAX_OPTION_TEXT_CHARS);
        }
    }
}
