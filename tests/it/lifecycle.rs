//! Data lifecycle: the daily retention purge (`CUSP_RETENTION_DAYS`).

use std::time::Duration;

use cusp::engine::Class;
use cusp::store::{Effects, NewObservation, NewOutboxMessage, ObservationSource};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, message_event, now_ms};

const DAY_MS: i64 = 24 * 3600 * 1000;
const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";

fn observation(key: &str) -> NewObservation {
    NewObservation {
        channel_id: "C1".into(),
        user_id: "U1".into(),
        message_ts: Some(format!("{key}.0001")),
        source: ObservationSource::Message,
        class: Class::Neutral,
        score: 0.0,
        account: None,
        themes: vec![cusp::engine::Theme::Stakeholders],
        dedupe_key: key.into(),
        text: None,
    }
}

async fn retention_purges_old_rows_in_batches_and_keeps_pending_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.state.store;
    let now = now_ms();
    // A real nudge: an observation, a prompt, a sent outbox row, a handled inbox row.
    let envelope = message_event("EvOld", "U_SELLER", SELLER, "1700000000.000100");
    assert_eq!(
        app.event(&envelope).await.status,
        axum::http::StatusCode::OK
    );
    app.drain_inbox().await;
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(store.count_observations(TEAM).await.unwrap(), 1);
    // Seven more old observations than one batch holds, and a recent one.
    for i in 0..7 {
        let effects = Effects {
            observation: Some(observation(&format!("old{i}"))),
            ..Effects::default()
        };
        store
            .record_effects(TEAM, &effects, now - 40 * DAY_MS + i)
            .await
            .unwrap();
    }
    let recent = Effects {
        observation: Some(observation("recent")),
        ..Effects::default()
    };
    store
        .record_effects(TEAM, &recent, now - 10 * DAY_MS)
        .await
        .unwrap();
    // Another team's old row is not this team's to purge.
    let other = Effects {
        observation: Some(observation("other-team")),
        ..Effects::default()
    };
    store
        .record_effects("T_OTHER", &other, now - 40 * DAY_MS)
        .await
        .unwrap();
    // A delivery still waiting is never purged, however old.
    store
        .enqueue_outbox(
            TEAM,
            &[NewOutboxMessage::new(
                "pending-old",
                cusp::slack::calls::SlackCall::PostMessage {
                    channel: cusp::slack::ids::ChannelId::parse("C1").unwrap(),
                    thread_ts: None,
                    message: cusp::slack::calls::Message::text("still to send"),
                },
            )],
            now - 40 * DAY_MS,
        )
        .await
        .unwrap();
    assert_eq!(store.count_observations(TEAM).await.unwrap(), 9);

    // Batches of 3: several rounds, one result.
    let counts = store
        .purge_older_than(TEAM, now - 30 * DAY_MS, 3)
        .await
        .unwrap();
    assert_eq!(counts.observations, 7, "{counts:?}");
    assert_eq!(store.count_observations(TEAM).await.unwrap(), 2);
    assert_eq!(store.count_observations("T_OTHER").await.unwrap(), 1);

    // The scheduler's daily pass with a 30-day retention, run a year later, takes the rest
    // that is finished, and leaves the pending delivery.
    let state = app
        .state
        .clone()
        .with_retention(Duration::from_secs(30 * 24 * 3600));
    let later = jiff::Timestamp::from_millisecond(now + 365 * DAY_MS).unwrap();
    let counts = cusp::jobs::scheduler::purge_expired(&state, TEAM, later).await;
    assert_eq!(counts.observations, 2, "{counts:?}");
    assert_eq!(counts.prompts, 1, "{counts:?}");
    assert!(counts.outbox >= 1, "the sent nudge: {counts:?}");
    assert_eq!(counts.inbox, 1, "the handled event: {counts:?}");
    assert_eq!(store.count_observations(TEAM).await.unwrap(), 0);
    assert_eq!(
        store.outbox_backlog(TEAM).await.unwrap(),
        1,
        "pending work stays"
    );
    assert!(
        store
            .recent_question_ids(TEAM, "U_SELLER", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing left: a second pass deletes nothing.
    let again = cusp::jobs::scheduler::purge_expired(&state, TEAM, later).await;
    assert_eq!(again.total(), 0, "{again:?}");
}

backend_matrix!(retention_purges_old_rows_in_batches_and_keeps_pending_work);
