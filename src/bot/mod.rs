//! Bot behaviour, one file per feature. Handlers and the inbox worker call in here;
//! nothing in `bot/` knows about HTTP.

pub mod commands;
pub mod corrections;
pub mod crm;
pub mod digest;
pub mod export;
pub mod interactions;
pub mod mention;
pub mod nudge;
pub mod preferences;
pub mod prompt_message;
pub mod reflect;
pub mod relevance;
pub mod uninstall;
pub mod why;

use crate::engine::{Analysis, Question, QuestionContext, Stage};
use crate::slack::web_api::SlackApiError;
use crate::state::TeamContext;
use crate::store::{Effects, NewObservation, ObservationSource, StoreError};
use relevance::CheckedEvent;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("stored event is not valid: {0}")]
    BadPayload(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Kept typed so the inbox worker can honour a rate limit's Retry-After.
    #[error("Slack call failed: {0}")]
    Slack(#[from] SlackApiError),
}

impl DispatchError {
    /// Whether trying the same event again cannot help: a payload we cannot read, or an
    /// answer from Slack that a retry would not change (`channel_not_found`, …).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::BadPayload(_) => true,
            Self::Slack(err) => !err.is_retryable(),
            Self::Store(_) => false,
        }
    }

    /// How long Slack asked us to wait before calling again, when it rate-limited us.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Slack(err) => err.retry_after(),
            Self::BadPayload(_) | Self::Store(_) => None,
        }
    }
}

/// Decides what a stored event causes. The inbox worker stores the returned effects in
/// the same transaction that marks the event done. `kind` and `payload` are the inbox
/// row's: the edge already decided the event is relevant (`relevance::classify`), so it is
/// only read back here.
pub async fn dispatch_event(
    ctx: &TeamContext<'_>,
    kind: &str,
    payload: &str,
    now_ms: i64,
) -> Result<Effects, DispatchError> {
    let event = CheckedEvent::from_inbox(&ctx.workspace.identity, kind, payload)
        .map_err(|e| DispatchError::BadPayload(e.to_string()))?;
    match event {
        Some(event) => dispatch_checked(ctx, &event, now_ms).await,
        // A row stored before the upgrade that the edge would now drop.
        None => Ok(Effects::default()),
    }
}

/// [`dispatch_event`] for an event already read back from its inbox row (the inbox
/// worker reads it first to learn its [`CheckedEvent::serial_keys`]).
pub async fn dispatch_checked(
    ctx: &TeamContext<'_>,
    event: &CheckedEvent,
    now_ms: i64,
) -> Result<Effects, DispatchError> {
    match event {
        CheckedEvent::Message(message) => Ok(nudge::on_message(ctx, message, now_ms).await?),
        CheckedEvent::AppMention(mention) => mention::on_mention(ctx, mention).await,
    }
}

/// How many of a person's latest questions selection avoids repeating.
pub const QUESTION_HISTORY: usize = 10;

/// Questions for `user` about `analysis` of `text`, avoiding their last
/// [`QUESTION_HISTORY`] questions and asking the team's unhelpful ones less.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn questions_for(
    ctx: &TeamContext<'_>,
    team: &str,
    user: &str,
    text: &str,
    analysis: &Analysis,
    stage: Option<Stage>,
    seed: u64,
) -> Result<Vec<Question>, StoreError> {
    let (recent, unhelpful) = ctx
        .store
        .question_history(team, user, QUESTION_HISTORY)
        .await?;
    let question_ctx = QuestionContext {
        text,
        recent: &recent,
        unhelpful: &unhelpful,
        stage,
        seed,
    };
    Ok(ctx.engine.choose_questions(analysis, &question_ctx))
}

/// What is stored about an analysed text: its themes, class and score, never the text.
pub(crate) fn observation(
    analysis: &Analysis,
    source: ObservationSource,
    channel_id: &str,
    user_id: &str,
    message_ts: Option<&str>,
    dedupe_key: String,
) -> NewObservation {
    NewObservation {
        channel_id: channel_id.to_owned(),
        user_id: user_id.to_owned(),
        message_ts: message_ts.map(str::to_owned),
        source,
        class: analysis.class,
        score: analysis.score,
        account: analysis.account.clone(),
        themes: analysis.themes.iter().map(|hit| hit.theme).collect(),
        dedupe_key,
        text: None,
    }
}
