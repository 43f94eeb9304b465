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
use crate::bot::uninstall::{self, Removal, Removed};
use crate::slack::payloads::{EventCallback, EventEnvelope};
use crate::state::AppState;
use crate::store::NewInboxItem;
use crate::telemetry::metrics;

/// Everything done before the ack (a removal, reading the workspace's installation,
/// storing the event) must finish well inside Slack's 3-second deadline; past this we
/// answer 503 and let Slack redeliver.
const ACK_BUDGET: Duration = Duration::from_millis(2000);

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
    let work = async {
        if let Some(removal) = Removal::of(&callback.event) {
            // Before resolving: once handled, the team has no installation to resolve.
            return removed(state, &callback, removal).await;
        }
        let workspace = match state
            .workspaces
            .resolve(enterprise_id.as_deref(), &team_id)
            .await
        {
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
        let thread_key = event.thread_key();
        let item = NewInboxItem {
            team_id: &team_id,
            event_id: callback.event_id.as_str(),
            kind,
            payload: &payload,
            thread_key: Some(&thread_key),
        };
        let now = jiff::Timestamp::now().as_millisecond();
        match state.store.enqueue_inbox(&item, now).await {
            Ok(true) => {
                metrics::event_received(kind);
                state.inbox_wake.notify_one();
                Ok(Accepted::Done)
            }
            Ok(false) => {
                metrics::event_deduplicated();
                tracing::info!("duplicate delivery ignored");
                Ok(Accepted::Done)
            }
            Err(err) => {
                tracing::error!(error = %err, "could not store event; asking Slack to retry");
                Err(ApiError::Unavailable)
            }
        }
    };
    // Dropping `work` at the deadline is safe: each step is one statement, and a removal
    // runs in its own task (see `removed`).
    match tokio::time::timeout(ACK_BUDGET, work.instrument(span.clone())).await {
        Ok(accepted) => accepted,
        Err(_) => {
            span.in_scope(|| {
                tracing::error!(
                    budget_ms = ACK_BUDGET.as_millis(),
                    "the database did not answer in time; asking Slack to retry"
                );
            });
            Err(ApiError::Unavailable)
        }
    }
}

/// `app_uninstalled` / `tokens_revoked`: handled at once (tokens deleted, deliveries
/// stopped), acknowledged whether or not there was anything left to remove. A database
/// failure is a 503, so Slack sends the event again. The removal runs in its own task: if
/// the ack budget runs out first, it still finishes (its tokens deleted *and* its
/// deliveries stopped, never only the first), and Slack's retry finds it done.
async fn removed(
    state: &AppState,
    callback: &EventCallback,
    removal: Removal,
) -> Result<Accepted, ApiError> {
    let key = uninstall::installation_key(callback);
    // Slack's event time has whole seconds: take the end of that second, so an install
    // made in the same second (only ever seen in tests) still counts as before it.
    let event_time_ms = callback.event_time.saturating_mul(1000).saturating_add(999);
    let (store, workspaces) = (state.store.clone(), state.workspaces.clone());
    let task = tokio::spawn(
        async move { remove_and_log(&store, &workspaces, &key, removal, event_time_ms).await }
            .in_current_span(),
    );
    match task.await {
        Ok(true) => Ok(Accepted::Done),
        Ok(false) => Err(ApiError::Unavailable),
        Err(join) => {
            tracing::error!(error = %join, "the removal task failed; asking Slack to retry");
            Err(ApiError::Unavailable)
        }
    }
}

/// Removes `key` and logs what became of it; `false` when the database failed.
async fn remove_and_log(
    store: &crate::store::Store,
    workspaces: &crate::state::Workspaces,
    key: &crate::store::InstallationKey,
    removal: Removal,
    event_time_ms: i64,
) -> bool {
    let now = jiff::Timestamp::now().as_millisecond();
    match uninstall::remove(store, workspaces, key, event_time_ms, now).await {
        Ok(Removed::Removed { stopped }) => {
            metrics::installation_removed(removal.as_str());
            tracing::info!(
                installation = %key,
                event = removal.as_str(),
                stopped_deliveries = stopped,
                "cusp removed from a workspace: tokens deleted; its data goes in 30 days unless it reinstalls"
            );
        }
        Ok(Removed::Nothing) => {
            tracing::info!(installation = %key, event = removal.as_str(), "nothing left to remove");
        }
        Ok(Removed::SingleWorkspace) => {
            tracing::error!(
                event = removal.as_str(),
                "Slack says SLACK_BOT_TOKEN no longer works (cusp was removed from the \
                 workspace or its token revoked): reinstall the app and set the new token"
            );
        }
        Err(err) => {
            tracing::error!(error = %err, installation = %key, "could not remove the installation; asking Slack to retry");
            return false;
        }
    }
    true
}
