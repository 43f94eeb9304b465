//! Nudge settings and history: team settings, personal preferences, channel switches,
//! prompts sent (for cooldowns, question history and feedback), deal mutes, reflections
//! and CRM delivery dedupe.

use std::sync::Arc;

use super::db::{Tx, sql};
use super::{Store, StoreError};

/// `muted_until` value that means "until unmuted".
pub const MUTED_FOREVER: i64 = i64::MAX;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamSettings {
    /// Emoji name (without colons) for the quiet reaction.
    pub reaction: String,
    pub account_cooldown_hours: i64,
    pub daily_nudge_limit: i64,
}

impl Default for TeamSettings {
    fn default() -> TeamSettings {
        TeamSettings {
            reaction: "seedling".into(),
            account_cooldown_hours: 24,
            daily_nudge_limit: 3,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPrefs {
    pub muted_until: Option<i64>,
    pub opted_out: bool,
}

impl UserPrefs {
    pub fn is_muted(&self, now_ms: i64) -> bool {
        self.muted_until.is_some_and(|until| until > now_ms)
    }
}

/// A nudge (or mention reply, or CRM prompt) about to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPrompt {
    pub channel_id: String,
    /// Unique per team: one prompt per thread (or per mention, per CRM delivery).
    pub thread_key: String,
    pub user_id: String,
    pub account: Option<String>,
    pub kind: &'static str,
    pub question_ids: Vec<String>,
    pub stage: Option<String>,
    /// For a nudge: the limits it must still be within when it is stored.
    pub limits: Option<NudgeLimits>,
}

/// A person's nudge limits, checked again in the transaction that stores the nudge, with
/// that person's turn held (`Backend::turn_lock`): the decision in `bot::nudge` read the
/// history earlier, and another worker or replica may have nudged them since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NudgeLimits {
    /// Nudges per person in any 24 hours.
    pub daily: i64,
    /// How long after a nudge about an account the same person gets none about it.
    pub account_cooldown_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Prompt {
    pub id: i64,
    pub channel_id: String,
    pub thread_key: String,
    pub user_id: String,
    pub account: Option<String>,
    pub kind: String,
    pub question_ids: String,
    pub created_at: i64,
}

/// What decides whether a person may be nudged about a deal now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NudgeHistory {
    pub nudges_last_day: i64,
    pub account_nudges_in_cooldown: i64,
    pub thread_already_prompted: bool,
    pub deal_muted: bool,
    pub channel_off: bool,
}

/// What handling a person's channel message reads before deciding anything, in one
/// statement ([`Store::message_context`]): one round trip instead of four.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageContext {
    pub prefs: UserPrefs,
    pub settings: TeamSettings,
    /// Nudges are switched off in the message's channel.
    pub channel_off: bool,
    /// The account of the thread root's observation, when a root was asked about: `None`
    /// when the root was not observed, `Some(None)` when it named no account.
    pub root_account: Option<Option<String>>,
}

/// Whom and what a nudge would be about.
#[derive(Debug, Clone, Copy)]
pub struct NudgeSubject<'a> {
    pub user_id: &'a str,
    pub channel_id: &'a str,
    pub account: Option<&'a str>,
    pub thread_key: &'a str,
    pub account_cooldown_ms: i64,
}

/// Inserts a prompt inside the open transaction `tx`; `true` when it was stored, `false`
/// when its thread already had one or a nudge's limits no longer allow it.
pub(super) async fn insert_prompt(
    tx: &mut Tx,
    team_id: &str,
    prompt: &NewPrompt,
    now_ms: i64,
) -> Result<bool, StoreError> {
    if let Some(limits) = prompt.limits {
        if !within_limits(tx, team_id, prompt, limits, now_ms).await? {
            tracing::info!("nudge held back at commit: this person was nudged meanwhile");
            return Ok(false);
        }
    }
    const SQL: &str = "INSERT INTO prompts (team_id, channel_id, thread_key, user_id, account, kind, \
         question_ids, stage, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (team_id, thread_key) DO NOTHING RETURNING id";
    let id: Option<i64> = sql(SQL)
        .bind(team_id)
        .bind(&prompt.channel_id)
        .bind(&prompt.thread_key)
        .bind(&prompt.user_id)
        .bind(&prompt.account)
        .bind(prompt.kind)
        .bind(prompt.question_ids.join(","))
        .bind(&prompt.stage)
        .bind(now_ms)
        .scalar_optional(&mut *tx)
        .await?;
    Ok(id.is_some())
}

/// Whether the person of `prompt` may still get this nudge, counted inside `tx` once
/// their turn is held, so the count includes every nudge committed before it and none can
/// be committed meanwhile: two replicas cannot both take the last slot of the day.
async fn within_limits(
    tx: &mut Tx,
    team_id: &str,
    prompt: &NewPrompt,
    limits: NudgeLimits,
    now_ms: i64,
) -> Result<bool, StoreError> {
    if let Some(lock) = tx.backend().turn_lock() {
        sql(lock)
            .bind(format!("nudge:{team_id}:{}", prompt.user_id))
            .execute(&mut *tx)
            .await?;
    }
    const SQL: &str = "SELECT \
         (SELECT COUNT(*) FROM prompts WHERE team_id = $1 AND user_id = $2 AND kind = 'nudge' AND created_at > $3), \
         (SELECT COUNT(*) FROM prompts WHERE team_id = $1 AND user_id = $2 AND kind = 'nudge' AND account = $4 AND created_at > $5)";
    let (last_day, same_account): (i64, i64) = sql(SQL)
        .bind(team_id)
        .bind(&prompt.user_id)
        .bind(now_ms - DAY_MS)
        .bind(&prompt.account)
        .bind(now_ms.saturating_sub(limits.account_cooldown_ms))
        .fetch_one(&mut *tx)
        .await?;
    Ok(last_day < limits.daily && same_account == 0)
}

impl Store {
    pub async fn team_settings(&self, team_id: &str) -> Result<TeamSettings, StoreError> {
        const SQL: &str = "SELECT reaction, account_cooldown_hours, daily_nudge_limit FROM team_settings WHERE team_id = $1";
        let row: Option<TeamSettings> = sql(SQL).bind(team_id).fetch_optional(self).await?;
        Ok(row.unwrap_or_default())
    }

    pub async fn set_team_settings(
        &self,
        team_id: &str,
        settings: &TeamSettings,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO team_settings (team_id, reaction, account_cooldown_hours, daily_nudge_limit, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (team_id) DO UPDATE SET reaction = excluded.reaction, \
             account_cooldown_hours = excluded.account_cooldown_hours, daily_nudge_limit = excluded.daily_nudge_limit, \
             updated_at = excluded.updated_at";
        sql(SQL)
            .bind(team_id)
            .bind(&settings.reaction)
            .bind(settings.account_cooldown_hours)
            .bind(settings.daily_nudge_limit)
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    pub async fn user_prefs(&self, team_id: &str, user_id: &str) -> Result<UserPrefs, StoreError> {
        const SQL: &str =
            "SELECT muted_until, opted_out FROM user_prefs WHERE team_id = $1 AND user_id = $2";
        let row: Option<(Option<i64>, i64)> = sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .fetch_optional(self)
            .await?;
        Ok(row
            .map(|(muted_until, opted_out)| UserPrefs {
                muted_until,
                opted_out: opted_out != 0,
            })
            .unwrap_or_default())
    }

    /// `until_ms`: `None` unmutes, `Some(MUTED_FOREVER)` mutes until unmuted.
    pub async fn set_muted_until(
        &self,
        team_id: &str,
        user_id: &str,
        until_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO user_prefs (team_id, user_id, muted_until, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (team_id, user_id) DO UPDATE SET muted_until = excluded.muted_until, updated_at = excluded.updated_at";
        sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(until_ms)
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    /// Opts a person out and deletes everything stored about them, in one transaction.
    /// Returns how many observations were deleted.
    pub async fn opt_out_and_forget(
        &self,
        team_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        const OPT_OUT: &str = "INSERT INTO user_prefs (team_id, user_id, opted_out, updated_at) \
             VALUES ($1, $2, 1, $3) \
             ON CONFLICT (team_id, user_id) DO UPDATE SET opted_out = 1, updated_at = excluded.updated_at";
        let mut tx = self.begin().await?;
        sql(OPT_OUT)
            .bind(team_id)
            .bind(user_id)
            .bind(now_ms)
            .execute(&mut tx)
            .await?;
        let deleted = super::lifecycle::delete_person_rows(&mut tx, team_id, user_id)
            .await?
            .observations;
        tx.commit().await?;
        self.questions.forget_user(team_id, user_id);
        Ok(deleted)
    }

    pub async fn opt_in(
        &self,
        team_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO user_prefs (team_id, user_id, opted_out, updated_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (team_id, user_id) DO UPDATE SET opted_out = 0, updated_at = excluded.updated_at";
        sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    pub async fn set_channel_nudges_off(
        &self,
        team_id: &str,
        channel_id: &str,
        off: bool,
        changed_by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO channel_settings (team_id, channel_id, nudges_off, changed_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (team_id, channel_id) DO UPDATE SET \
             nudges_off = excluded.nudges_off, changed_by = excluded.changed_by, updated_at = excluded.updated_at";
        sql(SQL)
            .bind(team_id)
            .bind(channel_id)
            .bind(off)
            .bind(changed_by)
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    /// A person's preferences, the team's settings, the channel's switch and (with
    /// `root_key`) the account of the thread root's observation, in ONE statement: read
    /// afresh for every message (nothing cached), so an opt-out or a mute committed
    /// before the message is handled always counts.
    pub async fn message_context(
        &self,
        team_id: &str,
        user_id: &str,
        channel_id: &str,
        root_key: Option<&str>,
    ) -> Result<MessageContext, StoreError> {
        const SQL: &str = "SELECT \
             (SELECT muted_until FROM user_prefs WHERE team_id = $1 AND user_id = $2), \
             (SELECT opted_out FROM user_prefs WHERE team_id = $1 AND user_id = $2), \
             (SELECT reaction FROM team_settings WHERE team_id = $1), \
             (SELECT account_cooldown_hours FROM team_settings WHERE team_id = $1), \
             (SELECT daily_nudge_limit FROM team_settings WHERE team_id = $1), \
             (SELECT COUNT(*) FROM channel_settings WHERE team_id = $1 AND channel_id = $3 AND nudges_off = 1), \
             (SELECT COUNT(*) FROM observations WHERE team_id = $1 AND dedupe_key = $4), \
             (SELECT account FROM observations WHERE team_id = $1 AND dedupe_key = $4)";
        type Row = (
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            i64,
            i64,
            Option<String>,
        );
        let row: Row = sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(channel_id)
            .bind(root_key)
            .fetch_one(self)
            .await?;
        let (muted_until, opted_out, reaction, cooldown, daily, channel_off, roots, account) = row;
        let defaults = TeamSettings::default();
        Ok(MessageContext {
            prefs: UserPrefs {
                muted_until,
                opted_out: opted_out.unwrap_or(0) != 0,
            },
            // A team that never saved settings has no row: the defaults, as `team_settings`.
            settings: match (reaction, cooldown, daily) {
                (Some(reaction), Some(account_cooldown_hours), Some(daily_nudge_limit)) => {
                    TeamSettings {
                        reaction,
                        account_cooldown_hours,
                        daily_nudge_limit,
                    }
                }
                _ => defaults,
            },
            channel_off: channel_off > 0,
            root_account: (roots > 0).then_some(account),
        })
    }

    /// Everything the nudge decision needs, for one person, deal and thread.
    pub async fn nudge_history(
        &self,
        team_id: &str,
        about: &NudgeSubject<'_>,
        now_ms: i64,
    ) -> Result<NudgeHistory, StoreError> {
        let NudgeSubject {
            user_id,
            channel_id,
            account,
            thread_key,
            account_cooldown_ms,
        } = *about;
        const SQL: &str = "SELECT \
             (SELECT COUNT(*) FROM prompts WHERE team_id = $1 AND user_id = $2 AND kind = 'nudge' AND created_at > $3), \
             (SELECT COUNT(*) FROM prompts WHERE team_id = $1 AND user_id = $2 AND kind = 'nudge' AND account = $4 AND created_at > $5), \
             (SELECT COUNT(*) FROM prompts WHERE team_id = $1 AND thread_key = $6), \
             (SELECT COUNT(*) FROM deal_mutes WHERE team_id = $1 AND user_id = $2 AND deal_key IN ($4, $6) AND until_at > $7), \
             (SELECT COUNT(*) FROM channel_settings WHERE team_id = $1 AND channel_id = $8 AND nudges_off = 1)";
        let account = account.map(str::to_lowercase);
        let row: (i64, i64, i64, i64, i64) = sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(now_ms - DAY_MS)
            .bind(account.as_deref())
            .bind(now_ms - account_cooldown_ms)
            .bind(thread_key)
            .bind(now_ms)
            .bind(channel_id)
            .fetch_one(self)
            .await?;
        Ok(NudgeHistory {
            nudges_last_day: row.0,
            account_nudges_in_cooldown: row.1,
            thread_already_prompted: row.2 > 0,
            deal_muted: row.3 > 0,
            channel_off: row.4 > 0,
        })
    }

    /// The question ids a person was asked most recently, newest first.
    pub async fn recent_question_ids(
        &self,
        team_id: &str,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT question_ids FROM prompts WHERE team_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3";
        let rows: Vec<String> = sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(limit as i64)
            .scalars(self)
            .await?;
        Ok(rows
            .iter()
            .flat_map(|ids| {
                ids.split(',')
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
            })
            .take(limit)
            .collect())
    }

    /// [`Store::recent_question_ids`] and [`Store::unhelpful_question_ids`] for question
    /// selection, served from a short-lived cache that this process's writes go through
    /// (`question_cache.rs` says what it may cost).
    pub async fn question_history(
        &self,
        team_id: &str,
        user_id: &str,
        limit: usize,
    ) -> Result<(Arc<Vec<String>>, Arc<Vec<String>>), StoreError> {
        let recent = match self.questions.recent(team_id, user_id) {
            Some(ids) => ids,
            None => {
                let ids = Arc::new(self.recent_question_ids(team_id, user_id, limit).await?);
                self.questions.put_recent(team_id, user_id, ids.clone());
                ids
            }
        };
        let unhelpful = match self.questions.unhelpful(team_id) {
            Some(ids) => ids,
            None => {
                let ids = Arc::new(self.unhelpful_question_ids(team_id).await?);
                self.questions.put_unhelpful(team_id, ids.clone());
                ids
            }
        };
        Ok((recent, unhelpful))
    }

    /// After a committed write of a prompt for `user_id`: their history changed.
    pub(super) fn prompt_written(&self, team_id: &str, user_id: &str) {
        self.questions.forget_user(team_id, user_id);
    }

    /// Question ids the team marked "Not now" more often than "Helpful": asked less.
    pub async fn unhelpful_question_ids(&self, team_id: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT question_ids, feedback FROM prompts WHERE team_id = $1 AND feedback IS NOT NULL \
             ORDER BY feedback_at DESC LIMIT 500";
        let rows: Vec<(String, String)> = sql(SQL).bind(team_id).fetch_all(self).await?;
        let mut score: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        for (ids, feedback) in rows {
            let delta = if feedback == "helpful" { -1 } else { 1 };
            for id in ids.split(',').filter(|id| !id.is_empty()) {
                *score.entry(id.to_owned()).or_default() += delta;
            }
        }
        Ok(score
            .into_iter()
            .filter(|(_, s)| *s > 0)
            .map(|(id, _)| id)
            .collect())
    }

    pub async fn prompt_by_thread_key(
        &self,
        team_id: &str,
        thread_key: &str,
    ) -> Result<Prompt, StoreError> {
        const SQL: &str = "SELECT id, channel_id, thread_key, user_id, account, kind, question_ids, created_at \
             FROM prompts WHERE team_id = $1 AND thread_key = $2";
        let row: Option<Prompt> = sql(SQL)
            .bind(team_id)
            .bind(thread_key)
            .fetch_optional(self)
            .await?;
        row.ok_or(StoreError::NotFound)
    }

    pub async fn record_feedback(
        &self,
        team_id: &str,
        prompt_id: i64,
        feedback: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE prompts SET feedback = $3, feedback_at = $4 WHERE team_id = $1 AND id = $2";
        sql(SQL)
            .bind(team_id)
            .bind(prompt_id)
            .bind(feedback)
            .bind(now_ms)
            .execute(self)
            .await?;
        self.questions.forget_team(team_id);
        Ok(())
    }

    pub async fn mute_deal(
        &self,
        team_id: &str,
        user_id: &str,
        deal_key: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO deal_mutes (team_id, user_id, deal_key, until_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (team_id, user_id, deal_key) DO UPDATE SET until_at = excluded.until_at";
        sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(deal_key)
            .bind(until_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    /// Whether `user_id` muted `deal_key` ("Mute this deal for a week") and the mute
    /// still runs at `now_ms`. Deal keys are lower-cased accounts (or a thread key).
    pub async fn deal_muted(
        &self,
        team_id: &str,
        user_id: &str,
        deal_key: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM deal_mutes WHERE team_id = $1 AND user_id = $2 \
             AND deal_key = $3 AND until_at > $4";
        let n: i64 = sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .bind(deal_key)
            .bind(now_ms)
            .scalar(self)
            .await?;
        Ok(n > 0)
    }

    /// Saves a reflection with no modal behind it (seeding, imports): nothing dedupes it.
    pub async fn save_reflection(
        &self,
        team_id: &str,
        prompt_id: i64,
        user_id: &str,
        answers: &serde_json::Value,
        shared: bool,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO reflections (team_id, prompt_id, user_id, answers, shared, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
        let id = sql(SQL)
            .bind(team_id)
            .bind(prompt_id)
            .bind(user_id)
            .bind(answers.to_string())
            .bind(shared)
            .bind(now_ms)
            .scalar(self)
            .await?;
        Ok(id)
    }

    /// Saves the reflection submitted from the modal `view_id`, unless that modal's was
    /// saved already (a retried or replayed submission): `true` when stored now.
    pub async fn save_reflection_once(
        &self,
        team_id: &str,
        view_id: &str,
        reflection: &NewReflection<'_>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO reflections (team_id, prompt_id, user_id, answers, shared, created_at, view_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (team_id, view_id) DO NOTHING";
        let stored = sql(SQL)
            .bind(team_id)
            .bind(reflection.prompt_id)
            .bind(reflection.user_id)
            .bind(reflection.answers.to_string())
            .bind(reflection.shared)
            .bind(now_ms)
            .bind(view_id)
            .execute(self)
            .await?;
        Ok(stored > 0)
    }

    /// A person's own reflections (answers JSON, shared flag), newest first.
    pub async fn reflections_of(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        const SQL: &str = "SELECT answers, shared FROM reflections WHERE team_id = $1 AND user_id = $2 ORDER BY id DESC";
        let rows: Vec<(String, i64)> = sql(SQL).bind(team_id).bind(user_id).fetch_all(self).await?;
        Ok(rows.into_iter().map(|(a, s)| (a, s != 0)).collect())
    }

    /// `true` the first time a CRM delivery key is seen.
    pub async fn claim_crm_delivery(
        &self,
        team_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO crm_deliveries (team_id, delivery_key, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (team_id, delivery_key) DO NOTHING";
        let n = sql(SQL)
            .bind(team_id)
            .bind(key)
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(n == 1)
    }

    /// Forgets a CRM delivery key (its processing failed, so a redelivery must be accepted).
    pub async fn release_crm_delivery(&self, team_id: &str, key: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM crm_deliveries WHERE team_id = $1 AND delivery_key = $2";
        sql(SQL).bind(team_id).bind(key).execute(self).await?;
        Ok(())
    }
}

/// A person's answers to a prompt's questions.
#[derive(Debug, Clone, Copy)]
pub struct NewReflection<'a> {
    pub prompt_id: i64,
    pub user_id: &'a str,
    pub answers: &'a serde_json::Value,
    /// Shared with the team digest.
    pub shared: bool,
}
