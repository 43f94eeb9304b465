//! `/cusp reflect <update>`: the analysis and questions, shown only to the person who asked.

use serde_json::Value;

use crate::engine::{Analysis, Question, QuestionContext, ThemeHit};
use crate::slack::{blocks, responses};
use crate::state::TeamContext;
use crate::store::{Effects, ObservationSource};

/// The ephemeral reply to a slash command.
#[derive(Debug, Clone, PartialEq)]
pub struct EphemeralReply {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl EphemeralReply {
    pub fn plain(text: String) -> EphemeralReply {
        EphemeralReply {
            blocks: vec![blocks::section(&text)],
            text,
        }
    }

    /// The response body Slack expects for an ephemeral slash-command answer.
    pub fn to_json(&self) -> Value {
        responses::ephemeral(&self.text, &self.blocks)
    }
}

pub const EMPTY_REFLECT_HINT: &str = "Add the update after the command, for example: \
     `/cusp reflect Acme's CFO wants a business case before the pilot`";

/// Who asked, so that the observation and the question history are theirs.
pub struct Asker<'a> {
    pub channel_id: &'a str,
    pub user_id: &'a str,
    /// Unique per invocation (Slack's `trigger_id`), so a repeated request logs once.
    pub request_id: &'a str,
}

/// Each database step of `/cusp reflect` gets this long, so the answer stays inside
/// Slack's 3 seconds even when the database is locked or slow.
const DB_BUDGET: std::time::Duration = std::time::Duration::from_millis(1_000);

/// `/cusp reflect <text>`: the analysis and questions (avoiding the person's recent
/// questions), and, when the text is a deal update, the observation logged unless the
/// person opted out. The person always gets an answer: when the database is unavailable
/// the questions ignore history and nothing is logged (we cannot tell whether they opted
/// out, so privacy wins).
pub async fn on_command(
    ctx: &TeamContext<'_>,
    asker: &Asker<'_>,
    text: &str,
    now_ms: i64,
) -> EphemeralReply {
    let team_id = ctx.team();
    let analysis = ctx.engine.analyze(text);
    let seed = seed_from(&[asker.user_id, asker.request_id]);
    let history = super::questions_for(ctx, team_id, asker.user_id, text, &analysis, None, seed);
    let questions = match tokio::time::timeout(DB_BUDGET, history).await {
        Ok(Ok(questions)) => questions,
        failed => {
            let reason = match failed {
                Ok(Err(err)) => err.to_string(),
                _ => "timed out".to_owned(),
            };
            tracing::warn!(%reason, "question history unavailable; choosing without it");
            ctx.engine.choose_questions(
                &analysis,
                &QuestionContext {
                    text,
                    seed,
                    ..QuestionContext::default()
                },
            )
        }
    };
    // Only deal updates are observations: the digest counts them as such. The write goes
    // through the store's group-commit writer and the answer waits for its commit, so an
    // answered reflection is a stored one; the opt-out is checked in that transaction.
    let saved = !analysis.is_deal_update || {
        let effects = effects(&analysis, asker);
        let write =
            ctx.store
                .record_effects_unless_opted_out(team_id, asker.user_id, &effects, now_ms);
        match tokio::time::timeout(DB_BUDGET, write).await {
            Ok(Ok(_)) => true,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "could not log the reflect observation");
                false
            }
            Err(_) => {
                // The write stays queued: it commits when the database answers, and the
                // writer logs it if it fails then.
                tracing::warn!("the reflect observation was not committed within the budget");
                false
            }
        }
    };
    let mut reply = render(&analysis, &questions);
    if !saved {
        reply.blocks.push(blocks::context(&[NOT_CONFIRMED]));
    }
    reply
}

/// Said under the reflection when its observation could not be confirmed as stored.
const NOT_CONFIRMED: &str =
    "_I couldn't confirm this reflection was saved for your weekly figures just now._";

/// What a reflection stores: the observation (themes, never the text).
fn effects(analysis: &Analysis, asker: &Asker<'_>) -> Effects {
    Effects {
        observation: Some(super::observation(
            analysis,
            ObservationSource::Command,
            asker.channel_id,
            asker.user_id,
            None,
            format!("command:{}", asker.request_id),
        )),
        ..Effects::default()
    }
}

/// A stable seed from strings (FNV-1a), so selection is reproducible for the same request.
pub fn seed_from(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

pub fn render(analysis: &Analysis, questions: &[Question]) -> EphemeralReply {
    let mut out = Vec::new();
    out.push(blocks::header("Your reflection"));
    if !analysis.is_deal_update {
        out.push(blocks::section(
            "This doesn't read like a deal update to me, but here is what I noticed.",
        ));
    }
    let themes = if analysis.themes.is_empty() {
        "*Themes:* none of the CUSP themes showed up in this one.".to_owned()
    } else {
        let lines: Vec<String> = analysis.themes.iter().map(theme_line).collect();
        format!("*Themes I noticed:*\n{}", lines.join("\n"))
    };
    out.push(blocks::section(&themes));
    if !questions.is_empty() {
        let lines: Vec<String> = questions
            .iter()
            .enumerate()
            .map(|(i, q)| format!("{}. {}", i + 1, blocks::escape_mrkdwn(&q.text)))
            .collect();
        out.push(blocks::section(&format!(
            "*Questions to consider:*\n{}",
            lines.join("\n")
        )));
    }
    let account = analysis
        .account
        .as_deref()
        .map(|a| format!(" · account: {}", blocks::escape_mrkdwn(a)))
        .unwrap_or_default();
    out.push(blocks::section(&format!(
        "_{} · customer-centric share {:.0}%{account}_",
        analysis.class.as_str().replace('_', "-"),
        analysis.score * 100.0
    )));
    let fallback = match questions.first() {
        Some(q) => format!("cusp reflection: {}", q.text),
        None => "cusp reflection".to_owned(),
    };
    EphemeralReply {
        text: fallback,
        blocks: blocks::message_blocks(out),
    }
}

/// `• customer concern (Care) — “burned from their last vendor”`: every theme is
/// explained by the words that triggered it.
fn theme_line(hit: &ThemeHit) -> String {
    let kind = match hit.theme.pillar() {
        Some(pillar) => pillar.as_str().to_owned(),
        None => "seller-centric".to_owned(),
    };
    let evidence: Vec<String> = hit
        .evidence
        .iter()
        .take(3)
        .map(|e| format!("“{}”", blocks::escape_mrkdwn(&e.text)))
        .collect();
    format!(
        "• {} ({kind}) — {}",
        hit.theme.id().replace('_', " "),
        evidence.join(", ")
    )
}
