//! `cusp reflect`: analyse a message and show the themes, evidence and questions.

use serde_json::{Value, json};

use crate::engine::{Analysis, Engine, Question, QuestionContext};

pub enum ReflectMode {
    /// Human-readable report.
    Text,
    /// One JSON object.
    Json,
    /// JSON Lines in (objects with a `text` field), one JSON object per line out.
    Jsonl,
}

#[derive(Debug, thiserror::Error)]
pub enum ReflectError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("input line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error("no text to reflect on: pass it as an argument or on standard input")]
    EmptyInput,
}

/// The `--json` shape, reused by the Slack and webhook code.
pub fn analysis_json(analysis: &Analysis, questions: &[Question]) -> Value {
    json!({
        "is_deal_update": analysis.is_deal_update,
        "account": analysis.account,
        "class": analysis.class.as_str(),
        "score": analysis.score,
        "themes": analysis.themes.iter().map(|h| json!({
            "id": h.theme.id(),
            "pillar": h.theme.pillar().map(|p| p.as_str()),
            "evidence": h.evidence.iter().map(|e| json!({"text": e.text, "start": e.start, "end": e.end})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "questions": questions.iter().map(|q| json!({"id": q.id, "pillar": q.pillar.as_str(), "text": q.text})).collect::<Vec<_>>(),
    })
}

fn reflect_one(engine: &Engine, text: &str) -> (Analysis, Vec<Question>) {
    let a = engine.analyze(text);
    // No history at the command line: seed 0 keeps the output reproducible.
    let q = engine.choose_questions(&a, &QuestionContext::default());
    (a, q)
}

pub fn run(
    engine: &Engine,
    text: Option<String>,
    mode: ReflectMode,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn std::io::Write,
) -> Result<(), ReflectError> {
    if let ReflectMode::Jsonl = mode {
        let mut line = String::new();
        let mut n = 0;
        loop {
            line.clear();
            if input.read_line(&mut line)? == 0 {
                break;
            }
            n += 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| ReflectError::BadLine {
                line: n,
                reason: e.to_string(),
            })?;
            let t = v
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| ReflectError::BadLine {
                    line: n,
                    reason: "missing string field `text`".into(),
                })?;
            let (a, q) = reflect_one(engine, t);
            writeln!(out, "{}", analysis_json(&a, &q))?;
        }
        return Ok(());
    }
    let text = match text {
        Some(t) => t,
        None => {
            let mut s = String::new();
            input.read_to_string(&mut s)?;
            s
        }
    };
    if text.trim().is_empty() {
        return Err(ReflectError::EmptyInput);
    }
    let (a, q) = reflect_one(engine, &text);
    if let ReflectMode::Json = mode {
        writeln!(out, "{}", analysis_json(&a, &q))?;
        return Ok(());
    }
    writeln!(
        out,
        "deal update: {}",
        if a.is_deal_update { "yes" } else { "no" }
    )?;
    if let Some(acc) = &a.account {
        writeln!(out, "account: {acc}")?;
    }
    writeln!(
        out,
        "class: {}  (customer-centric share {:.2})",
        a.class.as_str(),
        a.score
    )?;
    if a.themes.is_empty() {
        writeln!(out, "themes: none")?;
    } else {
        writeln!(out, "themes:")?;
    }
    for h in &a.themes {
        let pillar = h.theme.pillar().map_or("seller-centric", |p| p.as_str());
        let ev: Vec<String> = h
            .evidence
            .iter()
            .map(|e| format!("\"{}\" [{}..{}]", e.text, e.start, e.end))
            .collect();
        writeln!(out, "  {} ({pillar}): {}", h.theme.id(), ev.join(", "))?;
    }
    writeln!(out, "questions:")?;
    for q in &q {
        writeln!(out, "  - {}  ({}, {})", q.text, q.id, q.pillar.as_str())?;
    }
    Ok(())
}
