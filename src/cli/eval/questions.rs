//! `cusp eval --questions FILE…`: how good the questions are over the deal updates of
//! labelled files — how often they name what the message said, how varied they are, how
//! long, and whether they fit the situation.
//!
//! Definitions (also in README.md):
//! - A **nudge** is the questions chosen for one labelled deal update (`is_deal_update`
//!   true), with no history and seed = its position, as `cusp reflect` would choose them.
//! - A nudge is **specific** when one of its questions has, in its reason's `used` list, a
//!   slot other than the account with a word that is one of the message's words (markup
//!   removed, case-insensitive, whole words) and also one of the question's words.
//! - **Fit violations**: a question containing a phrase that makes no sense in the
//!   situation read from the message (e.g. "if this works" or "six months" for a lost deal
//!   or a customer at risk; "to decide" for a deal already won). The phrase lists are here,
//!   independent of the bank's situation tags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EvalError;
use crate::engine::{Engine, QuestionContext, Situation, SlotKind, message_words};

/// Phrases that do not fit a situation.
fn misfit_phrases(s: Situation) -> &'static [&'static str] {
    const AFTER_PURCHASE: &[&str] = &[
        "since go-live",
        "since they started",
        "since they signed",
        "tipped the decision",
        "the past year",
        "renewing",
    ];
    match s {
        Situation::Lost => &[
            "if this works",
            "six months",
            "month one",
            "go-live",
            "first 90 days",
            "rollout",
            "to decide",
            "decide with",
            "mutual plan",
            "change now",
            "choose us",
            "if they wait",
            "if they switch",
            "first qbr",
            "hesitation",
            "slipped a month",
            "before committing",
            "glad they chose",
            "make the case internally",
            "justify this spend",
            "next step",
            "a year from now",
        ],
        Situation::AtRisk => &[
            "if this works",
            "six months",
            "change now",
            "if they wait",
            "choose us",
            "if they switch",
            "glad they chose",
            "first qbr",
            "month one",
            "first 90 days",
            "take the call",
            "tipped the decision",
            "safer choosing",
        ],
        Situation::Won => &[
            "if this works",
            "to decide",
            "decide with",
            "compare the options",
            "comparing us",
            "if they wait",
            "change now",
            "choose us",
            "hesitation",
            "did we miss",
            "would have made",
            "safer choosing",
            "if price were off",
            "slipped a month",
            "take the call",
            "before committing",
            "is this really",
        ],
        Situation::Renewal => &[
            "if this works",
            "change now",
            "choose us",
            "take the call",
            "tipped the decision",
            "first 90 days",
            "did we miss",
        ],
        Situation::Discovery => &[
            "since go-live",
            "since they started",
            "since they signed",
            "renewing",
            "tipped the decision",
            "did we miss",
            "would have made",
            "first qbr",
            "the past year",
        ],
        Situation::Active | Situation::Competitive | Situation::Stalled => AFTER_PURCHASE,
    }
}

#[derive(Debug, Deserialize)]
struct Row {
    text: String,
    is_deal_update: bool,
}

/// A question that does not fit the situation of its message.
#[derive(Debug, Clone, Serialize)]
pub struct Misfit {
    pub situation: Situation,
    pub question: String,
    pub phrase: String,
}

/// The question-quality figures.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionReport {
    /// Labelled deal updates read.
    pub deal_updates: usize,
    /// Nudges with at least one specific question, and their share.
    pub specific_nudges: usize,
    pub specific_share: f64,
    pub questions: usize,
    pub distinct_texts: usize,
    pub distinct_ids: usize,
    pub top_text: String,
    pub top_text_share: f64,
    pub top_id: String,
    pub top_id_share: f64,
    /// The longest question, in words.
    pub max_words: usize,
    /// Nudges per situation read from the message.
    pub situations: BTreeMap<String, usize>,
    /// Filled slots over all questions, by kind (account included).
    pub slots: BTreeMap<String, usize>,
    pub misfits: Vec<Misfit>,
    /// The five most asked question ids with their counts.
    pub top_ids: Vec<(String, usize)>,
}

fn whole_words_in(hay: &[String], needle: &str) -> bool {
    let n = message_words(needle);
    !n.is_empty() && hay.windows(n.len()).any(|w| w == n.as_slice())
}

/// The report over JSON Lines sources (name, contents). Pure: no I/O.
pub fn evaluate(
    engine: &Engine,
    sources: &[(String, String)],
) -> Result<QuestionReport, EvalError> {
    let mut deal_updates = 0usize;
    let mut specific_nudges = 0usize;
    let mut by_text: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut situations: BTreeMap<String, usize> = BTreeMap::new();
    let mut slots: BTreeMap<String, usize> = BTreeMap::new();
    let mut misfits = Vec::new();
    let mut questions = 0usize;
    let mut max_words = 0usize;
    for (_name, src) in sources {
        for (idx, line) in src.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: Row = serde_json::from_str(line).map_err(|e| EvalError::BadLine {
                line: idx + 1,
                reason: e.to_string(),
            })?;
            if !row.is_deal_update {
                continue;
            }
            let a = engine.analyze(&row.text);
            let ctx = QuestionContext {
                text: &row.text,
                seed: deal_updates as u64,
                ..QuestionContext::default()
            };
            deal_updates += 1;
            let qs = engine.choose_questions(&a, &ctx);
            let situation = engine.question_situation(&a, &ctx);
            *situations
                .entry(situation.as_str().to_string())
                .or_default() += 1;
            let message = message_words(&row.text);
            let mut specific = false;
            for q in &qs {
                questions += 1;
                *by_text.entry(q.text.clone()).or_default() += 1;
                *by_id.entry(q.id.clone()).or_default() += 1;
                max_words = max_words.max(q.text.split_whitespace().count());
                let qwords = message_words(&q.text);
                for u in &q.reason.used {
                    *slots.entry(u.slot.as_str().to_string()).or_default() += 1;
                    if u.slot != SlotKind::Account
                        && u.words
                            .iter()
                            .any(|w| whole_words_in(&message, w) && whole_words_in(&qwords, w))
                    {
                        specific = true;
                    }
                }
                let lower = q.text.to_lowercase();
                if let Some(p) = misfit_phrases(situation)
                    .iter()
                    .find(|p| lower.contains(**p))
                {
                    misfits.push(Misfit {
                        situation,
                        question: q.text.clone(),
                        phrase: (*p).to_string(),
                    });
                }
            }
            if specific {
                specific_nudges += 1;
            }
        }
    }
    if deal_updates == 0 {
        return Err(EvalError::Empty);
    }
    let top = |m: &BTreeMap<String, usize>| {
        m.iter()
            .max_by_key(|(k, n)| (**n, std::cmp::Reverse((*k).clone())))
            .map(|(k, n)| (k.clone(), *n))
            .unwrap_or_default()
    };
    let (top_text, top_text_n) = top(&by_text);
    let (top_id, top_id_n) = top(&by_id);
    let mut ids: Vec<(String, usize)> = by_id.iter().map(|(k, n)| (k.clone(), *n)).collect();
    ids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ids.truncate(5);
    let share = |n: usize| n as f64 / questions.max(1) as f64;
    Ok(QuestionReport {
        deal_updates,
        specific_nudges,
        specific_share: specific_nudges as f64 / deal_updates as f64,
        questions,
        distinct_texts: by_text.len(),
        distinct_ids: by_id.len(),
        top_text,
        top_text_share: share(top_text_n),
        top_id,
        top_id_share: share(top_id_n),
        max_words,
        situations,
        slots,
        misfits,
        top_ids: ids,
    })
}

/// Reads `paths`, measures the questions over their deal updates, prints the report.
pub fn run(
    engine: &Engine,
    paths: &[PathBuf],
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), EvalError> {
    let mut sources = Vec::new();
    for path in paths {
        let src = read(path)?;
        sources.push((path.display().to_string(), src));
    }
    let r = evaluate(engine, &sources)?;
    if json {
        let v = serde_json::to_string_pretty(&r)
            .map_err(|e| EvalError::Write(std::io::Error::other(e)))?;
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(out, "deal updates: {}", r.deal_updates)?;
    writeln!(
        out,
        "specific: {:.3} of nudges ({} of {}) ask about something the message said beyond the account",
        r.specific_share, r.specific_nudges, r.deal_updates
    )?;
    writeln!(
        out,
        "questions: {}  distinct texts: {}  distinct ids: {}  longest: {} words",
        r.questions, r.distinct_texts, r.distinct_ids, r.max_words
    )?;
    writeln!(
        out,
        "most frequent text: {:.3} \"{}\"",
        r.top_text_share, r.top_text
    )?;
    writeln!(out, "most frequent id: {:.3} {}", r.top_id_share, r.top_id)?;
    let top: Vec<String> = r.top_ids.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(out, "top ids: {}", top.join(", "))?;
    let sit: Vec<String> = r
        .situations
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(out, "situations: {}", sit.join(", "))?;
    let sl: Vec<String> = r.slots.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(out, "slots filled: {}", sl.join(", "))?;
    writeln!(out, "situation-fit violations: {}", r.misfits.len())?;
    for m in &r.misfits {
        writeln!(
            out,
            "  {}: \"{}\" ({})",
            m.situation.as_str(),
            m.question,
            m.phrase
        )?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The committed labelled sets, plus any corpus training files in `eval/corpus/`
    /// (never a held-back `*-test.jsonl`).
    fn labelled() -> Vec<(String, String)> {
        let mut out = vec![
            (
                "dev".to_string(),
                include_str!("../../../eval/dev.jsonl").to_string(),
            ),
            (
                "fresh".to_string(),
                include_str!("../../../eval/fresh-2026-11-23.jsonl").to_string(),
            ),
        ];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/corpus");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with("-train.jsonl"))
                })
                .collect();
            files.sort();
            for f in files {
                out.push((
                    f.display().to_string(),
                    std::fs::read_to_string(&f).unwrap(),
                ));
            }
        }
        out
    }

    #[test]
    fn questions_meet_the_targets_on_the_labelled_sets() {
        let r = evaluate(&Engine::builtin(), &labelled()).unwrap();
        assert!(r.deal_updates >= 100, "{}", r.deal_updates);
        assert!(r.specific_share >= 0.60, "specific {:.3}", r.specific_share);
        assert!(
            r.top_text_share <= 0.08,
            "{:.3} {}",
            r.top_text_share,
            r.top_text
        );
        assert!(r.misfits.is_empty(), "{:#?}", r.misfits);
        assert!(r.max_words <= 25, "{}", r.max_words);
    }

    #[test]
    fn a_lost_deal_gets_no_future_question_and_specific_means_the_messages_words() {
        let src = concat!(
            "{\"text\":\"Globex closed lost, they went with Salesforce on price\",\"is_deal_update\":true}\n",
            "{\"text\":\"lunch?\",\"is_deal_update\":false}\n",
        );
        let r = evaluate(&Engine::builtin(), &[("t".into(), src.into())]).unwrap();
        assert_eq!(r.deal_updates, 1);
        assert_eq!(r.situations.get("lost"), Some(&1));
        assert!(r.misfits.is_empty(), "{:?}", r.misfits);
        assert_eq!(r.specific_nudges, 1, "names Salesforce: {r:?}");
        assert!(matches!(
            evaluate(
                &Engine::builtin(),
                &[(
                    "t".into(),
                    "{\"text\":\"x\",\"is_deal_update\":false}".into()
                )]
            ),
            Err(EvalError::Empty)
        ));
    }
}
