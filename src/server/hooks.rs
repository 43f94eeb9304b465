//! `POST /hooks/deals`: signed deal updates from a CRM. Verify (`CUSP_WEBHOOK_SECRET`),
//! parse (400 naming the field), dedupe, then prompt the owner.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use tracing::Instrument;

use super::crm_signature;
use super::error::ApiError;
use crate::bot::crm::{CrmError, fallback_delivery_key, on_deal_update, parse_deal_update};
use crate::state::{AppState, Workspaces};

pub async fn deals(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    deals_at(&state, &headers, &body, jiff::Timestamp::now()).await
}

/// `POST /hooks/deals` with the clock as a parameter, so tests can replay a CRM's retry
/// ten minutes later without waiting.
pub async fn deals_at(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Response, ApiError> {
    let Some(secret) = state.webhook_secret.as_ref() else {
        return Ok((
            StatusCode::NOT_FOUND,
            "CRM webhooks are not enabled: set CUSP_WEBHOOK_SECRET",
        )
            .into_response());
    };
    let timestamp = headers.get("x-cusp-timestamp").map(|v| v.as_bytes());
    if let Err(err) = crm_signature::verify(
        secret.expose_secret().as_bytes(),
        timestamp,
        headers.get("x-cusp-signature").map(|v| v.as_bytes()),
        body,
        now.as_second(),
    ) {
        crate::telemetry::metrics::signature_failure("crm", err.reason());
        tracing::warn!(reason = %err, body_len = body.len(), "rejected CRM webhook");
        return Err(ApiError::Unauthorized(err.to_string()));
    }
    let update = parse_deal_update(body).map_err(ApiError::BadRequest)?;
    let workspace = hook_workspace(state, update.team_id.as_deref(), "a `team_id` field").await?;
    let ctx = state.team(&workspace);
    // A delivery id when the CRM sends one; otherwise deal, stage and the UTC day it was
    // signed (see `fallback_delivery_key`). The timestamp was verified above, so it
    // parses; `now` is within five minutes of it anyway.
    let delivery_key = match headers.get("x-cusp-delivery").and_then(|v| v.to_str().ok()) {
        Some(id) if !id.trim().is_empty() => format!("delivery:{}", id.trim()),
        _ => {
            let signed_at = timestamp
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
                .unwrap_or(now);
            fallback_delivery_key(&update, signed_at)
        }
    };
    let span = tracing::info_span!("crm", deal_id = %update.deal_id, stage = %update.stage);
    async {
        match on_deal_update(&ctx, &update, &delivery_key, now.as_millisecond()).await {
            Ok(outcome) => {
                let status = if outcome.sends_a_message() {
                    StatusCode::OK
                } else {
                    StatusCode::ACCEPTED
                };
                Ok((status, Json(json!({"status": outcome.as_str()}))).into_response())
            }
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
    .instrument(span)
    .await
}

/// `POST /hooks/hubspot`: HubSpot's own deal webhooks (signature v3). Each deal-stage
/// change is looked up (deal name, owner's email) and handled like `/hooks/deals`.
pub async fn hubspot(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(hubspot) = state.hubspot.as_ref() else {
        return Ok((
            StatusCode::NOT_FOUND,
            "HubSpot webhooks are not enabled: set HUBSPOT_CLIENT_SECRET",
        )
            .into_response());
    };
    let path = uri
        .path_and_query()
        .map_or("/hooks/hubspot", |p| p.as_str());
    let full_uri = match &hubspot.public_url {
        Some(base) => format!("{base}{path}"),
        None => {
            let host = headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            format!("https://{host}{path}")
        }
    };
    let now = jiff::Timestamp::now();
    if let Err(err) = crate::hubspot::verify_v3(
        hubspot.client_secret.expose_secret().as_bytes(),
        "POST",
        &full_uri,
        &body,
        headers
            .get("x-hubspot-request-timestamp")
            .map(|v| v.as_bytes()),
        headers.get("x-hubspot-signature-v3").map(|v| v.as_bytes()),
        now.as_millisecond(),
    ) {
        crate::telemetry::metrics::signature_failure("hubspot", err.reason());
        tracing::warn!(reason = %err, body_len = body.len(), "rejected HubSpot webhook");
        return Err(ApiError::Unauthorized(err.to_string()));
    }
    let events = crate::hubspot::parse_events(&body).map_err(ApiError::BadRequest)?;
    // HubSpot signs the whole URL, so the `team` query parameter is authenticated too.
    let team = uri.query().and_then(|query| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find_map(|(name, value)| (name == "team").then_some(value))
    });
    let workspace =
        hook_workspace(&state, team.as_deref(), "`?team=T…` on the webhook URL").await?;
    let ctx = state.team(&workspace);
    let mut counts = std::collections::BTreeMap::<&str, u32>::new();
    let (mut held_back, mut sent) = (false, false);
    for event in &events {
        let Some(stage) = event.new_deal_stage() else {
            *counts.entry("ignored").or_default() += 1;
            continue;
        };
        let facts = hubspot.client.deal_facts(event.object_id).await.map_err(|err| {
            tracing::warn!(error = %err, deal_id = event.object_id, "could not read the deal from HubSpot");
            ApiError::Unavailable
        })?;
        let update = crate::bot::crm::DealUpdate {
            team_id: None,
            deal_id: event.object_id.to_string(),
            account: facts.name,
            stage: stage.to_owned(),
            previous_stage: None,
            owner_slack_user_id: None,
            owner_email: facts.owner_email,
            note: None,
        };
        let outcome = on_deal_update(
            &ctx,
            &update,
            &format!("hubspot:{}", event.event_id),
            now.as_millisecond(),
        )
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "HubSpot deal update not handled; HubSpot will retry");
            ApiError::Unavailable
        })?;
        *counts.entry(outcome.as_str()).or_default() += 1;
        held_back |= !outcome.sends_a_message();
        sent |= outcome.sends_a_message();
    }
    // As on /hooks/deals: 202 when deals were accepted but deliberately not messaged.
    let status = if held_back && !sent {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(counts))).into_response())
}

/// The workspace a CRM webhook is for: the one it names (`how` says where it is named),
/// or, in single-workspace mode, the only one.
async fn hook_workspace(
    state: &AppState,
    team: Option<&str>,
    how: &str,
) -> Result<std::sync::Arc<crate::state::Workspace>, ApiError> {
    let team = match (team, state.workspaces.as_ref()) {
        (Some(team), _) => team.to_owned(),
        (None, Workspaces::Single(workspace)) => workspace.team_id().to_owned(),
        (None, Workspaces::Installed(_)) => {
            return Err(ApiError::BadRequest(format!(
                "cusp serves several Slack workspaces: name the deal's workspace with {how}"
            )));
        }
    };
    crate::telemetry::record_team(&team);
    match state.workspaces.for_team(&team).await {
        Ok(Some(workspace)) => Ok(workspace),
        Ok(None) => Err(ApiError::NotServed(format!(
            "cusp is not installed in Slack workspace {team}"
        ))),
        Err(err) => {
            tracing::error!(error = %err, "could not read the workspace's installation");
            Err(ApiError::Unavailable)
        }
    }
}
