//! The weekly digest timer. Every tick (at start, then every minute) it asks the pure
//! `bot::digest::due_run` which week is due for the team and then:
//! - claims the week's run row (first insert wins; a crashed holder's expired lease is
//!   taken over), so several replicas on one database post it exactly once;
//! - composes the digest and, in one transaction, enqueues it in the outbox and marks the
//!   run done — a crash leaves either nothing (the lease runs out, someone retries) or a
//!   done run with its messages queued;
//! - records a run missed by 24 hours or more as `skipped` (logged), never to be retried.
//!
//! Each tick also deletes inbox rows handled more than a week ago.

use std::time::Duration;
use tracing::Instrument;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::bot::digest::{self, DIGEST_LEASE, DigestError, Due, IsoWeek};
use crate::state::AppState;
use crate::store::RunClaim;
use crate::telemetry::metrics;

/// How often the scheduler looks for a due digest.
pub const TICK_INTERVAL: Duration = Duration::from_secs(60);

/// Handled inbox rows are kept this long (Slack retries an event for about an hour).
pub const INBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The retention purge runs at start and then at most this often.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Rows deleted per statement by the purge, so that no batch holds the write lock long.
pub const PURGE_BATCH: i64 = 1_000;

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// The digest is off (or has no channel).
    Disabled,
    /// No run is owed right now.
    NotDue,
    /// This instance queued the digest of `week` (`messages` outbox rows).
    Posted { week: IsoWeek, messages: usize },
    /// The week's run was already done, skipped or failed.
    AlreadyHandled { week: IsoWeek },
    /// Another instance holds the week's run.
    HeldElsewhere { week: IsoWeek },
    /// The run was due 24 hours ago or more and is now recorded as skipped.
    Skipped { week: IsoWeek },
}

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut last_purge: Option<Timestamp> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let teams = match state.workspaces.teams().await {
            Ok(teams) => teams,
            Err(err) => {
                tracing::error!(error = %err, "digest scheduler could not list the workspaces");
                Vec::new()
            }
        };
        for team in &teams {
            match run_tick(&state, team, Timestamp::now()).await {
                Ok(TickOutcome::Posted { .. }) => state.outbox_wake.notify_one(),
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(team_id = %team, error = %err, "digest scheduler tick failed")
                }
            }
            housekeeping(&state, team, Timestamp::now()).await;
        }
        let now = Timestamp::now();
        let purge_due = last_purge.is_none_or(|at| {
            now.as_millisecond() - at.as_millisecond()
                >= i64::try_from(PURGE_INTERVAL.as_millis()).unwrap_or(i64::MAX)
        });
        if purge_due && !teams.is_empty() {
            last_purge = Some(now);
            for team in &teams {
                purge_expired(&state, team, now).await;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(TICK_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Deletes handled inbox rows older than [`INBOX_RETENTION`]; failures are only logged
/// (nothing depends on the rows being gone).
pub async fn housekeeping(state: &AppState, team: &str, now: Timestamp) {
    let retention = i64::try_from(INBOX_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let before = now.as_millisecond().saturating_sub(retention);
    match state.store.prune_inbox(team, before).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "old handled events deleted from the inbox"),
        Err(err) => tracing::warn!(error = %err, "could not prune the inbox"),
    }
}

/// Deletes the team's rows older than `state.retention` (observations, prompts,
/// reflections, corrections, finished deliveries and events, CRM delivery keys) in bounded batches.
/// Failures are logged and retried at the next daily pass. Returns what was deleted.
pub async fn purge_expired(
    state: &AppState,
    team: &str,
    now: Timestamp,
) -> crate::store::PurgeCounts {
    let retention = i64::try_from(state.retention.as_millis()).unwrap_or(i64::MAX);
    let before = now.as_millisecond().saturating_sub(retention);
    match state
        .store
        .purge_older_than(team, before, PURGE_BATCH)
        .await
    {
        Ok(counts) => {
            if counts.total() > 0 {
                tracing::info!(
                    team_id = team,
                    retention_days = state.retention.as_secs() / 86_400,
                    observations = counts.observations,
                    prompts = counts.prompts,
                    reflections = counts.reflections,
                    corrections = counts.corrections,
                    outbox = counts.outbox,
                    inbox = counts.inbox,
                    crm_deliveries = counts.crm_deliveries,
                    "rows past the retention period deleted"
                );
            }
            counts
        }
        Err(err) => {
            tracing::warn!(team_id = team, error = %err, "could not purge rows past the retention period");
            crate::store::PurgeCounts::default()
        }
    }
}

/// One scheduler step for `team` at `now`; tests call it directly. Counts the
/// runs it queued, skipped or failed in `cusp_digest_runs_total`.
pub async fn run_tick(
    state: &AppState,
    team: &str,
    now: Timestamp,
) -> Result<TickOutcome, DigestError> {
    let outcome = tick(state, team, now).await;
    match &outcome {
        Ok(TickOutcome::Posted { .. }) => metrics::digest_run("queued"),
        Ok(TickOutcome::Skipped { .. }) => metrics::digest_run("skipped"),
        Err(_) => metrics::digest_run("failed"),
        Ok(_) => {}
    }
    outcome
}

async fn tick(state: &AppState, team: &str, now: Timestamp) -> Result<TickOutcome, DigestError> {
    let settings = digest::load_settings(&state.store, team).await?;
    let Some(channel) = settings.channel_id.as_deref().filter(|_| settings.enabled) else {
        return Ok(TickOutcome::Disabled);
    };
    let now_ms = now.as_millisecond();
    match digest::due_run(&settings.schedule, now, settings.since)? {
        Due::Nothing => Ok(TickOutcome::NotDue),
        Due::Skip { week, scheduled_at } => {
            let recorded = state
                .store
                .skip_digest_run(
                    team,
                    &week.to_string(),
                    scheduled_at.as_millisecond(),
                    now_ms,
                )
                .await?;
            if recorded {
                tracing::warn!(
                    team_id = team,
                    %week,
                    scheduled_at = %scheduled_at,
                    "weekly digest skipped: it was due 24 hours ago or more (downtime?)"
                );
                Ok(TickOutcome::Skipped { week })
            } else {
                Ok(TickOutcome::AlreadyHandled { week })
            }
        }
        Due::Run { week, scheduled_at } => {
            let claim = state
                .store
                .claim_digest_run(
                    team,
                    &week.to_string(),
                    scheduled_at.as_millisecond(),
                    now_ms,
                    DIGEST_LEASE,
                    false,
                )
                .await?;
            match claim {
                RunClaim::Claimed { token, attempt } => {
                    let span = tracing::info_span!("digest", team_id = team, %week, attempt);
                    async {
                        let started = std::time::Instant::now();
                        let messages = digest::run_claimed(
                            &state.store,
                            &state.engine,
                            team,
                            channel,
                            week,
                            &settings.schedule.time_zone,
                            &token,
                            now_ms,
                        )
                        .await?;
                        if messages == 0 {
                            Ok(TickOutcome::HeldElsewhere { week })
                        } else {
                            tracing::info!(
                                channel_id = channel,
                                messages,
                                latency_ms = started.elapsed().as_millis() as u64,
                                "weekly digest queued"
                            );
                            Ok(TickOutcome::Posted { week, messages })
                        }
                    }
                    .instrument(span)
                    .await
                }
                RunClaim::Done | RunClaim::Skipped | RunClaim::Failed => {
                    Ok(TickOutcome::AlreadyHandled { week })
                }
                RunClaim::HeldElsewhere => Ok(TickOutcome::HeldElsewhere { week }),
            }
        }
    }
}
