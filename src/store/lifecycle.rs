//! Data lifecycle: what a person can have forgotten (`/cusp forget me`, opt-out), the
//! retention purge (`CUSP_RETENTION_DAYS`), and which teams a database holds (so the
//! CLI can refuse an unknown `--team` instead of printing an empty result).

use super::{Store, StoreError, in_transaction, with_pool};

/// What deleting one person's data removed, per kind of row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForgetCounts {
    pub observations: u64,
    pub prompts: u64,
    pub reflections: u64,
    pub deal_mutes: u64,
    /// "Not quite right" corrections they made (with any text they shared).
    pub corrections: u64,
    /// Their mute and opt-out row, and their digest preferences (0–2 rows).
    pub preferences: u64,
    /// Team settings they changed that still named them (now anonymised).
    pub anonymised_settings: u64,
}

/// What one retention pass deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub observations: u64,
    pub prompts: u64,
    pub reflections: u64,
    pub corrections: u64,
    pub outbox: u64,
    pub inbox: u64,
    pub crm_deliveries: u64,
}

impl PurgeCounts {
    pub fn total(&self) -> u64 {
        self.observations
            + self.prompts
            + self.reflections
            + self.corrections
            + self.outbox
            + self.inbox
            + self.crm_deliveries
    }
}

/// Who changed a team or channel setting, once that person asked to be forgotten.
const FORGOTTEN: &str = "(forgotten)";

/// Deletes a person's observations (and their themes), prompts, reflections, corrections
/// and deal mutes inside the open transaction `$tx`; evaluates to `ForgetCounts` with those
/// five filled in. Shared by opt-out and `/cusp forget me`.
macro_rules! delete_person_rows {
    ($tx:ident, $team_id:expr, $user_id:expr) => {{
        let (team_id, user_id): (&str, &str) = ($team_id, $user_id);
        sqlx::query(
            "DELETE FROM observation_themes WHERE team_id = $1 AND observation_id IN \
             (SELECT id FROM observations WHERE team_id = $1 AND user_id = $2)",
        )
        .bind(team_id)
        .bind(user_id)
        .execute(&mut *$tx)
        .await?;
        let mut deleted = [0u64; 5];
        for (n, sql) in deleted.iter_mut().zip([
            "DELETE FROM observations WHERE team_id = $1 AND user_id = $2",
            "DELETE FROM prompts WHERE team_id = $1 AND user_id = $2",
            "DELETE FROM reflections WHERE team_id = $1 AND user_id = $2",
            "DELETE FROM deal_mutes WHERE team_id = $1 AND user_id = $2",
            "DELETE FROM corrections WHERE team_id = $1 AND user_id = $2",
        ]) {
            *n = sqlx::query(sql)
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
        }
        let [observations, prompts, reflections, deal_mutes, corrections] = deleted;
        $crate::store::lifecycle::ForgetCounts {
            observations,
            prompts,
            reflections,
            deal_mutes,
            corrections,
            ..Default::default()
        }
    }};
}
pub(crate) use delete_person_rows;

/// Deletes up to `$batch` rows of `$table` older than `$before` (column `$time`) for one
/// team; evaluates to the number deleted. `$extra` narrows the rows further (e.g. only
/// finished outbox rows). The sub-select keeps each statement bounded on both backends.
macro_rules! purge_batch {
    ($pool:ident, $table:literal, $time:literal, $extra:literal, $team:expr, $before:expr, $batch:expr) => {
        sqlx::query(concat!(
            "DELETE FROM ",
            $table,
            " WHERE id IN (SELECT id FROM ",
            $table,
            " WHERE team_id = $1 AND ",
            $time,
            " < $2 ",
            $extra,
            " ORDER BY ",
            $time,
            " LIMIT $3)"
        ))
        .bind($team)
        .bind($before)
        .bind($batch)
        .execute($pool)
        .await
        .map(|r| r.rows_affected())
    };
}

impl Store {
    /// `/cusp forget me`: deletes everything cusp holds about one person of a team, in one
    /// transaction, WITHOUT opting them out (their later deal updates are read again).
    /// Settings they changed keep working but no longer name them.
    pub async fn forget_person(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<ForgetCounts, StoreError> {
        let counts = in_transaction!(self, |tx| {
            let mut counts = delete_person_rows!(tx, team_id, user_id);
            for sql in [
                "DELETE FROM user_prefs WHERE team_id = $1 AND user_id = $2",
                "DELETE FROM digest_preferences WHERE team_id = $1 AND user_id = $2",
            ] {
                counts.preferences += sqlx::query(sql)
                    .bind(team_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            for sql in [
                "UPDATE channel_settings SET changed_by = $3 WHERE team_id = $1 AND changed_by = $2",
                "UPDATE digest_settings SET updated_by = $3 WHERE team_id = $1 AND updated_by = $2",
            ] {
                counts.anonymised_settings += sqlx::query(sql)
                    .bind(team_id)
                    .bind(user_id)
                    .bind(FORGOTTEN)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            counts
        });
        Ok(counts)
    }

    /// Deletes one team's rows created before `before_ms`: observations (with their
    /// themes), prompts, reflections, finished outbox rows, handled inbox rows and CRM
    /// delivery keys. Works in batches of `batch` rows per statement so that a large
    /// backlog never holds a long write lock; returns what it deleted.
    pub async fn purge_older_than(
        &self,
        team_id: &str,
        before_ms: i64,
        batch: i64,
    ) -> Result<PurgeCounts, StoreError> {
        let mut counts = PurgeCounts::default();
        loop {
            let round = self.purge_round(team_id, before_ms, batch).await?;
            let done = [
                round.observations,
                round.prompts,
                round.reflections,
                round.corrections,
                round.outbox,
                round.inbox,
                round.crm_deliveries,
            ]
            .iter()
            .all(|&n| n < u64::try_from(batch).unwrap_or(u64::MAX));
            counts.observations += round.observations;
            counts.prompts += round.prompts;
            counts.reflections += round.reflections;
            counts.corrections += round.corrections;
            counts.outbox += round.outbox;
            counts.inbox += round.inbox;
            counts.crm_deliveries += round.crm_deliveries;
            if done {
                return Ok(counts);
            }
            // Let other writers in between batches (SQLite has one writer at a time).
            tokio::task::yield_now().await;
        }
    }

    async fn purge_round(
        &self,
        team_id: &str,
        before_ms: i64,
        batch: i64,
    ) -> Result<PurgeCounts, StoreError> {
        // Themes go with their observation (ON DELETE CASCADE on both backends).
        let observations = with_pool!(self, |pool| purge_batch!(
            pool,
            "observations",
            "created_at",
            "",
            team_id,
            before_ms,
            batch
        ))?;
        let reflections = with_pool!(self, |pool| purge_batch!(
            pool,
            "reflections",
            "created_at",
            "",
            team_id,
            before_ms,
            batch
        ))?;
        let corrections = with_pool!(self, |pool| purge_batch!(
            pool,
            "corrections",
            "created_at",
            "",
            team_id,
            before_ms,
            batch
        ))?;
        let prompts = with_pool!(self, |pool| purge_batch!(
            pool,
            "prompts",
            "created_at",
            "",
            team_id,
            before_ms,
            batch
        ))?;
        // Pending deliveries are never purged: only what was sent or given up.
        let outbox = with_pool!(self, |pool| purge_batch!(
            pool,
            "outbox",
            "created_at",
            "AND status IN ('sent', 'dead')",
            team_id,
            before_ms,
            batch
        ))?;
        let inbox = with_pool!(self, |pool| purge_batch!(
            pool,
            "inbox",
            "received_at",
            "AND status IN ('done', 'failed')",
            team_id,
            before_ms,
            batch
        ))?;
        // Keyed by (team_id, delivery_key), so the batch is chosen by key.
        const CRM: &str = "DELETE FROM crm_deliveries WHERE team_id = $1 AND delivery_key IN \
             (SELECT delivery_key FROM crm_deliveries WHERE team_id = $1 AND received_at < $2 \
             ORDER BY received_at LIMIT $3)";
        let crm_deliveries = with_pool!(self, |pool| sqlx::query(CRM)
            .bind(team_id)
            .bind(before_ms)
            .bind(batch)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(PurgeCounts {
            observations,
            prompts,
            reflections,
            corrections,
            outbox,
            inbox,
            crm_deliveries,
        })
    }

    /// Every team id the database holds anything for (observations, settings, digest
    /// settings, prompts, inbox, corrections), sorted. For the CLI's "unknown team" message: an operator-wide
    /// listing, the one kind of query that is not scoped by team.
    pub async fn known_teams(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT team_id FROM observations \
             UNION SELECT team_id FROM team_settings \
             UNION SELECT team_id FROM digest_settings \
             UNION SELECT team_id FROM prompts \
             UNION SELECT team_id FROM inbox \
             UNION SELECT team_id FROM corrections \
             ORDER BY team_id";
        let teams = with_pool!(self, |pool| sqlx::query_scalar(SQL).fetch_all(pool).await)?;
        Ok(teams)
    }

    /// Whether `team_id` appears anywhere in the database (see [`Store::known_teams`]).
    pub async fn team_is_known(&self, team_id: &str) -> Result<bool, StoreError> {
        Ok(self.known_teams().await?.iter().any(|t| t == team_id))
    }
}
