//! Data lifecycle: what a person can have forgotten (`/cusp forget me`, opt-out), the
//! retention purge (`CUSP_RETENTION_DAYS`), and which teams a database holds (so the
//! CLI can refuse an unknown `--team` instead of printing an empty result).

use super::db::{Tx, sql};
use super::{Store, StoreError};

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
/// and deal mutes inside the open transaction `tx`; returns `ForgetCounts` with those five
/// filled in. Shared by opt-out and `/cusp forget me`.
pub(super) async fn delete_person_rows(
    tx: &mut Tx,
    team_id: &str,
    user_id: &str,
) -> Result<ForgetCounts, StoreError> {
    const THEMES: &str = "DELETE FROM observation_themes WHERE team_id = $1 AND observation_id IN \
         (SELECT id FROM observations WHERE team_id = $1 AND user_id = $2)";
    sql(THEMES)
        .bind(team_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let mut deleted = [0u64; 5];
    for (n, statement) in deleted.iter_mut().zip([
        "DELETE FROM observations WHERE team_id = $1 AND user_id = $2",
        "DELETE FROM prompts WHERE team_id = $1 AND user_id = $2",
        "DELETE FROM reflections WHERE team_id = $1 AND user_id = $2",
        "DELETE FROM deal_mutes WHERE team_id = $1 AND user_id = $2",
        "DELETE FROM corrections WHERE team_id = $1 AND user_id = $2",
    ]) {
        *n = sql(statement)
            .bind(team_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    let [observations, prompts, reflections, deal_mutes, corrections] = deleted;
    Ok(ForgetCounts {
        observations,
        prompts,
        reflections,
        deal_mutes,
        corrections,
        ..Default::default()
    })
}

/// One retention batch per table: `$1` team, `$2` cut-off (ms), `$3` batch size. The
/// sub-select keeps each statement bounded on both backends (neither has `DELETE … LIMIT`
/// everywhere). Themes go with their observation (`ON DELETE CASCADE` on both backends);
/// pending deliveries and unhandled events are never purged.
const PURGE_OBSERVATIONS: &str = "DELETE FROM observations WHERE id IN (SELECT id FROM observations \
     WHERE team_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3)";
const PURGE_REFLECTIONS: &str = "DELETE FROM reflections WHERE id IN (SELECT id FROM reflections \
     WHERE team_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3)";
const PURGE_CORRECTIONS: &str = "DELETE FROM corrections WHERE id IN (SELECT id FROM corrections \
     WHERE team_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3)";
const PURGE_PROMPTS: &str = "DELETE FROM prompts WHERE id IN (SELECT id FROM prompts \
     WHERE team_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3)";
const PURGE_OUTBOX: &str = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
     WHERE team_id = $1 AND created_at < $2 AND status IN ('sent', 'dead') \
     ORDER BY created_at LIMIT $3)";
const PURGE_INBOX: &str = "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox \
     WHERE team_id = $1 AND received_at < $2 AND status IN ('done', 'failed') \
     ORDER BY received_at LIMIT $3)";
/// Keyed by `(team_id, delivery_key)`, so the batch is chosen by key.
const PURGE_CRM_DELIVERIES: &str = "DELETE FROM crm_deliveries WHERE team_id = $1 AND delivery_key IN \
     (SELECT delivery_key FROM crm_deliveries WHERE team_id = $1 AND received_at < $2 \
     ORDER BY received_at LIMIT $3)";

impl Store {
    /// `/cusp forget me`: deletes everything cusp holds about one person of a team, in one
    /// transaction, WITHOUT opting them out (their later deal updates are read again).
    /// Settings they changed keep working but no longer name them.
    pub async fn forget_person(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<ForgetCounts, StoreError> {
        let mut tx = self.begin().await?;
        let mut counts = delete_person_rows(&mut tx, team_id, user_id).await?;
        for statement in [
            "DELETE FROM user_prefs WHERE team_id = $1 AND user_id = $2",
            "DELETE FROM digest_preferences WHERE team_id = $1 AND user_id = $2",
        ] {
            counts.preferences += sql(statement)
                .bind(team_id)
                .bind(user_id)
                .execute(&mut tx)
                .await?;
        }
        for statement in [
            "UPDATE channel_settings SET changed_by = $3 WHERE team_id = $1 AND changed_by = $2",
            "UPDATE digest_settings SET updated_by = $3 WHERE team_id = $1 AND updated_by = $2",
        ] {
            counts.anonymised_settings += sql(statement)
                .bind(team_id)
                .bind(user_id)
                .bind(FORGOTTEN)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        self.prompt_written(team_id, user_id);
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
        let purge = |statement| {
            sql(statement)
                .bind(team_id)
                .bind(before_ms)
                .bind(batch)
                .execute(self)
        };
        Ok(PurgeCounts {
            observations: purge(PURGE_OBSERVATIONS).await?,
            reflections: purge(PURGE_REFLECTIONS).await?,
            corrections: purge(PURGE_CORRECTIONS).await?,
            prompts: purge(PURGE_PROMPTS).await?,
            outbox: purge(PURGE_OUTBOX).await?,
            inbox: purge(PURGE_INBOX).await?,
            crm_deliveries: purge(PURGE_CRM_DELIVERIES).await?,
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
        let teams = sql(SQL).scalars(self).await?;
        Ok(teams)
    }
}
