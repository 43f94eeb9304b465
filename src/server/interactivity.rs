//! `POST /slack/interactivity`: buttons and modals. Verified like every Slack route;
//! a payload we cannot parse is a 400 naming the reason.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::verify::VerifiedBody;
use crate::app::AppState;
use crate::slack::payloads::InteractionPayload;

pub async fn handle(
    State(_state): State<AppState>,
    VerifiedBody(body): VerifiedBody,
) -> Result<Response, ApiError> {
    let payload =
        InteractionPayload::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let kind = match payload {
        InteractionPayload::BlockActions(_) => "block_actions",
        InteractionPayload::ViewSubmission(_) => "view_submission",
        InteractionPayload::ViewClosed(_) => "view_closed",
    };
    tracing::info!(kind, "interaction acknowledged");
    Ok(().into_response())
}
