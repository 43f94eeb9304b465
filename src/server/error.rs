//! `ApiError`: the only place HTTP status codes are chosen for failures.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Tells Slack not to redeliver an event we will never accept.
pub const NO_RETRY: HeaderName = HeaderName::from_static("x-slack-no-retry");

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or bad signature, stale timestamp: 401 with a short plain reason.
    #[error("{0}")]
    Unauthorized(String),
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
    /// The database cannot take the event right now: 503, so Slack retries.
    #[error("temporarily unavailable")]
    Unavailable,
    /// `/readyz` when the database does not answer: 503.
    #[error("database unreachable")]
    DatabaseUnreachable,
    #[error("internal error")]
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotServed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable | ApiError::DatabaseUnreachable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response = (status, self.to_string()).into_response();
        if matches!(self, ApiError::BadRequest(_)) {
            response
                .headers_mut()
                .insert(NO_RETRY, HeaderValue::from_static("1"));
        }
        response
    }
}
