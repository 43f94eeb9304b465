//! `TestApp`: the real router and workers over a fresh database (SQLite file, or a fresh
//! PostgreSQL database when `CUSP_TEST_POSTGRES_URL` is set) and a `FakeSlack`.

use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

use cusp::app::{build_router, identify};
use cusp::engine::Engine;
use cusp::slack::signature::sign;
use cusp::slack::web_api::SlackClient;
use cusp::state::AppState;
use cusp::store::Store;

use super::fake_slack::FakeSlack;

pub const SECRET: &str = "test-signing-secret";
pub const TOKEN: &str = "xoxb-test-token";
pub const TEAM: &str = "T_TEST";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests may use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("CUSP_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Runs an async scenario once per backend: `sqlite` always, `postgres` when
/// `CUSP_TEST_POSTGRES_URL` is set (and says so on stderr when it is skipped).
#[macro_export]
macro_rules! backend_matrix {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::app::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::support::app::postgres_url().is_none() {
                        // Straight to stderr: `eprintln!` is captured (hidden) for passing tests.
                        let _ = std::io::Write::write_fmt(
                            &mut std::io::stderr(),
                            format_args!("SKIPPED postgres::{}: CUSP_TEST_POSTGRES_URL is not set\n", stringify!($name)),
                        );
                        return;
                    }
                    super::$name($crate::support::app::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// One integer that `sql` (with `$1` = `team`) reads straight from the database,
    /// bypassing the store: what tests check production code wrote.
    pub async fn scalar_for_team(&self, sql: &str, team: &str) -> i64 {
        if self.url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
            let n = sqlx::query_scalar(sql)
                .bind(team)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        } else {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            let n = sqlx::query_scalar(sql)
                .bind(team)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        }
    }

    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("cusp.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    drop_pg: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_url().expect("CUSP_TEST_POSTGRES_URL");
                let name = format!(
                    "cusp_it_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    jiff::Timestamp::now().as_millisecond() % 1_000_000
                );
                let pool = sqlx::PgPool::connect(&admin)
                    .await
                    .expect("connect to CUSP_TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create database");
                pool.close().await;
                let url = replace_db_name(&admin, &name);
                TestDb {
                    url,
                    _dir: None,
                    drop_pg: Some((admin, name)),
                }
            }
        }
    }

    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_pg.take() {
            // Best effort: a leftover test database is harmless.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&pool)
                                .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub struct TestApp {
    pub state: AppState,
    pub router: axum::Router,
    pub slack: FakeSlack,
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let db = TestDb::new(backend).await;
        let slack = FakeSlack::start().await;
        TestApp::start(db, slack).await
    }

    /// Builds the app over an existing database and fake Slack (restart tests).
    pub async fn start(db: TestDb, slack: FakeSlack) -> TestApp {
        let store = db.store().await;
        let client = SlackClient::new(
            &slack.base_url(),
            SecretString::from(TOKEN),
            std::time::Duration::from_millis(500),
        )
        .expect("client");
        let identity = identify(&client).await.expect("auth.test");
        let state = AppState::new(
            store,
            Engine::builtin(),
            client,
            vec![SecretString::from(SECRET)],
            identity,
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

    /// A second instance of the app over the same database and fake Slack, like another
    /// replica (its own connection pool).
    pub async fn another_replica(&self) -> AppState {
        self.replica_at(&self.db.url).await
    }

    /// Another instance over the same fake Slack that reaches the database through `url`
    /// (the same database behind a proxy, or opened read-only).
    pub async fn replica_at(&self, url: &str) -> AppState {
        self.replica_with(url, std::time::Duration::from_millis(500))
            .await
    }

    /// [`TestApp::another_replica`] whose Slack calls time out after `timeout`.
    pub async fn another_replica_waiting(&self, timeout: std::time::Duration) -> AppState {
        self.replica_with(&self.db.url, timeout).await
    }

    async fn replica_with(&self, url: &str, timeout: std::time::Duration) -> AppState {
        let store = Store::connect(url).await.expect("connect");
        let client = SlackClient::new(&self.slack.base_url(), SecretString::from(TOKEN), timeout)
            .expect("client");
        let identity = identify(&client).await.expect("auth.test");
        AppState::new(
            store,
            Engine::builtin(),
            client,
            vec![SecretString::from(SECRET)],
            identity,
        )
    }

    /// Stops this instance, keeping the database and fake Slack, like a process restart.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            state, slack, db, ..
        } = self;
        state.store.close().await;
        TestApp::start(db, slack).await
    }

    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.expect("router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// POSTs `body` signed with the test secret at `timestamp` (Unix seconds).
    pub async fn post_signed_at(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        timestamp: i64,
    ) -> TestResponse {
        let signature = sign(SECRET.as_bytes(), timestamp, body.as_bytes());
        let request = Request::post(path)
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header("x-slack-signature", signature)
            .body(Body::from(body.to_owned()))
            .expect("request");
        self.request(request).await
    }

    pub async fn post_signed(&self, path: &str, content_type: &str, body: &str) -> TestResponse {
        self.post_signed_at(path, content_type, body, jiff::Timestamp::now().as_second())
            .await
    }

    pub async fn slash(&self, text: &str) -> TestResponse {
        self.post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &command_body(text, "trig.1"),
        )
        .await
    }

    pub async fn event(&self, envelope: &Value) -> TestResponse {
        self.post_signed("/slack/events", "application/json", &envelope.to_string())
            .await
    }

    pub async fn drain_inbox(&self) -> usize {
        self.drain_inbox_at(now_ms()).await
    }

    /// Handles every event due at `at_ms` (a failed event waits for its backoff).
    /// Takes SQLite's write lock from another connection, as a second process would;
    /// released by `ROLLBACK` on the returned connection (or by dropping it).
    pub async fn hold_sqlite_write_lock(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let mut other = sqlx::SqliteConnection::connect(&self.db.url)
            .await
            .expect("second SQLite connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .expect("write lock");
        other
    }

    pub async fn drain_inbox_at(&self, at_ms: i64) -> usize {
        cusp::jobs::inbox_worker::drain(&self.state, at_ms)
            .await
            .expect("drain inbox")
    }

    pub async fn deliver_outbox_at(&self, at_ms: i64) -> Vec<cusp::jobs::outbox_worker::Delivery> {
        cusp::jobs::outbox_worker::drain(&self.state, at_ms)
            .await
            .expect("drain outbox")
    }
}

/// Sends `request` to a router of `state`, as a request reaching that replica.
pub async fn request_to(state: &AppState, request: Request<Body>) -> TestResponse {
    let response = build_router(state.clone())
        .oneshot(request)
        .await
        .expect("router");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    TestResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// POSTs `body` to `state`'s router, signed with the test secret now.
pub async fn post_signed_to(
    state: &AppState,
    path: &str,
    content_type: &str,
    body: &str,
) -> TestResponse {
    let timestamp = jiff::Timestamp::now().as_second();
    let request = Request::post(path)
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header(
            "x-slack-signature",
            sign(SECRET.as_bytes(), timestamp, body.as_bytes()),
        )
        .body(Body::from(body.to_owned()))
        .expect("request");
    request_to(state, request).await
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub fn command_body(text: &str, trigger_id: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "deprecated"),
        ("team_id", TEAM),
        ("team_domain", "acme"),
        ("channel_id", "C_DEALS"),
        ("channel_name", "deals"),
        ("user_id", "U_SELLER"),
        ("user_name", "sam"),
        ("command", "/cusp"),
        ("text", text),
        ("response_url", "http://127.0.0.1:9/hooks/response"),
        ("trigger_id", trigger_id),
        ("api_app_id", "A_CUSP"),
    ])
    .expect("form")
}

/// An `event_callback` envelope carrying a person's channel message.
pub fn message_event(event_id: &str, user: &str, text: &str, ts: &str) -> Value {
    serde_json::json!({
        "token": "deprecated",
        "team_id": TEAM,
        "api_app_id": "A_CUSP",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_700_000_000,
        "event": {
            "type": "message",
            "channel": "C_DEALS",
            "channel_type": "channel",
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
        }
    })
}
