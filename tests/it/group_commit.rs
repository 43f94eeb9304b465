//! The group-commit writer (src/store/writer.rs): concurrent requests' writes share a
//! transaction, each request is answered only after the commit that holds its write, and
//! a failure reaches every request it touched, never silently dropping one.

use std::time::Duration;

use cusp::engine::{Class, Theme};
use cusp::slack::calls::SlackCall;
use cusp::slack::ids::ChannelId;
use cusp::store::{
    Effects, HandledItem, NewInboxItem, NewObservation, NewOutboxMessage, ObservationSource, Store,
};

use crate::backend_matrix;
use crate::support::app::{Backend, TestApp, TestDb, command_body};

const TEAM: &str = "T1";
/// Enough concurrent writers that the writer batches several of them together.
const WRITES: usize = 64;
/// Every scenario finishes well inside this, even on a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

fn reflection(key: &str, user: &str) -> Effects {
    Effects {
        observation: Some(NewObservation {
            channel_id: "C1".into(),
            user_id: user.into(),
            message_ts: None,
            source: ObservationSource::Command,
            class: Class::SellerCentric,
            score: 0.2,
            account: Some("Acme".into()),
            themes: vec![Theme::ClosingPush, Theme::QuotaPressure],
            dedupe_key: format!("command:{key}"),
            text: None,
        }),
        ..Effects::default()
    }
}

async fn inbox(store: &Store, event_id: &str, payload: &str) -> Result<bool, String> {
    let item = NewInboxItem {
        team_id: TEAM,
        event_id,
        kind: "message",
        payload,
        thread_key: None,
    };
    store
        .enqueue_inbox(&item, 1_000)
        .await
        .map_err(|e| e.to_string())
}

async fn every_concurrent_write_is_committed_before_its_answer(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // A second pool: what it sees is committed, not merely written on the writer's connection.
    let observer = db.store().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITES {
        let (store, observer) = (store.clone(), observer.clone());
        tasks.spawn(async move {
            if i % 2 == 0 {
                let event_id = format!("Ev{i}");
                assert_eq!(inbox(&store, &event_id, "{}").await, Ok(true));
                let state = observer.inbox_state(TEAM, &event_id).await;
                assert!(state.is_ok(), "answered before its commit: {state:?}");
            } else {
                let key = format!("trigger{i}");
                let effects = reflection(&key, "U1");
                assert!(store.record_effects(TEAM, &effects, 1_000).await.unwrap());
                let account = observer
                    .observed_account(TEAM, &format!("command:{key}"))
                    .await
                    .unwrap();
                assert_eq!(
                    account,
                    Some(Some("Acme".to_owned())),
                    "answered before its commit"
                );
            }
        });
    }
    let all = async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    };
    tokio::time::timeout(LIMIT, all).await.expect("in time");
    assert_eq!(
        db.scalar_for_team("SELECT COUNT(*) FROM inbox WHERE team_id = $1", TEAM)
            .await,
        (WRITES / 2) as i64
    );
    assert_eq!(
        db.scalar_for_team("SELECT COUNT(*) FROM observations WHERE team_id = $1", TEAM)
            .await,
        (WRITES / 2) as i64
    );
    assert_eq!(
        db.scalar_for_team(
            "SELECT COUNT(*) FROM observation_themes WHERE team_id = $1",
            TEAM
        )
        .await,
        WRITES as i64,
        "two themes per observation"
    );
    // Repeats in one batch or the next are still recognised as repeats.
    assert_eq!(inbox(&store, "Ev0", "{}").await, Ok(false));
    assert!(
        !store
            .record_effects(TEAM, &reflection("trigger1", "U1"), 2_000)
            .await
            .unwrap()
    );
}

async fn a_write_that_fails_fails_its_own_request_and_the_others_commit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // PostgreSQL cannot store U+0000 in TEXT; SQLite can. Sent amid good writes, the bad
    // one must come back as an error on PostgreSQL without taking its batch with it.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITES {
        let store = store.clone();
        tasks.spawn(async move {
            let payload = if i == WRITES / 2 {
                "{\"t\":\"a\0b\"}"
            } else {
                "{}"
            };
            (i, inbox(&store, &format!("Ev{i}"), payload).await)
        });
    }
    let results = tokio::time::timeout(LIMIT, tasks.join_all())
        .await
        .expect("in time");
    for (i, result) in results {
        if i == WRITES / 2 && backend == Backend::Postgres {
            assert!(result.is_err(), "the NUL write must be refused");
        } else {
            assert_eq!(result, Ok(true), "write {i}");
        }
    }
    let stored = if backend == Backend::Postgres {
        WRITES - 1
    } else {
        WRITES
    };
    assert_eq!(
        db.scalar_for_team("SELECT COUNT(*) FROM inbox WHERE team_id = $1", TEAM)
            .await,
        stored as i64
    );
}

async fn when_the_database_is_gone_every_waiting_request_gets_an_error(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    assert_eq!(inbox(&store, "Ev-before", "{}").await, Ok(true));
    store.close().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITES {
        let store = store.clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                inbox(&store, &format!("Ev{i}"), "{}").await.map(|_| ())
            } else {
                store
                    .record_effects(TEAM, &reflection(&format!("t{i}"), "U1"), 1_000)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        });
    }
    let results = tokio::time::timeout(LIMIT, tasks.join_all())
        .await
        .expect("every request answered in time");
    assert_eq!(results.len(), WRITES);
    assert!(
        results.iter().all(Result::is_err),
        "a write reported as done on a closed database: {results:?}"
    );
    assert_eq!(
        db.scalar_for_team("SELECT COUNT(*) FROM inbox WHERE team_id = $1", TEAM)
            .await,
        1
    );
}

async fn an_opted_out_persons_reflection_is_not_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let kept = store
        .record_effects_unless_opted_out(TEAM, "U1", &reflection("a", "U1"), 1_000)
        .await
        .unwrap();
    assert!(kept.is_some_and(|applied| applied.observation_logged));
    store.opt_out_and_forget(TEAM, "U1", 2_000).await.unwrap();
    let refused = store
        .record_effects_unless_opted_out(TEAM, "U1", &reflection("b", "U1"), 3_000)
        .await
        .unwrap();
    assert_eq!(refused, None);
    // Someone else in the same team is still logged.
    let other = store
        .record_effects_unless_opted_out(TEAM, "U2", &reflection("c", "U2"), 3_000)
        .await
        .unwrap();
    assert!(other.is_some_and(|applied| applied.observation_logged));
    assert_eq!(
        db.scalar_for_team("SELECT COUNT(*) FROM observations WHERE team_id = $1", TEAM)
            .await,
        1
    );
}

/// Before the writer, a reflection whose write waited past its 1 s budget was dropped
/// ("could not log the reflect observation: database timed out"): lost exactly when the
/// database was busiest. Now the answer says it could not confirm the save, and the write
/// commits as soon as the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflection_that_waits_past_its_budget_is_still_stored() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Another process holds SQLite's write lock for longer than reflect's 1 s budget but
    // less than the 5 s busy timeout.
    let mut other = app.hold_sqlite_write_lock().await;
    let body = command_body(
        "reflect Acme: need them to sign by Friday so I hit my quota",
        "trigger-busy",
    );
    let answer = tokio::time::timeout(
        LIMIT,
        app.post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
        ),
    )
    .await
    .expect("answered");
    assert_eq!(answer.status, axum::http::StatusCode::OK);
    let rendered = answer.json()["blocks"].to_string();
    assert!(rendered.contains("Questions to consider"), "{rendered}");
    assert!(rendered.contains("couldn't confirm"), "{rendered}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let stored = async {
        while app
            .state
            .store
            .count_observations(crate::support::app::TEAM)
            .await
            .unwrap()
            == 0
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), stored)
        .await
        .expect("the reflection's observation was stored once the lock was released");
}

/// Holds the database's write lock from another connection until `release` fires, so
/// writes sent meanwhile queue up and reach the writer as one batch.
async fn hold_writes(db: &TestDb, release: tokio::sync::oneshot::Receiver<()>) {
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let url = db.url.clone();
    tokio::spawn(async move {
        if url.starts_with("sqlite") {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            let _ = locked.send(());
            let _ = release.await;
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        } else {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("LOCK TABLE inbox, observations IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
            let _ = locked.send(());
            let _ = release.await;
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        }
    });
    is_locked.await.unwrap();
}

/// A reflection by `user` under `key`, unless they opted out: 1 stored, 0 a repeat,
/// 2 refused (opted out).
async fn reflect_as(store: &Store, user: &str, key: &str) -> Result<u8, String> {
    let applied = store
        .record_effects_unless_opted_out(TEAM, user, &reflection(key, user), 1_000)
        .await
        .map_err(|e| e.to_string())?;
    Ok(applied.map_or(2, |a| u8::from(a.fresh)))
}

/// One batch carrying the same event eight times, the same reflection eight times and
/// an opted-out person's reflections among others': each repeat is stored once and
/// reported new once, the opted-out person's are refused, everyone else's stored.
async fn repeats_and_opt_outs_inside_one_batch_are_told_apart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.opt_out_and_forget(TEAM, "U9", 500).await.unwrap();
    let (release, released) = tokio::sync::oneshot::channel();
    hold_writes(&db, released).await;
    let mut tasks = tokio::task::JoinSet::new();
    // Blocked on the lock: the writes below queue behind it as one batch.
    let first = store.clone();
    tasks.spawn(async move {
        (
            "first",
            inbox(&first, "Ev-first", "{}").await.map(|n| n as u8),
        )
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..8 {
        let store1 = store.clone();
        tasks.spawn(async move {
            (
                "event",
                inbox(&store1, "Ev-same", "{}").await.map(|n| n as u8),
            )
        });
        for (kind, user, key) in [
            ("same", "U1", "same".to_owned()),
            ("opted_out", "U9", format!("out{i}")),
            ("other", "U2", format!("other{i}")),
        ] {
            let store = store.clone();
            tasks.spawn(async move { (kind, reflect_as(&store, user, &key).await) });
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = release.send(());
    let mut seen: std::collections::HashMap<&str, Vec<u8>> = std::collections::HashMap::new();
    let all = async {
        while let Some(done) = tasks.join_next().await {
            let (kind, result) = done.unwrap();
            seen.entry(kind).or_default().push(result.unwrap());
        }
    };
    tokio::time::timeout(LIMIT, all).await.expect("in time");
    let sorted = |kind: &str| {
        let mut v = seen.get(kind).cloned().unwrap_or_default();
        v.sort_unstable();
        v
    };
    assert_eq!(sorted("first"), vec![1]);
    assert_eq!(
        sorted("event"),
        vec![0, 0, 0, 0, 0, 0, 0, 1],
        "one new, seven repeats"
    );
    assert_eq!(
        sorted("same"),
        vec![0, 0, 0, 0, 0, 0, 0, 1],
        "one fresh, seven repeats"
    );
    assert_eq!(sorted("opted_out"), vec![2; 8], "refused: opted out");
    assert_eq!(sorted("other"), vec![1; 8]);
    assert_eq!(
        db.scalar_for_team("SELECT COUNT(*) FROM inbox WHERE team_id = $1", TEAM)
            .await,
        2
    );
    assert_eq!(
        db.scalar_for_team("SELECT COUNT(*) FROM observations WHERE team_id = $1", TEAM)
            .await,
        9,
        "one repeated reflection and eight others; none of the opted-out person's"
    );
    assert_eq!(
        db.scalar_for_team(
            "SELECT COUNT(*) FROM observation_themes WHERE team_id = $1",
            TEAM
        )
        .await,
        18,
        "two themes per stored observation"
    );
}

fn reaction(key: &str) -> NewOutboxMessage {
    NewOutboxMessage::new(
        format!("reaction:{key}"),
        SlackCall::AddReaction {
            channel: ChannelId::parse("C1").unwrap(),
            timestamp: "1.0".into(),
            name: "seedling".into(),
        },
    )
}

fn observed(key: &str, outbox: Vec<NewOutboxMessage>) -> Effects {
    Effects {
        outbox,
        ..reflection(key, "U1")
    }
}

/// The inbox worker's group commit (`Store::finish_inbox_items`): a group of handled
/// events has the outcome of storing each in turn: an event whose observation was stored
/// before sends nothing, the others send theirs, and two events of one group that name
/// the same observation store it once, for the first.
async fn handled_events_committed_together_store_what_each_alone_would(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    assert!(
        store
            .record_effects(TEAM, &reflection("seen", "U1"), 500)
            .await
            .unwrap()
    );
    for i in 0..6 {
        inbox(&store, &format!("Ev{i}"), "{}").await.unwrap();
    }
    let items = store
        .claim_inbox_items(TEAM, 2_000, Duration::from_secs(5), 6)
        .await
        .unwrap();
    assert_eq!(items.len(), 6);
    let effects = [
        observed("a", vec![reaction("a")]),
        observed("seen", vec![reaction("seen")]),
        Effects {
            outbox: vec![reaction("bare")],
            ..Effects::default()
        },
        observed("b", Vec::new()),
    ];
    let handled: Vec<HandledItem<'_>> = items[..4]
        .iter()
        .zip(&effects)
        .map(|(item, effects)| HandledItem {
            team_id: TEAM,
            id: item.id,
            effects,
            now_ms: 2_000,
        })
        .collect();
    let applied = store.finish_inbox_items(&handled).await.unwrap();
    let summary: Vec<(bool, bool, Vec<&str>)> = applied
        .iter()
        .map(|a| (a.fresh, a.observation_logged, a.enqueued.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (true, true, vec!["reaction"]),
            (false, false, vec![]),
            (true, false, vec!["reaction"]),
            (true, true, vec![]),
        ]
    );
    assert_eq!(store.count_observations(TEAM).await.unwrap(), 3);
    assert_eq!(
        store
            .count_outbox_with_prefix(TEAM, "reaction:")
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.inbox_backlog(TEAM).await.unwrap(), 2);

    let twice = [
        observed("c", vec![reaction("c1")]),
        observed("c", vec![reaction("c2")]),
    ];
    let handled: Vec<HandledItem<'_>> = items[4..]
        .iter()
        .zip(&twice)
        .map(|(item, effects)| HandledItem {
            team_id: TEAM,
            id: item.id,
            effects,
            now_ms: 2_000,
        })
        .collect();
    let applied = store.finish_inbox_items(&handled).await.unwrap();
    assert_eq!(
        applied.iter().map(|a| a.fresh).collect::<Vec<_>>(),
        vec![true, false]
    );
    assert_eq!(store.count_observations(TEAM).await.unwrap(), 4);
    assert_eq!(
        store
            .count_outbox_with_prefix(TEAM, "reaction:c")
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.inbox_backlog(TEAM).await.unwrap(), 0);
}

backend_matrix!(
    repeats_and_opt_outs_inside_one_batch_are_told_apart,
    every_concurrent_write_is_committed_before_its_answer,
    a_write_that_fails_fails_its_own_request_and_the_others_commit,
    when_the_database_is_gone_every_waiting_request_gets_an_error,
    an_opted_out_persons_reflection_is_not_stored,
    handled_events_committed_together_store_what_each_alone_would,
);
