//! `POST /slack/events`: answer `url_verification`; store every relevant event in the
//! inbox (keyed by `event_id`, under the kind decided here) and ack at once; the inbox
//! worker does the rest.

use std::time::Duration;
use tracing::Instrument;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::verify::VerifiedBody;
use crate::bot::relevance;
use crate::slack::payloads::EventEnvelope;
use crate::state::AppState;
use crate::store::NewInboxItem;
use crate::telemetry::metrics;

/// Storing the event must finish well inside Slack's 3-second deadline; past this we
/// answer 503 and let Slack redeliver.
const INBOX_WRITE_TIMEOUT: Duration = Duration::from_millis(2000);

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    VerifiedBody(body): VerifiedBody,
) -> Result<Response, ApiError> {
    let envelope = EventEnvelope::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let retry_num = headers
        .get("x-slack-retry-num")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0");
    match accept(&state, envelope, retry_num).await? {
        Accepted::Challenge(challenge) => Ok(challenge.into_response()),
        Accepted::Done => Ok(().into_response()),
    }
}

/// What became of a parsed Events API envelope.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// `url_verification`: echo this back (HTTP only; Socket Mode never sends it).
    Challenge(String),
    /// Stored in the inbox, a duplicate, or not for us: acknowledge it.
    Done,
}

/// Stores a relevant event in the inbox, whichever transport brought it: the kind that
/// `relevance::classify` decided and the fields cusp reads, never the envelope.
/// `Err(ApiError::Unavailable)` means the event was not stored and must not be
/// acknowledged, so Slack redelivers it.
pub(crate) async fn accept(
    state: &AppState,
    envelope: EventEnvelope,
    retry_num: &str,
) -> Result<Accepted, ApiError> {
    let callback = match envelope {
        EventEnvelope::UrlVerification { challenge } => return Ok(Accepted::Challenge(challenge)),
        EventEnvelope::EventCallback(callback) => *callback,
        other => {
            tracing::info!(envelope = ?other, "acknowledged event envelope without action");
            return Ok(Accepted::Done);
        }
    };
    let (enterprise_id, team_id) = callback.installation();
    let (enterprise_id, team_id) = (enterprise_id.map(str::to_owned), team_id.to_owned());
    crate::telemetry::record_team(&team_id);
    let span = tracing::info_span!(
        "event",
        team_id = %team_id,
        event_id = %callback.event_id,
        retry_num,
    );
    async {
        // Events about the installation itself (`app_uninstalled`, `tokens_revoked`) go
        // here, before the workspace is resolved: it may already be gone.
        let workspace = match state.workspaces.resolve(enterprise_id.as_deref(), &team_id).await {
            Ok(Some(workspace)) => workspace,
            Ok(None) => {
                tracing::warn!("event from a workspace with no installation of cusp; dropped");
                return Ok(Accepted::Done);
            }
            Err(err) => {
                tracing::error!(error = %err, "could not read the workspace's installation; asking Slack to retry");
                return Err(ApiError::Unavailable);
            }
        };
        let Some(event) = relevance::classify(&workspace.identity, callback.event) else {
            // Bots, edits, joins and unknown types never reach the database.
            return Ok(Accepted::Done);
        };
        let kind = event.kind().as_str();
        let payload = event.to_payload().map_err(|err| {
            tracing::error!(error = %err, "could not encode the event for the inbox");
            ApiError::Internal
        })?;
        let item = NewInboxItem {
            team_id: &team_id,
            event_id: callback.event_id.as_str(),
            kind,
            payload: &payload,
        };
        let now = jiff::Timestamp::now().as_millisecond();
        match tokio::time::timeout(INBOX_WRITE_TIMEOUT, state.store.enqueue_inbox(&item, now)).await
        {
            Ok(Ok(true)) => {
                metrics::event_received(kind);
                state.inbox_wake.notify_one();
                Ok(Accepted::Done)
            }
            Ok(Ok(false)) => {
                metrics::event_deduplicated();
                tracing::info!("duplicate delivery ignored");
                Ok(Accepted::Done)
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err, "could not store event; asking Slack to retry");
                Err(ApiError::Unavailable)
            }
            Err(_) => {
                tracing::error!("storing the event timed out; asking Slack to retry");
                Err(ApiError::Unavailable)
            }
        }
    }
    .instrument(span)
    .await
}
