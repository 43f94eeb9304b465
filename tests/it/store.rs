//! Store scenarios that every backend must pass.

use std::time::Duration;

use cusp::engine::{Class, Theme};
use cusp::store::{
    Effects, ExportFilter, NewInboxItem, NewObservation, NewOutboxMessage, ObservationSource,
    OutboxStatus,
};

use crate::backend_matrix;
use crate::support::app::{Backend, TestDb};

fn observation(key: &str, themes: Vec<Theme>) -> NewObservation {
    NewObservation {
        channel_id: "C1".into(),
        user_id: "U1".into(),
        message_ts: Some(format!("{key}.0001")),
        source: ObservationSource::Message,
        class: Class::Balanced,
        score: 0.5,
        account: Some("Acme".into()),
        themes,
        dedupe_key: key.into(),
        text: None,
    }
}

fn post(key: &str) -> NewOutboxMessage {
    NewOutboxMessage::new(
        key,
        cusp::slack::calls::SlackCall::PostMessage {
            channel: cusp::slack::ids::ChannelId::parse("C1").unwrap(),
            thread_ts: None,
            message: cusp::slack::calls::Message::text("hello"),
        },
    )
}

async fn collect(
    store: &cusp::store::Store,
    team: &str,
    filter: &ExportFilter,
) -> Vec<cusp::store::ExportRow> {
    let mut rows = Vec::new();
    store
        .for_each_observation(team, filter, &mut |row| -> Result<
            (),
            cusp::store::StoreError,
        > {
            rows.push(row);
            Ok(())
        })
        .await
        .expect("export");
    rows
}

async fn inbox_dedupes_by_event_id_and_resumes_after_a_lease(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let item = NewInboxItem {
        team_id: "T1",
        event_id: "Ev1",
        kind: "event_callback",
        payload: "{}",
        thread_key: None,
    };
    assert!(store.enqueue_inbox(&item, 1_000).await.unwrap());
    assert!(
        !store.enqueue_inbox(&item, 1_001).await.unwrap(),
        "a retry is a no-op"
    );
    let other_team = NewInboxItem {
        team_id: "T2",
        ..item.clone()
    };
    assert!(
        store.enqueue_inbox(&other_team, 1_002).await.unwrap(),
        "event ids are per team"
    );

    let lease = Duration::from_secs(60);
    let claimed = store
        .claim_inbox_item("T1", 2_000, lease)
        .await
        .unwrap()
        .expect("claim");
    assert_eq!((claimed.event_id.as_str(), claimed.attempts), ("Ev1", 1));
    assert!(
        store
            .claim_inbox_item("T1", 2_001, lease)
            .await
            .unwrap()
            .is_none(),
        "leased"
    );
    // The holder "crashed": after the lease another worker takes it over.
    let again = store
        .claim_inbox_item("T1", 2_000 + 60_001, lease)
        .await
        .unwrap()
        .expect("reclaim");
    assert_eq!((again.id, again.attempts), (claimed.id, 2));

    let effects = Effects {
        observation: Some(observation("m1", vec![Theme::Stakeholders])),
        outbox: vec![post("k1")],
        ..Effects::default()
    };
    store
        .finish_inbox_item("T1", again.id, &effects, 70_000)
        .await
        .unwrap();
    assert_eq!(store.inbox_backlog("T1").await.unwrap(), 0);
    assert_eq!(
        store.inbox_backlog("T2").await.unwrap(),
        1,
        "the other team is untouched"
    );
    assert_eq!(store.count_observations("T1").await.unwrap(), 1);
    assert_eq!(store.outbox_backlog("T1").await.unwrap(), 1);
}

async fn failing_events_are_retried_then_parked(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let item = NewInboxItem {
        team_id: "T1",
        event_id: "Ev-bad",
        kind: "event_callback",
        payload: "not json",
        thread_key: None,
    };
    store.enqueue_inbox(&item, 0).await.unwrap();
    let claim = |at: i64| {
        let store = store.clone();
        async move {
            store
                .claim_inbox_item("T1", at, Duration::from_secs(1))
                .await
                .unwrap()
        }
    };
    let mut t = 1;
    for attempt in 1..=cusp::store::INBOX_MAX_ATTEMPTS {
        let claimed = claim(t).await.expect("claim");
        assert_eq!(claimed.attempts, attempt);
        let retry_at = t + 1_000;
        store
            .fail_inbox_item("T1", claimed.id, "bad payload", t, Some(retry_at))
            .await
            .unwrap();
        let state = store.inbox_state("T1", "Ev-bad").await.unwrap();
        assert_eq!(state.attempts, attempt);
        assert_eq!(state.last_error.as_deref(), Some("bad payload"));
        if attempt < cusp::store::INBOX_MAX_ATTEMPTS {
            assert_eq!(
                (state.status.as_str(), state.next_attempt_at),
                ("pending", retry_at)
            );
            assert!(claim(retry_at - 1).await.is_none(), "not before its retry");
        } else {
            assert_eq!(state.status, "failed");
        }
        t = retry_at;
    }
    assert!(claim(t + 3_600_000).await.is_none(), "parked for good");
    assert_eq!(store.inbox_backlog("T1").await.unwrap(), 0);
}

/// A 429's hold stops claims of that method for that team only, and 429s are counted
/// apart from failures.
async fn a_rate_limit_holds_one_method_of_one_team(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let react = NewOutboxMessage::new(
        "r",
        cusp::slack::calls::SlackCall::AddReaction {
            channel: cusp::slack::ids::ChannelId::parse("C1").unwrap(),
            timestamp: "1.0001".into(),
            name: "eyes".into(),
        },
    );
    store
        .enqueue_outbox("T1", &[post("a"), post("b"), react], 1_000)
        .await
        .unwrap();
    store
        .enqueue_outbox("T2", &[post("a")], 1_000)
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    let claim = |team: &'static str, at: i64| {
        let store = store.clone();
        async move { store.claim_outbox_item(team, at, lease).await.unwrap() }
    };

    let a = claim("T1", 1_000).await.expect("a");
    store
        .rate_limit_outbox_item("T1", a.id, "429", "chat.postMessage", 2_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .rate_limited_until("T1", "chat.postMessage")
            .await
            .unwrap(),
        Some(2_000)
    );
    let r = claim("T1", 1_000).await.expect("other methods go on");
    assert_eq!(r.idempotency_key, "r");
    assert!(claim("T1", 1_999).await.is_none(), "b is held");
    assert_eq!(
        claim("T2", 1_000).await.expect("other teams go on").team_id,
        "T2"
    );
    // A shorter wait from a later 429 does not shorten the hold.
    store
        .rate_limit_outbox_item("T1", r.id, "429", "chat.postMessage", 1_500)
        .await
        .unwrap();
    assert_eq!(
        store
            .rate_limited_until("T1", "chat.postMessage")
            .await
            .unwrap(),
        Some(2_000)
    );

    // Due order once the hold has passed: b (never tried), r, then a.
    assert_eq!(claim("T1", 2_000).await.expect("b").idempotency_key, "b");
    assert_eq!(claim("T1", 2_000).await.expect("r").idempotency_key, "r");
    let a = claim("T1", 2_000).await.expect("a");
    assert_eq!(
        (a.attempts, a.rate_limited_attempts, a.failed_attempts()),
        (2, 1, 1)
    );
}

async fn observations_dedupe_and_export_with_their_themes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let first = Effects {
        observation: Some(observation(
            "m1",
            vec![Theme::ClosingPush, Theme::Stakeholders],
        )),
        outbox: vec![post("reply-m1")],
        ..Effects::default()
    };
    assert!(store.record_effects("T1", &first, 1_000).await.unwrap());
    let duplicate = Effects {
        observation: first.observation.clone(),
        outbox: vec![post("reply-m1-again")],
        ..Effects::default()
    };
    assert!(!store.record_effects("T1", &duplicate, 1_500).await.unwrap());
    assert_eq!(
        store.outbox_backlog("T1").await.unwrap(),
        1,
        "a duplicate observation sends nothing"
    );
    let none = Effects {
        observation: Some(observation("m2", vec![])),
        outbox: vec![],
        ..Effects::default()
    };
    store.record_effects("T1", &none, 2_000).await.unwrap();
    store
        .record_effects(
            "T2",
            &Effects {
                observation: Some(observation("m1", vec![Theme::Adoption])),
                outbox: vec![],
                ..Effects::default()
            },
            3_000,
        )
        .await
        .unwrap();

    let rows = collect(&store, "T1", &ExportFilter::default()).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].themes, ["closing_push", "stakeholders"]);
    assert_eq!(
        (
            rows[0].source.as_str(),
            rows[0].class.as_str(),
            rows[0].score
        ),
        ("message", "balanced", 0.5)
    );
    assert!(rows[1].themes.is_empty());
    assert!(
        rows.iter().all(|r| r.team_id == "T1"),
        "no other team's data"
    );

    let window = ExportFilter {
        since_ms: Some(1_500),
        until_ms: Some(2_001),
    };
    let rows = collect(&store, "T1", &window).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].created_at_ms, 2_000);
    assert_eq!(store.observed_teams().await.unwrap(), ["T1", "T2"]);
}

async fn outbox_claims_retries_and_records_outcomes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store
        .enqueue_outbox("T1", &[post("a"), post("b"), post("a")], 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.outbox_backlog("T1").await.unwrap(),
        2,
        "same key stored once"
    );
    let lease = Duration::from_secs(60);

    let a = store
        .claim_outbox_item("T1", 1_000, lease)
        .await
        .unwrap()
        .expect("a");
    assert_eq!((a.idempotency_key.as_str(), a.in_doubt), ("a", 0));
    store
        .retry_outbox_item("T1", a.id, "HTTP 500", 5_000, true)
        .await
        .unwrap();
    let b = store
        .claim_outbox_item("T1", 1_000, lease)
        .await
        .unwrap()
        .expect("b");
    assert_eq!(b.idempotency_key, "b");
    assert!(
        store
            .claim_outbox_item("T1", 1_000, lease)
            .await
            .unwrap()
            .is_none(),
        "a is not due yet"
    );
    assert_eq!(store.next_outbox_due("T1").await.unwrap(), Some(5_000));

    // The worker holding b dies mid-call: after the lease b comes back, flagged in doubt.
    let b_again = store
        .claim_outbox_item("T1", 1_000 + 60_001, lease)
        .await
        .unwrap()
        .expect("b again");
    assert_eq!(
        (
            b_again.idempotency_key.as_str(),
            b_again.in_doubt,
            b_again.attempts
        ),
        ("b", 1, 2)
    );
    store
        .mark_outbox_sent("T1", b_again.id, Some("1.0001"), 70_000)
        .await
        .unwrap();

    let a_again = store
        .claim_outbox_item("T1", 80_000, lease)
        .await
        .unwrap()
        .expect("a again");
    assert_eq!((a_again.in_doubt, a_again.attempts), (1, 2));
    store
        .mark_outbox_dead("T1", a_again.id, "channel_not_found")
        .await
        .unwrap();

    let (status, error, _) = store.outbox_status("T1", "a").await.unwrap();
    assert_eq!(
        (status, error.as_deref()),
        (OutboxStatus::Dead, Some("channel_not_found"))
    );
    assert_eq!(
        store.outbox_status("T1", "b").await.unwrap().0,
        OutboxStatus::Sent
    );
    assert!(
        store.outbox_status("T2", "b").await.is_err(),
        "scoped by team"
    );
    assert_eq!(store.outbox_backlog("T1").await.unwrap(), 0);
}

/// The bulk load spans several multi-row INSERTs (1,000 rows each), repeats one key inside
/// the batch and loads the whole batch twice: each observation and theme is stored once.
async fn a_bulk_load_larger_than_one_insert_stores_each_row_and_theme_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (customer, seller) = (Theme::ALL[4], Theme::ALL[0]);
    let rows: Vec<(NewObservation, i64)> = (0..2_500)
        .map(|i| {
            // Row 1,701 repeats row 5's key: the second one is skipped.
            let key = if i == 1_701 {
                "bulk:5".into()
            } else {
                format!("bulk:{i}")
            };
            let themes = if i % 10 == 0 {
                vec![]
            } else {
                vec![seller, customer]
            };
            (observation(&key, themes), 1_000 + i)
        })
        .collect();
    assert_eq!(
        store.bulk_insert_observations("T1", &rows).await.unwrap(),
        2_499
    );
    assert_eq!(
        store.bulk_insert_observations("T1", &rows).await.unwrap(),
        0,
        "a second load of the same keys stores nothing"
    );
    assert_eq!(store.count_observations("T1").await.unwrap(), 2_499);
    assert_eq!(store.count_observations("T2").await.unwrap(), 0);
    // 250 rows carry no theme; row 1,701 was a repeat.
    let mut themes = store.digest_theme_counts("T1", 0, i64::MAX).await.unwrap();
    themes.sort();
    let mut expected = vec![
        (customer.id().to_string(), 2_249),
        (seller.id().to_string(), 2_249),
    ];
    expected.sort();
    assert_eq!(themes, expected);
    let exported = collect(&store, "T1", &ExportFilter::default()).await;
    let last = exported.last().expect("rows exported");
    assert_eq!(last.ts.as_deref(), Some("bulk:2499.0001"));
    assert_eq!(last.created_at_ms, 3_499);
    assert_eq!(last.themes.len(), 2);
}

async fn migrations_apply_twice_without_harm(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.migrate().await.expect("second run is a no-op");
    store.ping().await.expect("ping");
}

backend_matrix!(
    inbox_dedupes_by_event_id_and_resumes_after_a_lease,
    failing_events_are_retried_then_parked,
    observations_dedupe_and_export_with_their_themes,
    outbox_claims_retries_and_records_outcomes,
    a_rate_limit_holds_one_method_of_one_team,
    migrations_apply_twice_without_harm,
    a_bulk_load_larger_than_one_insert_stores_each_row_and_theme_once,
);

#[test]
fn both_backends_have_the_same_migration_names() {
    let names = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .expect("migrations dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}
