//! What happens to a workspace's rows when it removes cusp (`app_uninstalled`,
//! `tokens_revoked`, `cusp installations remove`): its pending deliveries stop at once,
//! and 30 days later everything cusp holds about the team is deleted unless it
//! reinstalled meanwhile (a reinstall clears `installations.uninstalled_at`).

use super::db::sql;
use super::installations::InstallationKey;
use super::{Store, StoreError};

/// Every table that holds a team's rows, by `team_id`, in the order the team purge
/// deletes them; the installation row goes last
/// (it is what marks the purge as still owed). `tests/it/uninstall.rs` checks this list
/// against the schema, so a new table cannot be forgotten.
pub const TEAM_TABLES: &[&str] = &[
    "inbox",
    // Their themes go with them (ON DELETE CASCADE); the next line catches any left.
    "observations",
    "observation_themes",
    "outbox",
    "prompts",
    "reflections",
    "corrections",
    "deal_mutes",
    "crm_deliveries",
    "user_prefs",
    "channel_settings",
    "team_settings",
    "digest_preferences",
    "digest_settings",
    "digest_runs",
    "slack_rate_limits",
];

/// Tables with an `id` column, emptied in batches so that a large team never holds
/// SQLite's single write lock for long; the others hold a few rows per person or channel.
const BATCHED: &[&str] = &[
    "inbox",
    "observations",
    "outbox",
    "prompts",
    "reflections",
    "corrections",
];

impl Store {
    /// Stops a removed team's deliveries: every outbox row not yet sent becomes `dead`
    /// with `reason`, so nothing is retried with a token that no longer works. Returns
    /// how many rows were stopped.
    pub async fn stop_team_deliveries(
        &self,
        team_id: &str,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let stopped = sql(
            "UPDATE outbox SET status = 'dead', last_error = $2, locked_until = NULL \
             WHERE team_id = $1 AND status IN ('pending', 'sending')",
        )
        .bind(team_id)
        .bind(reason)
        .execute(self)
        .await?;
        Ok(stopped)
    }

    /// Drops a removed team's events still waiting in the inbox: their payload (the
    /// person's words) is deleted and they are parked `failed` with `reason`, so the
    /// text is not kept for the 30 days of grace, and a reinstall does not answer
    /// messages from weeks ago. Returns how many were dropped.
    pub async fn drop_team_events(
        &self,
        team_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let dropped = sql(
            "UPDATE inbox SET status = 'failed', payload = NULL, locked_until = NULL, \
                 last_error = $2, handled_at = $3 \
             WHERE team_id = $1 AND status IN ('pending', 'working')",
        )
        .bind(team_id)
        .bind(reason)
        .bind(now_ms)
        .execute(self)
        .await?;
        Ok(dropped)
    }

    /// Workspace-level installations removed before `removed_before_ms` and never
    /// reinstalled (under any key; the purge deletes by team id): whose data the purge
    /// deletes now. Reads across teams (documented
    /// exception, like the refresh scheduler's: the job has no team yet). An org-wide
    /// installation (no team id) has no rows of its own to delete.
    pub async fn uninstalled_before(
        &self,
        removed_before_ms: i64,
    ) -> Result<Vec<InstallationKey>, StoreError> {
        let rows: Vec<(String, String)> =
            sql("SELECT enterprise_id, team_id FROM installations removed \
             WHERE bot_token IS NULL AND uninstalled_at IS NOT NULL AND uninstalled_at < $1 \
                 AND team_id <> '' \
                 AND NOT EXISTS (SELECT 1 FROM installations live \
                     WHERE live.team_id = removed.team_id AND live.bot_token IS NOT NULL) \
             ORDER BY uninstalled_at")
            .bind(removed_before_ms)
            .fetch_all(self)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(enterprise_id, team_id)| InstallationKey {
                enterprise_id,
                team_id,
            })
            .collect())
    }

    /// True while `key` is still removed since before `removed_before_ms` and no
    /// installation serves its team (no reinstall came in meanwhile, under this key or
    /// another: a workspace that joined an Enterprise Grid org installs again under the
    /// org's id): the purge checks it before each table.
    async fn still_uninstalled(
        &self,
        key: &InstallationKey,
        removed_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let found: i64 = sql("SELECT COUNT(*) FROM installations removed \
             WHERE enterprise_id = $1 AND team_id = $2 \
                 AND bot_token IS NULL AND uninstalled_at IS NOT NULL AND uninstalled_at < $3 \
                 AND NOT EXISTS (SELECT 1 FROM installations live \
                     WHERE live.team_id = $2 AND live.bot_token IS NOT NULL)")
        .bind(&key.enterprise_id)
        .bind(&key.team_id)
        .bind(removed_before_ms)
        .scalar(self)
        .await?;
        Ok(found > 0)
    }

    /// Deletes every row of the removed team `key` in every table of [`TEAM_TABLES`],
    /// `batch` rows per statement, then the installation row itself. Stops (returning
    /// `None`) as soon as the team turns out to have reinstalled; returns the number of
    /// rows deleted otherwise. Safe to run twice at once (two replicas): deletes are
    /// idempotent, and the installation row goes last, so a crash leaves the purge owed.
    pub async fn purge_uninstalled_team(
        &self,
        key: &InstallationKey,
        removed_before_ms: i64,
        batch: i64,
    ) -> Result<Option<u64>, StoreError> {
        let team = key.team_id.as_str();
        let mut deleted = 0;
        for table in TEAM_TABLES {
            if !self.still_uninstalled(key, removed_before_ms).await? {
                return Ok(None);
            }
            deleted += if BATCHED.contains(table) {
                self.delete_team_rows_in_batches(table, team, batch).await?
            } else {
                let text = format!("DELETE FROM {table} WHERE team_id = $1");
                sql(&text).bind(team).execute(self).await?
            };
        }
        let removed = sql(
            "DELETE FROM installations WHERE enterprise_id = $1 AND team_id = $2 \
                 AND bot_token IS NULL AND uninstalled_at IS NOT NULL AND uninstalled_at < $3",
        )
        .bind(&key.enterprise_id)
        .bind(&key.team_id)
        .bind(removed_before_ms)
        .execute(self)
        .await?;
        if removed == 0 {
            return Ok(None);
        }
        Ok(Some(deleted + removed))
    }

    async fn delete_team_rows_in_batches(
        &self,
        table: &str,
        team: &str,
        batch: i64,
    ) -> Result<u64, StoreError> {
        // `table` comes from the constant list above, never from input.
        let text = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE team_id = $1 LIMIT $2)"
        );
        let mut total = 0;
        loop {
            let n = sql(&text).bind(team).bind(batch).execute(self).await?;
            total += n;
            if n < u64::try_from(batch).unwrap_or(u64::MAX) {
                return Ok(total);
            }
            // Let other writers in between batches (SQLite has one writer at a time).
            tokio::task::yield_now().await;
        }
    }
}
