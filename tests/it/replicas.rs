//! Two replicas on one database: the same events reach both (a Slack retry may land on
//! the other one), both run the workers, and a person's nudge limits hold across them.
//! "Replica" here is a second `AppState` with its own pool and router, as a second
//! `cusp serve` process would have.

use axum::http::StatusCode;
use futures_util::future::join_all;
use serde_json::Value;

use cusp::jobs::inbox_worker::INBOX_LEASE;
use cusp::state::AppState;
use cusp::store::Effects;

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, message_event, now_ms, post_signed_to};

/// Four seller-centric updates about four accounts: each alone gets a nudge.
const FOUR_ACCOUNTS: [&str; 4] = [
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO",
    "Globex renewal: chasing them to sign before EOQ, I need this for my number",
    "Initech: pushing them to sign the contract before quarter end for my number",
    "Umbrella Corp: need the PO this week for my quota, offering 15% if they sign Friday",
];
const ACME_AGAIN: &str =
    "Acme Logistics: still chasing the signature, I need it this week for my quota";

/// Posts a signed event to `state`'s own router, as Slack would to that replica.
async fn deliver(state: &AppState, envelope: &Value) -> StatusCode {
    post_signed_to(
        state,
        "/slack/events",
        "application/json",
        &envelope.to_string(),
    )
    .await
    .status
}

/// Claims the next due event on `state` and decides it, storing nothing yet: what a
/// worker has in hand just before its commit.
async fn decide(state: &AppState, now: i64) -> (i64, Effects) {
    let item = state
        .store
        .claim_inbox_item(TEAM, now, INBOX_LEASE)
        .await
        .unwrap()
        .expect("a due event");
    let workspace = state.workspaces.for_team(TEAM).await.unwrap().unwrap();
    let effects = cusp::bot::dispatch_event(
        &state.team(&workspace),
        &item.kind,
        item.payload.as_deref().unwrap(),
        now,
    )
    .await
    .unwrap();
    (item.id, effects)
}

/// Commits every decision at once, each on the replica that made it; returns how many
/// nudges were enqueued.
async fn commit_together(decisions: &[(&AppState, i64, Effects)], now: i64) -> usize {
    let applied = join_all(
        decisions
            .iter()
            .map(|(state, id, effects)| state.store.finish_inbox_item(TEAM, *id, effects, now)),
    )
    .await;
    applied
        .into_iter()
        .map(|applied| {
            let applied = applied.unwrap();
            applied.enqueued.iter().filter(|k| **k == "nudge").count()
        })
        .sum()
}

async fn two_replicas_deciding_at_once_keep_the_daily_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let replica = app.another_replica().await;
    for (i, text) in FOUR_ACCOUNTS.iter().enumerate() {
        let event = message_event(&format!("Ev{i}"), "U_SELLER", text, &format!("1.{i}"));
        assert_eq!(deliver(&app.state, &event).await, StatusCode::OK);
    }
    // Both replicas take two events each of the same person and decide before either
    // stores anything: every decision read "no nudges today" and would nudge.
    let now = now_ms();
    let mut decisions = Vec::new();
    for state in [&app.state, &replica, &app.state, &replica] {
        let (id, effects) = decide(state, now).await;
        assert!(effects.prompt.is_some(), "each update alone is nudged");
        decisions.push((state, id, effects));
    }
    assert_eq!(
        commit_together(&decisions, now).await,
        3,
        "daily limit is 3"
    );
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(app.slack.posted_messages().len(), 3);
    // Every update is still logged; only the fourth nudge was held back.
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 4);
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
    replica.store.close().await;
}

async fn two_replicas_deciding_at_once_keep_the_account_cooldown(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let replica = app.another_replica().await;
    let first = message_event("EvA1", "U_SELLER", FOUR_ACCOUNTS[0], "2.1");
    let second = message_event("EvA2", "U_SELLER", ACME_AGAIN, "2.2");
    assert_eq!(deliver(&app.state, &first).await, StatusCode::OK);
    assert_eq!(deliver(&replica, &second).await, StatusCode::OK);
    let now = now_ms();
    let (a, a_effects) = decide(&app.state, now).await;
    let (b, b_effects) = decide(&replica, now).await;
    assert!(a_effects.prompt.is_some() && b_effects.prompt.is_some());
    let decisions = [(&app.state, a, a_effects), (&replica, b, b_effects)];
    assert_eq!(
        commit_together(&decisions, now).await,
        1,
        "one nudge per person and account in the 24-hour cooldown"
    );
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(app.slack.posted_messages().len(), 1);
    replica.store.close().await;
}

/// The same, with the real workers of two replicas racing over one person's burst.
async fn two_replicas_working_one_burst_send_at_most_the_daily_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let replica = app.another_replica().await;
    let texts = FOUR_ACCOUNTS.iter().chain([
        &"Hooli: chasing legal to sign by EOQ so I make my number",
        &"Stark Industries: need the signature by Friday for my quota, pushing for the PO",
    ]);
    for (i, text) in texts.enumerate() {
        let event = message_event(&format!("EvB{i}"), "U_SELLER", text, &format!("3.{i}"));
        assert_eq!(deliver(&app.state, &event).await, StatusCode::OK);
    }
    let now = now_ms();
    let drain = |state: &AppState| {
        let state = state.clone();
        tokio::spawn(async move {
            while cusp::jobs::inbox_worker::process_batch(&state, now)
                .await
                .unwrap()
                > 0
            {}
        })
    };
    let (a, b) = (drain(&app.state), drain(&replica));
    let both = async { (a.await.unwrap(), b.await.unwrap()) };
    tokio::time::timeout(std::time::Duration::from_secs(30), both)
        .await
        .expect("workers finish");
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(app.slack.posted_messages().len(), 3);
    replica.store.close().await;
}

/// Slack sends an event to one replica, times out, and retries it to the other: the
/// event is stored once and answered once, whichever replica's worker takes it.
async fn a_retry_landing_on_the_other_replica_is_answered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let replica = app.another_replica().await;
    let event = message_event("EvR", "U_SELLER", FOUR_ACCOUNTS[0], "4.1");
    assert_eq!(deliver(&app.state, &event).await, StatusCode::OK);
    assert_eq!(deliver(&replica, &event).await, StatusCode::OK);
    let now = now_ms();
    let (a, b) = tokio::join!(
        cusp::jobs::inbox_worker::drain(&app.state, now),
        cusp::jobs::inbox_worker::drain(&replica, now)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "handled once");
    let (a, b) = tokio::join!(
        cusp::jobs::outbox_worker::drain(&app.state, now_ms()),
        cusp::jobs::outbox_worker::drain(&replica, now_ms())
    );
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1, "delivered once");
    assert_eq!(app.slack.posted_messages().len(), 1);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
    replica.store.close().await;
}

/// A customer-centric root (a reaction, and the deal's account) and a reply that names
/// no account: in the thread it is an update of that deal and gets the nudge.
const ROOT: &str = "Ridgeway Freight QBR: their ops VP wants to cut dispatcher overtime by a third, and the \
                    terminal managers are worried about rollout risk after a bad migration, so we are building \
                    a joint rollout plan with them";
const REPLY: &str = "They asked for 20% off, so I offered it if they sign this week";

async fn a_thread_reply_waits_for_its_root_on_the_other_replica(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let replica = app.another_replica().await;
    let root = message_event("EvRoot", "U_SELLER", ROOT, "5.100");
    let mut reply = message_event("EvReply", "U_SELLER", REPLY, "5.200");
    reply["event"]["thread_ts"] = Value::from("5.100");
    assert_eq!(deliver(&app.state, &root).await, StatusCode::OK);
    assert_eq!(deliver(&replica, &reply).await, StatusCode::OK);
    // This replica has the root in hand and has not stored what it decided yet.
    let now = now_ms();
    let (root_id, root_effects) = decide(&app.state, now).await;
    // The other replica's worker finds nothing it may take: the reply waits.
    assert_eq!(
        cusp::jobs::inbox_worker::drain(&replica, now)
            .await
            .unwrap(),
        0
    );
    app.state
        .store
        .finish_inbox_item(TEAM, root_id, &root_effects, now)
        .await
        .unwrap();
    assert_eq!(
        cusp::jobs::inbox_worker::drain(&replica, now)
            .await
            .unwrap(),
        1
    );
    cusp::jobs::outbox_worker::drain(&replica, now_ms())
        .await
        .unwrap();
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 1, "one nudge in the thread: {posted:?}");
    assert_eq!(posted[0].thread_ts.as_deref(), Some("5.100"));
    assert!(
        posted[0].text.contains("Ridgeway Freight"),
        "the reply inherits the root's account: {}",
        posted[0].text
    );
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 2);
    assert_eq!(app.slack.calls_to("reactions.add").len(), 1);
    replica.store.close().await;
}

/// The weekly digest with two replicas' schedulers and outbox workers racing: one post.
async fn two_replicas_post_one_digest_a_week(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let replica = app.another_replica().await;
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    app.state
        .store
        .save_digest_settings(
            TEAM,
            "C_DIGEST",
            1,
            9 * 60,
            "UTC",
            "U_LEAD",
            at("2026-11-20T12:00:00Z").as_millisecond(),
        )
        .await
        .unwrap();
    for minute in ["09:00", "09:01", "09:02"] {
        let now = at(&format!("2026-11-23T{minute}:00Z"));
        let (a, b) = tokio::join!(
            cusp::jobs::scheduler::run_tick(&app.state, TEAM, now),
            cusp::jobs::scheduler::run_tick(&replica, TEAM, now)
        );
        a.unwrap();
        b.unwrap();
        let (a, b) = tokio::join!(
            cusp::jobs::outbox_worker::drain(&app.state, now_ms()),
            cusp::jobs::outbox_worker::drain(&replica, now_ms())
        );
        a.unwrap();
        b.unwrap();
    }
    let digests: Vec<_> = app
        .slack
        .posted_messages()
        .into_iter()
        .filter(|m| m.channel == "C_DIGEST")
        .collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    replica.store.close().await;
}

backend_matrix!(
    two_replicas_deciding_at_once_keep_the_daily_limit,
    two_replicas_deciding_at_once_keep_the_account_cooldown,
    two_replicas_working_one_burst_send_at_most_the_daily_limit,
    a_retry_landing_on_the_other_replica_is_answered_once,
    a_thread_reply_waits_for_its_root_on_the_other_replica,
    two_replicas_post_one_digest_a_week,
);
