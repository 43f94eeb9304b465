//! Handling throughput after the ack: the inbox of a real store filled with signed
//! `message` events across many channels, then drained to observations and enqueued
//! nudges, once by the old loop (one claim, one event, one transaction at a time) and
//! once by the inbox worker, each on a fresh database, in the same run.
//!
//! `cargo bench --bench inbox` (SQLite file; also PostgreSQL when
//! `CUSP_TEST_POSTGRES_URL` is set). `CUSP_BENCH_EVENTS` (default 5,000) and
//! `CUSP_BENCH_CHANNELS` (default 50) size the run. Prints events/s for both, the ratio,
//! the CPU time per event, what was stored (both must store the same), and the RSS
//! before and at most during the drain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use secrecy::SecretString;
use tower::ServiceExt;

use cusp::app::build_router;
use cusp::bot;
use cusp::engine::Engine;
use cusp::jobs::inbox_worker::{self, INBOX_LEASE};
use cusp::slack::ids::{BotIdentity, TeamId, UserId};
use cusp::slack::signature::sign;
use cusp::slack::web_api::SlackClient;
use cusp::state::AppState;
use cusp::store::Store;

const TEAM: &str = "T_BENCH";
const SECRET: &str = "bench-signing-secret";
/// People posting; few enough that some reach the daily nudge limit, as in a real team.
const USERS: usize = 400;

/// Deal updates that draw a nudge (seller-centric), a reaction (customer-centric) or
/// only an observation; `{a}` is the account.
const TEXTS: [&str; 4] = [
    "{a} wants a discount before quarter end, I need it signed for my quota",
    "{a} wants a pilot before their board meets; our pricing is the blocker",
    "{a}'s CFO wants to cut onboarding time in half before their Q3 launch, so their team can hit its renewal goal",
    "Call with {a} went fine, sending the proposal with our new features tomorrow",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn state(store: Store) -> AppState {
    // Message events make no Slack call while handled; nothing listens on port 9.
    let slack = SlackClient::new(
        "http://127.0.0.1:9",
        SecretString::from("xoxb-bench"),
        Duration::from_secs(1),
    )
    .unwrap();
    let identity = BotIdentity {
        team_id: TeamId::parse(TEAM).unwrap(),
        user_id: UserId::parse("U_CUSP").unwrap(),
        bot_id: None,
    };
    AppState::new(
        store,
        Engine::builtin(),
        slack,
        vec![SecretString::from(SECRET)],
        identity,
    )
}

/// Event `i`: channel `i % channels`; every third message of a channel replies in the
/// thread of the message before it, so roots and replies interleave across channels.
fn envelope(i: usize, channels: usize) -> String {
    let channel = i % channels;
    let nth = i / channels;
    let ts = format!("{}.{:06}", 1_700_000_000 + nth, channel);
    let thread_ts = (nth % 3 == 2).then(|| format!("{}.{:06}", 1_700_000_000 + nth - 1, channel));
    let account = format!("Account{}", (i * 7) % 300);
    let text = TEXTS[i % TEXTS.len()].replace("{a}", &account);
    let mut event = serde_json::json!({
        "type": "message",
        "channel": format!("C{channel:05}"),
        "channel_type": "channel",
        "user": format!("U{:05}", i % USERS),
        "text": text,
        "ts": ts,
        "event_ts": ts,
    });
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = serde_json::json!(thread_ts);
    }
    serde_json::json!({
        "token": "deprecated",
        "team_id": TEAM,
        "api_app_id": "A_CUSP",
        "type": "event_callback",
        "event_id": format!("Ev{i:08}"),
        "event_time": 1_700_000_000,
        "event": event,
    })
    .to_string()
}

/// Fills the inbox through the real edge: signed requests, each acknowledged with 200.
async fn fill(state: &AppState, events: usize, channels: usize) {
    let router = build_router(state.clone());
    for i in 0..events {
        let body = envelope(i, channels);
        let now = jiff::Timestamp::now().as_second();
        let request = Request::post("/slack/events")
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", now.to_string())
            .header(
                "x-slack-signature",
                sign(SECRET.as_bytes(), now, body.as_bytes()),
            )
            .body(Body::from(body))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        state.store.inbox_backlog(TEAM).await.unwrap(),
        events as i64
    );
}

/// The inbox worker before issue 12: claim one event, handle it, store its effects in
/// its own transaction, repeat.
async fn drain_one_at_a_time(state: &AppState, now_ms: i64) -> usize {
    let workspace = state.workspaces.for_team(TEAM).await.unwrap().unwrap();
    let mut handled = 0;
    while let Some(item) = state
        .store
        .claim_inbox_item(TEAM, now_ms, INBOX_LEASE)
        .await
        .unwrap()
    {
        let payload = item.payload.as_deref().unwrap();
        let effects = bot::dispatch_event(&state.team(&workspace), &item.kind, payload, now_ms)
            .await
            .unwrap();
        state
            .store
            .finish_inbox_item(TEAM, item.id, &effects, now_ms)
            .await
            .unwrap();
        handled += 1;
    }
    handled
}

/// What a drain stored, to check both ways did the same work.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    observations: i64,
    nudges: i64,
    reactions: i64,
}

async fn stored(store: &Store) -> Stored {
    Stored {
        observations: store.count_observations(TEAM).await.unwrap(),
        nudges: store
            .count_outbox_with_prefix(TEAM, "nudge:")
            .await
            .unwrap(),
        reactions: store
            .count_outbox_with_prefix(TEAM, "reaction:")
            .await
            .unwrap(),
    }
}

/// Linux: a `/proc/self/status` figure in MiB (`VmHWM`: the peak RSS since the last
/// [`reset_peak_rss`]; `VmRSS`: now).
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn mib(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} MiB"))
}

/// Linux: CPU time this process used so far (user + system), in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

/// Linux: starts the peak RSS afresh (writing 5 to clear_refs resets VmHWM).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[derive(Clone, Copy)]
enum Way {
    OneAtATime,
    Worker,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::OneAtATime => "one at a time (before)",
            Way::Worker => "inbox worker",
        }
    }
}

/// Fills a fresh database at `url` and drains it `way`; events/s and what was stored.
async fn run(url: &str, way: Way, events: usize, channels: usize) -> (f64, Stored) {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let state = state(store.clone());
    fill(&state, events, channels).await;
    let rss_before = status_mib("VmRSS:");
    reset_peak_rss();
    let cpu_before = cpu_seconds();
    let now = jiff::Timestamp::now().as_millisecond();
    let started = Instant::now();
    let handled = match way {
        Way::OneAtATime => drain_one_at_a_time(&state, now).await,
        Way::Worker => inbox_worker::drain(&state, now).await.unwrap(),
    };
    let elapsed = started.elapsed();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let peak = status_mib("VmHWM:");
    assert_eq!(handled, events);
    assert_eq!(store.inbox_backlog(TEAM).await.unwrap(), 0);
    let rate = events as f64 / elapsed.as_secs_f64();
    let stored = stored(&store).await;
    let cpu = cpu.map_or_else(
        || "n/a".to_owned(),
        |cpu| format!("{:.0} µs CPU/event", cpu * 1e6 / events as f64),
    );
    println!(
        "  {:<24} {events} events in {:>6.2} s = {rate:>7.0} events/s ({cpu}); {} observations, {} nudges, {} reactions; RSS {} before the drain, peak {} during it",
        way.label(),
        elapsed.as_secs_f64(),
        stored.observations,
        stored.nudges,
        stored.reactions,
        mib(rss_before),
        mib(peak),
    );
    store.close().await;
    (rate, stored)
}

async fn compare(
    label: &str,
    mut fresh_url: impl FnMut() -> String,
    events: usize,
    channels: usize,
) {
    println!("{label}: {events} events across {channels} channels, {USERS} people");
    let (before, stored_before) = run(&fresh_url(), Way::OneAtATime, events, channels).await;
    let (after, stored_after) = run(&fresh_url(), Way::Worker, events, channels).await;
    assert_eq!(stored_before, stored_after, "both ways must store the same");
    println!("  ratio: {:.1}x", after / before);
}

async fn postgres_db(admin: &str, name: &str) -> String {
    let pool = sqlx::PgPool::connect(admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = base[scheme_end..]
        .find('/')
        .map_or(base, |slash| &base[..scheme_end + slash]);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn main() {
    let events = env_usize("CUSP_BENCH_EVENTS", 5_000);
    let channels = env_usize("CUSP_BENCH_CHANNELS", 50).max(1);
    // The server's runtime: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        let sqlite = || {
            n += 1;
            format!(
                "sqlite://{}",
                dir.path().join(format!("inbox-{n}.db")).display()
            )
        };
        compare("SQLite (file, WAL)", sqlite, events, channels).await;

        if let Some(admin) = std::env::var("CUSP_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty())
        {
            let names = ["cusp_bench_inbox_1", "cusp_bench_inbox_2"];
            let mut urls = Vec::new();
            for name in names {
                urls.push(postgres_db(&admin, name).await);
            }
            let mut urls = urls.into_iter();
            compare("PostgreSQL", || urls.next().unwrap(), events, channels).await;
            let pool = sqlx::PgPool::connect(&admin).await.unwrap();
            for name in names {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
            }
        } else {
            println!("PostgreSQL: skipped (CUSP_TEST_POSTGRES_URL is not set)");
        }
    });
}
