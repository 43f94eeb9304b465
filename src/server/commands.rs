//! `POST /slack/commands`: answer `/cusp …` inline, well inside Slack's 3 seconds.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::verify::VerifiedBody;
use crate::app::AppState;
use crate::bot::commands::{Command, help_text, unknown_text};
use crate::bot::preferences::{Invoker, on_command};
use crate::bot::reflect::{self, Asker, EMPTY_REFLECT_HINT, EphemeralReply};
use crate::slack::payloads::{SlashCommand, is_ssl_check};

pub async fn handle(
    State(state): State<AppState>,
    VerifiedBody(body): VerifiedBody,
) -> Result<Response, ApiError> {
    if is_ssl_check(&body) {
        // Slack only checks our certificate; nothing is dispatched.
        return Ok(().into_response());
    }
    let command = SlashCommand::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let span = tracing::info_span!(
        "command",
        team_id = %command.team_id,
        channel_id = %command.channel_id,
        user_id = %command.user_id,
    );
    let _entered = span.enter();
    let reply = match Command::parse(&command.text) {
        Command::Help => EphemeralReply::plain(help_text()),
        Command::Unknown { given, suggestion } => {
            EphemeralReply::plain(unknown_text(&given, suggestion))
        }
        Command::Digest(rest) => {
            crate::bot::digest_settings::on_command(&state, &command, &rest, jiff::Timestamp::now())
                .await
        }
        Command::Reflect(text) if text.is_empty() => {
            EphemeralReply::plain(EMPTY_REFLECT_HINT.to_owned())
        }
        Command::Invalid { message, .. } => EphemeralReply::plain(message),
        Command::Reflect(text) => {
            let asker = Asker {
                channel_id: command.channel_id.as_str(),
                user_id: command.user_id.as_str(),
                request_id: &command.trigger_id,
            };
            let now = jiff::Timestamp::now().as_millisecond();
            reflect::on_command(&state, command.team_id.as_str(), &asker, &text, now).await
        }
        other => {
            let who = Invoker {
                team_id: command.team_id.as_str(),
                channel_id: command.channel_id.as_str(),
                user_id: command.user_id.as_str(),
            };
            let now = jiff::Timestamp::now().as_millisecond();
            match on_command(&state.store, &who, &other, now).await {
                Ok(Some(reply)) => reply,
                Ok(None) => EphemeralReply::plain(help_text()),
                Err(err) => {
                    tracing::error!(error = %err, "could not store a preference");
                    EphemeralReply::plain(
                        "Sorry, I couldn't save that just now. Please try again in a minute."
                            .into(),
                    )
                }
            }
        }
    };
    Ok(Json(reply.to_json()).into_response())
}
