//! Queries only tests and benchmarks need: reading back what production code wrote, and
//! loading a large data set fast. Compiled only with the `test-support` feature, which
//! the crate's own dev-dependency turns on for `tests/` and `benches/`, so none of this
//! is in the binary that serves Slack.

use std::collections::HashMap;

use super::db::{Backend, sql, values};
use super::observations::theme_rows;
use super::{NewObservation, Store, StoreError};

/// Rows per multi-row INSERT: 11 columns each keeps a statement under SQLite's 32,766
/// bound variables.
const ROWS_PER_INSERT: usize = 1_000;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl OutboxStatus {
    fn parse(s: &str) -> Result<OutboxStatus, StoreError> {
        match s {
            "pending" => Ok(OutboxStatus::Pending),
            "sending" => Ok(OutboxStatus::Sending),
            "sent" => Ok(OutboxStatus::Sent),
            "dead" => Ok(OutboxStatus::Dead),
            other => Err(StoreError::Corrupt(format!(
                "unknown outbox status {other:?}"
            ))),
        }
    }
}

/// The run row of a week.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DigestRunRow {
    pub week: String,
    pub status: String,
    pub attempts: i64,
    pub forced: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// Status, last error and attempts of one delivery, by idempotency key.
    pub async fn outbox_status(
        &self,
        team_id: &str,
        idempotency_key: &str,
    ) -> Result<(OutboxStatus, Option<String>, i64), StoreError> {
        const SQL: &str = "SELECT status, last_error, attempts FROM outbox \
                           WHERE team_id = $1 AND idempotency_key = $2";
        let row: Option<(String, Option<String>, i64)> = sql(SQL)
            .bind(team_id)
            .bind(idempotency_key)
            .fetch_optional(self)
            .await?;
        let (status, error, attempts) = row.ok_or(StoreError::NotFound)?;
        Ok((OutboxStatus::parse(&status)?, error, attempts))
    }

    /// How many outbox rows a team has whose key starts with `prefix`.
    pub async fn count_outbox_with_prefix(
        &self,
        team_id: &str,
        prefix: &str,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM outbox \
                           WHERE team_id = $1 AND idempotency_key LIKE $2 ESCAPE '\\'";
        let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        Ok(sql(SQL).bind(team_id).bind(pattern).scalar(self).await?)
    }

    /// When the earliest pending delivery of a team is due.
    pub async fn next_outbox_due(&self, team_id: &str) -> Result<Option<i64>, StoreError> {
        const SQL: &str =
            "SELECT MIN(next_attempt_at) FROM outbox WHERE team_id = $1 AND status = 'pending'";
        Ok(sql(SQL).bind(team_id).scalar(self).await?)
    }

    pub async fn digest_run(
        &self,
        team_id: &str,
        week: &str,
    ) -> Result<Option<DigestRunRow>, StoreError> {
        const SQL: &str = "SELECT week, status, attempts, forced, last_error FROM digest_runs \
                           WHERE team_id = $1 AND week = $2";
        Ok(sql(SQL)
            .bind(team_id)
            .bind(week)
            .fetch_optional(self)
            .await?)
    }

    /// Whether a channel manager turned nudges off in `channel_id`.
    pub async fn channel_nudges_off(
        &self,
        team_id: &str,
        channel_id: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM channel_settings \
                           WHERE team_id = $1 AND channel_id = $2 AND nudges_off = 1";
        let n: i64 = sql(SQL).bind(team_id).bind(channel_id).scalar(self).await?;
        Ok(n > 0)
    }

    /// Inserts observations with their themes at given times (`created_at`), in multi-row
    /// INSERTs inside one transaction: how the digest benchmark loads a million rows.
    /// Returns how many were new.
    pub async fn bulk_insert_observations(
        &self,
        team_id: &str,
        rows: &[(NewObservation, i64)],
    ) -> Result<u64, StoreError> {
        let mut inserted = 0;
        let mut tx = self.begin().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut observations = values(
                "INSERT INTO observations (team_id, channel_id, user_id, message_ts, source, \
                 class, score, account, dedupe_key, text, created_at)",
                "ON CONFLICT (team_id, dedupe_key) DO NOTHING RETURNING id, dedupe_key",
            );
            for (obs, at) in chunk {
                observations.row(vec![
                    team_id.into(),
                    (&obs.channel_id).into(),
                    (&obs.user_id).into(),
                    (&obs.message_ts).into(),
                    obs.source.as_str().into(),
                    obs.class.as_str().into(),
                    obs.score.into(),
                    (&obs.account).into(),
                    (&obs.dedupe_key).into(),
                    (&obs.text).into(),
                    (*at).into(),
                ]);
            }
            let ids: HashMap<String, i64> = observations
                .fetch_all::<(i64, String)>(&mut tx)
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
            for part in themes.chunks(ROWS_PER_INSERT) {
                let mut insert = theme_rows();
                for &(id, theme, at) in part {
                    insert.row(vec![id.into(), team_id.into(), theme.into(), at.into()]);
                }
                insert.execute(&mut tx).await?;
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Refreshes the planner's statistics after a bulk load (`VACUUM ANALYZE` on
    /// PostgreSQL, which also lets it use index-only scans; `ANALYZE` on SQLite).
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        let statements: &[&str] = match self.pool.backend() {
            Backend::Sqlite => &["ANALYZE"],
            Backend::Postgres => &[
                "VACUUM ANALYZE observations",
                "VACUUM ANALYZE observation_themes",
            ],
        };
        for statement in statements {
            sql(statement).execute(self).await?;
        }
        Ok(())
    }
}
