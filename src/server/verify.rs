//! One layer in front of every `/slack/*` route: read the raw body (at most 1 MiB),
//! check Slack's signature and timestamp, and only then let the request through with a
//! `Verified` marker that the handlers' extractor demands.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use super::error::ApiError;
use crate::slack::signature;
use crate::state::AppState;

/// Slack's payloads are small; anything above this is refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Proof that the signature layer ran; only this module can create it.
#[derive(Debug, Clone, Copy)]
pub struct Verified(());

pub async fn verify_slack_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let bytes = match read_body(&parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::warn!(path = %parts.uri.path(), reason = %err, "rejected Slack request");
            return err.into_response();
        }
    };
    let secrets: Vec<&[u8]> = state
        .signing_secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes())
        .collect();
    let now = jiff::Timestamp::now().as_second();
    let result = signature::verify(
        &secrets,
        parts
            .headers
            .get("x-slack-request-timestamp")
            .map(|v| v.as_bytes()),
        parts.headers.get("x-slack-signature").map(|v| v.as_bytes()),
        &bytes,
        now,
    );
    if let Err(err) = result {
        crate::telemetry::metrics::signature_failure("slack", err.reason());
        tracing::warn!(
            path = %parts.uri.path(),
            reason = %err,
            body_len = bytes.len(),
            signature_len = parts.headers.get("x-slack-signature").map_or(0, |v| v.len()),
            "rejected unsigned Slack request"
        );
        return ApiError::Unauthorized(err.to_string()).into_response();
    }
    parts.extensions.insert(Verified(()));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|err| {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>())
                || err.to_string().contains("length limit");
            if too_large {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("could not read the request body".into())
            }
        })
}

/// The raw body of a request the layer verified. A handler mounted without the layer
/// gets 401 instead of unverified bytes.
pub struct VerifiedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for VerifiedBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request.extensions().get::<Verified>().is_none() {
            return Err(ApiError::Unauthorized("request was not verified".into()));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::BadRequest("could not read the request body".into()))?;
        Ok(VerifiedBody(bytes))
    }
}
