//! Week aggregates for the digest: class and theme counts, spotlight candidates,
//! shared reflections and prompt feedback.
//!
//! Aggregates are `GROUP BY` counts over the `(team_id, created_at, …)` indexes, so a team
//! with a million observations gets its week in well under a second. Week boundaries are
//! passed in (local midnights, computed by `bot::digest::week`), so a week that is 167 or
//! 169 hours long is counted exactly.

use super::super::db::sql;
use super::super::{Store, StoreError};

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
        let statement = format!(
            "SELECT {case} AS bucket, class, COUNT(*) AS n FROM observations \
             WHERE team_id = $1{user_filter} AND created_at >= $2 AND created_at < $3 \
             GROUP BY 1, 2",
            case = bucket_case(first, weeks)
        );
        let mut query = sql(&statement)
            .bind(team_id)
            .bind(bounds[0])
            .bind(bounds[weeks]);
        if let Some(user) = user_id {
            query = query.bind(user);
        }
        for bound in &bounds[1..] {
            query = query.bind(*bound);
        }
        let rows: Vec<(i64, String, i64)> = query.fetch_all(self).await?;
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
        let rows = sql(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(self)
            .await?;
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
        let rows = sql(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .bind(limit)
            .fetch_all(self)
            .await?;
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
        let n = sql(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .scalar(self)
            .await?;
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
        let counts = sql(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_one(self)
            .await?;
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
        let rows = sql(SQL)
            .bind(team_id)
            .bind(observation_id)
            .scalars(self)
            .await?;
        Ok(rows)
    }
}
