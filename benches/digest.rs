//! Digest computation on a team with one million observations (~2 themes each), plus
//! another team's rows, on SQLite and (with `CUSP_TEST_POSTGRES_URL`) PostgreSQL.
//!
//! `cargo bench --bench digest` (set `CUSP_BENCH_ROWS` for a smaller run). The data
//! spans 16 weeks, so the 8-week trend reads half of it (~500,000 rows) and the reported
//! week ~62,500. Prints the load time and the min / median / max of computing and
//! composing the digest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use rand::{Rng, SeedableRng};

use cusp::bot::digest::{self, IsoWeek};
use cusp::engine::{Class, Engine, Theme};
use cusp::store::{NewObservation, ObservationSource, Store};

const TEAM: &str = "T_BENCH";
const OTHER: &str = "T_NOISE";
const WEEKS: i64 = 16;
const CHUNK: usize = 20_000;
const RUNS: usize = 10;

fn observation(rng: &mut impl Rng, i: usize, at: i64) -> (NewObservation, i64) {
    let customer = &Theme::ALL[4..];
    let seller = &Theme::ALL[..4];
    let roll = rng.random_range(0..100);
    let (class, themes) = match roll {
        0..30 => (
            Class::CustomerCentric,
            vec![
                customer[rng.random_range(0..9)],
                customer[rng.random_range(0..9)],
            ],
        ),
        30..50 => (
            Class::Balanced,
            vec![
                customer[rng.random_range(0..9)],
                seller[rng.random_range(0..4)],
            ],
        ),
        50..75 => (
            Class::SellerCentric,
            vec![
                seller[rng.random_range(0..4)],
                seller[rng.random_range(0..4)],
            ],
        ),
        _ => (Class::Neutral, vec![]),
    };
    let mut themes = themes;
    themes.sort();
    themes.dedup();
    let score = match class {
        Class::CustomerCentric => rng.random_range(0.6..1.0),
        Class::Balanced => 0.5,
        Class::SellerCentric => rng.random_range(0.0..0.3),
        Class::Neutral => 0.0,
    };
    (
        NewObservation {
            channel_id: format!("C{:03}", rng.random_range(0..5)),
            user_id: format!("U{:03}", rng.random_range(0..40)),
            message_ts: Some(format!("{}.{:06}", at / 1000, i % 1_000_000)),
            source: ObservationSource::Message,
            class,
            score,
            account: Some(format!("Account {}", rng.random_range(0..200))),
            themes,
            dedupe_key: format!("bench:{i}"),
            text: None,
        },
        at,
    )
}

async fn load(store: &Store, team: &str, rows: usize, start: i64, end: i64, seed: u64) -> Duration {
    let t = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut i = 0;
    while i < rows {
        let n = CHUNK.min(rows - i);
        let batch: Vec<_> = (i..i + n)
            .map(|k| {
                let at = rng.random_range(start..end);
                observation(&mut rng, k, at)
            })
            .collect();
        store.bulk_insert_observations(team, &batch).await.unwrap();
        i += n;
    }
    t.elapsed()
}

async fn bench(label: &str, url: &str, rows: usize) {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let tz = TimeZone::UTC;
    let week: IsoWeek = "2026-W47".parse().unwrap();
    let (_, end) = week.window_ms(&tz).unwrap();
    let start = end - WEEKS * 7 * 24 * 3_600_000;
    let loaded = load(&store, TEAM, rows, start, end, 1).await;
    load(&store, OTHER, rows / 10, start, end, 2).await;
    store.refresh_statistics().await.unwrap();
    let total = store.count_observations(TEAM).await.unwrap();
    eprintln!(
        "{label}: loaded {total} observations for {TEAM} in {:.1} s (+{} for {OTHER})",
        loaded.as_secs_f64(),
        rows / 10
    );

    let engine = Engine::builtin();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let stats = digest::week_stats(&store, TEAM, week, &tz, false)
            .await
            .unwrap();
        let d = digest::compose(&stats, &engine, digest::seed(TEAM, week));
        times.push(t.elapsed());
        last = Some((stats, d));
    }
    times.sort();
    let (stats, _) = last.unwrap();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: digest of {week} over {total} observations ({} that week, 8-week trend): min {:.0} ms, median {:.0} ms, max {:.0} ms",
        stats.this_week.total(),
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1]),
    );
    store.close().await;
}

fn main() {
    let rows: usize = std::env::var("CUSP_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        bench("sqlite", &url, rows).await;

        if let Some(admin) = std::env::var("CUSP_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty())
        {
            let name = format!("cusp_bench_{}", std::process::id());
            let pool = sqlx::PgPool::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            bench("postgres", &format!("{base}/{name}"), rows).await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        } else {
            eprintln!("postgres: skipped (CUSP_TEST_POSTGRES_URL is not set)");
        }
    });
}
