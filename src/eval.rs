//! `cusp eval FILE.jsonl`: measures the engine against labelled messages.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::{Class, Engine, Theme};

// ---- Question quality (`cusp eval --questions`): its own module, src/eval/questions.rs ----
pub mod questions;
// ---- end question quality ----

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    // The io error is the source: `{:#}` at the edge appends it once.
    #[error("cannot read {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error("no labelled messages found")]
    Empty,
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
}

#[derive(Debug, Deserialize)]
struct Labelled {
    text: String,
    is_deal_update: bool,
    class: String,
    #[serde(default)]
    themes: Vec<String>,
}

/// Precision, recall and F1 with the counts behind them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    fn from_counts(tp: usize, fp: usize, fn_: usize) -> Prf {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Prf {
            tp,
            fp,
            fn_,
            precision,
            recall,
            f1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub messages: usize,
    pub deal_update: Prf,
    pub class_accuracy: f64,
    /// `confusion[expected][predicted]` counts, class names as keys.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    pub themes: BTreeMap<String, Prf>,
    pub theme_micro: Prf,
}

const CLASSES: [Class; 4] = [
    Class::CustomerCentric,
    Class::Balanced,
    Class::SellerCentric,
    Class::Neutral,
];

/// Scores the engine on JSON Lines of `{text, is_deal_update, class, themes}` (other fields
/// ignored). Pure: no I/O.
pub fn evaluate(engine: &Engine, jsonl: &str) -> Result<EvalReport, EvalError> {
    let (mut d_tp, mut d_fp, mut d_fn) = (0, 0, 0);
    let mut correct = 0usize;
    let mut n = 0usize;
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for e in CLASSES {
        let row = confusion.entry(e.as_str().to_string()).or_default();
        for p in CLASSES {
            row.insert(p.as_str().to_string(), 0);
        }
    }
    let mut per: BTreeMap<Theme, (usize, usize, usize)> =
        Theme::ALL.iter().map(|t| (*t, (0, 0, 0))).collect();
    for (idx, line) in jsonl.lines().enumerate() {
        let line_no = idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| EvalError::BadLine {
            line: line_no,
            reason,
        };
        let row: Labelled = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let expected = Class::parse(&row.class)
            .ok_or_else(|| bad(format!("unknown class `{}`", row.class)))?;
        let expected_themes = row
            .themes
            .iter()
            .map(|t| Theme::from_id(t).ok_or_else(|| bad(format!("unknown theme `{t}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        let a = engine.analyze(&row.text);
        n += 1;
        match (row.is_deal_update, a.is_deal_update) {
            (true, true) => d_tp += 1,
            (false, true) => d_fp += 1,
            (true, false) => d_fn += 1,
            _ => {}
        }
        if a.class == expected {
            correct += 1;
        }
        *confusion
            .entry(expected.as_str().to_string())
            .or_default()
            .entry(a.class.as_str().to_string())
            .or_default() += 1;
        for (t, c) in per.iter_mut() {
            match (expected_themes.contains(t), a.has(*t)) {
                (true, true) => c.0 += 1,
                (false, true) => c.1 += 1,
                (true, false) => c.2 += 1,
                _ => {}
            }
        }
    }
    if n == 0 {
        return Err(EvalError::Empty);
    }
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    let mut themes = BTreeMap::new();
    for (t, (a, b, c)) in &per {
        tp += a;
        fp += b;
        fn_ += c;
        themes.insert(t.id().to_string(), Prf::from_counts(*a, *b, *c));
    }
    Ok(EvalReport {
        messages: n,
        deal_update: Prf::from_counts(d_tp, d_fp, d_fn),
        class_accuracy: correct as f64 / n as f64,
        confusion,
        themes,
        theme_micro: Prf::from_counts(tp, fp, fn_),
    })
}

/// Reads `path`, evaluates, and prints the report (a table, or one JSON object).
pub fn run(
    engine: &Engine,
    path: &Path,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), EvalError> {
    let src = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let r = evaluate(engine, &src)?;
    if json {
        let v = serde_json::to_string_pretty(&r)
            .map_err(|e| EvalError::Write(std::io::Error::other(e)))?;
        writeln!(out, "{v}")?;
        return Ok(());
    }
    let d = r.deal_update;
    writeln!(out, "messages: {}", r.messages)?;
    writeln!(
        out,
        "deal update: precision {:.3}  recall {:.3}  F1 {:.3}",
        d.precision, d.recall, d.f1
    )?;
    writeln!(out, "class accuracy: {:.3}", r.class_accuracy)?;
    writeln!(out, "confusion (rows expected, columns predicted):")?;
    let names: Vec<&str> = CLASSES.iter().map(|c| c.as_str()).collect();
    writeln!(
        out,
        "  {:<18}{}",
        "",
        names.iter().map(|c| format!("{c:>18}")).collect::<String>()
    )?;
    for e in &names {
        let row = r.confusion.get(*e);
        let cells: String = names
            .iter()
            .map(|p| format!("{:>18}", row.and_then(|m| m.get(*p)).copied().unwrap_or(0)))
            .collect();
        writeln!(out, "  {e:<18}{cells}")?;
    }
    writeln!(
        out,
        "themes:{:>22}{:>11}{:>8}{:>6}{:>6}{:>6}",
        "precision", "recall", "F1", "tp", "fp", "fn"
    )?;
    for t in Theme::ALL {
        if let Some(p) = r.themes.get(t.id()) {
            writeln!(
                out,
                "  {:<22}{:>7.3}{:>11.3}{:>8.3}{:>6}{:>6}{:>6}",
                t.id(),
                p.precision,
                p.recall,
                p.f1,
                p.tp,
                p.fp,
                p.fn_
            )?;
        }
    }
    let m = r.theme_micro;
    writeln!(
        out,
        "theme micro: precision {:.3}  recall {:.3}  F1 {:.3}",
        m.precision, m.recall, m.f1
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn json_names_false_negatives_fn() {
        let v = serde_json::to_value(Prf::from_counts(1, 2, 3)).unwrap();
        assert_eq!(v["fn"], 3);
        assert!(v.get("fn_").is_none());
    }

    #[test]
    fn scores_a_small_set() {
        let src = concat!(
            "{\"text\":\"Globex: offered 20% off if they sign by Friday\",\"is_deal_update\":true,\"class\":\"seller_centric\",\"themes\":[\"discount_lever\",\"closing_push\"]}\n",
            "{\"text\":\"lunch at noon?\",\"is_deal_update\":false,\"class\":\"neutral\",\"themes\":[]}\n",
        );
        let r = evaluate(&Engine::builtin(), src).unwrap();
        assert_eq!(r.messages, 2);
        assert_eq!(r.deal_update.f1, 1.0);
        assert_eq!(r.class_accuracy, 1.0);
        assert_eq!(r.theme_micro.tp, 2);
        assert_eq!(r.confusion["neutral"]["neutral"], 1);
    }

    #[test]
    fn names_the_malformed_line() {
        let e = Engine::builtin();
        let good = "{\"text\":\"x\",\"is_deal_update\":false,\"class\":\"neutral\",\"themes\":[]}";
        let bad_json = format!("{good}\n{{oops\n");
        assert!(matches!(
            evaluate(&e, &bad_json),
            Err(EvalError::BadLine { line: 2, .. })
        ));
        let bad_class = format!("{good}\n{good}\n{}", good.replace("neutral", "grumpy"));
        assert!(matches!(
            evaluate(&e, &bad_class),
            Err(EvalError::BadLine { line: 3, .. })
        ));
        assert!(matches!(evaluate(&e, ""), Err(EvalError::Empty)));
    }

    #[test]
    fn dev_set_meets_targets() {
        let src = include_str!("../eval/dev.jsonl");
        let r = evaluate(&Engine::builtin(), src).unwrap();
        assert!(r.deal_update.f1 >= 0.90, "{:?}", r.deal_update);
        assert!(r.class_accuracy >= 0.75, "{}", r.class_accuracy);
        assert!(r.theme_micro.f1 >= 0.70, "{:?}", r.theme_micro);
    }
}
