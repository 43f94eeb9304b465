//! The HTTP edge: routes, request verification, error mapping. Handlers are thin:
//! verify, parse, hand over to `bot/` or the inbox, answer.

mod commands;
pub mod crm_signature;
pub mod error;
mod events;
pub mod hooks;
mod interactivity;
pub mod oauth;
pub mod verify;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    let slack = Router::new()
        .route("/slack/commands", post(commands::handle))
        .route("/slack/events", post(events::handle))
        .route("/slack/interactivity", post(interactivity::handle))
        .layer(from_fn_with_state(
            state.clone(),
            verify::verify_slack_request,
        ));
    Router::new()
        .merge(slack)
        .route("/hooks/deals", post(hooks::deals))
        .route("/hooks/hubspot", post(hooks::hubspot))
        .layer(DefaultBodyLimit::max(verify::MAX_BODY_BYTES))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Ready when the database answers.
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "database not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
