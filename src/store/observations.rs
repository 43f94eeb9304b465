//! Observations: the themes, class and score of an analysed message, never its text
//! unless text retention is on.

use super::db::{Tx, Values, sql, values};
use super::{Store, StoreError};
use crate::engine::{Class, Theme};

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationSource {
    Message,
    Command,
    Mention,
    Crm,
}

impl ObservationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ObservationSource::Message => "message",
            ObservationSource::Command => "command",
            ObservationSource::Mention => "mention",
            ObservationSource::Crm => "crm",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewObservation {
    pub channel_id: String,
    pub user_id: String,
    pub message_ts: Option<String>,
    pub source: ObservationSource,
    pub class: Class,
    pub score: f64,
    pub account: Option<String>,
    pub themes: Vec<Theme>,
    /// Unique per team: the same message is never observed twice.
    pub dedupe_key: String,
    /// Only `Some` when the team turned text retention on.
    pub text: Option<String>,
}

/// Which observations `cusp export` streams. Times are Unix milliseconds; `until` is exclusive.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub team_id: String,
    pub channel_id: String,
    pub user_id: String,
    pub ts: Option<String>,
    pub source: String,
    pub class: String,
    pub score: f64,
    pub themes: Vec<String>,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct JoinedRow {
    id: i64,
    team_id: String,
    channel_id: String,
    user_id: String,
    message_ts: Option<String>,
    source: String,
    class: String,
    score: f64,
    created_at: i64,
    theme: Option<String>,
}

/// Inserts an observation and its themes inside the open transaction `tx`; returns its
/// id, or `None` when the `dedupe_key` was already used (then nothing is inserted).
pub(super) async fn insert_observation(
    tx: &mut Tx,
    team_id: &str,
    obs: &NewObservation,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    const SQL: &str = "INSERT INTO observations (team_id, channel_id, user_id, message_ts, source, \
         class, score, account, dedupe_key, text, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (team_id, dedupe_key) DO NOTHING RETURNING id";
    let id: Option<i64> = sql(SQL)
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
        .bind(now_ms)
        .scalar_optional(&mut *tx)
        .await?;
    if let Some(id) = id {
        let mut themes = theme_rows();
        for theme in &obs.themes {
            themes.row(vec![
                id.into(),
                team_id.into(),
                theme.id().into(),
                now_ms.into(),
            ]);
        }
        themes.execute(&mut *tx).await?;
    }
    Ok(id)
}

/// A multi-row insert of `observation_themes` rows `(observation_id, team_id, theme,
/// created_at)`; a theme already recorded is skipped.
pub(super) fn theme_rows() -> Values<'static> {
    values(
        "INSERT INTO observation_themes (observation_id, team_id, theme, created_at)",
        "ON CONFLICT DO NOTHING",
    )
}

impl Store {
    /// Teams that have observations (export without `--team` walks them one by one,
    /// so every query stays scoped by team).
    pub async fn observed_teams(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT DISTINCT team_id FROM observations ORDER BY team_id";
        Ok(sql(SQL).scalars(self).await?)
    }

    /// The account of the observation stored under `dedupe_key`: `None` when there is no
    /// such observation, `Some(None)` when it named no account.
    pub async fn observed_account(
        &self,
        team_id: &str,
        dedupe_key: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        const SQL: &str = "SELECT account FROM observations WHERE team_id = $1 AND dedupe_key = $2";
        Ok(sql(SQL)
            .bind(team_id)
            .bind(dedupe_key)
            .scalar_optional(self)
            .await?)
    }

    pub async fn count_observations(&self, team_id: &str) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM observations WHERE team_id = $1";
        Ok(sql(SQL).bind(team_id).scalar(self).await?)
    }

    /// Streams a team's observations with their themes, oldest first, calling `sink` once
    /// per observation. Rows are read as a stream and grouped on the fly, so memory stays
    /// constant however many rows there are.
    pub async fn for_each_observation<E>(
        &self,
        team_id: &str,
        filter: &ExportFilter,
        sink: &mut dyn FnMut(ExportRow) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        const SQL: &str = "SELECT o.id, o.team_id, o.channel_id, o.user_id, o.message_ts, o.source, \
             o.class, o.score, o.created_at, t.theme \
             FROM observations o \
             LEFT JOIN observation_themes t ON t.observation_id = o.id AND t.team_id = o.team_id \
             WHERE o.team_id = $1 AND o.created_at >= $2 AND o.created_at < $3 \
             ORDER BY o.id, t.theme";
        let since = filter.since_ms.unwrap_or(i64::MIN);
        let until = filter.until_ms.unwrap_or(i64::MAX);
        let mut current: Option<(i64, ExportRow)> = None;
        sql(SQL)
            .bind(team_id)
            .bind(since)
            .bind(until)
            .for_each(self, |row: JoinedRow| -> Result<(), E> {
                match &mut current {
                    Some((id, export)) if *id == row.id => export.themes.extend(row.theme),
                    _ => {
                        if let Some((_, done)) = current.take() {
                            sink(done)?;
                        }
                        current = Some((
                            row.id,
                            ExportRow {
                                team_id: row.team_id,
                                channel_id: row.channel_id,
                                user_id: row.user_id,
                                ts: row.message_ts,
                                source: row.source,
                                class: row.class,
                                score: row.score,
                                themes: row.theme.into_iter().collect(),
                                created_at_ms: row.created_at,
                            },
                        ));
                    }
                }
                Ok(())
            })
            .await?;
        if let Some((_, done)) = current {
            sink(done)?;
        }
        Ok(())
    }
}
