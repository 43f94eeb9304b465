//! Socket Mode end to end: the real supervisor against a stand-in Socket Mode server on
//! loopback, FakeSlack's `apps.connections.open`, the real inbox, workers and outbox.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use cusp::backoff::Backoff;
use cusp::server::socket_mode::{SocketModeError, SocketModeOptions, start};
use cusp::slack::web_api::SlackClient;

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, message_event, now_ms};
use crate::support::fake_slack::{Scripted, TEST_APP_TOKEN};
use crate::support::fake_socket_mode::{FakeSocketMode, WAIT, disconnect, envelope};

const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";

/// Quick timings so that silence, backoff and refreshes happen within a test.
fn fast() -> SocketModeOptions {
    SocketModeOptions {
        ping_interval: Duration::from_millis(50),
        silence_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(2),
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        stable_after: Duration::from_secs(30),
        disabled_retry: Duration::from_secs(60),
    }
}

/// The app, the stand-in socket server, and the running Socket Mode loop.
struct SocketApp {
    app: TestApp,
    socket: FakeSocketMode,
    shutdown: watch::Sender<bool>,
    running: JoinHandle<()>,
}

fn app_client(app: &TestApp, token: &str) -> SlackClient {
    SlackClient::new(
        &app.slack.base_url(),
        SecretString::from(token.to_owned()),
        Duration::from_millis(500),
    )
    .expect("client")
}

impl SocketApp {
    async fn start(backend: Backend, options: SocketModeOptions) -> SocketApp {
        let app = TestApp::spawn(backend).await;
        let socket = FakeSocketMode::start().await;
        app.slack.serve_socket_mode(&socket.url());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let running = start(
            app.state.clone(),
            app_client(&app, TEST_APP_TOKEN),
            options,
            shutdown_rx,
        )
        .await
        .expect("Socket Mode starts");
        socket.wait_for_connections(1).await;
        SocketApp {
            app,
            socket,
            shutdown,
            running,
        }
    }

    /// Stops the loop as `serve` does on SIGTERM, and checks that it stops promptly and
    /// closes its connection.
    async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(WAIT, self.running)
            .await
            .expect("Socket Mode stops on shutdown")
            .expect("Socket Mode task");
        let opened = self.socket.opened();
        self.socket.wait_closed(opened).await;
        assert_eq!(self.socket.live(), 0);
    }

    async fn settle(&self) {
        self.app.drain_inbox().await;
        self.app.deliver_outbox_at(now_ms()).await;
    }
}

fn slash(text: &str) -> Value {
    json!({
        "token": "deprecated", "team_id": TEAM, "team_domain": "acme",
        "channel_id": "C_DEALS", "channel_name": "deals", "user_id": "U_SELLER",
        "user_name": "sam", "command": "/cusp", "text": text,
        "api_app_id": "A_CUSP", "is_enterprise_install": "false",
        "response_url": "http://127.0.0.1:9/hooks/response", "trigger_id": "trig.socket",
    })
}

fn button_value(message: &crate::support::fake_slack::PostedMessage) -> String {
    let blocks = message.blocks.as_array().expect("blocks");
    let actions = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("actions block");
    actions["elements"][0]["value"]
        .as_str()
        .expect("button value")
        .to_owned()
}

async fn events_commands_and_clicks_are_answered_over_the_socket(backend: Backend) {
    let s = SocketApp::start(backend, fast()).await;

    // An event: acked, stored in the same inbox, nudged through the Web API.
    s.socket.send(
        1,
        &envelope(
            "events_api",
            "env-ev1",
            message_event("Ev1", "U_SELLER", SELLER, "1700000000.000100"),
            0,
        ),
    );
    assert_eq!(
        s.socket.ack(1, "env-ev1").await,
        json!({"envelope_id": "env-ev1"})
    );
    assert_eq!(s.app.drain_inbox().await, 1, "the event is in the inbox");
    s.app.deliver_outbox_at(now_ms()).await;
    let posted = s.app.slack.posted_messages();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(
        (posted[0].channel.as_str(), posted[0].thread_ts.as_deref()),
        ("C_DEALS", Some("1700000000.000100"))
    );

    // A slash command: the ephemeral answer rides on the ack.
    s.socket
        .send(1, &envelope("slash_commands", "env-cmd", slash("help"), 0));
    let ack = s.socket.ack(1, "env-cmd").await;
    assert_eq!(ack["payload"]["response_type"], "ephemeral", "{ack}");
    assert!(
        ack["payload"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("/cusp reflect")),
        "{ack}"
    );
    s.socket.send(
        1,
        &envelope(
            "slash_commands",
            "env-reflect",
            slash(&format!("reflect {SELLER}")),
            0,
        ),
    );
    let reflected = s.socket.ack(1, "env-reflect").await;
    assert!(
        reflected["payload"]["blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty()),
        "{reflected}"
    );

    // A click: handled by the same bot code as over HTTP.
    let key = button_value(&posted[0]);
    let click = json!({
        "type": "block_actions", "team": {"id": TEAM}, "user": {"id": "U_SELLER"},
        "channel": {"id": "C_DEALS"}, "trigger_id": "t1",
        "actions": [{"action_id": "cusp_not_now", "block_id": "cusp_prompt", "value": key, "type": "button"}],
    });
    s.socket
        .send(1, &envelope("interactive", "env-click", click, 0));
    assert_eq!(
        s.socket.ack(1, "env-click").await,
        json!({"envelope_id": "env-click"})
    );
    assert!(
        !s.app
            .state
            .store
            .unhelpful_question_ids(TEAM)
            .await
            .unwrap()
            .is_empty(),
        "the click was recorded"
    );

    // A modal submitted empty: the validation errors ride on the ack.
    let submission = json!({
        "type": "view_submission", "team": {"id": TEAM}, "user": {"id": "U_SELLER"},
        "view": {"id": "V1", "callback_id": "cusp_reflection", "private_metadata": key,
                 "state": {"values": {}}},
    });
    s.socket
        .send(1, &envelope("interactive", "env-view", submission, 0));
    let ack = s.socket.ack(1, "env-view").await;
    assert_eq!(ack["payload"]["response_action"], "errors", "{ack}");

    // Malformed and unknown envelopes are acknowledged and change nothing.
    s.socket.send(
        1,
        &envelope("interactive", "env-bad", json!({"type": "nonsense"}), 0),
    );
    assert_eq!(
        s.socket.ack(1, "env-bad").await,
        json!({"envelope_id": "env-bad"})
    );
    s.socket.send(
        1,
        &json!({"type": "something_new", "envelope_id": "env-new"}),
    );
    s.socket.ack(1, "env-new").await;

    assert_eq!(s.app.slack.posted_messages().len(), 1);
    let sent = s.socket.received(1);
    assert_eq!(sent.len(), 7, "each envelope acknowledged once: {sent:?}");
    assert_eq!(s.socket.opened(), 1, "no reconnect was needed");
    s.stop().await;
}

async fn an_event_resent_on_the_next_connection_is_handled_once(backend: Backend) {
    let s = SocketApp::start(backend, fast()).await;
    let event = message_event("Ev1", "U_SELLER", SELLER, "1700000000.000100");
    s.socket
        .send(1, &envelope("events_api", "env-1", event.clone(), 0));
    s.socket.ack(1, "env-1").await;

    // Slack recycles the connection and delivers the event again on the new one.
    s.socket.send(1, &disconnect("refresh_requested"));
    s.socket.wait_for_connections(2).await;
    s.socket.send(2, &envelope("events_api", "env-2", event, 1));
    assert_eq!(
        s.socket.ack(2, "env-2").await,
        json!({"envelope_id": "env-2"})
    );

    assert_eq!(s.app.drain_inbox().await, 1, "the inbox kept one copy");
    s.settle().await;
    assert_eq!(
        s.app.slack.posted_messages().len(),
        1,
        "one nudge for one event"
    );
    assert_eq!(s.app.state.store.count_observations(TEAM).await.unwrap(), 1);
    s.stop().await;
}

/// The database cannot take the event: the envelope is left unacknowledged, so Slack
/// sends it again, and the resent one is taken once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_cannot_take_is_not_acknowledged() {
    let s = SocketApp::start(Backend::Sqlite, fast()).await;
    let mut other = s.app.hold_sqlite_write_lock().await;
    let event = message_event("Ev1", "U_SELLER", SELLER, "1700000000.000100");
    s.socket
        .send(1, &envelope("events_api", "env-1", event.clone(), 0));
    // Past the events' 2 s ack budget, the answer is final: no ack was sent.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let acked = |frames: Vec<Value>| frames.iter().any(|f| f["envelope_id"] == "env-1");
    assert!(!acked(s.socket.received(1)), "{:?}", s.socket.received(1));

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    s.socket.send(1, &envelope("events_api", "env-1", event, 1));
    assert_eq!(
        s.socket.ack(1, "env-1").await,
        json!({"envelope_id": "env-1"})
    );
    assert_eq!(s.app.drain_inbox().await, 1);
    assert_eq!(s.app.state.store.count_observations(TEAM).await.unwrap(), 1);
    s.stop().await;
}

backend_matrix!(
    events_commands_and_clicks_are_answered_over_the_socket,
    an_event_resent_on_the_next_connection_is_handled_once,
    another_teams_envelopes_are_acked_and_store_nothing,
);

/// Envelopes naming a team this single-workspace server does not serve: each acked (an
/// unacked envelope only comes back), the command told cusp is not installed there, and
/// not a row stored anywhere.
async fn another_teams_envelopes_are_acked_and_store_nothing(backend: Backend) {
    const FOREIGN: &str = "T_FOREIGN";
    let s = SocketApp::start(backend, fast()).await;
    let before = crate::support::two_teams::snapshot(&s.app.db).await;
    let mut event = message_event("EvForeign", "U_SELLER", SELLER, "1700000000.000100");
    event["team_id"] = json!(FOREIGN);
    let mut command = slash(&format!("reflect {SELLER}"));
    command["team_id"] = json!(FOREIGN);
    let click = json!({
        "type": "block_actions", "team": {"id": FOREIGN}, "user": {"id": "U_SELLER"},
        "channel": {"id": "C_DEALS"}, "trigger_id": "t1",
        "actions": [{"action_id": "cusp_optout_confirm", "block_id": "b", "value": "U_SELLER", "type": "button"}],
    });
    let submission = json!({
        "type": "view_submission", "team": {"id": FOREIGN}, "user": {"id": "U_SELLER"},
        "view": {"id": "V1", "callback_id": "cusp_reflection", "private_metadata": "nudge:C_DEALS:1",
                 "state": {"values": {"q0": {"answer": {"type": "plain_text_input", "value": "x"}}}}},
    });
    s.socket
        .send(1, &envelope("events_api", "env-ev", event, 0));
    s.socket
        .send(1, &envelope("slash_commands", "env-cmd", command, 0));
    s.socket
        .send(1, &envelope("interactive", "env-click", click, 0));
    s.socket
        .send(1, &envelope("interactive", "env-view", submission, 0));
    assert_eq!(
        s.socket.ack(1, "env-ev").await,
        json!({"envelope_id": "env-ev"})
    );
    let answer = s.socket.ack(1, "env-cmd").await;
    assert!(
        answer["payload"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("isn't installed")),
        "{answer}"
    );
    assert_eq!(
        s.socket.ack(1, "env-click").await,
        json!({"envelope_id": "env-click"})
    );
    assert_eq!(
        s.socket.ack(1, "env-view").await,
        json!({"envelope_id": "env-view"})
    );
    s.settle().await;
    assert_eq!(
        crate::support::two_teams::rows_naming(&s.app.db, FOREIGN).await,
        vec![]
    );
    assert_eq!(crate::support::two_teams::snapshot(&s.app.db).await, before);
    assert!(s.app.slack.posted_messages().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_requested_opens_the_next_connection_before_closing_the_old() {
    let s = SocketApp::start(Backend::Sqlite, fast()).await;
    s.socket.send(1, &disconnect("warning"));
    s.socket.wait_for_connections(2).await;
    s.socket.wait_closed(1).await;
    let (_, old_closed) = s.socket.times(1);
    let (new_opened, new_closed) = s.socket.times(2);
    assert!(
        old_closed.expect("old closed") > new_opened,
        "the new connection opened before the old one closed"
    );
    assert!(new_closed.is_none());
    assert_eq!(s.socket.live(), 1, "at most one live connection afterwards");

    // The new connection serves; the next refresh replaces it the same way.
    s.socket
        .send(2, &envelope("slash_commands", "env-a", slash("help"), 0));
    s.socket.ack(2, "env-a").await;
    s.socket.send(2, &disconnect("refresh_requested"));
    s.socket.wait_for_connections(3).await;
    s.socket.wait_closed(2).await;
    assert_eq!(s.socket.live(), 1);
    assert_eq!(
        s.app.slack.calls_to("apps.connections.open").len(),
        3,
        "one URL per connection"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_in_flight_is_acked_before_the_old_connection_closes() {
    let s = SocketApp::start(Backend::Sqlite, fast()).await;
    s.socket.send(
        1,
        &envelope(
            "events_api",
            "env-ev",
            message_event("Ev1", "U_SELLER", SELLER, "1700000000.000100"),
            0,
        ),
    );
    s.socket.ack(1, "env-ev").await;
    s.settle().await;
    let key = button_value(&s.app.slack.posted_messages()[0]);
    // "Reflect" opens a modal with views.open, which Slack answers slowly this time.
    s.app
        .slack
        .push_response("views.open", Scripted::Delay(Duration::from_millis(400)));
    let click = json!({
        "type": "block_actions", "team": {"id": TEAM}, "user": {"id": "U_SELLER"},
        "channel": {"id": "C_DEALS"}, "trigger_id": "t-slow",
        "actions": [{"action_id": "cusp_reflect", "block_id": "cusp_prompt", "value": key, "type": "button"}],
    });
    s.socket
        .send(1, &envelope("interactive", "env-slow", click, 0));
    s.socket.send(1, &disconnect("refresh_requested"));
    s.socket.wait_for_connections(2).await;
    s.socket.wait_closed(1).await;
    assert_eq!(
        s.socket.received(1),
        vec![
            json!({"envelope_id": "env-ev"}),
            json!({"envelope_id": "env-slow"})
        ],
        "the slow click was answered on the socket it came in on"
    );
    assert_eq!(s.app.slack.calls_to("views.open").len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_is_detected_and_replaced() {
    let s = SocketApp::start(Backend::Sqlite, fast()).await;
    // Connection 1 stops answering pings (a half-open socket).
    s.socket.go_silent(1, Duration::from_millis(1_500));
    s.socket.wait_for_connections(2).await;
    let (silenced_at, _) = s.socket.times(1);
    let (replaced_at, _) = s.socket.times(2);
    assert!(
        replaced_at.duration_since(silenced_at) >= fast().silence_timeout,
        "not replaced before the silence timeout"
    );
    s.socket
        .send(2, &envelope("slash_commands", "env-b", slash("help"), 0));
    s.socket.ack(2, "env-b").await;
    // When the stalled peer reads again it finds cusp gone.
    s.socket.wait_closed(1).await;
    assert_eq!(s.socket.live(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_socket_is_reopened() {
    let s = SocketApp::start(Backend::Sqlite, fast()).await;
    s.socket.close(1);
    s.socket.wait_for_connections(2).await;
    s.socket
        .send(2, &envelope("slash_commands", "env-c", slash("help"), 0));
    s.socket.ack(2, "env-c").await;
    assert_eq!(s.socket.live(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_disabled_stops_reconnecting_until_the_long_retry() {
    let s = SocketApp::start(Backend::Sqlite, fast()).await;
    s.socket.send(1, &disconnect("link_disabled"));
    s.socket.wait_closed(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.app.slack.calls_to("apps.connections.open").len(),
        1,
        "no new connection is asked for at once"
    );
    assert_eq!(s.socket.opened(), 1);
    // Shutdown still ends the wait at once.
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_open_waits_for_retry_after() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let socket = FakeSocketMode::start().await;
    app.slack.serve_socket_mode(&socket.url());
    app.slack.push_response(
        "apps.connections.open",
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let (shutdown, shutdown_rx) = watch::channel(false);
    let running = start(
        app.state.clone(),
        app_client(&app, TEST_APP_TOKEN),
        fast(),
        shutdown_rx,
    )
    .await
    .expect("a 429 at start is retried, not fatal");
    socket.wait_for_connections(1).await;
    let calls = app.slack.calls_to("apps.connections.open");
    assert_eq!(calls.len(), 2);
    assert!(
        calls[1].at.duration_since(calls[0].at) >= Duration::from_secs(1),
        "waited for Retry-After, not just the 20 ms backoff"
    );
    let _ = shutdown.send(true);
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_app_token_fails_start_naming_the_fix() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let socket = FakeSocketMode::start().await;
    app.slack.serve_socket_mode(&socket.url());
    let (_shutdown, shutdown_rx) = watch::channel(false);
    let Err(err) = start(
        app.state.clone(),
        app_client(&app, "xapp-1-revoked"),
        fast(),
        shutdown_rx,
    )
    .await
    else {
        panic!("a rejected app token must fail start");
    };
    assert!(
        matches!(&err, SocketModeError::Rejected { code } if code == "invalid_auth"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("SLACK_APP_TOKEN") && message.contains("connections:write"),
        "{message}"
    );
    assert!(!message.contains("xapp-1-revoked"), "{message}");
    assert_eq!(socket.opened(), 0);
}

#[tokio::test]
async fn http_slack_routes_answer_404_without_a_signing_secret() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut state = app.state.clone();
    state.signing_secrets = Arc::new(Vec::new());
    let router = cusp::app::build_router(state);
    for path in ["/slack/events", "/slack/commands", "/slack/interactivity"] {
        let response = tower::ServiceExt::oneshot(
            router.clone(),
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // With the secret, the same route verifies (and refuses an unsigned request).
    let response = app
        .request(
            Request::post("/slack/events")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

mod binary;
