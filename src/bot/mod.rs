//! Bot behaviour, one file per feature. Handlers and the inbox worker call in here;
//! nothing in `bot/` knows about HTTP.

pub mod commands;
pub mod digest;
pub mod digest_settings;
pub mod export;
pub mod on_message;
pub mod reflect;

use crate::engine::Engine;
use crate::slack::ids::{BotId, TeamId, UserId};
use crate::slack::payloads::{EventEnvelope, InnerEvent};
use crate::store::Effects;

/// Who cusp is in the workspace, learned from `auth.test` at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    pub team_id: TeamId,
    pub user_id: UserId,
    pub bot_id: Option<BotId>,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("stored event is not valid: {0}")]
    BadPayload(String),
}

/// Decides what a stored event causes. Pure apart from the engine: the inbox worker
/// stores the returned effects in the same transaction that marks the event done.
pub fn dispatch_event(
    engine: &Engine,
    identity: &BotIdentity,
    raw: &str,
) -> Result<Effects, DispatchError> {
    let envelope = EventEnvelope::parse(raw.as_bytes())
        .map_err(|e| DispatchError::BadPayload(e.to_string()))?;
    let EventEnvelope::EventCallback(callback) = envelope else {
        return Ok(Effects::default());
    };
    match &callback.event {
        InnerEvent::Message(message) if is_from_a_person(identity, message) => {
            Ok(on_message::on_message(engine, message))
        }
        _ => Ok(Effects::default()),
    }
}

/// A person's new message, not ours, not another bot's, not an edit or a join.
pub fn is_from_a_person(
    identity: &BotIdentity,
    message: &crate::slack::payloads::MessageEvent,
) -> bool {
    message.is_person_new_message(Some(&identity.user_id), identity.bot_id.as_ref())
}
