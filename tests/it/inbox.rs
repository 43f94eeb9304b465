//! The inbox worker's retries: a failing event waits (backoff, or Slack's Retry-After)
//! before it is tried again, survives a restart meanwhile, and is handled once the
//! failure clears instead of being parked `failed` within milliseconds.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use cusp::backoff::Backoff;
use cusp::store::InboxState;

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, message_event, now_ms};
use crate::support::fake_slack::Scripted;

/// Short enough that a test never waits, long enough to tell "later" from "at once".
const TEST_BACKOFF: Backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));

async fn spawn(backend: Backend) -> TestApp {
    let mut app = TestApp::spawn(backend).await;
    app.state.inbox_backoff = TEST_BACKOFF;
    app
}

async fn inbox_state(app: &TestApp, event_id: &str) -> InboxState {
    app.state.store.inbox_state(TEAM, event_id).await.unwrap()
}

/// `@cusp` alone in a thread: handling it reads the thread's first message from Slack.
async fn bare_mention_in_a_thread(app: &TestApp, event_id: &str) -> String {
    let parent = app.slack.seed_message(
        "C_DEALS",
        "U_OTHER",
        "Acme wants a pilot before their board meets; I need it signed for my quota",
        None,
    );
    let mut envelope = message_event(event_id, "U_SELLER", "<@U_CUSP>", "2.000");
    envelope["event"]["type"] = json!("app_mention");
    envelope["event"]["thread_ts"] = json!(parent);
    assert_eq!(app.event(&envelope).await.status, StatusCode::OK);
    parent
}

async fn a_failing_event_is_retried_later_and_handled_once_slack_recovers(backend: Backend) {
    let app = spawn(backend).await;
    app.slack.push_response(
        "conversations.replies",
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    app.slack
        .push_response("conversations.replies", Scripted::Status(503));
    let parent = bare_mention_in_a_thread(&app, "EvRetry").await;
    let other = message_event(
        "EvOther",
        "U_SELLER",
        "quick sync with Globex done",
        "3.000",
    );
    assert_eq!(app.event(&other).await.status, StatusCode::OK);
    let reads = || app.slack.calls_to("conversations.replies").len();

    // Attempt 1 is rate limited: Retry-After (1 s) outweighs the 10 ms backoff.
    let t = now_ms();
    assert_eq!(
        app.drain_inbox_at(t).await,
        2,
        "both tried; the other is done"
    );
    let state = inbox_state(&app, "EvRetry").await;
    assert_eq!((state.status.as_str(), state.attempts), ("pending", 1));
    // Retry-After counts from Slack's answer, a few ms after `t`.
    let t2 = state.next_attempt_at;
    assert!((t + 1_000..t + 1_500).contains(&t2), "{t2} vs {t}");
    assert!(state.last_error.unwrap().contains("rate limited"));
    assert_eq!(inbox_state(&app, "EvOther").await.status, "done");
    assert_eq!(app.drain_inbox_at(t).await, 0, "not retried at once");
    assert_eq!(
        app.drain_inbox_at(t2 - 1).await,
        0,
        "nor before Retry-After"
    );
    assert_eq!(reads(), 1);

    // The process restarts while the event waits; the new one picks it up when due.
    let mut app = app.restart().await;
    app.state.inbox_backoff = TEST_BACKOFF;

    // Attempt 2 gets a 503: backoff after two failures is 20 ms ± 50 %.
    assert_eq!(app.drain_inbox_at(t2).await, 1);
    let state = inbox_state(&app, "EvRetry").await;
    assert_eq!((state.status.as_str(), state.attempts), ("pending", 2));
    let delay = state.next_attempt_at - t2;
    assert!((10..30).contains(&delay), "{delay} ms");
    assert_eq!(app.drain_inbox_at(t2 + 9).await, 0);
    assert_eq!(app.slack.calls_to("conversations.replies").len(), 2);

    // Slack has recovered: attempt 3 succeeds and the reply goes out.
    let t3 = state.next_attempt_at;
    assert_eq!(app.drain_inbox_at(t3).await, 1);
    let state = inbox_state(&app, "EvRetry").await;
    assert_eq!((state.status.as_str(), state.attempts), ("done", 3));
    app.deliver_outbox_at(t3).await;
    assert!(
        app.slack
            .posted_messages()
            .iter()
            .any(|m| m.thread_ts.as_deref() == Some(parent.as_str()) && m.user == "U_CUSP"),
        "the mention was answered in the thread"
    );
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
}

/// Attempts are spread out by the backoff until the limit; only then is the event parked.
async fn a_persistently_failing_event_backs_off_before_it_is_parked(backend: Backend) {
    let app = spawn(backend).await;
    let max = cusp::store::INBOX_MAX_ATTEMPTS;
    for _ in 0..max {
        app.slack
            .push_response("conversations.replies", Scripted::Status(500));
    }
    bare_mention_in_a_thread(&app, "EvDown").await;
    let mut t = now_ms();
    let mut delays = Vec::new();
    for attempt in 1..=max {
        assert_eq!(app.drain_inbox_at(t).await, 1, "attempt {attempt}");
        let state = inbox_state(&app, "EvDown").await;
        assert_eq!(state.attempts, attempt);
        if attempt < max {
            assert_eq!(state.status, "pending");
            assert!(
                state.next_attempt_at > t,
                "attempt {attempt} retried at once"
            );
            delays.push(state.next_attempt_at - t);
            t = state.next_attempt_at;
        } else {
            assert_eq!(state.status, "failed");
        }
    }
    // Exponential (10 ms doubling, capped at 1 s), within the jitter.
    assert!(
        delays
            .windows(2)
            .all(|w| w[1] as f64 >= w[0] as f64 * 0.6 || w[1] >= 500),
        "{delays:?}"
    );
    assert_eq!(
        app.slack.calls_to("conversations.replies").len() as i64,
        max
    );
}

/// A failure a retry cannot fix (Slack: the channel is gone) parks the event at once.
async fn a_permanent_failure_is_parked_without_retrying(backend: Backend) {
    let app = spawn(backend).await;
    app.slack.push_response(
        "conversations.replies",
        Scripted::OkFalse("channel_not_found"),
    );
    bare_mention_in_a_thread(&app, "EvGone").await;
    assert_eq!(app.drain_inbox_at(now_ms()).await, 1);
    let state = inbox_state(&app, "EvGone").await;
    assert_eq!((state.status.as_str(), state.attempts), ("failed", 1));
    assert!(state.last_error.unwrap().contains("channel_not_found"));
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
}

/// Handled events are deleted after a week; waiting ones are kept however old.
async fn handled_events_are_pruned_after_a_week(backend: Backend) {
    let app = spawn(backend).await;
    let handled = message_event("EvOld", "U_SELLER", "quick sync with Globex done", "4.000");
    assert_eq!(app.event(&handled).await.status, StatusCode::OK);
    let t = now_ms();
    assert_eq!(app.drain_inbox_at(t).await, 1);
    let waiting = message_event("EvWaiting", "U_SELLER", "Initech signed", "5.000");
    assert_eq!(app.event(&waiting).await.status, StatusCode::OK);
    let at = |ms: i64| jiff::Timestamp::from_millisecond(ms).unwrap();
    const DAY: i64 = 24 * 3_600_000;

    cusp::jobs::scheduler::housekeeping(&app.state, TEAM, at(t + 6 * DAY)).await;
    assert_eq!(inbox_state(&app, "EvOld").await.status, "done");
    cusp::jobs::scheduler::housekeeping(&app.state, TEAM, at(t + 8 * DAY)).await;
    assert!(app.state.store.inbox_state(TEAM, "EvOld").await.is_err());
    assert_eq!(inbox_state(&app, "EvWaiting").await.status, "pending");
}

backend_matrix!(
    a_permanent_failure_is_parked_without_retrying,
    handled_events_are_pruned_after_a_week,
    a_failing_event_is_retried_later_and_handled_once_slack_recovers,
    a_persistently_failing_event_backs_off_before_it_is_parked,
);
