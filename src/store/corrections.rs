//! "Not quite right": people's corrections of how cusp read a message. Themes only, plus
//! the message text when — and only when — the person chose to include it.

use super::db::sql;
use super::{ExportFilter, Store, StoreError};

/// How cusp read a message, or how a person says it should have been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingLabels {
    pub deal_update: bool,
    /// Theme ids, in taxonomy order.
    pub themes: Vec<String>,
}

/// A correction about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCorrection {
    pub prompt_id: i64,
    pub user_id: String,
    pub engine: ReadingLabels,
    pub corrected: ReadingLabels,
    /// Derived from `corrected.themes` by the BRIEF rule.
    pub class: String,
    /// The text the person chose to share; `None` keeps no words at all.
    pub text: Option<String>,
}

/// A stored correction, as `cusp export --corrections` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionRow {
    pub id: i64,
    pub team_id: String,
    pub engine: ReadingLabels,
    pub corrected: ReadingLabels,
    pub class: String,
    pub text: Option<String>,
    pub created_at_ms: i64,
}

type RawRow = (
    i64,
    String,
    i64,
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
);

fn split_ids(ids: &str) -> Vec<String> {
    ids.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Store {
    /// Stores a correction of one prompt's reading. One correction per prompt: submitting
    /// again (a Slack retry, or the person changing their mind) updates it. Returns `true`
    /// when the correction is new.
    pub async fn record_correction(
        &self,
        team_id: &str,
        c: &NewCorrection,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const INSERT: &str = "INSERT INTO corrections (team_id, prompt_id, user_id, engine_deal_update, \
             engine_themes, deal_update, themes, class, text, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (team_id, prompt_id) DO NOTHING RETURNING id";
        // Only the prompt's person may correct it, so the update is scoped to them too.
        const UPDATE: &str = "UPDATE corrections SET deal_update = $4, themes = $5, class = $6, \
             text = $7, updated_at = $8 WHERE team_id = $1 AND prompt_id = $2 AND user_id = $3";
        let mut tx = self.begin().await?;
        let id: Option<i64> = sql(INSERT)
            .bind(team_id)
            .bind(c.prompt_id)
            .bind(&c.user_id)
            .bind(c.engine.deal_update)
            .bind(c.engine.themes.join(","))
            .bind(c.corrected.deal_update)
            .bind(c.corrected.themes.join(","))
            .bind(&c.class)
            .bind(&c.text)
            .bind(now_ms)
            .scalar_optional(&mut tx)
            .await?;
        if id.is_none() {
            sql(UPDATE)
                .bind(team_id)
                .bind(c.prompt_id)
                .bind(&c.user_id)
                .bind(c.corrected.deal_update)
                .bind(c.corrected.themes.join(","))
                .bind(&c.class)
                .bind(&c.text)
                .bind(now_ms)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        let fresh = id.is_some();
        Ok(fresh)
    }

    /// Corrections made in `[since, until)` (the digest's feedback line).
    pub async fn count_corrections(
        &self,
        team_id: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM corrections WHERE team_id = $1 \
             AND created_at >= $2 AND created_at < $3";
        let n = sql(SQL)
            .bind(team_id)
            .bind(since_ms)
            .bind(until_ms)
            .scalar(self)
            .await?;
        Ok(n)
    }

    /// Teams that have corrections, sorted (`cusp export --corrections` without `--team`).
    pub async fn corrected_teams(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT DISTINCT team_id FROM corrections ORDER BY team_id";
        let teams = sql(SQL).scalars(self).await?;
        Ok(teams)
    }

    /// One team's corrections in the filter's window, oldest first.
    pub async fn corrections(
        &self,
        team_id: &str,
        filter: &ExportFilter,
    ) -> Result<Vec<CorrectionRow>, StoreError> {
        const SQL: &str = "SELECT id, team_id, engine_deal_update, engine_themes, deal_update, themes, \
             class, text, created_at FROM corrections WHERE team_id = $1 \
             AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id";
        let rows: Vec<RawRow> = sql(SQL)
            .bind(team_id)
            .bind(filter.since_ms.unwrap_or(i64::MIN))
            .bind(filter.until_ms.unwrap_or(i64::MAX))
            .fetch_all(self)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, team_id, e_deal, e_themes, deal, themes, class, text, created_at_ms)| {
                    CorrectionRow {
                        id,
                        team_id,
                        engine: ReadingLabels {
                            deal_update: e_deal != 0,
                            themes: split_ids(&e_themes),
                        },
                        corrected: ReadingLabels {
                            deal_update: deal != 0,
                            themes: split_ids(&themes),
                        },
                        class,
                        text,
                        created_at_ms,
                    }
                },
            )
            .collect())
    }
}
