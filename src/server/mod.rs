//! The edge: HTTP routes, request verification, error mapping, and Socket Mode (the
//! second transport, `socket_mode/`). Handlers are thin:
//! verify, parse, hand over to `bot/` or the inbox, answer.
//!
//! Order matters: routing comes first, so an unknown path is a 404 and a `GET` on a
//! `POST` route a 405 before any signature is checked; the Slack signature layer wraps
//! only the three Slack routes (`route_layer`). Every request gets an `X-Request-Id`
//! (kept or generated, echoed in the answer), a `request` span carrying it, and a count
//! in `cusp_http_requests_total` under its route template.

mod commands;
pub mod connections;
pub mod crm_signature;
pub mod error;
mod events;
pub mod hooks;
mod interactivity;
pub mod oauth;
pub mod socket_mode;
pub mod verify;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::telemetry::{self, REQUEST_ID_HEADER};
use error::ApiError;

pub fn router(state: AppState) -> Router {
    telemetry::metrics::install();
    let verified = || from_fn_with_state(state.clone(), verify::verify_slack_request);
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let slack = if state.signing_secrets.is_empty() {
        // Socket Mode without a signing secret: nothing here could verify a request.
        Router::new().route("/slack/{*rest}", any(http_slack_is_off))
    } else {
        Router::new()
            .route(
                "/slack/commands",
                post(commands::handle).route_layer(verified()),
            )
            .route(
                "/slack/events",
                post(events::handle).route_layer(verified()),
            )
            .route(
                "/slack/interactivity",
                post(interactivity::handle).route_layer(verified()),
            )
    };
    let install = match &state.install_flow {
        Some(flow) => oauth::oauth_router(
            oauth::OAuthState::new(
                state.store.clone(),
                flow.keyring.clone(),
                flow.client.clone(),
                &flow.authorize_url,
                flow.public_url.as_deref(),
            )
            .forgetting(state.workspaces.clone()),
        ),
        None => Router::new(),
    };
    Router::new()
        .merge(slack)
        .merge(install)
        .route("/hooks/deals", post(hooks::deals))
        .route("/hooks/hubspot", post(hooks::hubspot))
        .layer(DefaultBodyLimit::max(verify::MAX_BODY_BYTES))
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(count_request))
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::request_span))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// What this server is and where to look next; the install pages only when mounted.
async fn index(State(state): State<AppState>) -> String {
    let install = if state.install_flow.is_some() {
        "GET  /slack/install         the \"Add to Slack\" page (OAuth installs)\n\
         GET  /slack/oauth_redirect  where Slack sends the installer back\n"
    } else {
        ""
    };
    format!(
        "cusp {}: {}\n\n\
         GET  /healthz               liveness (always \"ok\")\n\
         GET  /readyz                readiness (the database answers and takes writes)\n\
         GET  /metrics               Prometheus metrics\n\
         POST /slack/events          Slack Events API (signed)\n\
         POST /slack/commands        Slack slash commands (signed)\n\
         POST /slack/interactivity   Slack buttons and modals (signed)\n\
         POST /hooks/deals           CRM deal updates (signed, when enabled)\n\
         POST /hooks/hubspot         HubSpot deal webhooks (signed, when enabled)\n\
         {install}",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_DESCRIPTION"),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("not found (GET / lists the routes)")
}

/// Prometheus' text exposition format. Not signed: it holds counts, never ids or text.
async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry::metrics::render(),
    )
        .into_response()
}

/// How long each readiness check may take. Orchestrators give the whole probe about a
/// second (Kubernetes' default `timeoutSeconds` is 1), and a write that waits longer than
/// this would also outlast the events route's ack budget once requests queue behind it.
const READY_CHECK_BUDGET: Duration = Duration::from_millis(400);

/// Ready when the database answers and takes writes: Slack's requests need both, and a
/// replica that can read but not write would acknowledge nothing (its events get 503).
async fn ready(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(READY_CHECK_BUDGET, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "not ready: database not reachable");
            return Err(ApiError::DatabaseUnreachable);
        }
        Err(_) => {
            tracing::warn!("not ready: database did not answer in time");
            return Err(ApiError::DatabaseUnreachable);
        }
    }
    match tokio::time::timeout(READY_CHECK_BUDGET, state.store.probe_write()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "not ready: database refuses writes");
            Err(ApiError::DatabaseNotWritable(err.write_refusal()))
        }
        Err(_) => {
            tracing::warn!("not ready: a write did not get through in time (database locked?)");
            Err(ApiError::DatabaseNotWritable(
                "a write did not get through in time (locked?)",
            ))
        }
    }
}

/// A known path with the wrong method; axum still sets `Allow` on the answer.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Counts every answer under its route template (not the raw path, which anyone can
/// vary), so the number of series stays fixed.
async fn count_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    telemetry::metrics::http_request(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Standard methods by name; anything else is `other` (a client can invent methods).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

async fn http_slack_is_off() -> ApiError {
    ApiError::NotFound(
        "Slack's HTTP endpoints are off: cusp receives Slack over Socket Mode \
         (set SLACK_SIGNING_SECRET to turn them on)",
    )
}
