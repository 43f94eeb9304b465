//! Buttons and modals: "Reflect" opens a modal with the prompt's questions for the person
//! they were for (a colleague gets a note, and a colleague's submission is refused); "Helpful" and
//! "Not now" are recorded against the prompt; "Mute this deal" mutes it for a week for the
//! person who clicked; "Why?" explains the reading (see `why`); "Not quite right" opens the
//! correction modal (see `corrections`); the opt-out confirmation deletes that person's data.

use serde_json::Value;

use super::prompt_message::{
    ACTION_FORGET_CANCEL, ACTION_FORGET_CONFIRM, ACTION_HELPFUL, ACTION_MUTE_DEAL, ACTION_NOT_NOW,
    ACTION_NOT_QUITE_RIGHT, ACTION_OPTOUT_CANCEL, ACTION_OPTOUT_CONFIRM, ACTION_REFLECT,
    ACTION_WHY, ephemeral_call,
};
use crate::slack::ids::{ChannelId, UserId};
use crate::slack::payloads::{BlockActions, InteractionPayload, ViewSubmission};
use crate::slack::{blocks, responses};
use crate::state::TeamContext;
use crate::store::{NewOutboxMessage, NewReflection, Prompt, StoreError};

pub const REFLECTION_CALLBACK: &str = "cusp_reflection";
const SHARE_BLOCK: &str = "share";
const SHARE_VALUE: &str = "share";
const DEAL_MUTE_MS: i64 = 7 * 24 * 3600 * 1000;
/// Why someone other than the person nudged cannot reflect on (or save answers to) a
/// prompt: the modal and its answers are that person's.
const NOT_YOUR_REFLECTION: &str = "These questions were for the person whose update they follow, so only they can reflect on them. `/cusp reflect` with your own update gets questions for you.";

/// What the interactivity endpoint answers Slack.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractionReply {
    /// 200 with an empty body (closes a submitted modal).
    Ack,
    /// 200 with this JSON body (`response_action` for modals).
    Json(Value),
}

#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    /// Unknown or malformed: answered 400 with this reason.
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workspace's installation could not be read: Slack should try again.
    #[error("installation unavailable: {0}")]
    Unavailable(String),
}

pub async fn on_interaction(
    ctx: &TeamContext<'_>,
    payload: &InteractionPayload,
    now_ms: i64,
) -> Result<InteractionReply, InteractionError> {
    match payload {
        InteractionPayload::BlockActions(actions) => on_block_actions(ctx, actions, now_ms).await,
        InteractionPayload::ViewSubmission(submission) => {
            on_view_submission(ctx, submission, now_ms).await
        }
        InteractionPayload::ViewClosed(_) => Ok(InteractionReply::Ack),
    }
}

async fn on_block_actions(
    ctx: &TeamContext<'_>,
    payload: &BlockActions,
    now_ms: i64,
) -> Result<InteractionReply, InteractionError> {
    let team = payload.team.id.as_str();
    let user = payload.user.id.as_str();
    let Some(action) = payload.actions.first() else {
        return Err(InteractionError::BadRequest(
            "block_actions without actions".into(),
        ));
    };
    let value = action.value.as_deref().unwrap_or("");
    let summary: String;
    let note = match action.action_id.as_str() {
        ACTION_REFLECT => {
            let prompt = find_prompt(ctx, team, value).await?;
            if prompt.user_id == user {
                return open_reflection(ctx, payload, &prompt, now_ms).await;
            }
            // A reflection belongs to the person the questions were for; a colleague
            // gets no modal that would then be refused.
            NOT_YOUR_REFLECTION
        }
        ACTION_HELPFUL | ACTION_NOT_NOW => {
            let prompt = find_prompt(ctx, team, value).await?;
            let helpful = action.action_id == ACTION_HELPFUL;
            if prompt.user_id != user {
                // One feedback per prompt, from the person it was for: a colleague's
                // click must not overwrite theirs.
                "Thanks! Feedback on these questions comes from the person they were for."
            } else {
                let feedback = if helpful { "helpful" } else { "not_now" };
                ctx.store
                    .record_feedback(team, prompt.id, feedback, now_ms)
                    .await?;
                if helpful {
                    "Thanks, glad it helped. I'll keep questions like these coming, sparingly."
                } else {
                    "No problem. I'll ask questions like these less often."
                }
            }
        }
        ACTION_WHY => {
            // Anyone who sees the nudge may ask; the words are already in the thread.
            let reading = super::why::parse_why(value).map_err(InteractionError::BadRequest)?;
            crate::telemetry::metrics::why_requested();
            summary = super::why::why_text(&reading);
            &summary
        }
        ACTION_NOT_QUITE_RIGHT => {
            match super::corrections::on_click(ctx, payload, value, now_ms).await? {
                Some(reply) => return Ok(reply),
                None => {
                    "Thanks! Corrections come from the person these questions were for: it's their message I read."
                }
            }
        }
        ACTION_MUTE_DEAL => {
            let prompt = find_prompt(ctx, team, value).await?;
            let deal = prompt
                .account
                .clone()
                .unwrap_or_else(|| prompt.thread_key.clone());
            ctx.store
                .mute_deal(team, user, &deal, now_ms + DEAL_MUTE_MS)
                .await?;
            "Muted this deal for you for a week."
        }
        ACTION_OPTOUT_CONFIRM => {
            if value != user {
                return Err(InteractionError::BadRequest(
                    "this opt-out belongs to someone else".into(),
                ));
            }
            let deleted = ctx.store.opt_out_and_forget(team, user, now_ms).await?;
            tracing::info!(
                user_id = user,
                deleted,
                "person opted out; their data was deleted"
            );
            "Done: you're opted out and what I had logged about you is deleted. `/cusp optin` undoes the opt-out."
        }
        ACTION_OPTOUT_CANCEL => "Nothing changed; you're still in.",
        ACTION_FORGET_CONFIRM => {
            if value != user {
                return Err(InteractionError::BadRequest(
                    "this request to forget belongs to someone else".into(),
                ));
            }
            let counts = ctx.store.forget_person(team, user).await?;
            tracing::info!(
                user_id = user,
                observations = counts.observations,
                prompts = counts.prompts,
                reflections = counts.reflections,
                "person asked to be forgotten; their data was deleted"
            );
            summary = super::preferences::forgotten_summary(&counts);
            &summary
        }
        ACTION_FORGET_CANCEL => "Nothing was deleted.",
        other => {
            return Err(InteractionError::BadRequest(format!(
                "unknown action `{}`",
                blocks::truncate(other, 40)
            )));
        }
    };
    if let Some(channel) = payload.channel.as_ref() {
        enqueue_ephemeral(
            ctx,
            team,
            &channel.id,
            &payload.user.id,
            note,
            &format!("ack:{}:{}", payload.trigger_id, action.action_id),
            now_ms,
        )
        .await?;
    }
    Ok(InteractionReply::Ack)
}

pub(super) async fn find_prompt(
    ctx: &TeamContext<'_>,
    team: &str,
    thread_key: &str,
) -> Result<Prompt, InteractionError> {
    match ctx.store.prompt_by_thread_key(team, thread_key).await {
        Ok(prompt) => Ok(prompt),
        Err(StoreError::NotFound) => Err(InteractionError::BadRequest("unknown prompt".into())),
        Err(err) => Err(err.into()),
    }
}

/// Opens the reflection modal now.
async fn open_reflection(
    ctx: &TeamContext<'_>,
    payload: &BlockActions,
    prompt: &Prompt,
    now_ms: i64,
) -> Result<InteractionReply, InteractionError> {
    let view = reflection_modal(ctx, prompt);
    open_modal(ctx, payload, view, "Reflect", now_ms).await
}

/// Opens a modal now: a `trigger_id` lives three seconds, so this call cannot wait in the
/// outbox. An expired trigger gets an ephemeral explanation naming `button` instead.
pub(super) async fn open_modal(
    ctx: &TeamContext<'_>,
    payload: &BlockActions,
    view: Value,
    button: &str,
    now_ms: i64,
) -> Result<InteractionReply, InteractionError> {
    match ctx.slack().open_view(&payload.trigger_id, view).await {
        Ok(_) => Ok(InteractionReply::Ack),
        Err(err) => {
            tracing::warn!(error = %err, button, "could not open a modal");
            if let Some(channel) = payload.channel.as_ref() {
                let text = if err.code() == Some("expired_trigger_id") {
                    format!(
                        "That button took too long to reach me, so Slack closed the window. Click *{button}* again."
                    )
                } else {
                    format!(
                        "I couldn't open the window just now. Please click *{button}* again in a moment."
                    )
                };
                let key = format!("modal-failed:{}", payload.trigger_id);
                enqueue_ephemeral(
                    ctx,
                    payload.team.id.as_str(),
                    &channel.id,
                    &payload.user.id,
                    &text,
                    &key,
                    now_ms,
                )
                .await?;
            }
            Ok(InteractionReply::Ack)
        }
    }
}

fn reflection_modal(ctx: &TeamContext<'_>, prompt: &Prompt) -> Value {
    let bank = ctx.engine.question_bank();
    let mut out = vec![blocks::section(
        "Take a minute with these. What you write is yours: only you see it, unless you share it with the team digest.",
    )];
    for (i, id) in prompt
        .question_ids
        .split(',')
        .filter(|id| !id.is_empty())
        .enumerate()
    {
        let text = bank
            .iter()
            .find(|q| q.id == id)
            .map_or("Your thoughts", |q| q.text.as_str());
        out.push(blocks::optional(blocks::plain_input(
            &format!("q{i}"),
            "answer",
            text,
            true,
        )));
    }
    out.push(blocks::checkboxes(
        SHARE_BLOCK,
        SHARE_BLOCK,
        "Sharing",
        &[("Share my reflection with the team digest", SHARE_VALUE)],
        true,
    ));
    blocks::modal(
        REFLECTION_CALLBACK,
        "Reflect",
        "Save",
        "Cancel",
        out,
        &prompt.thread_key,
    )
}

async fn on_view_submission(
    ctx: &TeamContext<'_>,
    submission: &ViewSubmission,
    now_ms: i64,
) -> Result<InteractionReply, InteractionError> {
    if submission.view.callback_id == super::corrections::CORRECTION_CALLBACK {
        return super::corrections::on_submission(ctx, submission, now_ms).await;
    }
    if submission.view.callback_id != REFLECTION_CALLBACK {
        return Err(InteractionError::BadRequest(format!(
            "unknown view `{}`",
            blocks::truncate(&submission.view.callback_id, 40)
        )));
    }
    if !is_view_id(&submission.view.id) {
        return Err(InteractionError::BadRequest(
            "view_submission without a valid view id".into(),
        ));
    }
    let team = submission.team.id.as_str();
    let prompt = find_prompt(ctx, team, &submission.view.private_metadata).await?;
    if prompt.user_id != submission.user.id.as_str() {
        return Ok(InteractionReply::Json(responses::view_error(
            "q0",
            NOT_YOUR_REFLECTION,
        )));
    }
    let question_ids: Vec<&str> = prompt
        .question_ids
        .split(',')
        .filter(|id| !id.is_empty())
        .collect();
    let answers: Vec<Value> = question_ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let text = submission
                .view
                .state
                .text_value(&format!("q{i}"), "answer")?
                .trim();
            (!text.is_empty()).then(|| Value::from_iter([("question_id", *id), ("answer", text)]))
        })
        .collect();
    if answers.is_empty() {
        return Ok(InteractionReply::Json(responses::view_error(
            "q0",
            "Write a line or two for at least one question, or press Cancel.",
        )));
    }
    if ctx
        .store
        .user_prefs(team, submission.user.id.as_str())
        .await?
        .opted_out
    {
        return Ok(InteractionReply::Json(responses::view_error(
            "q0",
            "You have opted out of cusp, so I keep nothing you write. `/cusp optin` to save reflections again.",
        )));
    }
    let shared = submission
        .view
        .state
        .selected_values(SHARE_BLOCK, SHARE_BLOCK)
        .contains(&SHARE_VALUE);
    let answers = Value::Array(answers);
    let reflection = NewReflection {
        prompt_id: prompt.id,
        user_id: submission.user.id.as_str(),
        answers: &answers,
        shared,
    };
    // Slack retries a submission it got no answer to, and a captured one can be replayed
    // inside the signature's window: the modal's id makes them all one reflection, and
    // each is answered the same way.
    let stored = ctx
        .store
        .save_reflection_once(team, &submission.view.id, &reflection, now_ms)
        .await?;
    if !stored {
        tracing::info!(view_id = %submission.view.id, "reflection already saved from this modal");
    }
    Ok(InteractionReply::Ack)
}

/// Slack's view ids are short and alphanumeric (`V0123ABCD`); the id is stored as the
/// reflection's dedupe key, so nothing longer or stranger is accepted.
fn is_view_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

async fn enqueue_ephemeral(
    ctx: &TeamContext<'_>,
    team: &str,
    channel: &ChannelId,
    user: &UserId,
    text: &str,
    key: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let message = NewOutboxMessage::new(key, ephemeral_call(channel, user, text));
    ctx.store.enqueue_outbox(team, &[message], now_ms).await?;
    ctx.outbox_wake.notify_one();
    Ok(())
}
