//! `kill -9` of the real binary while a delivery is in flight, then a restart: the
//! delivery resumes within 10 s of the restart and reaches Slack exactly once, whether
//! the stalled call had been done by Slack (its answer lost) or not at all.

use std::time::{Duration, Instant};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestDb, message_event};
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
    wait_for(
        "the nudge after the restart",
        restarted + RESUME_WITHIN,
        || !slack.posted_messages().is_empty(),
    )
    .await;
    let store = db.store().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.outbox_backlog(TEAM).await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "the delivery was never marked done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

backend_matrix!(
    a_call_slack_never_did_is_made_after_a_restart,
    a_call_slack_did_is_found_and_not_repeated_after_a_restart,
);
