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

/// The `--json` shape, reused by the Slack and webhook code. Each question carries its
/// `reason`: the gap it aims at, the seller signal it answers, the situation, and the
/// message's words it uses (`used`: slot, text as asked, the message's words).
pub fn analysis_json(analysis: &Analysis, questions: &[Question]) -> Value {
    json!({
        "is_deal_update": analysis.is_deal_update,
        "account": analysis.account,
        "class": analysis.class.as_str(),
        "score": analysis.score,
        "deal_state": analysis.deal_state.map(|s| s.as_str()),
        "themes": analysis.themes.iter().map(|h| json!({
            "id": h.theme.id(),
            "pillar": h.theme.pillar().map(|p| p.as_str()),
            "evidence": h.evidence.iter().map(|e| json!({"text": e.text, "start": e.start, "end": e.end})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "situation": questions.first().map(|q| q.reason.situation.as_str()),
        "questions": questions.iter().map(|q| json!({
            "id": q.id,
            "pillar": q.pillar.as_str(),
            "text": q.text,
            "reason": {
                "gap": q.reason.gap.map(|t| t.id()),
                "signal": q.reason.signal.map(|t| t.id()),
                "situation": q.reason.situation.as_str(),
                "used": q.reason.used.iter().map(|u| json!({"slot": u.slot.as_str(), "text": u.text, "words": u.words})).collect::<Vec<_>>(),
            },
        })).collect::<Vec<_>>(),
    })
}

fn reflect_one(engine: &Engine, text: &str) -> (Analysis, Vec<Question>) {
    let a = engine.analyze(text);
    // No history at the command line: seed 0 keeps the output reproducible.
    let q = engine.choose_questions(
        &a,
        &QuestionContext {
            text,
            ..QuestionContext::default()
        },
    );
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
    if !a.is_deal_update {
        writeln!(
            out,
            "not a deal update: in a channel cusp would stay silent (no nudge, no reaction, nothing logged). The analysis anyway:"
        )?;
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
    if let Some(s) = a.deal_state {
        writeln!(out, "deal state: {}", s.as_str())?;
    }
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
    if let Some(first) = q.first() {
        writeln!(out, "situation: {}", first.reason.situation.as_str())?;
    }
    writeln!(out, "questions:")?;
    for q in &q {
        writeln!(out, "  - {}  ({}, {})", q.text, q.id, q.pillar.as_str())?;
        let mut why: Vec<String> = Vec::new();
        if let Some(g) = q.reason.gap {
            why.push(format!("gap {}", g.id()));
        }
        if let Some(s) = q.reason.signal {
            why.push(format!("answers {}", s.id()));
        }
        for u in &q.reason.used {
            why.push(format!("{} \"{}\"", u.slot.as_str(), u.text));
        }
        if !why.is_empty() {
            writeln!(out, "    why: {}", why.join(", "))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run_str(text: Option<&str>, mode: ReflectMode, input: &str) -> Result<String, ReflectError> {
        let mut out = Vec::new();
        let mut inp = input.as_bytes();
        run(
            &Engine::builtin(),
            text.map(str::to_string),
            mode,
            &mut inp,
            &mut out,
        )?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn json_shape_is_stable() {
        let text = "Globex: offered 20% off if they sign by Friday";
        let out = run_str(Some(text), ReflectMode::Json, "").unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["is_deal_update"], true);
        assert_eq!(v["account"], "Globex");
        assert_eq!(v["class"], "seller_centric");
        assert!(v["score"].is_number());
        let t = &v["themes"][0];
        assert!(t["id"].is_string() && t["pillar"].is_null());
        let e = &t["evidence"][0];
        let (s, en) = (
            e["start"].as_u64().unwrap() as usize,
            e["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(&text[s..en], e["text"].as_str().unwrap());
        let q = &v["questions"][0];
        assert!(q["id"].is_string() && q["pillar"].is_string() && q["text"].is_string());
    }

    #[test]
    fn a_message_that_is_not_a_deal_update_says_cusp_would_stay_silent() {
        let out = run_str(Some("lunch at noon? :taco:"), ReflectMode::Text, "").unwrap();
        assert!(
            out.starts_with("not a deal update: in a channel cusp would stay silent"),
            "{out}"
        );
        let out = run_str(Some("Acme signed :tada:"), ReflectMode::Text, "").unwrap();
        assert!(!out.contains("stay silent"), "{out}");
    }

    #[test]
    fn reads_stdin_and_rejects_empty_input() {
        let out = run_str(
            None,
            ReflectMode::Text,
            "their CFO is worried about downtime",
        )
        .unwrap();
        assert!(out.contains("customer_risk"), "{out}");
        assert!(matches!(
            run_str(None, ReflectMode::Json, "  \n"),
            Err(ReflectError::EmptyInput)
        ));
    }

    #[test]
    fn jsonl_in_order_and_names_bad_lines() {
        let input =
            "{\"text\":\"lunch?\",\"class\":\"neutral\"}\n\n{\"text\":\"Acme signed :tada:\"}\n";
        let out = run_str(None, ReflectMode::Jsonl, input).unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["account"], "Acme");
        let err = run_str(
            None,
            ReflectMode::Jsonl,
            "{\"text\":\"ok\"}\n{\"no_text\":1}\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, ReflectError::BadLine { line: 2, .. }),
            "{err}"
        );
    }
}
