//! The HTTP edge driven through the real router: verification, commands, events.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::backend_matrix;
use crate::support::app::{Backend, SECRET, TEAM, TestApp, command_body, message_event};

const FORM: &str = "application/x-www-form-urlencoded";
const SELLER_UPDATE: &str = "Acme Logistics: need to get them to sign by Friday so I hit my quota, offering 20% off if they close this week";

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn raw_post(path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut builder = Request::post(path).header("content-type", FORM);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn unsigned_requests_are_rejected_on_every_slack_route() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in ["/slack/commands", "/slack/events", "/slack/interactivity"] {
        let response = app
            .request(raw_post(path, &[], &command_body("help", "t")))
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            response.body.contains("X-Slack-Request-Timestamp"),
            "{}",
            response.body
        );
    }
    assert!(app.slack.calls_to("chat.postMessage").is_empty());
}

#[tokio::test]
async fn rejects_requests_signed_more_than_five_minutes_away() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = command_body("help", "t");
    for skew in [-6 * 60, 6 * 60] {
        let response = app
            .post_signed_at("/slack/commands", FORM, &body, now() + skew)
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert!(response.body.contains("stale"), "{}", response.body);
    }
    let fresh = app
        .post_signed_at("/slack/commands", FORM, &body, now() - 4 * 60)
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
}

#[tokio::test]
async fn rejects_bad_signatures_and_malformed_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = command_body("help", "t");
    let ts = now().to_string();
    let good = cusp::slack::signature::sign(SECRET.as_bytes(), now(), body.as_bytes());
    let wrong_secret = cusp::slack::signature::sign(b"another-secret", now(), body.as_bytes());
    #[allow(clippy::type_complexity)]
    let cases: Vec<(Vec<(&str, &str)>, &str, &str)> = vec![
        (
            vec![("x-slack-request-timestamp", &ts)],
            &body,
            "X-Slack-Signature",
        ),
        (
            vec![
                ("x-slack-request-timestamp", &ts),
                ("x-slack-signature", &wrong_secret),
            ],
            &body,
            "mismatch",
        ),
        (
            vec![
                ("x-slack-request-timestamp", &ts),
                ("x-slack-signature", &good),
            ],
            "team_id=T_EVIL",
            "mismatch",
        ),
        (
            vec![
                ("x-slack-request-timestamp", &ts),
                ("x-slack-signature", "v0=nothex"),
            ],
            &body,
            "malformed",
        ),
        (
            vec![
                ("x-slack-request-timestamp", "soon"),
                ("x-slack-signature", &good),
            ],
            &body,
            "malformed",
        ),
    ];
    for (headers, body, reason) in cases {
        let response = app
            .request(raw_post("/slack/commands", &headers, body))
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(
            response.body.contains(reason),
            "{} should mention {reason}",
            response.body
        );
    }
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = format!("text={}", "a".repeat(1024 * 1024 + 1));
    let response = app.post_signed("/slack/commands", FORM, &body).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn signed_but_malformed_payloads_get_400_without_retry() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let cases = [
        ("/slack/commands", FORM, "team_id=T_TEST"),
        ("/slack/events", "application/json", "{not json"),
        (
            "/slack/events",
            "application/json",
            r#"{"type":"event_callback","team_id":"T_TEST"}"#,
        ),
        ("/slack/interactivity", FORM, "payload=%7Bnope"),
        ("/slack/interactivity", FORM, "nothing=here"),
    ];
    for (path, content_type, body) in cases {
        let response = app.post_signed(path, content_type, body).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            response.body
        );
        assert_eq!(response.headers.get("x-slack-no-retry").unwrap(), "1");
        assert!(!response.body.is_empty());
    }
}

#[tokio::test]
async fn ssl_check_is_answered_only_when_signed_and_dispatches_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = "ssl_check=1&token=abc&payload=%7B%22type%22%3A%22block_actions%22%7D&command=%2Fcusp&text=reflect+x";
    let signed = app.post_signed("/slack/commands", FORM, body).await;
    assert_eq!((signed.status, signed.body.as_str()), (StatusCode::OK, ""));
    let unsigned = app.request(raw_post("/slack/commands", &[], body)).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 0);
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .event(&json!({"token": "x", "challenge": "3eZbrw1aB", "type": "url_verification"}))
        .await;
    assert_eq!(
        (response.status, response.body.as_str()),
        (StatusCode::OK, "3eZbrw1aB")
    );
}

#[tokio::test]
async fn help_and_unknown_commands_answer_ephemerally() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for text in ["", "help"] {
        let reply = app.slash(text).await.json();
        assert_eq!(reply["response_type"], "ephemeral");
        assert!(
            reply["text"].as_str().unwrap().contains("/cusp reflect"),
            "{reply}"
        );
    }
    let reply = app.slash("reflcet Acme").await.json();
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("Did you mean `/cusp reflect`?"),
        "{reply}"
    );
}

async fn reflect_answers_with_themes_and_questions_and_logs_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = command_body(&format!("reflect {SELLER_UPDATE}"), "trigger-42");
    let started = std::time::Instant::now();
    let response = app.post_signed("/slack/commands", FORM, &body).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(response.status, StatusCode::OK);
    let reply = response.json();
    assert_eq!(reply["response_type"], "ephemeral");
    let rendered = reply["blocks"].to_string();
    assert!(rendered.contains("closing push"), "{rendered}");
    assert!(rendered.contains("Questions to consider"), "{rendered}");
    assert!(reply["blocks"].as_array().unwrap().len() <= 50);
    // The same request again (same trigger) is logged once.
    app.post_signed("/slack/commands", FORM, &body).await;
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
    // Text that is not a deal update is answered but not counted as one.
    let chatter = command_body("reflect anyone up for tacos at noon?", "trigger-43");
    let reply = app.post_signed("/slack/commands", FORM, &chatter).await;
    assert!(
        reply.json()["blocks"]
            .to_string()
            .contains("doesn't read like a deal update")
    );
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
    // No message text is stored.
    let mut out = Vec::new();
    cusp::bot::export::export(
        &app.state.store,
        Some(TEAM),
        &Default::default(),
        cusp::bot::export::ExportFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    let exported = String::from_utf8(out).unwrap();
    assert!(exported.contains("\"source\":\"command\""), "{exported}");
    assert!(!exported.contains("sign by Friday"), "{exported}");
}

async fn a_deal_update_event_is_observed_once_despite_retries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = message_event("Ev001", "U_SELLER", SELLER_UPDATE, "1700000000.000100");
    let first = app.event(&event).await;
    assert_eq!(first.status, StatusCode::OK);
    // Slack retries (same event_id) before and after we handled it.
    let body = event.to_string();
    let retry = app
        .request(
            Request::post("/slack/events")
                .header("content-type", "application/json")
                .header("x-slack-retry-num", "1")
                .header("x-slack-retry-reason", "http_timeout")
                .header("x-slack-request-timestamp", now().to_string())
                .header(
                    "x-slack-signature",
                    cusp::slack::signature::sign(SECRET.as_bytes(), now(), body.as_bytes()),
                )
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(app.drain_inbox().await, 1);
    app.event(&event).await;
    assert_eq!(app.drain_inbox().await, 0);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
}

async fn an_event_survives_a_crash_after_the_ack(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.event(&message_event(
        "Ev002",
        "U_SELLER",
        SELLER_UPDATE,
        "1700000000.000200",
    ))
    .await;
    // The process dies before the worker ran; a new one resumes the inbox.
    let app = app.restart().await;
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 1);
    assert_eq!(app.drain_inbox().await, 1);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
}

backend_matrix!(
    reflect_answers_with_themes_and_questions_and_logs_once,
    a_deal_update_event_is_observed_once_despite_retries,
    an_event_survives_a_crash_after_the_ack,
);

#[tokio::test]
async fn bot_messages_edits_joins_and_other_teams_are_not_stored() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut own = message_event("Ev-own", "U_CUSP", SELLER_UPDATE, "1.1");
    own["event"]["bot_id"] = json!("B_CUSP");
    let mut other_bot = message_event("Ev-bot", "U_OTHER", SELLER_UPDATE, "1.2");
    other_bot["event"]["subtype"] = json!("bot_message");
    other_bot["event"]["bot_id"] = json!("B_OTHER");
    let mut edit = message_event("Ev-edit", "U_SELLER", SELLER_UPDATE, "1.3");
    edit["event"]["subtype"] = json!("message_changed");
    edit["event"]["hidden"] = json!(true);
    let mut join = message_event("Ev-join", "U_SELLER", "has joined the channel", "1.4");
    join["event"]["subtype"] = json!("channel_join");
    let mut foreign = message_event("Ev-foreign", "U_SELLER", SELLER_UPDATE, "1.5");
    foreign["team_id"] = json!("T_OTHER");
    for event in [own, other_bot, edit, join, foreign] {
        assert_eq!(app.event(&event).await.status, StatusCode::OK);
    }
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
    assert_eq!(app.drain_inbox().await, 0);
}

#[tokio::test]
async fn chit_chat_is_not_observed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.event(&message_event(
        "Ev-chat",
        "U_SELLER",
        "anyone up for lunch at noon? :taco:",
        "1.6",
    ))
    .await;
    assert_eq!(app.drain_inbox().await, 1);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 0);
}

#[tokio::test]
async fn health_is_up_and_readiness_follows_the_database() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(app.request(get("/healthz")).await.status, StatusCode::OK);
    assert_eq!(app.request(get("/readyz")).await.status, StatusCode::OK);
    app.state.store.close().await;
    let not_ready = app.request(get("/readyz")).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.body, "database unreachable");
    assert_eq!(app.request(get("/healthz")).await.status, StatusCode::OK);
    // With the database gone, events are refused with 503 so that Slack retries.
    let response = app
        .event(&message_event("Ev-503", "U_SELLER", SELLER_UPDATE, "1.7"))
        .await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers.get("x-slack-no-retry").is_none());
}

#[tokio::test]
async fn commands_answer_in_time_while_the_database_is_locked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Another process holds SQLite's write lock (cusp would wait 5 s for it).
    let mut other = app.hold_sqlite_write_lock().await;

    let started = std::time::Instant::now();
    let body = command_body(&format!("reflect {SELLER_UPDATE}"), "trigger-locked");
    let response = app.post_signed("/slack/commands", FORM, &body).await;
    let reflect_took = started.elapsed();
    assert_eq!(response.status, StatusCode::OK);
    let rendered = response.json()["blocks"].to_string();
    assert!(rendered.contains("Questions to consider"), "{rendered}");

    let started = std::time::Instant::now();
    let response = app
        .post_signed(
            "/slack/commands",
            FORM,
            &command_body("mute 1d", "trigger-mute"),
        )
        .await;
    let mute_took = started.elapsed();
    let text = response.json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("try again"), "{text}");
    assert!(
        reflect_took < std::time::Duration::from_millis(2_900)
            && mute_took < std::time::Duration::from_millis(2_900),
        "reflect {reflect_took:?}, mute {mute_took:?}"
    );

    // Once the lock is gone, the same command works.
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let response = app
        .post_signed(
            "/slack/commands",
            FORM,
            &command_body("mute 1d", "trigger-mute-2"),
        )
        .await;
    let text = response.json()["text"].as_str().unwrap().to_owned();
    assert!(!text.contains("try again"), "{text}");
}
