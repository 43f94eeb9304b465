//! `kill -9` of the real binary while a delivery is in flight, then a restart: the
//! delivery resumes within 10 s of the restart and reaches Slack exactly once, whether
//! the stalled call had been done by Slack (its answer lost) or not at all. And the
//! store side of it: a lease is renewed only by the claim that holds it.

use std::time::{Duration, Instant};

use cusp::jobs::inbox_worker::INBOX_LEASE;
use cusp::jobs::outbox_worker::OUTBOX_LEASE;
use cusp::slack::calls::{Message, SlackCall};
use cusp::slack::ids::ChannelId;
use cusp::store::{NewInboxItem, NewOutboxMessage};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestDb, message_event, now_ms};
use crate::support::fake_slack::{FakeSlack, Scripted};
use crate::support::serve::{signed_post, start_server};

/// A message cusp answers with a nudge in its thread.
const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";
/// What the issue asks: pending deliveries resume within this long of a restart.
const RESUME_WITHIN: Duration = Duration::from_secs(10);

async fn wait_for(what: &str, deadline: Instant, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one event, lets the server stall on `chat.postMessage` as `stall` says, kills
/// it, restarts it, and checks the nudge is posted once, soon after the restart.
async fn killed_mid_delivery(backend: Backend, stall: Scripted) -> FakeSlack {
    let db = TestDb::new(backend).await;
    let slack = FakeSlack::start().await;
    slack.push_response("chat.postMessage", stall);
    let server = start_server(&db.url, &slack).await;

    let event = message_event("Ev-crash", "U_SELLER", SELLER, "1700000000.000100");
    let ack = signed_post(
        &format!("{}/slack/events", server.base),
        "application/json",
        event.to_string(),
    )
    .await;
    assert_eq!(ack.status(), 200);
    let stalled = Instant::now() + Duration::from_secs(20);
    wait_for("the nudge to reach Slack", stalled, || {
        !slack.calls_to("chat.postMessage").is_empty()
    })
    .await;
    // Mid-call: the claim is held, the answer has not come.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9();

    let restarted = Instant::now();
    let _server = start_server(&db.url, &slack).await;
    let store = db.store().await;
    // Resumed and done: posted (or found posted) and marked so.
    while store.outbox_backlog(TEAM).await.unwrap() > 0 {
        assert!(
            restarted.elapsed() < RESUME_WITHIN,
            "not delivered within {RESUME_WITHIN:?} of the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Shown when the test fails (or with --nocapture).
    eprintln!(
        "delivered {:?} after the restart began",
        restarted.elapsed()
    );
    let posted = slack.posted_messages();
    assert_eq!(posted.len(), 1, "posted exactly once: {posted:?}");
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1700000000.000100"));
    store.close().await;
    slack
}

/// Slack never did the stalled call: the restarted server posts it.
async fn a_call_slack_never_did_is_made_after_a_restart(backend: Backend) {
    let slack = killed_mid_delivery(backend, Scripted::Hang(Duration::from_secs(60))).await;
    assert_eq!(slack.calls_to("chat.postMessage").len(), 2);
}

/// Slack did the stalled call but its answer never came: the restarted server finds the
/// post by its key and does not post again.
async fn a_call_slack_did_is_found_and_not_repeated_after_a_restart(backend: Backend) {
    let slack = killed_mid_delivery(backend, Scripted::Delay(Duration::from_secs(60))).await;
    assert_eq!(slack.calls_to("chat.postMessage").len(), 1);
    assert_eq!(slack.calls_to("conversations.replies").len(), 1);
}

/// A lease is extended only by the claim that holds it: once it has run out and another
/// worker took the row over, the old holder's renewal fails (and it stops), for inbox
/// events and outbox deliveries alike.
async fn only_the_current_claim_renews_its_lease(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let t = now_ms();
    let lease = i64::try_from(INBOX_LEASE.as_millis()).unwrap();
    let event = NewInboxItem {
        team_id: TEAM,
        event_id: "Ev1",
        kind: "message",
        payload: "{}",
        thread_key: None,
    };
    assert!(store.enqueue_inbox(&event, t).await.unwrap());
    let first = store
        .claim_inbox_item(TEAM, t, INBOX_LEASE)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .renew_inbox_lease(TEAM, first.id, first.attempts, t + 2 * lease)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_inbox_item(TEAM, t + lease + 1, INBOX_LEASE)
            .await
            .unwrap()
            .is_none(),
        "renewed"
    );
    let second = store
        .claim_inbox_item(TEAM, t + 2 * lease + 1, INBOX_LEASE)
        .await
        .unwrap()
        .expect("taken over once the renewed lease ran out");
    assert!(
        !store
            .renew_inbox_lease(TEAM, first.id, first.attempts, t + 3 * lease)
            .await
            .unwrap()
    );
    assert!(
        store
            .renew_inbox_lease(TEAM, second.id, second.attempts, t + 3 * lease)
            .await
            .unwrap()
    );

    let post = NewOutboxMessage::new(
        "k1",
        SlackCall::PostMessage {
            channel: ChannelId::parse("C_DEALS").unwrap(),
            thread_ts: None,
            message: Message::text("hi"),
        },
    );
    store.enqueue_outbox(TEAM, &[post], t).await.unwrap();
    let first = store
        .claim_outbox_item(TEAM, t, OUTBOX_LEASE)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .renew_outbox_lease(TEAM, first.id, first.attempts, t + 2 * lease)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_outbox_item(TEAM, t + lease + 1, OUTBOX_LEASE)
            .await
            .unwrap()
            .is_none(),
        "renewed"
    );
    let second = store
        .claim_outbox_item(TEAM, t + 2 * lease + 1, OUTBOX_LEASE)
        .await
        .unwrap()
        .expect("taken over once the renewed lease ran out");
    assert_eq!(second.in_doubt, 1, "the old holder may have posted");
    assert!(
        !store
            .renew_outbox_lease(TEAM, first.id, first.attempts, t + 3 * lease)
            .await
            .unwrap()
    );
    assert!(
        store
            .renew_outbox_lease(TEAM, second.id, second.attempts, t + 3 * lease)
            .await
            .unwrap()
    );
    store.close().await;
}

backend_matrix!(
    a_call_slack_never_did_is_made_after_a_restart,
    a_call_slack_did_is_found_and_not_repeated_after_a_restart,
    only_the_current_claim_renews_its_lease,
);
