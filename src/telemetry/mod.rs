//! The tracing subscriber: `RUST_LOG` filters (default `info`), `CUSP_LOG_FORMAT=json`
//! prints JSON lines, colours only on a terminal. Logs go to stderr so that
//! `cusp export` and `cusp reflect --json` keep stdout clean. Metrics are in [`metrics`].
//!
//! Every line logged while a request is handled carries the request's span:
//! `request_id` (from `X-Request-Id`, generated when absent) and `team_id`, recorded by
//! the handler with [`record_team`] once the verified body names the team. Worker lines
//! carry the `inbox` / `outbox` / `digest` span with the team and the event or row id.

pub mod metrics;

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ansi = std::io::stderr().is_terminal();
    // A second init (tests) is harmless, so its error is ignored.
    let _ =
        tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stderr, ansi));
}

/// The subscriber `init` installs, writing to `writer` (tests capture lines with it).
/// JSON lines list every enclosing span (`spans`), so the request id and team id of the
/// request span appear on lines logged inside a handler's own span.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
    }
}

/// The fields of the per-request span; `team_id` is filled in by [`record_team`].
pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        team_id = tracing::field::Empty,
    )
}

/// The header that carries a request's id (kept from the caller, or generated).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Records the Slack team on the current request span, once the handler knows it.
pub fn record_team(team_id: &str) {
    tracing::Span::current().record("team_id", team_id);
}
