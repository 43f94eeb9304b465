//! `POST /slack/interactivity`: buttons and modals. Verified like every Slack route;
//! an unknown or malformed payload is a 400 naming the reason.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::verify::VerifiedBody;
use crate::bot::interactions::{InteractionError, InteractionReply, on_interaction};
use crate::slack::payloads::InteractionPayload;
use crate::state::AppState;

const BUDGET: std::time::Duration = std::time::Duration::from_millis(2_500);

pub async fn handle(
    State(state): State<AppState>,
    VerifiedBody(body): VerifiedBody,
) -> Result<Response, ApiError> {
    let payload =
        InteractionPayload::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    match answer(&state, &payload).await? {
        InteractionReply::Ack => Ok(().into_response()),
        InteractionReply::Json(body) => Ok(Json(body).into_response()),
    }
}

/// Handles a parsed interactivity payload, whichever transport brought it. The reply is
/// the HTTP body, or the payload of a Socket Mode acknowledgement.
pub(crate) async fn answer(
    state: &AppState,
    payload: &InteractionPayload,
) -> Result<InteractionReply, ApiError> {
    let team = match &payload {
        InteractionPayload::BlockActions(p) => &p.team,
        InteractionPayload::ViewSubmission(p) => &p.team,
        InteractionPayload::ViewClosed(p) => &p.team,
    };
    crate::telemetry::record_team(team.id.as_str());
    let now = jiff::Timestamp::now().as_millisecond();
    // Slack shows the person an error after 3 seconds anyway; answering first keeps the
    // request from piling up behind a locked or saturated database.
    let work = async {
        let workspace = state
            .workspaces
            .resolve(team.enterprise_id.as_deref(), team.id.as_str())
            .await;
        match workspace {
            Ok(Some(workspace)) => {
                Some(on_interaction(&state.team(&workspace), payload, now).await)
            }
            Ok(None) => None,
            Err(err) => Some(Err(InteractionError::Unavailable(err.to_string()))),
        }
    };
    let Ok(outcome) = tokio::time::timeout(BUDGET, work).await else {
        tracing::error!(budget_ms = BUDGET.as_millis(), "interaction timed out");
        return Err(ApiError::Unavailable);
    };
    let Some(outcome) = outcome else {
        // A click in a workspace that removed cusp: acknowledged, nothing stored.
        tracing::warn!("interaction from a workspace with no installation of cusp; dropped");
        return Ok(InteractionReply::Ack);
    };
    match outcome {
        Ok(reply) => Ok(reply),
        Err(InteractionError::Unavailable(reason)) => {
            tracing::error!(error = %reason, "could not read the workspace's installation");
            Err(ApiError::Unavailable)
        }
        Err(InteractionError::BadRequest(reason)) => Err(ApiError::BadRequest(reason)),
        Err(InteractionError::Store(err)) => {
            tracing::error!(error = %err, "interaction could not be stored");
            Err(ApiError::Unavailable)
        }
    }
}
