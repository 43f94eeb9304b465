//! Outbox delivery against the fake Slack: retries, rate limits, permanent errors,
//! restarts, and no double posts when an attempt's outcome is unknown.

use std::time::{Duration, Instant};

use cusp::jobs::outbox_worker::{Delivery, MAX_ATTEMPTS, OUTBOX_LEASE};
use cusp::slack::calls::{Message, SlackCall};
use cusp::store::{NewOutboxMessage, OutboxStatus};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, now_ms};
use crate::support::fake_slack::Scripted;

fn post(key: &str, channel: &str) -> NewOutboxMessage {
    NewOutboxMessage::new(
        key,
        SlackCall::PostMessage {
            channel: cusp::slack::ids::ChannelId::parse(channel).unwrap(),
            thread_ts: None,
            message: Message::text(format!("message {key}")),
        },
    )
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
    let [Delivery::RateLimited { at_ms, method, .. }] = first.as_slice() else {
        panic!("{first:?}")
    };
    assert_eq!(method, "chat.postMessage");
    // Counted from Slack's answer, which came a few ms after `t`.
    assert!((t + 7_000..t + 7_500).contains(at_ms), "{at_ms} vs {t}");
    assert_eq!(
        app.deliver_outbox_at(t + 6_999).await,
        vec![],
        "not before Retry-After"
    );
    let second = app.deliver_outbox_at(*at_ms).await;
    assert!(
        matches!(second.as_slice(), [Delivery::Sent { .. }]),
        "{second:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1);
}

/// Slack's limits are per method and workspace: after a 429 on `chat.postMessage` no
/// other row calls it before Retry-After, including rows enqueued meanwhile; other
/// methods go on.
async fn a_rate_limit_holds_back_the_method_for_every_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.push_response(
        "chat.postMessage",
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let t = now_ms();
    enqueue(&app, "k1", t).await;
    enqueue(&app, "k2", t).await;
    let react = NewOutboxMessage::new(
        "r1",
        SlackCall::AddReaction {
            channel: cusp::slack::ids::ChannelId::parse("C_DEALS").unwrap(),
            timestamp: "1.0001".into(),
            name: "eyes".into(),
        },
    );
    app.state
        .store
        .enqueue_outbox(TEAM, &[react], t)
        .await
        .unwrap();

    let first = app.deliver_outbox_at(t).await;
    let [Delivery::RateLimited { at_ms, .. }, Delivery::Sent { .. }] = first.as_slice() else {
        panic!("the post is refused, the reaction still goes: {first:?}")
    };
    let until = *at_ms;
    assert_eq!(
        app.state
            .store
            .rate_limited_until(TEAM, "chat.postMessage")
            .await
            .unwrap(),
        Some(until)
    );
    enqueue(&app, "k3", t + 500).await;
    assert_eq!(app.deliver_outbox_at(t + 500).await, vec![]);
    assert_eq!(app.deliver_outbox_at(until - 1).await, vec![]);
    assert_eq!(
        app.slack.calls_to("chat.postMessage").len(),
        1,
        "only the refused call reached Slack before Retry-After"
    );

    let after = app.deliver_outbox_at(until).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        after.iter().all(|d| matches!(d, Delivery::Sent { .. })),
        "{after:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 3);
    for key in ["k1", "k2", "k3"] {
        assert_eq!(status(&app, key).await, OutboxStatus::Sent, "{key}");
    }
}

/// The same, with the real worker loop and the wall clock: the fake sees no
/// `chat.postMessage` within Retry-After of the 429.
async fn the_running_worker_waits_out_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.push_response(
        "chat.postMessage",
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let t = now_ms();
    for key in ["k1", "k2", "k3"] {
        enqueue(&app, key, t).await;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(cusp::jobs::outbox_worker::run(app.state.clone(), stopped));
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.slack.posted_messages().len() < 3 {
        assert!(Instant::now() < deadline, "worker did not deliver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();

    let calls = app.slack.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 4, "one refused, three posted");
    let refused_at = calls[0].at;
    for call in &calls[1..] {
        assert!(
            call.at.duration_since(refused_at) >= Duration::from_secs(1),
            "a post reached Slack {:?} after the 429",
            call.at.duration_since(refused_at)
        );
    }
}

/// Slack says a 429 is not a failure: however many there are, the row is not given up,
/// and they do not use up the budget for real failures.
async fn rate_limits_never_kill_a_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // More than the old cap of 50 rate-limited attempts.
    let rate_limits = 60;
    for _ in 0..rate_limits {
        app.slack.push_response(
            "chat.postMessage",
            Scripted::RateLimited {
                retry_after_secs: 1,
            },
        );
    }
    for _ in 1..MAX_ATTEMPTS {
        app.slack
            .push_response("chat.postMessage", Scripted::Status(503));
    }
    let mut t = now_ms();
    enqueue(&app, "k1", t).await;
    let mut seen = (0, 0);
    loop {
        let result = app.deliver_outbox_at(t).await;
        match result.as_slice() {
            [Delivery::RateLimited { at_ms, .. }] => {
                seen.0 += 1;
                t = *at_ms;
            }
            [Delivery::Retrying { at_ms, .. }] => {
                seen.1 += 1;
                t = *at_ms;
            }
            [Delivery::Sent { .. }] => break,
            other => panic!("after {seen:?}: {other:?}"),
        }
        assert_eq!(status(&app, "k1").await, OutboxStatus::Pending);
    }
    assert_eq!(seen, (rate_limits, MAX_ATTEMPTS - 1));
    let (_, _, attempts) = app.state.store.outbox_status(TEAM, "k1").await.unwrap();
    assert_eq!(attempts, rate_limits + MAX_ATTEMPTS);
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
    app.state
        .workspaces
        .for_team(TEAM)
        .await
        .unwrap()
        .unwrap()
        .slack
        .send(&item.call().unwrap(), &item.idempotency_key)
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
    a_rate_limit_holds_back_the_method_for_every_row,
    the_running_worker_waits_out_retry_after,
    rate_limits_never_kill_a_row,
    server_errors_back_off_then_give_up,
    permanent_errors_are_recorded_without_retrying,
    a_lost_answer_does_not_cause_a_second_post,
    a_timed_out_call_is_checked_before_posting_again,
    a_crash_between_slacks_answer_and_mark_sent_does_not_post_twice,
    pending_deliveries_resume_after_a_restart,
);
