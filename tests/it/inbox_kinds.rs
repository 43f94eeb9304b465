//! What the inbox keeps: the kind the edge decided (`message`, `app_mention`) and only the
//! fields cusp reads, not Slack's envelope. Rows stored before that (kind
//! `event_callback`, the whole envelope) are still handled after an upgrade.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use cusp::store::{InboxItem, NewInboxItem};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, message_event, now_ms};

const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";
const LEASE: Duration = Duration::from_secs(60);

fn mention_event(event_id: &str, text: &str, ts: &str) -> Value {
    let mut envelope = message_event(event_id, "U_SELLER", text, ts);
    envelope["event"]["type"] = json!("app_mention");
    envelope
}

/// Claims the next stored event directly, to look at the row the edge wrote.
async fn claim(app: &TestApp, at_ms: i64) -> Option<InboxItem> {
    app.state
        .store
        .claim_inbox_item(TEAM, at_ms, LEASE)
        .await
        .unwrap()
}

async fn store_row(app: &TestApp, event_id: &str, kind: &str, payload: &str) {
    let item = NewInboxItem {
        team_id: TEAM,
        event_id,
        kind,
        payload,
        thread_key: None,
    };
    assert!(
        app.state
            .store
            .enqueue_inbox(&item, now_ms())
            .await
            .unwrap()
    );
}

async fn status(app: &TestApp, event_id: &str) -> String {
    let state = app.state.store.inbox_state(TEAM, event_id).await.unwrap();
    state.status
}

async fn an_event_is_stored_under_its_kind_with_only_the_fields_cusp_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut message = message_event("EvMsg", "U_SELLER", SELLER, "1.100");
    message["event"]["blocks"] = json!([{"type": "rich_text", "block_id": "b1"}]);
    message["event"]["client_msg_id"] = json!("c0ffee");
    assert_eq!(app.event(&message).await.status, StatusCode::OK);
    let mention = mention_event("EvMention", "<@U_CUSP> Acme wants a pilot", "1.200");
    assert_eq!(app.event(&mention).await.status, StatusCode::OK);

    let t = now_ms();
    let stored = claim(&app, t).await.expect("the message is stored");
    assert_eq!(
        (stored.event_id.as_str(), stored.kind.as_str()),
        ("EvMsg", "message")
    );
    let payload: Value = serde_json::from_str(stored.payload.as_deref().unwrap()).unwrap();
    assert_eq!(payload["text"], SELLER);
    assert_eq!(
        (&payload["channel"], &payload["ts"]),
        (&json!("C_DEALS"), &json!("1.100"))
    );
    for envelope_or_extra in ["event_id", "api_app_id", "token", "blocks", "client_msg_id"] {
        assert!(payload.get(envelope_or_extra).is_none(), "{payload}");
    }
    let stored = claim(&app, t).await.expect("the mention is stored");
    assert_eq!(
        (stored.event_id.as_str(), stored.kind.as_str()),
        ("EvMention", "app_mention")
    );

    // Both are handled from what was stored, once their lease (taken above) runs out.
    assert_eq!(app.drain_inbox_at(t + 61_000).await, 2);
    app.deliver_outbox_at(t + 61_000).await;
    let threads: Vec<_> = app
        .slack
        .posted_messages()
        .into_iter()
        .filter_map(|m| m.thread_ts)
        .collect();
    assert!(threads.contains(&"1.100".to_owned()), "{threads:?}");
    assert!(threads.contains(&"1.200".to_owned()), "{threads:?}");
    assert_eq!(status(&app, "EvMsg").await, "done");
    assert_eq!(status(&app, "EvMention").await, "done");
}

async fn a_message_that_mentions_cusp_is_not_stored_as_its_mention_answers_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let text = "<@U_CUSP> Acme: need them to sign by Friday for my quota";
    let message = message_event("EvAsMessage", "U_SELLER", text, "2.100");
    assert_eq!(app.event(&message).await.status, StatusCode::OK);
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 0);
    let mention = mention_event("EvAsMention", text, "2.100");
    assert_eq!(app.event(&mention).await.status, StatusCode::OK);
    assert_eq!(app.state.store.inbox_backlog(TEAM).await.unwrap(), 1);
    assert_eq!(app.drain_inbox().await, 1);
    app.deliver_outbox_at(now_ms()).await;
    let posted = app.slack.posted_messages();
    assert_eq!(
        posted.len(),
        1,
        "one answer, not a nudge as well: {posted:?}"
    );
}

async fn rows_stored_before_the_upgrade_are_still_handled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let legacy = "event_callback";
    let message = message_event("EvOldMsg", "U_SELLER", SELLER, "3.100");
    store_row(&app, "EvOldMsg", legacy, &message.to_string()).await;
    let mention = mention_event(
        "EvOldMention",
        "<@U_CUSP> Acme: need them to sign by Friday for my quota",
        "3.200",
    );
    store_row(&app, "EvOldMention", legacy, &mention.to_string()).await;
    // The old edge stored these too; the same rules as today's edge leave them alone.
    let own = message_event("EvOldOwn", "U_CUSP", SELLER, "3.300");
    store_row(&app, "EvOldOwn", legacy, &own.to_string()).await;
    let at_cusp = message_event("EvOldAtCusp", "U_SELLER", "<@U_CUSP> hello", "3.400");
    store_row(&app, "EvOldAtCusp", legacy, &at_cusp.to_string()).await;

    assert_eq!(app.drain_inbox().await, 4);
    app.deliver_outbox_at(now_ms()).await;
    let mut threads: Vec<_> = app
        .slack
        .posted_messages()
        .into_iter()
        .filter_map(|m| m.thread_ts)
        .collect();
    threads.sort();
    assert_eq!(
        threads,
        ["3.100", "3.200"],
        "a nudge and an answer, nothing else"
    );
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 2);
    for event_id in ["EvOldMsg", "EvOldMention", "EvOldOwn", "EvOldAtCusp"] {
        assert_eq!(status(&app, event_id).await, "done", "{event_id}");
    }
}

async fn a_row_of_an_unknown_kind_is_parked_naming_the_kind(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    store_row(&app, "EvFuture", "reaction_added", "{}").await;
    assert_eq!(app.drain_inbox().await, 1);
    let state = app.state.store.inbox_state(TEAM, "EvFuture").await.unwrap();
    assert_eq!((state.status.as_str(), state.attempts), ("failed", 1));
    let error = state.last_error.unwrap_or_default();
    assert!(
        error.contains("unknown inbox kind `reaction_added`"),
        "{error}"
    );
}

backend_matrix!(
    an_event_is_stored_under_its_kind_with_only_the_fields_cusp_reads,
    a_message_that_mentions_cusp_is_not_stored_as_its_mention_answers_it,
    rows_stored_before_the_upgrade_are_still_handled,
    a_row_of_an_unknown_kind_is_parked_naming_the_kind,
);
