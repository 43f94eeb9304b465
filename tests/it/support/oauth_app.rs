//! `TestApp` in OAuth mode: no workspace at start; workspaces install through the real
//! `/slack/install` → (fake) Slack authorize → `/slack/oauth_redirect` pages of the
//! mounted router, and the fake Slack then accepts the token it issued.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use secrecy::SecretString;
use serde_json::{Value, json};

use cusp::app::build_router;
use cusp::engine::Engine;
use cusp::slack::oauth::OAuthClient;
use cusp::slack::web_api::SlackConnector;
use cusp::state::{AppState, InstallFlow, Workspaces};
use cusp::store::{Keyring, Store};

use super::app::{Backend, SECRET, TestApp, TestDb, TestResponse, WEBHOOK_SECRET};
use super::fake_slack::{FakeSlack, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAuthGrant};

pub const PUBLIC_URL: &str = "https://cusp.example.com";
pub const REDIRECT_URI: &str = "https://cusp.example.com/slack/oauth_redirect";
pub const AUTHORIZE_URL: &str = "https://slack.test/oauth/v2/authorize";
/// `openssl rand -base64 32`-shaped test key.
pub const ENCRYPTION_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

/// An OAuth-mode app state over `store`, talking to `slack`: what `cusp serve` builds
/// with `SLACK_CLIENT_ID`, `SLACK_CLIENT_SECRET` and `CUSP_ENCRYPTION_KEY`.
pub fn oauth_state(store: Store, slack: &FakeSlack) -> AppState {
    let keyring = Arc::new(Keyring::parse(ENCRYPTION_KEY).expect("key"));
    let connector =
        SlackConnector::new(&slack.base_url(), Duration::from_millis(500)).expect("connector");
    let client = OAuthClient::new(
        &slack.base_url(),
        OAUTH_CLIENT_ID,
        SecretString::from(OAUTH_CLIENT_SECRET),
        Duration::from_secs(5),
    )
    .expect("OAuth client");
    let workspaces = Workspaces::installed(store.clone(), keyring.clone(), connector);
    AppState::with_workspaces(
        store,
        Engine::builtin(),
        workspaces,
        vec![SecretString::from(SECRET)],
    )
    .with_webhook_secret(Some(SecretString::from(WEBHOOK_SECRET)))
    .with_install_flow(InstallFlow {
        client: Arc::new(client),
        keyring,
        authorize_url: AUTHORIZE_URL.to_owned(),
        public_url: Some(PUBLIC_URL.to_owned()),
    })
}

impl TestApp {
    /// The app in OAuth mode, with no workspace installed yet.
    pub async fn spawn_oauth(backend: Backend) -> TestApp {
        let db = TestDb::new(backend).await;
        let slack = FakeSlack::start().await;
        let state = oauth_state(db.store().await, &slack);
        let router = build_router(state.clone());
        TestApp {
            state,
            router,
            slack,
            db,
        }
    }

    /// Another replica in OAuth mode over the same database (its own pool and cache).
    pub async fn another_oauth_replica(&self) -> AppState {
        let store = Store::connect(&self.db.url).await.expect("connect");
        oauth_state(store, &self.slack)
    }

    pub async fn get(&self, uri: &str, cookie: Option<&str>) -> TestResponse {
        let mut request = Request::get(uri);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.request(request.body(Body::empty()).expect("request"))
            .await
    }

    /// Opens the install page; returns the state it handed out (cookie) after checking
    /// that the "Add to Slack" link carries the same one.
    pub async fn start_install(&self) -> String {
        let page = self.get("/slack/install", None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let cookie = page
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("state cookie");
        let state = cookie
            .strip_prefix("cusp_oauth_state=")
            .and_then(|c| c.split(';').next())
            .expect("state cookie value")
            .to_owned();
        let link = page
            .body
            .split("href=\"")
            .find(|s| s.starts_with(AUTHORIZE_URL))
            .and_then(|s| s.split('"').next())
            .expect("Add to Slack link")
            .replace("&amp;", "&");
        let query = link.split_once('?').expect("query").1;
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("query");
        assert!(params.contains(&("state".into(), state.clone())), "{link}");
        assert!(
            params.contains(&("redirect_uri".into(), REDIRECT_URI.into())),
            "{link}"
        );
        state
    }

    /// Slack sends the person back with `query`, their browser carrying `state`'s cookie.
    pub async fn oauth_redirect(&self, query: &str, state: Option<&str>) -> TestResponse {
        let cookie = state.map(|s| format!("cusp_oauth_state={s}"));
        self.get(&format!("/slack/oauth_redirect?{query}"), cookie.as_deref())
            .await
    }

    /// A whole install: install page → Slack grants `code` for `grant` → redirect. The
    /// workspace's `#deals` (`C_DEALS`) and seller (`U_SELLER`) are declared to the fake
    /// Slack as its own.
    pub async fn install(&self, code: &str, grant: OAuthGrant) -> TestResponse {
        let team = grant.team.as_ref().map(|(id, _)| id.clone());
        let state = self.start_install().await;
        self.slack.grant_oauth_code(code, REDIRECT_URI, grant);
        let page = self
            .oauth_redirect(&format!("code={code}&state={state}"), Some(&state))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if let Some(team) = team {
            self.slack.add_channel(&team, "C_DEALS");
            self.slack.add_user(&team, "U_SELLER");
        }
        page
    }

    pub async fn slash_in(&self, team: &str, text: &str) -> TestResponse {
        self.post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &command_body_in(team, text),
        )
        .await
    }
}

pub fn command_body_in(team: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("team_id", team),
        ("team_domain", "acme"),
        ("channel_id", "C_DEALS"),
        ("channel_name", "deals"),
        ("user_id", "U_SELLER"),
        ("user_name", "sam"),
        ("command", "/cusp"),
        ("text", text),
        ("response_url", "http://127.0.0.1:9/hooks/response"),
        ("trigger_id", "trig.1"),
        ("api_app_id", "A_CUSP"),
    ])
    .expect("form")
}

/// An `event_callback` for `team` carrying `event`, with the `authorizations` Slack
/// sends; `event_time` in Unix seconds.
pub fn callback_in(team: &str, event_id: &str, event_time: i64, event: Value) -> Value {
    json!({
        "token": "deprecated",
        "team_id": team,
        "api_app_id": "A_CUSP",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [{
            "enterprise_id": null, "team_id": team, "user_id": format!("U_BOT_{team}"),
            "is_bot": true, "is_enterprise_install": false,
        }],
        "event": event,
    })
}

/// A person's channel message in `team`.
pub fn message_in(team: &str, event_id: &str, text: &str, ts: &str) -> Value {
    callback_in(
        team,
        event_id,
        jiff::Timestamp::now().as_second(),
        json!({
            "type": "message", "channel": "C_DEALS", "channel_type": "channel",
            "user": "U_SELLER", "text": text, "ts": ts, "event_ts": ts,
        }),
    )
}

pub fn app_uninstalled(team: &str, event_id: &str, event_time: i64) -> Value {
    callback_in(
        team,
        event_id,
        event_time,
        json!({ "type": "app_uninstalled", "event_ts": format!("{event_time}.000100") }),
    )
}

pub fn tokens_revoked(team: &str, event_id: &str, event_time: i64, bot: &[&str]) -> Value {
    callback_in(
        team,
        event_id,
        event_time,
        json!({
            "type": "tokens_revoked",
            "tokens": { "oauth": ["U_SOMEONE"], "bot": bot },
            "event_ts": format!("{event_time}.000200"),
        }),
    )
}
