//! Slack's Socket Mode wire protocol (SLACK.md §2.6; https://api.slack.com/apis/socket-mode,
//! https://api.slack.com/apis/connections/socket-implement): the frames Slack sends over
//! the WebSocket, the acknowledgements we send back, and `apps.connections.open`. No
//! connection handling and no bot decisions: see `server::socket_mode` for those.
//!
//! Every frame is a JSON text message. Slack sends `hello` once connected, `disconnect`
//! before it closes a connection, and envelopes (`events_api`, `slash_commands`,
//! `interactive`) that carry the same payloads as the HTTP transport. Each envelope must
//! be acknowledged with `{"envelope_id": …}`, optionally with a `payload` (the body an
//! HTTP endpoint would have answered) when `accepts_response_payload` is true.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::web_api::{SlackApiError, SlackClient};

/// The Web API method that hands out a WebSocket URL for an app-level token.
pub const OPEN_METHOD: &str = "apps.connections.open";

/// `apps.connections.open` errors that no retry can fix: the app-level token is wrong,
/// revoked or lacks `connections:write`. Anything else (`internal_error`, 5xx, 429, a
/// network error) is worth trying again later.
pub const FATAL_OPEN_CODES: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "not_allowed_token_type",
    "team_disabled",
    "forbidden_team",
];

/// A temporary `wss://` URL from `apps.connections.open`. Its `ticket` query parameter
/// lets whoever holds it receive the app's events, so `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionUrl([REDACTED])")
    }
}

/// Asks Slack for a WebSocket URL. `client` must carry the app-level token (`xapp-…`),
/// which Slack only accepts in the `Authorization` header (as `SlackClient` sends it).
pub async fn open_connection(client: &SlackClient) -> Result<ConnectionUrl, SlackApiError> {
    let value = client.call(OPEN_METHOD, &Map::new()).await?;
    let url = value
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("wss://") || u.starts_with("ws://"))
        .ok_or_else(|| SlackApiError::Decode {
            method: OPEN_METHOD.to_owned(),
            reason: "missing WebSocket URL in field `url`".into(),
        })?;
    Ok(ConnectionUrl(url.to_owned()))
}

/// Whether an `apps.connections.open` failure means the token itself is refused.
pub fn is_fatal_open_error(err: &SlackApiError) -> bool {
    matches!(err, SlackApiError::Api { code, .. } if FATAL_OPEN_CODES.contains(&code.as_str()))
}

/// Why Slack is about to close a connection (`{"type":"disconnect","reason":…}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// About 10 seconds before a routine refresh.
    Warning,
    /// A routine refresh (every few hours): connect again.
    RefreshRequested,
    /// Socket Mode was turned off in the app's settings: reconnecting at once cannot help.
    LinkDisabled,
    /// A reason this code does not know; treated like a refresh.
    Other(String),
}

impl DisconnectReason {
    fn parse(reason: &str) -> DisconnectReason {
        match reason {
            "warning" => Self::Warning,
            "refresh_requested" => Self::RefreshRequested,
            "link_disabled" => Self::LinkDisabled,
            other => Self::Other(other.chars().take(40).collect()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Warning => "warning",
            Self::RefreshRequested => "refresh_requested",
            Self::LinkDisabled => "link_disabled",
            Self::Other(reason) => reason,
        }
    }
}

/// The id to echo back in an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct EnvelopeId(String);

impl EnvelopeId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an envelope carries, by its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// An Events API `event_callback`, exactly as it would be POSTed over HTTP.
    EventsApi,
    /// A slash command, its form fields as a JSON object of strings.
    SlashCommands,
    /// An interactivity payload (`block_actions`, `view_submission`, …).
    Interactive,
}

/// One envelope: the payload and what is needed to acknowledge it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub envelope_id: EnvelopeId,
    pub kind: EnvelopeKind,
    pub payload: Value,
    /// Whether Slack reads a `payload` in the acknowledgement.
    pub accepts_response_payload: bool,
    /// 0 on first delivery; Slack redelivers an envelope that was not acknowledged.
    pub retry_attempt: u32,
}

/// A frame from Slack.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Hello {
        num_connections: Option<u32>,
        /// Seconds until Slack expects to refresh this connection.
        approximate_connection_time: Option<u64>,
    },
    Disconnect(DisconnectReason),
    Envelope(Envelope),
    /// An envelope type we do not handle; acknowledged (if it has an id) and ignored.
    Other {
        kind: String,
        envelope_id: Option<EnvelopeId>,
    },
}

/// Why a frame could not be read. Never quotes the frame, which may hold user text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not JSON: {0}")]
    Json(String),
    #[error("frame has no string field `type`")]
    MissingType,
    #[error("`{0}` envelope has no `envelope_id`")]
    MissingEnvelopeId(&'static str),
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    envelope_id: Option<EnvelopeId>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    accepts_response_payload: bool,
    #[serde(default)]
    retry_attempt: Option<u32>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    num_connections: Option<u32>,
    #[serde(default)]
    debug_info: Option<DebugInfo>,
}

#[derive(Deserialize)]
struct DebugInfo {
    #[serde(default)]
    approximate_connection_time: Option<u64>,
}

impl Frame {
    pub fn parse(text: &str) -> Result<Frame, FrameError> {
        let raw: RawFrame =
            serde_json::from_str(text).map_err(|e| FrameError::Json(e.to_string()))?;
        let kind = raw.kind.ok_or(FrameError::MissingType)?;
        let envelope = |kind: EnvelopeKind, name: &'static str| {
            Ok(Frame::Envelope(Envelope {
                envelope_id: raw
                    .envelope_id
                    .clone()
                    .ok_or(FrameError::MissingEnvelopeId(name))?,
                kind,
                payload: raw.payload.clone(),
                accepts_response_payload: raw.accepts_response_payload,
                retry_attempt: raw.retry_attempt.unwrap_or(0),
            }))
        };
        match kind.as_str() {
            "hello" => Ok(Frame::Hello {
                num_connections: raw.num_connections,
                approximate_connection_time: raw
                    .debug_info
                    .and_then(|d| d.approximate_connection_time),
            }),
            "disconnect" => Ok(Frame::Disconnect(DisconnectReason::parse(
                raw.reason.as_deref().unwrap_or(""),
            ))),
            "events_api" => envelope(EnvelopeKind::EventsApi, "events_api"),
            "slash_commands" => envelope(EnvelopeKind::SlashCommands, "slash_commands"),
            "interactive" => envelope(EnvelopeKind::Interactive, "interactive"),
            other => Ok(Frame::Other {
                kind: other.chars().take(40).collect(),
                envelope_id: raw.envelope_id,
            }),
        }
    }
}

/// `{"envelope_id": …}`: received, nothing to say.
pub fn ack(envelope_id: &EnvelopeId) -> String {
    json!({ "envelope_id": envelope_id.as_str() }).to_string()
}

/// `{"envelope_id": …, "payload": …}`: received, and this is the answer (a command's
/// message, a modal's `response_action`).
pub fn ack_with_payload(envelope_id: &EnvelopeId, payload: &Value) -> String {
    json!({ "envelope_id": envelope_id.as_str(), "payload": payload }).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_disconnect_frames_parse() {
        let hello = r#"{"type":"hello","num_connections":1,"debug_info":{"host":"applink-1","approximate_connection_time":18060},"connection_info":{"app_id":"A1"}}"#;
        assert_eq!(
            Frame::parse(hello).unwrap(),
            Frame::Hello {
                num_connections: Some(1),
                approximate_connection_time: Some(18060)
            }
        );
        for (reason, expected) in [
            ("warning", DisconnectReason::Warning),
            ("refresh_requested", DisconnectReason::RefreshRequested),
            ("link_disabled", DisconnectReason::LinkDisabled),
            (
                "too_many_websockets",
                DisconnectReason::Other("too_many_websockets".into()),
            ),
        ] {
            let frame = format!(
                r#"{{"type":"disconnect","reason":"{reason}","debug_info":{{"host":"wss-111.slack.com"}}}}"#
            );
            assert_eq!(
                Frame::parse(&frame).unwrap(),
                Frame::Disconnect(expected.clone())
            );
            assert_eq!(expected.as_str(), reason);
        }
    }

    #[test]
    fn envelopes_keep_their_payload_and_id() {
        let frame = r#"{"envelope_id":"e-1","type":"slash_commands","accepts_response_payload":true,
            "payload":{"team_id":"T1","command":"/cusp","text":"help"}}"#;
        let Frame::Envelope(envelope) = Frame::parse(frame).unwrap() else {
            panic!("not an envelope");
        };
        assert_eq!(envelope.envelope_id.as_str(), "e-1");
        assert_eq!(envelope.kind, EnvelopeKind::SlashCommands);
        assert!(envelope.accepts_response_payload);
        assert_eq!(envelope.retry_attempt, 0);
        assert_eq!(envelope.payload["text"], "help");

        let retried = r#"{"envelope_id":"e-2","type":"events_api","retry_attempt":2,"retry_reason":"timeout","payload":{"type":"event_callback"}}"#;
        let Frame::Envelope(envelope) = Frame::parse(retried).unwrap() else {
            panic!("not an envelope");
        };
        assert_eq!(envelope.kind, EnvelopeKind::EventsApi);
        assert_eq!(envelope.retry_attempt, 2);
    }

    #[test]
    fn unknown_and_malformed_frames_are_told_apart() {
        assert_eq!(
            Frame::parse(r#"{"type":"something_new","envelope_id":"e-9"}"#).unwrap(),
            Frame::Other {
                kind: "something_new".into(),
                envelope_id: Some(EnvelopeId("e-9".into()))
            }
        );
        assert_eq!(
            Frame::parse(r#"{"type":"interactive","payload":{}}"#),
            Err(FrameError::MissingEnvelopeId("interactive"))
        );
        assert_eq!(
            Frame::parse(r#"{"no":"type"}"#),
            Err(FrameError::MissingType)
        );
        let err = Frame::parse("secret text, not json")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn acks_echo_the_envelope_id_and_carry_an_optional_payload() {
        let id = EnvelopeId("e-1".into());
        let plain: Value = serde_json::from_str(&ack(&id)).unwrap();
        assert_eq!(plain, json!({"envelope_id": "e-1"}));
        let answered: Value =
            serde_json::from_str(&ack_with_payload(&id, &json!({"response_action": "clear"})))
                .unwrap();
        assert_eq!(
            answered,
            json!({"envelope_id": "e-1", "payload": {"response_action": "clear"}})
        );
    }

    #[test]
    fn connection_urls_are_redacted_in_debug() {
        let url = ConnectionUrl("wss://wss.slack.com/link/?ticket=secret-ticket".into());
        assert!(!format!("{url:?}").contains("secret-ticket"));
    }

    #[test]
    fn only_token_problems_are_fatal() {
        let api = |code: &str| SlackApiError::Api {
            method: OPEN_METHOD.into(),
            code: code.into(),
        };
        assert!(is_fatal_open_error(&api("invalid_auth")));
        assert!(is_fatal_open_error(&api("missing_scope")));
        assert!(!is_fatal_open_error(&api("internal_error")));
        assert!(!is_fatal_open_error(&SlackApiError::RateLimited {
            method: OPEN_METHOD.into(),
            retry_after: std::time::Duration::from_secs(1)
        }));
    }
}
