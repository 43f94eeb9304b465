//! A typed client for Slack's Web API.
//!
//! The client makes exactly one HTTP attempt per call and **never retries**: the outbox
//! worker owns the retry policy (back-off, Retry-After, reconciliation after an
//! ambiguous failure), and retrying here too would multiply attempts and could double
//! post. Callers branch on [`SlackApiError::is_retryable`] and
//! [`SlackApiError::retry_after`].
//!
//! The base URL is injected so tests point it at FakeSlack; the token never appears in
//! `Debug` output, errors or logs.
//!
//! A client given [`MethodHolds`] ([`SlackClient::with_holds`]) does not call a method
//! that Slack rate-limited for the workspace until the wait is over ([`SlackApiError::Held`],
//! no request made), and records every rate limit it receives, so that the outbox, the
//! calls that cannot wait and other replicas all honour one `Retry-After`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::calls::HistoryMessage;
use super::holds::MethodHolds;
use super::ids::{BotId, ChannelId, TeamId, UserId};

/// Wait used when Slack rate-limits without a usable `Retry-After` header.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Production base URL; tests and staging inject their own.
pub const SLACK_API_BASE_URL: &str = "https://slack.com/api";

/// Slack error codes that mean "Slack had a problem, the same call may succeed later".
/// Everything else (`channel_not_found`, `not_in_channel`, `invalid_auth`, `is_archived`,
/// `msg_too_long`, `invalid_blocks`, …) is permanent: retrying cannot fix it.
pub const RETRYABLE_API_CODES: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
];

/// Slack error codes that mean "this person cannot get a DM from the app": no such user,
/// deactivated, hidden from the app, a bot, or an external person the app shares no
/// channel with. `conversations.open` documents `user_not_found`, `user_disabled`,
/// `user_not_visible` and `invalid_user_combination`; `cannot_dm_bot` is Slack's answer
/// for a bot user. Permanent for that user: asking again cannot help, unlike
/// configuration errors (`missing_scope`, `invalid_auth`) that an admin can fix.
pub const UNREACHABLE_USER_CODES: &[&str] = &[
    "user_not_found",
    "users_not_found",
    "user_disabled",
    "user_not_visible",
    "cannot_dm_bot",
    "invalid_user_combination",
];

#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    #[error("{method}: rate limited, retry after {retry_after:?}")]
    RateLimited {
        method: String,
        retry_after: Duration,
    },
    /// Not called: Slack rate-limited this method for the workspace earlier and the
    /// wait is not over (no request was made).
    #[error("{method}: not called, held {retry_after:?} more after Slack's rate limit")]
    Held {
        method: String,
        retry_after: Duration,
    },
    #[error("{method}: Slack answered error `{code}`")]
    Api { method: String, code: String },
    #[error("{method}: HTTP status {status}")]
    Http { method: String, status: u16 },
    #[error("{method}: timed out")]
    Timeout { method: String },
    #[error("{method}: transport error")]
    Transport {
        method: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method}: unexpected response: {reason}")]
    Decode { method: String, reason: String },
    #[error("invalid Slack client configuration: {0}")]
    InvalidConfig(String),
}

impl SlackApiError {
    /// Whether the same call may succeed if repeated later. Note that a retryable failure
    /// of a write (e.g. a timeout on `chat.postMessage`) may still have taken effect;
    /// the outbox reconciles before re-posting.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Held { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 408,
            // Builder/redirect errors are our configuration; connect, reset and body
            // errors are the network's and may clear up.
            Self::Transport { source, .. } => !(source.is_builder() || source.is_redirect()),
            Self::Api { code, .. } => RETRYABLE_API_CODES.contains(&code.as_str()),
            // A 2xx with a body we can't read is not something a retry is likely to fix,
            // and a write may already have happened.
            Self::Decode { .. } | Self::InvalidConfig(_) => false,
        }
    }

    /// Slack said the user in the call cannot be reached (see [`UNREACHABLE_USER_CODES`]).
    pub fn is_unreachable_user(&self) -> bool {
        matches!(self, Self::Api { code, .. } if UNREACHABLE_USER_CODES.contains(&code.as_str()))
    }

    /// How long Slack asked us to wait, for rate limits.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Held { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// Slack's error code, e.g. `channel_not_found` (`ratelimited` for rate limits).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::RateLimited { .. } | Self::Held { .. } => Some("ratelimited"),
            _ => None,
        }
    }

    /// The Web API method that failed, if the error came from a call.
    pub fn method(&self) -> Option<&str> {
        match self {
            Self::RateLimited { method, .. }
            | Self::Held { method, .. }
            | Self::Api { method, .. }
            | Self::Http { method, .. }
            | Self::Timeout { method }
            | Self::Transport { method, .. }
            | Self::Decode { method, .. } => Some(method),
            Self::InvalidConfig(_) => None,
        }
    }
}

/// Who our token belongs to (`auth.test`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthTest {
    pub team_id: TeamId,
    /// The bot *user*; messages we post carry it as `user`.
    pub user_id: UserId,
    /// The bot integration; messages we post carry it as `bot_id`.
    #[serde(default)]
    pub bot_id: Option<BotId>,
}

pub struct SlackClient {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
    /// The workspace's rate-limit holds, asked before and told after each call.
    holds: Option<Arc<dyn MethodHolds>>,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient")
            .field("base_url", &self.base_url)
            .field("token", &"[REDACTED]")
            .field("holds", &self.holds.is_some())
            .finish_non_exhaustive()
    }
}

/// Web API calls that take longer than this count as timed out (and are retried).
pub const SLACK_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP side of the Web API without a token: one connection pool that every
/// workspace's [`SlackClient`] shares.
#[derive(Debug, Clone)]
pub struct SlackConnector {
    http: reqwest::Client,
    base_url: String,
}

impl SlackConnector {
    /// `base_url` is e.g. [`SLACK_API_BASE_URL`]; `timeout` bounds each whole call
    /// (connect + response), and must stay well under the outbox's claim lease.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, SlackApiError> {
        let base_url = base_url.trim_end_matches('/');
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(SlackApiError::InvalidConfig(
                "base URL must start with http:// or https://".into(),
            ));
        }
        if timeout.is_zero() {
            return Err(SlackApiError::InvalidConfig(
                "timeout must be positive".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("cusp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SlackApiError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.to_owned(),
        })
    }

    /// A client that calls with `token`, sharing this connection pool.
    pub fn client(&self, token: SecretString) -> Result<SlackClient, SlackApiError> {
        if token.expose_secret().trim().is_empty() {
            return Err(SlackApiError::InvalidConfig("token is empty".into()));
        }
        Ok(SlackClient {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            token,
            holds: None,
        })
    }
}

impl SlackClient {
    /// A client with its own connection pool; see [`SlackConnector::new`].
    pub fn new(
        base_url: &str,
        token: SecretString,
        timeout: Duration,
    ) -> Result<Self, SlackApiError> {
        SlackConnector::new(base_url, timeout)?.client(token)
    }

    /// The same client (token, connection pool), asking `holds` before each call and
    /// telling it about each rate limit.
    pub fn with_holds(&self, holds: Arc<dyn MethodHolds>) -> SlackClient {
        SlackClient {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            token: self.token.clone(),
            holds: Some(holds),
        }
    }

    /// POSTs `params` form-encoded to `{base}/{method}` with the Bearer token, and returns
    /// the response JSON when Slack says `ok: true`. The raw form under the typed calls
    /// ([`SlackClient::send`] and the methods below); code outside `slack/` uses those.
    ///
    /// Form encoding works on every Web API method (JSON bodies only on some), so values
    /// that are arrays or objects (`blocks`, `metadata`, `view`) are sent as JSON strings,
    /// which Slack accepts; `null` values are left out.
    ///
    /// With holds, a method still held is not called ([`SlackApiError::Held`]), and a
    /// rate limit (a 429, or `ratelimited` on a 200) holds the method from Slack's answer.
    pub async fn call(
        &self,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, SlackApiError> {
        let Some(holds) = &self.holds else {
            return self.call_once(method, params).await;
        };
        if let Some(retry_after) = holds.remaining(method).await {
            return Err(SlackApiError::Held {
                method: method.to_owned(),
                retry_after,
            });
        }
        let result = self.call_once(method, params).await;
        if let Err(SlackApiError::RateLimited {
            method,
            retry_after,
        }) = &result
        {
            holds.hold(method, *retry_after).await;
        }
        result
    }

    /// One request, no holds.
    async fn call_once(
        &self,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, SlackApiError> {
        let valid_method = !method.is_empty()
            && method
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
        if !valid_method {
            return Err(SlackApiError::InvalidConfig(
                "method name is not a Slack method".into(),
            ));
        }
        let body = encode_form(params).map_err(|reason| SlackApiError::Decode {
            method: method.to_owned(),
            reason,
        })?;
        tracing::debug!(method, "calling Slack Web API");
        let response = self
            .http
            .post(format!("{}/{method}", self.base_url))
            .bearer_auth(self.token.expose_secret())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(method, e))?;

        let status = response.status();
        let retry_after = parse_retry_after(response.headers().get(RETRY_AFTER));
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SlackApiError::RateLimited {
                method: method.to_owned(),
                retry_after,
            });
        }
        if !status.is_success() {
            return Err(SlackApiError::Http {
                method: method.to_owned(),
                status: status.as_u16(),
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(method, e))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| SlackApiError::Decode {
            method: method.to_owned(),
            reason: format!("body is not JSON: {e}"),
        })?;
        match value.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(value),
            Some(false) => {
                let code = value
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown_error");
                if code == "ratelimited" {
                    return Err(SlackApiError::RateLimited {
                        method: method.to_owned(),
                        retry_after,
                    });
                }
                Err(SlackApiError::Api {
                    method: method.to_owned(),
                    code: code.to_owned(),
                })
            }
            None => Err(SlackApiError::Decode {
                method: method.to_owned(),
                reason: "missing boolean field `ok`".into(),
            }),
        }
    }

    pub async fn auth_test(&self) -> Result<AuthTest, SlackApiError> {
        let value = self.call("auth.test", &Map::new()).await?;
        decode("auth.test", value)
    }

    /// The Slack user with this email, or `None` when Slack answers `users_not_found`.
    /// Needs the `users:read.email` scope.
    pub async fn lookup_user_by_email(&self, email: &str) -> Result<Option<UserId>, SlackApiError> {
        const METHOD: &str = "users.lookupByEmail";
        let mut params = Map::new();
        params.insert("email".into(), Value::from(email));
        match self.call(METHOD, &params).await {
            Ok(value) => {
                #[derive(Deserialize)]
                struct User {
                    id: UserId,
                }
                #[derive(Deserialize)]
                struct Response {
                    user: User,
                }
                Ok(Some(decode::<Response>(METHOD, value)?.user.id))
            }
            Err(SlackApiError::Api { code, .. }) if code == "users_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The id of the bot's DM conversation with `user` (`conversations.open`; calling it
    /// again returns the same conversation). History methods need this id: they do not
    /// accept a user id, although `chat.postMessage` does.
    pub async fn open_dm(&self, user: &str) -> Result<ChannelId, SlackApiError> {
        const METHOD: &str = "conversations.open";
        let mut params = Map::new();
        params.insert("users".into(), Value::from(user));
        let value = self.call(METHOD, &params).await?;
        value
            .get("channel")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .and_then(|id| ChannelId::parse(id).ok())
            .ok_or_else(|| SlackApiError::Decode {
                method: METHOD.to_owned(),
                reason: "missing or invalid field `channel.id`".into(),
            })
    }

    /// Messages posted at or after `oldest` (inclusive) in a channel, or in the thread
    /// whose parent is `thread_ts`, with their `metadata` (`include_all_metadata=true`).
    /// [`SlackClient::find_post`] uses it to learn whether an ambiguous post landed.
    ///
    /// Returns one page of at most `limit` messages, in Slack's order (history: newest
    /// first; replies: oldest first, parent included). Callers look at a short window
    /// right after a post, so pagination is not needed.
    pub async fn recent_messages(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        oldest: &str,
        limit: u32,
    ) -> Result<Vec<HistoryMessage>, SlackApiError> {
        let mut params = Map::new();
        params.insert("channel".into(), Value::from(channel));
        params.insert("oldest".into(), Value::from(oldest));
        params.insert("inclusive".into(), Value::Bool(true));
        params.insert("limit".into(), Value::from(limit));
        params.insert("include_all_metadata".into(), Value::Bool(true));
        let method = match thread_ts {
            Some(ts) => {
                params.insert("ts".into(), Value::from(ts));
                "conversations.replies"
            }
            None => "conversations.history",
        };
        let value = self.call(method, &params).await?;
        match value.get("messages").and_then(Value::as_array) {
            Some(messages) => Ok(messages
                .iter()
                .filter_map(HistoryMessage::from_value)
                .collect()),
            None => Err(SlackApiError::Decode {
                method: method.to_owned(),
                reason: "missing array field `messages`".into(),
            }),
        }
    }
}

fn transport_error(method: &str, source: reqwest::Error) -> SlackApiError {
    if source.is_timeout() {
        SlackApiError::Timeout {
            method: method.to_owned(),
        }
    } else {
        // reqwest errors carry the URL (base + method, no token, which is in a header).
        SlackApiError::Transport {
            method: method.to_owned(),
            source,
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(method: &str, value: Value) -> Result<T, SlackApiError> {
    serde_json::from_value(value).map_err(|e| SlackApiError::Decode {
        method: method.to_owned(),
        reason: e.to_string(),
    })
}

/// `Retry-After` in seconds; Slack sends an integer. Missing or unparseable → 1 s.
fn parse_retry_after(header: Option<&reqwest::header::HeaderValue>) -> Duration {
    header
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

fn encode_form(params: &Map<String, Value>) -> Result<String, String> {
    let mut pairs: Vec<(&str, String)> = Vec::with_capacity(params.len());
    for (key, value) in params {
        let encoded = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                serde_json::to_string(value).map_err(|e| format!("param `{key}`: {e}"))?
            }
        };
        pairs.push((key, encoded));
    }
    serde_urlencoded::to_string(pairs).map_err(|e| format!("form encoding: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(code: &str) -> SlackApiError {
        SlackApiError::Api {
            method: "chat.postMessage".into(),
            code: code.into(),
        }
    }

    #[test]
    fn unreachable_users_are_permanent_and_told_apart_from_configuration_errors() {
        for code in UNREACHABLE_USER_CODES {
            assert!(api(code).is_unreachable_user(), "{code}");
            assert!(!api(code).is_retryable(), "{code}");
        }
        for code in ["missing_scope", "invalid_auth", "internal_error"] {
            assert!(!api(code).is_unreachable_user(), "{code}");
        }
    }

    #[test]
    fn slack_side_failures_are_retryable() {
        for code in RETRYABLE_API_CODES {
            assert!(api(code).is_retryable(), "{code}");
        }
        let m = || "chat.postMessage".to_owned();
        assert!(
            SlackApiError::Http {
                method: m(),
                status: 500
            }
            .is_retryable()
        );
        assert!(
            SlackApiError::Http {
                method: m(),
                status: 503
            }
            .is_retryable()
        );
        assert!(
            SlackApiError::Http {
                method: m(),
                status: 408
            }
            .is_retryable()
        );
        assert!(SlackApiError::Timeout { method: m() }.is_retryable());
        let limited = SlackApiError::RateLimited {
            method: m(),
            retry_after: Duration::from_secs(7),
        };
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(limited.code(), Some("ratelimited"));
    }

    #[test]
    fn caller_side_failures_are_permanent() {
        for code in [
            "channel_not_found",
            "not_in_channel",
            "invalid_auth",
            "is_archived",
            "msg_too_long",
            "invalid_blocks",
        ] {
            assert!(!api(code).is_retryable(), "{code}");
            assert_eq!(api(code).code(), Some(code));
            assert_eq!(api(code).retry_after(), None);
        }
        let m = || "chat.postMessage".to_owned();
        assert!(
            !SlackApiError::Http {
                method: m(),
                status: 404
            }
            .is_retryable()
        );
        assert!(
            !SlackApiError::Decode {
                method: m(),
                reason: "x".into()
            }
            .is_retryable()
        );
        assert!(!SlackApiError::InvalidConfig("x".into()).is_retryable());
    }

    #[test]
    fn retry_after_defaults_to_one_second() {
        use reqwest::header::HeaderValue;
        assert_eq!(parse_retry_after(None), DEFAULT_RETRY_AFTER);
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("soon"))),
            DEFAULT_RETRY_AFTER
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("30"))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn form_encoding_sends_structures_as_json_strings() {
        let params = json!({
            "channel": "C1", "text": "a & b", "unfurl_links": false, "limit": 5,
            "blocks": [{"type": "divider"}], "skip": null,
        });
        let encoded = encode_form(params.as_object().unwrap()).unwrap();
        let back: Vec<(String, String)> = serde_urlencoded::from_str(&encoded).unwrap();
        let get = |k: &str| {
            back.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("text"), Some("a & b"));
        assert_eq!(get("unfurl_links"), Some("false"));
        assert_eq!(get("limit"), Some("5"));
        assert_eq!(get("blocks"), Some(r#"[{"type":"divider"}]"#));
        assert_eq!(get("skip"), None);
    }

    #[test]
    fn debug_output_hides_the_token_and_config_is_checked() {
        let token = SecretString::from("xoxb-very-secret");
        let client =
            SlackClient::new("http://127.0.0.1:9/api/", token, Duration::from_secs(1)).unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("http://127.0.0.1:9/api"));
        let err = SlackClient::new("ftp://x", SecretString::from("t"), Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, SlackApiError::InvalidConfig(_)));
        let err = SlackClient::new("https://x", SecretString::from(" "), Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, SlackApiError::InvalidConfig(_)));
    }

    #[tokio::test]
    async fn odd_method_names_are_refused_before_any_request() {
        let client = SlackClient::new(
            "http://127.0.0.1:9/api",
            SecretString::from("t"),
            Duration::from_secs(1),
        )
        .unwrap();
        let err = client.call("../admin", &Map::new()).await.unwrap_err();
        assert!(matches!(err, SlackApiError::InvalidConfig(_)));
    }
}
