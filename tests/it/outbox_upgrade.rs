//! Outbox rows written before calls were typed (a method name beside bare parameters)
//! are still delivered after an upgrade, with the same wire requests the old worker made.

use cusp::jobs::outbox_worker::{Delivery, OUTBOX_LEASE};
use cusp::store::OutboxStatus;
use serde_json::{Value, json};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, now_ms};

/// The insert the outbox used before calls were typed, byte for byte: `payload` is the
/// method's parameters as a JSON object.
const OLD_INSERT: &str = "INSERT INTO outbox (team_id, idempotency_key, method, payload, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (team_id, idempotency_key) DO NOTHING";

async fn insert_old_row(app: &TestApp, backend: Backend, key: &str, method: &str, params: &Value) {
    let payload = params.to_string();
    let t = now_ms();
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            sqlx::query(OLD_INSERT)
                .bind(TEAM)
                .bind(key)
                .bind(method)
                .bind(payload)
                .bind(t)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::query(OLD_INSERT)
                .bind(TEAM)
                .bind(key)
                .bind(method)
                .bind(payload)
                .bind(t)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// Every parameter the old worker sent: the stored ones, plus the key's metadata on posts.
fn assert_sent_as_before(app: &TestApp, method: &str, params: &Value, key: Option<&str>) {
    let calls = app.slack.calls_to(method);
    let call = calls
        .iter()
        .find(|c| {
            params
                .as_object()
                .unwrap()
                .iter()
                .all(|(name, value)| match value {
                    Value::String(s) => c.param_str(name).as_deref() == Some(s.as_str()),
                    Value::Array(_) | Value::Object(_) => {
                        c.param_json(name).as_ref() == Some(value)
                    }
                    other => c.param_str(name) == Some(other.to_string()),
                })
        })
        .unwrap_or_else(|| panic!("no {method} call with {params}: {calls:?}"));
    let mut expected: Vec<&str> = params
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    if let Some(key) = key {
        expected.push("metadata");
        let metadata = call.param_json("metadata").unwrap();
        assert_eq!(metadata["event_type"], "cusp_outbox");
        assert_eq!(metadata["event_payload"]["key"], key);
    }
    let mut sent: Vec<&str> = call.params.keys().map(String::as_str).collect();
    expected.sort_unstable();
    sent.sort_unstable();
    assert_eq!(sent, expected, "{method}: no parameter added or lost");
}

async fn rows_stored_before_calls_were_typed_are_delivered_unchanged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let thread_post = json!({
        "channel": "C_DEALS", "thread_ts": "1700000000.000100", "text": "A question or two",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "A question"}}],
        "unfurl_links": false,
    });
    let digest_dm = json!({
        "channel": "U0ANA", "text": "Your week", "blocks": [{"type": "divider"}],
        "unfurl_links": false, "unfurl_media": false,
    });
    let reaction = json!({"channel": "C_DEALS", "timestamp": "1700000000.000200", "name": "eyes"});
    let note = json!({"channel": "C_DEALS", "user": "U0ANA", "text": "Only you see this"});
    let rows = [
        (
            "nudge:C_DEALS:1700000000.000100",
            "chat.postMessage",
            &thread_post,
        ),
        (
            "digest:T_TEST:2026-W47:dm:U0ANA",
            "chat.postMessage",
            &digest_dm,
        ),
        (
            "reaction:C_DEALS:1700000000.000200",
            "reactions.add",
            &reaction,
        ),
        ("modal-failed:1.2.3", "chat.postEphemeral", &note),
    ];
    for (key, method, params) in rows {
        insert_old_row(&app, backend, key, method, params).await;
    }

    let deliveries = app.deliver_outbox_at(now_ms() + 1_000).await;
    assert_eq!(deliveries.len(), 4, "{deliveries:?}");
    assert!(
        deliveries
            .iter()
            .all(|d| matches!(d, Delivery::Sent { .. })),
        "{deliveries:?}"
    );
    for (key, _, _) in rows {
        let (status, error, _) = app.state.store.outbox_status(TEAM, key).await.unwrap();
        assert_eq!(status, OutboxStatus::Sent, "{key}: {error:?}");
    }
    assert_sent_as_before(
        &app,
        "chat.postMessage",
        &thread_post,
        Some("nudge:C_DEALS:1700000000.000100"),
    );
    assert_sent_as_before(
        &app,
        "chat.postMessage",
        &digest_dm,
        Some("digest:T_TEST:2026-W47:dm:U0ANA"),
    );
    assert_sent_as_before(&app, "reactions.add", &reaction, None);
    assert_sent_as_before(&app, "chat.postEphemeral", &note, None);
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 2);
    assert!(
        posted.iter().any(|m| m.channel == "D_U0ANA"),
        "the DM lands in the person's DM: {posted:?}"
    );
}

async fn an_old_dm_row_in_doubt_finds_the_post_its_earlier_attempt_made(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = "digest:T_TEST:2026-W47:dm:U0ANA";
    let params = json!({"channel": "U0ANA", "text": "Your week", "unfurl_links": false});
    insert_old_row(&app, backend, key, "chat.postMessage", &params).await;
    // The old worker claimed the row and its post reached Slack, with the key in the
    // metadata as it sent it; then the process died before marking the row sent.
    let t = now_ms();
    app.state
        .store
        .claim_outbox_item(TEAM, t + 1_000, OUTBOX_LEASE)
        .await
        .unwrap()
        .unwrap();
    let mut old_post = params.as_object().unwrap().clone();
    old_post.insert(
        "metadata".into(),
        json!({"event_type": "cusp_outbox", "event_payload": {"key": key}}),
    );
    app.state
        .workspaces
        .for_team(TEAM)
        .await
        .unwrap()
        .unwrap()
        .slack
        .call("chat.postMessage", &old_post)
        .await
        .unwrap();
    let app = app.restart().await;

    let after_lease = t + 1_000 + OUTBOX_LEASE.as_millis() as i64 + 1;
    let result = app.deliver_outbox_at(after_lease).await;
    assert!(
        matches!(result.as_slice(), [Delivery::FoundEarlierPost { .. }]),
        "{result:?}"
    );
    assert_eq!(app.slack.posted_messages().len(), 1, "not posted twice");
    let opened = app.slack.calls_to("conversations.open");
    assert_eq!(opened.len(), 1, "the DM is opened to read it back");
    assert_eq!(opened[0].param_str("users").as_deref(), Some("U0ANA"));
    let read = app.slack.calls_to("conversations.history");
    assert_eq!(read[0].param_str("channel").as_deref(), Some("D_U0ANA"));
}

async fn an_old_row_that_cannot_be_read_is_marked_dead_with_the_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_old_row(
        &app,
        backend,
        "odd",
        "reactions.add",
        &json!({"channel": "C_DEALS"}),
    )
    .await;
    let result = app.deliver_outbox_at(now_ms() + 1_000).await;
    let [Delivery::Dead { error }] = result.as_slice() else {
        panic!("{result:?}")
    };
    assert!(error.contains("reactions.add"), "{error}");
    assert!(app.slack.calls_to("reactions.add").is_empty());
}

backend_matrix!(
    rows_stored_before_calls_were_typed_are_delivered_unchanged,
    an_old_dm_row_in_doubt_finds_the_post_its_earlier_attempt_made,
    an_old_row_that_cannot_be_read_is_marked_dead_with_the_reason,
);
