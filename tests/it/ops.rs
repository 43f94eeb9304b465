//! Operating cusp: `/metrics` after real signed traffic, routing before signatures
//! (404, 405, `GET /`), request ids and the per-event log line, and graceful shutdown of
//! the real server on a loopback port.
//!
//! The metrics recorder is global to the process and other tests run at the same time,
//! so counters are compared before and after (a delta), and the tests here that set the
//! outbox gauges hold `GAUGES` so that they do not overwrite each other.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::instrument::WithSubscriber;

use cusp::app::run_server;
use cusp::engine::Engine;
use cusp::shutdown::{DELIVERY_GRACE, Shutdown};
use cusp::slack::signature::sign;
use cusp::slack::web_api::SlackClient;
use cusp::state::AppState;
use cusp::store::OutboxStatus;
use cusp::telemetry::LogFormat;

use crate::backend_matrix;
use crate::support::app::{Backend, SECRET, TEAM, TOKEN, TestApp, message_event, now_ms};
use crate::support::fake_slack::Scripted;

/// A deal update that gets a nudge; the words must never reach a log line.
const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";
const SECRET_WORDS: &str = "pushing hard for the PO";

static GAUGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The sum of the samples of `name` whose labels include every pair in `labels`
/// (0 when there is none), from Prometheus' text format.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let response = app
        .request(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    response.body
}

async fn metrics_show_real_signed_traffic(backend: Backend) {
    let _gauges = GAUGES.lock().await;
    let app = TestApp::spawn(backend).await;
    let before = scrape(&app).await;

    // A request signed with the wrong secret.
    let body = message_event("EvBad", "U_SELLER", SELLER, "1700000100.000100").to_string();
    let ts = jiff::Timestamp::now().as_second();
    let forged = Request::post("/slack/events")
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            sign(b"not-the-secret", ts, body.as_bytes()),
        )
        .body(Body::from(body))
        .unwrap();
    assert_eq!(app.request(forged).await.status, StatusCode::UNAUTHORIZED);

    // A real deal update, delivered twice (Slack's retry), handled into a nudge.
    let event = message_event("EvOps1", "U_SELLER", SELLER, "1700000200.000100");
    assert_eq!(app.event(&event).await.status, StatusCode::OK);
    assert_eq!(app.event(&event).await.status, StatusCode::OK);
    assert_eq!(app.drain_inbox().await, 1);
    cusp::jobs::gauges::refresh(&app.state, now_ms())
        .await
        .unwrap();
    let queued = scrape(&app).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&queued, name, labels) - sample(&before, name, labels)
    };
    let failures = [("source", "slack"), ("reason", "bad_signature")];
    assert!(
        delta("cusp_signature_failures_total", &failures) >= 1.0,
        "{queued}"
    );
    assert!(delta("cusp_events_received_total", &[("type", "message")]) >= 1.0);
    assert!(delta("cusp_events_deduplicated_total", &[]) >= 1.0);
    assert!(delta("cusp_events_handled_total", &[("outcome", "nudge")]) >= 1.0);
    assert!(delta("cusp_outbox_enqueued_total", &[("kind", "nudge")]) >= 1.0);
    let seller_centric = [("class", "seller_centric"), ("source", "message")];
    assert!(delta("cusp_observations_logged_total", &seller_centric) >= 1.0);
    let ok_events = [
        ("route", "/slack/events"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert!(delta("cusp_http_requests_total", &ok_events) >= 2.0);
    assert!(delta("cusp_http_requests_total", &[("status", "401")]) >= 1.0);
    assert_eq!(sample(&queued, "cusp_outbox_depth", &[]), 1.0, "{queued}");
    assert!(queued.contains("cusp_outbox_oldest_pending_age_seconds "));
    assert!(queued.contains("cusp_http_request_duration_seconds_bucket{"));

    // Delivered: the attempt is counted and the outbox is empty again.
    app.deliver_outbox_at(now_ms()).await;
    cusp::jobs::gauges::refresh(&app.state, now_ms())
        .await
        .unwrap();
    let sent = scrape(&app).await;
    let sent_posts = [("method", "chat.postMessage"), ("outcome", "sent")];
    assert!(
        sample(&sent, "cusp_outbox_deliveries_total", &sent_posts)
            - sample(&queued, "cusp_outbox_deliveries_total", &sent_posts)
            >= 1.0
    );
    assert_eq!(sample(&sent, "cusp_outbox_depth", &[]), 0.0, "{sent}");
    assert_eq!(app.slack.calls_to("chat.postMessage").len(), 1);
}

async fn a_rate_limit_hold_shows_in_metrics(backend: Backend) {
    let _gauges = GAUGES.lock().await;
    let app = TestApp::spawn(backend).await;
    let before = scrape(&app).await;
    app.slack.push_response(
        "chat.postMessage",
        Scripted::RateLimited {
            retry_after_secs: 30,
        },
    );
    let event = message_event("EvOps429", "U_SELLER", SELLER, "1700000300.000100");
    assert_eq!(app.event(&event).await.status, StatusCode::OK);
    app.drain_inbox().await;
    app.deliver_outbox_at(now_ms()).await;
    cusp::jobs::gauges::refresh(&app.state, now_ms())
        .await
        .unwrap();
    let after = scrape(&app).await;
    let method = [("method", "chat.postMessage")];
    assert!(
        sample(&after, "cusp_slack_rate_limit_holds_total", &method)
            - sample(&before, "cusp_slack_rate_limit_holds_total", &method)
            >= 1.0
    );
    let left = sample(
        &after,
        "cusp_slack_rate_limit_hold_remaining_seconds",
        &method,
    );
    assert!(left > 20.0 && left <= 31.0, "{after}");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_before_any_signature_check() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in ["/slack/nope", "/metrics/extra", "/nope"] {
        let unsigned = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = app.request(unsigned).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert!(response.body.contains("GET /"), "{}", response.body);
    }
    for path in [
        "/slack/events",
        "/slack/commands",
        "/slack/interactivity",
        "/hooks/deals",
    ] {
        let get = Request::get(path).body(Body::empty()).unwrap();
        let response = app.request(get).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(response.headers["allow"], "POST", "{path}");
        assert_eq!(response.body, "method not allowed", "{path}");
    }
    // The signature is still checked on the Slack routes themselves.
    let unsigned = Request::post("/slack/events")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(app.request(unsigned).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_root_names_the_server_and_links_its_endpoints() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .request(Request::get("/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response
            .body
            .starts_with(&format!("cusp {}", env!("CARGO_PKG_VERSION")))
    );
    for link in ["/healthz", "/readyz", "/metrics", "/slack/events"] {
        assert!(response.body.contains(link), "{link}: {}", response.body);
    }
    // Every answer carries a request id; one sent by the caller is kept.
    let id = response.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let given = Request::get("/healthz")
        .header("x-request-id", "lb-7f3a")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.request(given).await.headers["x-request-id"], "lb-7f3a");
}

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;
    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The value of `field` on the line or on any of its spans.
fn field<'v>(line: &'v Value, name: &str) -> Option<&'v Value> {
    line.get(name).or_else(|| {
        line["spans"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|span| span.get(name))
    })
}

fn line_with<'v>(lines: &'v [Value], message: &str) -> &'v Value {
    lines
        .iter()
        .find(|line| line["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))
}

async fn log_lines_carry_ids_and_never_the_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let captured = Captured::default();
    let subscriber = cusp::telemetry::subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info,sqlx=warn"),
        captured.clone(),
        false,
    );
    // tracing caches per log statement whether anyone listens. With a single scoped
    // subscriber alive it asks only the registering thread's own subscriber, so a
    // statement first reached by a concurrent test (which has none) would be cached as
    // unwanted. A second registered dispatcher makes it ask every live one, this too.
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    let dispatch = tracing::Dispatch::new(subscriber);
    async {
        let event = message_event("EvLog1", "U_SELLER", SELLER, "1700000400.000100");
        assert_eq!(app.event(&event).await.status, StatusCode::OK);
        assert_eq!(app.event(&event).await.status, StatusCode::OK);
        app.drain_inbox().await;
        app.deliver_outbox_at(now_ms()).await;
    }
    .with_subscriber(dispatch)
    .await;
    let lines = captured.lines();

    // A line logged inside a request: its request id and team id.
    let duplicate = line_with(&lines, "duplicate delivery ignored");
    let request_id = field(duplicate, "request_id")
        .and_then(Value::as_str)
        .unwrap();
    assert_eq!(request_id.len(), 36, "{duplicate}");
    assert_eq!(field(duplicate, "team_id").unwrap(), TEAM);
    assert_eq!(field(duplicate, "event_id").unwrap(), "EvLog1");

    // The one line per handled event.
    let handled = line_with(&lines, "event handled");
    assert_eq!(handled["level"], "INFO");
    assert_eq!(field(handled, "team_id").unwrap(), TEAM);
    assert_eq!(field(handled, "event_id").unwrap(), "EvLog1");
    assert_eq!(handled["channel_id"], "C_DEALS");
    assert_eq!(handled["class"], "seller_centric");
    assert_eq!(handled["outcome"], "nudge");
    assert!(
        handled["themes"]
            .as_str()
            .unwrap()
            .contains("quota_pressure"),
        "{handled}"
    );
    assert!(handled["latency_ms"].is_u64(), "{handled}");

    // And per delivery.
    let delivered = line_with(&lines, "delivered");
    assert_eq!(delivered["kind"], "nudge");
    assert_eq!(delivered["channel_id"], "C_DEALS");
    assert!(field(delivered, "outbox_id").unwrap().is_i64());
    assert_eq!(field(delivered, "team_id").unwrap(), TEAM);

    let text = captured.text();
    assert!(
        !text.contains(SECRET_WORDS),
        "message text in the log:\n{text}"
    );
    assert!(!text.contains(SECRET), "signing secret in the log");
    assert!(!text.contains(TOKEN), "bot token in the log");
}

/// The app of `app` served by the real server on a loopback port, with a Slack client
/// that waits long enough for the fake's slow answers.
async fn serve_on_loopback(
    app: &TestApp,
) -> (
    std::net::SocketAddr,
    Shutdown,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let client = SlackClient::new(
        &app.slack.base_url(),
        SecretString::from(TOKEN),
        Duration::from_secs(30),
    )
    .unwrap();
    let state = AppState::new(
        app.state.store.clone(),
        Engine::builtin(),
        client,
        vec![SecretString::from(SECRET)],
        app.state
            .workspaces
            .for_team(TEAM)
            .await
            .unwrap()
            .unwrap()
            .identity
            .clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let server = tokio::spawn(run_server(listener, state, shutdown.clone()));
    (addr, shutdown, server)
}

/// Queues a nudge (handled, not yet delivered) and returns its outbox key.
async fn queue_a_nudge(app: &TestApp, ts: &str) -> String {
    let event = message_event(&format!("Ev{ts}"), "U_SELLER", SELLER, ts);
    assert_eq!(app.event(&event).await.status, StatusCode::OK);
    assert_eq!(app.drain_inbox().await, 1);
    format!("nudge:C_DEALS:{ts}")
}

async fn until_slack_is_called(app: &TestApp, method: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while app.slack.calls_to(method).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the outbox worker calls Slack");
}

async fn shutdown_finishes_requests_and_deliveries_in_flight(backend: Backend) {
    let _gauges = GAUGES.lock().await;
    let app = TestApp::spawn(backend).await;
    let key = queue_a_nudge(&app, "1700000500.000100").await;
    app.slack.push_response(
        "chat.postMessage",
        Scripted::Delay(Duration::from_millis(1500)),
    );
    let (addr, shutdown, server) = serve_on_loopback(&app).await;
    until_slack_is_called(&app, "chat.postMessage").await;

    // A request in flight: headers sent, half of the body still to come.
    let body = message_event("EvInFlight", "U_SELLER", "lunch?", "1700000600.000100").to_string();
    let ts = jiff::Timestamp::now().as_second();
    let head = format!(
        "POST /slack/events HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-slack-request-timestamp: {ts}\r\nx-slack-signature: {}\r\ncontent-length: {}\r\n\r\n",
        sign(SECRET.as_bytes(), ts, body.as_bytes()),
        body.len()
    );
    let mut in_flight = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    in_flight
        .write_all(format!("{head}{first}").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    shutdown.trigger();
    // New connections are refused once the listener is closed.
    tokio::time::timeout(Duration::from_secs(5), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the server stops accepting");

    // The request in flight is still answered.
    in_flight.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        in_flight.read_to_string(&mut answer),
    )
    .await
    .expect("an answer")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The delivery in flight finished within the grace period.
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    let (status, _, _) = app.state.store.outbox_status(TEAM, &key).await.unwrap();
    assert_eq!(status, OutboxStatus::Sent);
    assert_eq!(app.slack.calls_to("chat.postMessage").len(), 1);
}

async fn a_delivery_stuck_past_the_grace_period_goes_back_to_pending(backend: Backend) {
    let _gauges = GAUGES.lock().await;
    let app = TestApp::spawn(backend).await;
    let key = queue_a_nudge(&app, "1700000700.000100").await;
    // Slack posts the message but answers only after the grace period.
    app.slack.push_response(
        "chat.postMessage",
        Scripted::Delay(DELIVERY_GRACE + Duration::from_secs(10)),
    );
    let (_, shutdown, server) = serve_on_loopback(&app).await;
    until_slack_is_called(&app, "chat.postMessage").await;
    shutdown.trigger();
    tokio::time::timeout(DELIVERY_GRACE + Duration::from_secs(5), server)
        .await
        .expect("the server stops after the grace period")
        .unwrap()
        .unwrap();

    // Back to pending, not `sending` under a lease: a restart delivers it at once,
    // finds the post that did land, and does not post it again.
    let (status, _, attempts) = app.state.store.outbox_status(TEAM, &key).await.unwrap();
    assert_eq!(status, OutboxStatus::Pending);
    assert_eq!(attempts, 0, "the interrupted attempt is not counted");
    let deliveries = app.deliver_outbox_at(now_ms()).await;
    assert!(
        matches!(
            deliveries.as_slice(),
            [cusp::jobs::outbox_worker::Delivery::FoundEarlierPost { .. }]
        ),
        "{deliveries:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1);
}

backend_matrix!(
    metrics_show_real_signed_traffic,
    a_rate_limit_hold_shows_in_metrics,
    log_lines_carry_ids_and_never_the_text,
    shutdown_finishes_requests_and_deliveries_in_flight,
    a_delivery_stuck_past_the_grace_period_goes_back_to_pending,
);
