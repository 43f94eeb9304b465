//! Outbox delivery against the fake Slack: retries, rate limits, permanent errors,
//! restarts, and no double posts when an attempt's outcome is unknown.

use std::time::Duration;

use cusp::jobs::outbox_worker::{Delivery, MAX_ATTEMPTS, OUTBOX_LEASE};
use cusp::store::{NewOutboxMessage, OutboxStatus};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, now_ms};
use crate::support::fake_slack::Scripted;

fn post(key: &str, channel: &str) -> NewOutboxMessage {
    let mut params = serde_json::Map::new();
    params.insert("channel".into(), channel.into());
    params.insert("text".into(), format!("message {key}").into());
    NewOutboxMessage {
        idempotency_key: key.into(),
        method: "chat.postMessage".into(),
        params,
    }
}

async fn enqueue(app: &TestApp, key: &str, at_ms: i64) {
    app.state
        .store
        .enqueue_outbox(TEAM, &[post(key, "C_DEALS")], at_ms)
        .await
        .unwrap();
}

async fn status(app: &TestApp, key: &str) -> OutboxStatus {
    app.state.store.outbox_status(TEAM, key).await.unwrap().0
}

async fn a_message_is_delivered_once_with_its_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    let deliveries = app.deliver_outbox_at(t).await;
    assert!(
        matches!(deliveries.as_slice(), [Delivery::Sent { ts: Some(_) }]),
        "{deliveries:?}"
    );
    assert_eq!(app.deliver_outbox_at(t + 60_000).await, vec![]);
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].metadata["event_payload"]["key"], "k1");
    let call = &app.slack.calls_to("chat.postMessage")[0];
    assert!(call.auth_ok, "bearer token sent");
    assert_eq!(status(&app, "k1").await, OutboxStatus::Sent);
}

async fn rate_limits_are_honoured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.push_response(
        "chat.postMessage",
        Scripted::RateLimited {
            retry_after_secs: 7,
        },
    );
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    let first = app.deliver_outbox_at(t).await;
    let [
        Delivery::Retrying {
            at_ms,
            in_doubt: false,
            ..
        },
    ] = first.as_slice()
    else {
        panic!("{first:?}")
    };
    assert_eq!(*at_ms, t + 7_000);
    assert_eq!(
        app.deliver_outbox_at(t + 6_999).await,
        vec![],
        "not before Retry-After"
    );
    let second = app.deliver_outbox_at(t + 7_000).await;
    assert!(
        matches!(second.as_slice(), [Delivery::Sent { .. }]),
        "{second:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1);
}

async fn server_errors_back_off_then_give_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..MAX_ATTEMPTS {
        app.slack
            .push_response("chat.postMessage", Scripted::Status(503));
    }
    let mut t = now_ms();
    enqueue(&app, "k1", t).await;
    let mut delays = Vec::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let result = app.deliver_outbox_at(t).await;
        match result.as_slice() {
            [Delivery::Retrying { at_ms, .. }] => {
                assert!(attempt < MAX_ATTEMPTS);
                delays.push(at_ms - t);
                t = *at_ms;
            }
            [Delivery::Dead { error }] => {
                assert_eq!(attempt, MAX_ATTEMPTS);
                assert!(error.contains("503"), "{error}");
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    assert_eq!(status(&app, "k1").await, OutboxStatus::Dead);
    // Exponential: each delay is within jitter of twice the previous one's base.
    assert!(
        delays.windows(2).all(|w| w[1] as f64 >= w[0] as f64 * 0.6),
        "{delays:?}"
    );
    assert!(app.slack.posted_messages().is_empty());
}

async fn permanent_errors_are_recorded_without_retrying(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack
        .push_response("chat.postMessage", Scripted::OkFalse("channel_not_found"));
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    let result = app.deliver_outbox_at(t).await;
    let [Delivery::Dead { error }] = result.as_slice() else {
        panic!("{result:?}")
    };
    assert!(error.contains("channel_not_found"), "{error}");
    assert_eq!(app.deliver_outbox_at(t + 3_600_000).await, vec![]);
    assert_eq!(app.slack.calls_to("chat.postMessage").len(), 1);
    let (state, last_error, _) = app.state.store.outbox_status(TEAM, "k1").await.unwrap();
    assert_eq!(state, OutboxStatus::Dead);
    assert!(last_error.unwrap().contains("channel_not_found"));
}

async fn a_lost_answer_does_not_cause_a_second_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Slack posts the message but the answer is a 500.
    app.slack
        .push_response("chat.postMessage", Scripted::DropAfterPost);
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    let first = app.deliver_outbox_at(t).await;
    let [
        Delivery::Retrying {
            at_ms,
            in_doubt: true,
            ..
        },
    ] = first.as_slice()
    else {
        panic!("{first:?}")
    };
    let second = app.deliver_outbox_at(*at_ms).await;
    assert!(
        matches!(second.as_slice(), [Delivery::FoundEarlierPost { .. }]),
        "{second:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1);
    assert_eq!(status(&app, "k1").await, OutboxStatus::Sent);
}

async fn a_timed_out_call_is_checked_before_posting_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Longer than the test client's 500 ms timeout; Slack still posts it.
    app.slack.push_response(
        "chat.postMessage",
        Scripted::Delay(Duration::from_millis(900)),
    );
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    let first = app.deliver_outbox_at(t).await;
    let [
        Delivery::Retrying {
            at_ms,
            in_doubt: true,
            error,
        },
    ] = first.as_slice()
    else {
        panic!("{first:?}")
    };
    assert!(
        error.contains("timed out") || error.contains("timeout"),
        "{error}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = app.deliver_outbox_at(*at_ms).await;
    assert!(
        matches!(second.as_slice(), [Delivery::FoundEarlierPost { .. }]),
        "{second:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1);
}

async fn a_crash_between_slacks_answer_and_mark_sent_does_not_post_twice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    // A worker claims the row and its post reaches Slack, then the process dies before
    // the row is marked sent.
    let item = app
        .state
        .store
        .claim_outbox_item(TEAM, t, OUTBOX_LEASE)
        .await
        .unwrap()
        .unwrap();
    let mut params = item.params().unwrap();
    params.insert(
        "metadata".into(),
        serde_json::json!({"event_type": "cusp_outbox", "event_payload": {"key": "k1"}}),
    );
    app.state
        .slack
        .call("chat.postMessage", &params)
        .await
        .unwrap();
    let app = app.restart().await;
    assert_eq!(
        app.deliver_outbox_at(t + 1_000).await,
        vec![],
        "still leased"
    );
    let after_lease = t + OUTBOX_LEASE.as_millis() as i64 + 1;
    let result = app.deliver_outbox_at(after_lease).await;
    assert!(
        matches!(result.as_slice(), [Delivery::FoundEarlierPost { .. }]),
        "{result:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1);
}

async fn pending_deliveries_resume_after_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    enqueue(&app, "k2", t).await;
    let app = app.restart().await;
    assert_eq!(app.deliver_outbox_at(t).await.len(), 2);
    assert_eq!(app.slack.posted_messages().len(), 2);
    assert_eq!(app.state.store.outbox_backlog(TEAM).await.unwrap(), 0);
}

backend_matrix!(
    a_message_is_delivered_once_with_its_key,
    rate_limits_are_honoured,
    server_errors_back_off_then_give_up,
    permanent_errors_are_recorded_without_retrying,
    a_lost_answer_does_not_cause_a_second_post,
    a_timed_out_call_is_checked_before_posting_again,
    a_crash_between_slacks_answer_and_mark_sent_does_not_post_twice,
    pending_deliveries_resume_after_a_restart,
);
