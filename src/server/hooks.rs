//! `POST /hooks/deals` and `POST /hooks/hubspot`: signed deal updates from a CRM. Each
//! handler verifies, parses (400 naming the field), calls one `bot::crm` function and
//! maps its outcome or error through `ApiError`/`HookReply`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use secrecy::ExposeSecret;
use serde_json::json;
use tracing::Instrument;

use super::crm_signature;
use super::error::{ApiError, HookReply};
use crate::bot::crm::{CrmError, Delivery, on_crm_delivery, on_hubspot_events, parse_deal_update};
use crate::state::{AppState, Workspace, Workspaces};

pub async fn deals(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<HookReply, ApiError> {
    deals_at(&state, &headers, &body, jiff::Timestamp::now()).await
}

/// `POST /hooks/deals` with the clock as a parameter, so tests can replay a CRM's retry
/// ten minutes later without waiting.
pub async fn deals_at(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<HookReply, ApiError> {
    let Some(secret) = state.webhook_secret.as_ref() else {
        return Err(ApiError::NotFound(
            "CRM webhooks are not enabled: set CUSP_WEBHOOK_SECRET",
        ));
    };
    let verified = crm_signature::verify(
        secret.expose_secret().as_bytes(),
        headers.get("x-cusp-timestamp").map(|v| v.as_bytes()),
        headers.get("x-cusp-signature").map(|v| v.as_bytes()),
        body,
        now.as_second(),
    )
    .map_err(|err| {
        crate::telemetry::metrics::signature_failure("crm", err.reason());
        tracing::warn!(reason = %err, body_len = body.len(), "rejected CRM webhook");
        ApiError::Unauthorized(err.to_string())
    })?;
    // Verified, so within five minutes of `now`; `now` stands in only if it cannot be a
    // time at all.
    let signed_at = jiff::Timestamp::from_second(verified.signed_at).unwrap_or(now);
    let update = parse_deal_update(body).map_err(ApiError::BadRequest)?;
    let workspace = hook_workspace(state, update.team_id.as_deref(), "a `team_id` field").await?;
    let delivery_id = headers.get("x-cusp-delivery").and_then(|v| v.to_str().ok());
    let span = tracing::info_span!("crm", deal_id = %update.deal_id, stage = %update.stage);
    let delivery = Delivery {
        id: delivery_id,
        signed_at,
        mac: &verified.mac,
    };
    let outcome = on_crm_delivery(
        &state.team(&workspace),
        &update,
        &delivery,
        now.as_millisecond(),
    )
    .instrument(span)
    .await
    .map_err(retry_later)?;
    Ok(HookReply {
        messaged: outcome.sends_a_message(),
        body: json!({"status": outcome.as_str()}),
    })
}

/// `POST /hooks/hubspot`: HubSpot's own deal webhooks (signature v3). Each deal-stage
/// change is looked up (deal name, owner's email) and handled like `/hooks/deals`.
pub async fn hubspot(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<HookReply, ApiError> {
    let Some(hubspot) = state.hubspot.as_ref() else {
        return Err(ApiError::NotFound(
            "HubSpot webhooks are not enabled: set HUBSPOT_CLIENT_SECRET",
        ));
    };
    // HubSpot signs the full URL it called.
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
    crate::hubspot::verify_v3(
        hubspot.client_secret.expose_secret().as_bytes(),
        "POST",
        &full_uri,
        &body,
        headers
            .get("x-hubspot-request-timestamp")
            .map(|v| v.as_bytes()),
        headers.get("x-hubspot-signature-v3").map(|v| v.as_bytes()),
        now.as_millisecond(),
    )
    .map_err(|err| {
        crate::telemetry::metrics::signature_failure("hubspot", err.reason());
        tracing::warn!(reason = %err, body_len = body.len(), "rejected HubSpot webhook");
        ApiError::Unauthorized(err.to_string())
    })?;
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
    let outcome = on_hubspot_events(
        &state.team(&workspace),
        &hubspot.client,
        &events,
        now.as_millisecond(),
    )
    .await
    .map_err(retry_later)?;
    Ok(HookReply {
        messaged: outcome.sends_a_message(),
        body: json!(outcome.counts),
    })
}

/// Every `CrmError` means nothing was stored for the delivery and a retry may work.
fn retry_later(err: CrmError) -> ApiError {
    match &err {
        CrmError::Store(_) => tracing::error!(error = %err, "could not store the deal update"),
        CrmError::Slack { .. } | CrmError::HubSpot { .. } => {
            tracing::warn!(error = %err, "deal update not handled; the CRM will retry");
        }
    }
    match err {
        // Slack rate-limited the call: say when a retry can work.
        CrmError::Slack {
            retry_after: Some(wait),
            ..
        } => ApiError::RetryAfter(wait),
        _ => ApiError::Unavailable,
    }
}

/// The workspace a CRM webhook is for: the one it names (`how` says where it is named),
/// or, in single-workspace mode, the only one.
async fn hook_workspace(
    state: &AppState,
    team: Option<&str>,
    how: &str,
) -> Result<std::sync::Arc<Workspace>, ApiError> {
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
