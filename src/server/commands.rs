//! `POST /slack/commands`: answer `/cusp …` inline, well inside Slack's 3 seconds.

use std::time::Duration;
use tracing::Instrument;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::verify::VerifiedBody;
use crate::bot::commands::{Command, help_text, unknown_text};
use crate::bot::preferences::{Invoker, on_command};
use crate::bot::reflect::{self, Asker, EMPTY_REFLECT_HINT, EphemeralReply};
use crate::slack::payloads::{SlashCommand, is_ssl_check};
use crate::state::AppState;
use tokio::time::error::Elapsed;

pub async fn handle(
    State(state): State<AppState>,
    VerifiedBody(body): VerifiedBody,
) -> Result<Response, ApiError> {
    if is_ssl_check(&body) {
        // Slack only checks our certificate; nothing is dispatched.
        return Ok(().into_response());
    }
    let command = SlashCommand::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(answer(&state, &command).await.to_json()).into_response())
}

/// The answer to a verified, parsed `/cusp …` command, whichever transport brought it
/// (the HTTP response body, or the payload of a Socket Mode acknowledgement).
pub(crate) async fn answer(state: &AppState, command: &SlashCommand) -> EphemeralReply {
    crate::telemetry::record_team(command.team_id.as_str());
    let span = tracing::info_span!(
        "command",
        team_id = %command.team_id,
        channel_id = %command.channel_id,
        user_id = %command.user_id,
    );
    async {
        let workspace = match within_budget(
            state
                .workspaces
                .resolve(command.enterprise_id.as_deref(), command.team_id.as_str()),
        )
        .await
        {
            Err(elapsed) => return busy(elapsed),
            Ok(Ok(Some(workspace))) => workspace,
            Ok(Ok(None)) => {
                tracing::warn!("command from a workspace with no installation of cusp");
                return EphemeralReply::plain(NOT_INSTALLED.to_owned());
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err, "could not read the workspace's installation");
                return EphemeralReply::plain(TRY_AGAIN.to_owned());
            }
        };
        let ctx = state.team(&workspace);
        match Command::parse(&command.text) {
            Command::Help => EphemeralReply::plain(help_text()),
            Command::Unknown { given, suggestion } => {
                EphemeralReply::plain(unknown_text(&given, suggestion))
            }
            Command::Digest(rest) => within_budget(crate::bot::digest_settings::on_command(
                &ctx,
                command,
                &rest,
                jiff::Timestamp::now(),
            ))
            .await
            .unwrap_or_else(busy),
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
                reflect::on_command(&ctx, &asker, &text, now).await
            }
            other => {
                let who = Invoker {
                    team_id: command.team_id.as_str(),
                    channel_id: command.channel_id.as_str(),
                    user_id: command.user_id.as_str(),
                };
                let now = jiff::Timestamp::now().as_millisecond();
                match within_budget(on_command(&state.store, &who, &other, now)).await {
                    Err(elapsed) => busy(elapsed),
                    Ok(Ok(Some(reply))) => reply,
                    Ok(Ok(None)) => EphemeralReply::plain(help_text()),
                    Ok(Err(err)) => {
                        tracing::error!(error = %err, "could not store a preference");
                        EphemeralReply::plain(TRY_AGAIN.to_owned())
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// The answer in a workspace that has not installed cusp (or removed it): nothing is
/// stored for it.
pub(crate) const NOT_INSTALLED: &str = "cusp isn't installed in this workspace, so I can't do anything here. \
     An admin can add it from the install page of your cusp server (/slack/install).";

const TRY_AGAIN: &str = "Sorry, I couldn't save that just now. Please try again in a minute.";

/// Slack shows an error if a command is not answered within 3 seconds; database work
/// (a locked SQLite file, a saturated pool) must not take the whole budget.
const COMMAND_BUDGET: Duration = Duration::from_millis(2_000);

async fn within_budget<T>(work: impl Future<Output = T>) -> Result<T, Elapsed> {
    tokio::time::timeout(COMMAND_BUDGET, work).await
}

/// The answer when the database did not answer in time. Nothing was changed: a
/// transaction dropped before its commit rolls back.
fn busy(_: Elapsed) -> EphemeralReply {
    tracing::error!(
        budget_ms = COMMAND_BUDGET.as_millis(),
        "command timed out on the database"
    );
    EphemeralReply::plain("Sorry, I couldn't do that in time. Please try again in a minute.".into())
}
