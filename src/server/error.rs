//! `ApiError`: the only place HTTP status codes are chosen, for failures and for the one
//! success that is not a plain 200 (a webhook's 202, [`HookReply`]). Other modules pick a
//! variant; the OAuth pages ask [`ApiError::status`] for theirs.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A request not received and answered within `CUSP_HTTP_REQUEST_TIMEOUT_SECS`
/// (`connections.rs` answers it through tower-http's timeout layer).
pub const REQUEST_TIMED_OUT: StatusCode = StatusCode::REQUEST_TIMEOUT;

/// Tells Slack not to redeliver an event we will never accept.
pub const NO_RETRY: HeaderName = HeaderName::from_static("x-slack-no-retry");

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or bad signature, stale timestamp: 401 with a short plain reason.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this (someone cancelled an install): 403.
    #[error("{0}")]
    Forbidden(String),
    /// No such route, or a route that is switched off: 404 naming what turns it on.
    #[error("{0}")]
    NotFound(&'static str),
    /// The route exists but not for this method: 405 (the router adds `Allow`).
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than 1 MiB")]
    PayloadTooLarge,
    /// Signed but malformed: 400, and Slack is told not to retry.
    #[error("{0}")]
    BadRequest(String),
    /// Signed and well-formed, but for a workspace cusp does not serve: 422.
    #[error("{0}")]
    NotServed(String),
    /// A service cusp calls on the caller's behalf (Slack's OAuth) failed: 502.
    #[error("{0}")]
    Upstream(String),
    /// The database cannot take the request right now: 503, so the sender retries.
    #[error("temporarily unavailable")]
    Unavailable,
    /// Like `Unavailable`, with a `Retry-After` (whole seconds, rounded up): a service
    /// cusp needs (Slack) asked for that wait.
    #[error("temporarily unavailable: rate limited by Slack")]
    RetryAfter(std::time::Duration),
    /// `/readyz` when the database does not answer: 503.
    #[error("database unreachable")]
    DatabaseUnreachable,
    /// `/readyz` when the database answers but a write does not go through (locked,
    /// read-only, or not within the probe's time): 503 with the reason.
    #[error("database not writable: {0}")]
    DatabaseNotWritable(&'static str),
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotServed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable
            | ApiError::RetryAfter(_)
            | ApiError::DatabaseUnreachable
            | ApiError::DatabaseNotWritable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.to_string()).into_response();
        if matches!(self, ApiError::BadRequest(_)) {
            response
                .headers_mut()
                .insert(NO_RETRY, HeaderValue::from_static("1"));
        }
        if let ApiError::RetryAfter(wait) = self {
            let secs = wait.as_millis().div_ceil(1_000).max(1);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs as u64));
        }
        response
    }
}

/// A webhook's answer to a delivery it took: 200 when a message was (or, for a
/// duplicate, had been) queued; 202 when it was accepted and deliberately nothing was
/// sent (owner unknown, opted out, muted), which a retry would not change.
#[derive(Debug)]
pub struct HookReply {
    pub messaged: bool,
    pub body: serde_json::Value,
}

impl IntoResponse for HookReply {
    fn into_response(self) -> Response {
        let status = if self.messaged {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        (status, Json(self.body)).into_response()
    }
}
