//! `cusp eval FILE.jsonl`: measures the engine against labelled messages.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::{Class, Engine, Theme};

// ---- Question quality (`cusp eval --questions`): its own module, src/cli/eval/questions.rs ----
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

/// One labelled message as read from a file.
#[derive(Debug, Clone)]
pub struct Row {
    pub text: String,
    pub is_deal_update: bool,
    pub class: Class,
    pub themes: Vec<Theme>,
}

/// Parses JSON Lines of `{text, is_deal_update, class, themes}` (other fields ignored).
pub fn parse_rows(jsonl: &str) -> Result<Vec<Row>, EvalError> {
    let mut rows = Vec::new();
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
        let class = Class::parse(&row.class)
            .ok_or_else(|| bad(format!("unknown class `{}`", row.class)))?;
        let themes = row
            .themes
            .iter()
            .map(|t| Theme::from_id(t).ok_or_else(|| bad(format!("unknown theme `{t}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(Row {
            text: row.text,
            is_deal_update: row.is_deal_update,
            class,
            themes,
        });
    }
    Ok(rows)
}

/// Counts behind a report; tallies of several files or folds add up.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    n: usize,
    deal: (usize, usize, usize),
    correct: usize,
    confusion: BTreeMap<(usize, usize), usize>,
    per: BTreeMap<Theme, (usize, usize, usize)>,
}

fn class_index(c: Class) -> usize {
    CLASSES.iter().position(|k| *k == c).unwrap_or(0)
}

impl Tally {
    /// Runs the engine over `rows` and counts.
    pub fn of(engine: &Engine, rows: &[Row]) -> Tally {
        let mut t = Tally::default();
        for row in rows {
            let a = engine.analyze(&row.text);
            t.n += 1;
            match (row.is_deal_update, a.is_deal_update) {
                (true, true) => t.deal.0 += 1,
                (false, true) => t.deal.1 += 1,
                (true, false) => t.deal.2 += 1,
                _ => {}
            }
            if a.class == row.class {
                t.correct += 1;
            }
            *t.confusion
                .entry((class_index(row.class), class_index(a.class)))
                .or_default() += 1;
            for th in Theme::ALL {
                let c = t.per.entry(th).or_default();
                match (row.themes.contains(&th), a.has(th)) {
                    (true, true) => c.0 += 1,
                    (false, true) => c.1 += 1,
                    (true, false) => c.2 += 1,
                    _ => {}
                }
            }
        }
        t
    }

    pub fn add(&mut self, o: &Tally) {
        self.n += o.n;
        self.deal.0 += o.deal.0;
        self.deal.1 += o.deal.1;
        self.deal.2 += o.deal.2;
        self.correct += o.correct;
        for (k, v) in &o.confusion {
            *self.confusion.entry(*k).or_default() += v;
        }
        for (k, v) in &o.per {
            let c = self.per.entry(*k).or_default();
            c.0 += v.0;
            c.1 += v.1;
            c.2 += v.2;
        }
    }

    pub fn report(&self) -> Result<EvalReport, EvalError> {
        if self.n == 0 {
            return Err(EvalError::Empty);
        }
        let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (ei, e) in CLASSES.iter().enumerate() {
            let row = confusion.entry(e.as_str().to_string()).or_default();
            for (pi, p) in CLASSES.iter().enumerate() {
                row.insert(
                    p.as_str().to_string(),
                    self.confusion.get(&(ei, pi)).copied().unwrap_or(0),
                );
            }
        }
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        let mut themes = BTreeMap::new();
        for t in Theme::ALL {
            let (a, b, c) = self.per.get(&t).copied().unwrap_or_default();
            tp += a;
            fp += b;
            fn_ += c;
            themes.insert(t.id().to_string(), Prf::from_counts(a, b, c));
        }
        Ok(EvalReport {
            messages: self.n,
            deal_update: Prf::from_counts(self.deal.0, self.deal.1, self.deal.2),
            class_accuracy: self.correct as f64 / self.n as f64,
            confusion,
            themes,
            theme_micro: Prf::from_counts(tp, fp, fn_),
        })
    }
}

/// Scores the engine on JSON Lines of `{text, is_deal_update, class, themes}` (other fields
/// ignored). Pure: no I/O.
pub fn evaluate(engine: &Engine, jsonl: &str) -> Result<EvalReport, EvalError> {
    Tally::of(engine, &parse_rows(jsonl)?).report()
}

/// Reads a labelled file; errors name it.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, EvalError> {
    let src = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_rows(&src).map_err(|e| match e {
        EvalError::BadLine { line, reason } => EvalError::BadLine {
            line,
            reason: format!("{}: {reason}", path.display()),
        },
        other => other,
    })
}

/// One file's figures in a multi-file report.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub report: EvalReport,
}

/// Reads `paths`, evaluates, and prints the report (a table, or one JSON object). With
/// several files: one summary line per file, then the report over all of them.
pub fn run(
    engine: &Engine,
    paths: &[std::path::PathBuf],
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), EvalError> {
    let mut total = Tally::default();
    let mut files = Vec::new();
    for path in paths {
        let t = Tally::of(engine, &read_rows(path)?);
        total.add(&t);
        files.push(FileReport {
            file: path.display().to_string(),
            report: t.report()?,
        });
    }
    let r = total.report()?;
    if json {
        let body = if files.len() > 1 {
            serde_json::json!({ "total": r, "files": files })
        } else {
            serde_json::to_value(&r).map_err(|e| EvalError::Write(std::io::Error::other(e)))?
        };
        let v = serde_json::to_string_pretty(&body)
            .map_err(|e| EvalError::Write(std::io::Error::other(e)))?;
        writeln!(out, "{v}")?;
        return Ok(());
    }
    if files.len() > 1 {
        write_file_lines(&files, out)?;
        writeln!(out, "all files:")?;
    }
    write_report(&r, out)
}

/// One summary line per file: messages, deal-update F1, class accuracy, theme micro-F1.
pub fn write_file_lines(
    files: &[FileReport],
    out: &mut dyn std::io::Write,
) -> Result<(), EvalError> {
    writeln!(
        out,
        "{:<40}{:>9}{:>12}{:>10}{:>12}",
        "file", "messages", "deal F1", "class", "theme F1"
    )?;
    for f in files {
        writeln!(
            out,
            "{:<40}{:>9}{:>12.3}{:>10.3}{:>12.3}",
            f.file,
            f.report.messages,
            f.report.deal_update.f1,
            f.report.class_accuracy,
            f.report.theme_micro.f1
        )?;
    }
    Ok(())
}

/// Every message the engine reads differently from its label: the text, then the deal
/// decision and the themes it missed (`-`) or added (`+`).
pub fn write_errors(
    engine: &Engine,
    rows: &[Row],
    out: &mut dyn std::io::Write,
) -> Result<(), EvalError> {
    for row in rows {
        let a = engine.analyze(&row.text);
        let missed: Vec<&str> = row
            .themes
            .iter()
            .filter(|t| !a.has(**t))
            .map(|t| t.id())
            .collect();
        let added = a.themes.iter().any(|h| !row.themes.contains(&h.theme));
        if missed.is_empty() && !added && a.is_deal_update == row.is_deal_update {
            continue;
        }
        writeln!(out, "--- {}", row.text.replace('\n', " / "))?;
        if a.is_deal_update != row.is_deal_update {
            writeln!(
                out,
                "    deal update: expected {}, got {}",
                row.is_deal_update, a.is_deal_update
            )?;
        }
        for t in missed {
            writeln!(out, "    - {t}")?;
        }
        for h in a.themes.iter().filter(|h| !row.themes.contains(&h.theme)) {
            let words: Vec<&str> = h.evidence.iter().map(|e| e.text.as_str()).collect();
            writeln!(out, "    + {} {:?}", h.theme.id(), words)?;
        }
    }
    Ok(())
}

/// The full table of one report.
pub fn write_report(r: &EvalReport, out: &mut dyn std::io::Write) -> Result<(), EvalError> {
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
    fn several_files_get_one_line_each_and_extra_fields_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        std::fs::write(&a, "{\"text\":\"Globex: offered 20% off if they sign by Friday\",\"is_deal_update\":true,\"class\":\"seller_centric\",\"themes\":[\"discount_lever\",\"closing_push\"],\"industry\":\"retail\",\"style\":\"terse\",\"note\":\"x\"}\n").unwrap();
        std::fs::write(&b, "{\"text\":\"lunch at noon?\",\"is_deal_update\":false,\"class\":\"neutral\",\"themes\":[]}\n").unwrap();
        let mut out = Vec::new();
        run(&Engine::builtin(), &[a.clone(), b.clone()], false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&a.display().to_string()), "{text}");
        assert!(text.contains(&b.display().to_string()), "{text}");
        assert!(text.contains("all files:\nmessages: 2"), "{text}");
        assert!(text.contains("discount_lever"), "per-theme table: {text}");
        let mut out = Vec::new();
        run(&Engine::builtin(), &[a, b], true, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["total"]["messages"], 2);
        assert_eq!(v["files"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn dev_set_meets_targets() {
        let src = include_str!("../../../eval/dev.jsonl");
        let r = evaluate(&Engine::builtin(), src).unwrap();
        assert!(r.deal_update.f1 >= 0.90, "{:?}", r.deal_update);
        assert!(r.class_accuracy >= 0.75, "{}", r.class_accuracy);
        assert!(r.theme_micro.f1 >= 0.70, "{:?}", r.theme_micro);
    }
}
