//! One per-method rate-limit hold for every path to Slack: a 429 on a call that cannot
//! wait (the CRM hook's `users.lookupByEmail` and `conversations.open`) holds the outbox
//! back, a 429 in the outbox holds those calls back, and a held method is not called
//! at all (the fake Slack sees no call before the hold ends).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use cusp::jobs::outbox_worker::{Delivery, OUTBOX_LEASE};
use cusp::slack::calls::{Message, SlackCall};
use cusp::slack::holds::MethodHolds;
use cusp::slack::ids::UserId;
use cusp::slack::web_api::{SlackApiError, SlackClient};
use cusp::store::NewOutboxMessage;
use serde_json::json;

use crate::backend_matrix;
use crate::crm::{deal, now, post_deal};
use crate::support::app::{Backend, TEAM, TestApp, TestResponse, WEBHOOK_SECRET, now_ms};
use crate::support::fake_slack::{FakeSlack, Scripted, TEST_TOKEN};

/// A DM to `user` whose earlier attempt may have reached Slack (as after a crash), due at
/// `t`: delivering it first reads the DM back, which starts with `conversations.open`.
async fn dm_in_doubt(app: &TestApp, key: &str, user: &str, t: i64) {
    let dm = NewOutboxMessage::new(
        key,
        SlackCall::PostDirect {
            user: UserId::parse(user).unwrap(),
            message: Message::text("a DM"),
        },
    );
    let store = &app.state.store;
    store.enqueue_outbox(TEAM, &[dm], t).await.unwrap();
    let item = store
        .claim_outbox_item(TEAM, t, OUTBOX_LEASE)
        .await
        .unwrap()
        .unwrap();
    store
        .release_outbox_item(TEAM, item.id, t, true)
        .await
        .unwrap();
}

async fn hold_until(app: &TestApp, method: &str) -> i64 {
    app.state
        .store
        .rate_limited_until(TEAM, method)
        .await
        .unwrap()
        .expect("a hold")
}

/// Direct → outbox: the CRM hook's `conversations.open` gets a 429; the outbox's read-back
/// of a DM, which needs the same method, waits for the hold.
async fn a_rate_limited_direct_call_holds_the_outbox_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = now_ms();
    dm_in_doubt(&app, "dm-1", "U_SELLER", t).await;
    app.slack.push_response(
        "conversations.open",
        Scripted::RateLimited {
            retry_after_secs: 30,
        },
    );
    let hook = post_deal(
        &app,
        &deal(json!({"slack_user_id": "U_OWNER"})),
        Some("dlv-1"),
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(
        hook.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        hook.body
    );
    let until = hold_until(&app, "conversations.open").await;
    assert!(
        until >= t + 30_000,
        "held from Slack's answer: {until} vs {t}"
    );

    let held = app.deliver_outbox_at(t + 1_000).await;
    let [Delivery::RateLimited { method, at_ms, .. }] = held.as_slice() else {
        panic!("the read-back waits for the hold: {held:?}")
    };
    assert_eq!(method, "conversations.open");
    assert!(*at_ms >= until, "{at_ms} < {until}");
    assert_eq!(
        app.slack.calls_to("conversations.open").len(),
        1,
        "only the CRM hook's refused call reached Slack"
    );
    assert!(app.slack.calls_to("chat.postMessage").is_empty());

    assert_eq!(app.deliver_outbox_at(until - 1).await, vec![]);
    let after = app.deliver_outbox_at(*at_ms).await;
    assert!(
        matches!(after.as_slice(), [Delivery::Sent { .. }]),
        "{after:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1);
}

/// The whole seconds of a response's `Retry-After`, if it has one.
fn retry_after_secs(response: &TestResponse) -> Option<u64> {
    response
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Outbox → direct: the outbox's `conversations.open` gets a 429; the CRM hook's call
/// to it is not made until the hold ends (the CRM is told to retry), then goes through.
async fn a_rate_limited_outbox_call_holds_direct_calls_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = now_ms();
    dm_in_doubt(&app, "dm-1", "U_SELLER", t).await;
    app.slack.push_response(
        "conversations.open",
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let limited = app.deliver_outbox_at(t).await;
    assert!(
        matches!(limited.as_slice(), [Delivery::RateLimited { method, .. }] if method == "conversations.open"),
        "{limited:?}"
    );
    let until = hold_until(&app, "conversations.open").await;

    let owner = deal(json!({"slack_user_id": "U_OWNER"}));
    let held = post_deal(&app, &owner, Some("dlv-1"), WEBHOOK_SECRET, now()).await;
    assert_eq!(
        held.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        held.body
    );
    let calls = app.slack.calls_to("conversations.open");
    assert_eq!(calls.len(), 1, "the held call was not made");
    // The CRM is told when a retry can work: the hold's remaining wait, in whole seconds.
    assert_eq!(retry_after_secs(&held), Some(1), "{:?}", held.headers);

    let wait = until.saturating_sub(now_ms()).max(0) + 50;
    assert!(wait < 5_000, "{wait}");
    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    let retried = post_deal(&app, &owner, Some("dlv-1"), WEBHOOK_SECRET, now()).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.json()["status"], "queued");
    let calls = app.slack.calls_to("conversations.open");
    assert_eq!(calls.len(), 2);
    assert!(
        calls[1].at.duration_since(calls[0].at) >= Duration::from_secs(1),
        "Retry-After undercut by {:?}",
        calls[1].at.duration_since(calls[0].at)
    );
}

/// Direct → direct: a 429 on `users.lookupByEmail` holds it for the next delivery too.
async fn a_rate_limited_direct_call_is_not_repeated_before_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.set_user_email("sam@acme.test", "U_OWNER");
    app.slack.push_response(
        "users.lookupByEmail",
        Scripted::OkFalseRateLimited {
            retry_after_secs: 30,
        },
    );
    let owner = deal(json!({"email": "sam@acme.test"}));
    for delivery in ["dlv-1", "dlv-2"] {
        let response = post_deal(&app, &owner, Some(delivery), WEBHOOK_SECRET, now()).await;
        assert_eq!(
            response.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            response.body
        );
        assert!(
            retry_after_secs(&response).is_some_and(|secs| (25..=30).contains(&secs)),
            "{:?}",
            response.headers
        );
    }
    assert_eq!(app.slack.calls_to("users.lookupByEmail").len(), 1);
    let until = hold_until(&app, "users.lookupByEmail").await;
    assert!(until >= now_ms() + 25_000, "{until}");
}

/// Holds in memory: the wait each method was last given.
#[derive(Default)]
struct MemoryHolds(Mutex<HashMap<String, Duration>>);

impl MethodHolds for MemoryHolds {
    fn remaining<'a>(
        &'a self,
        method: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Option<Duration>> {
        let left = self.0.lock().unwrap().get(method).copied();
        Box::pin(async move { left })
    }

    fn hold<'a>(
        &'a self,
        method: &'a str,
        wait: Duration,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        self.0.lock().unwrap().insert(method.to_owned(), wait);
        Box::pin(async {})
    }
}

/// The client itself: a rate limit (a 429, or `ratelimited` on a 200 with its
/// `Retry-After`) is recorded with Slack's wait, a held method is not called, and other
/// methods are.
#[tokio::test]
async fn a_client_with_holds_records_rate_limits_and_skips_held_methods() {
    let fake = FakeSlack::start().await;
    let holds = Arc::new(MemoryHolds::default());
    let client = SlackClient::new(
        &fake.base_url(),
        secrecy::SecretString::from(TEST_TOKEN),
        Duration::from_secs(5),
    )
    .unwrap()
    .with_holds(holds.clone());
    fake.push_response(
        "users.lookupByEmail",
        Scripted::OkFalseRateLimited {
            retry_after_secs: 9,
        },
    );
    let limited = client
        .lookup_user_by_email("sam@acme.test")
        .await
        .unwrap_err();
    assert!(
        matches!(limited, SlackApiError::RateLimited { .. }),
        "{limited:?}"
    );
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(9)));
    assert_eq!(
        holds.0.lock().unwrap().get("users.lookupByEmail"),
        Some(&Duration::from_secs(9))
    );

    let held = client
        .lookup_user_by_email("sam@acme.test")
        .await
        .unwrap_err();
    assert!(matches!(held, SlackApiError::Held { .. }), "{held:?}");
    assert!(held.is_retryable());
    assert_eq!(held.retry_after(), Some(Duration::from_secs(9)));
    assert_eq!(held.method(), Some("users.lookupByEmail"));
    assert_eq!(
        fake.calls_to("users.lookupByEmail").len(),
        1,
        "the held call was not made"
    );

    client.open_dm("U_SAM").await.unwrap();
    assert_eq!(
        fake.calls_to("conversations.open").len(),
        1,
        "other methods go on"
    );
}

backend_matrix!(
    a_rate_limited_direct_call_holds_the_outbox_back,
    a_rate_limited_outbox_call_holds_direct_calls_back,
    a_rate_limited_direct_call_is_not_repeated_before_retry_after,
);
