//! Digest settings, per-person preferences, week aggregates and run claims.
//!
//! Aggregates are `GROUP BY` counts over the `(team_id, created_at, …)` indexes, so a team
//! with a million observations gets its week in well under a second. Week boundaries are
//! passed in (local midnights, computed by `bot::digest::week`), so a week that is 167 or
//! 169 hours long is counted exactly.

use std::time::Duration;

use super::{Store, StoreError, in_transaction, with_pool};
use crate::store::NewOutboxMessage;

/// A team's saved digest settings, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DigestSettingsRow {
    pub team_id: String,
    pub channel_id: Option<String>,
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub weekday: i64,
    pub minute_of_day: i64,
    pub time_zone: String,
    pub enabled: i64,
    pub updated_at: i64,
}

/// Class counts of one week (bucket `0` is the oldest of the requested weeks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub customer_centric: i64,
    pub balanced: i64,
    pub seller_centric: i64,
    pub neutral: i64,
}

/// A candidate for the spotlight: a linkable, customer-centric update.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SpotlightRow {
    pub id: i64,
    pub channel_id: String,
    pub user_id: String,
    pub message_ts: String,
    pub account: Option<String>,
    pub score: f64,
}

/// The outcome of trying to claim a digest run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunClaim {
    /// Ours until the lease runs out; finish with this token.
    Claimed {
        token: String,
        attempt: i64,
    },
    Done,
    Skipped,
    Failed,
    /// Another instance holds a live lease.
    HeldElsewhere,
}

/// The run row of a week, for tests and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DigestRunRow {
    pub week: String,
    pub status: String,
    pub attempts: i64,
    pub forced: i64,
    pub last_error: Option<String>,
}

/// `CASE WHEN created_at < $b1 THEN 0 … END` over `weeks` buckets whose boundaries are
/// bound from `$first` on.
fn bucket_case(first: usize, weeks: usize) -> String {
    let mut case = String::from("CAST(CASE");
    for i in 0..weeks {
        case.push_str(&format!(" WHEN created_at < ${} THEN {i}", first + i + 1));
    }
    case.push_str(" END AS BIGINT)");
    case
}

impl Store {
    pub async fn digest_settings(
        &self,
        team_id: &str,
    ) -> Result<Option<DigestSettingsRow>, StoreError> {
        const SQL: &str = "SELECT team_id, channel_id, weekday, minute_of_day, time_zone, enabled, updated_at \
                           FROM digest_settings WHERE team_id = $1";
        let row = with_pool!(self, |pool| sqlx::query_as::<_, DigestSettingsRow>(SQL)
            .bind(team_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row)
    }

    /// Saves the schedule and channel and turns the digest on.
    #[expect(
        clippy::too_many_arguments,
        reason = "one column each; the caller names them"
    )]
    pub async fn save_digest_settings(
        &self,
        team_id: &str,
        channel_id: &str,
        weekday: i64,
        minute_of_day: i64,
        time_zone: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO digest_settings \
             (team_id, channel_id, weekday, minute_of_day, time_zone, enabled, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7) \
             ON CONFLICT (team_id) DO UPDATE SET channel_id = excluded.channel_id, \
             weekday = excluded.weekday, minute_of_day = excluded.minute_of_day, \
             time_zone = excluded.time_zone, enabled = 1, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by";
        with_pool!(self, |pool| sqlx::query(SQL)
            .bind(team_id)
            .bind(channel_id)
            .bind(weekday)
            .bind(minute_of_day)
            .bind(time_zone)
            .bind(now_ms)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Turns the digest off, keeping the rest of the settings.
    pub async fn disable_digest(
        &self,
        team_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE digest_settings SET enabled = 0, updated_at = $2, updated_by = $3 \
                           WHERE team_id = $1 AND enabled = 1";
        let done = with_pool!(self, |pool| sqlx::query(SQL)
            .bind(team_id)
            .bind(now_ms)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Sets a person's personal-DM opt-in (`Some`) and/or spotlight consent (`Some`).
    pub async fn set_digest_preference(
        &self,
        team_id: &str,
        user_id: &str,
        personal_dm: Option<bool>,
        spotlight: Option<bool>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO digest_preferences (team_id, user_id, personal_dm, spotlight, updated_at) \
             VALUES ($1, $2, COALESCE($3, 0), COALESCE($4, 1), $5) \
             ON CONFLICT (team_id, user_id) DO UPDATE SET \
             personal_dm = COALESCE($3, digest_preferences.personal_dm), \
             spotlight = COALESCE($4, digest_preferences.spotlight), updated_at = $5";
        with_pool!(self, |pool| sqlx::query(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(personal_dm.map(i64::from))
            .bind(spotlight.map(i64::from))
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// People who asked for their own digest by DM.
    pub async fn digest_subscribers(&self, team_id: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT p.user_id FROM digest_preferences p \
             WHERE p.team_id = $1 AND p.personal_dm = 1 \
               AND NOT EXISTS (SELECT 1 FROM user_prefs u \
                   WHERE u.team_id = p.team_id AND u.user_id = p.user_id AND u.opted_out = 1) \
             ORDER BY p.user_id";
        let users = with_pool!(self, |pool| sqlx::query_scalar(SQL)
            .bind(team_id)
            .fetch_all(pool)
            .await)?;
        Ok(users)
    }

    /// Class counts per week. `bounds` are the `n + 1` week boundaries (ms, ascending);
    /// the result has `n` entries, oldest first. With `user_id`, only that person's updates.
    pub async fn digest_class_counts(
        &self,
        team_id: &str,
        user_id: Option<&str>,
        bounds: &[i64],
    ) -> Result<Vec<ClassCounts>, StoreError> {
        let weeks = bounds.len().saturating_sub(1);
        let mut out = vec![ClassCounts::default(); weeks];
        if weeks == 0 {
            return Ok(out);
        }
        // $1 team, $2 first bound, $3 last bound, [$4 user], then the inner boundaries.
        let (user_filter, first) = match user_id {
            Some(_) => (" AND user_id = $4", 4),
            None => ("", 3),
        };
        let sql = format!(
            "SELECT {case} AS bucket, class, COUNT(*) AS n FROM observations \
             WHERE team_id = $1{user_filter} AND created_at >= $2 AND created_at < $3 \
             GROUP BY 1, 2",
            case = bucket_case(first, weeks)
        );
        let rows: Vec<(i64, String, i64)> = with_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql)
                .bind(team_id)
                .bind(bounds[0])
                .bind(bounds[weeks]);
            if let Some(user) = user_id {
                q = q.bind(user);
            }
            for b in &bounds[1..] {
                q = q.bind(*b);
            }
            q.fetch_all(pool).await
        })?;
        for (bucket, class, n) in rows {
            let Some(counts) = usize::try_from(bucket).ok().and_then(|b| out.get_mut(b)) else {
                continue;
            };
            match class.as_str() {
                "customer_centric" => counts.customer_centric += n,
                "balanced" => counts.balanced += n,
                "seller_centric" => counts.seller_centric += n,
                _ => counts.neutral += n,
            }
        }
        Ok(out)
    }

    /// How many updates showed each theme in `[since, until)`.
    pub async fn digest_theme_counts(
        &self,
        team_id: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT theme, COUNT(*) FROM observation_themes \
             WHERE team_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY theme";
        let rows = with_pool!(self, |pool| sqlx::query_as(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(pool)
            .await)?;
        Ok(rows)
    }

    /// The most customer-centric channel messages of `[since, until)` whose authors have
    /// not opted out of the spotlight, best first (at most `limit`).
    pub async fn digest_spotlight_candidates(
        &self,
        team_id: &str,
        since_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<SpotlightRow>, StoreError> {
        const SQL: &str = "SELECT o.id, o.channel_id, o.user_id, o.message_ts, o.account, o.score \
             FROM observations o \
             WHERE o.team_id = $1 AND o.created_at >= $2 AND o.created_at < $3 \
               AND o.class = 'customer_centric' AND o.message_ts IS NOT NULL \
               AND o.source IN ('message', 'mention') \
               AND NOT EXISTS (SELECT 1 FROM digest_preferences p \
                   WHERE p.team_id = o.team_id AND p.user_id = o.user_id AND p.spotlight = 0) \
               AND NOT EXISTS (SELECT 1 FROM user_prefs u \
                   WHERE u.team_id = o.team_id AND u.user_id = o.user_id AND u.opted_out = 1) \
             ORDER BY o.score DESC, o.created_at DESC, o.id DESC LIMIT $4";
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, SpotlightRow>(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows)
    }

    /// Reflections people shared with the team digest in `[since, until)`.
    pub async fn count_shared_reflections(
        &self,
        team_id: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM reflections \
             WHERE team_id = $1 AND shared = 1 AND created_at >= $2 AND created_at < $3";
        let n = with_pool!(self, |pool| sqlx::query_scalar(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_one(pool)
            .await)?;
        Ok(n)
    }

    /// Feedback given on prompts in `[since, until)`: (helpful, not now).
    pub async fn count_prompt_feedback(
        &self,
        team_id: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<(i64, i64), StoreError> {
        const SQL: &str = "SELECT \
             (SELECT COUNT(*) FROM prompts WHERE team_id = $1 AND feedback = 'helpful' \
                AND feedback_at >= $2 AND feedback_at < $3), \
             (SELECT COUNT(*) FROM prompts WHERE team_id = $1 AND feedback = 'not_now' \
                AND feedback_at >= $2 AND feedback_at < $3)";
        let counts = with_pool!(self, |pool| sqlx::query_as(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_one(pool)
            .await)?;
        Ok(counts)
    }

    /// Theme ids of one observation.
    pub async fn observation_theme_ids(
        &self,
        team_id: &str,
        observation_id: i64,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT theme FROM observation_themes \
                           WHERE team_id = $1 AND observation_id = $2 ORDER BY theme";
        let rows = with_pool!(self, |pool| sqlx::query_scalar(SQL)
            .bind(team_id)
            .bind(observation_id)
            .fetch_all(pool)
            .await)?;
        Ok(rows)
    }

    /// Claims the run of `week`: the first claimer inserts the row; a row left `claimed` by
    /// a holder whose lease ran out (a crash) is taken over. `manual` (the CLI) may also
    /// claim a week the scheduler skipped.
    pub async fn claim_digest_run(
        &self,
        team_id: &str,
        week: &str,
        scheduled_at_ms: i64,
        now_ms: i64,
        lease: Duration,
        manual: bool,
    ) -> Result<RunClaim, StoreError> {
        const INSERT: &str = "INSERT INTO digest_runs \
             (team_id, week, status, claim_token, lease_until, attempts, scheduled_at, claimed_at) \
             VALUES ($1, $2, 'claimed', $3, $4, 1, $5, $6) ON CONFLICT (team_id, week) DO NOTHING";
        const TAKE_OVER: &str = "UPDATE digest_runs SET status = 'claimed', claim_token = $3, \
             lease_until = $4, attempts = attempts + 1, claimed_at = $5 \
             WHERE team_id = $1 AND week = $2 \
               AND ((status = 'claimed' AND lease_until < $5) OR (status = 'skipped' AND $6 = 1))";
        const STATUS: &str = "SELECT status FROM digest_runs WHERE team_id = $1 AND week = $2";
        let token = format!("{:016x}", rand::random::<u64>());
        let until = now_ms.saturating_add(lease.as_millis() as i64);
        let inserted = with_pool!(self, |pool| sqlx::query(INSERT)
            .bind(team_id)
            .bind(week)
            .bind(&token)
            .bind(until)
            .bind(scheduled_at_ms)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if inserted == 1 {
            return Ok(RunClaim::Claimed { token, attempt: 1 });
        }
        let taken = with_pool!(self, |pool| sqlx::query(TAKE_OVER)
            .bind(team_id)
            .bind(week)
            .bind(&token)
            .bind(until)
            .bind(now_ms)
            .bind(i64::from(manual))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if taken == 1 {
            let attempt = self
                .digest_run(team_id, week)
                .await?
                .map_or(1, |r| r.attempts);
            return Ok(RunClaim::Claimed { token, attempt });
        }
        let status: Option<String> = with_pool!(self, |pool| sqlx::query_scalar(STATUS)
            .bind(team_id)
            .bind(week)
            .fetch_optional(pool)
            .await)?;
        Ok(match status.as_deref() {
            Some("done") => RunClaim::Done,
            Some("skipped") => RunClaim::Skipped,
            Some("failed") => RunClaim::Failed,
            _ => RunClaim::HeldElsewhere,
        })
    }

    /// Marks a claimed run done and enqueues its messages, in ONE transaction, only if the
    /// claim is still ours. `false`: the lease was lost and nothing was enqueued.
    pub async fn complete_digest_run(
        &self,
        team_id: &str,
        week: &str,
        token: &str,
        messages: &[NewOutboxMessage],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE digest_runs SET status = 'done', done_at = $4, lease_until = NULL, \
             last_error = NULL WHERE team_id = $1 AND week = $2 AND status = 'claimed' AND claim_token = $3";
        let ours = in_transaction!(self, |tx| {
            let done = sqlx::query(SQL)
                .bind(team_id)
                .bind(week)
                .bind(token)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            let ours = done.rows_affected() == 1;
            let kinds = if ours {
                super::outbox::insert_outbox!(tx, team_id, messages, now_ms)
            } else {
                Vec::new()
            };
            (ours, kinds)
        });
        let (ours, kinds) = ours;
        super::count_enqueued(&kinds);
        Ok(ours)
    }

    /// Records why a claimed run failed. The lease stays, so another attempt comes after it
    /// runs out; after `max_attempts` the run is marked `failed`.
    pub async fn fail_digest_run(
        &self,
        team_id: &str,
        week: &str,
        token: &str,
        error: &str,
        max_attempts: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE digest_runs SET last_error = $4, \
             status = CASE WHEN attempts >= $5 THEN 'failed' ELSE status END \
             WHERE team_id = $1 AND week = $2 AND status = 'claimed' AND claim_token = $3";
        with_pool!(self, |pool| sqlx::query(SQL)
            .bind(team_id)
            .bind(week)
            .bind(token)
            .bind(error)
            .bind(max_attempts)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a run as skipped (it was due 24 hours ago or more). `true` when this call
    /// recorded it; a run done, already skipped, or held under a live lease is left alone.
    pub async fn skip_digest_run(
        &self,
        team_id: &str,
        week: &str,
        scheduled_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO digest_runs (team_id, week, status, attempts, scheduled_at, done_at, last_error) \
             VALUES ($1, $2, 'skipped', 0, $3, $4, 'missed by more than 24 hours') \
             ON CONFLICT (team_id, week) DO UPDATE SET status = 'skipped', done_at = $4, \
             lease_until = NULL, last_error = 'missed by more than 24 hours' \
             WHERE digest_runs.status = 'claimed' AND digest_runs.lease_until < $4";
        let done = with_pool!(self, |pool| sqlx::query(SQL)
            .bind(team_id)
            .bind(week)
            .bind(scheduled_at_ms)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Re-sends a week on purpose (`cusp digest send --force`): marks the run done and
    /// enqueues `messages` under a fresh key per forced send (`{key}:force:{n}`), in one
    /// transaction. Returns `n`, the forced-send count of the week.
    pub async fn force_digest_run(
        &self,
        team_id: &str,
        week: &str,
        messages: &[NewOutboxMessage],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO digest_runs (team_id, week, status, attempts, forced, claimed_at, done_at) \
             VALUES ($1, $2, 'done', 1, 1, $3, $3) \
             ON CONFLICT (team_id, week) DO UPDATE SET status = 'done', forced = digest_runs.forced + 1, \
             done_at = $3, lease_until = NULL RETURNING forced";
        let n = in_transaction!(self, |tx| {
            let n: i64 = sqlx::query_scalar(SQL)
                .bind(team_id)
                .bind(week)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
            let keyed: Vec<NewOutboxMessage> = messages
                .iter()
                .map(|m| NewOutboxMessage {
                    idempotency_key: format!("{}:force:{n}", m.idempotency_key),
                    ..m.clone()
                })
                .collect();
            let kinds = super::outbox::insert_outbox!(tx, team_id, &keyed, now_ms);
            (n, kinds)
        });
        let (n, kinds) = n;
        super::count_enqueued(&kinds);
        Ok(n)
    }

    pub async fn digest_run(
        &self,
        team_id: &str,
        week: &str,
    ) -> Result<Option<DigestRunRow>, StoreError> {
        const SQL: &str = "SELECT week, status, attempts, forced, last_error FROM digest_runs \
                           WHERE team_id = $1 AND week = $2";
        let row = with_pool!(self, |pool| sqlx::query_as::<_, DigestRunRow>(SQL)
            .bind(team_id)
            .bind(week)
            .fetch_optional(pool)
            .await)?;
        Ok(row)
    }

    /// How many outbox rows a team has whose key starts with `prefix` (tests, diagnostics).
    pub async fn count_outbox_with_prefix(
        &self,
        team_id: &str,
        prefix: &str,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM outbox WHERE team_id = $1 AND idempotency_key LIKE $2 ESCAPE '\\'";
        let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        let n = with_pool!(self, |pool| sqlx::query_scalar(SQL)
            .bind(team_id)
            .bind(pattern)
            .fetch_one(pool)
            .await)?;
        Ok(n)
    }

    /// Inserts observations with their themes at given times, in batches of multi-row
    /// INSERTs inside one transaction (benchmarks and bulk imports). Returns how many were new.
    pub async fn bulk_insert_observations(
        &self,
        team_id: &str,
        rows: &[(super::NewObservation, i64)],
    ) -> Result<u64, StoreError> {
        /// Rows per INSERT: 11 binds each keeps under SQLite's 32,766-variable limit.
        const BATCH: usize = 1_000;
        let mut inserted = 0u64;
        in_transaction!(self, |tx| {
            for chunk in rows.chunks(BATCH) {
                let mut sql = String::from(
                    "INSERT INTO observations (team_id, channel_id, user_id, message_ts, source, class, \
                     score, account, dedupe_key, text, created_at) VALUES ",
                );
                for i in 0..chunk.len() {
                    let b = i * 11;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!(
                        "(${},${},${},${},${},${},${},${},${},${},${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9,
                        b + 10,
                        b + 11
                    ));
                }
                sql.push_str(
                    " ON CONFLICT (team_id, dedupe_key) DO NOTHING RETURNING id, dedupe_key",
                );
                let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
                for (obs, at) in chunk {
                    q = q
                        .bind(team_id)
                        .bind(&obs.channel_id)
                        .bind(&obs.user_id)
                        .bind(&obs.message_ts)
                        .bind(obs.source.as_str())
                        .bind(obs.class.as_str())
                        .bind(obs.score)
                        .bind(&obs.account)
                        .bind(&obs.dedupe_key)
                        .bind(&obs.text)
                        .bind(*at);
                }
                let ids: std::collections::HashMap<String, i64> = q
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(id, key)| (key, id))
                    .collect();
                inserted += ids.len() as u64;
                let themes: Vec<(i64, &'static str, i64)> = chunk
                    .iter()
                    .filter_map(|(obs, at)| ids.get(&obs.dedupe_key).map(|id| (obs, *id, *at)))
                    .flat_map(|(obs, id, at)| obs.themes.iter().map(move |t| (id, t.id(), at)))
                    .collect();
                for part in themes.chunks(BATCH * 2) {
                    let mut sql = String::from(
                        "INSERT INTO observation_themes (observation_id, team_id, theme, created_at) VALUES ",
                    );
                    for i in 0..part.len() {
                        let b = i * 4;
                        if i > 0 {
                            sql.push(',');
                        }
                        sql.push_str(&format!("(${},${},${},${})", b + 1, b + 2, b + 3, b + 4));
                    }
                    sql.push_str(" ON CONFLICT DO NOTHING");
                    let mut q = sqlx::query(&sql);
                    for (id, theme, at) in part {
                        q = q.bind(*id).bind(team_id).bind(*theme).bind(*at);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
        });
        Ok(inserted)
    }

    /// Refreshes the planner's statistics after a bulk load (`VACUUM ANALYZE` on
    /// PostgreSQL, which also lets it use index-only scans; `ANALYZE` on SQLite).
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        match &self.pool {
            super::Pool::Sqlite(pool) => {
                sqlx::query("ANALYZE").execute(pool).await?;
            }
            super::Pool::Postgres(pool) => {
                sqlx::query("VACUUM ANALYZE observations")
                    .execute(pool)
                    .await?;
                sqlx::query("VACUUM ANALYZE observation_themes")
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}
