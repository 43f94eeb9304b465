//! A `TestApp` in OAuth mode serving two workspaces at once, T_A and T_B, each installed
//! through the store API with its token sealed under a test key, and a fake Slack that
//! serves both tokens and refuses either one for the other workspace's channels and
//! people. Plus requests that name their team, and a check that nothing at all was
//! stored for a team.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use cusp::app::build_router;
use cusp::engine::Engine;
use cusp::slack::web_api::SlackConnector;
use cusp::state::{AppState, Workspaces};
use cusp::store::{InstallationKey, Keyring, NewInstallation};

use super::app::{Backend, SECRET, TestApp, TestDb, TestResponse, WEBHOOK_SECRET, now_ms};
use super::fake_slack::{FakeSlack, FakeWorkspace};

pub const T_A: &str = "T_ALPHA";
pub const T_B: &str = "T_BRAVO";
/// A team that never installed cusp.
pub const T_C: &str = "T_CHARLIE";
pub const TOKEN_A: &str = "xoxb-alpha-token";
pub const TOKEN_B: &str = "xoxb-bravo-token";
/// Each workspace's deals channel.
pub const CHANNEL_A: &str = "C_ALPHA_DEALS";
pub const CHANNEL_B: &str = "C_BRAVO_DEALS";
/// The same person id in both workspaces (Slack Connect, Grid): nothing they do in one
/// may touch the other.
pub const SAM: &str = "U_SAM";
/// A colleague of Sam's in each workspace.
pub const KIM: &str = "U_KIM";
/// 32 bytes, base64: the test's `CUSP_ENCRYPTION_KEY`.
const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const FORM: &str = "application/x-www-form-urlencoded";

/// The deals channel of `team`.
pub fn channel_of(team: &str) -> &'static str {
    if team == T_A { CHANNEL_A } else { CHANNEL_B }
}

fn installation(workspace: &FakeWorkspace) -> NewInstallation {
    NewInstallation {
        key: InstallationKey::new(None, &workspace.team_id),
        team_name: Some(workspace.team_name.clone()),
        enterprise_name: None,
        is_enterprise_install: false,
        app_id: Some("A_CUSP".into()),
        bot_user_id: workspace.bot_user_id.clone(),
        bot_id: Some(workspace.bot_id.clone()),
        bot_token: SecretString::from(workspace.token.clone()),
        bot_scopes: "commands,chat:write,channels:history,reactions:write".into(),
        installer_user_id: Some("U_ADMIN".into()),
        refresh_token: None,
        token_expires_at_ms: None,
    }
}

impl TestApp {
    /// The real router and workers in OAuth mode, with T_A and T_B installed.
    pub async fn spawn_two_teams(backend: Backend) -> TestApp {
        let workspaces = [
            FakeWorkspace::new(T_A, TOKEN_A),
            FakeWorkspace::new(T_B, TOKEN_B),
        ];
        let slack = FakeSlack::start_serving(workspaces.to_vec()).await;
        for team in [T_A, T_B] {
            slack.add_channel(team, channel_of(team));
            slack.add_user(team, SAM);
            slack.add_user(team, KIM);
        }
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let keyring = Arc::new(Keyring::parse(KEY).expect("test key"));
        for workspace in &workspaces {
            store
                .save_installation(&keyring, &installation(workspace), now_ms())
                .await
                .expect("save installation");
        }
        let connector =
            SlackConnector::new(&slack.base_url(), Duration::from_millis(500)).expect("connector");
        let state = AppState::with_workspaces(
            store.clone(),
            Engine::builtin(),
            Workspaces::installed(store, keyring, connector),
            vec![SecretString::from(SECRET)],
        )
        .with_webhook_secret(Some(SecretString::from(WEBHOOK_SECRET)));
        let router = build_router(state.clone());
        TestApp {
            state,
            router,
            slack,
            db,
        }
    }

    /// A person's channel message in `team`, as Slack delivers it (with the
    /// installation in `authorizations`); asserts the 200.
    pub async fn say_in(&self, team: &str, channel: &str, user: &str, text: &str, ts: &str) {
        let response = self.event(&event_in(team, channel, user, text, ts)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }

    /// `/cusp <text>` typed by `user` in `channel` of `team`.
    pub async fn command_in(
        &self,
        team: &str,
        channel: &str,
        user: &str,
        text: &str,
    ) -> TestResponse {
        let body = serde_urlencoded::to_string([
            ("token", "deprecated"),
            ("team_id", team),
            ("team_domain", &team.to_lowercase()),
            ("channel_id", channel),
            ("channel_name", "deals"),
            ("user_id", user),
            ("user_name", "someone"),
            ("command", "/cusp"),
            ("text", text),
            ("response_url", "http://127.0.0.1:9/hooks/response"),
            ("trigger_id", &format!("trig-{team}-{user}-{text}")),
            ("api_app_id", "A_CUSP"),
        ])
        .expect("form");
        self.post_signed("/slack/commands", FORM, &body).await
    }

    /// The ephemeral text `/cusp <text>` answers (asserting the 200).
    pub async fn command_text(&self, team: &str, user: &str, text: &str) -> String {
        let response = self.command_in(team, channel_of(team), user, text).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.json()["text"]
            .as_str()
            .expect("an answer text")
            .to_owned()
    }

    /// POSTs an interactivity payload, signed with the app's signing secret (the same
    /// for every workspace of one Slack app).
    pub async fn send_interaction(&self, payload: &Value) -> TestResponse {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.post_signed("/slack/interactivity", FORM, &body).await
    }

    /// Handles every queued event, then delivers every queued message.
    pub async fn handle_and_deliver(&self) {
        self.drain_inbox().await;
        self.deliver_outbox_at(now_ms()).await;
    }
}

/// An `event_callback` carrying a person's message in `channel` of `team`.
pub fn event_in(team: &str, channel: &str, user: &str, text: &str, ts: &str) -> Value {
    json!({
        "token": "deprecated",
        "team_id": team,
        "api_app_id": "A_CUSP",
        "type": "event_callback",
        "event_id": format!("Ev-{team}-{ts}"),
        "event_time": 1_700_000_000,
        "authorizations": [{
            "enterprise_id": null, "team_id": team, "user_id": format!("U_BOT_{team}"),
            "is_bot": true, "is_enterprise_install": false,
        }],
        "event": {
            "type": "message", "channel": channel, "channel_type": "channel",
            "user": user, "text": text, "ts": ts, "event_ts": ts,
        }
    })
}

/// A button click claiming to come from `user` of `team`.
pub fn click_in(team: &str, user: &str, action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": user},
        "channel": {"id": channel_of(team)},
        "trigger_id": format!("trig-{action_id}-{user}"),
        "actions": [{"action_id": action_id, "block_id": "cusp_prompt", "value": value, "type": "button"}],
    })
}

/// A submitted reflection modal claiming to come from `user` of `team`, about the
/// prompt `thread_key`.
pub fn reflection_in(team: &str, user: &str, thread_key: &str, answer: &str) -> Value {
    json!({
        "type": "view_submission",
        "team": {"id": team},
        "user": {"id": user},
        "view": {
            "id": "V_FORGED",
            "callback_id": "cusp_reflection",
            "private_metadata": thread_key,
            "state": {"values": {
                "q0": {"answer": {"type": "plain_text_input", "value": answer}},
                "share": {"share": {"type": "checkboxes", "selected_options": [{"value": "share"}]}},
            }},
        },
    })
}

/// The value of the first button of a nudge (its prompt's thread key).
pub fn prompt_key(nudge: &super::fake_slack::PostedMessage) -> String {
    let blocks = nudge.blocks.as_array().expect("blocks");
    let actions = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("actions block");
    actions["elements"][0]["value"]
        .as_str()
        .expect("button value")
        .to_owned()
}

/// Every row of every table with a `team_id` column that names `team`, as
/// `(table, count)` for the tables where it is not zero: "nothing stored" checked
/// against the whole schema, including tables added later.
pub async fn rows_naming(db: &TestDb, team: &str) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = 'team_id'",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        for (table,) in tables {
            let (n,): (i64,) =
                sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE team_id = $1"))
                    .bind(team)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
            if n > 0 {
                found.push((table, n));
            }
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("postgres");
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'team_id'",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        for (table,) in tables {
            let (n,): (i64,) =
                sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE team_id = $1"))
                    .bind(team)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
            if n > 0 {
                found.push((table, n));
            }
        }
        pool.close().await;
    }
    found
}

/// Every table's rows as text, in a stable order (`_sqlx_migrations` left out): two
/// snapshots are equal exactly when no row was added, changed or deleted.
pub async fn snapshot(db: &TestDb) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE '_sqlx%' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        for (table,) in tables {
            let columns: Vec<(String,)> =
                sqlx::query_as(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(&pool)
                    .await
                    .expect("columns");
            let row = columns
                .iter()
                .map(|(c,)| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || ',' || ");
            let (rows,): (Option<String>,) = sqlx::query_as(&format!(
                "SELECT group_concat(r, char(10)) FROM (SELECT {row} AS r FROM {table} ORDER BY r)"
            ))
            .fetch_one(&pool)
            .await
            .expect("rows");
            out.push((table, rows.unwrap_or_default()));
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("postgres");
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%' \
             ORDER BY table_name",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        for (table,) in tables {
            let (rows,): (Option<String>,) = sqlx::query_as(&format!(
                "SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM {table} t"
            ))
            .fetch_one(&pool)
            .await
            .expect("rows");
            out.push((table, rows.unwrap_or_default()));
        }
        pool.close().await;
    }
    out
}
