//! The database going away and coming back: `/readyz` says so, Slack's requests get an
//! answer that makes Slack (or the person) send them again instead of a 200 that loses
//! them, and the server serves again by itself once the database is back.
//!
//! PostgreSQL goes away through a loopback proxy the test cuts (`support::db_proxy`), never
//! by stopping the shared server; SQLite is locked by another connection, or opened
//! read-only (the tests run as root, for whom `chmod` does not make a file unwritable).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tokio::sync::watch;

use cusp::state::AppState;

use crate::support::app::{
    Backend, TEAM, TestApp, TestResponse, command_body, message_event, post_signed_to,
    postgres_url, request_to,
};
use crate::support::db_proxy::{DbProxy, upstream_of};

const FORM: &str = "application/x-www-form-urlencoded";
const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";
/// Slack gives up on a request not answered within 3 seconds.
const SLACK_DEADLINE: Duration = Duration::from_secs(3);
/// How long a test waits for the server to recover by itself.
const RECOVERY: Duration = Duration::from_secs(20);

async fn readyz(state: &AppState) -> TestResponse {
    let request = Request::get("/readyz").body(Body::empty()).unwrap();
    request_to(state, request).await
}

async fn event(state: &AppState, event_id: &str) -> TestResponse {
    let envelope = message_event(event_id, "U_SELLER", SELLER, "1700000000.000100");
    post_signed_to(
        state,
        "/slack/events",
        "application/json",
        &envelope.to_string(),
    )
    .await
}

/// Runs `request` and checks it was answered inside Slack's deadline.
async fn in_time<T>(request: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("answered at all");
    let took = started.elapsed();
    assert!(took < SLACK_DEADLINE, "answered after {took:?}");
    out
}

/// Polls `check` until it holds, at most [`RECOVERY`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + RECOVERY;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {RECOVERY:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_retryable(response: &TestResponse) {
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        response.body
    );
    assert!(
        response.headers.get("x-slack-no-retry").is_none(),
        "Slack must retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_reported_and_service_resumes_by_itself() {
    if postgres_url().is_none() {
        eprintln!("SKIPPED: CUSP_TEST_POSTGRES_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let proxy = DbProxy::start(upstream_of(&app.db.url)).await;
    // The server under test reaches PostgreSQL only through the proxy; `app` goes direct.
    let server = app.replica_at(&proxy.url_for(&app.db.url)).await;
    let (stop, stopped) = watch::channel(false);
    let inbox = tokio::spawn(cusp::jobs::inbox_worker::run(server.clone(), stopped));
    assert_eq!(readyz(&server).await.status, StatusCode::OK);

    proxy.cut();
    let not_ready = in_time(readyz(&server)).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.body, "database unreachable");
    // An event is not acknowledged: Slack sends it again.
    assert_retryable(&in_time(event(&server, "EvDown")).await);
    // A click is not acknowledged either: Slack shows the person an error to retry.
    let click = json!({
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": "U_SELLER"},
        "channel": {"id": "C_DEALS"},
        "trigger_id": "t1",
        "actions": [{"action_id": "cusp_not_now", "block_id": "cusp_prompt",
                     "value": "C_DEALS:1700000000.000100", "type": "button"}],
    });
    let body = serde_urlencoded::to_string([("payload", click.to_string())]).unwrap();
    assert_retryable(&in_time(post_signed_to(&server, "/slack/interactivity", FORM, &body)).await);
    // Slack never retries a command: the person is told that nothing was saved.
    let body = command_body("mute 1d", "trig-down");
    let answer = in_time(post_signed_to(&server, "/slack/commands", FORM, &body)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let text = answer.json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains("try again"), "{text}");
    assert!(
        !app.state
            .store
            .user_prefs(TEAM, "U_SELLER")
            .await
            .unwrap()
            .is_muted(0)
    );

    proxy.restore();
    // The pool reconnects by itself: ready again, and Slack's retry is taken.
    eventually("ready again", || async {
        readyz(&server).await.status == StatusCode::OK
    })
    .await;
    assert_eq!(event(&server, "EvDown").await.status, StatusCode::OK);
    // The inbox worker, running all along, carries on and handles it.
    eventually("the retried event handled", || async {
        app.state.store.inbox_backlog(TEAM).await.unwrap() == 0
    })
    .await;
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
    let answer = post_signed_to(&server, "/slack/commands", FORM, &body).await;
    let text = answer.json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!text.contains("try again"), "{text}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), inbox)
        .await
        .expect("worker stops")
        .unwrap();
    server.store.close().await;
}

/// The worker itself meets the outage: an event stored just before the cut is handled
/// once the database is back, with nothing lost and nothing done twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_wait_out_a_postgres_outage_and_carry_on() {
    if postgres_url().is_none() {
        eprintln!("SKIPPED: CUSP_TEST_POSTGRES_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let proxy = DbProxy::start(upstream_of(&app.db.url)).await;
    let server = app.replica_at(&proxy.url_for(&app.db.url)).await;
    assert_eq!(event(&server, "EvStored").await.status, StatusCode::OK);
    proxy.cut();
    let (stop, stopped) = watch::channel(false);
    let inbox = tokio::spawn(cusp::jobs::inbox_worker::run(
        server.clone(),
        stopped.clone(),
    ));
    let outbox = tokio::spawn(cusp::jobs::outbox_worker::run(server.clone(), stopped));
    // Long enough for both workers to fail against the database a few times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 1);
    proxy.restore();
    eventually("the nudge posted", || async {
        app.slack.posted_messages().len() == 1
    })
    .await;
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
    stop.send(true).unwrap();
    for worker in [inbox, outbox] {
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .expect("worker stops")
            .unwrap();
    }
    assert_eq!(app.slack.posted_messages().len(), 1, "posted once");
    server.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_is_reported_and_service_resumes_when_released() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(readyz(&app.state).await.status, StatusCode::OK);
    let mut other = app.hold_sqlite_write_lock().await;
    // Reads still work, so only a write tells: readiness must not say 200 here.
    let not_ready = in_time(readyz(&app.state)).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        not_ready.body.starts_with("database not writable"),
        "{}",
        not_ready.body
    );
    assert_retryable(&in_time(event(&app.state, "EvLocked")).await);

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    eventually("ready again", || async {
        readyz(&app.state).await.status == StatusCode::OK
    })
    .await;
    assert_eq!(event(&app.state, "EvLocked").await.status, StatusCode::OK);
    assert_eq!(app.drain_inbox().await, 1);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_that_can_only_be_read_is_not_ready() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // What SQLite falls back to when it cannot open the file for writing.
    let read_only = app.replica_at(&format!("{}?mode=ro", app.db.url)).await;
    let not_ready = in_time(readyz(&read_only)).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.body, "database not writable: read-only");
    assert_retryable(&in_time(event(&read_only, "EvReadOnly")).await);
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
    read_only.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_deleted_while_running_is_not_ready() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(readyz(&app.state).await.status, StatusCode::OK);
    // Open connections would go on writing into the unlinked file, which is lost.
    let path = app.db.url.trim_start_matches("sqlite://");
    std::fs::remove_file(path).unwrap();
    let not_ready = in_time(readyz(&app.state)).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        not_ready.body,
        "database not writable: its file was deleted or replaced"
    );
}
