//! A team's digest schedule and channel, and each person's digest preferences.

use super::super::db::sql;
use super::super::{Store, StoreError};

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

impl Store {
    pub async fn digest_settings(
        &self,
        team_id: &str,
    ) -> Result<Option<DigestSettingsRow>, StoreError> {
        const SQL: &str = "SELECT team_id, channel_id, weekday, minute_of_day, time_zone, enabled, updated_at \
                           FROM digest_settings WHERE team_id = $1";
        let row = sql(SQL).bind(team_id).fetch_optional(self).await?;
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
        sql(SQL)
            .bind(team_id)
            .bind(channel_id)
            .bind(weekday)
            .bind(minute_of_day)
            .bind(time_zone)
            .bind(now_ms)
            .bind(user_id)
            .execute(self)
            .await?;
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
        let done = sql(SQL)
            .bind(team_id)
            .bind(now_ms)
            .bind(user_id)
            .execute(self)
            .await?;
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
        sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(personal_dm.map(i64::from))
            .bind(spotlight.map(i64::from))
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    /// People who asked for their own digest by DM.
    pub async fn digest_subscribers(&self, team_id: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT p.user_id FROM digest_preferences p \
             WHERE p.team_id = $1 AND p.personal_dm = 1 \
               AND NOT EXISTS (SELECT 1 FROM user_prefs u \
                   WHERE u.team_id = p.team_id AND u.user_id = p.user_id AND u.opted_out = 1) \
             ORDER BY p.user_id";
        let users = sql(SQL).bind(team_id).scalars(self).await?;
        Ok(users)
    }
}
