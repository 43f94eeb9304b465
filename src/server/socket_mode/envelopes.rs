//! What each Socket Mode envelope does: the same functions the HTTP handlers call after
//! verify + parse (`events::accept`, `commands::answer`, `interactivity::answer`), with
//! the answer turned into an acknowledgement instead of an HTTP response.

use crate::bot::interactions::InteractionReply;
use crate::server::error::ApiError;
use crate::server::{commands, events, interactivity};
use crate::slack::payloads::{EventEnvelope, InteractionPayload, SlashCommand};
use crate::slack::socket_mode::{Envelope, EnvelopeKind, ack, ack_with_payload};
use crate::state::AppState;

/// The acknowledgement to send for `envelope`, or `None` to send none: the work could
/// not be recorded (the database is unavailable), and, exactly as an HTTP 503 would,
/// the missing ack makes Slack deliver the envelope again.
///
/// A payload we cannot read is acknowledged (HTTP answers it 400 with
/// `x-slack-no-retry`): sending it again would not make it readable.
pub(super) async fn answer(state: &AppState, envelope: &Envelope) -> Option<String> {
    let id = &envelope.envelope_id;
    let outcome = match envelope.kind {
        EnvelopeKind::EventsApi => on_event(state, envelope).await.map(|()| ack(id)),
        EnvelopeKind::SlashCommands => match SlashCommand::from_value(envelope.payload.clone()) {
            Ok(command) => {
                let reply = commands::answer(state, &command).await;
                Ok(ack_with_payload(id, &reply.to_json()))
            }
            Err(err) => Err(ApiError::BadRequest(err.to_string())),
        },
        EnvelopeKind::Interactive => {
            match InteractionPayload::from_value(envelope.payload.clone()) {
                Ok(payload) => match interactivity::answer(state, &payload).await {
                    Ok(InteractionReply::Ack) => Ok(ack(id)),
                    Ok(InteractionReply::Json(body)) => Ok(ack_with_payload(id, &body)),
                    Err(err) => Err(err),
                },
                Err(err) => Err(ApiError::BadRequest(err.to_string())),
            }
        }
    };
    match outcome {
        Ok(answer) => Some(answer),
        Err(ApiError::BadRequest(reason)) => {
            tracing::warn!(kind = ?envelope.kind, %reason, "malformed Socket Mode payload acknowledged without action");
            Some(ack(id))
        }
        Err(err) => {
            tracing::warn!(kind = ?envelope.kind, error = %err, "envelope not acknowledged; Slack will deliver it again");
            None
        }
    }
}

async fn on_event(state: &AppState, envelope: &Envelope) -> Result<(), ApiError> {
    let parsed = EventEnvelope::from_value(envelope.payload.clone())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let retry = envelope.retry_attempt.to_string();
    events::accept(state, parsed, &retry).await.map(|_| ())
}
