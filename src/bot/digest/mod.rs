//! The weekly digest: gather a week's figures (store), compose them (pure, `compose`),
//! and enqueue the post through the outbox. The scheduler (`jobs::scheduler`), the CLI
//! (`cusp digest …`) and `/cusp digest` all call in here, so there is one code path.

pub mod compose;
pub mod settings;
pub mod week;

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

pub use compose::{
    Digest, Feedback, Mix, PersonalStats, SpotlightItem, WeekStats, compose, compose_personal,
};
pub use week::{Due, IsoWeek, Schedule, WeekError, due_run};

use crate::engine::{Engine, Theme};
use crate::slack::calls::{Message, SlackCall};
use crate::slack::ids::{ChannelId, UserId};
use crate::store::{ClassCounts, DigestSettingsRow, NewOutboxMessage, RunClaim, Store, StoreError};

/// A claimed run is ours for this long; composing takes well under a second.
pub const DIGEST_LEASE: Duration = Duration::from_secs(300);
/// Attempts at one week before the run is marked `failed`.
pub const MAX_RUN_ATTEMPTS: i64 = 5;
/// Spotlight candidates read, so that three different people can be featured.
const SPOTLIGHT_CANDIDATES: i64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Week(#[from] WeekError),
    #[error("stored digest settings are invalid: {0}")]
    BadSettings(String),
    #[error(
        "the digest has no channel yet; choose one in Slack with `/cusp digest setup #channel monday 09:00 Europe/Berlin`"
    )]
    NoChannel,
    #[error("the digest for {0} was already sent; add --force to send it again")]
    AlreadySent(IsoWeek),
    #[error("{0} is not over yet; preview it with `cusp digest preview`, or send a finished week")]
    NotOver(IsoWeek),
    #[error("the digest for {0} is being sent by a running server right now")]
    InProgress(IsoWeek),
    #[error(
        "the digest for {0} was skipped (the server was down for more than a day when it was due); add --force to send it now"
    )]
    WasSkipped(IsoWeek),
    #[error(
        "the digest for {0} failed to compose (see the server's log); add --force to try again"
    )]
    RunFailed(IsoWeek),
}

/// A team's settings in usable form; the defaults (Monday 09:00 UTC, off) when none are saved.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestSettings {
    pub channel_id: Option<String>,
    pub enabled: bool,
    pub schedule: Schedule,
    pub time_zone_name: String,
    /// When the settings were saved (runs scheduled before are not owed).
    pub since: Timestamp,
}

impl DigestSettings {
    pub fn from_row(row: Option<DigestSettingsRow>) -> Result<DigestSettings, DigestError> {
        let Some(row) = row else {
            return Ok(DigestSettings {
                channel_id: None,
                enabled: false,
                schedule: Schedule::default_utc(),
                time_zone_name: "UTC".to_owned(),
                since: Timestamp::UNIX_EPOCH,
            });
        };
        let bad = |what: &str| DigestError::BadSettings(format!("{what} for team {}", row.team_id));
        let weekday = i8::try_from(row.weekday)
            .ok()
            .and_then(|d| Weekday::from_monday_one_offset(d).ok())
            .ok_or_else(|| bad("weekday"))?;
        let minute = u16::try_from(row.minute_of_day)
            .ok()
            .filter(|m| *m < 24 * 60)
            .ok_or_else(|| bad("time"))?;
        let time_zone = TimeZone::get(&row.time_zone).map_err(|_| bad("time zone"))?;
        Ok(DigestSettings {
            channel_id: row.channel_id,
            enabled: row.enabled == 1,
            schedule: Schedule {
                weekday,
                hour: (minute / 60) as i8,
                minute: (minute % 60) as i8,
                time_zone,
            },
            time_zone_name: row.time_zone,
            since: Timestamp::from_millisecond(row.updated_at).unwrap_or(Timestamp::UNIX_EPOCH),
        })
    }
}

pub async fn load_settings(store: &Store, team_id: &str) -> Result<DigestSettings, DigestError> {
    DigestSettings::from_row(store.digest_settings(team_id).await?)
}

/// The seed for the question of the week: stable for a team and week.
pub fn seed(team_id: &str, week: IsoWeek) -> u64 {
    crate::bot::reflect::seed_from(&[team_id, &week.to_string()])
}

/// `digest:{team}:{week}` — a second enqueue of the same week is a no-op.
pub fn idempotency_key(team_id: &str, week: IsoWeek) -> String {
    format!("digest:{team_id}:{week}")
}

fn to_mix(c: ClassCounts) -> Mix {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Mix {
        customer_centric: n(c.customer_centric),
        balanced: n(c.balanced),
        seller_centric: n(c.seller_centric),
        neutral: n(c.neutral),
    }
}

/// The `TREND_WEEKS` weeks ending with `week`, oldest first, and their `n + 1` boundaries.
fn trend_weeks(week: IsoWeek, tz: &TimeZone) -> Result<(Vec<IsoWeek>, Vec<i64>), DigestError> {
    let mut weeks = vec![week];
    while weeks.len() < compose::TREND_WEEKS {
        let first = weeks[0].prev()?;
        weeks.insert(0, first);
    }
    let mut bounds = Vec::with_capacity(weeks.len() + 1);
    for w in &weeks {
        bounds.push(w.window_ms(tz)?.0);
    }
    bounds.push(week.window_ms(tz)?.1);
    Ok((weeks, bounds))
}

/// Class counts per trend week; the last entry is `week`, the one before the previous week.
async fn mixes(
    store: &Store,
    team_id: &str,
    user_id: Option<&str>,
    week: IsoWeek,
    tz: &TimeZone,
) -> Result<Vec<(IsoWeek, Mix)>, DigestError> {
    let (weeks, bounds) = trend_weeks(week, tz)?;
    let counts = store.digest_class_counts(team_id, user_id, &bounds).await?;
    Ok(weeks
        .into_iter()
        .zip(counts.into_iter().map(to_mix))
        .collect())
}

/// Everything the team digest about `week` shows (in `tz`), read with a handful of
/// grouped queries.
pub async fn week_stats(
    store: &Store,
    team_id: &str,
    week: IsoWeek,
    tz: &TimeZone,
    in_progress: bool,
) -> Result<WeekStats, DigestError> {
    let trend = mixes(store, team_id, None, week, tz).await?;
    let this_week = trend.last().map(|(_, m)| *m).unwrap_or_default();
    let previous = trend
        .iter()
        .rev()
        .nth(1)
        .map(|(_, m)| *m)
        .unwrap_or_default();
    let (since, until) = week.window_ms(tz)?;
    let themes = store
        .digest_theme_counts(team_id, since, until)
        .await?
        .into_iter()
        .filter_map(|(id, n)| Some((Theme::from_id(&id)?, u64::try_from(n).ok()?)))
        .collect();
    // Best first, at most one update per person, so the spotlight never favours one seller.
    let mut spotlight = Vec::new();
    let mut people: Vec<String> = Vec::new();
    for row in store
        .digest_spotlight_candidates(team_id, since, until, SPOTLIGHT_CANDIDATES)
        .await?
    {
        if spotlight.len() == compose::SPOTLIGHT_MAX {
            break;
        }
        if people.contains(&row.user_id) {
            continue;
        }
        let themes = store
            .observation_theme_ids(team_id, row.id)
            .await?
            .iter()
            .filter_map(|t| Theme::from_id(t))
            .collect();
        people.push(row.user_id);
        spotlight.push(SpotlightItem {
            channel_id: row.channel_id,
            message_ts: row.message_ts,
            account: row.account,
            themes,
        });
    }
    let shared_reflections = store
        .count_shared_reflections(team_id, since, until)
        .await?;
    let (helpful, not_now) = store.count_prompt_feedback(team_id, since, until).await?;
    let corrections = store.count_corrections(team_id, since, until).await?;
    let unhelpful_questions = store.unhelpful_question_ids(team_id).await?;
    Ok(WeekStats {
        week,
        in_progress,
        this_week,
        previous,
        trend,
        themes,
        spotlight,
        shared_reflections: u32::try_from(shared_reflections).unwrap_or(u32::MAX),
        feedback: Feedback {
            helpful: u32::try_from(helpful).unwrap_or(u32::MAX),
            not_now: u32::try_from(not_now).unwrap_or(u32::MAX),
            corrections: u32::try_from(corrections).unwrap_or(u32::MAX),
        },
        unhelpful_questions,
    })
}

/// One person's own figures for `week`.
pub async fn personal_stats(
    store: &Store,
    team_id: &str,
    user_id: &str,
    week: IsoWeek,
    tz: &TimeZone,
) -> Result<PersonalStats, DigestError> {
    let trend = mixes(store, team_id, Some(user_id), week, tz).await?;
    Ok(PersonalStats {
        week,
        this_week: trend.last().map(|(_, m)| *m).unwrap_or_default(),
        previous: trend
            .iter()
            .rev()
            .nth(1)
            .map(|(_, m)| *m)
            .unwrap_or_default(),
        trend,
    })
}

/// The outbox row posting a composed digest to `channel`.
pub fn post_message(key: String, channel: &ChannelId, digest: &Digest) -> NewOutboxMessage {
    NewOutboxMessage::new(
        key,
        SlackCall::PostMessage {
            channel: channel.clone(),
            thread_ts: None,
            message: message(digest),
        },
    )
}

/// The outbox row sending a personal digest to `user`'s DM with cusp.
pub fn post_direct(key: String, user: &UserId, digest: &Digest) -> NewOutboxMessage {
    NewOutboxMessage::new(
        key,
        SlackCall::PostDirect {
            user: user.clone(),
            message: message(digest),
        },
    )
}

fn message(digest: &Digest) -> Message {
    Message::blocks(digest.fallback.clone(), digest.blocks.clone()).without_previews()
}

/// The team post about `week` and, with `personal`, one DM per subscriber (their own data).
pub async fn messages_for_week(
    store: &Store,
    engine: &Engine,
    team_id: &str,
    channel: &str,
    week: IsoWeek,
    tz: &TimeZone,
    personal: bool,
) -> Result<Vec<NewOutboxMessage>, DigestError> {
    let stats = week_stats(store, team_id, week, tz, false).await?;
    let digest = compose(&stats, engine, seed(team_id, week));
    let key = idempotency_key(team_id, week);
    let channel = ChannelId::parse(channel)
        .map_err(|e| DigestError::BadSettings(format!("digest channel: {e}")))?;
    let mut out = vec![post_message(key.clone(), &channel, &digest)];
    if personal {
        for user in store.digest_subscribers(team_id).await? {
            let Ok(user_id) = UserId::parse(&user) else {
                // Stored from a Slack payload, so this does not happen; one odd row must
                // not cost the team its digest.
                tracing::warn!("a digest subscriber's stored user id is invalid; skipped");
                continue;
            };
            let mine = personal_stats(store, team_id, &user, week, tz).await?;
            out.push(post_direct(
                format!("{key}:dm:{user}"),
                &user_id,
                &compose_personal(&mine),
            ));
        }
    }
    Ok(out)
}

/// The digest of `week` (default: the week in progress, in the team's time zone) as it
/// stands at `now`; nothing is stored.
pub async fn preview(
    store: &Store,
    engine: &Engine,
    team_id: &str,
    week: Option<IsoWeek>,
    now: Timestamp,
) -> Result<Digest, DigestError> {
    let settings = load_settings(store, team_id).await?;
    let tz = &settings.schedule.time_zone;
    let current = IsoWeek::at(now, tz);
    let week = week.unwrap_or(current);
    let stats = week_stats(store, team_id, week, tz, week >= current).await?;
    Ok(compose(&stats, engine, seed(team_id, week)))
}

/// What `send` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Queued {
        week: IsoWeek,
        messages: usize,
    },
    /// `--force`: queued again under `digest:{team}:{week}:force:{n}`.
    Forced {
        week: IsoWeek,
        n: i64,
    },
}

/// `cusp digest send`: posts the digest of `week` (default: the last full week) through
/// the outbox now. Without `force` a week is never posted twice (the same run row the
/// scheduler claims); with it, the team post is queued again under a new key.
pub async fn send(
    store: &Store,
    engine: &Engine,
    team_id: &str,
    week: Option<IsoWeek>,
    force: bool,
    now: Timestamp,
) -> Result<SendOutcome, DigestError> {
    let settings = load_settings(store, team_id).await?;
    let channel = settings.channel_id.clone().ok_or(DigestError::NoChannel)?;
    let tz = &settings.schedule.time_zone;
    let week = match week {
        Some(w) => w,
        None => settings.schedule.reported_week_at(now)?,
    };
    let now_ms = now.as_millisecond();
    if week.window_ms(tz)?.1 > now_ms {
        return Err(DigestError::NotOver(week));
    }
    if force {
        let messages = messages_for_week(store, engine, team_id, &channel, week, tz, false).await?;
        let n = store
            .force_digest_run(team_id, &week.to_string(), &messages, now_ms)
            .await?;
        return Ok(SendOutcome::Forced { week, n });
    }
    let scheduled = settings.schedule.scheduled_at(week)?.as_millisecond();
    let claim = store
        .claim_digest_run(
            team_id,
            &week.to_string(),
            scheduled,
            now_ms,
            DIGEST_LEASE,
            true,
        )
        .await?;
    match claim {
        RunClaim::Claimed { token, .. } => {
            run_claimed(store, engine, team_id, &channel, week, tz, &token, now_ms)
                .await
                .map(|messages| SendOutcome::Queued { week, messages })
        }
        RunClaim::Done => Err(DigestError::AlreadySent(week)),
        RunClaim::Failed => Err(DigestError::RunFailed(week)),
        RunClaim::Skipped => Err(DigestError::WasSkipped(week)),
        RunClaim::HeldElsewhere => Err(DigestError::InProgress(week)),
    }
}

/// Composes a claimed run and, in one transaction, enqueues it and marks it done. Returns
/// how many messages were queued (0 when the claim was lost to another instance).
#[expect(
    clippy::too_many_arguments,
    reason = "the claim's identity plus its context"
)]
pub async fn run_claimed(
    store: &Store,
    engine: &Engine,
    team_id: &str,
    channel: &str,
    week: IsoWeek,
    tz: &TimeZone,
    token: &str,
    now_ms: i64,
) -> Result<usize, DigestError> {
    let composed = messages_for_week(store, engine, team_id, channel, week, tz, true).await;
    let messages = match composed {
        Ok(m) => m,
        Err(err) => {
            store
                .fail_digest_run(
                    team_id,
                    &week.to_string(),
                    token,
                    &err.to_string(),
                    MAX_RUN_ATTEMPTS,
                )
                .await?;
            return Err(err);
        }
    };
    let ours = store
        .complete_digest_run(team_id, &week.to_string(), token, &messages, now_ms)
        .await?;
    Ok(if ours { messages.len() } else { 0 })
}
