//! The inbox worker handles different channels and people side by side: each channel's
//! events still in the order they came (a thread reply after its root), one person's
//! daily nudge limit still exact, each event handled once with two workers on one
//! database, and a busy workspace does not hold up another.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use cusp::engine::Engine;
use cusp::jobs::inbox_worker::{self, IN_HAND};
use cusp::state::AppState;

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, TestDb, message_event, now_ms};
use crate::support::two_teams::{KIM, SAM, T_A, T_B, channel_of, event_in};

const CHANNELS: usize = 12;
const PER_CHANNEL: usize = 6;
/// Twelve accounts, one per channel.
const ACCOUNTS: [&str; 12] = [
    "Alder", "Birch", "Cedar", "Dogwood", "Elmwood", "Fir", "Ginkgo", "Hazel", "Ironwood",
    "Juniper", "Larch", "Rowan",
];

fn account(i: usize) -> String {
    format!("{} Logistics", ACCOUNTS[i % ACCOUNTS.len()])
}

/// A seller-centric update naming its account: a deal update and a nudge on its own.
fn root_text(i: usize) -> String {
    format!(
        "{}: need them to sign by Friday so I hit my quota, pushing hard for the PO",
        account(i)
    )
}
/// Names no account: as a reply in a logged deal's thread it is an update of that deal
/// (its account), which the worker can only know once the root is handled.
const REPLY: &str = "They asked for 20% off, so I offered it if they sign this week";

fn message_in(channel: &str, user: &str, text: &str, ts: &str, thread_ts: Option<&str>) -> Value {
    let mut event = message_event(&format!("Ev-{channel}-{ts}"), user, text, ts);
    event["event"]["channel"] = json!(channel);
    if let Some(thread_ts) = thread_ts {
        event["event"]["thread_ts"] = json!(thread_ts);
    }
    event
}

async fn send(app: &TestApp, event: &Value) {
    let response = app.event(event).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
}

/// `(channel_id, message_ts, account)` of every observation of `team`, in the order they
/// were stored.
async fn observations_in_order(db: &TestDb, team: &str) -> Vec<(String, String, Option<String>)> {
    const SQL: &str = "SELECT channel_id, message_ts, account FROM observations \
                       WHERE team_id = $1 ORDER BY id";
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(SQL)
            .bind(team)
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(SQL)
            .bind(team)
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    }
}

fn ts(round: usize, channel: usize) -> String {
    format!("1700000{round:03}.{channel:06}")
}

async fn each_channels_events_are_handled_in_order_while_channels_run_side_by_side(
    backend: Backend,
) {
    let engine = Engine::builtin();
    for c in 0..CHANNELS {
        assert_eq!(engine.analyze(&root_text(c)).account, Some(account(c)));
    }
    let reply = engine.analyze(REPLY);
    assert!(
        reply.account.is_none() && !reply.themes.is_empty(),
        "the reply must depend on its root"
    );
    let app = TestApp::spawn(backend).await;
    // Round by round across every channel, so each claimed batch spans all of them;
    // people post in several channels (their events wait for each other too).
    for round in 0..PER_CHANNEL {
        for c in 0..CHANNELS {
            let channel = format!("C{c:03}");
            let user = format!("U{:03}", (c + round) % CHANNELS);
            let (text, thread) = if round == 0 {
                (root_text(c), None)
            } else {
                (REPLY.to_owned(), Some(ts(0, c)))
            };
            let ts = ts(round, c);
            send(
                &app,
                &message_in(&channel, &user, &text, &ts, thread.as_deref()),
            )
            .await;
        }
    }
    assert_eq!(app.drain_inbox().await, CHANNELS * PER_CHANNEL);

    let stored = observations_in_order(&app.db, TEAM).await;
    assert_eq!(stored.len(), CHANNELS * PER_CHANNEL);
    for c in 0..CHANNELS {
        let channel = format!("C{c:03}");
        let of_channel: Vec<_> = stored.iter().filter(|(ch, _, _)| *ch == channel).collect();
        let order: Vec<&str> = of_channel.iter().map(|(_, ts, _)| ts.as_str()).collect();
        let account = account(c).to_lowercase();
        assert!(
            of_channel
                .iter()
                .all(|(_, _, a)| a.as_deref().map(str::to_lowercase) == Some(account.clone())),
            "every reply was handled after its root, so it is the root's deal: {of_channel:?}"
        );
        let arrival: Vec<String> = (0..PER_CHANNEL).map(|round| ts(round, c)).collect();
        assert_eq!(order, arrival, "{channel} handled out of order");
    }
    // One nudge per thread (the root's), none for the replies.
    assert_eq!(
        app.state
            .store
            .count_outbox_with_prefix(TEAM, "nudge:")
            .await
            .unwrap(),
        CHANNELS as i64
    );
}

async fn a_persons_daily_limit_holds_when_their_channels_are_handled_side_by_side(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // One person, eight channels at once, each a different deal: only the daily limit
    // (3) can hold nudges back.
    for c in 0..8 {
        let channel = format!("C{c:03}");
        let ts = ts(0, c);
        send(
            &app,
            &message_in(&channel, "U_SELLER", &root_text(c), &ts, None),
        )
        .await;
    }
    assert_eq!(app.drain_inbox().await, 8);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 8);
    assert_eq!(
        app.state
            .store
            .count_outbox_with_prefix(TEAM, "nudge:")
            .await
            .unwrap(),
        3,
        "the person's events wait for each other, so each sees the nudges before it"
    );
}

/// Runs the real worker loop on `state` until `stop` is sent.
fn start_worker(
    state: AppState,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(inbox_worker::run(state, stopped));
    (stop, handle)
}

async fn two_workers_on_one_database_handle_each_event_once(backend: Backend) {
    const EVENTS: usize = 90;
    let app = TestApp::spawn(backend).await;
    let replica = app.another_replica().await;
    // Each message starts its own thread, by its own person: nothing here depends on
    // order, which only holds within one process.
    for i in 0..EVENTS {
        let channel = format!("C{:03}", i % 9);
        let user = format!("U{i:03}");
        let ts = ts(i / 9, i % 9);
        send(&app, &message_in(&channel, &user, &root_text(i), &ts, None)).await;
    }
    let workers = [start_worker(app.state.clone()), start_worker(replica)];
    let store = &app.state.store;
    let drained = tokio::time::timeout(Duration::from_secs(60), async {
        while store.inbox_backlog(TEAM).await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for (stop, handle) in workers {
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("the worker stops")
            .unwrap();
    }
    assert!(drained.is_ok(), "the two workers drained the inbox");

    let count = |sql: &'static str| app.db.scalar_for_team(sql, TEAM);
    assert_eq!(
        count("SELECT COUNT(*) FROM inbox WHERE team_id = $1 AND status = 'done' AND attempts = 1")
            .await,
        EVENTS as i64,
        "each event was claimed once and handled"
    );
    assert_eq!(store.count_observations(TEAM).await.unwrap(), EVENTS as i64);
    assert_eq!(
        store
            .count_outbox_with_prefix(TEAM, "nudge:")
            .await
            .unwrap(),
        EVENTS as i64
    );
}

async fn a_busy_workspace_does_not_hold_up_another(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    let busy = IN_HAND * 2;
    for i in 0..busy {
        let ts = format!("1700000000.{i:06}");
        let user = if i % 2 == 0 { SAM } else { KIM };
        app.say_in(
            T_A,
            channel_of(T_A),
            user,
            "quick sync with Globex done",
            &ts,
        )
        .await;
    }
    // Arrived last.
    for (i, user) in [SAM, KIM].into_iter().enumerate() {
        let event = event_in(
            T_B,
            channel_of(T_B),
            user,
            &root_text(i),
            &format!("1700000001.{i:06}"),
        );
        send(&app, &event).await;
    }

    let handled = inbox_worker::process_batch(&app.state, now_ms())
        .await
        .unwrap();
    assert!(
        handled <= IN_HAND,
        "one pass holds at most IN_HAND: {handled}"
    );
    assert_eq!(
        app.state.store.inbox_backlog(T_B).await.unwrap(),
        0,
        "the quiet workspace's events are handled in the first pass"
    );
    let a_left = app.state.store.inbox_backlog(T_A).await.unwrap();
    assert!(
        a_left >= (busy - IN_HAND) as i64,
        "the busy one took no more than its share: {a_left} left"
    );
    assert_eq!(app.drain_inbox().await as i64, a_left);
}

backend_matrix!(
    each_channels_events_are_handled_in_order_while_channels_run_side_by_side,
    a_persons_daily_limit_holds_when_their_channels_are_handled_side_by_side,
    two_workers_on_one_database_handle_each_event_once,
    a_busy_workspace_does_not_hold_up_another,
);
