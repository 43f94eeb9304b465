//! Slack's OAuth v2 wire protocol: the authorize URL and `oauth.v2.access` (exchanging a
//! code, refreshing a rotating token). No decisions about installations live here; the
//! HTTP handlers are in `server/oauth.rs`, the storage in `store/installations.rs`.
//!
//! The client credentials go in HTTP Basic auth, as Slack recommends, never in the body.
//! Like [`super::web_api::SlackClient`], one HTTP attempt per call and no retries here.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ids::{TeamId, UserId};
use super::web_api::DEFAULT_RETRY_AFTER;

/// Slack's authorize page; `SLACK_OAUTH_AUTHORIZE_URL` replaces it (tests, staging).
pub const DEFAULT_AUTHORIZE_URL: &str = "https://slack.com/oauth/v2/authorize";
const METHOD: &str = "oauth.v2.access";

/// The bot scopes cusp asks for; the same list as `deploy/slack-app-manifest.yaml` (a
/// unit test keeps the two in step).
pub const BOT_SCOPES: &[&str] = &[
    "commands",
    "chat:write",
    "channels:history",
    "groups:history",
    "im:history",
    "app_mentions:read",
    "reactions:write",
    "users:read",
    "users:read.email",
    "im:write",
];

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The code is unknown, expired (after ten minutes) or already used.
    #[error("Slack refused the authorization code (invalid_code): start the install again")]
    InvalidCode,
    #[error(
        "Slack refused the redirect_uri (bad_redirect_uri): it must be the one the authorize \
         step sent, and sit under a Redirect URL of the app (OAuth & Permissions)"
    )]
    BadRedirectUri,
    #[error(
        "Slack refused the client credentials ({code}): check SLACK_CLIENT_ID and \
         SLACK_CLIENT_SECRET against the app's Basic Information page"
    )]
    InvalidClient { code: String },
    /// The refresh token is revoked, already used or unknown: only a reinstall helps.
    #[error("Slack refused the refresh token ({code}): the workspace must reinstall cusp")]
    InvalidRefreshToken { code: String },
    #[error("oauth.v2.access: Slack answered error `{code}`")]
    Api { code: String },
    #[error("oauth.v2.access: rate limited, retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    #[error("oauth.v2.access: HTTP status {status}")]
    Http { status: u16 },
    #[error("oauth.v2.access: timed out")]
    Timeout,
    #[error("oauth.v2.access: transport error")]
    Transport(#[source] reqwest::Error),
    #[error("oauth.v2.access: unexpected response: {0}")]
    Decode(String),
    #[error("invalid OAuth configuration: {0}")]
    InvalidConfig(String),
}

impl OAuthError {
    fn from_code(code: &str, retry_after: Duration) -> OAuthError {
        match code {
            "invalid_code" | "code_already_used" => OAuthError::InvalidCode,
            "bad_redirect_uri" => OAuthError::BadRedirectUri,
            "invalid_client_id" | "bad_client_secret" | "invalid_client" => {
                OAuthError::InvalidClient { code: code.into() }
            }
            "invalid_refresh_token" | "invalid_grant" | "token_revoked" | "token_expired" => {
                OAuthError::InvalidRefreshToken { code: code.into() }
            }
            "ratelimited" => OAuthError::RateLimited { retry_after },
            other => OAuthError::Api { code: other.into() },
        }
    }

    /// Whether the same call may succeed later (Slack or the network had a problem).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Timeout => true,
            Self::Http { status } => *status >= 500 || *status == 408,
            Self::Transport(source) => !(source.is_builder() || source.is_redirect()),
            Self::Api { code } => super::web_api::RETRYABLE_API_CODES.contains(&code.as_str()),
            _ => false,
        }
    }
}

/// A workspace or an Enterprise Grid org, as `oauth.v2.access` names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Named {
    pub id: TeamId,
    #[serde(default)]
    pub name: Option<String>,
}

/// The person who installed (or whose token this is).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthedUser {
    pub id: UserId,
}

/// What `oauth.v2.access` answers, for a code exchange or a refresh. `Debug` shows no
/// token.
#[derive(Debug)]
pub struct OAuthAccess {
    pub app_id: Option<String>,
    /// `None` for an org-wide install (then `enterprise` is set).
    pub team: Option<Named>,
    pub enterprise: Option<Named>,
    pub is_enterprise_install: bool,
    pub bot_user_id: Option<UserId>,
    /// The bot token (`xoxb-…`, or `xoxe.xoxb-…` with token rotation).
    pub access_token: SecretString,
    pub token_type: Option<String>,
    /// Comma-separated granted scopes.
    pub scope: String,
    pub authed_user: Option<AuthedUser>,
    /// With token rotation: the next refresh token and the token's lifetime.
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<Duration>,
}

/// The wire shape; tokens are moved into `SecretString` straight away and this type has
/// no `Debug`.
#[derive(Deserialize)]
struct RawAccess {
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    team: Option<Named>,
    #[serde(default)]
    enterprise: Option<Named>,
    #[serde(default)]
    is_enterprise_install: bool,
    #[serde(default)]
    bot_user_id: Option<UserId>,
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    authed_user: Option<AuthedUser>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The query string Slack's authorize page takes: `client_id`, bot `scope`,
/// `redirect_uri`, `state`. `base` is [`DEFAULT_AUTHORIZE_URL`] or its replacement.
pub fn authorize_url(
    base: &str,
    client_id: &str,
    scopes: &[&str],
    redirect_uri: &str,
    state: &str,
) -> String {
    let scope = scopes.join(",");
    let query = serde_urlencoded::to_string([
        ("client_id", client_id),
        ("scope", scope.as_str()),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ])
    // Encoding a list of string pairs cannot fail; an empty query still yields a usable URL.
    .unwrap_or_default();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{query}")
}

/// Calls `oauth.v2.access` with the app's client credentials.
pub struct OAuthClient {
    http: reqwest::Client,
    api_url: String,
    client_id: String,
    client_secret: SecretString,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// `api_url` is `SLACK_API_URL` (e.g. `https://slack.com/api`).
    pub fn new(
        api_url: &str,
        client_id: &str,
        client_secret: SecretString,
        timeout: Duration,
    ) -> Result<OAuthClient, OAuthError> {
        let api_url = api_url.trim_end_matches('/');
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(OAuthError::InvalidConfig(
                "SLACK_API_URL must start with http:// or https://".into(),
            ));
        }
        if client_id.trim().is_empty() {
            return Err(OAuthError::InvalidConfig("SLACK_CLIENT_ID is empty".into()));
        }
        if client_secret.expose_secret().trim().is_empty() {
            return Err(OAuthError::InvalidConfig(
                "SLACK_CLIENT_SECRET is empty".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("cusp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OAuthError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(OAuthClient {
            http,
            api_url: api_url.to_owned(),
            client_id: client_id.trim().to_owned(),
            client_secret,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Exchanges the `code` of the OAuth redirect; `redirect_uri` must be the one the
    /// authorize URL carried.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<OAuthAccess, OAuthError> {
        self.access(&[("code", code), ("redirect_uri", redirect_uri)])
            .await
    }

    /// Trades a refresh token (`xoxe-1-…`) for a new bot token and a new refresh token.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<OAuthAccess, OAuthError> {
        self.access(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .await
    }

    async fn access(&self, form: &[(&str, &str)]) -> Result<OAuthAccess, OAuthError> {
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| OAuthError::Decode(format!("form: {e}")))?;
        tracing::debug!(method = METHOD, "calling Slack OAuth");
        let response = self
            .http
            .post(format!("{}/{METHOD}", self.api_url))
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(OAuthError::RateLimited { retry_after });
        }
        if !status.is_success() {
            return Err(OAuthError::Http {
                status: status.as_u16(),
            });
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        parse_access(&bytes, retry_after)
    }
}

fn transport_error(err: reqwest::Error) -> OAuthError {
    if err.is_timeout() {
        OAuthError::Timeout
    } else {
        OAuthError::Transport(err)
    }
}

/// Reads an `oauth.v2.access` answer (pure, so it is unit-tested on Slack's documented
/// examples).
fn parse_access(body: &[u8], retry_after: Duration) -> Result<OAuthAccess, OAuthError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| OAuthError::Decode(format!("body is not JSON: {e}")))?;
    match value.get("ok").and_then(serde_json::Value::as_bool) {
        Some(true) => {}
        Some(false) => {
            let code = value
                .get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown_error");
            return Err(OAuthError::from_code(code, retry_after));
        }
        None => return Err(OAuthError::Decode("missing boolean field `ok`".into())),
    }
    // The error names the field, never its value (it may be a token).
    let raw: RawAccess = serde_json::from_value(value).map_err(|e| {
        OAuthError::Decode(format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Data => "a field is missing or has the wrong type",
                _ => "malformed",
            },
            e.line(),
            e.column()
        ))
    })?;
    if raw.access_token.trim().is_empty() {
        return Err(OAuthError::Decode("access_token is empty".into()));
    }
    Ok(OAuthAccess {
        app_id: raw.app_id,
        team: raw.team,
        enterprise: raw.enterprise,
        is_enterprise_install: raw.is_enterprise_install,
        bot_user_id: raw.bot_user_id,
        access_token: SecretString::from(raw.access_token),
        token_type: raw.token_type,
        scope: raw.scope,
        authed_user: raw.authed_user,
        refresh_token: raw
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
        expires_in: raw.expires_in.map(Duration::from_secs),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_carries_every_parameter_encoded() {
        let url = authorize_url(
            DEFAULT_AUTHORIZE_URL,
            "123.456",
            &["commands", "chat:write"],
            "https://cusp.example.com/slack/oauth_redirect",
            "s t&a=te",
        );
        assert_eq!(
            url,
            "https://slack.com/oauth/v2/authorize?client_id=123.456&scope=commands%2Cchat%3Awrite\
             &redirect_uri=https%3A%2F%2Fcusp.example.com%2Fslack%2Foauth_redirect&state=s+t%26a%3Dte"
        );
        let with_query = authorize_url("http://127.0.0.1:1/authorize?x=1", "1", &[], "r", "s");
        assert!(with_query.starts_with("http://127.0.0.1:1/authorize?x=1&client_id=1"));
    }

    #[test]
    fn bot_scopes_match_the_app_manifest() {
        let manifest = include_str!("../../deploy/slack-app-manifest.yaml");
        let mut in_bot = false;
        let mut listed = Vec::new();
        for line in manifest.lines() {
            let trimmed = line.trim();
            if trimmed == "bot:" {
                in_bot = true;
                continue;
            }
            if in_bot {
                match trimmed.strip_prefix("- ") {
                    Some(item) => listed.push(item.split('#').next().unwrap_or("").trim()),
                    None => break,
                }
            }
        }
        assert_eq!(listed, BOT_SCOPES);
    }

    #[test]
    fn a_workspace_install_with_rotation_is_read_whole() {
        let body = br#"{"ok":true,"access_token":"xoxe.xoxb-1-abc","token_type":"bot",
            "scope":"commands,chat:write","bot_user_id":"U0BOT","app_id":"A1",
            "team":{"name":"Acme","id":"T1"},"enterprise":null,"is_enterprise_install":false,
            "authed_user":{"id":"U1","scope":"","access_token":"xoxp-user","token_type":"user"},
            "refresh_token":"xoxe-1-refresh","expires_in":43200}"#;
        let access = parse_access(body, DEFAULT_RETRY_AFTER).unwrap();
        assert_eq!(access.team.as_ref().unwrap().id.as_str(), "T1");
        assert_eq!(access.team.as_ref().unwrap().name.as_deref(), Some("Acme"));
        assert!(access.enterprise.is_none() && !access.is_enterprise_install);
        assert_eq!(access.bot_user_id.unwrap().as_str(), "U0BOT");
        assert_eq!(access.access_token.expose_secret(), "xoxe.xoxb-1-abc");
        assert_eq!(access.scope, "commands,chat:write");
        assert_eq!(access.authed_user.unwrap().id.as_str(), "U1");
        assert_eq!(
            access.refresh_token.unwrap().expose_secret(),
            "xoxe-1-refresh"
        );
        assert_eq!(access.expires_in, Some(Duration::from_secs(43_200)));
    }

    #[test]
    fn an_org_wide_install_has_no_team() {
        let body = br#"{"ok":true,"access_token":"xoxb-org","token_type":"bot","scope":"commands",
            "bot_user_id":"U0BOT","team":null,"enterprise":{"id":"E1","name":"Org"},
            "is_enterprise_install":true,"authed_user":{"id":"W1"}}"#;
        let access = parse_access(body, DEFAULT_RETRY_AFTER).unwrap();
        assert!(access.team.is_none() && access.is_enterprise_install);
        assert_eq!(access.enterprise.unwrap().id.as_str(), "E1");
        assert!(access.refresh_token.is_none() && access.expires_in.is_none());
    }

    #[test]
    fn slack_errors_become_typed_errors() {
        let err = |code: &str| {
            let body = format!(r#"{{"ok":false,"error":"{code}"}}"#);
            parse_access(body.as_bytes(), Duration::from_secs(7)).unwrap_err()
        };
        assert!(matches!(err("invalid_code"), OAuthError::InvalidCode));
        assert!(matches!(
            err("bad_redirect_uri"),
            OAuthError::BadRedirectUri
        ));
        assert!(matches!(
            err("bad_client_secret"),
            OAuthError::InvalidClient { .. }
        ));
        assert!(matches!(
            err("invalid_refresh_token"),
            OAuthError::InvalidRefreshToken { .. }
        ));
        assert!(matches!(
            err("ratelimited"),
            OAuthError::RateLimited { retry_after } if retry_after == Duration::from_secs(7)
        ));
        assert!(err("internal_error").is_retryable());
        assert!(!err("invalid_code").is_retryable());
        assert!(matches!(
            parse_access(b"<html>", DEFAULT_RETRY_AFTER),
            Err(OAuthError::Decode(_))
        ));
        let no_token = parse_access(br#"{"ok":true,"scope":"x"}"#, DEFAULT_RETRY_AFTER);
        assert!(matches!(no_token, Err(OAuthError::Decode(_))));
    }

    #[test]
    fn debug_output_never_shows_a_token_or_the_client_secret() {
        let body = br#"{"ok":true,"access_token":"xoxb-secret-1","refresh_token":"xoxe-1-secret"}"#;
        let shown = format!("{:?}", parse_access(body, DEFAULT_RETRY_AFTER).unwrap());
        assert!(!shown.contains("xoxb-secret-1") && !shown.contains("xoxe-1-secret"));
        let client = OAuthClient::new(
            "http://127.0.0.1:9/api",
            "1.2",
            SecretString::from("client-secret-value"),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("client-secret-value"));
    }
}
