//! `POST /hooks/deals`: signed deal updates from a CRM. Verify (`CUSP_WEBHOOK_SECRET`),
//! parse (400 naming the field), dedupe, then prompt the owner.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;

use super::crm_signature;
use super::error::ApiError;
use crate::app::AppState;
use crate::bot::crm::{CrmError, CrmOutcome, on_deal_update, parse_deal_update};

pub async fn deals(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(secret) = state.webhook_secret.as_ref() else {
        return Ok((
            StatusCode::NOT_FOUND,
            "CRM webhooks are not enabled: set CUSP_WEBHOOK_SECRET",
        )
            .into_response());
    };
    let timestamp = headers.get("x-cusp-timestamp").map(|v| v.as_bytes());
    let now = jiff::Timestamp::now();
    if let Err(err) = crm_signature::verify(
        secret.expose_secret().as_bytes(),
        timestamp,
        headers.get("x-cusp-signature").map(|v| v.as_bytes()),
        &body,
        now.as_second(),
    ) {
        tracing::warn!(reason = %err, body_len = body.len(), "rejected CRM webhook");
        return Err(ApiError::Unauthorized(err.to_string()));
    }
    let update = parse_deal_update(&body).map_err(ApiError::BadRequest)?;
    // A delivery id when the CRM sends one; otherwise deal, stage and signing time.
    let delivery_key = match headers.get("x-cusp-delivery").and_then(|v| v.to_str().ok()) {
        Some(id) if !id.trim().is_empty() => format!("delivery:{}", id.trim()),
        _ => format!(
            "deal:{}:{}:{}",
            update.deal_id,
            update.stage.to_lowercase(),
            String::from_utf8_lossy(timestamp.unwrap_or_default())
        ),
    };
    let span = tracing::info_span!("crm", deal_id = %update.deal_id, stage = %update.stage);
    let _entered = span.enter();
    match on_deal_update(&state, &update, &delivery_key, now.as_millisecond()).await {
        Ok(CrmOutcome::Queued) => {
            Ok((StatusCode::OK, Json(json!({"status": "queued"}))).into_response())
        }
        Ok(CrmOutcome::Duplicate) => {
            Ok((StatusCode::OK, Json(json!({"status": "duplicate"}))).into_response())
        }
        Ok(CrmOutcome::OwnerUnknown) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "owner_unknown"})),
        )
            .into_response()),
        Ok(CrmOutcome::OwnerOptedOut) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "owner_opted_out"})),
        )
            .into_response()),
        Err(CrmError::Store(err)) => {
            tracing::error!(error = %err, "could not store the deal update");
            Err(ApiError::Unavailable)
        }
        Err(CrmError::Slack(err)) => {
            tracing::warn!(error = %err, "Slack unavailable for a deal update");
            Err(ApiError::Unavailable)
        }
    }
}
