//! The inbox claim reads about `limit` rows however many events are queued, even when
//! the database's statistics are stale (a burst into a fresh table). It once walked every
//! open event per candidate on PostgreSQL: minutes for 70,000 queued events.

use serde_json::Value;
use sqlx::{PgPool, SqlitePool};

use crate::backend_matrix;
use crate::support::app::{Backend, TestDb};

const TEAM: &str = "T0CLAIM";
const QUEUED: i64 = 5_000;
const LIMIT: i64 = 16;
/// Generous for a claim of 16 (it reads about 4 rows per claimed event); the walk per
/// candidate read millions.
const MOST_ROWS_READ: f64 = 1_000.0;

/// Every fourth event replies in the thread of the event before it, so it waits for it.
const FILL_POSTGRES: &str = "INSERT INTO inbox (team_id, event_id, kind, payload, received_at, thread_key) \
     SELECT $1, 'Ev' || g, 'message', '{}', g, \
            'C1:' || CASE WHEN g % 4 = 0 THEN g - 1 ELSE g END \
     FROM generate_series(1, $2) AS g";
const FILL_SQLITE: &str = "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $2) \
     INSERT INTO inbox (team_id, event_id, kind, payload, received_at, thread_key) \
     SELECT $1, 'Ev' || n, 'message', '{}', n, \
            'C1:' || CASE WHEN n % 4 = 0 THEN n - 1 ELSE n END FROM g";

/// Rows read by every node of a PostgreSQL plan (`EXPLAIN ANALYZE`, JSON): returned plus
/// filtered out, times the node's loops.
fn rows_read(plan: &Value) -> f64 {
    let number = |key: &str| plan.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let own = (number("Actual Rows") + number("Rows Removed by Filter")) * number("Actual Loops");
    let children = plan
        .get("Plans")
        .and_then(Value::as_array)
        .map_or(0.0, |plans| plans.iter().map(rows_read).sum());
    own + children
}

async fn the_claim_reads_about_limit_rows_however_many_are_queued(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let statement = store.inbox_claim_statement();
    let (now, until) = (1_000_000_i64, 1_005_000_i64);
    match backend {
        Backend::Postgres => {
            let pool = PgPool::connect(&db.url).await.unwrap();
            // Stale statistics on purpose: the table was empty when last looked at.
            sqlx::query("ALTER TABLE inbox SET (autovacuum_enabled = false)")
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(FILL_POSTGRES)
                .bind(TEAM)
                .bind(QUEUED)
                .execute(&pool)
                .await
                .unwrap();
            // EXPLAIN ANALYZE runs the claim: rolled back, so the claim below sees the queue.
            let mut tx = pool.begin().await.unwrap();
            let explained: Value =
                sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {statement}"))
                    .bind(TEAM)
                    .bind(until)
                    .bind(now)
                    .bind(LIMIT)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            tx.rollback().await.unwrap();
            let read = rows_read(&explained[0]["Plan"]);
            assert!(
                read <= MOST_ROWS_READ,
                "a claim of {LIMIT} read {read} rows of {QUEUED} queued: {explained:#}"
            );
            pool.close().await;
        }
        Backend::Sqlite => {
            let pool = SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(FILL_SQLITE)
                .bind(TEAM)
                .bind(QUEUED)
                .execute(&pool)
                .await
                .unwrap();
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {statement}"))
                    .bind(TEAM)
                    .bind(until)
                    .bind(now)
                    .bind(LIMIT)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
            // Every look at the table is an index search that narrows by more than the
            // team (or by the row id): no step walks the queue, or all of a team's rows.
            for detail in &details {
                let reads_table = ["inbox", "due", "earlier"]
                    .iter()
                    .any(|name| detail.contains(&format!(" {name} ")) || detail.ends_with(name));
                if reads_table && (detail.starts_with("SEARCH") || detail.starts_with("SCAN")) {
                    assert!(
                        detail.starts_with("SEARCH")
                            && (detail.contains(" AND ")
                                || detail.contains("rowid")
                                || detail.contains("PRIMARY KEY")),
                        "{detail}: {details:#?}"
                    );
                }
            }
            assert!(
                details
                    .iter()
                    .any(|d| d.contains("earlier") && d.contains("inbox_thread")),
                "{details:#?}"
            );
            pool.close().await;
        }
    }
    // And it claims the right ones: the oldest heads of their threads, oldest first.
    let claimed = store
        .claim_inbox_items(TEAM, now, std::time::Duration::from_secs(5), LIMIT as usize)
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|item| item.id).collect();
    let expected: Vec<i64> = (1..).filter(|n| n % 4 != 0).take(LIMIT as usize).collect();
    let first = ids.first().copied().unwrap_or_default();
    let relative: Vec<i64> = ids.iter().map(|id| id - first + 1).collect();
    assert_eq!(relative, expected);
}

backend_matrix!(the_claim_reads_about_limit_rows_however_many_are_queued);
